"""Short links kept in the process, so that a click on `/s/<code>` never waits on the database in the
steady state.

- **Kept, bounded.** A link read once is kept (router.decision.recent: the links clicked stay, the long tail
  goes), as what its click needs: the long link's path and query (an /ad link's signed here, once), its
  tags, its expiry, its click limit and its preview. Codes that name no link are kept apart, fewer of them,
  so a flood of made-up codes can't push the real links out.
- **Read once, with a deadline, for every click that asks at once.** A code not kept is read from the
  database in a thread (the event loop never blocks on it); the clicks that ask for the same code meanwhile
  wait for that one read. Past READ_SECONDS the click gets `LinksUnavailable` (a page that says to try
  again, 503 with Retry-After), as it does while the database is down. Kept links keep answering.
- **Changes reach every router within two seconds.** Every link write bumps the database's change counter
  (router.serve.link_store); this process reads it every POLL_SECONDS. With a shared store it also listens
  on its pub/sub channel (router.serve.link_changes) and looks at once when a write announces itself; the
  polling stays, so a lost notice or a listener cut off costs nothing but speed. The codes that changed are
  read with `changes_since`; the ones kept here are read again, or dropped.
- **Clicks counted.** A link with `max_clicks` is counted in the database on each click, one conditional
  UPDATE: exact across a fleet, and the only click that waits on the database. Once spent, it is kept as
  spent until the link changes. Other links' clicks are counted here and added to the database every
  FLUSH_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from router.decision.recent import Recent
from router.decision.short_links import Preview, long_link
from router.decision.signing import SigningKeys, sign
from router.serve.link_admin import fields_of
from router.serve.link_changes import listen
from router.serve.link_store import LinkStore, StoreError

log = logging.getLogger("router")

POLL_SECONDS = 1.0  # the change counter, read this often whatever else tells of a change: served within 2 s
FLUSH_SECONDS = 2.0  # clicks of links without max_clicks, added to the database
READ_SECONDS = 1.0  # a click waits this long for a link not kept yet
COUNT_SECONDS = 2.0  # and this long for a limited link's count
UNKNOWN_LIMIT = 10_000  # codes that name no link, kept apart
# Threads of their own, so that nothing else waits behind the database (the event loop's default pool also
# reloads rules and renders metrics): clicks' reads, and the rest (counts, changes, writing counts). Reads in
# flight are bounded: past READS_IN_FLIGHT distinct codes at once (a flood of made-up codes on a slow
# database), a click on one more is told to try again at once rather than queued behind them.
READ_THREADS = 4
WORK_THREADS = 2
READS_IN_FLIGHT = 64
AD_SOURCE = "link"  # the `src` (ad_source) a short link with an advertiser is signed with
# How a click's lookup went (the metric adlink_short_link_lookups_total): kept in the process, read from the
# database, no such code, or the database did not answer (503; a limited link's count too).
T = TypeVar("T")
LOOKUP_RESULTS = ("kept", "read", "unknown", "unavailable")


class LinksUnavailable(Exception):
    """The database did not answer in time: the click is told to try again."""


@dataclass(frozen=True, slots=True)
class KeptLink:
    """A short link as its clicks need it."""

    code: str
    path: str  # /go, or /ad when the link names an advertiser (signed: its advertiser and campaign are trusted)
    query: str  # the long link's query, as a click on it would carry it
    tags: tuple[str, ...]
    expires: float  # POSIX time; infinite without an expiry
    max_clicks: int | None
    disabled: bool
    preview: Preview

    def gone(self, now: float) -> str:
        """Why the link answers no more (410), or "" while it does."""
        if self.disabled:
            return "the link was turned off by whoever made it"
        if now >= self.expires:
            return "the link has expired"
        return ""


def kept_link(row: dict[str, Any], keys: SigningKeys, public_url: str) -> KeptLink:
    """A stored link as its clicks need it: the long link it stands for (router.decision.short_links), signed
    as an /ad link's fields are when it names an advertiser."""
    fields = fields_of(row)
    expires_at = row.get("expires_at")
    expires = expires_at.timestamp() if expires_at is not None else math.inf
    if fields.advertiser:
        signed = sign({"url": fields.url or "", "src": AD_SOURCE, "adv": fields.advertiser,
                       "cmp": fields.campaign or "", "ch": fields.channel.value if fields.channel else "",
                       "exp": str(math.ceil(expires)) if expires_at is not None else ""}, keys)
        path, query = "/ad", urlencode(signed, quote_via=quote)
    else:
        path, _, query = long_link(fields).partition("?")
    preview = Preview(fields.title, fields.description, fields.image, f"{public_url.rstrip('/')}/s/{row['code']}")
    return KeptLink(row["code"], path, query, tuple(fields.tags or ()), expires, fields.max_clicks,
                    bool(fields.disabled), preview)


