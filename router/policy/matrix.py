"""`rules matrix`: the decision table of a rule set — named client × channel → action and rule.

Every cell is one click decided by the code the server runs (`router.policy.casebook.answer`: the request a real
tap would send, read by `read_click`, walked by `explain`), for the same link at the same moment. Rows are
the named clients of `router.decision.named_clients`, in their groups; columns are the channels, the ad channel
split by ad source because that is where the rules differ.

A rule at a partial rollout (between 0 and 100%) answers only some visitors, so a cell it applies to shows
the answer for everyone else and, beside it, the rollout's answer and share. Rules at rollout 0 answer
nobody and never show.

A rule on a fact of the ad (its source, advertiser or campaign) answers only some ad links, and not only in
the ad columns: an ad link re-shared into a chat or Moments keeps its verified claim (WeChat's `from=` decides
the channel), and one signed with a channel (`ch=`) lands in that channel. So every cell is asked again with
the ad claims the rules name, as links of that column's channel, and a cell where one is answered otherwise
carries a note: which claim, and the answer and rule it gets (a pilot's with its share).
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import itertools
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

from router.decision.click import WECHAT_FROM
from router.decision.conditions import AdField, ChannelIs, Rollout
from router.decision.known_agents import example, load_corpus
from router.decision.links import LinkError, parse_link
from router.decision.named_clients import CLIENTS, GROUPS, NamedClient
from router.decision.rules import Rule, RuleSet
from router.decision.signing import sign
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
    # Ad links in this column whose source, advertiser or campaign a rule names, where they are answered
    # otherwise: ("advertiser 6666", answer), ("ad_source gdt, advertiser 1001", …), a pilot's
    # ("advertiser 1001, 5% of visitors", …).
    ad_notes: tuple[tuple[str, Answer], ...] = ()

    def text(self) -> str:
        parts = [_named(self.answer)] + [f"{percent:g}%: {_named(inside)}" for percent, inside in self.rollouts]
        return "; ".join(parts)

    def short(self, number: dict[str, int]) -> str:
        """The cell in the narrow table: actions, each with its rule's number in the legend; a * when some
        ad source, advertiser or campaign is answered otherwise (the notes below say which)."""
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
    asked = {column: _asked(column, rules, outside) for column in COLUMNS}
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
            notes = _ad_notes(column, client, link, base, asked[column], settings, moment)
            cells.append(Cell(base, tuple(rollouts), notes))
        rows.append((client, tuple(cells)))
    return Matrix(rules, link, moment, tuple(rows))


_COLUMN_SOURCES = frozenset(column.ad_source for column in COLUMNS if column.ad_source)
AD_FIELDS = {"ad_source": "src", "advertiser": "adv", "campaign": "cmp"}
"""The ad conditions (AdField) the matrix asks about, each with the /ad link field its value is signed in."""
_SHARED_AS = {channel: word for word, channel in WECHAT_FROM.items()}  # chats and Moments: WeChat's from=


@dataclass(frozen=True, slots=True)
class _Asked:
    """What one rule on the ad claim asks of one column's cells: every claim it names (each combination of the
    values it lists: condition key → value, and how a note names that claim), how a note names them all, the
    rules they are answered by, and for a pilot the pilot (whose answers alone are noted)."""

    claims: tuple[tuple[tuple[tuple[str, str], ...], str], ...]
    label: str
    rules: RuleSet
    pilot: str | None = None


def _asked(column: Column, rules: RuleSet, outside: RuleSet) -> list[_Asked]:
    """For every rule on the ad claim (its source, advertiser or campaign), the claims it names, as ad links of
    `column`'s channel would carry them: what the cells of `column` are asked again with. A rule whose channel
    condition leaves out the column's channel asks nothing there, nor does one at rollout 0; a source with an
    ad column of its own is asked only in that column. Outside the ad columns a rule that names no source asks
    with OTHER_AD_SOURCE."""
    asked = []
    named = _named_by_rule(rules)
    for rule in rules.rules:
        on_ad = [condition for condition in rule.conditions if isinstance(condition, AdField)]
        percent = _rollout(rule)
        if not on_ad or percent == 0 or any(isinstance(condition, ChannelIs) and column.channel not in
                                            condition.values for condition in rule.conditions):
            continue
        choices: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for condition in on_ad:
            if condition.key not in AD_FIELDS:
                raise ValueError(f"rule {rule.id}: the matrix can't ask about ad condition {condition.key!r}")
            listed = sorted(condition.values)
            if condition.key == "ad_source" and column.ad_source:
                listed = [value for value in listed if value == column.ad_source or value not in _COLUMN_SOURCES]
            choices[condition.key] = _kinds(listed, _elsewhere(named, condition.key, rule.id))
        keys = [key for key in AD_FIELDS if key in choices]
        share = [f"{percent:g}% of visitors"] if _partial(rule) else []
        claims = []
        values: dict[str, list[str]] = {key: [] for key in keys}  # of the claims asked, for the shared note
        for combination in itertools.product(*(choices[key] for key in keys)):
            chosen = {key: value for key, (value, _) in zip(keys, combination, strict=True)}
            members = {key: stands_for for key, (_, stands_for) in zip(keys, combination, strict=True)}
            said = [f"{key} {_named_values(members[key])}" for key in keys
                    if not (key == "ad_source" and chosen[key] == column.ad_source)]
            if not said:
                continue  # the column's own source and nothing else: its cells say it
            fields = {"ad_source": column.ad_source or OTHER_AD_SOURCE, **chosen}
            claims.append((tuple(sorted(fields.items())), ", ".join([*said, *share])))
            for key, stands_for in members.items():
                values[key] += [value for value in stands_for if value not in values[key]]
        if claims:
            label = ", ".join([*(f"{key} {_named_values(sorted(values[key]))}" for key in keys
                                 if values[key] != [column.ad_source]), *share])
            pilot = rule.id if share else None
            asked.append(_Asked(tuple(claims), label, _inside(rules, rule) if pilot else outside, pilot))
    return asked


def _named_by_rule(rules: RuleSet) -> dict[str, dict[str, set[str]]]:
    """For each ad condition key, each rule's id → the values its condition on that key names."""
    named: dict[str, dict[str, set[str]]] = {key: {} for key in AD_FIELDS}
    for rule in rules.rules:
        for condition in rule.conditions:
            if isinstance(condition, AdField) and condition.key in named:
                named[condition.key].setdefault(rule.id, set()).update(condition.values)
    return named


