"""The readout: what happened after the tap, per rule, channel, app, OS, rollout arm, short link or tag.

`python -m router report --clicks FILE…` reads the click stream (the server's own output: click, outcome and
server lines mixed; `.gz` too; local paths, globs, or object-storage URLs DuckDB can read) with DuckDB, an
embedded analytical database: a fleet's day of logs is read in seconds, without loading it into Python. Click
lines and outcome lines are joined by click id (docs/click-log.md has both schemas, so the same query runs
in a warehouse).

Per group: clicks (by rollout arm: visitors, and their clicks); answers by action; and, as shares of the group's
clicks (visitors), each with a 95 % interval (Wilson's score interval: right near 0 % and 100 % and for small
groups, where the textbook one is not):
- shown: the landing page's script ran (its `shown` beacon);
- copied, app_left (the page went hidden soon after an app attempt: the app most likely opened), escaped
  (the page was opened again in another app: its second jump), web (a web-link tap or the automatic
  fallback), store (an app-store tap);
- reached: the person most likely got to the item: a `web` or `app` redirect, or a landing page that was
  copied from, left for the app, escaped from or followed to the web.
For each rule with a rollout, the visitors whose clicks reached it in and out of the rollout side by side, with
the difference in "reached" and its 95 % interval (Newcombe's method, from the two Wilson intervals), and one
sentence a policy owner can read out. The rollout comparison (`arms`, `--by arm`) counts visitors, not clicks: a
rollout draws its bucket per visitor, so a visitor is the unit both intervals take to be independent, and one
visitor clicking many times (one who kept a cookie that landed in the arm it wanted) weighs as one. Each arm says
how many clicks its visitors made too, so a few visitors making many clicks shows. The other groups count clicks.
By short link (`--by link`: the code of /s/<code>, `(none)` for a click on a long link) and by tag (`--by tag`: a
click counts once in each of its link's tags, `(none)` without), as their click lines say.

What a reader of the logs can't tell from the router's own doing is kept out of the figures, and counted:
- the rollout comparison (`arms`, `--by arm`) counts only clicks whose visitor id the router issued itself
  (`visitor_from` "cookie" or "new", and a `visitor`): a visitor id the client chose picks its own arm, so such
  clicks (older lines without `visitor_from` too) would steer it. They stay in the other groups; how many were
  left out of the comparison, and why, is said (`arms_left_out`);
- a click id seen on two different click lines: either may be the real click, so neither is counted, in any
  group, and no outcome is credited to that id (`click_ids_seen_twice`). The same line read twice (a file
  given twice, overlapping globs) is one click;
- /ad clicks whose click id was checked for replays only by this router's memory (`replay_check` "local": the
  fleet's store did not answer) or by a store that had lost its memory lately ("restarted") are counted by check
  (`ad_replay_checks`): a replay of a click id first used elsewhere, or before the loss, went unnoticed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["ARMS_LEFT_OUT", "DIMENSIONS", "OUTCOME_COLUMNS", "REPLAY_CHECKS", "ReportError", "build_report",
           "key_fields", "percent", "percent_parts", "points", "wilson"]

DIMENSIONS = ("rule", "channel", "app", "os", "arm", "link", "tag")
NONE = "(none)"  # the link and tag of a click on a long link (/go, /ad): no slug or tag is written so
OUTCOME_COLUMNS = ("shown", "copied", "app_left", "escaped", "web", "store", "reached")
ACTIONS = ("app", "web", "landing", "block")
Z95 = 1.959963984540054

# The lines' fields the readout reads, with their types. Lines of other types (server, access, reload…) and
# lines that are not JSON are passed over.
_COLUMNS = {
    "type": "VARCHAR", "at": "VARCHAR", "action": "VARCHAR", "rule": "VARCHAR", "status": "INTEGER",
    "channel": "VARCHAR", "app": "VARCHAR", "os": "VARCHAR", "request_id": "VARCHAR",
    "arms": 'STRUCT(rule VARCHAR, "in" BOOLEAN)[]', "click": "VARCHAR", "event": "VARCHAR",
    "escaped_from": "VARCHAR", "visitor_from": "VARCHAR", "replay_check": "VARCHAR", "request": "VARCHAR",
    "ua": "VARCHAR", "visitor": "VARCHAR", "correlation_id": "VARCHAR", "link": "VARCHAR", "tags": "VARCHAR[]",
}

# Where a visitor id came from, when the router issued it: its own signed cookie, or a fresh id it set.
ISSUED_VISITORS = ("cookie", "new")
# How an /ad click's click id was checked for replays (`replay_check`).
REPLAY_CHECKS = ("fleet", "process", "local", "restarted")
# Why a click in a rollout was left out of the arm comparison, in the order each is decided (one reason a click).
ARMS_LEFT_OUT = ("click_id_seen_twice", "visitor_not_issued")

# Each click id once (the same file given twice, or globs that overlap, count it once), in the time window; its
# outcomes joined. An id on two lines that differ (`conflict`) is kept as one row (its line of the lowest hash, at
# its earliest time), to be counted apart: its outcomes are joined to neither line. `issued`: the router issued
# the line's visitor id (the router always writes the id it issued, so a line that says so without one is not
# its own; the arm comparison counts by visitor id). `in_rollout`: any of the id's lines has a rollout arm. One
# window, one sort: the id's lines in a fixed order, whole frame. Bots (link previews, crawlers) and the clicks of
# second jumps (the same person's click again, counted with the first as `escaped`) are kept apart: counted, not
# grouped.
_CLICKS = f"""
CREATE TEMP TABLE clicks AS
SELECT request_id AS id, action, rule, status, coalesce(channel, 'unknown') AS channel,
       coalesce(app, 'unknown') AS app, coalesce(os, 'unknown') AS os, arms, escaped_from, visitor,
       coalesce(link, '{NONE}') AS link, CASE WHEN len(tags) > 0 THEN tags ELSE ['{NONE}'] END AS tags,
       visitor IS NOT NULL
       AND coalesce(visitor_from IN ({", ".join(f"'{name}'" for name in ISSUED_VISITORS)}), false) AS issued,
       replay_check, min(TRY_CAST("at" AS TIMESTAMPTZ)) OVER ids AS at,
       max(line_hash) OVER ids <> line_hash AS conflict,
       bool_or(coalesce(len(arms), 0) > 0) OVER ids AS in_rollout
