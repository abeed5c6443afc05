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

from router.policy.report import ACTIONS, DIMENSIONS, OUTCOME_COLUMNS, ReportError, build_report, points
from router.policy.report import percent as share_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
_KEY_NAMES = {"arm_rule": "rollout", "arm_side": "arm"}
_TEXT_OUTCOMES = ("shown", "copied", "app_left", "escaped", "web", "reached")
_KEY_WIDTH = 28


def percent(share: dict[str, Any], compact: bool = False) -> str:
    """A share as the JSON holds it ({rate, low, high}), as router.policy.report writes shares: "92 % ± 3"."""
    return share_text(share["rate"], share["low"], share["high"], compact=compact)


def printable(value: object) -> str:
    """A value from the logs as a terminal may show it: control and direction characters (an escape
    sequence, a newline, a right-to-left override) written as \\u escapes, never acted on."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def _key_text(key: dict[str, Any]) -> str:
    """A group's key in the key column: the last part (an arm's side, say) whole, the first ones cut to fit."""
    parts = [printable(value) for value in key.values()] or ["all clicks"]
    text = " / ".join(parts)
    if len(text) <= _KEY_WIDTH:
        return text
    tail = " / " + " / ".join(parts[1:]) if len(parts) > 1 else ""
    room = max(_KEY_WIDTH - len(tail) - 1, 4)
    return (parts[0][:room] + "…" + tail)[:_KEY_WIDTH]


def _heading(report: dict[str, Any]) -> str:
    total = report["total"]["clicks"]
    span = "".join(f", {word} {report[field]}" for word, field in (("since", "since"), ("until", "until"))
                   if report[field])
    by = ", ".join(_KEY_NAMES.get(name, name) for name in report["by"]) or "nothing"
    apart = []
    if report["bots_left_out"]:
        apart.append(f"{report['bots_left_out']:,} bot clicks left out (--bots counts them)")
    if report["second_jump_clicks"]:
        apart.append(f"{report['second_jump_clicks']:,} second-jump clicks counted with their first click")
    return (f"{total:,} clicks in {report['files_read']} file(s){span}; by {by}"
            + "".join(f"; {words}" for words in apart))


def render_text(report: dict[str, Any]) -> str:
    """Fits 120 columns: the group, clicks, answers by action, then each outcome as a share ± its interval."""
    lines = [*textwrap.wrap(_heading(report), 120), ""]
    if not report["total"]["clicks"]:
        lines += ["No click lines in these files (or none in the time window): nothing to report.", ""]
    header = (f"{'group':<{_KEY_WIDTH}} {'clicks':>8}  {'app/web/landing/block':<21}"
              + "".join(f" {name:>9}" for name in _TEXT_OUTCOMES))
    lines += [header, "-" * len(header)]
    for group in [*report["groups"], {**report["total"], "key": {"all": "all clicks"}}]:
        actions = "/".join(f"{group['actions'][action]:,}" for action in ACTIONS)
        lines.append(f"{_key_text(group['key']):<{_KEY_WIDTH}} {group['clicks']:>8,}  {actions:<21}"
                     + "".join(f" {percent(group['outcomes'][name], True):>9}" for name in _TEXT_OUTCOMES))
    lines += ["", "Shares of each group's clicks in %, ± the larger side of their 95 % interval (Wilson). reached:",
              "a web or app redirect, or a landing page copied from, left for the app, escaped from or followed to",
              "the web."]
    if not report["arms"] and "arm" in report["by"]:
        lines += ["", "No rule with a partial rollout (between 0 and 100 %) was reached by these clicks."]
    if report["arms"]:
        lines += ["", "Rollouts (clicks that reached the rule, in and out of its rollout):", ""]
        lines.append(f"{'rollout':<{_KEY_WIDTH}} {'arm':<4} {'clicks':>8}  {'answer':<10} {'reached':>9}  difference")
        for comparison in report["arms"]:
            difference = comparison["difference"]
            for side in ("in", "out"):
                arm = comparison[side]
                name = _key_text({"rule": comparison["rule"]}) if side == "in" else ""
                change = (f"{points(difference['reached'])} points ({points(difference['low'])} to "
                          f"{points(difference['high'])})") if side == "in" else ""
                lines.append(f"{name:<{_KEY_WIDTH}} {side:<4} {arm['clicks']:>8,}  {arm['answer'] or '-':<10} "
                             f"{percent(arm['outcomes']['reached'], True):>9}  {change}".rstrip())
        lines.append("")
        for comparison in report["arms"]:
            lines += textwrap.wrap(printable(comparison["sentence"]), 120, initial_indent="- ", subsequent_indent="  ")
    return "\n".join(lines) + "\n"


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, auto_reload=False,
    )
    env.filters["percent"] = percent
    return env


def render_html(report: dict[str, Any]) -> str:
    return _environment().get_template("report.html").render(
        report=report, heading=_heading(report), outcomes=OUTCOME_COLUMNS, actions=ACTIONS,
        key_names=_KEY_NAMES,
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report", help="what happened after the tap: outcomes per rule, channel, app, OS or rollout arm")
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