def _elsewhere(named: dict[str, dict[str, set[str]]], key: str, rule_id: str) -> set[str]:
    """The values of `key` some rule other than `rule_id` names."""
    return {value for other, values in named[key].items() if other != rule_id for value in values}


_SHOWN_VALUES = 3  # a note names at most this many of the values asked as one


def _kinds(listed: list[str], elsewhere: set[str]) -> list[tuple[str, tuple[str, ...]]]:
    """The values of one ad condition worth asking about, each as (the value signed, the listed values it
    stands for). A value no other rule names is answered as any other such value (every rule's condition on
    this key treats them alike), so they are asked once, as one: a rule listing 300 advertisers costs one
    claim, not 300, unless other rules single some of them out."""
    apart: list[tuple[str, tuple[str, ...]]] = [(value, (value,)) for value in listed if value in elsewhere]
    alike = tuple(value for value in listed if value not in elsewhere)
    return [*apart, (alike[0], alike)] if alike else apart


def _named_values(values: list[str] | tuple[str, ...]) -> str:
    """How a note names values asked as one: the first few, then how many more."""
    shown = " or ".join(values[:_SHOWN_VALUES])
    more = len(values) - _SHOWN_VALUES
    return f"{shown} or {more} more" if more > 0 else shown


def _ad_request(link: str, channel: Channel, fields: dict[str, str], settings: Settings) -> str:
    """The signed /ad link a claim of `fields` is clicked as in `channel`: as bought for the ad columns,
    re-shared (WeChat's from=) for chats and Moments, signed with the channel (ch=) for any other."""
    signed = {"url": link, **{AD_FIELDS[key]: value for key, value in fields.items()}}
    extra = []
    if channel in _SHARED_AS:
        extra.append(("from", _SHARED_AS[channel]))
    elif channel is not Channel.AD:
        signed["ch"] = channel.value
    return f"/ad?{urlencode([*sign(signed, settings.signing_keys).items(), *extra], quote_via=quote)}"


def _ad_notes(column: Column, client: NamedClient, link: str, base: Answer, asked: list[_Asked],
              settings: Settings, moment: datetime) -> tuple[tuple[str, Answer], ...]:
    """For each ad claim a rule names: the answer a link of `column`'s channel with that claim gets, where it
    differs from the cell's (an advertiser blocked, a campaign sent to the web…). A rule's claims that all get
    the same answer share one note (`advertiser 1001 or 1002`)."""
    notes: list[tuple[str, Answer]] = []
    for rule in asked:
        answered = []
        for fields, label in rule.claims:
            click = Click(raw_request=_ad_request(link, column.channel, dict(fields), settings), ua=client.ua)
            got = answer(click, rule.rules, settings, moment)
            if got.channel not in (column.channel, None):
                raise RuntimeError(f"the matrix's ad link with {label} in {column.title} was read as {got.channel}")
            if rule.pilot is not None and got.rule != rule.pilot:
                continue  # the pilot's visitors get what everyone else does: the cell (and its rollouts) say it
            if (got.action, got.rule) != (base.action, base.rule):
                answered.append((label, got))
        alike = {(got.action, got.rule) for _, got in answered}
        if len(answered) > 1 and len(answered) == len(rule.claims) and len(alike) == 1:
            answered = [(rule.label, answered[0][1])]
        notes += [(label, got) for label, got in answered
                  if (label, got.action, got.rule) not in {(said, was.action, was.rule) for said, was in notes}]
    return tuple(notes)


TEXT_WIDTH = 120  # the table fits a terminal this wide; when it can't, one block per client instead


