"""What a click's answer and its line read of the HTTP request, read once from its ASGI scope."""

from __future__ import annotations

from time import perf_counter

from starlette.types import Scope

from router.decision.clients import MAX_UA_LENGTH
from router.serve.logs import correlation_id, new_request_id
from router.serve.outcomes import token_in
from router.serve.visitors import VisitorFrom, Visitors, visitor_cookie


class ClickRequest:
    """A click's request: its user agent, language, visitor, address, path and query, and its ids.

    `address` is the client's as the server gives it: behind a trusted proxy, uvicorn's proxy-headers
    middleware has put X-Forwarded-For's client there. The click's id is always made here; a trusted proxy's
    X-Request-ID (`trust_request_ids`) is kept as `correlation`. The visitor is the router's own
    (router.serve.visitors): the cookie's, when the router issued it, else a fresh one (`new_cookie` to set)."""

    __slots__ = ("_headers", "accept_language", "address", "correlation", "id", "new_cookie", "path", "query",
                 "route", "started", "ua", "visitor", "visitor_from")

    def __init__(self, scope: Scope, trust_request_ids: bool, visitors: Visitors) -> None:
        self.started = perf_counter()
        self._headers: list[tuple[bytes, bytes]] = scope["headers"]
        ua = accept_language = given_id = None
        cookies: list[bytes] = []
        for name, value in self._headers:
            if name == b"user-agent":
                ua = value.decode("latin-1")
            elif name == b"cookie":
                cookies.append(value)
            elif name == b"accept-language":
                accept_language = value.decode("latin-1")
            elif name == b"x-request-id":
                given_id = value
        self.id = new_request_id()
        self.correlation = correlation_id(given_id, trust_request_ids) if given_id else None
        self.accept_language = accept_language
        self.ua = ua = (ua or "")[:MAX_UA_LENGTH]
        self.path: str = scope["path"]
        # The route the click came in by (/go, /ad, /s): its metrics' label. A short link's click then reads
        # as its long link (`path`, `query`: router.serve.clicks).
        self.route = "/s" if self.path.startswith("/s/") else self.path
        self.query: str = scope["query_string"].decode("utf-8", "replace")
        client = scope.get("client")
        self.address: str = client[0] if client else ""
        visitor = visitors.read(visitor_cookie(cookies))
        self.new_cookie = ""
        if visitor is None:
            self.new_cookie, visitor = visitors.issue()
            self.visitor_from = VisitorFrom.NEW
        else:
            self.visitor_from = VisitorFrom.COOKIE
        self.visitor = visitor

    def headers_named(self, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        """The request's headers `names` (lower case, as the rules read them: RuleSet.headers_read), in that
        order, each with its value ("" when the request has none; a repeated header's values joined by ", ")."""
        found: dict[str, list[str]] = {}
        wanted = frozenset(names)
        for name, value in self._headers:
            key = name.decode("latin-1")
            if key in wanted:
                found.setdefault(key, []).append(value.decode("latin-1"))
        return tuple((name, ", ".join(found.get(name, ()))) for name in names)

    def token(self) -> str:
        """The click token its query carries (a landing page's own URL, opened again: a second jump), or ""."""
        return token_in(self.query)
