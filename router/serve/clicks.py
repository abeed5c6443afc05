"""/go and /ad: a click read, decided on the rules being served, answered, and logged as one line.

A click is read into a Context (router.decision.click), decided (router.decision.decide), or both taken
from the answers kept for repeated clicks (router.decision.answers), and turned into its answer here. Each
click is logged as one JSON line whose `request`, `ua` and `at` fields are exactly what `python -m router
explain --batch` replays (with `visitor`, so rollout decisions replay too), and whose `rules` is the
version that decided it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from time import perf_counter

from starlette.types import Receive, Scope, Send

from router.decision.answers import Answers
from router.decision.click import BadClick, DeferredReplays, as_replayed, read_click
from router.decision.decide import rollout_arms
from router.decision.rules import RuleSet
from router.decision.short_links import is_code_shaped, own_parameter
from router.decision.signing import ClickReplays
from router.decision.types import Action, Client, Context, Decision
from router.serve.click_token import TOKEN_TTL_SECONDS, make_token
from router.serve.clicklog import ClickLog, click_time
from router.serve.config import VISITOR_COOKIE, Settings
from router.serve.expand import Expander, with_expansion
from router.serve.headers import SECURITY_HEADERS
from router.serve.kept_links import KeptLink, KeptLinks, LinksUnavailable
from router.serve.limits import ClickLimits
from router.serve.logs import log_access
from router.serve.metrics import Metrics
from router.serve.outcomes import TOKEN_PARAM, Outcomes, arms_text
from router.serve.pages import Page, Pages
from router.serve.reload import ActiveRules
from router.serve.replay_checks import ReplayCheck
from router.serve.request import ClickRequest
from router.serve.shared import SharedStore, click_budget, replay_ttl
from router.serve.visitors import Visitors

log = logging.getLogger("router")

_VISITOR_MAX_AGE = 365 * 24 * 3600
_BLOCK, _LANDING = Action.BLOCK, Action.LANDING
_COOKIE_ATTRIBUTES = f"; HttpOnly; Max-Age={_VISITOR_MAX_AGE}; Path=/; SameSite=lax".encode()
SHORT_PREFIX = "/s/"
RETRY_AFTER_SECONDS = 5  # a short link the database could not be asked for: when to try again
_UNAVAILABLE = "the short links' database did not answer in time; try again in a few seconds"
_SPENT = "the link has been opened as many times as its maker allowed"


class _Answered:
    """A click's page and what its line says of it."""

    __slots__ = ("action", "arms", "ctx", "page", "reason", "rule")

    def __init__(self, page: Page, action: str, rule: str, ctx: Context | None,
                 arms: tuple[tuple[str, bool], ...] = (), reason: str = "") -> None:
        self.page, self.action, self.rule, self.ctx, self.arms, self.reason = page, action, rule, ctx, arms, reason


