"""The short links' JSON API: `links_api(...)` is a Starlette app, mounted at /api by router.serve.web.

    POST   /links          create one link              201, Location: …/links/<code>
    GET    /links          list (tag, advertiser, cursor, limit)
    GET    /links/<code>   read one                     PATCH: change some fields; DELETE: 204
    POST   /links:batch    create up to 1000, all or nothing
    GET    /openapi.json   the OpenAPI 3.1 document (router.serve.openapi), the only one without a token

This module only translates: it reads the token, the query and the body, calls LinkAdmin (router.serve.
link_admin: every check of a link and every scope rule lives there, shared with the CLI) and turns its answers
and exceptions into JSON. The store is synchronous, so the token lookup and every LinkAdmin call run in a
worker thread: the event loop never waits on the database.

Every answer is JSON (but a 204) and carries SECURITY_HEADERS (Cache-Control: no-store among them). Failed
authentications are counted per client network (router.serve.limits.network_of); past AUTH_FAILURES within
AUTH_WINDOW seconds the network is refused with 429, valid token or not, so that a guesser can't tell when it
has hit one. Tokens are never logged nor echoed; the database's errors are logged (by its display URL, without
its password), never answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from router.decision.short_links import LinkFieldErrors, is_code_shaped
from router.serve.headers import SECURITY_HEADERS
from router.serve.limits import network_of
from router.serve.link_admin import Actor, Forbidden, LinkAdmin, NotFound, SlugTaken
from router.serve.link_store import MAX_LIST, SCOPES, LinkStore, StoreError
from router.serve.openapi import MAX_BODY_BYTES, openapi_document

__all__ = ["AUTH_FAILURES", "AUTH_WINDOW", "MAX_BODY_BYTES", "FailedAuths", "links_api"]

log = logging.getLogger("router")

AUTH_FAILURES = 20  # failed authentications a client network may make …
AUTH_WINDOW = 60.0  # … within this many seconds of its first one
_NETWORKS_KEPT = 10_000  # networks whose failures are remembered at most (the table stays bounded)
_MAX_TOKEN_CHARS = 256  # a token is 64 characters; anything much longer is not looked up at all
_LIST_PARAMETERS = ("tag", "advertiser", "cursor", "limit")
_LIMIT_RE = re.compile(r"[0-9]{1,7}")
_JSON_TYPES = {list: "a list", str: "text", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}
_STORE_DOWN = "the links' database is not answering; try again"
_STORE_RETRY_SECONDS = "5"


class _Refusal(Exception):
    """An answer other than LinkAdmin's: status, sentence, and the fields it is about."""

    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None,
                 fields: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.headers, self.fields = status, error, headers or {}, fields


class FailedAuths:
    """Failed authentications per client network. A network's window starts at its first failure; once it
    holds `limit` failures the network is refused until the window ends. A success does not reset the count
    (else a client with one valid token could interleave it with guesses)."""

    def __init__(self, limit: int = AUTH_FAILURES, window: float = AUTH_WINDOW,
                 clock: Callable[[], float] = time.monotonic, kept: int = _NETWORKS_KEPT) -> None:
        self.limit, self.window, self._clock, self._kept = limit, window, clock, kept
        self._seen: dict[str, tuple[float, int]] = {}  # network -> (its window's start, failures), oldest first

    def wait(self, network: str) -> int | None:
        """Seconds until `network` may try again, or None when it may now."""
        entry = self._seen.get(network)
        if entry is None:
            return None
        left = entry[0] + self.window - self._clock()
        if left <= 0:
            del self._seen[network]
            return None
        return max(1, math.ceil(left)) if entry[1] >= self.limit else None

    def failed(self, network: str) -> None:
        now = self._clock()
        entry = self._seen.get(network)
        if entry is not None and now - entry[0] < self.window:
            self._seen[network] = (entry[0], entry[1] + 1)  # in place: the table stays in order of start
            if entry[1] + 1 == self.limit:
                log.warning("links API: %d failed authentications from %s; refusing it for up to %d s",
                            self.limit, network, self.window)
            return
        self._seen.pop(network, None)
        if len(self._seen) >= self._kept:
            self._prune(now)
        self._seen[network] = (now, 1)

    def _prune(self, now: float) -> None:
        for network in [n for n, (start, _) in self._seen.items() if now - start >= self.window]:
            del self._seen[network]
        if len(self._seen) >= self._kept:  # a flood of live windows: the oldest quarter goes, the closest to ending
            for network in list(self._seen)[: self._kept // 4 or 1]:
                del self._seen[network]


def _json(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), status,
                        headers=headers, media_type="application/json")
    response.raw_headers.extend(SECURITY_HEADERS)
    return response


