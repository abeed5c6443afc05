"""`rules matrix`: the decision table of a rule set — named client × channel → action and rule.

Every cell is one click decided by the code the server runs (`router.policy.casebook.answer`: the request a real
tap would send, read by `read_click`, walked by `explain`), for the same link at the same moment. Rows are
the named clients of `router.decision.named_clients`, in their groups; columns are the channels, the ad channel
split by ad source because that is where the rules differ.

A rule at a partial rollout (between 0 and 100%) answers only some visitors, so a cell it applies to shows
the answer for everyone else and, beside it, the rollout's answer and share. Rules at rollout 0 answer
nobody and never show.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from router.decision.conditions import AdField, Rollout
from router.decision.known_agents import example, load_corpus
from router.decision.links import LinkError, parse_link
from router.decision.named_clients import CLIENTS, GROUPS, NamedClient
from router.decision.rules import Rule, RuleSet
from router.decision.types import Action, Channel
from router.decision.versions import format_version
from router.policy.casebook import Answer, Click, answer
from router.policy.replay import parse_time
from router.serve.config import Settings
from router.serve.reload import load_reporting

DEFAULT_LINK = "https://item.taobao.com/item.htm?id=123456"
OTHER_AD_SOURCE = "other"  # an ad source no shipped rule names


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    channel: Channel
    ad_source: str = ""


COLUMNS = (
    Column("ad: unidesk", Channel.AD, "unidesk"),
    Column("ad: other source", Channel.AD, OTHER_AD_SOURCE),
    Column("private_chat", Channel.PRIVATE_CHAT),
    Column("group_chat", Channel.GROUP_CHAT),
    Column("moments", Channel.MOMENTS),
    Column("unknown", Channel.UNKNOWN),
)

ACTION_MEANINGS = {
    Action.APP: "302 straight into the app",
    Action.WEB: "302 to the web page",
    Action.LANDING: "200, the intermediate landing page",
    Action.BLOCK: "4xx page that says why",
}


@dataclass(frozen=True, slots=True)
class Cell:
    answer: Answer  # for every visitor outside partial rollouts
    rollouts: tuple[tuple[float, Answer], ...] = ()  # (percent, answer) for visitors inside one
    # Ad clicks whose advertiser or campaign a rule names, where that rule answers otherwise:
    # ("advertiser 6666", answer).
    ad_notes: tuple[tuple[str, Answer], ...] = ()

    def text(self) -> str:
        parts = [_named(self.answer)] + [f"{percent:g}%: {_named(inside)}" for percent, inside in self.rollouts]
        return "; ".join(parts)

    def short(self, number: dict[str, int]) -> str:
        """The cell in the narrow table: actions, each with its rule's number in the legend; a * when some
        advertiser or campaign is answered otherwise (the notes below say which)."""
        parts = [f"{self.answer.action} [{number[self.answer.rule]}]"]
        parts += [f"{percent:g}%: {inside.action} [{number[inside.rule]}]" for percent, inside in self.rollouts]
        return "; ".join(parts) + (" *" if self.ad_notes else "")


def _named(got: Answer) -> str:
    return f"{got.action} ({got.rule})"


@dataclass(frozen=True, slots=True)
class Matrix:
    rules: RuleSet
    link: str
    at: datetime
    rows: tuple[tuple[NamedClient, tuple[Cell, ...]], ...]


def _rollout(rule: Rule) -> float | None:
    for condition in rule.conditions:
        if isinstance(condition, Rollout):
            return condition.percent
    return None


def _partial(rule: Rule) -> bool:
    percent = _rollout(rule)
    return percent is not None and 0 < percent < 100


def _inside(rules: RuleSet, pilot: Rule) -> RuleSet:
    """The rules as a visitor inside `pilot`'s rollout meets them: outside every other partial rollout."""
    opened = dataclasses.replace(
        pilot, conditions=tuple(condition for condition in pilot.conditions if not isinstance(condition, Rollout))
    )
    kept = (opened if rule is pilot else rule for rule in rules.rules if rule is pilot or not _partial(rule))
    return dataclasses.replace(rules, rules=tuple(kept))


