"""The readout: what happened after the tap, per rule, channel, app, OS or rollout arm.

`python -m router report --clicks FILE…` reads the click stream (the server's own output: click, outcome and
server lines mixed; `.gz` too; local paths, globs, or object-storage URLs DuckDB can read) with DuckDB, an
embedded analytical database: a fleet's day of logs is read in seconds, without loading it into Python. Click
lines and outcome lines are joined by click id (docs/click-log.md has both schemas, so the same query runs
in a warehouse).

Per group: clicks; answers by action; and, as shares of the group's clicks, each with a 95 % interval
(Wilson's score interval: right near 0 % and 100 % and for small groups, where the textbook one is not):
- shown: the landing page's script ran (its `shown` beacon);
- copied, app_left (the page went hidden soon after an app attempt: the app most likely opened), escaped
  (the page was opened again in another app: its second jump), web (a web-link tap or the automatic
  fallback), store (an app-store tap);
- reached: the person most likely got to the item: a `web` or `app` redirect, or a landing page that was
  copied from, left for the app, escaped from or followed to the web.
For each rule with a rollout, the clicks that reached it in and out of the rollout side by side, with the
difference in "reached" and its 95 % interval (Newcombe's method, from the two Wilson intervals), and one
sentence a policy owner can read out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["DIMENSIONS", "OUTCOME_COLUMNS", "ReportError", "build_report", "key_fields", "percent", "percent_parts",
           "points", "wilson"]

DIMENSIONS = ("rule", "channel", "app", "os", "arm")
OUTCOME_COLUMNS = ("shown", "copied", "app_left", "escaped", "web", "store", "reached")
ACTIONS = ("app", "web", "landing", "block")
Z95 = 1.959963984540054

# The lines' fields the readout reads, with their types. Lines of other types (server, access, reload…) and
# lines that are not JSON are passed over.
_COLUMNS = {
    "type": "VARCHAR", "at": "VARCHAR", "action": "VARCHAR", "rule": "VARCHAR", "status": "INTEGER",
    "channel": "VARCHAR", "app": "VARCHAR", "os": "VARCHAR", "request_id": "VARCHAR",
    "arms": 'STRUCT(rule VARCHAR, "in" BOOLEAN)[]', "click": "VARCHAR", "event": "VARCHAR",
    "escaped_from": "VARCHAR",
}

# Each click once (the same file given twice, or globs that overlap, count it once), in the time window;
# its outcomes joined. Bots (link previews, crawlers) and the clicks of second jumps (the same person's
# click again, counted with the first as `escaped`) are kept apart: counted, not grouped.
_CLICKS = """
CREATE TEMP TABLE clicks AS
SELECT request_id AS id, action, rule, status, coalesce(channel, 'unknown') AS channel,
       coalesce(app, 'unknown') AS app, coalesce(os, 'unknown') AS os, arms, escaped_from,
       TRY_CAST("at" AS TIMESTAMPTZ) AS at
FROM lines
WHERE type = 'click' AND request_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY request_id) = 1
"""

_JOINED = """
CREATE TEMP TABLE joined AS
WITH outcomes AS (
    SELECT click,
           bool_or(event = 'shown') AS shown, bool_or(event = 'copied') AS copied,
           bool_or(event = 'app_left') AS app_left, bool_or(event = 'escaped') AS escaped,
           bool_or(event IN ('web_tap', 'fallback_web')) AS web, bool_or(event = 'store_tap') AS store
    FROM lines
    WHERE type = 'outcome' AND click IS NOT NULL
    GROUP BY click
)
SELECT c.*,
       coalesce(o.shown, false) AS shown, coalesce(o.copied, false) AS copied,
       coalesce(o.app_left, false) AS app_left, coalesce(o.escaped, false) AS escaped,
       coalesce(o.web, false) AS web, coalesce(o.store, false) AS store,
       (c.action IN ('app', 'web') AND c.status = 302) OR coalesce(o.copied OR o.app_left OR o.escaped OR o.web,
                                                                      false) AS reached
