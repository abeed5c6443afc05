"""Telling a fleet's routers that short links changed: a message on the shared store's pub/sub channel.

A write (the API's, the CLI's) announces itself once it is committed; every router subscribed to
CHANNEL reads the changes from the database at once (router.serve.kept_links), well within two seconds. The
message carries nothing but the word: what changed is read from the database's change counter, so a lost or
forged message changes nothing but when a router looks. Without a shared store there is nothing to announce
on: the routers poll the change counter instead. Announcing never fails a write: a store that does not answer
is logged, and the routers' polling (every few seconds even with a store) catches up.
"""

from __future__ import annotations

from collections.abc import Callable

from router.serve.shared import KEY_PREFIX, listen_for_notices, publish_notice

CHANNEL = KEY_PREFIX + "links-changed"
ANNOUNCE_SECONDS = 1.0


def announce(redis_url: str) -> bool:
    """Publish one change notice on CHANNEL (synchronous: called from a write's thread, or the CLI); False
    when there is no store, or it did not answer within ANNOUNCE_SECONDS."""
    return bool(redis_url) and publish_notice(redis_url, CHANNEL, ANNOUNCE_SECONDS)


async def listen(redis_url: str, heard: Callable[[], None]) -> None:
    """Call `heard()` on every change notice (and whenever listening starts again), until cancelled."""
    await listen_for_notices(redis_url, CHANNEL, heard)
