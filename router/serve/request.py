"""What a click's answer and its line read of the HTTP request, read once from its ASGI scope."""

from __future__ import annotations

from time import perf_counter

from starlette.requests import cookie_parser
from starlette.types import Scope

from router.decision.click import visitor_id
from router.decision.clients import MAX_UA_LENGTH
from router.serve.config import VISITOR_COOKIE
from router.serve.logs import request_id_from
from router.serve.outcomes import token_in


class ClickRequest:
    """A click's request: its user agent, language, visitor cookie and id, address, path and query.

    `address` is the client's as the server gives it: behind a trusted proxy, uvicorn's proxy-headers
    middleware has put X-Forwarded-For's client there. The request id is a trusted proxy's X-Request-ID
    (`trust_request_ids`), or one made here."""

    __slots__ = ("_headers", "accept_language", "address", "cookie", "id", "path", "query", "started", "ua", "visitor")

    def __init__(self, scope: Scope, trust_request_ids: bool) -> None:
        self.started = perf_counter()
        self._headers: list[tuple[bytes, bytes]] = scope["headers"]
        ua = cookie_header = accept_language = given_id = None
        for name, value in self._headers:
            if name == b"user-agent":
                ua = value.decode("latin-1")
            elif name == b"cookie":
                cookie_header = value.decode("latin-1")
            elif name == b"accept-language":
                accept_language = value.decode("latin-1")
            elif name == b"x-request-id":
                given_id = value
        self.id = request_id_from(given_id, trust_request_ids)
        self.accept_language = accept_language
        self.ua = ua = (ua or "")[:MAX_UA_LENGTH]
        self.path: str = scope["path"]
        self.query: str = scope["query_string"].decode("utf-8", "replace")
        self.cookie = cookie = cookie_parser(cookie_header).get(VISITOR_COOKIE) if cookie_header else None
        client = scope.get("client")
        self.address: str = client[0] if client else ""
        self.visitor = visitor_id(cookie, self.address, ua)

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