class KeptLinks:
    """The links this process keeps (see the module's docstring). `start()` once serving; `aclose()` at the end."""

    def __init__(self, store: LinkStore, keys: SigningKeys, public_url: str, *, limit: int,
                 redis_url: str = "", poll_seconds: float | None = None) -> None:
        self.store = store
        self.keys = keys
        self.public_url = public_url
        self.limit = limit
        self.redis_url = redis_url
        self.poll_seconds = poll_seconds or POLL_SECONDS
        self._reads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="link-read")
        self._work = ThreadPoolExecutor(WORK_THREADS, thread_name_prefix="link-work")
        self._kept: Recent[str, KeptLink] = Recent(limit)
        self._unknown: Recent[str, bool] = Recent(min(UNKNOWN_LIMIT, limit))
        self._spent: Recent[str, bool] = Recent(limit)  # limited links whose clicks have reached max_clicks
        self._reading: dict[str, asyncio.Future[KeptLink | None]] = {}
        self._changed_while_read: set[str] = set()
        self._pending: Counter[str] = Counter()  # clicks not yet added to the database
        self.version: int | None = None  # the change counter's value whose changes are applied
        self.results: Counter[str] = Counter()  # lookups by result, for the metrics
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def __len__(self) -> int:
        return len(self._kept)

    # --- a click's lookups --------------------------------------------------------------------------------

    async def find(self, code: str) -> KeptLink | None:
        """The link `code` names (None: none does), kept or read; LinksUnavailable when it can't be known."""
        link = self._kept.get(code)
        if link is not None:
            self.results["kept"] += 1
            return link
        if self._unknown.get(code):
            self.results["unknown"] += 1
            return None
        reading = self._reading.get(code)
        if reading is None and len(self._reading) >= READS_IN_FLIGHT:
            self.results["unavailable"] += 1
            raise LinksUnavailable
        if reading is None:
            reading = asyncio.get_running_loop().create_future()
            self._reading[code] = reading
            asyncio.get_running_loop().create_task(self._read(code, reading))
        try:
            link = await asyncio.wait_for(asyncio.shield(reading), READ_SECONDS)
        except (TimeoutError, StoreError):
            self.results["unavailable"] += 1
            raise LinksUnavailable from None
        self.results["read" if link is not None else "unknown"] += 1
        return link

    async def _read(self, code: str, reading: asyncio.Future[KeptLink | None]) -> None:
        try:
            row = await self._in(self._reads, self.store.get, code)
            link = None if row is None else kept_link(row, self.keys, self.public_url)
        except Exception as error:  # StoreError, or a bug: the clicks waiting are told to try again
            if not isinstance(error, StoreError):
                log.exception("reading short link %r failed", code)
                error = StoreError("the link could not be read")
            self._changed_while_read.discard(code)
            reading.set_exception(error)
            reading.exception()  # retrieved: no "never retrieved" warning when no click waits any more
            return
        finally:
            self._reading.pop(code, None)
        if code in self._changed_while_read:  # a change was applied while this read was on its way: not kept
            self._changed_while_read.discard(code)
        elif self.version is not None:  # kept only once changes are followed: else they could go unseen
            if link is None:
                self._unknown.put(code, True)
            else:
                self._kept.put(code, link)
        reading.set_result(link)

    def spent(self, link: KeptLink) -> bool:
        return self._spent.get(link.code) is not None

    async def count(self, link: KeptLink) -> bool:
        """Count a click on `link`: True when it may be answered as the link; False once its max_clicks are
        reached. A limited link is counted in the database (LinksUnavailable when it does not answer)."""
        if link.max_clicks is None:
            self._pending[link.code] += 1
            return True
        if self._spent.get(link.code):
            return False
        try:
            counted = await asyncio.wait_for(self._in(self._work, self.store.count_click, link.code, link.max_clicks),
                                             COUNT_SECONDS)
        except (TimeoutError, StoreError):
            self.results["unavailable"] += 1
            raise LinksUnavailable from None
        if not counted:
            self._spent.put(link.code, True)
        return counted

    # --- following changes --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Learn the change counter (a database down now is ridden out: learnt later), then follow changes
        and write counts in the background."""
        with contextlib.suppress(StoreError):
            await self.refresh()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow()), loop.create_task(self._flush_every())]
        if self.redis_url:
            self._tasks.append(loop.create_task(listen(self.redis_url, self._wake.set)))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.flush()
        self._reads.shutdown(wait=False, cancel_futures=True)
        self._work.shutdown(wait=False, cancel_futures=True)

    async def refresh(self) -> None:
        """Apply every change since the version applied (StoreError when the database does not answer)."""
        if self.version is None:
            version = await self._in(self._work, self.store.change_counter)
            # Links read before the counter was known may have changed unseen: start afresh.
            self._kept = Recent(self.limit)
            self._unknown = Recent(min(UNKNOWN_LIMIT, self.limit))
            self._spent.clear()
            self._changed_while_read.update(self._reading)
            self.version = version
            return
        # The counter first: every change up to it is committed, so changes_since sees them all, whatever
        # commits while it runs (seen too, and seen again next time: harmless). The version applied is this
        # one, never a later one changes_since happened to see: a change between its queries is not skipped.
        version = await self._in(self._work, self.store.change_counter)
        if version == self.version:
            return
        changes = await self._in(self._work, self.store.changes_since, self.version)
        codes = {code for code, _ in changes}
        for code in codes:
            self._unknown.pop(code)
            self._spent.pop(code)
            if code in self._reading:
                self._changed_while_read.add(code)
        # What this router keeps of them is read again (most of a fleet's changes are links it never served).
        kept = [code for code in codes if code in self._kept]
        rows = {row["code"]: row for row in await self._in(self._work, self.store.get_many, kept)} if kept else {}
        for code in kept:
            row = rows.get(code)
            if row is None:
                self._kept.pop(code)
            else:
                self._kept.put(code, kept_link(row, self.keys, self.public_url))
        self.version = version

    async def _follow(self) -> None:
        failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                await self.refresh()
                if failing:
                    log.info("the links' database answers again; following changes")
                failing = False
            except StoreError as error:
                if not failing:
                    log.warning("the links' database does not answer (%s); kept links keep serving", error)
                failing = True
            except Exception:
                log.exception("following short links' changes failed")

    def poke(self) -> None:
        """A write in this process: look at the changes now."""
        self._wake.set()

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            with contextlib.suppress(StoreError):
                await self.flush()

    async def flush(self) -> None:
        """Add the clicks counted here to the database (kept for the next try when it does not answer)."""
        if not self._pending:
            return
        counts, self._pending = self._pending, Counter()
        try:
            await self._in(self._work, self.store.add_clicks, counts)
        except StoreError:
            self._pending.update(counts)
            raise

    @staticmethod
    def _in(pool: ThreadPoolExecutor, call: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(pool, call, *args)

    def kept_bytes(self) -> int:
        """A rough size of what is kept (the benchmarks state it per link)."""
        return sum(_size(link) for link in self._kept.values())


def _size(link: KeptLink) -> int:
    preview = link.preview
    return (sys.getsizeof(link) + sys.getsizeof(link.code) + sys.getsizeof(link.path) + sys.getsizeof(link.query)
            + sys.getsizeof(link.tags) + sum(sys.getsizeof(tag) for tag in link.tags) + sys.getsizeof(preview)
            + sum(sys.getsizeof(text) for text in (preview.title, preview.description, preview.image, preview.url)
                  if text))

