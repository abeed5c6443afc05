"""Every outbound connection the router makes: rules bundles (router.serve.remote) and short-link expansion.

No other module in the package imports httpx or opens a socket (a test greps for it), so what the
router can reach is decided here, in one place.

`fetch` is one bounded GET: one deadline for the whole exchange, a cap on the body, redirects never
followed. `Expander` turns a share short link (`m.tb.cn`, `e.tb.cn`) or an affiliate link
(`s.click.taobao.com`) into the page it points at:

- only hosts on the expansion allowlist are contacted, over https, on their default port;
- redirects are followed by hand, at most `max_hops`; every Location is re-validated: https, and either
  another expansion host (followed) or a Taobao/Tmall page that `router.decision.links.parse_link` accepts (the
  answer, never fetched); a URL seen twice is a loop;
- a 200 page (Taobao's short links answer with HTML that names the item) is read up to `max_body` bytes,
  and only an item URL that `parse_link` accepts is taken from it;
- the host is resolved first, every address must be public (`ipaddress` `is_global`), and the
  connection goes to that checked address, so a DNS answer that changes between check and connect
  (rebinding) cannot slip a private address in; TLS is still verified against the host name;
- one client per expander for the life of the process: one TLS context, connections kept alive and
  reused, at most `max_connections` open to the expansion hosts at once;
- one deadline for the whole chain; results cached (successes `ok_ttl`, failures `failure_ttl`),
  bounded; concurrent clicks for one link share one fetch; a circuit breaker per host stops calls to an
  upstream that keeps failing (open after `breaker_failures` in a row, one trial call after
  `breaker_cooldown`).

Expansion never raises: a failure is an `Expanded` without a link and with a reason, and the click is
decided on the original link (`expansion: failed` in rules).

Errors of `fetch`, drawn once:

    UpstreamError     the exchange failed (refused, reset, bad TLS…); str() says how
     ├─ UpstreamTimeout  no complete answer within the deadline
     ├─ BadRedirect      the answer's Location is not a URL at all
     └─ BodyTooLarge     the body is over the cap (declared: the Content-Length, when it said so)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import ipaddress
import logging
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from router.decision.links import LinkError, parse_link
from router.decision.types import EXPANDABLE, Context, Expansion, Link, LinkKind

log = logging.getLogger("router.upstream")

Transport = httpx.AsyncBaseTransport
"""What tests hand in instead of the network (httpx.MockTransport)."""

DEFAULT_EXPAND_HOSTS = ("m.tb.cn", "e.tb.cn", "s.click.taobao.com")
DEFAULT_EXPAND_TIMEOUT = 1.5


class UpstreamError(Exception):
    """An outbound exchange failed; the message says how, in a few words."""


class UpstreamTimeout(UpstreamError):
    pass


class BadRedirect(UpstreamError):
    pass


class BodyTooLarge(UpstreamError):
    def __init__(self, declared: str | None) -> None:
        super().__init__(f"body over the limit (Content-Length: {declared})" if declared else "body over the limit")
        self.declared = declared


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes  # empty unless the status is one of `body_for`
    truncated: bool = False  # the body was cut at the cap (truncate=True)


async def fetch(
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: float,
    max_bytes: int,
    transport: Transport | None = None,
    body_for: Iterable[int] = (200,),
    truncate: bool = False,
    trust_env: bool = True,
    client: httpx.AsyncClient | None = None,
) -> Answer:
    """One GET, redirects not followed, one deadline for connect, answer and body.

    The body is read only for statuses in `body_for`; past `max_bytes` it raises BodyTooLarge, or with
    `truncate` keeps the first `max_bytes` and stops reading. `trust_env`: honour proxy variables
    (rules bundles may sit behind an egress proxy; expansion never uses one). `client`: a long-lived
    client whose connections are reused (the expander's); without one, a client for this request alone.
    """
    wanted = frozenset(body_for)
    try:
        # One deadline for the whole exchange: a server trickling bytes never trips a per-read timeout.
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(asyncio.timeout(timeout))
            if client is None:
                client = await stack.enter_async_context(httpx.AsyncClient(
                    timeout=timeout, follow_redirects=False, transport=transport, trust_env=trust_env))
            response = await stack.enter_async_context(client.stream("GET", url, headers=dict(headers)))
            body = bytearray()
            truncated = False
            length = response.headers.get("content-length", "")
            if response.status_code not in wanted and length.isdigit() and int(length) <= _DRAINED_BYTES:
                # A redirect's small body, read and dropped: a connection whose answer was read to its end
                # can carry the next request (a pooled client's connections are reused).
                await response.aread()
            elif response.status_code in wanted:
                if not truncate and length.isdigit() and int(length) > max_bytes:
                    raise BodyTooLarge(length)
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        if not truncate:
                            raise BodyTooLarge(None)
                        del body[max_bytes:]
                        truncated = True
                        break
            return Answer(response.status_code, response.reason_phrase, response.headers, bytes(body), truncated)
    except (TimeoutError, httpx.TimeoutException):
        raise UpstreamTimeout(f"no complete answer within {timeout:g} s") from None
    except httpx.InvalidURL as err:  # httpx reads a Location even when it does not follow it
        raise BadRedirect(f"answered a redirect that is not a usable URL ({err})") from None
    except httpx.HTTPError as err:
        raise UpstreamError(str(err) or type(err).__name__) from None


_DRAINED_BYTES = 16 * 1024  # an unwanted body up to this size is read to the end so the connection stays usable


# --- connections only to public addresses -----------------------------------------------------------

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def _system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_IPV6_WRAPPING_IPV4 = tuple(
    ipaddress.ip_network(net) for net in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "::/96")
)


def address_refusal(address: str, allow_loopback: bool = False) -> str | None:
    """Why an address may not be contacted, or None when it is public (or loopback, when allowed)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif not ip.is_loopback and any(ip in net for net in _IPV6_WRAPPING_IPV4):
            # NAT64, 6to4 and IPv4-compatible forms carry an IPv4 address that a translator may reach:
            # on a NAT64 network 64:ff9b::a9fe:a9fe is the cloud metadata address.
            return f"{address} wraps an IPv4 address (NAT64, 6to4 or IPv4-compatible)"
    if ip.is_global:
        return None
    if allow_loopback and ip.is_loopback:
        return None
    return f"{address} is not a public address"


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host itself, refuses any non-public address, and connects to the address it checked."""

    def __init__(self, resolve: Resolver | None = None, allow_loopback: bool = False) -> None:
        self._resolve = resolve or _system_resolve
        self._allow_loopback = allow_loopback
        self._inner = httpcore.AnyIOBackend()

    async def checked_address(self, host: str, port: int) -> str:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = await self._resolve(host, port)
            except OSError as err:
                raise httpcore.ConnectError(f"{host} does not resolve: {err}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        for address in addresses:  # one private answer is enough to distrust the name
            refusal = address_refusal(address, self._allow_loopback)
            if refusal:
                raise httpcore.ConnectError(f"{host} resolves to {refusal}; not contacted")
        return addresses[0]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self.checked_address(host, port)
        return await self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: object = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are never used for expansion")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PublicOnlyTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool built on PublicOnlyBackend (no proxies, no env).

    One per expander, for the life of the process: one TLS context, connections to an upstream kept
    alive and reused (a connection stays with the address that was checked when it opened), and at most
    `max_connections` open at once; a request beyond them waits for one, within its own deadline.
    """

    def __init__(self, backend: PublicOnlyBackend, max_connections: int = 20, keepalive_seconds: float = 30.0) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool in __init__ with no way to pass a network backend: build it again with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_seconds,
            network_backend=backend,
        )


# --- short-link expansion --------------------------------------------------------------------------


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
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            transport = self._transport or PublicOnlyTransport(
                PublicOnlyBackend(self._resolve, allow_loopback=bool(self.policy.upstream)),
                max_connections=self.policy.max_connections,
            )
            self._client = httpx.AsyncClient(timeout=self.policy.timeout, follow_redirects=False, trust_env=False,
                                             transport=transport)
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
