"""The ASGI app: /go and /ad, /outcome, /healthz, /readyz and /metrics, and its lifespan.

Clicks go straight to `Clicks` (router.serve.clicks), the beacons to `Outcomes` (router.serve.outcomes),
everything else through a small Starlette app; only this module builds Starlette's routes and responses.
The edge checks (header size, host names: router.serve.edge) come first for all of them. Every answer's
headers start from SECURITY_HEADERS (router.serve.headers).

The rules being served live in an ActiveRules (router.serve.reload), which the app's lifespan keeps up to
date; each click reads it once and finishes on that set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from time import perf_counter
from typing import IO

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send

from router.decision.clients import tables_built
from router.decision.rules import RuleSet
from router.decision.short_links import is_code_shaped
from router.decision.signing import ClickReplays
from router.serve.app_metrics import exposition, metrics_flushed, metrics_state
from router.serve.clicklog import ClickLog
from router.serve.clicks import RETRY_AFTER_SECONDS, SHORT_PREFIX, Clicks
from router.serve.config import Settings, address_in, trusted_proxies_warning
from router.serve.drain import DRAIN
from router.serve.edge import ADDRESSED_PATHS, private_asker, refusal, refuse, server_names
from router.serve.expand import Expander, ExpandPolicy
from router.serve.headers import SECURITY_HEADERS
from router.serve.kept_links import KeptLinks, LinksUnavailable
from router.serve.link_admin import LinkAdmin
from router.serve.link_changes import announce
from router.serve.link_store import LinkStore, StoreError, display_url, schema_behind, upgrade
from router.serve.logs import click_stream, configure_logging, correlation_id, log_access, new_request_id
from router.serve.metrics import Metrics
from router.serve.outcomes import OUTCOME_PATH, Outcomes
from router.serve.pages import Pages
from router.serve.qr import png_size, qr_png, qr_svg
from router.serve.reload import ActiveRules, Reloader, rules_source
from router.serve.shared import FleetExpansions, SharedStore
from router.serve.sources import RulesSource
from router.serve.warm import warm_up

log = logging.getLogger("router")

_CLICK_PATHS = frozenset({"/go", "/ad"})
_QR_SUFFIXES = (".svg", ".png")  # /s/<code>.svg and .png: the link's QR code (router.serve.qr)
_KNOWN_ROUTES = frozenset({*_CLICK_PATHS, OUTCOME_PATH, "/healthz", "/readyz", "/metrics"})  # the route label's values


class RouterApp:
    """The ASGI app: clicks straight to `Clicks`; health, readiness, 404/405 pages and the lifespan through
    a small Starlette app. The edge checks (header size, host names, router.serve.edge) come first for both."""

    def __init__(self, clicks: Clicks, rest: Starlette, settings: Settings) -> None:
        self.clicks = clicks
        # With a shared store each click's calls to it share one deadline; without, nothing to wrap.
        self._click = clicks.with_store_budget if clicks.shared is not None else clicks
        self._short = clicks.short_with_store_budget if clicks.shared is not None else clicks.short
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
        elif path.startswith(SHORT_PREFIX) and scope["method"] in ("GET", "HEAD") and not path.endswith(_QR_SUFFIXES):
            refused = refusal(scope, self._names)
            if refused is None and (not self._metrics_port or self._port_refusal(scope) is None):
                await self._short(scope, receive, send)  # its own request id and click line, as a click
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
        request_id = new_request_id()
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
            log_access(status, request_id, scope=scope, seconds=seconds,
                       correlation=correlation_id(given, self.clicks.trust_request_ids))


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
    pages = Pages(settings.fallback_delay_ms, OUTCOME_PATH)
    # Before the socket is bound: /readyz says ready only once a first click costs what the thousandth does.
    warm_up(settings, ruleset, pages, tables=settings.ua_tables_at_startup)
    expander = expander or short_link_expander(settings)
    replays = ClickReplays()  # ad click ids seen with a signature: a second use loses ad privileges
    if settings.signing_keys.development:
        log.warning(
            "ROUTER_SIGNING_KEYS is not set: /ad links and click tokens are signed with the PUBLIC DEVELOPMENT "
            "KEY. Anyone can sign ad links, forge outcome beacons, read click tokens and choose rollout buckets. "
            "Set ROUTER_SIGNING_KEYS=kid:secret before serving real traffic."
        )
    proxies_warning = trusted_proxies_warning(settings.trusted_proxies)
    if proxies_warning:
        log.warning(proxies_warning)
    log.info("rules %s loaded: %d rules from %s", ruleset.version, len(ruleset.rules), ", ".join(ruleset.files))
    click_log = ClickLog(click_stream)
    metrics = Metrics(settings.metrics_dir)
    shared = SharedStore(settings.redis_url, settings.redis_timeout_seconds) if settings.redis_url else None
    if shared is not None and expander is not None:  # one fetch per short link across the fleet
        expander.fleet = FleetExpansions(shared, settings.allowed_hosts)
    outcomes = Outcomes(lambda: settings.signing_keys, click_log, shared)
    clicks = Clicks(settings, active, pages, expander, replays, click_log, metrics, shared, outcomes)
    links = short_links(settings) if settings.database_url else None  # router.serve.kept_links
    clicks.links = links
    metrics.state = lambda: metrics_state(active, expander, replays, click_log, shared, outcomes, clicks.replay_checks,
                                          links)
    api_routes = links_api_routes(settings, links) if links is not None else []

    async def healthz(request: Request) -> Response:
        return _answer("ok\n")

    async def readyz(request: Request) -> Response:
        # While draining (router.serve.drain) 503, so the load balancer stops sending clicks here. Anyone may
        # ask (probes call by address, whatever the Host): the public answer is a status and a short reason;
        # the details (which worker, where the rules come from, why a reload was rejected) only to operators
        # (router.serve.edge: private_asker), and in the logs.
        draining = DRAIN.draining
        status = "draining" if draining else "ready"
        reason = ("stopping: finishing the clicks in flight" if draining
                  else f"serving rules {active.current.version}")
        body: dict[str, object] = {"status": status, "reason": reason}
        if private_asker(request.scope, settings.metrics_port, settings.metrics_from, bool(settings.trusted_proxies)):
            body |= {**active.status(), "pid": os.getpid(), "ua_tables": tables_built()}
            if shared is not None:  # whether the fleet's store answered this process's last call (no address)
                body["shared_store"] = {"configured": True, "up": shared.healthy and shared.up}
        return _answer(json.dumps(body, ensure_ascii=False) + "\n", 503 if draining else 200, "application/json")

    async def metrics_page(request: Request) -> Response:
        client = request.client
        if client is not None and not address_in(client.host, settings.metrics_from):
            return _answer("403: metrics are served to the networks in ROUTER_METRICS_FROM only.\n", 403)
        body, content_type = await exposition(metrics, request.headers.get("accept"))
        return _answer(body, media_type=content_type)

    def message(request: Request, status: int, text: str) -> Response:
        # The reader's language says what happened; the router's own English reason is folded away for support.
        page = pages.message(request.headers.get("accept-language"), status, text, technical=True)
        response = Response(page.body, page.status)
        response.raw_headers[:] = page.headers  # its own length among them
        return response

    async def not_found(request: Request, exc: Exception) -> Response:
        return message(request, 404, "No such page. Click targets are /go?url=… and /ad?…")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        response = message(request, 405, "Only GET and HEAD are accepted here.")
        response.headers["Allow"] = "GET, HEAD"
        return response

    async def click_method(request: Request) -> Response:  # /go and /ad with a method other than GET/HEAD
        return await not_allowed(request, Exception())

    async def qr_code(request: Request) -> Response:
        """/s/<code>.svg and /s/<code>.png?size=: the short link's URL as a QR code (router.serve.qr)."""
        code, kind = request.path_params["code"], request.url.path.rsplit(".", 1)[1]
        link = None
        if links is not None and is_code_shaped(code):
            try:
                link = await links.find(code)
            except LinksUnavailable:
                response = message(request, 503, "the short links' database did not answer in time; try again")
                response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                return response
        if link is None:
            return message(request, 404, "no short link has this code")
        # Drawn in a thread (a 2048-pixel PNG takes tens of milliseconds: not on the loop the clicks share), and
        # kept (router.serve.qr: the same URL and size give the same code).
        if kind == "svg":
            body, media_type = await asyncio.to_thread(qr_svg, link.preview.url), "image/svg+xml"
        else:
            size, problem = png_size(request.query_params.get("size"))
            if problem:
                return message(request, 400, problem)
            body, media_type = await asyncio.to_thread(qr_png, link.preview.url, size), "image/png"
        response = _answer(body, media_type=media_type)
        response.headers["Cache-Control"] = "public, max-age=3600"  # a code's URL never changes
        return response

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            if shared is not None:
                await shared.warm_up()
            if links is not None:  # the schema was made or checked before (prepare_links_database)
                await links.start()
                log.info("short links from %s (up to %d kept)", display_url(settings.database_url), links.limit)
            async with reloader.running(), metrics_flushed(metrics):
                yield
        finally:
            if links is not None:
                await links.aclose()  # the clicks counted here are written first
                links.store.close()
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
            Route("/s/{code}.svg", qr_code, methods=["GET", "HEAD"]),
            Route("/s/{code}.png", qr_code, methods=["GET", "HEAD"]),
            *api_routes,
        ],
        exception_handlers={404: not_found, 405: not_allowed},
    )
    # Starlette would answer /go/ with a redirect built from the request's Host header: an open
    # redirect to any host. The router's only redirects are its decisions.
    rest.router.redirect_slashes = False
    rest.state.active_rules = active
    rest.state.reloader = reloader
    return RouterApp(clicks, rest, settings)

