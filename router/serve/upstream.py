"""Every outbound connection the router makes: rules bundles (router.serve.remote) and short-link expansion
(router.serve.expand) fetch through here.

No other module in the package imports httpx or opens a socket (tests/test_architecture.py checks it), so
what the router can reach is decided here, in one place.

`fetch` is one bounded GET: one deadline for the whole exchange, a cap on the body, redirects never
followed. `pooled_client` is a long-lived client whose connections go to public addresses only: the host
is resolved first, every address must be public (`ipaddress` `is_global`), and the connection goes to
that checked address, so a DNS answer that changes between check and connect (rebinding) cannot slip a
private address in; TLS is still verified against the host name.

Errors of `fetch`, drawn once:

    UpstreamError     the exchange failed (refused, reset, bad TLS…); str() says how
     ├─ UpstreamTimeout  no complete answer within the deadline
     ├─ BadRedirect      the answer's Location is not a URL at all
     └─ BodyTooLarge     the body is over the cap (declared: the Content-Length, when it said so)
"""


from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

Transport = httpx.AsyncBaseTransport
"""What tests hand in instead of the network (httpx.MockTransport)."""
Client = httpx.AsyncClient
"""A client whose connections are kept and reused (`pooled_client`)."""


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


def pooled_client(timeout: float, *, transport: Transport | None = None, resolve: Resolver | None = None,
                  allow_loopback: bool = False, max_connections: int = 20) -> Client:
    """A client for `fetch(client=…)` to keep for the life of the process: no proxies, no environment,
    redirects not followed, connections only to public addresses (PublicOnlyTransport; `allow_loopback`
    for tests' local upstream), or through `transport` (tests: a fake upstream)."""
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False, transport=transport or
                             PublicOnlyTransport(PublicOnlyBackend(resolve, allow_loopback=allow_loopback),
                                                 max_connections=max_connections))

