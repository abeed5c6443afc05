"""Short-link expansion: a share short link (`m.tb.cn`, `e.tb.cn`) or an affiliate link
(`s.click.taobao.com`) turned into the page it points at, fetched through router.serve.upstream.

- only hosts on the expansion allowlist are contacted, over https, on their default port;
- redirects are followed by hand, at most `max_hops`; every Location is re-validated: https, and either
  another expansion host (followed) or a Taobao/Tmall page that `router.decision.links.parse_link` accepts (the
  answer, never fetched); a URL seen twice is a loop;
- a 200 page (Taobao's short links answer with HTML that names the item) is read up to `max_body` bytes,
  and only an item URL that `parse_link` accepts is taken from it;
- connections go to public addresses only (router.serve.upstream: `pooled_client`);
- one client per expander for the life of the process: one TLS context, connections kept alive and
  reused, at most `max_connections` open to the expansion hosts at once;
- one deadline for the whole chain; results cached (successes `ok_ttl`, failures `failure_ttl`),
  bounded; concurrent clicks for one link share one fetch; a circuit breaker per host stops calls to an
  upstream that keeps failing (open after `breaker_failures` in a row, one trial call after
  `breaker_cooldown`).

Expansion never raises: a failure is an `Expanded` without a link and with a reason, and the click is
decided on the original link (`expansion: failed` in rules).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from router.decision.links import LinkError, parse_link
from router.decision.types import EXPANDABLE, Context, Expansion, Link, LinkKind
from router.serve.upstream import (
    Answer,
    BadRedirect,
    Client,
    Resolver,
    Transport,
    UpstreamError,
    UpstreamTimeout,
    fetch,
    pooled_client,
)

log = logging.getLogger("router.expand")

DEFAULT_EXPAND_HOSTS = ("m.tb.cn", "e.tb.cn", "s.click.taobao.com")
DEFAULT_EXPAND_TIMEOUT = 1.5


@dataclass(frozen=True, slots=True)
class ExpandPolicy:
    hosts: tuple[str, ...] = DEFAULT_EXPAND_HOSTS  # exact host names; contacted over https:443 only
    timeout: float = DEFAULT_EXPAND_TIMEOUT  # one deadline for the whole chain
    max_hops: int = 5
    max_body: int = 64 * 1024
    ok_ttl: float = 600.0
    failure_ttl: float = 30.0
    cache_size: int = 10_000
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    allowed_hosts: tuple[str, ...] = ()  # destinations, as router.decision.links (empty: its default)
    max_connections: int = 20  # open to the expansion hosts at once, all of them together
    # Tests only: send every request to this loopback origin (http://127.0.0.1:PORT) instead of the host.
    upstream: str = ""


@dataclass(frozen=True, slots=True)
class Expanded:
    """What a short link turned out to be: `link`, or None and why not."""

    link: Link | None
    reason: str
    # expanded, or what kind of failure: timeout, circuit_open, upstream_error (a 5xx, 4xx or a broken
    # connection), refused (a redirect the router does not follow), no_item, error (EXPANSION_RESULTS)
    result: str = "expanded"


# What an expansion can come to (adlink_expansions_total's `result`, router.serve.metrics).
EXPANSION_RESULTS = ("expanded", "timeout", "circuit_open", "upstream_error", "refused", "no_item", "error")


class ExpansionShare(Protocol):
    """Expansions shared by the routers of a fleet (router.serve.shared.FleetExpansions). `known` and `wait`
    answer an Expanded, None (nobody has one), or anything else when the store can't say."""

    async def known(self, url: str) -> object: ...
    async def claim(self, url: str, seconds: float) -> bool | None: ...
    async def wait(self, url: str, seconds: float, claim_seconds: float) -> object: ...
    async def publish(self, url: str, result: Expanded, ttl: float) -> None: ...
    async def release(self, url: str) -> None: ...


class _Failure(Exception):
    def __init__(self, reason: str, host: str = "", upstream_fault: bool = False, cache: bool = True,
                 kind: str = "refused") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.host = host
        self.upstream_fault = upstream_fault  # counts against the host's circuit breaker
        self.cache = cache