def _answer(body: str | bytes, status: int = 200, media_type: str = "text/plain") -> Response:
    """An answer of the Starlette routes (probes, /metrics), with the headers every answer carries."""
    response = Response(body, status, media_type=media_type)
    response.raw_headers.extend(SECURITY_HEADERS)
    return response


def short_links(settings: Settings) -> KeptLinks:
    """The short links this process serves, from the database in the settings (ROUTER_DATABASE_URL)."""
    store = LinkStore(settings.database_url)
    return KeptLinks(store, settings.signing_keys, settings.public_url, limit=settings.links_kept,
                     redis_url=settings.redis_url)


def links_api_routes(settings: Settings, links: KeptLinks) -> list[BaseRoute]:
    """/api/: the links' JSON API (router.serve.links_api) on the same database. A write is announced to the
    fleet (router.serve.link_changes) and looked at here at once."""
    from router.serve.links_api import links_api

    loop: list[asyncio.AbstractEventLoop] = []

    def changed() -> None:  # in a write's thread
        announce(settings.redis_url)
        if loop:
            loop[0].call_soon_threadsafe(links.poke)

    admin = LinkAdmin(links.store, allowed_hosts=settings.allowed_hosts, public_url=settings.public_url,
                      changed=changed)
    api = links_api(admin, links.store, ipv6_prefix=settings.limit_ipv6_prefix)

    async def on_loop(scope: Scope, receive: Receive, send: Send) -> None:
        if not loop and scope["type"] == "http":
            loop.append(asyncio.get_running_loop())
        await api(scope, receive, send)

    return [Mount("/api", app=on_loop)]