def matrix_clients(rules: RuleSet, rules_dir: Path | None = None) -> list[NamedClient]:
    """The named clients, and for every app of the rules' catalogue none of them is read as, one of its known
    user agents (router.decision.known_agents) named after it: a row per app the catalogue names."""
    clients = sorted(CLIENTS.values(), key=lambda named: GROUPS.index(named.group))
    covered = {str(rules.reader.parse(client.ua).app) for client in clients}
    corpus = load_corpus(rules_dir)  # the rules directory's own known user agents, else the shipped ones
    for entry in rules.apps:
        if entry.id in covered or not entry.markers or entry.kind == "bot":
            continue
        known = example(corpus, entry.id)
        if known is not None:
            group = "browsers" if entry.kind == "browser" else "other in-app"
            clients.append(NamedClient(entry.id, group, known.ua))
    return sorted(clients, key=lambda named: GROUPS.index(named.group))


def build_matrix(rules: RuleSet, settings: Settings, link: str = DEFAULT_LINK, at: datetime | None = None) -> Matrix:
    """Decide every (named client, column) click; `at` defaults to now."""
    moment = at or datetime.now(UTC)
    # Everyone outside the partial rollouts meets the rules as if those were not there.
    outside = dataclasses.replace(rules, rules=tuple(rule for rule in rules.rules if not _partial(rule)))
    pilots = [(rule, _rollout(rule) or 0.0, _inside(rules, rule)) for rule in rules.rules if _partial(rule)]
    rows = []
    for client in matrix_clients(rules, None if settings.rules_url else Path(settings.rules_dir)):
        cells = []
        for column in COLUMNS:
            click = Click(url=link, ua=client.ua, channel=column.channel, ad_source=column.ad_source)
            rollouts = []
            for pilot, percent, inside in pilots:
                got = answer(click, inside, settings, moment)
                if got.rule == pilot.id:
                    rollouts.append((percent, got))
            base = answer(click, outside, settings, moment)
            notes = _ad_notes(click, base, outside, settings, moment) if column.channel is Channel.AD else ()
            cells.append(Cell(base, tuple(rollouts), notes))
        rows.append((client, tuple(cells)))
    return Matrix(rules, link, moment, tuple(rows))


_COLUMN_SOURCES = frozenset(column.ad_source for column in COLUMNS if column.ad_source)


def _ad_notes(click: Click, base: Answer, rules: RuleSet, settings: Settings,
              moment: datetime) -> tuple[tuple[str, Answer], ...]:
    """For each ad source, advertiser and campaign a rule names: the answer an ad click with it gets, where it
    differs from the cell's (an advertiser blocked, a campaign sent to the web…)."""
    notes = []
    for rule in rules.rules:
        for condition in rule.conditions:
            if not isinstance(condition, AdField):
                continue
            field_name = condition.key  # the Click field it goes in is named as the condition
            for value in sorted(condition.values):
                if field_name == "ad_source" and value in _COLUMN_SOURCES:
                    continue  # a source with a column of its own: its cells say it
                asked = dataclasses.replace(click, **{field_name: value})  # type: ignore[arg-type]
                got = answer(asked, rules, settings, moment)
                if (got.action, got.rule) != (base.action, base.rule):
                    note = (f"{field_name} {value}", got)
                    if note not in notes:
                        notes.append(note)
    return tuple(notes)


TEXT_WIDTH = 120  # the table fits a terminal this wide; when it can't, one block per client instead


