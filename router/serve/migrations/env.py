"""Alembic's environment for the short-link store: run only through router.serve.link_store.upgrade, which
opens the transaction and hands its connection over (no alembic.ini, no URL here)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if context.is_offline_mode() or connection is None:
    raise RuntimeError("run the migrations through router.serve.link_store.upgrade(url)")

context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