class _NotJson(ValueError):
    """NaN, Infinity and -Infinity: Python's json reads them, JSON has no such values."""


def _no_constant(name: str) -> NoReturn:
    raise _NotJson(f"{name} is not JSON")


def _bearer(header: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>` (the scheme in any case), or None."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class _Api:
    """The routes: each reads the token first, then the query or body, then calls LinkAdmin in a thread."""

    def __init__(self, admin: LinkAdmin, store: LinkStore, failures: FailedAuths, ipv6_prefix: int) -> None:
        self.admin, self.store, self.failures, self.ipv6_prefix = admin, store, failures, ipv6_prefix

    async def _actor(self, request: Request) -> Actor:
        client = request.scope.get("client")
        network = network_of(client[0] if client else "", self.ipv6_prefix)
        # Checked before the lookup, counted after it: guesses sent all at once overshoot the limit by their
        # number, once (a 256-bit secret is not guessed either way); counting before would refuse busy clients.
        wait = self.failures.wait(network)
        if wait is not None:
            raise _Refusal(429, f"too many failed authentications from your address; try again in {wait} s",
                           {"Retry-After": str(wait)})
        token = _bearer(request.headers.get("authorization"))
        if token is None:
            self.failures.failed(network)
            raise _Refusal(401, "missing token: send Authorization: Bearer <token>",
                           {"WWW-Authenticate": 'Bearer realm="links"'})
        record = await asyncio.to_thread(self.store.token_for, token) if len(token) <= _MAX_TOKEN_CHARS else None
        if record is None or record["scope"] not in SCOPES:  # unknown, revoked and expired alike
            self.failures.failed(network)
            raise _Refusal(401, "the token is not valid",
                           {"WWW-Authenticate": 'Bearer realm="links", error="invalid_token"'})
        return Actor(record["id"], record["scope"], record["advertiser"])

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        """The JSON object a POST or PATCH sends, read a chunk at a time and never past MAX_BODY_BYTES."""
        if request.headers.get("content-type", "").partition(";")[0].strip().lower() != "application/json":
            raise _Refusal(415, "send the body as JSON, with Content-Type: application/json")
        too_large = _Refusal(413, f"the body is over {MAX_BODY_BYTES} bytes (1 MB), the limit; send fewer links "
                                  "a call", fields={"body": f"over the limit of {MAX_BODY_BYTES} bytes"})
        declared = request.headers.get("content-length", "").strip()
        if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise too_large
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise too_large
                chunks.append(chunk)
        except ClientDisconnect:
            raise _Refusal(400, "the body was cut off") from None
        try:
            data = json.loads(b"".join(chunks).decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError as error:
            problem = f"the body is not UTF-8 text (byte {error.start})"
        except json.JSONDecodeError as error:
            problem = (f"the body is not JSON: {error.msg} at line {error.lineno}, column {error.colno} "
                       f"(character {error.pos})")
        except _NotJson as error:
            problem = f"the body is not JSON: {error}"
        except ValueError:  # Python refuses to read a whole number of more than 4300 digits
            problem = "the body is not JSON this API reads: a number has too many digits"
        except RecursionError:
            problem = "the body is not JSON this API reads: it is nested too deeply"
        else:
            if isinstance(data, dict):
                return data
            problem = f"expected a JSON object of link fields, got {_JSON_TYPES.get(type(data), 'a value')}"
        raise _Refusal(400, problem, fields={"body": problem})

    # --- the routes -------------------------------------------------------------------------------------------

    async def links(self, request: Request) -> Response:
        actor = await self._actor(request)
        if request.method == "POST":
            data = await self._body(request)
            link = await asyncio.to_thread(self.admin.create, data, actor)
            location = f"{request.scope.get('root_path', '')}/links/{link['code']}"
            return _json(link, 201, {"Location": location})
        tag, advertiser, cursor, limit = _list_query(request)
        items, following = await asyncio.to_thread(
            lambda: self.admin.list(actor, tag=tag, advertiser=advertiser, cursor=cursor, limit=limit))
        return _json({"links": items, "next_cursor": following})

    async def batch(self, request: Request) -> Response:
        actor = await self._actor(request)
        data = await self._body(request)
        unknown = {name[:60]: 'unknown field; the body is {"links": [ … ]}'
                   for name in [name for name in data if name != "links"][:10]}
        if unknown:
            raise LinkFieldErrors(unknown, 'expected {"links": [ … ]} and nothing else')
        links = await asyncio.to_thread(self.admin.create_batch, data.get("links"), actor)
        return _json({"links": links}, 201)

    async def link(self, request: Request) -> Response:
        actor = await self._actor(request)
        code = request.path_params["code"]
        if not is_code_shaped(code):  # no link could have it: no lookup
            raise NotFound(code)
        if request.method == "PATCH":
            data = await self._body(request)
            return _json(await asyncio.to_thread(self.admin.update, code, data, actor))
        if request.method == "DELETE":
            await asyncio.to_thread(self.admin.delete, code, actor)
            response = Response(status_code=204)
            response.raw_headers.extend(SECURITY_HEADERS)
            return response
        return _json(await asyncio.to_thread(self.admin.get, code, actor))

    @staticmethod
    async def openapi(request: Request) -> Response:
        return _json(openapi_document(request.scope.get("root_path", "")))


def _list_query(request: Request) -> tuple[str | None, str | None, str | None, int]:
    """tag, advertiser, cursor and limit from the query (empty: not given); unknown parameters refused."""
    query = request.query_params
    errors = {name[:60]: f"unknown query parameter; the parameters are {', '.join(_LIST_PARAMETERS)}"
              for name in [name for name in query if name not in _LIST_PARAMETERS][:10]}
    limit = query.get("limit") or "100"
    if not _LIMIT_RE.fullmatch(limit) or not 0 < int(limit) <= MAX_LIST:
        errors["limit"] = f"give a whole number from 1 to {MAX_LIST}"
    cursor = query.get("cursor") or None
    if cursor is not None and not is_code_shaped(cursor):
        errors["cursor"] = "not a cursor: give the next_cursor of the page before"
    if errors:
        raise LinkFieldErrors(errors, "bad query parameter")
    return query.get("tag") or None, query.get("advertiser") or None, cursor, int(limit)


async def _error(request: Request, exc: Exception) -> Response:
    """Every refusal as JSON: the route's own, LinkAdmin's, the store's and Starlette's (404, 405)."""
    if isinstance(exc, _Refusal):
        body: dict[str, Any] = {"error": exc.error}
        if exc.fields:
            body["fields"] = exc.fields
        return _json(body, exc.status, exc.headers)
    if isinstance(exc, LinkFieldErrors):
        return _json(exc.to_json(), 409 if isinstance(exc, SlugTaken) else 400)
    if isinstance(exc, Forbidden):
        return _json({"error": str(exc)}, 403)
    if isinstance(exc, NotFound):
        return _json({"error": str(exc)}, 404)
    if isinstance(exc, StoreError):
        log.warning("links API: %s", exc)  # the display URL and the driver's reason, never the password
        return _json({"error": _STORE_DOWN}, 503, {"Retry-After": _STORE_RETRY_SECONDS})
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return _json({"error": "no such API path; the paths are in /api/openapi.json"}, 404)
        if exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            return _json({"error": f"{request.method} is not allowed here; use {allow}"}, 405, {"Allow": allow})
        return _json({"error": exc.detail}, exc.status_code, exc.headers)
    return _json({"error": "internal error"}, 500)  # Starlette logs it and raises it on


def links_api(admin: LinkAdmin, store: LinkStore, *, ipv6_prefix: int = 64,
              clock: Callable[[], float] = time.monotonic) -> Starlette:
    """The API as a Starlette app without a lifespan, for `Mount("/api", app=links_api(...))`. `store` looks
    tokens up (the store `admin` writes to); `ipv6_prefix` and `clock` are those of the failed
    authentications' count."""
    api = _Api(admin, store, FailedAuths(clock=clock), ipv6_prefix)
    app = Starlette(
        routes=[
            Route("/links", api.links, methods=["GET", "POST"]),
            Route("/links:batch", api.batch, methods=["POST"]),
            Route("/links/{code}", api.link, methods=["GET", "PATCH", "DELETE"]),
            Route("/openapi.json", api.openapi, methods=["GET"]),
        ],
        exception_handlers={kind: _error for kind in (_Refusal, LinkFieldErrors, Forbidden, NotFound, StoreError,
                                                       HTTPException, Exception)},
    )
    # Starlette would answer /links/ with a redirect built from the request's Host header: refused instead.
    app.router.redirect_slashes = False
    return app
