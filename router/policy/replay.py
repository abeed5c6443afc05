"""Recorded clicks: the JSON lines `explain --batch` and `rules diff` read.

One object per line, `{"request": "/go?url=…", "ua": "…", "at": "ISO time", "visitor": "…"}` —
exactly the fields of the server's click log lines, so a day of log replays as is: the server's whole
output can be given, its other lines (`"type": "access"`, `"reload"`, `"server"`; router.serve.logs) are
passed over. A line that can't be read becomes an error for that line; the rest are still read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class RecordedClick:
    line: int
    request: str
    ua: str
    at: datetime
    visitor: str
    headers: tuple[tuple[str, str], ...] = ()  # the request headers the serving rules read, as recorded


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
            yield RecordedClick(number, record["request"], ua, parse_time(record.get("at")), visitor,
                                tuple((str(name).lower(), value) for name, value in headers.items()))
        except ValueError as err:  # json.JSONDecodeError is a ValueError too
            yield UnreadableLine(number, str(err))
