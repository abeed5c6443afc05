"""The short-link store's first schema: links, their tags, deletions, API tokens and the change counter.

Written out here, not imported from router.serve.link_store: a migration is what it was when it shipped.
tests/test_link_store.py checks that a migrated database equals link_store.METADATA.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "links",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("advertiser", sa.String(64), nullable=True),
        sa.Column("campaign", sa.String(64), nullable=True),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("image", sa.Text, nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_clicks", sa.BigInteger, nullable=True),
        sa.Column("clicks", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("custom", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_links_advertiser", "links", ["advertiser"])
    op.create_index("ix_links_version", "links", ["version"])
    op.create_table(
        "link_tags",
        sa.Column("code", sa.String(64), sa.ForeignKey("links.code", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(64), primary_key=True),
    )
    op.create_index("ix_link_tags_tag", "link_tags", ["tag"])
    op.create_table(
        "link_deletions",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_link_deletions_version", "link_deletions", ["version"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("hash", sa.String(128), nullable=False, unique=True),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("advertiser", sa.String(64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    changes = op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(changes, [{"id": 1, "value": 0}])


def downgrade() -> None:
    for table in ("changes", "tokens", "link_deletions", "link_tags", "links"):
        op.drop_table(table)