def render_text(matrix: Matrix) -> str:
    """The table within TEXT_WIDTH columns: each cell its action and its rule's number, the rules listed
    below with where they are written; below that, the ad links (by source, advertiser or campaign) that a
    cell marked * answers otherwise, in any column. When even that is wider (many partial rollouts), one
    block per client, a line per channel."""
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
    notes = _grouped_notes(matrix)
    if notes:
        out += ["", *textwrap.wrap(f"* {NOTES_HEADING}:", TEXT_WIDTH, subsequent_indent="  ")]
        for (title, label, action, rule_id), names in notes.items():
            out += textwrap.wrap(f"{title}, {label}: {action} [{number[rule_id]}] for {_whom(matrix, names)}",
                                 TEXT_WIDTH, initial_indent="  ", subsequent_indent="    ")
    return "\n".join(out) + "\n"


NOTES_HEADING = ("ad links whose source, advertiser or campaign a rule names are answered otherwise (outside the "
                 "ad columns: an ad link re-shared into that chat or Moments, or signed with that channel)")


def _grouped_notes(matrix: Matrix) -> dict[tuple[str, str, str, str], list[str]]:
    """One note per (column, ad claim, action, rule), with the clients it applies to, in table order."""
    notes: dict[tuple[str, str, str, str], list[str]] = {}
    for client, cells in matrix.rows:
        for column, cell in zip(COLUMNS, cells, strict=True):
            for label, got in cell.ad_notes:
                notes.setdefault((column.title, label, str(got.action), got.rule), []).append(client.name)
    return notes


def _whom(matrix: Matrix, names: list[str]) -> str:
    return "every client" if len(names) == len(matrix.rows) else ", ".join(names)


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:16px;margin:16px 0 4px}
p.meta{margin:0 0 16px;color:#59636e}
table{border-collapse:collapse}
th,td{border:1px solid #d1d9e0;padding:6px 8px;text-align:left;vertical-align:top}
thead th{background:#f6f8fa;position:sticky;top:0}
tr.group th{background:#eef1f4;font-size:13px;text-transform:uppercase;letter-spacing:.04em}
th.client small{display:block;font-weight:normal;color:#59636e}
td b{display:block}
td small{display:block;color:#3d444d;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
td .rollout,td .ad-note{border-top:1px dashed #8c959f;margin-top:4px;padding-top:4px}
.app{background:#dafbe1}.web{background:#ddf4ff}.landing{background:#fff8c5}.block{background:#ffebe9}
ul.legend{list-style:none;padding:0;display:flex;gap:16px;flex-wrap:wrap}
ul.notes{padding-left:20px}
ul.legend li span{display:inline-block;width:14px;height:14px;border:1px solid #8c959f;
  vertical-align:-2px;margin-right:6px}
"""


def render_html(matrix: Matrix, generated: datetime | None = None) -> str:
    """One self-contained page: inline CSS, no scripts, no external requests, every value escaped."""
    e = html.escape
    described = {rule.id: f"{rule.id} ({rule.where}): {rule.description}" for rule in matrix.rules.rules}
    described["default"] = "default: no rule matched"
    made = (generated or datetime.now(UTC)).isoformat(timespec="seconds")

    def answer_html(got: Answer, prefix: str = "", mark: str = "") -> str:
        title = described.get(got.rule, got.reason or got.rule)
        return f'<b>{e(prefix)}{e(got.action)}{mark}</b><small title="{e(title)}">{e(got.rule)}</small>'

    def cell_html(cell: Cell) -> str:
        inner = answer_html(cell.answer, mark=" *" if cell.ad_notes else "")
        for percent, inside in cell.rollouts:
            inner += (f'<div class="rollout {e(inside.action)}">'
                      f'{answer_html(inside, f"{percent:g}% of visitors: ")}</div>')
        for label, got in cell.ad_notes:
            inner += f'<div class="ad-note {e(got.action)}">{answer_html(got, f"{label}: ")}</div>'
        noted = " noted" if cell.ad_notes else ""
        return f'<td class="{e(cell.answer.action)}{noted}">{inner}</td>'

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
    where = {rule.id: rule.where for rule in matrix.rules.rules}
    notes = "".join(
        f"<li><b>{e(title)}</b>, {e(label)}: <b>{e(action)}</b> by <code>{e(rule_id)}</code>"
        f"{f' ({e(where[rule_id])})' if rule_id in where else ''} for {e(_whom(matrix, names))}</li>"
        for (title, label, action, rule_id), names in _grouped_notes(matrix).items())
    heading = NOTES_HEADING[:1].upper() + NOTES_HEADING[1:]
    notes_html = (f'\n<h2>* Ad links answered otherwise</h2>\n<p class="meta">{e(heading)}:</p>\n'
                  f'<ul class="notes">{notes}</ul>') if notes else ""
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
chat and Moments columns carry WeChat's share parameter; unknown carries neither. A cell marked * answers
some ad links otherwise, because a rule names their source, advertiser or campaign: the cell and the list
below say which.</p>{notes_html}
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