class Clicks:
    """/go and /ad in plain ASGI: no routing, middleware stack or request objects between a click and its
    answer (the edge checks wrap the whole app: router.serve.web). Reads the click, decides it on the rules
    being served, answers, and logs one line. A click may wait on the fleet's store, a click limit, a short
    link's expansion or a page's second jump; most wait on nothing, and are answered in one step."""

    def __init__(self, settings: Settings, active: ActiveRules, pages: Pages, expander: Expander | None,
                 replays: ClickReplays, click_log: ClickLog, metrics: Metrics,
                 shared: SharedStore | None = None, outcomes: Outcomes | None = None) -> None:
        self.settings = settings
        self.outcomes = outcomes or Outcomes(lambda: settings.signing_keys, click_log, shared)
        self.metrics = metrics
        self.shared = shared  # the fleet's store (router.serve.shared): replays seen on any instance
        limits = ClickLimits(settings.limit_per_address, settings.limit_per_ad_link, shared,
                             ipv6_prefix=settings.limit_ipv6_prefix,
                             beacons_per_address=settings.limit_beacons_per_address,
                             beacons_per_visitor=settings.limit_beacons_per_visitor)
        self.limits = limits if limits.active else None  # router.serve.limits; off by default
        if limits.beacons_active:  # on by default
            self.outcomes.limits = limits
        self.kept_decisions, self.new_decisions = metrics.decisions["kept"], metrics.decisions["decided"]
        self.active = active
        self.pages = pages
        self.expander = expander
        self.replays = replays
        self.click_log = click_log
        # An X-Request-ID is believed from a trusted proxy only: with ROUTER_TRUSTED_PROXIES set, a proxy
        # fronts the router and sets (or overwrites) it; otherwise every request gets one made here.
        self.trust_request_ids = bool(settings.trusted_proxies)
        self.replay_checks: dict[ReplayCheck, int] = dict.fromkeys(ReplayCheck, 0)  # ad clicks, by check (metrics)
        self.visitors = Visitors(settings.signing_keys)  # visitor cookies: read, and issued (router.serve.visitors)
        self.outcomes.visitors = self.visitors
        self.answers = Answers()  # clicks that repeat skip reading and deciding (router.decision.answers)
        self.links: KeptLinks | None = None  # short links (router.serve.kept_links): with a database only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """/go and /ad."""
        request = ClickRequest(scope, self.trust_request_ids, self.visitors)
        if self.limits is not None and await self._limited(scope, send, request):
            return
        await self._serve(scope, send, request)

    async def short(self, scope: Scope, receive: Receive, send: Send) -> None:
        """/s/<code>: the short link's long link (router.serve.kept_links), served as that click is, with the
        link's tags and preview; 404 for a code that names no link, 410 for one that answers no more, 503 when
        the database can't say."""
        request = ClickRequest(scope, self.trust_request_ids, self.visitors)
        if self.limits is not None and await self._limited(scope, send, request):
            return
        code = request.path[len(SHORT_PREFIX):]
        links = self.links
        link: KeptLink | None = None
        if links is not None and is_code_shaped(code):
            try:
                link = await links.find(code)
            except LinksUnavailable:
                await self._short_refused(send, request, 503, "short-link-unavailable", _UNAVAILABLE, code)
                return
        if link is None:
            await self._short_refused(send, request, 404, "short-link-unknown", "no short link has this code", "")
            return
        gone = link.gone(time.time()) or (_SPENT if links is not None and links.spent(link) else "")
        if gone:
            await self._short_refused(send, request, 410, "short-link-gone", gone, code)
            return
        problem = own_parameter(request.query)
        if problem:
            await self._short_refused(send, request, 400, "bad-request", problem, code)
            return
        # The click on the long link, with what the short link's own URL carried (a share's from=, click ids).
        request.path, request.query = link.path, f"{link.query}&{request.query}" if request.query else link.query
        await self._serve(scope, send, request, link)

    async def _counted(self, scope: Scope, send: Send, request: ClickRequest, link: KeptLink, client: Client) -> bool:
        """Count a click on a short link; False when it is refused instead (answered here: 410 once its max_clicks
        are used, 503 when the database can't count it). A link with max_clicks counts every request answered
        as the link, a HEAD's and a bot's too (each would learn where it goes); the clicks of other links count
        people only, for their `clicks`."""
        links = self.links
        assert links is not None
        if link.max_clicks is None and (scope["method"] != "GET" or client.bot):
            return True
        try:
            if await links.count(link):
                return True
        except LinksUnavailable:
            await self._short_refused(send, request, 503, "short-link-unavailable", _UNAVAILABLE, link.code)
            return False
        await self._short_refused(send, request, 410, "short-link-gone", _SPENT, link.code)
        return False

    async def _limited(self, scope: Scope, send: Send, request: ClickRequest) -> bool:
        """Whether the client's click limit refused this click (answered here: 429)."""
        assert self.limits is not None
        limited = await self.limits.address_refusal(request.address)
        if limited is not None:
            await self._refuse_limited(scope, send, request, *limited)
            return True
        return False

    async def _short_refused(self, send: Send, request: ClickRequest, status: int, rule: str, reason: str,
                             code: str) -> None:
        """A short link that is not served: a page in the reader's language, and a click line."""
        page = self.pages.message(request.accept_language, status, reason, technical=True)
        if status == 503:  # the database's failing, not the click's: counted by the lookups' metric
            page.headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
        else:
            self.metrics.refused(status, "click")
        await send({"type": "http.response.start", "status": status, "headers": self._headers(page, request)})
        await send({"type": "http.response.body", "body": page.body})
        now = time.time()
        ruleset = self.active.current
        line = self._line(request, ruleset, now, datetime.fromtimestamp(now, UTC),
                          _Answered(page, _BLOCK, rule, None, reason=reason))
        if code:
            line["link"] = code
        self.click_log.write(line)

    async def _serve(self, scope: Scope, send: Send, request: ClickRequest, link: KeptLink | None = None) -> None:
        """A click on the long link `request` names: /go or /ad, or what a short link (`link`) stands for."""
        limits = self.limits
        now = time.time()
        at = datetime.fromtimestamp(now, UTC)
        ruleset = self.active.current  # once: a reload during this click does not change what decides it
        # Read with the rules' own catalogue; never raises; interned, so the kept answers can be keyed by it.
        client = ruleset.reader.parse(request.ua)
        tags = link.tags if link is not None else ()
        # The request headers this rule set's conditions read (none for most): part of what keys a kept answer.
        headers = request.headers_named(ruleset.headers_read) if ruleset.headers_read else ()
        kept = self.answers.get(ruleset, request.path, request.query, client, headers, tags)
        ctx: Context | None = None
        replay_check: ReplayCheck | None = None
        waited = 0.0
        failure: Exception | None = None
        if kept is None:
            try:
                if request.path == "/ad":
                    ctx, replay_check = await self._read_ad(request, at, client, headers, tags)
                else:
                    ctx = self._read(request, at, client, self.replays, headers, tags)
                if limits is not None and ctx.ad is not None and ctx.ad.verified:
                    ad = ctx.ad
                    limited = await limits.ad_link_refusal(
                        f"{ad.source}\n{ad.advertiser}\n{ad.campaign}\n{ctx.link.web_url}", request.address)
                    if limited is not None:
                        await limits.release_address(request.address)  # refused: it counts for no limit
                        await self._refuse_limited(scope, send, request, *limited)
                        return
                if self.expander is not None and self._expands(ctx):
                    # Never raises, and answers within the expansion deadline: a failure keeps the short link.
                    asked = perf_counter()
                    ctx = with_expansion(ctx, await self.expander.expand(ctx.link.web_url))  # type: ignore[arg-type]
                    waited = perf_counter() - asked
            except Exception as error:  # BadClick, or a bug: _answer says which
                failure = error
        escaped_from: str | None = None
        token = request.token() if failure is None and scope["method"] == "GET" else ""  # a HEAD opens nothing
        if token:  # a page's own address with its token, opened elsewhere: the first click's second jump
            escaped_from = await self.outcomes.second_jump(token, str(client.app), request.id, at, request.address,
                                                           link.code if link is not None else "")
        # A short link's click is counted once it is read and let through, before it is answered as the link;
        # the same person's second jump is not another click.
        if link is not None and failure is None and escaped_from is None \
                and not await self._counted(scope, send, request, link, client):
            return
        answered = self._answer(request, ruleset, now, kept, ctx, failure, waited, link)
        page = answered.page
        await send({"type": "http.response.start", "status": page.status, "headers": self._headers(page, request)})
        await send({"type": "http.response.body", "body": page.body})
        line = self._line(request, ruleset, now, at, answered)
        if link is not None:  # the short link clicked, and its tags (replays decide with them: a tag rule)
            line["link"] = link.code
            line["tags"] = tags
        if replay_check is not None:  # how this ad click's ids were checked for replays (router.serve.replay_checks)
            line["replay_check"] = replay_check
            self.replay_checks[replay_check] += 1  # with its line: a click refused by a limit has neither
        if escaped_from is not None:
            line["escaped_from"] = escaped_from
        self.click_log.write(line)

    def _read(self, request: ClickRequest, at: datetime, client: Client, replays: ClickReplays,
              headers: tuple[tuple[str, str], ...], tags: tuple[str, ...] = ()) -> Context:
        """read_click for this click (BadClick for one that can't be read)."""
        return read_click(request.path, request.query, request.ua, at=at, settings=self.settings,
                          visitor=request.visitor, replays=replays, client=client, headers=headers, tags=tags)

    def _expands(self, ctx: Context) -> bool:
        """Whether the click's link is a short link to expand before deciding (a wait on its host)."""
        expander = self.expander
        return expander is not None and bool(ctx.link.web_url) and expander.expandable(ctx.link)

    def _answer(self, request: ClickRequest, ruleset: RuleSet, now: float, kept: tuple[Context, Decision] | None,
                ctx: Context | None, failure: Exception | None = None, waited: float = 0.0,
                link: KeptLink | None = None) -> _Answered:
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
                               arms_text(arms), str(ctx.client.app), int(now) + TOKEN_TTL_SECONDS,
                               request.visitor, link.code if link else "") if decision.action is _LANDING else ""
            page = self.pages.respond(request.accept_language, ctx, decision, token, link.preview if link else None)
            return _Answered(page, decision.action, decision.rule, ctx, arms)
        except BadClick as bad:
            self.metrics.refused(bad.status, "click")
            page = self.pages.message(request.accept_language, bad.status, bad.message, technical=True)
            return _Answered(page, _BLOCK, "bad-request", ctx, reason=bad.message)
        except Exception:  # log and give the safest page
            log.exception("unexpected error deciding %s", request.path)
            self.metrics.errors += 1
            return _Answered(self._error_page(request.accept_language, ctx), "error", "error-fallback", ctx)

    def _headers(self, page: Page, request: ClickRequest) -> list[tuple[bytes, bytes]]:
        headers = page.headers  # built for this answer (never a shared list): added to in place
        headers.append((b"x-request-id", request.id.encode()))
        if request.new_cookie:
            # Not `Secure`: an ad platform may link over http, and a Secure cookie set over https would hide the
            # visitor from those clicks (and make each of them a new one).
            headers.append((b"set-cookie", f"{VISITOR_COOKIE}={request.new_cookie}".encode() + _COOKIE_ATTRIBUTES))
        return headers

    def _line(self, request: ClickRequest, ruleset: RuleSet, now: float, at: datetime,
              answered: _Answered) -> dict[str, object]:
        """The click's line (its metrics counted here too), once its answer is sent."""
        seconds = perf_counter() - request.started
        ctx = answered.ctx
        channel = ctx.channel if ctx else None
        app = ctx.client.app if ctx else None
        path, query = request.path, request.query
        token = request.token()
        if token:  # a bearer of its click's beacons for two hours: the line keeps where it was, not the token
            query = query.replace(f"{TOKEN_PARAM}={token}", f"{TOKEN_PARAM}=-", 1)
        self.metrics.click(request.route, answered.action, answered.rule, channel, app, seconds)
        line = {
            "type": "click",
            "at": click_time(now, at),
            "request": f"{path}?{query}" if query else path,
            "ua": request.ua,
            "visitor": request.visitor,  # rollouts depend on it: replaying needs it (a pseudonym, never the cookie)
            "visitor_from": request.visitor_from,  # the readout compares rollout arms over the router's visitors only
            "action": answered.action,
            "rule": answered.rule,
            "status": answered.page.status,
            # Enum members as they are: orjson writes a StrEnum as its value (`.value` is a lookup per field).
            "channel": channel,
            "app": app,
            "os": ctx.client.os if ctx else None,
            "rules": ruleset.version,
            "expansion": ctx.expansion if ctx and ctx.expansion else None,
            "expansion_reason": ctx.expansion_reason if ctx and ctx.expansion else None,
            "request_id": request.id,
            "duration_ms": round(seconds * 1000, 3),
        }
        if request.correlation:  # a trusted proxy's X-Request-ID: to join its logs, never this click's id
            line["correlation_id"] = request.correlation
        if answered.reason:  # why a click that could not be read was refused (its page shows it folded)
            line["reason"] = answered.reason
        if answered.arms:  # the rollouts this click could have taken, in or out (router.decision.decide: rollout_arms)
            line["arms"] = [{"rule": arm_rule, "in": inside} for arm_rule, inside in answered.arms]
        if ctx is not None and ctx.ad is not None:
            # What the signature check concluded (orjson writes the AdClaim's fields): a replay decides the
            # click as the server did, with no secret (router.policy.replay), and an operator tells a forged,
            # expired or replayed ad click apart.
            line["claim"] = ctx.ad
        if ctx is not None and ctx.headers:  # the request headers the rules read: replaying needs them
            line["headers"] = dict(ctx.headers)
        return line

    async def with_store_budget(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A click with the fleet's store: all its calls to the store share one deadline (router.serve.shared)."""
        shared = self.shared
        if shared is None:
            await self(scope, receive, send)
            return
        with click_budget(shared.timeout):
            await self(scope, receive, send)

    async def short_with_store_budget(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A short link's click with the fleet's store: one deadline for its calls to the store, as a click's."""
        shared = self.shared
        if shared is None:
            await self.short(scope, receive, send)
            return
        with click_budget(shared.timeout):
            await self.short(scope, receive, send)

    async def _refuse_limited(self, scope: Scope, send: Send, request: ClickRequest, message: str,
                              retry_after: int) -> None:
        """429: a click limit is reached (router.serve.limits). Not decided, so no click line: an access line."""
        page = self.pages.message(request.accept_language, 429, message)
        headers = [*page.headers, (b"retry-after", str(retry_after).encode()), (b"x-request-id", request.id.encode())]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": page.body})
        seconds = perf_counter() - request.started
        self.metrics.refused(429, "limit")
        self.metrics.request(request.route, seconds)
        log_access(429, request.id, scope=scope, seconds=seconds, why=message, correlation=request.correlation)

    async def _read_ad(self, request: ClickRequest, at: datetime, client: Client,
                       headers: tuple[tuple[str, str], ...],
                       tags: tuple[str, ...] = ()) -> tuple[Context, ReplayCheck | None]:
        """An /ad click read, and how its click ids were checked for replays (None when none was: no click id,
        or a signature that does not hold). Each id's first use is asked of this process's memory, and of the
        fleet's store when there is one; what the store could not answer is said (`local`, `restarted`), for
        the click line, a metric and the readout."""
        deferred = DeferredReplays()
        ctx = self._read(request, at, client, deferred, headers, tags)
        keys = deferred.keys
        if not keys:
            return ctx, None
        replays = self.replays
        now = at.timestamp()
        counted = replays.replays
        # Every id recorded here too: while the store is down this process still catches the replays it saw.
        used = [key for key in keys if not replays.first_use(key, now)]
        counted_here = replays.replays - counted  # one per id used before: a click counts once, below
        check = ReplayCheck.PROCESS
        if self.shared is not None:
            ttl = replay_ttl(deferred.expires, now, replays.ttl)
            answer = await self.shared.replay_first_use(keys, ttl)
            if answer is None:
                check = ReplayCheck.LOCAL
            else:
                firsts, lost_since = answer
                fresh_memory = lost_since is not None and now - lost_since < ttl
                check = ReplayCheck.RESTARTED if fresh_memory else ReplayCheck.FLEET
                used += [key for key, first in zip(keys, firsts, strict=True) if not first and key not in used]
        # A click, however many of its ids were used before (other clicks may have counted while this one waited).
        replays.replays += (1 if used else 0) - counted_here
        return (as_replayed(ctx, used[0]) if used else ctx), check

    def _error_page(self, accept_language: str | None, ctx: Context | None) -> Page:
        if ctx is None:
            return self.pages.message(accept_language, 400, "This link could not be read.")
        try:
            return self.pages.landing(accept_language, ctx, Decision(Action.LANDING, "error-fallback", 200))
        except Exception:
            log.exception("the landing page failed too")
            body = b"This link could not be opened.\n"
            return Page(400, [*SECURITY_HEADERS, (b"content-type", b"text/plain; charset=utf-8"),
                              (b"content-length", str(len(body)).encode())], body)
