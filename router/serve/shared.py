"""The fleet's shared store (Valkey/Redis, ROUTER_REDIS_URL): what every router process must agree on.

Without it each process keeps its own (router.decision.signing.ClickReplays): right for one process,
and the embedded default, with nothing to start. With it, the first use of a signed ad link's click id
is recorded once for the whole fleet (`SET key 1 NX EX ttl`): a replay on any instance loses ad
privileges.

It never fails a click. Every call has a deadline (ROUTER_REDIS_TIMEOUT_MS). A call that fails, times
out or answers something unexpected falls back to the process's own store. It is counted
(adlink_shared_store_fallbacks_total) and logged at most once a minute. For the next RETRY_SECONDS the
store is not asked at all, so a dead Redis costs the clicks nothing but that first deadline. Then one
call tries again: the store recovers by itself when Redis does.

One client, with its own connection pool, per process and event loop (made on first use in the loop
that serves), closed at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("router")

RETRY_SECONDS = 1.0  # after a failure, the store is left alone this long (clicks use the local fallback)
LOG_EVERY_SECONDS = 60.0
KEY_PREFIX = "adlink:"
MAX_CONNECTIONS = 32  # per process: clicks that need the store at once wait for a connection, within the deadline

T = TypeVar("T")


class SharedStore:
    """Valkey/Redis behind deadlines, with a fallback for every call."""

    def __init__(self, url: str, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.timeout = timeout
        self._clock = clock
        self._client: aioredis.Redis | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0
        self._logged_at = -LOG_EVERY_SECONDS
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
            self._client = aioredis.Redis.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                max_connections=MAX_CONNECTIONS, retry_on_timeout=False, decode_responses=False,
                health_check_interval=30)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    def _drop_client(self) -> None:
        """Forget the client and its pool: after a failure its connections may all be dead (a restarted
        Redis), and each would fail one more call. The next call makes a fresh one."""
        client, self._client = self._client, None
        if client is not None:
            task = asyncio.get_running_loop().create_task(_close_quietly(client))
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    async def first_use(self, key: str, ttl_seconds: int, fallback: Callable[[], bool]) -> bool:
        """True the first time `key` is seen across the fleet within `ttl_seconds` (and records it);
        `fallback()` when the store can't say."""

        async def ask(client: aioredis.Redis) -> bool:
            answer = await client.set(KEY_PREFIX + key, b"1", nx=True, ex=max(1, ttl_seconds))
            if answer is None or answer is True:
                return answer is True
            raise TypeError(f"SET NX answered {type(answer).__name__}")  # garbage: fall back

        return await self._call("first_use", ask, fallback)

    async def ping(self) -> bool:
        """Whether the store answers now (readiness detail; never raises)."""
        return await self._call("ping", lambda client: _true(client.ping()), lambda: False)

    async def _call(self, operation: str, ask: Callable[[aioredis.Redis], Awaitable[T]],
                    fallback: Callable[[], T]) -> T:
        if not self.up:
            return self._fall_back(operation, fallback, None)
        try:
            async with asyncio.timeout(self.timeout):
                result = await ask(self._redis())
        except Exception as err:  # down, slow, or garbage the client chokes on (any error): never the click's
            self._down_until = self._clock() + RETRY_SECONDS
            self._drop_client()
            return self._fall_back(operation, fallback, err)
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


_closing: set[asyncio.Task[None]] = set()  # clients being closed in the background (kept from the collector)


async def _close_quietly(client: aioredis.Redis) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await client.aclose()


async def _true(answer: Awaitable[Any]) -> bool:
    return bool(await answer)


def replay_ttl(expires: str, now: float, default: float) -> int:
    """How long a click id's first use is remembered: until its signed link expires (a replay after that
    is refused for the expiry anyway), else as long as a process remembers it (`default`); at least a
    minute, at most a week."""
    seconds = default
    if expires.isdigit():
        seconds = int(expires) - now
    return int(min(max(seconds, 60), 7 * 24 * 3600))


def display_url(url: str) -> str:
    """The store's URL without its password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.partition(":")[0]
    return f"{scheme}://{user + ':' if user else ''}***@{host}"