class CircuitBreaker:
    """Per host: closed; open after `failures` faults in a row; after `cooldown`, one trial call (half-open)."""

    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float]) -> None:
        self.failures, self.cooldown, self._clock = failures, cooldown, clock
        self._faults: dict[str, int] = {}
        self._opened: dict[str, float] = {}
        self._trial: set[str] = set()

    def allow(self, host: str) -> bool:
        opened = self._opened.get(host)
        if opened is None:
            return True
        if self._clock() - opened < self.cooldown or host in self._trial:
            return False
        self._trial.add(host)  # half-open: this call is the trial, the others keep waiting
        return True

    def record(self, host: str, ok: bool) -> None:
        self._trial.discard(host)
        if ok:
            self._faults.pop(host, None)
            self._opened.pop(host, None)
            return
        faults = self._faults.get(host, 0) + 1
        self._faults[host] = faults
        if faults >= self.failures:
            self._opened[host] = self._clock()

    def is_open(self, host: str) -> bool:
        return host in self._opened

    def refusing(self, host: str) -> bool:
        """Open and cooling down: no call goes to `host` now (after the cooldown the next click tries it)."""
        opened = self._opened.get(host)
        return opened is not None and self._clock() - opened < self.cooldown


_MAX_LINK_CHARS = 1500  # router.decision.click.MAX_LINK_CHARS: the longest destination a click may have
_URL_IN_PAGE_RE = re.compile(r"https://[A-Za-z0-9.\-]+(?:/[^\s\"'<>\\`]*)?")
_MAX_CANDIDATES = 20


def item_in_page(body: bytes, allowed: tuple[str, ...]) -> Link | None:
    """The first item link in a page that parse_link accepts, or None. Nothing else in the page is used."""
    text = body.decode("utf-8", "replace").replace("\\/", "/").replace("&amp;", "&")
    for count, match in enumerate(_URL_IN_PAGE_RE.finditer(text)):
        if count >= _MAX_CANDIDATES:
            break
        try:
            link = parse_link(match.group(), allowed) if allowed else parse_link(match.group())
        except LinkError:
            continue
        if link.kind is LinkKind.ITEM:
            return link
    return None


