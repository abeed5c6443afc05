"""The fleet's shared store (Valkey/Redis, ROUTER_REDIS_URL): what every router process must agree on.

Without it each process keeps its own (router.decision.signing.ClickReplays): right for one process,
and the embedded default, with nothing to start. With it, the first use of a signed ad link's click id
is recorded once for the whole fleet (`SET key 1 NX EX ttl`): a replay on any instance loses ad
privileges.

It never fails a click. A click's calls share one deadline (ROUTER_REDIS_TIMEOUT_MS, click_budget). A
call that fails, times out or answers something unexpected falls back to the process's own store. It is counted
(adlink_shared_store_fallbacks_total) and logged at most once a minute. For the next RETRY_SECONDS the
store is not asked at all, so a dead Redis costs the clicks nothing but that first deadline. Then one
call tries again: the store recovers by itself when Redis does. At start-up only, a store that refuses
the credentials (a wrong password: a mistake no retry mends) stops `serve` with one sentence, exit 2
(`credentials_refused`); one that does not answer is ridden out as above.

One client, with its own connection pool, per process and event loop (made on first use in the loop
that serves), closed at shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import hashlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import orjson

from router.decision.links import LinkError, parse_link
from router.decision.types import EXPANDABLE
from router.serve.expand import EXPANSION_RESULTS, Expanded

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("router")

REMEMBERS_SINCE_KEY = "replay-since"  # since when the store has remembered ad click ids, and whether it lost some
RETRY_SECONDS = 1.0  # after FAILURES_TO_REST failures in a row, the store is left alone this long
FAILURES_TO_REST = 3  # one slow answer on a busy machine is not an outage
# A new connection (TCP, TLS, AUTH) may take this long: opened at start-up and again, in the background,
# after an outage (a click waits no longer than its own deadline for it).
CONNECT_SECONDS = 1.0
LOG_EVERY_SECONDS = 60.0
KEY_PREFIX = "adlink:"
WARM_CONNECTIONS = 4  # opened at start-up
MAX_CONNECTIONS = 32  # per process: clicks that need the store at once wait for a connection, within the deadline
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
# A click limit's window (router.serve.limits): KEYS the current and previous windows' counters; ARGV the
# previous window's weight, the limit and the counter's lifetime. Counts only what it lets through.
_COUNT_WITHIN = """
local current = tonumber(redis.call('get', KEYS[1]) or '0')
local previous = tonumber(redis.call('get', KEYS[2]) or '0')
if previous * tonumber(ARGV[1]) + current + 1 > tonumber(ARGV[2]) then return {0, current, previous} end
current = redis.call('incr', KEYS[1])
redis.call('expire', KEYS[1], ARGV[3])
return {1, current, previous}
"""
# One count taken back, never below 0. With SET and EXPIRE, not DECR: the user needs no command beyond
# those the start-up check tries (credentials_refused).
_UNCOUNT = """
for _, key in ipairs(KEYS) do
  local count = tonumber(redis.call('get', key) or '0')
  if count > 0 then
    redis.call('set', key, count - 1)
    redis.call('expire', key, ARGV[1])
    return 1
  end
end
return 0
"""

T = TypeVar("T")

# A click's own deadline for the store, as the event loop's time: however many calls one click makes
# (limits, the replay check), together they wait no longer than one ROUTER_REDIS_TIMEOUT_MS. Set by the
# click handler (`click_budget`); work that is not one click's (a short link's expansion, shared by
# every click that asks for it, with a deadline of its own) runs without it.
_BUDGET: contextvars.ContextVar[float | None] = contextvars.ContextVar("store_budget", default=None)


@contextlib.contextmanager
def click_budget(seconds: float) -> Iterator[None]:
    """For one click: the store calls made inside share `seconds` between them."""
    token = _BUDGET.set(asyncio.get_running_loop().time() + seconds)
    try:
        yield
    finally:
        _BUDGET.reset(token)


class Unavailable:
    """What a read answers when the store can't say (distinct from None: nothing there)."""

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE = Unavailable()