def prepare_links_database(settings: Settings) -> None:
    """Before serving (and before any socket is bound, in the one process that forks the workers): the links'
    database schema brought up to date (SQLite, or ROUTER_DATABASE_UPGRADE=start) or checked; a schema behind
    stops the start (LinksSchemaBehind, one sentence). A database that does not answer is ridden out: its short
    links answer 503 until it does, everything else serves."""
    url = settings.database_url
    if not url:
        return
    try:
        behind = schema_behind(url)  # without Alembic: a current schema costs the router no memory for it
        if behind and settings.upgrades_at_start:
            upgrade(url)
        elif behind:
            raise LinksSchemaBehind(behind)
    except StoreError as error:
        log.warning("short links: %s; /s/ links answer 503 until it answers", error)


class LinksSchemaBehind(Exception):
    """The database's schema is older than this version's: `adlink-router db upgrade` first."""


def short_link_expander(settings: Settings) -> Expander | None:
    """The expander for the configured short-link hosts, or None when expansion is off."""
    if not settings.expand_hosts:
        return None
    return Expander(ExpandPolicy(hosts=settings.expand_hosts, timeout=settings.expand_timeout_seconds,
                                 allowed_hosts=settings.allowed_hosts, upstream=settings.expand_upstream))


def app_from_env() -> RouterApp:
    """Factory for `uvicorn --factory` and multi-worker serving: settings from the environment.

    `adlink-router serve` sets uvicorn's protocol, limits and proxy trust (see cli._server_limits); running
    uvicorn yourself, pass `--http router.serve.protocol:BoundedHttpToolsProtocol`, and `--no-proxy-headers`
    (or `--forwarded-allow-ips`) deliberately.
    """
    configure_logging(os.environ.get("ROUTER_LOG_LEVEL", "info"))
    settings = Settings.from_env()
    prepare_links_database(settings)
    return create_app(settings, click_stream=click_stream(os.environ.get("ROUTER_CLICK_LOG", "")))