class Expander:
    """Expands short and affiliate links; see the module docstring for the rules it keeps."""

    def __init__(
        self,
        policy: ExpandPolicy,
        *,
        transport: Transport | None = None,
        resolve: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._hosts = frozenset(policy.hosts)
        self._transport = transport  # tests: a fake upstream; None: the network, public addresses only
        self._resolve = resolve
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, Expanded]] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[Expanded]] = {}
        self.breaker = CircuitBreaker(policy.breaker_failures, policy.breaker_cooldown, clock)
        self.requests = 0  # upstream requests made (tests, metrics)
        # The fleet's shared expansions (router.serve.shared), when there is a shared store: one fetch per
        # link across the routers, its answer for all of them.
        self.fleet: ExpansionShare | None = None
        self.results: dict[str, int] = {}  # expansions asked for by clicks, by Expanded.result (metrics)
        # One client for the life of the process, made on first use in the loop that serves (its pool's
        # connections belong to that loop); another loop (a test's) gets its own.
        self._client: Client | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> Client:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = pooled_client(self.policy.timeout, transport=self._transport, resolve=self._resolve,
                                         allow_loopback=bool(self.policy.upstream),
                                         max_connections=self.policy.max_connections)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the kept connections (at shutdown)."""
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.aclose()

    def expandable(self, link: Link) -> bool:
        return link.kind in EXPANDABLE and link.web_url is not None and self._host_of(link.web_url) in self._hosts

    async def expand(self, url: str) -> Expanded:
        """The page `url` points at, or why not; never raises, never waits much past the deadline."""
        result = await self._expand(url)
        self.results[result.result] = self.results.get(result.result, 0) + 1
        return result

    async def _expand(self, url: str) -> Expanded:
        try:
            cached = self._cached(url)
            if cached is not None:
                return cached
            task = self._inflight.get(url)
            loop = asyncio.get_running_loop()
            if task is None or task.get_loop() is not loop:
                # Shared by every click that asks for this link, so not run in the first one's context (its
                # store budget: router.serve.shared); the expansion has its own deadline.
                task = loop.create_task(self._expand_and_remember(url), context=contextvars.Context())
                self._inflight[url] = task
                task.add_done_callback(lambda done: self._forget(url, done))
            async with asyncio.timeout(self.policy.timeout + 0.5):  # the chain has its own deadline
                return await asyncio.shield(task)
        except TimeoutError:
            return Expanded(None, f"no answer within {self.policy.timeout:g} s", "timeout")
        except Exception as err:  # the click must be answered whatever happens here
            log.exception("expanding %s failed unexpectedly", url)
            return Expanded(None, f"unexpected error: {type(err).__name__}", "error")

    def _forget(self, url: str, done: asyncio.Task[Expanded]) -> None:
        if self._inflight.get(url) is done:
            del self._inflight[url]

    def _cached(self, url: str) -> Expanded | None:
        entry = self._cache.get(url)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._cache[url]
            return None
        self._cache.move_to_end(url)
        return entry[1]

    def _remember(self, url: str, result: Expanded, ttl: float) -> None:
        if ttl <= 0:
            return
        self._cache[url] = (self._clock() + ttl, result)
        self._cache.move_to_end(url)
        while len(self._cache) > self.policy.cache_size:
            self._cache.popitem(last=False)

    async def _expand_and_remember(self, url: str) -> Expanded:
        fleet = self.fleet
        if fleet is None:
            return (await self._fetch_and_remember(url))[0]
        found = await fleet.known(url)
        if isinstance(found, Expanded):  # another router fetched it
            self._remember(url, found, self.policy.ok_ttl if found.link else self.policy.failure_ttl)
            return found
        hold = self.policy.timeout + 1  # a claim outlives the fetch it covers
        claimed = None if found is not None else await fleet.claim(url, hold)
        if claimed is False:  # another router is fetching it now: its answer, or the short link as it is
            found = await fleet.wait(url, self.policy.timeout, hold)
            if isinstance(found, Expanded):
                self._remember(url, found, self.policy.ok_ttl if found.link else self.policy.failure_ttl)
                return found
            if found is None:
                return Expanded(None, f"another router is expanding this link; no answer within "
                                      f"{self.policy.timeout:g} s", "timeout")
            claimed = found is True  # its claim went away unanswered and is ours now: fetch it here
        if claimed:
            # Another router may have answered and let go between our look and our claim: look once more.
            found = await fleet.known(url)
            if isinstance(found, Expanded):
                await fleet.release(url)
                self._remember(url, found, self.policy.ok_ttl if found.link else self.policy.failure_ttl)
                return found
        result, ttl = await self._fetch_and_remember(url)  # claimed, or the store can't say: fetch it here
        if claimed:
            if ttl > 0:
                await fleet.publish(url, result, ttl)
            await fleet.release(url)
        return result

    async def _fetch_and_remember(self, url: str) -> tuple[Expanded, float]:
        """The expansion fetched here, and how long it is remembered (0: not at all)."""
        hosts: list[str] = []  # the hosts contacted so far; a timeout is the last one's fault
        try:
            async with asyncio.timeout(self.policy.timeout):
                link = await self._chain(url, hosts)
            result = Expanded(link, "expanded")
            self._remember(url, result, self.policy.ok_ttl)
            return result, self.policy.ok_ttl
        except TimeoutError:
            if hosts:
                self.breaker.record(hosts[-1], ok=False)
            result = Expanded(None, f"no answer within {self.policy.timeout:g} s", "timeout")
        except _Failure as failure:
            if failure.upstream_fault:
                self.breaker.record(failure.host, ok=False)
            result = Expanded(None, failure.reason, failure.kind)
            if not failure.cache:
                return result, 0.0
        self._remember(url, result, self.policy.failure_ttl)
        return result, self.policy.failure_ttl

    async def _chain(self, url: str, hosts: list[str]) -> Link:
        seen = {url}
        current = url
        for _ in range(self.policy.max_hops):
            host = self._host_of(current)
            if not self.breaker.allow(host):
                # Not cached: trying again costs nothing, and the breaker decides when to call again.
                raise _Failure(f"circuit open for {host}: it failed {self.policy.breaker_failures} times in a row",
                               cache=False, kind="circuit_open")
            hosts.append(host)
            answer = await self._get(current, host)
            if 300 <= answer.status < 400 and "location" in answer.headers:
                self.breaker.record(host, ok=True)
                try:
                    target = urljoin(current, answer.headers["location"].strip())
                except ValueError:  # e.g. an unclosed IPv6 bracket
                    raise _Failure(f"redirect to an unreadable address {_shown(answer.headers['location'])}") from None
                if target in seen:
                    raise _Failure(f"redirect loop at {target}")
                seen.add(target)
                if self._is_hop(target):
                    current = target
                    continue
                return self._destination(target)
            if answer.status == 200:
                self.breaker.record(host, ok=True)
                link = item_in_page(answer.body, self.policy.allowed_hosts)
                if link is None:
                    raise _Failure(f"{host} answered a page without an item link", kind="no_item")
                return link
            fault = answer.status >= 500
            if not fault:
                self.breaker.record(host, ok=True)  # a 4xx is an answer: the upstream works
            raise _Failure(f"{host} answered {answer.status}", host, upstream_fault=fault, kind="upstream_error")
        raise _Failure(f"more than {self.policy.max_hops} redirects")

    def _is_hop(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            port, host = parts.port, parts.hostname or ""
        except ValueError:  # a port out of range, an unclosed [ …: not an address at all
            raise _Failure(f"redirect to an unreadable address {_shown(url)}") from None
        if parts.username is not None or parts.password is not None:
            # Never follow (or send) credentials: `https://evil.com:pw@e.tb.cn/` would log in to e.tb.cn.
            raise _Failure(f"redirect with credentials refused: {_shown(url)}")
        return parts.scheme == "https" and port in (None, 443) and host in self._hosts

    def _destination(self, url: str) -> Link:
        if urlsplit(url).scheme != "https":
            raise _Failure(f"redirect to {_shown(url)}: not https")
        try:
            link = parse_link(url, self.policy.allowed_hosts) if self.policy.allowed_hosts else parse_link(url)
        except LinkError as err:
            raise _Failure(f"redirect refused: {err}") from None
        if link.kind in EXPANDABLE:
            raise _Failure(f"redirect to {_shown(url)}: not an expansion host")
        if max(len(link.web_url or ""), len(link.mobile_url or "")) > _MAX_LINK_CHARS:
            raise _Failure(f"redirect to a link longer than {_MAX_LINK_CHARS} characters")
        return link

    async def _get(self, url: str, host: str) -> Answer:
        target, headers = url, {"Accept": "text/html,*/*;q=0.5", "User-Agent": "adlink-router"}
        if self.policy.upstream:  # tests: the same request, to a local server
            parts = urlsplit(url)
            target = f"{self.policy.upstream}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
            headers["Host"] = host
        self.requests += 1
        try:
            return await fetch(target, headers=headers, timeout=self.policy.timeout, max_bytes=self.policy.max_body,
                               client=self._http(), truncate=True, trust_env=False)
        except UpstreamTimeout:
            raise TimeoutError from None
        except BadRedirect as err:
            raise _Failure(f"{host} {err}") from None
        except UpstreamError as err:
            raise _Failure(f"{host}: {err}", host, upstream_fault=True, kind="upstream_error") from None

    @staticmethod
    def _host_of(url: str) -> str:
        return (urlsplit(url).hostname or "").lower()


def _shown(url: str) -> str:
    return repr(url if len(url) <= 80 else url[:80] + "…")


def with_expansion(ctx: Context, result: Expanded) -> Context:
    """The click, on the page its short link points at (expanded), or on the original link (failed)."""
    if result.link is None:
        return dataclasses.replace(ctx, expansion=Expansion.FAILED, expansion_reason=result.reason)
    original = ctx.link
    link = dataclasses.replace(result.link, token=original.token or result.link.token,
                               title=original.title or result.link.title)
    reason = f"expanded from {original.web_url}"
    return dataclasses.replace(ctx, link=link, expansion=Expansion.EXPANDED, expansion_reason=reason)
