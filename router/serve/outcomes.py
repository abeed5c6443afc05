"""What happened after the tap: outcome beacons from the landing page, and second jumps.

The landing page (templates/landing.js) tells `POST /outcome` what the person did: the page was `shown`
(its script ran), the code or link was `copied`, the app was tried (`app_attempt`) and the page went
hidden soon after (`app_left`: the app most likely opened), the page fell back to the web
(`fallback_web`), or the person tapped the web link (`web_tap`) or the app store's (`store_tap`). Each
beacon carries the click's token (router.serve.click_token); one without a valid, unexpired token is
ignored, so is one without the visitor cookie the token was made for (the page's own beacons carry it; a
token read from a shared address alone does not), and one past the bounds per client address and per
visitor (router.serve.limits: ROUTER_LIMIT_BEACONS_PER_ADDRESS, ROUTER_LIMIT_BEACONS_PER_VISITOR). Each
event counts once per click (this process remembers, and the fleet's store when there is one). The
endpoint answers 204 whatever it was sent (only a POST is read), reads at most MAX_BODY bytes for at most
BODY_SECONDS, and is no click: no click line, no click metrics.

A second jump: the page puts its token into its own URL, so "open in the browser" brings it along. The first
click carrying a valid token made for another app (`ct=`) is recorded as `escaped` for the original click,
and only that click's line says `escaped_from`; later ones (the URL shared onward) are ordinary clicks. Each
is then decided by the rules like any click (in Safari, most likely the app). A bot carrying one (a link
preview's fetcher reading a shared page's address) is no jump.

Recorded outcomes are JSON lines on the click stream, beside the click lines they belong to (`type`
`outcome`; docs/click-log.md has the schema): `python -m router report` joins them by click id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from router.decision.signing import ClickReplays, SigningKeys
from router.serve.click_token import TOKEN_TTL_SECONDS, ClickToken, read_token
from router.serve.clicklog import ClickLog
from router.serve.headers import SECURITY_HEADERS
from router.serve.limits import ClickLimits
from router.serve.shared import SharedStore
from router.serve.visitors import Visitors, visitor_cookie

log = logging.getLogger("router.outcomes")

OUTCOME_PATH = "/outcome"
EVENTS = ("shown", "copied", "app_attempt", "app_left", "fallback_web", "web_tap", "store_tap")
ESCAPED = "escaped"
TOKEN_PARAM = "ct"  # the landing page's own URL carries its token under this name (templates/landing.js)
MAX_BODY = 1024  # a beacon is a token and an event name: ~250 bytes
BODY_SECONDS = 2.0  # a beacon's body arrives with its head; one that dribbles in is not waited for
IGNORED_REASONS = ("token", "event", "body", "visitor", "limit")
_EVENT_NAMES = frozenset(EVENTS)
_HEADERS = [*SECURITY_HEADERS, (b"content-length", b"0")]
_TOKEN_FIELD = TOKEN_PARAM + "="


class Outcomes:
    """Records outcome beacons and second jumps for one process (with the fleet's store, across the fleet)."""

    def __init__(self, keys: Callable[[], SigningKeys], click_log: ClickLog, shared: SharedStore | None = None,
                 max_remembered: int = 200_000) -> None:
        self._keys = keys  # read per beacon: the keys a reload of the secrets brings
        self.click_log = click_log
        self.shared = shared
        self.limits: ClickLimits | None = None  # beacons per address and per visitor (router.serve.limits)
        self.visitors: Visitors | None = None  # whose beacon it is: the visitor cookie the page was given
        # (click, event) pairs recorded, for as long as a token lives: the second beacon of one is a duplicate.
        self._seen = ClickReplays(ttl_seconds=TOKEN_TTL_SECONDS, max_entries=max_remembered)
        self.recorded: dict[str, int] = dict.fromkeys((*EVENTS, ESCAPED), 0)
        self.duplicates: dict[str, int] = dict.fromkeys((*EVENTS, ESCAPED), 0)
        self.ignored: dict[str, int] = dict.fromkeys(IGNORED_REASONS, 0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """/outcome: 204 whatever it is sent; a POST with a valid beacon recorded. The body is read only up to
        MAX_BODY bytes and BODY_SECONDS: a longer or slower one is not read further (and ignored)."""
        whole = False
        body = b""
        if scope.get("method") == "POST" and _declared_length(scope) <= MAX_BODY:
            try:
                async with asyncio.timeout(BODY_SECONDS):
                    body, whole = await _read_body(receive)
            except TimeoutError:
                whole = False
        await send({"type": "http.response.start", "status": 204, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": b""})
        if not whole:
            self.ignored["body"] += 1
            return
        try:
            fields = dict(parse_qsl(body.decode("utf-8", "replace"), max_num_fields=4))
        except ValueError:  # more fields than a beacon has
            self.ignored["body"] += 1
            return
        event = fields.get("e", "")
        if event not in _EVENT_NAMES:
            self.ignored["event"] += 1
            return
        now = datetime.now(UTC)
        token = read_token(fields.get("t", ""), self._keys(), now.timestamp())
        if token is None:
            self.ignored["token"] += 1
            return
        cookies = [value for name, value in scope.get("headers", ()) if name == b"cookie"]
        if self.visitors is not None and self.visitors.read(visitor_cookie(cookies)) != token.visitor:
            # The page's own beacons carry the cookie its answer set. A token alone (its page's address shared
            # onward, `ct=`) is someone else's: it records nothing on their click, nor uses up their bound.
            self.ignored["visitor"] += 1
            return
        client = scope.get("client")
        await self.record(token, event, now, address=client[0] if client else "")

    async def second_jump(self, text: str, app: str, request_id: str, at: datetime, address: str = "",
                          link: str = "") -> str | None:
        """The original click's id when `text` (a click's token, `token_in` its query) is a valid token made
        for another app than `app` (the app this click happened in), and this is the first such click: that
        click escaped to here, and it is recorded. None otherwise: a token is good for one escape, and the
        clicks that carry it later (its URL shared onward, opened by others) are ordinary clicks, each in its
        own arm. `link`: the short link this click is on ("" for a long link): a token escapes to the same only
        (a short link's page's own address is its /s/<code>)."""
        token = read_token(text, self._keys(), at.timestamp())
        if token is None:
            self.ignored["token"] += 1
            return None
        if token.link != link:
            return None
        if token.app == app or app == "bot":
            # The same app again (a reload, a re-share inside it), or a link preview's fetcher reading a
            # shared page address: nobody jumped.
            return None
        recorded = await self.record(token, ESCAPED, at, {"request_id": request_id, "to_app": app}, address)
        return token.click if recorded else None

    async def record(self, token: ClickToken, event: str, at: datetime, extra: dict[str, Any] | None = None,
                     address: str = "") -> bool:
        """Write the outcome line of `event` for the token's click, unless it was recorded before or is past
        the bounds per client address and per visitor (False). An escape is bounded as a beacon is: it
        counts as reaching the item too."""
        key = f"outcome\n{token.click}\n{event}"
        if key in self._seen:  # a duplicate this process saw: it uses up no bound
            self.duplicates[event] += 1
            return False
        limits = self.limits
        if limits is not None and await limits.beacon_refusal(address, token.visitor) is not None:
            self.ignored["limit"] += 1  # not recorded, so it moves no readout
            return False
        now = at.timestamp()
        first_here = self._seen.first_use(key, now)
        first = first_here
        if self.shared is not None:
            ttl = max(60, int(token.expires - now))
            first = await self.shared.first_use(key, ttl, lambda: first_here)
        if not (first and first_here):
            self.duplicates[event] += 1
            return False
        self.recorded[event] += 1
        line: dict[str, Any] = {
            "type": "outcome",
            "at": at.isoformat(timespec="milliseconds"),
            "click": token.click,
            "event": event,
            "rule": token.rule,
            "rules": token.rules,
            "arms": arms_of(token.arms),
            "app": token.app,
        }
        if extra:
            line.update(extra)
        self.click_log.write(line)
        return True


def token_in(query: str) -> str:
    """The value of the query's TOKEN_PARAM parameter, that name exactly (`product=` or `act=` is not it),
    empty when there is none. A click token is base64url, a kid and dots: never percent-encoded. Most
    queries carry none, and are answered by one substring search."""
    if _TOKEN_FIELD not in query:
        return ""
    for field in query.split("&"):
        if field.startswith(_TOKEN_FIELD):
            return field[len(_TOKEN_FIELD):]
    return ""


def arms_text(arms: tuple[tuple[str, bool], ...]) -> str:
    """A click's rollout arms (router.decision.decide: rollout_arms) as a token carries them ("" for none: most
    clicks, on every landing response, so without building a generator)."""
    if not arms:
        return ""
    return ",".join(f"{_escape_arm(rule)}:{'in' if inside else 'out'}" for rule, inside in arms)


def arms_of(text: str) -> list[dict[str, object]] | None:
    """arms_text read back, as the click line writes arms: [{"rule": id, "in": bool}, ...] (None without)."""
    if not text:
        return None
    arms: list[dict[str, object]] = []
    for part in text.split(","):
        rule, _, arm = part.rpartition(":")
        arms.append({"rule": rule.replace("%2C", ",").replace("%25", "%"), "in": arm == "in"})
    return arms


def _escape_arm(rule: str) -> str:
    return rule.replace("%", "%25").replace(",", "%2C")


def _declared_length(scope: Scope) -> int:
    """The Content-Length the request declares (0 without one; past MAX_BODY for a malformed one)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) < 12 else MAX_BODY + 1
    return 0


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """At most MAX_BODY bytes of the request's body, and whether that was all of it (a longer body is not
    read further: the beacon is ignored)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", False  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