def render_text(matrix: Matrix) -> str:
    """The table within TEXT_WIDTH columns: each cell its action and its rule's number, the rules listed
    below with where they are written; advertiser and campaign notes below that. When even that is wider
    (many partial rollouts), one block per client, a line per channel."""
    used = [rule.id for rule in matrix.rules.rules if any(
        rule.id in (cell.answer.rule, *(inside.rule for _, inside in cell.rollouts),
                    *(got.rule for _, got in cell.ad_notes))
        for _, cells in matrix.rows for cell in cells)]
    number = {rule_id: n for n, rule_id in enumerate([*used, "default"], start=1)}
    out = textwrap.wrap(f"rules {matrix.rules.version} ({', '.join(matrix.rules.files)}); link {matrix.link}; "
                        f"at {matrix.at.isoformat(timespec='seconds')}", TEXT_WIDTH, break_on_hyphens=False)
    header = ["client", *(column.title for column in COLUMNS)]
    lines: list[list[str]] = [header]
    group = ""
    for client, cells in matrix.rows:
        if client.group != group:
            group = client.group
            lines.append([group])
        lines.append([f"  {client.name}", *(cell.short(number) for cell in cells)])
    widths = [max(len(line[i]) for line in lines if len(line) > i) for i in range(len(header))]
    table = ["  ".join(value.ljust(widths[i]) for i, value in enumerate(line)).rstrip() for line in lines]
    if max(len(line) for line in table) <= TEXT_WIDTH:
        out += table
    else:
        for client, cells in matrix.rows:
            out.append(f"{client.group}: {client.name}")
            out += [f"  {column.title:<18} {cell.short(number)}" for column, cell in zip(COLUMNS, cells, strict=True)]
    where = {rule.id: rule.where for rule in matrix.rules.rules}
    out.append("")
    out += [f"[{n}] {rule_id}" + (f" ({where[rule_id]})" if rule_id in where else ": no rule matched")
            for rule_id, n in number.items() if rule_id in used or rule_id == "default"]
    # One note per (column, advertiser or campaign, answer), with the clients it applies to.
    notes: dict[tuple[str, str, str], list[str]] = {}
    for client, cells in matrix.rows:
        for column, cell in zip(COLUMNS, cells, strict=True):
            for label, got in cell.ad_notes:
                notes.setdefault((column.title, label, f"{got.action} [{number[got.rule]}]"), []).append(client.name)
    if notes:
        out += ["", "* ad clicks whose advertiser or campaign a rule names are answered otherwise:"]
        for (title, label, got_text), names in notes.items():
            whom = "every client" if len(names) == len(matrix.rows) else ", ".join(names)
            out += textwrap.wrap(f"{title}, {label}: {got_text} for {whom}", TEXT_WIDTH,
                                 initial_indent="  ", subsequent_indent="    ")
    return "\n".join(out) + "\n"


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px}
p.meta{margin:0 0 16px;color:#59636e}
table{border-collapse:collapse}
th,td{border:1px solid #d1d9e0;padding:6px 8px;text-align:left;vertical-align:top}
thead th{background:#f6f8fa;position:sticky;top:0}
tr.group th{background:#eef1f4;font-size:13px;text-transform:uppercase;letter-spacing:.04em}
th.client small{display:block;font-weight:normal;color:#59636e}
td b{display:block}
td small{display:block;color:#3d444d;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
td .rollout{border-top:1px dashed #8c959f;margin-top:4px;padding-top:4px}
.app{background:#dafbe1}.web{background:#ddf4ff}.landing{background:#fff8c5}.block{background:#ffebe9}
ul.legend{list-style:none;padding:0;display:flex;gap:16px;flex-wrap:wrap}
ul.legend li span{display:inline-block;width:14px;height:14px;border:1px solid #8c959f;
  vertical-align:-2px;margin-right:6px}
"""


def render_html(matrix: Matrix, generated: datetime | None = None) -> str:
    """One self-contained page: inline CSS, no scripts, no external requests, every value escaped."""
    e = html.escape
    described = {rule.id: f"{rule.id} ({rule.where}): {rule.description}" for rule in matrix.rules.rules}
    described["default"] = "default: no rule matched"
    made = (generated or datetime.now(UTC)).isoformat(timespec="seconds")

    def answer_html(got: Answer, prefix: str = "") -> str:
        title = described.get(got.rule, got.reason or got.rule)
        return f'<b>{e(prefix)}{e(got.action)}</b><small title="{e(title)}">{e(got.rule)}</small>'

    def cell_html(cell: Cell) -> str:
        inner = answer_html(cell.answer)
        for percent, inside in cell.rollouts:
            inner += (f'<div class="rollout {e(inside.action)}">'
                      f'{answer_html(inside, f"{percent:g}% of visitors: ")}</div>')
        for label, got in cell.ad_notes:
            inner += f'<div class="rollout {e(got.action)}">{answer_html(got, f"{label}: ")}</div>'
        return f'<td class="{e(cell.answer.action)}">{inner}</td>'

    rows = []
    group = ""
    for client, cells in matrix.rows:
        if client.group != group:
            group = client.group
            rows.append(f'<tr class="group"><th colspan="{len(COLUMNS) + 1}" scope="rowgroup">{e(group)}</th></tr>')
        parsed = matrix.rules.reader.parse(client.ua)
        version = f" {format_version(parsed.app_version)}" if parsed.app_version else ""
        summary = f"{parsed.app}{version} · {parsed.os} · {parsed.device}"
        rows.append(f'<tr><th class="client" scope="row" title="{e(client.ua)}">{e(client.name)}'
                    f'<small>{e(summary)}</small></th>{"".join(cell_html(cell) for cell in cells)}</tr>')
    legend = "".join(f'<li><span class="{e(action)}"></span><b>{e(action)}</b>: {e(meaning)}</li>'
                     for action, meaning in ACTION_MEANINGS.items())
    columns = "".join(f'<th scope="col">{e(column.title)}</th>' for column in COLUMNS)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Decision matrix — rules {e(matrix.rules.version)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Decision matrix</h1>
<p class="meta">Rules version <code>{e(matrix.rules.version)}</code> ({e(", ".join(matrix.rules.files))}) ·
link <code>{e(matrix.link)}</code> · decided at {e(matrix.at.isoformat(timespec="seconds"))} ·
generated {e(made)}</p>
<ul class="legend">{legend}</ul>
<table>
<thead><tr><th scope="col">client</th>{columns}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<p class="meta">Each cell: the action, and the rule that decided it (hover for the rule's file, line and
description; hover a client for its user agent). Ad columns are signed /ad links with that ad source;
chat and Moments columns carry WeChat's share parameter; unknown carries neither.</p>
</body>
</html>
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("matrix", help="print the decision table: named client × channel → action")
    parser.add_argument("directory", nargs="?",
                        help="rules directory (default: $ROUTER_RULES_DIR or the shipped rules)")
    parser.add_argument("--format", choices=("text", "html"), default="text")
    parser.add_argument("--link", default=DEFAULT_LINK, help=f"the link every cell clicks (default: {DEFAULT_LINK})")
    parser.add_argument("--at", help="time of the clicks, ISO 8601 with timezone (default: now)")
    parser.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: IO[str]) -> int:
    try:
        settings = Settings.from_env(rules_dir=args.directory, serving=False)
        at = parse_time(args.at) if args.at else None
        parse_link(args.link, settings.allowed_hosts)
    except LinkError as err:
        print(f"error: --link: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # bad settings or --at
        print(f"error: {err}", file=sys.stderr)
        return 2
    rules = load_reporting(settings, lambda line: print(line, file=sys.stderr))
    if rules is None:
        return 1
    matrix = build_matrix(rules, settings, args.link, at)
    page = render_html(matrix) if args.format == "html" else render_text(matrix)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(page)
    else:
        out.write(page)
    return 0
