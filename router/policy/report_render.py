"""The readout (router.policy.report) as text for a terminal, or as one self-contained HTML page.

The page has no script and loads nothing: its styles are inline, its bars inline SVG, and its own
Content-Security-Policy says so. Every value from the logs (rule ids, channels, app names) is escaped by
Jinja's autoescaping.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from functools import cache
from pathlib import Path
from typing import IO, Any

import jinja2

from router.policy.report import (
    ACTIONS,
    DIMENSIONS,
    OUTCOME_COLUMNS,
    ReportError,
    build_report,
    key_fields,
    percent_parts,
    points,
)
from router.policy.report import percent as share_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
_KEY_NAMES = {"arm_rule": "rollout", "arm_side": "arm"}
_TEXT_OUTCOMES = ("shown", "copied", "app_left", "escaped", "web", "reached")
_KEY_WIDTH = 28


def percent(share: dict[str, Any], compact: bool = False) -> str:
    """A share as the JSON holds it ({rate, low, high}), as router.policy.report writes shares: "92 % ± 3"."""
    return share_text(share["rate"], share["low"], share["high"], compact=compact)


def share_parts(share: dict[str, Any]) -> tuple[str, str]:
    """A share as the JSON holds it, as its figure and the larger side of its interval: ("92", "3")."""
    return percent_parts(share["rate"], share["low"], share["high"])


def printable(value: object) -> str:
    """A value from the logs as a terminal may show it: control and direction characters (an escape
    sequence, a newline, a right-to-left override) written as \\u escapes, never acted on."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def _key_text(key: dict[str, Any]) -> str:
    """A group's key as the text report writes it, whole: "rule / channel"."""
    return " / ".join(printable(value) for value in key.values()) or "all clicks"


def _row(key: str, figures: str) -> list[str]:
    """A table row: the key in its column, then the figures. A key longer than its column goes on a line of its
    own above the figures, whole: a rule id is what a reader searches the logs and the rules for, so it is
    never cut, and the figures keep their columns (the line may pass 120 columns only for a key longer than that,
    which a terminal wraps)."""
    if len(key) <= _KEY_WIDTH:
        return [f"{key:<{_KEY_WIDTH}} {figures}".rstrip()]
    return [key, f"{'':<{_KEY_WIDTH}} {figures}".rstrip()]


def _wrap(text: str, first: str = "", then: str = "") -> list[str]:
    """`text` in lines of 120 columns (the first indented by `first`, the others by `then`), broken at spaces only:
    a rule id in it (hyphens and all) stays on one line, whole, even one longer than a line."""
    return textwrap.wrap(text, 120, initial_indent=first, subsequent_indent=then, break_on_hyphens=False,
                         break_long_words=False)


def _heading(report: dict[str, Any]) -> str:
    total = report["total"]["clicks"]
    span = "".join(f", {word} {report[field]}" for word, field in (("since", "since"), ("until", "until"))
                   if report[field])
    by = ", ".join(_KEY_NAMES.get(name, name) for name in report["by"]) or "nothing"
    apart = []
    if report["click_ids_seen_twice"]:
        apart.append(f"click ids seen twice: {report['click_ids_seen_twice']:,} (different click lines under one id: "
                     "left out, their outcomes not counted)")
    if report["bots_left_out"]:
        apart.append(f"{report['bots_left_out']:,} bot clicks left out (--bots counts them)")
    if report["second_jump_clicks"]:
        apart.append(f"{report['second_jump_clicks']:,} second-jump clicks counted with their first click")
    return (f"{total:,} clicks in {report['files_read']} file(s){span}; by {by}"
            + "".join(f"; {words}" for words in apart))


ROLLOUT_HEADING = ("Rollouts (the visitors whose clicks reached the rule, in and out of its rollout, each counted once"
                   " per arm):")
# The groups by rollout arm count visitors (router.policy.report's _VISITOR_QUERY): said under the table.
BY_VISITOR = ("By rollout arm, a row counts visitors, each once however many clicks it made (a rollout draws its arm"
              " per visitor): reached if any of its clicks was, answered by the answer most of its clicks got. The"
              " all-clicks row counts clicks.")

_LEFT_OUT_WORDS = {"visitor_not_issued": "visitor not issued by the router",
                   "click_id_seen_twice": "click id seen twice"}


