"""Checks at the edge, before any routing (pure ASGI middleware): what a request may be at all.

- Header size: more than MAX_HEADER_BYTES of headers is a 431, whatever the HTTP server let through.
- Host names: the router never builds a URL from the request's Host, so a wrong Host can't redirect
  anyone; still, a deployment can say which names it serves (ROUTER_SERVER_NAMES), and any other Host
  is refused with a 400: no page, cookie or log line for traffic meant for someone else.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_HEADER_BYTES = 16 * 1024

SECURITY_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]


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


async def _refuse(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [*SECURITY_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class HeaderLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(key) + len(value) + 4 for key, value in scope["headers"])
            if size > self.max_bytes:
                await _refuse(send, 431, f"Request headers are {size} bytes; the limit is {self.max_bytes}.\n")
                return
        await self.app(scope, receive, send)


class ServerNames:
    def __init__(self, app: ASGIApp, names: tuple[str, ...]) -> None:
        self.app = app
        self.names = tuple(name.lower().rstrip(".") for name in names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.names:
            await self.app(scope, receive, send)
            return
        host = ""
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
                break
        if host_matches(host, self.names):
            await self.app(scope, receive, send)
            return
        await _refuse(send, 400, "This router does not serve that host name.\n")