FROM clicks c LEFT JOIN outcomes o ON o.click = c.id
WHERE (c.at >= ? OR ? IS NULL) AND (c.at < ? OR ? IS NULL)
"""

_QUERY = """
WITH rows AS ({rows})
SELECT {keys}
       count(*) AS clicks,
       {actions},
       {outcomes}
FROM rows
WHERE {included}
{group}
"""


class ReportError(Exception):
    """A report that can't be made (no such file, a bad time): one line for the person."""


@dataclass(frozen=True)
class Share:
    count: int
    total: int

    @property
    def rate(self) -> float:
        return self.count / self.total if self.total else 0.0

    def interval(self) -> tuple[float, float]:
        return wilson(self.count, self.total)

    def as_json(self) -> dict[str, Any]:
        low, high = self.interval()
        return {"count": self.count, "rate": round(self.rate, 6), "low": round(low, 6), "high": round(high, 6)}


def wilson(count: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for count/total (0..1); (0, 1) for an empty group."""
    if total <= 0:
        return 0.0, 1.0
    p = count / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference(first: Share, second: Share) -> tuple[float, float, float]:
    """first.rate - second.rate and its 95 % interval (Newcombe's hybrid score method, from Wilson's)."""
    p1, p2 = first.rate, second.rate
    l1, u1 = first.interval()
    l2, u2 = second.interval()
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, max(-1.0, low), min(1.0, high)


def _time(text: str | None, flag: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"{flag} {text!r} is not a time: write 2026-12-01 or 2026-12-01T08:00+08:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the click lines' own zone
    return moment.astimezone(UTC)


def build_report(files: Sequence[str], *, by: Sequence[str] = ("rule",), since: str | None = None,
                 until: str | None = None, bots: bool = False) -> dict[str, Any]:
    """The readout of the click and outcome lines in `files`, grouped by `by` (DIMENSIONS), as plain data
    (what `--format json` prints). Bots' clicks are left out of the groups unless `bots`."""
    import duckdb  # imported here: the server never needs it

    unknown = [name for name in by if name not in DIMENSIONS]
    if unknown:
        raise ReportError(f"--by {unknown[0]!r}: group by one of {', '.join(DIMENSIONS)}")
    by = list(dict.fromkeys(by))  # each dimension once, in the order given
    if not files:
        raise ReportError("give the click stream's files with --clicks FILE…")
    start, end = _time(since, "--since"), _time(until, "--until")
    if start is not None and end is not None and start >= end:
        raise ReportError(f"--since {since} is not before --until {until}: no click can be in between")
    connection = duckdb.connect()
    try:
        try:
            # Read once into a table (the queries below read it several times): the click and outcome lines only.
            # A CREATE can't take parameters, so the paths are SQL string literals (quotes doubled).
            paths = ", ".join(_literal(path) for path in files)
            columns = ", ".join(f"{_literal(name)}: {_literal(kind)}" for name, kind in _COLUMNS.items())
            connection.execute(
                f"CREATE TEMP TABLE lines AS SELECT * FROM read_json([{paths}], format = 'newline_delimited', "
                f"ignore_errors = true, filename = true, columns = {{{columns}}}) WHERE type IN ('click', 'outcome')")
            read_files = connection.execute("SELECT count(DISTINCT filename) FROM lines").fetchone()[0]  # type: ignore[index]
            connection.execute(_CLICKS)
            connection.execute(_JOINED, [start, start, end, end])
            connection.execute(_ARM_ROWS)
            included = "true" if bots else "app <> 'bot'"
            groups = _groups(connection, by, included)
            arms = _arms(connection, included)
            totals = _groups(connection, (), included)
            left_out = connection.execute(
                f"SELECT count(*) FILTER (WHERE NOT ({included}) AND escaped_from IS NULL), "
                "count(*) FILTER (WHERE escaped_from IS NOT NULL) FROM joined").fetchone()
        except duckdb.Error as err:
            raise ReportError(f"can't read the click stream: {_first_line(err)}") from None
    finally:
        connection.close()
    bot_clicks, jump_clicks = left_out if left_out else (0, 0)
    return {"files": list(files), "files_read": int(read_files), "since": _iso(start), "until": _iso(end),
            "by": by, "bots_left_out": 0 if bots else int(bot_clicks), "second_jump_clicks": int(jump_clicks),
            "total": totals[0] if totals else _empty_group(), "groups": groups, "arms": arms}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _literal(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


# A click's row once per rollout arm it was in or out of (made once, when a report needs arms): grouping by
# arm reads this, not an unnest per query (a lateral unnest of every row costs seconds on a day's clicks).
_ARM_ROWS = """
CREATE TEMP TABLE arm_rows AS
SELECT * EXCLUDE (arms, arm), arm.rule AS arm_rule, CASE WHEN arm."in" THEN 'in' ELSE 'out' END AS arm_side
FROM (SELECT *, unnest(arms) AS arm FROM joined WHERE arms IS NOT NULL)
"""


def key_fields(by: Sequence[str]) -> list[str]:
    """The key fields of the rows grouped by `by`, in order: a rollout arm is two, its rule and its side. The
    renderers read it too, so a readout without rows still has its key columns."""
    keys: list[str] = []
    for name in by:
        keys.extend(("arm_rule", "arm_side") if name == "arm" else (name,))
    return keys


def _rows_and_keys(by: Sequence[str]) -> tuple[str, list[str]]:
    rows = "SELECT * FROM arm_rows" if "arm" in by else "SELECT * FROM joined"
    return rows, key_fields(by)


def _groups(connection: Any, by: Sequence[str], included: str) -> list[dict[str, Any]]:
    rows, keys = _rows_and_keys(by)
    query = _QUERY.format(
        rows=rows, keys="".join(f"{key}, " for key in keys), included=f"({included}) AND escaped_from IS NULL",
        group=f"GROUP BY ALL ORDER BY clicks DESC, {', '.join(keys)}" if keys else "",
        actions=", ".join(f"count(*) FILTER (WHERE action = '{action}') AS action_{action}" for action in ACTIONS),
        outcomes=", ".join(f"count(*) FILTER (WHERE {name}) AS {name}" for name in OUTCOME_COLUMNS),
    )
    result = connection.execute(query)
    names = [column[0] for column in result.description]
    groups = []
    for values in result.fetchall():
        row = dict(zip(names, values, strict=True))
        if not keys and not row["clicks"]:
            return []
        groups.append(_group(row, keys))
    return groups


def _group(row: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    clicks = int(row["clicks"])
    return {
        "key": {name: row[name] for name in keys},
        "clicks": clicks,
        "actions": {action: int(row[f"action_{action}"]) for action in ACTIONS},
        "outcomes": {name: Share(int(row[name]), clicks).as_json() for name in OUTCOME_COLUMNS},
    }


def _empty_group() -> dict[str, Any]:
    return {"key": {}, "clicks": 0, "actions": dict.fromkeys(ACTIONS, 0),
            "outcomes": {name: Share(0, 0).as_json() for name in OUTCOME_COLUMNS}}


def _arms(connection: Any, included: str) -> list[dict[str, Any]]:
    """Each rollout rule's two arms: clicks, reached, the answer most of them got, and the channel they share."""
    groups = _groups(connection, ("arm",), included)
    by_rule: dict[str, dict[str, dict[str, Any]]] = {}
    for group in groups:
        by_rule.setdefault(group["key"]["arm_rule"], {})[group["key"]["arm_side"]] = group
    detail = _arm_detail(connection, included)
    comparisons = []
    for rule in sorted(by_rule):
        sides = by_rule[rule]
        inside = sides.get("in") or {**_empty_group(), "key": {"arm_rule": rule, "arm_side": "in"}}
        outside = sides.get("out") or {**_empty_group(), "key": {"arm_rule": rule, "arm_side": "out"}}
        shares = [Share(side["outcomes"]["reached"]["count"], side["clicks"]) for side in (inside, outside)]
        d, low, high = difference(*shares)
        arm_in, arm_out = detail.get((rule, "in"), {}), detail.get((rule, "out"), {})
        comparisons.append({
            "rule": rule,
            "in": {**inside, "answer": arm_in.get("action"), "channel": arm_in.get("channel")},
            "out": {**outside, "answer": arm_out.get("action"), "channel": arm_out.get("channel")},
            "difference": {"reached": round(d, 6), "low": round(low, 6), "high": round(high, 6)},
            "sentence": _sentence(rule, shares, (arm_in, arm_out), (d, low, high)),
        })
    return comparisons


def _arm_detail(connection: Any, included: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows, _ = _rows_and_keys(("arm",))
    query = f"""
WITH rows AS ({rows})
SELECT arm_rule, arm_side, mode(action) AS action, count(DISTINCT channel) AS channels, any_value(channel) AS channel
FROM rows WHERE ({included}) AND escaped_from IS NULL GROUP BY ALL"""
    detail = {}
    for rule, side, action, channels, channel in connection.execute(query).fetchall():
        detail[(rule, side)] = {"action": action, "channel": channel if channels == 1 else None}
    return detail


_ANSWER_WORDS = {"web": "the web page", "app": "the app", "landing": "the landing page", "block": "a block page"}
_CHANNEL_WORDS = {"group_chat": "group-chat", "private_chat": "1:1-chat", "moments": "Moments", "ad": "ad",
                  "unknown": "unattributed"}


def percent_parts(rate: float, low: float, high: float) -> tuple[str, str]:
    """("91", "2"): a share and the larger side of its interval, in whole points; with a decimal where the
    interval is narrower than a point (large groups). Apart, so a page can set the interval smaller."""
    half = max(rate - low, high - rate) * 100
    digits = 0 if half >= 1 else 1
    return f"{rate * 100:.{digits}f}", f"{half:.{digits}f}"


def percent(rate: float, low: float, high: float, *, compact: bool = False) -> str:
    """"91 % ± 2" (percent_parts). Compact, for tables: "91±2"."""
    value, half = percent_parts(rate, low, high)
    if compact:
        return f"{value}±{half}"
    return f"{value} % ± {half}"


def _percent(share: Share) -> str:
    return percent(share.rate, *share.interval())


_REDIRECTS = frozenset({"web", "app"})


def points(value: float) -> str:
    """A difference (-1..1) in whole percentage points, signed; never "-0"."""
    return f"{round(value * 100):+d}"


def _sentence(rule: str, shares: list[Share], details: tuple[dict[str, Any], dict[str, Any]],
              diff: tuple[float, float, float]) -> str:
    inside, outside = shares
    if not inside.total or not outside.total:
        empty = "in" if not inside.total else "out of"
        return f"{rule}: no clicks {empty} the rollout yet, so nothing to compare."
    arm_in, arm_out = details
    channel = arm_in.get("channel") if arm_in.get("channel") == arm_out.get("channel") else None
    of_what = f"{_CHANNEL_WORDS.get(channel, channel)} clicks" if channel else "clicks"
    answer_in = _ANSWER_WORDS.get(arm_in.get("action") or "", "its answer")
    answer_out = _ANSWER_WORDS.get(arm_out.get("action") or "", "the other answer")
    d, low, high = diff
    caveat = ""
    if (arm_in.get("action") in _REDIRECTS) != (arm_out.get("action") in _REDIRECTS):
        # A redirect is counted as reaching the item; a landing page only when its beacons say so (no script,
        # a lost beacon, a person who gave up: not reached). Say which side is assumed.
        caveat = " A redirect counts as reaching the item; a landing page only by what its beacons report."
    return (f"{rule}: {answer_in} reached the item for {_percent(inside)} of {of_what} in the rollout "
            f"(n = {inside.total:,}) vs {_percent(outside)} for {answer_out} outside it (n = {outside.total:,}); "
            f"difference {points(d)} points (95 % interval {points(low)} to {points(high)}).{caveat}")