def arms_left_out(report: dict[str, Any]) -> str:
    """Which clicks in rollouts the arm comparison left out, and why, in one sentence; "" when none were."""
    reasons = [(count, _LEFT_OUT_WORDS[reason]) for reason, count in report["arms_left_out"].items() if count]
    if not reasons:
        return ""
    total = sum(count for count, _ in reasons)
    why = "; ".join(f"{words}: {count:,}" for count, words in reasons)
    sentence = f"Left out of the rollout comparison: {total:,} clicks in rollouts ({why})."
    if report["arms_left_out"]["visitor_not_issued"]:
        sentence += (" A visitor id the router did not issue itself (lines written before it said, or by hand) may"
                     " have been chosen for its arm.")
    return sentence


def _ad_clicks(count: int) -> str:
    return f"{count:,} ad click was" if count == 1 else f"{count:,} ad clicks were"


def unchecked_replays(report: dict[str, Any]) -> str:
    """The /ad clicks whose click id was checked for replays by less than the fleet's whole memory; "" if none."""
    checks = report["ad_replay_checks"]
    local, restarted = checks["local"], checks["restarted"]
    if not local and not restarted:
        return ""
    parts = []
    if local:
        parts.append(f"{_ad_clicks(local)} decided while the fleet's store could not check their click id "
                     "(local: only the answering router's memory was asked)")
    if restarted:
        count = f"{restarted:,}" if parts else _ad_clicks(restarted) + " decided"
        parts.append(f"{count} while its store had lost its memory of click ids (restarted: it had forgotten "
                     "earlier ones)")
    where = " or ".join(place for place, count in (("on another router", local), ("before the loss", restarted))
                        if count)
    return f"Replays not checked: {' and '.join(parts)}. A replay of a click id first used {where} went unnoticed."


def render_text(report: dict[str, Any]) -> str:
    """Fits 120 columns: the group, clicks (visitors, by rollout arm), answers by action, then each outcome as a share
    ± its interval; then the rollouts. Keys (rule ids above all) are never cut: a long one has a line of its own
    (_row)."""
    lines = [*_wrap(_heading(report)), ""]
    if replays := unchecked_replays(report):
        lines += [*_wrap(replays), ""]
    if not report["total"]["clicks"]:
        lines += ["No click lines in these files (or none in the time window): nothing to report.", ""]
    lines += _group_lines(report)
    counted = "visitors" if "arm" in report["by"] else "clicks"
    lines += ["", f"Shares of each group's {counted} in %, ± the larger side of their 95 % interval (Wilson). reached:",
              "a web or app redirect, or a landing page copied from, left for the app, escaped from or followed to",
              "the web. all clicks: every click once, whatever its group."]
    if "arm" in report["by"]:
        lines += _wrap(BY_VISITOR)
    left_out = arms_left_out(report)
    if report["arms"]:
        lines += ["", *_rollout_lines(report["arms"])]
    elif "arm" in report["by"] and not left_out:
        lines += ["", "No rule with a partial rollout (between 0 and 100 %) was reached by these clicks."]
    if left_out:
        lines += ["", *_wrap(left_out)]
    return "\n".join(lines) + "\n"


def units(group: dict[str, Any]) -> int:
    """What a group's shares are of: its visitors in a group by rollout arm, otherwise its clicks."""
    return int(group.get("visitors", group["clicks"]))


def _group_figures(group: dict[str, Any]) -> str:
    actions = "/".join(f"{group['actions'][action]:,}" for action in ACTIONS)
    return (f"{units(group):>8,}  {actions:<21}"
            + "".join(f" {percent(group['outcomes'][name], True):>9}" for name in _TEXT_OUTCOMES))


def _group_lines(report: dict[str, Any]) -> list[str]:
    """The groups' table, then below a rule the all-clicks row: the report's total, the same figures of every
    click (made by the same query and the same share and interval functions as the groups')."""
    counted = "visitors" if "arm" in report["by"] else "clicks"
    header = (f"{'group':<{_KEY_WIDTH}} {counted:>8}  {'app/web/landing/block':<21}"
              + "".join(f" {name:>9}" for name in _TEXT_OUTCOMES))
    lines = [header, "-" * len(header)]
    for group in report["groups"]:
        lines += _row(_key_text(group["key"]), _group_figures(group))
    lines += ["-" * len(header), *_row("all clicks", _group_figures(report["total"]))]
    return lines


