"""The HTTP face: /go and /ad click targets, /healthz and /readyz.

Clicks are served in plain ASGI (`Clicks`), everything else by a small Starlette app; only this module
touches Starlette. A click is read into a Context (router.decision.click), decided
(router.decision.decide), or both taken from the answers kept for repeated clicks
(router.decision.answers), and turned into a response here; each click is logged as one JSON line
whose `request`, `ua` and `at` fields are exactly what `python -m router explain --batch` replays
(with `visitor`, so rollout decisions replay too), and whose `rules` is the version that decided it.

The rules being served live in an ActiveRules (router.serve.reload), which the app's
lifespan keeps up to date; each click reads it once and finishes on that set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from time import perf_counter
from typing import IO

from starlette.applications import Starlette
from starlette.requests import Request, cookie_parser
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from router.decision.answers import Answers
from router.decision.click import BadClick, DeferredReplays, as_replayed, read_click, visitor_id
from router.decision.clients import MAX_UA_LENGTH, parse_client, tables_built, warm_up
from router.decision.decide import rollout_arms
from router.decision.recent import Recent
from router.decision.rules import RuleSet
from router.decision.signing import ClickReplays
from router.decision.types import Action, Client, Context, Decision
from router.serve.click_token import TOKEN_TTL_SECONDS, make_token
from router.serve.clicklog import ClickLog, click_time
from router.serve.config import VISITOR_COOKIE, Settings, address_in
from router.serve.drain import DRAIN
from router.serve.edge import ADDRESSED_PATHS, refusal, refuse, server_names
from router.serve.expand import EXPANSION_RESULTS, Expander, ExpandPolicy, with_expansion
from router.serve.limits import ClickLimits
from router.serve.logs import ACCESS_LOGGER, click_stream, configure_logging, request_id_from
from router.serve.metrics import FLUSH_SECONDS, Metrics, Snapshot, render
from router.serve.outcomes import ESCAPED, EVENTS, IGNORED_REASONS, OUTCOME_PATH, Outcomes, arms_text
from router.serve.pages import (
    LANGUAGES,
    SECURITY_HEADERS,
    choose_language,
    content_security_policy,
    environment,
    landing_context,
    landing_key,
    message_context,
    new_nonce,
)
from router.serve.reload import ActiveRules, Reloader, rules_source
from router.serve.shared import FleetExpansions, SharedStore, click_budget, replay_ttl
from router.serve.sources import RulesSource

log = logging.getLogger("router")
access_log = logging.getLogger(ACCESS_LOGGER)

_VISITOR_MAX_AGE = 365 * 24 * 3600
_CLICK_PATHS = frozenset({"/go", "/ad"})
_KNOWN_ROUTES = frozenset({*_CLICK_PATHS, OUTCOME_PATH, "/healthz", "/readyz", "/metrics"})  # the route label's values
_BLOCK, _LANDING = Action.BLOCK, Action.LANDING
_SECURITY = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
_REDIRECT_HEADERS = [*_SECURITY, (b"content-length", b"0")]
_COOKIE_ATTRIBUTES = f"; HttpOnly; Max-Age={_VISITOR_MAX_AGE}; Path=/; SameSite=lax".encode()


# A landing page is rendered once per decision and language with this placeholder where the nonce goes;
# each response puts in a fresh nonce (_template). The placeholder is random per process, so no
# input can contain it (escaping aside, a link would have to guess 128 bits).
_NONCE_PLACEHOLDER = new_nonce().encode()
# Likewise the click token (router.serve.click_token), made per landing response.
_TOKEN_PLACEHOLDER = ("token-" + new_nonce()).encode()
# A page's headers but its policy's nonces and its length, made once: per language, and for every page.
_CSP = content_security_policy("%s").encode()  # the policy has no `%` of its own: its two nonces are the slots
_CONTENT_LANGUAGE = {lang: (b"content-language", lang.encode()) for lang in LANGUAGES}
_PAGE_HEADERS = [(b"vary", b"Accept-Language"), (b"content-type", b"text/html; charset=utf-8")]
_RENDERED_LIMIT = 512  # landing pages kept rendered (each ~9 KB: ~4.5 MB at most); the used ones stay
_LANGUAGE_LIMIT = 256  # Accept-Language values remembered with the language they choose
_LANGUAGE_KEY_CHARS = 200  # longer values are read each time, never kept


class Pages:
    """Renders the landing and message pages from their templates, each with a fresh CSP nonce.

    A landing page is rendered once per `landing_key` (what the page shows: link, the client's kind,
    forwarded ids, the decision's page options, language) and reused with a new nonce and token (one
    bytes formatting).
    """

    def __init__(self, settings: Settings) -> None:
        self.env = environment()
        self.fallback_delay_ms = settings.fallback_delay_ms
        self._rendered: Recent[tuple[object, ...], bytes] = Recent(_RENDERED_LIMIT)
        self._languages: dict[str | None, str] = {}

    def language(self, accept_language: str | None) -> str:
        lang = self._languages.get(accept_language)
        if lang is None:
            lang = choose_language(accept_language)
            if accept_language is None or len(accept_language) <= _LANGUAGE_KEY_CHARS:  # browsers' are short
                if len(self._languages) >= _LANGUAGE_LIMIT:
                    self._languages.clear()
                self._languages[accept_language] = lang
        return lang

    def _page(self, status: int, body: bytes, nonce: bytes, lang: str) -> Page:
        headers = [*_SECURITY, (b"content-security-policy", _CSP % (nonce, nonce)), _CONTENT_LANGUAGE[lang],
                   *_PAGE_HEADERS, (b"content-length", b"%d" % len(body))]
        return Page(status, headers, body)

    def landing(self, accept_language: str | None, ctx: Context, decision: Decision, token: str = "") -> Page:
        """The landing page; `token` (the click's, router.serve.click_token) goes into its script's settings,
        for the outcome beacons and the page's own URL."""
        lang = self.language(accept_language)
        key = landing_key(ctx, decision, lang)
        template = self._rendered.get(key)
        if template is None:
            context = landing_context(ctx, decision, lang, _NONCE_PLACEHOLDER.decode(), self.fallback_delay_ms,
                                      _TOKEN_PLACEHOLDER.decode(), OUTCOME_PATH)
            template = _template(self.env.get_template("landing.html").render(context).encode())
            self._rendered.put(key, template)
        nonce = new_nonce().encode()
        # A token is base64url, a key id and dots: nothing that needs escaping in JSON or HTML.
        body = template % {b"n": nonce, b"t": token.encode()}
        return self._page(200, body, nonce, lang)

    def message(self, accept_language: str | None, status: int, message: str, *, technical: bool = False,
                messages: tuple[tuple[str, str], ...] = ()) -> Page:
        """A 4xx page. `messages`: a block rule's message per language (the reader's is shown); `technical`:
        `message` is the router's own reason for input it can't use, shown folded."""
        nonce = new_nonce()
        lang = self.language(accept_language)
        if messages:
            message = dict(messages).get(lang, message)
        body = self.env.get_template("message.html").render(
            message_context(status, message, lang, nonce, technical))
        return self._page(status, body.encode(), nonce.encode(), lang)

    def respond(self, accept_language: str | None, ctx: Context, decision: Decision, token: str = "") -> Page:
        """The answer to a decided click; a landing page carries the click's `token`."""
        if decision.action in (Action.APP, Action.WEB) and decision.location:
            # The location is built by the router from parsed parts, never echoed from input.
            return Page(302, [(b"location", decision.location.encode()), *_REDIRECT_HEADERS], b"")
        if decision.action is Action.BLOCK:
            return self.message(accept_language, decision.status, decision.reason, messages=decision.messages)
        return self.landing(accept_language, ctx, decision, token)

    def response(self, request: Request, status: int, message: str) -> Response:
        """A message page as a Starlette response, for the routes Starlette serves (404, 405)."""
        page = self.message(request.headers.get("accept-language"), status, message)
        return Response(page.body, status_code=page.status, headers={
            name.decode(): value.decode() for name, value in page.headers if name != b"content-length"})


def _template(page: bytes) -> bytes:
    """A rendered page as a bytes %-template: its own `%` doubled, each placeholder a named slot (`%(n)s` the
    nonce, `%(t)s` the token), so that a response's page is one formatting call, in C."""
    return (page.replace(b"%", b"%%").replace(_NONCE_PLACEHOLDER, b"%(n)s")
            .replace(_TOKEN_PLACEHOLDER, b"%(t)s"))


class Page:
    """A response ready to send: status, header pairs, body. Each Page is built for one response, its
    headers list its own: the click handler adds the request id and cookie to it in place."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Request:
    """What a click's answer and its line read of the request, read once from its scope."""

    __slots__ = ("accept_language", "address", "cookie", "id", "path", "query", "started", "ua", "visitor")

    def __init__(self, scope: Scope, trust_request_ids: bool) -> None:
        self.started = perf_counter()
        ua = cookie_header = accept_language = given_id = None
        for name, value in scope["headers"]:
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
        self.query = scope["query_string"].decode("utf-8", "replace")
        self.cookie = cookie = cookie_parser(cookie_header).get(VISITOR_COOKIE) if cookie_header else None
        client = scope.get("client")
        self.address: str = client[0] if client else ""
        self.visitor = visitor_id(cookie, self.address, ua)


class _Answered:
    """A click's page and what its line says of it."""

    __slots__ = ("action", "arms", "ctx", "page", "reason", "rule")

    def __init__(self, page: Page, action: str, rule: str, ctx: Context | None,
                 arms: tuple[tuple[str, bool], ...] = (), reason: str = "") -> None:
        self.page, self.action, self.rule, self.ctx, self.arms, self.reason = page, action, rule, ctx, arms, reason



class Clicks:
    """/go and /ad in plain ASGI: no routing, middleware stack or request objects between a click and its
    answer (the edge checks wrap the whole app). Reads the click, decides it on the rules being served,
    answers, and logs one line."""

    def __init__(self, settings: Settings, active: ActiveRules, pages: Pages, expander: Expander | None,
                 replays: ClickReplays, click_log: ClickLog, metrics: Metrics,
                 shared: SharedStore | None = None, outcomes: Outcomes | None = None) -> None:
        self.settings = settings
        self.outcomes = outcomes or Outcomes(lambda: settings.signing_keys, click_log, shared)
        self.metrics = metrics
        self.shared = shared  # the fleet's store (router.serve.shared): replays seen on any instance
        limits = ClickLimits(settings.limit_per_address, settings.limit_per_ad_link, shared)
        self.limits = limits if limits.active else None  # router.serve.limits; off by default
        self.kept_decisions, self.new_decisions = metrics.decisions["kept"], metrics.decisions["decided"]
        self.active = active
        self.pages = pages
        self.expander = expander
        self.replays = replays
        self.click_log = click_log
        # An X-Request-ID is believed from a trusted proxy only: with ROUTER_TRUSTED_PROXIES set, a proxy
        # fronts the router and sets (or overwrites) it; otherwise every request gets one made here.
        self.trust_request_ids = bool(settings.trusted_proxies)
        self.answers = Answers()  # clicks that repeat skip reading and deciding (router.decision.answers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = _Request(scope, self.trust_request_ids)
        limits = self.limits
        if limits is not None:
            limited = await limits.address_refusal(request.address)
            if limited is not None:
                await self._refuse_limited(scope, send, request, *limited)
                return
        now = time.time()
        at = datetime.fromtimestamp(now, UTC)
        ruleset = self.active.current  # once: a reload during this click does not change what decides it
        client = parse_client(request.ua)
        kept = self.answers.get(ruleset, request.path, request.query, client)
        ctx: Context | None = None
        waited = 0.0
        failure: Exception | None = None
        if kept is None:
            try:
                if self.shared is not None and request.path == "/ad":
                    ctx = await self._read_ad_shared(request, at, client)
                else:
                    ctx = self._read(request, at, client, self.replays)
                if limits is not None and ctx.ad is not None and ctx.ad.verified:
                    ad = ctx.ad
                    limited = await limits.ad_link_refusal(
                        f"{ad.source}\n{ad.advertiser}\n{ad.campaign}\n{ctx.link.web_url}")
                    if limited is not None:
                        await self._refuse_limited(scope, send, request, *limited)
                        return
                if self.expander is not None and self._expands(ctx):
                    # Never raises, and answers within the expansion deadline: a failure keeps the short link.
                    asked = perf_counter()
                    ctx = with_expansion(ctx, await self.expander.expand(ctx.link.web_url))  # type: ignore[arg-type]
                    waited = perf_counter() - asked
            except Exception as error:  # BadClick, or a bug: _answer says which
                failure = error
        answered = self._answer(request, ruleset, now, kept, ctx, failure, waited)
        page = answered.page
        await send({"type": "http.response.start", "status": page.status, "headers": self._headers(page, request)})
        await send({"type": "http.response.body", "body": page.body})
        line = self._line(request, ruleset, now, at, answered)
        ctx = answered.ctx
        if ctx is not None and "ct=" in request.query and scope["method"] == "GET":
            # A page's own URL with its token, opened elsewhere: the first click's second jump (a HEAD opens
            # nothing).
            escaped_from = await self.outcomes.second_jump(request.query, ctx.client.app.value, request.id, at)
            if escaped_from is not None:
                line["escaped_from"] = escaped_from
        self.click_log.write(line)

    def _read(self, request: _Request, at: datetime, client: Client, replays: ClickReplays) -> Context:
        """read_click for this click (BadClick for one that can't be read)."""
        return read_click(request.path, request.query, request.ua, at=at, settings=self.settings,
                          visitor=request.visitor, replays=replays, client=client)

    def _expands(self, ctx: Context) -> bool:
        """Whether the click's link is a short link to expand before deciding (a wait on its host)."""
        expander = self.expander
        return expander is not None and bool(ctx.link.web_url) and expander.expandable(ctx.link)

    def _answer(self, request: _Request, ruleset: RuleSet, now: float, kept: tuple[Context, Decision] | None,
                ctx: Context | None, failure: Exception | None = None, waited: float = 0.0) -> _Answered:
        """A click's page: from its kept answer, or its Context decided now, or for the failure that kept it
        from being read. Never raises: the click target never answers 5xx."""
        try:
            if failure is not None:
                raise failure
            if kept is not None:
                ctx, decision = kept
                self.kept_decisions.observe(perf_counter() - request.started)
            else:
                assert ctx is not None
                decision = self.answers.decide(ruleset, request.path, request.query, ctx)
                self.new_decisions.observe(perf_counter() - request.started - waited)
            # A kept answer is timeless: no partial rollout was on its way (rollout_arms says why).
            arms = rollout_arms(ruleset, ctx, decision.rule) if ruleset.rollouts and kept is None else ()
            # A landing page carries the click's token (router.serve.click_token); no other answer needs one.
            token = make_token(self.settings.signing_keys, request.id, decision.rule, ruleset.version,
                               arms_text(arms), ctx.client.app.value, int(now) + TOKEN_TTL_SECONDS,
                               ) if decision.action is _LANDING else ""
            page = self.pages.respond(request.accept_language, ctx, decision, token)
            return _Answered(page, decision.action, decision.rule, ctx, arms)
        except BadClick as bad:
            self.metrics.refused(bad.status, "click")
            page = self.pages.message(request.accept_language, bad.status, bad.message, technical=True)
            return _Answered(page, _BLOCK, "bad-request", ctx, reason=bad.message)
        except Exception:  # log and give the safest page
            log.exception("unexpected error deciding %s", request.path)
            self.metrics.errors += 1
            return _Answered(self._error_page(request.accept_language, ctx), "error", "error-fallback", ctx)

    def _headers(self, page: Page, request: _Request) -> list[tuple[bytes, bytes]]:
        headers = page.headers  # built for this response (never a shared list): added to in place
        headers.append((b"x-request-id", request.id.encode()))
        if request.cookie != request.visitor:
            headers.append((b"set-cookie", f"{VISITOR_COOKIE}={request.visitor}".encode() + _COOKIE_ATTRIBUTES))
        return headers

    def _line(self, request: _Request, ruleset: RuleSet, now: float, at: datetime,
              answered: _Answered) -> dict[str, object]:
        """The click's line (its metrics counted here too), once its answer is sent."""
        seconds = perf_counter() - request.started
        ctx = answered.ctx
        channel = ctx.channel if ctx else None
        app = ctx.client.app if ctx else None
        path, query = request.path, request.query
        self.metrics.click(path, answered.action, answered.rule, channel, app, seconds)
        line = {
            "type": "click",
            "at": click_time(now, at),
            "request": f"{path}?{query}" if query else path,
            "ua": request.ua,
            "visitor": request.visitor,  # rollouts depend on it: replaying needs it
            "action": answered.action,
            "rule": answered.rule,
            "status": answered.page.status,
            # Enum members as they are: orjson writes a StrEnum as its value (`.value` costs ~0.15 µs each).
            "channel": channel,
            "app": app,
            "os": ctx.client.os if ctx else None,
            "rules": ruleset.version,
            "expansion": ctx.expansion if ctx and ctx.expansion else None,
            "expansion_reason": ctx.expansion_reason if ctx and ctx.expansion else None,
            "request_id": request.id,
            "duration_ms": round(seconds * 1000, 3),
        }
        if answered.reason:  # why a click that could not be read was refused (its page shows it folded)
            line["reason"] = answered.reason
        if answered.arms:  # the rollouts this click could have taken, in or out (router.decision.decide: rollout_arms)
            line["arms"] = [{"rule": arm_rule, "in": inside} for arm_rule, inside in answered.arms]
        return line

    async def with_store_budget(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A click with the fleet's store: all its calls to the store share one deadline (router.serve.shared)."""
        shared = self.shared
        if shared is None:
            await self(scope, receive, send)
            return
        with click_budget(shared.timeout):
            await self(scope, receive, send)

    async def _refuse_limited(self, scope: Scope, send: Send, request: _Request, message: str,
                              retry_after: int) -> None:
        """429: a click limit is reached (router.serve.limits). Not decided, so no click line: an access line."""
        page = self.pages.message(request.accept_language, 429, message)
        headers = [*page.headers, (b"retry-after", str(retry_after).encode()), (b"x-request-id", request.id.encode())]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": page.body})
        seconds = perf_counter() - request.started
        self.metrics.refused(429, "limit")
        self.metrics.request(scope["path"], seconds)
        log_access(scope, 429, request.id, seconds, message)

    async def _read_ad_shared(self, request: _Request, at: datetime, client: Client) -> Context:
        """An /ad click with the fleet's store: its click id's first use is asked of the store (this
        process's own replays answer when the store can't, within its deadline)."""
        deferred = DeferredReplays()
        ctx = self._read(request, at, client, deferred)
        key = deferred.key
        if not key or self.shared is None:
            return ctx
        now = at.timestamp()
        # This process remembers every first use too: while the store is down it still catches the replays
        # it saw itself, as it does without a store.
        first_here = self.replays.first_use(key, now)
        first = await self.shared.first_use(key, replay_ttl(deferred.expires, now, self.replays.ttl),
                                            lambda: first_here)
        if first and first_here:
            return ctx
        if first_here:  # caught by the store: counted like the ones this process catches
            self.replays.replays += 1
        return as_replayed(ctx, key)

    def _error_page(self, accept_language: str | None, ctx: Context | None) -> Page:
        if ctx is None:
            return self.pages.message(accept_language, 400, "This link could not be read.")
        try:
            return self.pages.landing(accept_language, ctx, Decision(Action.LANDING, "error-fallback", 200))
        except Exception:
            log.exception("the landing page failed too")
            body = b"This link could not be opened.\n"
            return Page(400, [*_SECURITY, (b"content-type", b"text/plain; charset=utf-8"),
                              (b"content-length", str(len(body)).encode())], body)


class RouterApp:
    """The ASGI app: clicks straight to `Clicks`; health, readiness, 404/405 pages and the lifespan through
    a small Starlette app. The edge checks (header size, host names, router.serve.edge) come first for both."""

    def __init__(self, clicks: Clicks, rest: Starlette, settings: Settings) -> None:
        self.clicks = clicks
        # With a shared store each click's calls to it share one deadline; without, nothing to wrap.
        self._click = clicks.with_store_budget if clicks.shared is not None else clicks
        self.metrics = clicks.metrics
        self.rest = rest
        self.state = rest.state
        self._names = server_names(settings.server_names)
        self._metrics_port = settings.metrics_port

    def _port_refusal(self, scope: Scope) -> tuple[int, str] | None:
        """With ROUTER_METRICS_PORT: that port serves /metrics and the probes only, the clicks' port never
        /metrics."""
        server = scope.get("server")
        on_metrics_port = server is not None and server[1] == self._metrics_port
        path = scope["path"]
        if on_metrics_port and path not in ADDRESSED_PATHS:
            return 404, "This port serves /metrics, /healthz and /readyz only.\n"
        if not on_metrics_port and path == "/metrics":
            return 404, "No such page.\n"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.rest(scope, receive, send)
            return
        path = scope["path"]
        if path in _CLICK_PATHS and scope["method"] in ("GET", "HEAD"):
            refused = refusal(scope, self._names)
            if refused is None and (not self._metrics_port or self._port_refusal(scope) is None):
                await self._click(scope, receive, send)  # its own request id and click line
                return
        elif path == OUTCOME_PATH:
            refused = refusal(scope, self._names)
            if refused is None and (not self._metrics_port or self._port_refusal(scope) is None):
                started = perf_counter()
                await self.clicks.outcomes(scope, receive, send)  # 204 whatever it is sent; no click
                self.metrics.request(OUTCOME_PATH, perf_counter() - started)
                return
        await self._other(scope, receive, send)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Everything but a click: a request id on the answer, and an access line when it is an error."""
        started = perf_counter()
        given = next((value for name, value in scope["headers"] if name == b"x-request-id"), None)
        request_id = request_id_from(given, self.clicks.trust_request_ids)
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        refused = refusal(scope, self._names)
        if refused is None and self._metrics_port:
            refused = self._port_refusal(scope)
        if refused is not None:
            await refuse(send_with_id, *refused)
        else:
            await self.rest(scope, receive, send_with_id)
        path = scope["path"]
        seconds = perf_counter() - started
        self.metrics.request(path if path in _KNOWN_ROUTES else "other", seconds)
        if 400 <= status < 500:
            self.metrics.refused(status, "edge" if refused is not None else "route")
        if status >= 400:
            log_access(scope, status, request_id, seconds)


def log_access(scope: Scope, status: int, request_id: str, seconds: float, why: str = "") -> None:
    """The access line of a request answered with an error (router.serve.logs: type `access`)."""
    client = scope.get("client")
    path = scope["path"][:200]
    access_log.info("%s %s -> %d%s", scope["method"], path, status, f": {why}" if why else "", extra={
        "request_id": request_id, "duration_ms": round(seconds * 1000, 3), "status": status,
        "method": scope["method"], "path": path, "client": client[0] if client else None})


def create_app(
    settings: Settings | None = None,
    rules: RuleSet | None = None,
    *,
    source: RulesSource | None = None,
    expander: Expander | None = None,
    click_stream: IO[bytes] | None = None,
) -> RouterApp:
    """The ASGI app. Rules load now: a rule set that does not validate stops the app from starting.

    `source` is where new rules come from once the app runs (default: the settings' directory or URL);
    give the one `rules` came from, so that it is not read twice. Click lines go to `click_stream` (from a
    thread: router.serve.clicklog), or to the `router.clicks` logger without one.
    """
    settings = settings or Settings.from_env()
    source = source or rules_source(settings)
    ruleset = rules or source.load()
    active = ActiveRules(ruleset, settings.rules_location)
    reloader = Reloader(active, source, settings.rules_poll_interval)
    warm_up(tables=settings.ua_tables_at_startup)
    pages = Pages(settings)
    expander = expander or short_link_expander(settings)
    replays = ClickReplays()  # ad click ids seen with a signature: a second use loses ad privileges
    if settings.signing_keys.development:
        log.warning(
            "ROUTER_SIGNING_KEYS is not set: /ad links and click tokens are signed with the PUBLIC DEVELOPMENT "
            "KEY. Anyone can sign ad links and forge outcome beacons. Set ROUTER_SIGNING_KEYS=kid:secret before "
            "serving real traffic."
        )
    log.info("rules %s loaded: %d rules from %s", ruleset.version, len(ruleset.rules), ", ".join(ruleset.files))
    click_log = ClickLog(click_stream)
    metrics = Metrics(settings.metrics_dir)
    shared = SharedStore(settings.redis_url, settings.redis_timeout_seconds) if settings.redis_url else None
    if shared is not None and expander is not None:  # one fetch per short link across the fleet
        expander.fleet = FleetExpansions(shared, settings.allowed_hosts)
    outcomes = Outcomes(lambda: settings.signing_keys, click_log, shared)
    metrics.state = lambda: metrics_state(active, expander, replays, click_log, shared, outcomes)
    clicks = Clicks(settings, active, pages, expander, replays, click_log, metrics, shared, outcomes)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    async def readyz(request: Request) -> Response:
        # Which worker answered, and whether an unusual user agent has made it load ua-parser's tables yet.
        # While draining (router.serve.drain) 503, so the load balancer stops sending clicks here.
        status = "draining" if DRAIN.draining else "ready"
        body = {"status": status, **active.status(), "pid": os.getpid(), "ua_tables": tables_built()}
        if shared is not None:  # whether the fleet's store answered this process's last call (no address: public)
            body["shared_store"] = {"configured": True, "up": shared.healthy and shared.up}
        return Response(json.dumps(body, ensure_ascii=False) + "\n", media_type="application/json",
                        status_code=503 if DRAIN.draining else 200,
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    async def metrics_page(request: Request) -> Response:
        client = request.client
        if client is not None and not address_in(client.host, settings.metrics_from):
            return PlainTextResponse("403: metrics are served to the networks in ROUTER_METRICS_FROM only.\n", 403,
                                     headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
        own = metrics.scrape()  # this worker's counts, and its file written: on the loop, like every count
        # Reading the other workers' files, summing and formatting: off the loop, so clicks don't wait for it.
        body, content_type = await asyncio.to_thread(_exposition, metrics, own, request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store",
                                       "X-Content-Type-Options": "nosniff"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return pages.response(request, 404, "No such page. Click targets are /go?url=… and /ad?…")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        response = pages.response(request, 405, "Only GET and HEAD are accepted here.")
        response.headers["Allow"] = "GET, HEAD"
        return response

    async def click_method(request: Request) -> Response:  # /go and /ad with a method other than GET/HEAD
        return await not_allowed(request, Exception())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            if shared is not None:
                await shared.warm_up()
            async with reloader.running(), metrics_flushed(metrics):
                yield
        finally:
            click_log.close()  # the lines of the last clicks are written before the process ends
            if expander is not None:
                await expander.aclose()  # the connections kept to the expansion hosts
            if shared is not None:
                await shared.aclose()

    rest = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/go", click_method, methods=["POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
            Route("/ad", click_method, methods=["POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
            *([Route("/metrics", metrics_page, methods=["GET", "HEAD"])] if settings.metrics_from else []),
        ],
        exception_handlers={404: not_found, 405: not_allowed},
    )
    # Starlette would answer /go/ with a redirect built from the request's Host header: an open
    # redirect to any host. The router's only redirects are its decisions.
    rest.router.redirect_slashes = False
    rest.state.active_rules = active
    rest.state.reloader = reloader
    return RouterApp(clicks, rest, settings)


def _exposition(metrics: Metrics, own: Snapshot, accept: str | None) -> tuple[bytes, str]:
    return render(metrics.total(own), accept)


def metrics_state(active: ActiveRules, expander: Expander | None, replays: ClickReplays,
                  click_log: ClickLog, shared: SharedStore | None = None, outcomes: Outcomes | None = None) -> Snapshot:
    """What the parts keep, as metrics samples (router.serve.metrics), read when a snapshot is taken."""
    current = active.current
    last = active.last_attempt
    state: Snapshot = {
        "adlink_rules_info": {(current.version,): 1},
        "adlink_rules": {(): len(current.rules)},
        "adlink_rules_reloads": {(result,): count for result, count in active.reloads.items()},
        "adlink_rules_last_reload_rejected": {(): int(last is not None and last.result == "rejected")},
        "adlink_ad_click_replays": {(): replays.replays},
        "adlink_click_lines_dropped": {(): click_log.dropped_total},
    }
    if outcomes is not None:
        state["adlink_outcomes"] = {
            **{(event, "recorded"): outcomes.recorded[event] for event in (*EVENTS, ESCAPED)},
            **{(event, "duplicate"): outcomes.duplicates[event] for event in (*EVENTS, ESCAPED)}}
        state["adlink_outcome_beacons_ignored"] = {(reason,): outcomes.ignored[reason] for reason in IGNORED_REASONS}
    if shared is not None:
        operations = {*shared.calls, *shared.fallbacks, "first_use"}
        state["adlink_shared_store_calls"] = {(op,): shared.calls.get(op, 0) for op in operations}
        state["adlink_shared_store_fallbacks"] = {(op,): shared.fallbacks.get(op, 0) for op in operations}
        state["adlink_shared_store_up"] = {(): int(shared.healthy and shared.up)}
    if expander is not None:
        # Every result from the start (at 0): the first timeout shows in an increase() too.
        state["adlink_expansions"] = {(result,): expander.results.get(result, 0) for result in EXPANSION_RESULTS}
        state["adlink_expansion_upstream_requests"] = {(): expander.requests}
        state["adlink_expansion_circuit_open"] = {
            (host,): int(expander.breaker.refusing(host)) for host in expander.policy.hosts}
    return state


@asynccontextmanager
async def metrics_flushed(metrics: Metrics) -> AsyncIterator[None]:
    """For the lifespan: with a shared metrics directory, this worker's snapshot written every FLUSH_SECONDS
    and once more when it stops (its last clicks count)."""
    if metrics.files is None:
        yield
        return

    async def flush_every_second() -> None:
        logged_at = -60.0
        while True:
            try:
                metrics.flush()
            except Exception:  # a bug here must not end the flushing (the other workers' sums would freeze)
                if time.monotonic() - logged_at >= 60:
                    logged_at = time.monotonic()
                    log.exception("metrics: writing this worker's snapshot failed")
            await asyncio.sleep(FLUSH_SECONDS)

    task = asyncio.get_running_loop().create_task(flush_every_second(), name="metrics-flush")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        metrics.flush()


def short_link_expander(settings: Settings) -> Expander | None:
    """The expander for the configured short-link hosts, or None when expansion is off."""
    if not settings.expand_hosts:
        return None
    return Expander(ExpandPolicy(hosts=settings.expand_hosts, timeout=settings.expand_timeout_seconds,
                                 allowed_hosts=settings.allowed_hosts, upstream=settings.expand_upstream))


def app_from_env() -> RouterApp:
    """Factory for `uvicorn --factory` and multi-worker serving: settings from the environment.

    `adlink-router serve` sets uvicorn's limits and proxy trust (see cli._server_limits); running
    uvicorn yourself, pass `--no-proxy-headers` (or `--forwarded-allow-ips`) deliberately.
    """
    configure_logging(os.environ.get("ROUTER_LOG_LEVEL", "info"))
    return create_app(click_stream=click_stream(os.environ.get("ROUTER_CLICK_LOG", "")))
