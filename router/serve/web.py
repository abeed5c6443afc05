"""The HTTP face: /go and /ad click targets, /healthz and /readyz.

Only this module touches Starlette. A click is read into a Context
(router.decision.click), decided (router.decision.decide) and turned into a response here; each
click is logged as one JSON line whose `request`, `ua` and `at` fields are
exactly what `python -m router explain --batch` replays (with `visitor`, so
rollout decisions replay too), and whose `rules` is the version that decided it.

The rules being served live in an ActiveRules (router.serve.reload), which the app's
lifespan keeps up to date; each click reads it once and finishes on that set.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from router.decision.click import BadClick, read_click, visitor_id
from router.decision.clients import MAX_UA_LENGTH, warm_up
from router.decision.decide import decide
from router.decision.rules import RuleSet
from router.decision.signing import ClickReplays
from router.decision.types import Action, Context, Decision
from router.serve.config import VISITOR_COOKIE, Settings
from router.serve.edge import HeaderLimit, ServerNames
from router.serve.pages import (
    SECURITY_HEADERS,
    choose_language,
    content_security_policy,
    environment,
    landing_context,
    message_context,
    new_nonce,
)
from router.serve.reload import ActiveRules, Reloader, rules_source
from router.serve.sources import RulesSource
from router.serve.upstream import Expander, ExpandPolicy, with_expansion

click_log = logging.getLogger("router.clicks")
log = logging.getLogger("router")

_VISITOR_MAX_AGE = 365 * 24 * 3600


class Pages:
    """Renders the landing and message pages from their templates, each with a fresh CSP nonce."""

    def __init__(self, settings: Settings) -> None:
        self.templates = Jinja2Templates(env=environment())
        self.fallback_delay_ms = settings.fallback_delay_ms

    def _render(
        self, request: Request, name: str, status: int, context: dict[str, object], nonce: str, lang: str
    ) -> Response:
        headers = {**SECURITY_HEADERS, "Content-Security-Policy": content_security_policy(nonce),
                   "Content-Language": lang, "Vary": "Accept-Language"}
        return self.templates.TemplateResponse(request, name, context, status_code=status, headers=headers)

    def landing(self, request: Request, ctx: Context, decision: Decision) -> Response:
        nonce = new_nonce()
        lang = choose_language(request.headers.get("accept-language"))
        context = landing_context(ctx, decision, lang, nonce, self.fallback_delay_ms)
        return self._render(request, "landing.html", 200, context, nonce, lang)

    def message(self, request: Request, status: int, message: str) -> Response:
        nonce = new_nonce()
        lang = choose_language(request.headers.get("accept-language"))
        return self._render(request, "message.html", status, message_context(status, message, lang, nonce), nonce,
                            lang)

    def respond(self, request: Request, ctx: Context, decision: Decision) -> Response:
        if decision.action in (Action.APP, Action.WEB) and decision.location:
            # The location is built by the router from parsed parts, never echoed from input.
            return Response(status_code=302, headers={**SECURITY_HEADERS, "Location": decision.location})
        if decision.action is Action.BLOCK:
            return self.message(request, decision.status, decision.reason)
        return self.landing(request, ctx, decision)


def create_app(
    settings: Settings | None = None,
    rules: RuleSet | None = None,
    *,
    source: RulesSource | None = None,
    expander: Expander | None = None,
) -> Starlette:
    """The ASGI app. Rules load now: a rule set that does not validate stops the app from starting.

    `source` is where new rules come from once the app runs (default: the settings' directory or URL);
    give the one `rules` came from, so that it is not read twice.
    """
    settings = settings or Settings.from_env()
    source = source or rules_source(settings)
    ruleset = rules or source.load()
    active = ActiveRules(ruleset, settings.rules_location)
    reloader = Reloader(active, source, settings.rules_poll_interval)
    warm_up()
    pages = Pages(settings)
    expander = expander or short_link_expander(settings)
    replays = ClickReplays()  # ad click ids seen with a signature: a second use loses ad privileges
    if settings.signing_keys.development:
        log.warning(
            "ROUTER_SIGNING_KEYS is not set: /ad links are verified with the PUBLIC DEVELOPMENT KEY. "
            "Anyone can sign ad links. Set ROUTER_SIGNING_KEYS=kid:secret before serving real traffic."
        )
    log.info("rules %s loaded: %d rules from %s", ruleset.version, len(ruleset.rules), ", ".join(ruleset.files))

    async def click(request: Request) -> Response:
        ua = request.headers.get("user-agent", "")[:MAX_UA_LENGTH]
        query = request.scope.get("query_string", b"").decode("utf-8", "replace")
        cookie = request.cookies.get(VISITOR_COOKIE)
        visitor = visitor_id(cookie, request.client.host if request.client else "", ua)
        at = datetime.now(UTC)
        ruleset = active.current  # once: a reload during this click does not change what decides it
        ctx: Context | None = None
        try:
            ctx = read_click(request.url.path, query, ua, at=at, settings=settings, visitor=visitor, replays=replays)
            if expander is not None and ctx.link.web_url and expander.expandable(ctx.link):
                # Never raises, and answers within the expansion deadline: a failure keeps the short link.
                ctx = with_expansion(ctx, await expander.expand(ctx.link.web_url))
            decision = decide(ruleset, ctx)
            response = pages.respond(request, ctx, decision)
            action, rule, status = decision.action.value, decision.rule, response.status_code
        except BadClick as bad:
            response = pages.message(request, bad.status, bad.message)
            action, rule, status = Action.BLOCK.value, "bad-request", bad.status
        except Exception:  # the click target must never answer 5xx: log and give the safest page
            log.exception("unexpected error deciding %s", request.url.path)
            if ctx is not None:
                try:
                    response = pages.landing(request, ctx, Decision(Action.LANDING, "error-fallback", 200))
                except Exception:
                    log.exception("the landing page failed too")
                    response = PlainTextResponse("This link could not be opened.\n", status_code=400)
            else:
                response = pages.message(request, 400, "This link could not be read.")
            action, rule, status = "error", "error-fallback", response.status_code
        if cookie != visitor:
            response.set_cookie(VISITOR_COOKIE, visitor, max_age=_VISITOR_MAX_AGE, httponly=True, samesite="lax")
        click_log.info(
            json.dumps(
                {
                    "at": at.isoformat(timespec="milliseconds"),
                    "request": f"{request.url.path}?{query}" if query else request.url.path,
                    "ua": ua,
                    "visitor": visitor,  # rollouts depend on it: replaying needs it
                    "action": action,
                    "rule": rule,
                    "status": status,
                    "channel": ctx.channel.value if ctx else None,
                    "app": ctx.client.app.value if ctx else None,
                    "rules": ruleset.version,
                    "expansion": ctx.expansion.value if ctx and ctx.expansion else None,
                    "expansion_reason": ctx.expansion_reason if ctx and ctx.expansion else None,
                },
                ensure_ascii=False,
            )
        )
        return response

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    async def readyz(request: Request) -> Response:
        body = {"status": "ready", **active.status()}
        return Response(json.dumps(body, ensure_ascii=False) + "\n", media_type="application/json",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return pages.message(request, 404, "No such page. Click targets are /go?url=… and /ad?…")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        response = pages.message(request, 405, "Only GET and HEAD are accepted here.")
        response.headers["Allow"] = "GET, HEAD"
        return response

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with reloader.running():
            yield

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/go", click, methods=["GET", "HEAD"]),
            Route("/ad", click, methods=["GET", "HEAD"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
        ],
        exception_handlers={404: not_found, 405: not_allowed},
        middleware=[Middleware(HeaderLimit), Middleware(ServerNames, names=settings.server_names)],
    )
    # Starlette would answer /go/ with a redirect built from the request's Host header: an open
    # redirect to any host. The router's only redirects are its decisions.
    app.router.redirect_slashes = False
    app.state.active_rules = active
    app.state.reloader = reloader
    return app


def short_link_expander(settings: Settings) -> Expander | None:
    """The expander for the configured short-link hosts, or None when expansion is off."""
    if not settings.expand_hosts:
        return None
    return Expander(ExpandPolicy(hosts=settings.expand_hosts, timeout=settings.expand_timeout_seconds,
                                 allowed_hosts=settings.allowed_hosts, upstream=settings.expand_upstream))


def configure_logging(level: str = "info") -> None:
    """Plain lines for the router's own messages; click lines are already JSON."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("router")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    # Stop here: a root handler (the CLI's basicConfig) would print every click line a second time,
    # prefixed, and the log would no longer replay with `explain --batch`.
    logger.propagate = False


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` and multi-worker serving: settings from the environment.

    `adlink-router serve` sets uvicorn's limits and proxy trust (see cli._server_limits); running
    uvicorn yourself, pass `--no-proxy-headers` (or `--forwarded-allow-ips`) deliberately.
    """
    import os

    configure_logging(os.environ.get("ROUTER_LOG_LEVEL", "info"))
    return create_app()
