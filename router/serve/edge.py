"""Checks at the edge, before any routing: what a request may be at all.

- Header size: more than MAX_HEADER_BYTES of headers is a 431, whatever the HTTP server let through.
- Host names: the router never builds a URL from the request's Host, so a wrong Host can't redirect
  anyone; still, a deployment can say which names it serves (ROUTER_SERVER_NAMES), and any other Host
  is refused with a 400: no page, cookie or log line for traffic meant for someone else. The health
  probes (/healthz, /readyz) and /metrics answer whatever the Host: probes and Prometheus call by address.
- Who asks: /readyz shows its details (pid, where the rules come from, a rejected reload's errors) only
  on the metrics port to the networks that may scrape it, or, without a metrics port, to this machine
  itself (`private_asker`); anyone else gets a status and a reason.
"""

from __future__ import annotations

import ipaddress

from starlette.types import Scope, Send

from router.serve.config import Network, address_in
from router.serve.headers import SECURITY_HEADERS

MAX_HEADER_BYTES = 16 * 1024
# Probes and Prometheus call these by address (a container's HEALTHCHECK on 127.0.0.1, Kubernetes and
# Prometheus on the pod's IP), with whatever Host that gives: they answer whatever the Host, and say
# nothing about any link (/metrics has its own check on who asks: router.serve.web).
ADDRESSED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_REFUSAL_HEADERS = [*SECURITY_HEADERS, (b"content-type", b"text/plain; charset=utf-8")]


def host_matches(host: str, names: tuple[str, ...]) -> bool:
    """`go.example.com` exactly, or any subdomain for a `*.example.com` entry; the port is ignored."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip().lower().rstrip(".")
    for allowed in names:
        if allowed.startswith("*."):
            if name.endswith(allowed[1:]) and len(name) > len(allowed) - 1:
                return True
        elif name == allowed:
            return True
    return False


def refusal(scope: Scope, names: tuple[str, ...], max_bytes: int = MAX_HEADER_BYTES) -> tuple[int, str] | None:
    """Why an HTTP request is refused at the edge (its status and a sentence), or None when it may go on.

    A plain function the app calls once per request, not a middleware layer per check: each layer of
    ASGI middleware costs every click a coroutine call.
    """
    headers = scope["headers"]
    size = 0
    for key, value in headers:
        size += len(key) + len(value) + 4
    if size > max_bytes:
        return 431, f"Request headers are {size} bytes; the limit is {max_bytes}.\n"
    if names and scope["path"] not in ADDRESSED_PATHS:
        host = ""
        for key, value in headers:
            if key == b"host":
                host = value.decode("latin-1")
                break
        if not host_matches(host, names):
            return 400, "This router does not serve that host name.\n"
    return None


# A proxy in front (even one on this machine) says whom it forwards for: such a request is not the machine's own.
_FORWARDING_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})


def private_asker(scope: Scope, metrics_port: int | None, metrics_from: tuple[Network, ...],
                  behind_proxy: bool) -> bool:
    """Whether a request may see what only operators should. With a metrics port: on that port, from the
    networks that may scrape /metrics (ROUTER_METRICS_FROM), and nowhere else. Without one: straight from this
    machine (a loopback address and no proxy's forwarding header), unless a proxy is declared in front
    (ROUTER_TRUSTED_PROXIES): a proxy on this machine that adds no such header (nginx's bare proxy_pass, a TCP
    proxy, a mesh's sidecar) would make every client look local."""
    client = scope.get("client")
    if metrics_port:
        server = scope.get("server")
        return (server is not None and server[1] == metrics_port and client is not None
                and bool(metrics_from) and address_in(client[0], metrics_from))
    if behind_proxy:
        return False
    try:
        loopback = client is not None and ipaddress.ip_address(client[0]).is_loopback
    except ValueError:  # a Unix socket's peer, or a name: not known to be this machine
        return False
    return loopback and not any(name in _FORWARDING_HEADERS for name, _ in scope["headers"])


def server_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """The configured names as `host_matches` compares them."""
    return tuple(name.lower().rstrip(".") for name in names)


async def refuse(send: Send, status: int, text: str) -> None:
    """Answer `status` with `text`, the refusal's reason, as plain text."""
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [*_REFUSAL_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