def _rollout_lines(arms: list[dict[str, Any]]) -> list[str]:
    """Each rollout's two arms side by side (its rule once, whole): visitors, the clicks they made, the answer most
    got, the share reached; then the sentences to read out."""
    lines = [ROLLOUT_HEADING, "",
             f"{'rollout':<{_KEY_WIDTH}} {'arm':<4} {'visitors':>8} {'clicks':>8}  {'answer':<10} {'reached':>9}"
             "  difference"]
    for comparison in arms:
        difference = comparison["difference"]
        change = (f"{points(difference['reached'])} points ({points(difference['low'])} to "
                  f"{points(difference['high'])})")
        for side in ("in", "out"):
            arm = comparison[side]
            figures = (f"{side:<4} {arm['visitors']:>8,} {arm['clicks']:>8,}  {arm['answer'] or '-':<10} "
                       f"{percent(arm['outcomes']['reached'], True):>9}  {change if side == 'in' else ''}")
            if side == "in":
                lines += _row(printable(comparison["rule"]), figures)
            else:
                lines.append(f"{'':<{_KEY_WIDTH}} {figures}".rstrip())
    lines.append("")
    for comparison in arms:
        lines += _wrap(printable(comparison["sentence"]), "- ", "  ")
    return lines


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, auto_reload=False,
    )
    env.filters["percent"] = percent
    env.filters["share_parts"] = share_parts
    return env


# The HTML table's narrowest (its figures on one line each, every key column at its least), measured in headless
# Chromium with DejaVu Sans, wider than the system fonts of macOS, Windows or phones: the page's margins and the
# figures' columns for a day of up to 99,999,999 clicks (with room to spare), then each key column, then each
# character a larger day's count has. A window narrower than this gets the page's cards, never a table that
# scrolls sideways.
_TABLE_PX = 1040
_KEY_COLUMN_PX = 115
_COUNT_CHARACTER_PX = 60
_COUNT_CHARACTERS = len("99,999,999")


def table_width(key_count: int, clicks: int) -> int:
    """The narrowest window (CSS px) the readout's table fits without scrolling sideways; below it, cards."""
    longer = max(0, len(f"{clicks:,}") - _COUNT_CHARACTERS)
    return _TABLE_PX + _KEY_COLUMN_PX * max(key_count, 1) + _COUNT_CHARACTER_PX * longer


def render_html(report: dict[str, Any]) -> str:
    columns = key_fields(report["by"])
    return _environment().get_template("report.html").render(
        report=report, heading=_heading(report), outcomes=OUTCOME_COLUMNS, actions=ACTIONS,
        by_visitor=BY_VISITOR if "arm" in report["by"] else "",
        arms_left_out=arms_left_out(report), unchecked_replays=unchecked_replays(report),
        key_names=_KEY_NAMES, key_columns=columns,
        # The total's count is the largest the table holds: no group has more clicks (nor visitors, each of whom made
        # one at least), nor answers of one kind.
        table_width=table_width(len(columns), report["total"]["clicks"]),
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report", help="what happened after the tap: outcomes per rule, channel, app, OS, rollout arm, link or tag")
    parser.add_argument("--clicks", nargs="+", required=True, metavar="FILE",
                        help="the click stream: the server's output (mixed lines are fine), .gz too, globs, or "
                        "object-storage URLs DuckDB reads")
    parser.add_argument("--since", metavar="TIME", help="clicks at or after TIME (ISO 8601; no zone: UTC)")
    parser.add_argument("--until", metavar="TIME", help="clicks before TIME")
    parser.add_argument("--by", nargs="+", choices=DIMENSIONS, default=["rule"], metavar="DIMENSION",
                        help=f"group by one or more of {', '.join(DIMENSIONS)} (default: rule)")
    parser.add_argument("--bots", action="store_true",
                        help="count bots' clicks (link previews, crawlers) in the groups; by default they are left out")
    parser.add_argument("--format", choices=("text", "json", "html"), default="text")
    parser.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: IO[str]) -> int:
    try:
        report = build_report(args.clicks, by=args.by, since=args.since, until=args.until, bots=args.bots)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not report["total"]["clicks"]:
        print("warning: no click lines in these files (or none in the time window)", file=sys.stderr)
    if args.format == "json":
        page = json.dumps(report, ensure_ascii=False, indent=2) + "\n"
    else:
        page = render_html(report) if args.format == "html" else render_text(report)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(page)
        except OSError as err:
            print(f"error: can't write --output {args.output}: {err.strerror or err}", file=sys.stderr)
            return 2
    else:
        out.write(page)
    return 0
