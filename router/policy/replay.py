"""Recorded clicks: the JSON lines `explain --batch` and `rules diff` read.

One object per line, `{"request": "/go?url=…", "ua": "…", "at": "ISO time", "visitor": "…"}` —
exactly the fields of the server's click log lines, so a day of log replays as is: the server's whole
output can be given, its other lines (`"type": "access"`, `"reload"`, `"server"`; router.serve.logs) are
passed over. A line that can't be read becomes an error for that line; the rest are still read.

An /ad click is replayed as the server saw it: its line's `claim` (what checking its signature concluded:
verified, or forged, expired, replayed, unknown key…) is taken as is, so a replay needs no signing key and
never re-checks a click id. A line that can't be replayed faithfully (an /ad line without a claim whose key
the keys at hand don't hold, or a claim that is not its request's) raises NotReplayable: callers count and
name it, never decide it some other way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.decision.apps import Catalogue
from router.decision.click import ClaimMismatch, ClickSettings, read_click
from router.decision.signing import Verdict
from router.decision.types import AdClaim, Context


@dataclass(frozen=True, slots=True)
class RecordedClick:
    line: int
    request: str
    ua: str
    at: datetime
    visitor: str
    headers: tuple[tuple[str, str], ...] = ()  # the request headers the serving rules read, as recorded
    claim: AdClaim | None = None  # an /ad click's signature verdict, as the server recorded it
    tags: tuple[str, ...] = ()  # a short link's tags (a click through /s/<code>), as recorded


class NotReplayable(Exception):
    """A recorded click that can't be decided here as the server decided it; the message says why."""


@dataclass(frozen=True, slots=True)
class UnreadableLine:
    line: int
    error: str


def parse_time(text: object) -> datetime:
    """An ISO 8601 time with a timezone ('Z' allowed); empty means now. ValueError says what to write."""
    if text is None or text == "":
        return datetime.now(UTC)
    if not isinstance(text, str):
        raise ValueError(f"time {text!r} is not ISO 8601 text, e.g. 2026-11-11T20:00:00+08:00")
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"time {text!r} is not ISO 8601, e.g. 2026-11-11T20:00:00+08:00") from None
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone; add one, e.g. {text}+08:00")
    return moment


def read_clicks(lines: Iterable[str]) -> Iterator[RecordedClick | UnreadableLine]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if isinstance(record, dict) and record.get("type", "click") != "click":
                continue  # the server's other lines (access, reload, server) in a mixed stream
            if not isinstance(record, dict) or not isinstance(record.get("request"), str):
                raise ValueError("expected an object with 'request' (and 'ua', optional 'at', 'visitor')")
            ua = record.get("ua") or ""
            visitor = record.get("visitor") or ""
            if not isinstance(ua, str) or not isinstance(visitor, str):
                raise ValueError("'ua' and 'visitor' must be strings")
            headers = record.get("headers") or {}
            if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                raise ValueError("'headers' must be an object of header names to strings")
            tags = record.get("tags") or []
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
                raise ValueError("'tags' must be a list of strings (a short link's tags)")
            yield RecordedClick(number, record["request"], ua, parse_time(record.get("at")), visitor,
                                tuple((str(name).lower(), value) for name, value in headers.items()),
                                _claim(record.get("claim")), tuple(tags))
        except ValueError as err:  # json.JSONDecodeError is a ValueError too
            yield UnreadableLine(number, str(err))


_CLAIM_TEXTS = ("source", "advertiser", "campaign", "reason", "verdict", "channel", "kid")


def _claim(recorded: Any) -> AdClaim | None:
    """A click line's `claim`, or None without one; ValueError for one that is not a claim."""
    if recorded is None:
        return None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("verified"), bool):
        raise ValueError("'claim' must be an object with 'verified' true or false (the server's ad claim)")
    texts = {name: recorded.get(name, "") for name in _CLAIM_TEXTS}
    if not all(isinstance(value, str) for value in texts.values()):
        raise ValueError(f"'claim' fields {', '.join(_CLAIM_TEXTS)} must be strings")
    if texts["verdict"] not in Verdict._value2member_map_:
        raise ValueError(f"'claim' verdict {texts['verdict'][:30]!r} is not one of {', '.join(Verdict)}")
    return AdClaim(verified=recorded["verified"], **texts)


def read_recorded(click: RecordedClick, settings: ClickSettings, apps: Catalogue, *,
                  headers: tuple[tuple[str, str], ...] = (), at: datetime | None = None) -> Context:
    """`click` read as the server read it, with `apps` (the replaying rules' catalogue), `headers` (those of
    its recorded headers the rules read) and at `at` (its own time unless moved). BadClick as the server
    refused it; NotReplayable when it can't be read faithfully here."""
    path, _, query = click.request.partition("?")
    claim = click.claim if path == "/ad" else None
    try:
        ctx = read_click(path, query, click.ua, at=at or click.at, settings=settings, visitor=click.visitor,
                         headers=headers, apps=apps, claim=claim, tags=click.tags)
    except ClaimMismatch as err:
        raise NotReplayable(str(err)) from None
    ad = ctx.ad
    if ad is not None and claim is None and ad.verdict == Verdict.UNKNOWN_KEY:
        # Recorded before click lines carried their claim (or by hand): the key that signed it is not held
        # here, so what the server concluded (verified, or forged…) can't be known.
        raise NotReplayable(f"an /ad click recorded without its claim, signed with key {ad.kid!r}, which the "
                            "keys here don't hold: how the server judged it can't be told")
    return ctx


def checked_again(click: RecordedClick, ctx: Context) -> bool:
    """Whether `ctx`, read from `click`, is an /ad click whose signature was checked here again (a line written
    without its claim): judged with the keys at hand and without the server's replay check, and said so."""
    return ctx.ad is not None and click.claim is None