class SharedStore:
    """Valkey/Redis behind deadlines, with a fallback for every call."""

    def __init__(self, url: str, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.timeout = timeout
        self._clock = clock
        self._client: aioredis.Redis | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0
        self._failures = 0  # in a row
        self.healthy = True  # whether the last call the store was asked went well (metrics, readiness)
        self._logged_at = -LOG_EVERY_SECONDS
        self._store_since: float | None = None  # the store's start as this process last read it (replay_first_use)
        self._token = os.urandom(12).hex().encode()  # this process's claims (router.serve.shared.claim)
        self.calls: dict[str, int] = {}  # answered by the store, by operation (router.serve.metrics)
        self.fallbacks: dict[str, int] = {}  # answered by the local fallback instead, by operation

    def __repr__(self) -> str:  # the URL may hold a password: never shown
        return f"SharedStore({display_url(self.url)})"

    @property
    def up(self) -> bool:
        """Whether the store is being asked (not resting after a failure)."""
        return self._clock() >= self._down_until

    def _redis(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # No retries: a command the server ran whose answer was lost (a reset, a failover) must not run
            # twice (a first click would read as its own replay, a counter count twice). A click that finds
            # every connection busy waits for one within its deadline, not an error.
            # Imported here: the client weighs megabytes, and a router without a store never loads it.
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            pool = aioredis.BlockingConnectionPool.from_url(
                self.url, max_connections=MAX_CONNECTIONS, timeout=self.timeout, socket_timeout=self.timeout,
                socket_connect_timeout=CONNECT_SECONDS, health_check_interval=30,
                retry=Retry(NoBackoff(), 0))
            self._client = aioredis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            with contextlib.suppress(Exception):
                await client.aclose()
        if _closing:  # clients dropped after failures, closing in the background
            await asyncio.gather(*_closing, return_exceptions=True)

    def _drop_client(self) -> None:
        """Forget the client and its pool: after a failure its connections may all be dead (a restarted
        Redis), and each would fail one more call. The next call makes a fresh one."""
        client, self._client = self._client, None
        if client is not None:
            _in_background(_close_quietly(client))

    async def first_use(self, key: str, ttl_seconds: int, fallback: Callable[[], bool]) -> bool:
        """True the first time `key` is seen across the fleet within `ttl_seconds` (and records it);
        `fallback()` when the store can't say."""

        stored = f"{KEY_PREFIX}replay:{_digest(key)}"

        async def ask(client: aioredis.Redis) -> bool:
            answer = await client.set(stored, b"1", nx=True, ex=max(1, ttl_seconds))
            if answer is None or answer is True:
                return answer is True
            raise TypeError(f"SET NX answered {type(answer).__name__}")  # garbage: fall back

        return await self._call("first_use", ask, fallback)

    async def replay_first_use(self, keys: tuple[str, ...], ttl_seconds: int,
                               ) -> tuple[tuple[bool, ...], float | None] | None:
        """For an ad click's ids (`keys`, one each): whether each is used for the first time across the fleet
        within `ttl_seconds` (each recorded), and, when the store has lost its memory of click ids, since
        when it has remembered them again; None when the store can't say. One round trip (two or three when
        the key is written).

        Since when the store remembers is kept at REMEMBERS_SINCE_KEY, read in the same round trip. When that
        key is gone, or has moved on, after this process had seen it, the store lost what it held (a restart
        without persistence, a flush, an eviction), and remembers from now on. The key is written again
        with `lost`, so every router of the fleet reads it so, until the store's next loss. A store
        this process meets for the first time without the key is taken as new, remembering from now on (if
        it had lost what it held, the routers that had seen the key notice the new one); a store restored
        from disk keeps the key, and its memory."""
        since_key = KEY_PREFIX + REMEMBERS_SINCE_KEY

        async def ask(client: aioredis.Redis) -> tuple[tuple[bool, ...], float | None]:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.set(f"{KEY_PREFIX}replay:{_digest(key)}", b"1", nx=True, ex=max(1, ttl_seconds))
            pipe.get(since_key)
            *firsts, raw = await pipe.execute()
            if any(first is not None and first is not True for first in firsts):
                raise TypeError("SET NX answered garbage")  # fall back
            since, lost = _since(raw)
            known = self._store_since
            if since is None:  # gone, never written, or not ours: what it remembers is sure from now on only
                lost = known is not None  # it held the key when this process last asked: whatever it held is gone
                since = float(int(time.time()))
                written = await client.set(since_key, _since_value(since, lost), nx=raw is None and not lost)
                if not written:  # another router wrote it first: its value is the fleet's
                    stored = await client.get(since_key)
                    since, lost = _since(stored if isinstance(stored, bytes) else None)
                    since = since if since is not None else float(int(time.time()))
            elif not lost and known is not None and since > known + 1:  # re-created by a router new to it
                lost = True
                await client.set(since_key, _since_value(since, lost))
            self._store_since = since
            return tuple(first is True for first in firsts), (since if lost else None)

        return await self._call("first_use", ask, lambda: None)

    async def claim(self, key: str, ttl_seconds: float) -> bool | None:
        """Take `key` for `ttl_seconds` if nobody holds it: True taken, False held by another, None the store
        can't say. The claim holds this process's token, so `release` frees only its own."""

        async def ask(client: aioredis.Redis) -> bool | None:
            answer = await client.set(KEY_PREFIX + key, self._token, nx=True, px=max(1, int(ttl_seconds * 1000)))
            if answer is None or answer is True:
                return answer is True
            raise TypeError(f"SET NX answered {type(answer).__name__}")

        return await self._call("claim", ask, lambda: None)

    async def get(self, key: str) -> bytes | Unavailable | None:
        """The value at `key`, None when there is none, UNAVAILABLE when the store can't say."""

        async def ask(client: aioredis.Redis) -> bytes | Unavailable | None:
            answer = await client.get(KEY_PREFIX + key)
            if answer is None or isinstance(answer, bytes):
                return answer
            raise TypeError(f"GET answered {type(answer).__name__}")

        return await self._call("get", ask, lambda: UNAVAILABLE)

    async def put(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        """Store `value` at `key` for `ttl_seconds`; False when the store did not take it."""
        return await self._call(
            "put", lambda client: _true(client.set(KEY_PREFIX + key, value, px=max(1, int(ttl_seconds * 1000)))),
            lambda: False)

    async def release(self, key: str) -> None:
        """Free a claim this process holds (never another's, taken after this one's expired)."""
        await self._call("release", lambda client: _true(client.eval(_RELEASE, 1, KEY_PREFIX + key, self._token)),
                         lambda: False)

    async def warm_up(self, connections: int = WARM_CONNECTIONS, seconds: float = 2.0, quiet: bool = False) -> bool:
        """Open a few connections before the first clicks (at start-up, with a longer deadline than a
        click's): the first connection of a process also loads what the client needs, which can take longer
        than ROUTER_REDIS_TIMEOUT_MS. False (logged) when the store does not answer: clicks then use the
        fallback until it does."""
        try:
            client = self._redis()
            async with asyncio.timeout(seconds):
                await asyncio.gather(*(client.ping() for _ in range(connections)))
        except Exception as err:
            if not quiet:
                log.warning("shared store %s does not answer at start-up (%s); each process keeps its own until "
                            "it does", display_url(self.url), type(err).__name__)
            self._drop_client()
            return False
        if not quiet:
            log.info("shared store %s: %d connections ready", display_url(self.url), connections)
        return True

    async def count_within(self, current_key: str, previous_key: str, weight: float, limit: int,
                           ttl_seconds: int) -> tuple[bool, int, int] | None:
        """One more in `current_key`'s window, if the sliding estimate with it (the previous window's count
        times `weight`, plus the current's, plus this one) is within `limit`: (whether it was counted, the
        current window's count, the previous one's). Read, decided and counted in one script, so processes
        of a fleet never both take the last place. None when the store can't say (router.serve.limits
        counts in the process then)."""

        async def ask(client: aioredis.Redis) -> tuple[bool, int, int]:
            answer = await client.eval(_COUNT_WITHIN, 2, KEY_PREFIX + current_key, KEY_PREFIX + previous_key,
                                       repr(weight), limit, max(1, ttl_seconds))
            if not (isinstance(answer, list) and len(answer) == 3 and all(type(n) is int for n in answer)):
                raise TypeError(f"the count script answered {type(answer).__name__}")  # garbage: fall back
            counted, current, previous = answer
            return counted == 1, current, previous

        return await self._call("count", ask, lambda: None)

    async def uncount(self, current_key: str, previous_key: str, ttl_seconds: int) -> bool | None:
        """Take back one count (`count_within`'s) from `current_key`'s window, or the previous one's when
        the current holds none (the window turned since): whether one was taken; None when the store
        can't say."""

        async def ask(client: aioredis.Redis) -> bool:
            return bool(await client.eval(_UNCOUNT, 2, KEY_PREFIX + current_key, KEY_PREFIX + previous_key,
                                          max(1, ttl_seconds)))

        return await self._call("uncount", ask, lambda: None)

    async def ping(self) -> bool:
        """Whether the store answers now (readiness detail; never raises)."""
        return await self._call("ping", lambda client: _true(client.ping()), lambda: False)

    async def _call(self, operation: str, ask: Callable[[aioredis.Redis], Awaitable[T]],
                    fallback: Callable[[], T]) -> T:
        if not self.up:
            return self._fall_back(operation, fallback, None)
        timeout = self.timeout
        budget = _BUDGET.get()
        if budget is not None:
            timeout = min(timeout, budget - asyncio.get_running_loop().time())
            if timeout <= 0:  # this click has waited for the store all it may
                return self._fall_back(operation, fallback, None)
        try:
            async with asyncio.timeout(timeout):
                result = await ask(self._redis())
        except Exception as err:  # down, slow, or garbage the client chokes on (any error): never the click's
            self.healthy = False
            self._failures += 1
            if self._failures >= FAILURES_TO_REST:  # an outage, not a slow answer: rest, then a fresh pool
                self._failures = 0
                self._down_until = self._clock() + RETRY_SECONDS
                self._drop_client()
                _in_background(self.warm_up(quiet=True))  # a fresh pool's connections, not in a click's time
            return self._fall_back(operation, fallback, err)
        self._failures = 0
        self.healthy = True
        self.calls[operation] = self.calls.get(operation, 0) + 1
        return result

    def _fall_back(self, operation: str, fallback: Callable[[], T], err: BaseException | None) -> T:
        self.fallbacks[operation] = self.fallbacks.get(operation, 0) + 1
        now = self._clock()
        if err is not None and now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            log.warning("shared store %s: %s failed (%s); using this process's own store for %g s, then trying "
                        "again (logged once a minute)", display_url(self.url), operation,
                        type(err).__name__ if not str(err) else f"{type(err).__name__}: {str(err)[:200]}",
                        RETRY_SECONDS)
        return fallback()


def _since(raw: bytes | None) -> tuple[float | None, bool]:
    """REMEMBERS_SINCE_KEY's value: (since when the store has remembered click ids, whether it lost them then)."""
    if raw is None:
        return None, False
    text, _, lost = raw.decode("ascii", "replace").partition(":")
    try:
        since = float(text)
    except ValueError:  # not ours: written again
        return None, False
    if not (math.isfinite(since) and 0 < since <= time.time() + 60):  # not a time of ours either
        return None, False
    return since, lost == "lost"


def _since_value(since: float, lost: bool) -> bytes:
    return f"{int(since)}{':lost' if lost else ''}".encode()


def _digest(key: str) -> str:
    """A stored key's name for `key` (a signature and click id, an outcome): a fixed 22 characters whatever its
    length (a million ad clicks a day keep a million of these), and nothing of it readable in the store."""
    return base64.urlsafe_b64encode(hashlib.blake2b(key.encode(), digest_size=16).digest())[:22].decode()


_closing: set[asyncio.Task[Any]] = set()  # background work (closing, reconnecting), kept from the collector


def _in_background(work: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(work)
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def _close_quietly(client: aioredis.Redis) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await client.aclose()


async def _true(answer: Awaitable[Any]) -> bool:
    return bool(await answer)


def credentials_refused(url: str, seconds: float = CONNECT_SECONDS) -> str | None:
    """At start-up, one PING and each command the router sends, within `seconds`: a sentence (naming the
    store without its password) when the store refuses the credentials ROUTER_REDIS_URL gives (WRONGPASS,
    NOAUTH, `invalid password` or a password to a server without one, both from servers before 6, an ACL
    user denied a command: NOPERM): a configuration error, which no retry mends. None
    otherwise: it answered, or it does not (down, unreachable, slow), which the server rides out as at
    any time, each process on its own until the store is back.

    The sync client in a thread of its own, waited for `seconds` at most: its socket deadlines don't bound
    a name that takes long to resolve. A check still running then is left behind (a daemon thread, ended
    by its own socket deadlines), and the store counts as not answering."""
    import redis
    from redis.backoff import NoBackoff
    from redis.exceptions import (
        AuthenticationError,
        AuthenticationWrongNumberOfArgsError,
        AuthorizationError,
        NoPermissionError,
    )
    from redis.retry import Retry

    refusals = (AuthenticationError, AuthorizationError, AuthenticationWrongNumberOfArgsError, NoPermissionError)
    found: list[BaseException] = []

    def ask() -> None:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=seconds, socket_timeout=seconds,
                                          retry=Retry(NoBackoff(), 0), single_connection_client=True)
            try:
                client.ping()
                # Each command the router sends, once, on a key of its own that expires within a second: an ACL
                # user allowed PING but not, say, EVAL would otherwise pass here and fall back on every click.
                probe = f"{KEY_PREFIX}start-up-check"
                client.set(probe, "1", px=1000)
                client.get(probe)
                client.incr(probe)
                client.expire(probe, 1)
                client.eval("return 1", 1, probe)
            finally:
                client.close()
        except refusals as err:
            found.append(err)
        except Exception:  # down, unreachable, garbage: not a refusal, served as today
            return

    checking = threading.Thread(target=ask, name="store-credentials-check", daemon=True)
    checking.start()
    checking.join(seconds)
    if not found:
        return None
    err = found[0]
    parts = urlsplit(url)
    # The server's own words, first clause only: `WRONGPASS invalid username-password pair or user is disabled`
    said = re.split(r"[.,;](?:\s|$)", str(err), maxsplit=1)[0][:100]
    for secret in (parts.password, parts.username):  # never echoed, should a server ever repeat one
        if secret:
            said = said.replace(secret, "…")
    said = f"{getattr(err, 'status_code', None) or ''} {said}".strip()
    store = f"the shared store {display_url(url)}"
    usage = "redis://[user:]password@host:port/db"
    if isinstance(err, NoPermissionError):
        return (f"{store} refuses ROUTER_REDIS_URL's user a command the router needs ({said}); allow it PING, GET, "
                f"SET, INCR, EXPIRE and EVAL on keys {KEY_PREFIX}*, or give another user as {usage}")
    if not parts.password:
        return f"{store} wants a password, and ROUTER_REDIS_URL gives none ({said}); give it as {usage}"
    return (f"{store} refused the password in ROUTER_REDIS_URL ({said}); give the right one (and the user, for "
            f"an ACL user) as {usage}")


def replay_ttl(expires: str, now: float, default: float) -> int:
    """How long a click id's first use is remembered: until its signed link expires (a replay after that
    is refused for the expiry anyway), else as long as a process remembers it (`default`); at least a
    minute, at most a week."""
    seconds = default
    if expires.isdigit():
        seconds = int(expires) - now
    return int(min(max(seconds, 60), 7 * 24 * 3600))


def display_url(url: str) -> str:
    """The store's URL as logs show it: scheme, host, port and database only (never a user, a password or
    a query, which may carry one)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


class FleetExpansions:
    """Short-link expansions shared by the fleet (router.serve.expand.Expander asks it): what a link
    expanded to, kept with its TTL, and a short-lived claim, so one router fetches a link while the others
    wait for its answer. What comes back from the store is never trusted as it is: the destination is
    read again as any link is (router.decision.links: allowed hosts, https), and anything that does not
    read is treated as no answer (the router then fetches it itself)."""

    POLL_SECONDS = 0.025  # how often a router waiting for another's fetch looks for its answer

    def __init__(self, store: SharedStore, allowed_hosts: tuple[str, ...] = ()) -> None:
        self.store = store
        self.allowed_hosts = allowed_hosts

    @staticmethod
    def _key(url: str) -> str:
        return "expansion:" + hashlib.sha256(url.encode()).hexdigest()[:32]

    async def known(self, url: str) -> Expanded | Unavailable | None:
        """What another router found for `url`; None when nobody has; UNAVAILABLE when the store can't say
        (or said something that does not read)."""
        raw = await self.store.get(self._key(url))
        if raw is None or isinstance(raw, Unavailable):
            return raw
        return self._decoded(raw)

    async def claim(self, url: str, seconds: float) -> bool | None:
        return await self.store.claim(self._key(url) + ":fetching", seconds)

    async def release(self, url: str) -> None:
        await self.store.release(self._key(url) + ":fetching")

    async def publish(self, url: str, result: Expanded, ttl: float) -> None:
        link = result.link
        data = {"url": link.web_url if link is not None else None, "reason": result.reason, "result": result.result}
        await self.store.put(self._key(url), orjson.dumps(data), ttl)

    async def wait(self, url: str, seconds: float, claim_seconds: float) -> Expanded | Unavailable | bool | None:
        """Another router's answer for `url` once it is there, within `seconds`; True when its claim went
        away without an answer (that router failed or could not publish) and this one now holds it: fetch;
        None when nothing came in time; UNAVAILABLE when the store stopped answering."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(self.POLL_SECONDS)
            found = await self.known(url)
            if found is not None:
                return found
            claimed = await self.claim(url, claim_seconds)
            if claimed is None:
                return UNAVAILABLE
            if claimed:
                return True
        return None

    def _decoded(self, raw: bytes) -> Expanded | Unavailable:
        try:
            data = orjson.loads(raw)
            reason, result, url = str(data["reason"]), str(data["result"]), data["url"]
            if result not in EXPANSION_RESULTS:
                return UNAVAILABLE
            if url is None:
                return Expanded(None, reason, result) if result != "expanded" else UNAVAILABLE
            link = parse_link(str(url), self.allowed_hosts) if self.allowed_hosts else parse_link(str(url))
            if link.kind in EXPANDABLE:
                return UNAVAILABLE
            return Expanded(link, reason, "expanded")
        except (ValueError, KeyError, TypeError, LinkError):
            return UNAVAILABLE


# --- notices on the store's pub/sub (router.serve.link_changes: short links changed) ----------------------


def publish_notice(url: str, channel: str, seconds: float) -> bool:
    """Publish one notice on `channel`, synchronously (from a write's thread, or a command): False when the
    store did not answer within `seconds`. Never raises: a notice only hastens what polling does anyway."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=seconds, socket_connect_timeout=seconds)
    try:
        client.publish(channel, b"changed")
        return True
    except redis.RedisError as error:
        log.warning("a notice on %s was not published: the shared store did not answer (%s)", channel,
                    type(error).__name__)
        return False
    finally:
        client.close()


async def listen_for_notices(url: str, channel: str, heard: Callable[[], None], retry_seconds: float = 1.0) -> None:
    """Call `heard()` for every notice on `channel`, and once each time listening (re)starts (what was said
    meanwhile was missed); until cancelled, listening again `retry_seconds` after the store fails."""
    import redis.asyncio as aioredis

    while True:
        # A connection cut off without a word (a half-open socket) is found by the health checks, and listened
        # on again; meanwhile the caller's polling carries on.
        client = aioredis.Redis.from_url(url, socket_connect_timeout=CONNECT_SECONDS, socket_keepalive=True,
                                         health_check_interval=10)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                heard()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        heard()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the store is down: the caller polls meanwhile
            log.debug("listening on %s failed: %s", channel, type(error).__name__)
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
        await asyncio.sleep(retry_seconds)