FROM (SELECT *, hash("at", request, ua, visitor, visitor_from, action, rule, status, channel, app, os, arms,
                     escaped_from, replay_check, correlation_id, link, tags) AS line_hash
      FROM lines WHERE type = 'click' AND request_id IS NOT NULL)
WINDOW ids AS (PARTITION BY request_id ORDER BY line_hash ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
QUALIFY row_number() OVER ids = 1
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
FROM clicks c LEFT JOIN outcomes o ON o.click = c.id AND NOT c.conflict
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
    if "arm" in by and "tag" in by:
        raise ReportError("--by arm and --by tag can't go together: arms count visitors, tags count each click "
                          "once per tag; read them one at a time")
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
            apart = _apart(connection, included)
        except duckdb.Error as err:
            raise ReportError(f"can't read the click stream: {_first_line(err)}") from None
    finally:
        connection.close()
    return {"files": list(files), "files_read": int(read_files), "since": _iso(start), "until": _iso(end),
            "by": by, "bots_left_out": 0 if bots else apart["bots"], "second_jump_clicks": apart["second_jumps"],
            "click_ids_seen_twice": apart["seen_twice"],
            "arms_left_out": {reason: apart[f"arms_{reason}"] for reason in ARMS_LEFT_OUT},
            "ad_replay_checks": {check: apart[f"replay_{check}"] for check in REPLAY_CHECKS},
            "total": totals[0] if totals else _empty_group(), "groups": groups, "arms": arms}


def _grouped(included: str) -> str:
    """The clicks the groups count: not a bot's (unless --bots), not a second jump's, not an id seen twice."""
    return f"({included}) AND escaped_from IS NULL AND NOT conflict"


def _apart(connection: Any, included: str) -> dict[str, int]:
    """The clicks kept out of the groups or out of the arm comparison, by why; the /ad clicks by replay check.
    Each click has one reason, the first that holds: its id seen twice, a second jump, a bot."""
    counts = {
        "seen_twice": "conflict",
        "second_jumps": "NOT conflict AND escaped_from IS NOT NULL",
        "bots": f"NOT conflict AND escaped_from IS NULL AND NOT ({included})",
        "arms_click_id_seen_twice": f"conflict AND in_rollout AND ({included}) AND escaped_from IS NULL",
        "arms_visitor_not_issued": f"{_grouped(included)} AND in_rollout AND NOT issued",
        **{f"replay_{check}": f"replay_check = '{check}'" for check in REPLAY_CHECKS},
    }
    query = "SELECT " + ", ".join(f"count(*) FILTER (WHERE {where})" for where in counts.values()) + " FROM joined"
    values = connection.execute(query).fetchone() or (0,) * len(counts)
    return {name: int(value) for name, value in zip(counts, values, strict=True)}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _literal(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


# A click's row once per rollout arm it was in or out of (made once, when a report needs arms): grouping by
# arm reads this, not an unnest per query (a lateral unnest of every row costs seconds on a day's clicks). Only the
# clicks of visitors the router issued: a visitor id the client chose is one it may have picked for its arm.
_ARM_ROWS = """
CREATE TEMP TABLE arm_rows AS
SELECT * EXCLUDE (arms, arm), arm.rule AS arm_rule, CASE WHEN arm."in" THEN 'in' ELSE 'out' END AS arm_side
FROM (SELECT *, unnest(arms) AS arm FROM joined WHERE arms IS NOT NULL AND issued AND NOT conflict)
"""


# The groups by rollout arm count visitors: a rollout draws its bucket per visitor, so the visitor is the unit the
# arms were randomised by, and the unit Wilson's and Newcombe's intervals take to be independent; counted by
# click, one visitor clicking many times would weigh as many. Each visitor once per group: reached (and each other
# outcome) if any of its clicks there was; its answer the one most of its clicks there got (a tie: the first by
# name; a click without an action loses ties). A visitor in both arms of one rule (a bucket is sticky per rule and
# visitor, but a rollout whose percentage changed within the time read moves the visitors between the two
# percentages to the other arm) is counted in each arm it clicked in, with those clicks: each arm's figures stay
# those of its own clicks' visitors, and neither arm is guessed. `answers` (how many visitors got each answer),
# `first_channel` and `last_channel` are for the comparison's answer and channel, not a group's figures.
_VISITOR_QUERY = """
WITH answers AS (
    SELECT {keys}, visitor, action, count(*) AS answered, min(channel) AS first_channel,
           max(channel) AS last_channel, {any_outcomes}
    FROM arm_rows WHERE {included} GROUP BY ALL
), visitors AS (
    SELECT {keys}, visitor, sum(answered) AS clicks,
           min(struct_pack(fewer := -answered, action := action)).action AS action,
           min(first_channel) AS first_channel, max(last_channel) AS last_channel, {any_outcomes}
    FROM answers GROUP BY ALL
)
SELECT {keys}, count(*) AS visitors, sum(clicks) AS clicks, {actions}, {outcomes}, histogram(action) AS answers,
       min(first_channel) AS first_channel, max(last_channel) AS last_channel
FROM visitors
GROUP BY ALL ORDER BY visitors DESC, clicks DESC, {keys}
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
    if "tag" in by:  # a click counts once in each of its link's tags (`none` for a click without tags)
        rows = "SELECT * EXCLUDE (tags), unnest(tags) AS tag FROM joined"
    return rows, key_fields(by)


def _groups(connection: Any, by: Sequence[str], included: str) -> list[dict[str, Any]]:
    return [group for group, _ in _group_rows(connection, by, included)]


def _group_rows(connection: Any, by: Sequence[str], included: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each group as the JSON has it, and its row as the query gave it. By rollout arm, counted by visitor
    (_VISITOR_QUERY); otherwise by click."""
    rows, keys = _rows_and_keys(by)
    actions = ", ".join(f"count(*) FILTER (WHERE action = '{action}') AS action_{action}" for action in ACTIONS)
    outcomes = ", ".join(f"count(*) FILTER (WHERE {name}) AS {name}" for name in OUTCOME_COLUMNS)
    if "arm" in by:
        query = _VISITOR_QUERY.format(
            keys=", ".join(keys), included=_grouped(included), actions=actions,
            outcomes=outcomes, any_outcomes=", ".join(f"bool_or({name}) AS {name}" for name in OUTCOME_COLUMNS))
    else:
        query = _QUERY.format(
            rows=rows, keys="".join(f"{key}, " for key in keys), included=_grouped(included),
            group=f"GROUP BY ALL ORDER BY clicks DESC, {', '.join(keys)}" if keys else "", actions=actions,
            outcomes=outcomes)
    result = connection.execute(query)
    names = [column[0] for column in result.description]
    groups = []
    for values in result.fetchall():
        row = dict(zip(names, values, strict=True))
        if not keys and not row["clicks"]:
            return []
        groups.append((_group(row, keys), row))
    return groups


def _group(row: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """A group's figures: its actions and outcomes count its units (visitors, in a group by rollout arm, who also
    say how many clicks they made; otherwise clicks), and the shares are of them."""
    clicks = int(row["clicks"])
    group: dict[str, Any] = {"key": {name: row[name] for name in keys}}
    units = clicks
    if "visitors" in row:
        units = group["visitors"] = int(row["visitors"])
    group["clicks"] = clicks
    group["actions"] = {action: int(row[f"action_{action}"]) for action in ACTIONS}
    group["outcomes"] = {name: Share(int(row[name]), units).as_json() for name in OUTCOME_COLUMNS}
    return group


def _empty_group() -> dict[str, Any]:
    return {"key": {}, "clicks": 0, "actions": dict.fromkeys(ACTIONS, 0),
            "outcomes": {name: Share(0, 0).as_json() for name in OUTCOME_COLUMNS}}


def _empty_arm(rule: str, side: str) -> dict[str, Any]:
    """An arm no visitor clicked in, shaped as one that had some."""
    empty = _empty_group()
    return {"key": {"arm_rule": rule, "arm_side": side}, "visitors": 0, **{name: empty[name] for name in
                                                                           ("clicks", "actions", "outcomes")}}


def _arms(connection: Any, included: str) -> list[dict[str, Any]]:
    """Each rollout rule's two arms: visitors, their clicks, how many reached, the answer most of them got, and the
    channel all their clicks share."""
    by_rule: dict[str, dict[str, dict[str, Any]]] = {}
    detail: dict[tuple[str, str], dict[str, Any]] = {}
    for group, row in _group_rows(connection, ("arm",), included):
        rule, side = group["key"]["arm_rule"], group["key"]["arm_side"]
        by_rule.setdefault(rule, {})[side] = group
        detail[(rule, side)] = {"action": _most(row["answers"] or {}),
                                "channel": row["first_channel"] if row["first_channel"] == row["last_channel"]
                                else None}
    comparisons = []
    for rule in sorted(by_rule):
        sides = by_rule[rule]
        inside, outside = (sides.get(side) or _empty_arm(rule, side) for side in ("in", "out"))
        shares = [Share(side["outcomes"]["reached"]["count"], side["visitors"]) for side in (inside, outside)]
        d, low, high = difference(*shares)
        arm_in, arm_out = detail.get((rule, "in"), {}), detail.get((rule, "out"), {})
        comparisons.append({
            "rule": rule,
            "in": {**inside, "answer": arm_in.get("action"), "channel": arm_in.get("channel")},
            "out": {**outside, "answer": arm_out.get("action"), "channel": arm_out.get("channel")},
            "difference": {"reached": round(d, 6), "low": round(low, 6), "high": round(high, 6)},
            "sentence": _sentence(rule, shares, (inside["clicks"], outside["clicks"]), (arm_in, arm_out),
                                  (d, low, high)),
        })
    return comparisons


def _most(answers: dict[str, int]) -> str | None:
    """The answer most visitors got (a tie: the first by name); None when none had one."""
    return min(answers.items(), key=lambda item: (-item[1], item[0]))[0] if answers else None


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


def _sentence(rule: str, shares: list[Share], clicks: tuple[int, int],
              details: tuple[dict[str, Any], dict[str, Any]], diff: tuple[float, float, float]) -> str:
    """The comparison in words: shares of visitors (the rollout's unit), each arm's visitors and their clicks."""
    inside, outside = shares
    if not inside.total or not outside.total:
        empty = "in" if not inside.total else "out of"
        return f"{rule}: no clicks {empty} the rollout yet, so nothing to compare."
    arm_in, arm_out = details
    channel = arm_in.get("channel") if arm_in.get("channel") == arm_out.get("channel") else None
    of_what = f"{_CHANNEL_WORDS.get(channel, channel)} visitors" if channel else "visitors"
    answer_in = _ANSWER_WORDS.get(arm_in.get("action") or "", "its answer")
    answer_out = _ANSWER_WORDS.get(arm_out.get("action") or "", "the other answer")
    d, low, high = diff
    caveat = ""
    if (arm_in.get("action") in _REDIRECTS) != (arm_out.get("action") in _REDIRECTS):
        # A redirect is counted as reaching the item; a landing page only when its beacons say so (no script,
        # a lost beacon, a person who gave up: not reached). Say which side is assumed.
        caveat = " A redirect counts as reaching the item; a landing page only by what its beacons report."
    return (f"{rule}: {answer_in} reached the item for {_percent(inside)} of {of_what} in the rollout "
            f"(n = {inside.total:,} visitors, {clicks[0]:,} clicks) vs {_percent(outside)} for {answer_out} outside "
            f"it (n = {outside.total:,} visitors, {clicks[1]:,} clicks); difference {points(d)} points (95 % interval "
            f"{points(low)} to {points(high)}).{caveat}")
