"""`rules diff OLD NEW --clicks FILE`: what a rule change would do to recorded traffic.

Every recorded click is read once and decided by both rule sets through the server's own code; when the
app catalogues differ (`apps:`), it is read once with each, and the clicks the new catalogue reads as
another app are counted by (old app → new app), with the catalogue's entries that changed.
Clicks whose action changes are counted by (channel, app, old action → new action), biggest group
first, each as a share of all clicks and of its own channel and app's clicks (what a change to WeChat
group chats is judged by), with a few examples each; clicks that keep their action but change rule are
counted apart. An /ad click is replayed as the server judged its signature (its line's `claim`), so no key
is needed; a line that can't be replayed faithfully is counted and named, never decided some other way
(router.policy.replay). `--at T` replays the clicks as if they happened from T on (moved by whole days, so each
keeps its time of day and visitor): a change scheduled for next Monday previews today.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from router.decision.click import BadClick
from router.decision.decide import decide
from router.decision.rules import RuleSet
from router.policy.replay import (
    NotReplayable,
    RecordedClick,
    UnreadableLine,
    checked_again,
    read_clicks,
    read_recorded,
)
from router.serve.config import Settings
from router.serve.reload import load_reporting

EXAMPLES_PER_GROUP = 3

Group = tuple[str, str, str, str]  # channel, app, old action, new action


@dataclass
class Comparison:
    read: int = 0
    unreadable: list[UnreadableLine] = field(default_factory=list)
    refused: int = 0  # clicks the router answers 4xx before any rule: the same under both sets
    # Clicks that can't be replayed as the server decided them (line, why): left out, and said so.
    not_replayed: list[tuple[int, str]] = field(default_factory=list)
    reverified: int = 0  # /ad clicks recorded without their claim, whose signature was checked here again
    changed: Counter[Group] = field(default_factory=Counter)
    decided: Counter[tuple[str, str]] = field(default_factory=Counter)  # clicks decided, per (channel, app)
    examples: dict[Group, list[str]] = field(default_factory=lambda: defaultdict(list))
    rule_only: int = 0  # same action, decided by another rule
    # Clicks the new catalogue reads as another app, by (old app, new app), and a few of each.
    reclassified: Counter[tuple[str, str]] = field(default_factory=Counter)
    reclassified_examples: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def changed_total(self) -> int:
        return sum(self.changed.values())


def shift_days(clicks: list[RecordedClick], at: datetime) -> timedelta:
    """How far to move `clicks` so the first of them falls on `at`'s date (in `at`'s zone, else the click's
    own): whole days, so every click keeps its time of day and its place in the week."""
    if not clicks:
        return timedelta(0)
    first = min(click.at for click in clicks)
    first_day = first.astimezone(at.tzinfo).date() if at.tzinfo is not None else first.date()
    return timedelta(days=(at.date() - first_day).days)


def compare(old: RuleSet, new: RuleSet, clicks: list[RecordedClick], settings: Settings,
            shift: timedelta = timedelta(0)) -> Comparison:
    result = Comparison()
    for click in clicks:
        result.read += 1
        try:
            ctx = read_recorded(click, settings, old.apps, headers=click.headers, at=click.at + shift)
        except BadClick:
            result.refused += 1
            continue
        except NotReplayable as err:
            result.not_replayed.append((click.line, str(err)))
            continue
        result.reverified += checked_again(click, ctx)
        new_ctx = ctx
        app = str(ctx.client.app)
        if new.apps.version != old.apps.version:
            # The same click as the new catalogue reads its user agent (only the client can differ).
            new_ctx = dataclasses.replace(ctx, client=new.reader.parse(click.ua))
            if str(new_ctx.client.app) != app:
                moved = (app, str(new_ctx.client.app))
                result.reclassified[moved] += 1
                if len(result.reclassified_examples[moved]) < EXAMPLES_PER_GROUP:
                    result.reclassified_examples[moved].append(f"line {click.line}: {(click.ua or '')[:120]}")
                app = f"{moved[0]}→{moved[1]}"
        result.decided[(ctx.channel.value, app)] += 1
        before, after = decide(old, ctx), decide(new, new_ctx)
        if before.action is not after.action:
            group = (ctx.channel.value, app, before.action.value, after.action.value)
            result.changed[group] += 1
            if len(result.examples[group]) < EXAMPLES_PER_GROUP:
                result.examples[group].append(
                    f"line {click.line}: {click.request[:100]} ({before.rule} → {after.rule})"
                )
        elif before.rule != after.rule:
            result.rule_only += 1
    return result


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def _decided(result: Comparison) -> int:
    return result.read - result.refused - len(result.not_replayed)


def _not_replayed(result: Comparison) -> str:
    return f"{len(result.not_replayed)} not replayed, " if result.not_replayed else ""


def _replay_lines(result: Comparison) -> list[str]:
    """What could not be replayed as the server decided it, first: a change hidden there is not 0 changes."""
    lines = []
    if result.not_replayed:
        lines.append(f"WARNING: {_count(len(result.not_replayed), 'click')} could not be replayed as the server "
                     "decided them and are left out of the figures below:")
        lines.extend(f"  line {line}: {why}" for line, why in result.not_replayed[:10])
        if len(result.not_replayed) > 10:
            lines.append(f"  … and {len(result.not_replayed) - 10} more")
    if result.reverified:
        lines.append(f"note: {_count(result.reverified, '/ad click')} recorded without its claim: the signature "
                     "was checked here again, with these keys and without the server's replay check")
    return lines


def render_text(result: Comparison, old: RuleSet, new: RuleSet) -> str:
    decided = _decided(result)
    lines = [
        f"rules {old.version} → {new.version}",
        *_replay_lines(result),
        f"clicks: {result.read} read, {_count(len(result.unreadable), 'unreadable line')}, {result.refused} refused "
        f"before any rule, {_not_replayed(result)}{decided} decided by both",
        f"action changes: {result.changed_total} of {decided} ({_percent(result.changed_total, decided)})",
    ]
    for group, count in result.changed.most_common():
        channel, app, before, after = group
        own = result.decided[(channel, app)]
        lines.append(f"  {count:>7}  {channel:<13} {app:<11} {before} → {after}   {_percent(count, decided)} of all, "
                     f"{_percent(count, own)} of {channel} clicks in {app}")
        lines.extend(f"           e.g. {example}" for example in result.examples[group])
    lines.append(f"same action, another rule: {result.rule_only}")
    lines.extend(_catalogue_lines(result, old, new))
    lines.extend(f"unreadable line {bad.line}: {bad.error}" for bad in result.unreadable[:10])
    return "\n".join(lines) + "\n"


def render_json(result: Comparison, old: RuleSet, new: RuleSet) -> str:
    body: dict[str, Any] = {
        "old_version": old.version,
        "new_version": new.version,
        "read": result.read,
        "unreadable": [{"line": bad.line, "error": bad.error} for bad in result.unreadable],
        "refused": result.refused,
        "not_replayed": [{"line": line, "why": why} for line, why in result.not_replayed],
        "reverified": result.reverified,
        "decided": _decided(result),
        "changed": result.changed_total,
        "groups": [
            {"channel": g[0], "app": g[1], "from": g[2], "to": g[3], "count": n,
             "of_group": result.decided[(g[0], g[1])], "examples": result.examples[g]}
            for g, n in result.changed.most_common()
        ],
        "same_action_other_rule": result.rule_only,
        "apps": {
            "old_version": old.apps.version, "new_version": new.apps.version,
            "entries": catalogue_changes(old, new),
            "reclassified": [{"from": f, "to": t, "count": n, "examples": result.reclassified_examples[(f, t)]}
                             for (f, t), n in result.reclassified.most_common()],
        },
    }
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def catalogue_changes(old: RuleSet, new: RuleSet) -> list[str]:
    """The app catalogue's entries added, removed, changed or moved, as `+ id`, `- id`, `~ id (what)`."""
    before, after = old.apps.by_id, new.apps.by_id
    out = [f"+ {app}" for app in after if app not in before]
    out += [f"- {app}" for app in before if app not in after]
    fields = ("names", "markers", "kind", "leave", "menu", "menu_ios", "versions")
    for app, entry in after.items():
        if app in before:
            what = [name for name in fields if getattr(before[app], name) != getattr(entry, name)]
            if what:
                out.append(f"~ {app} ({', '.join(what)})")
    common = [app for app in new.apps.ids if app in before]
    if common != [app for app in old.apps.ids if app in after]:
        out.append("order changed (precedence): " + " ".join(common))
    return out


def _catalogue_lines(result: Comparison, old: RuleSet, new: RuleSet) -> list[str]:
    if old.apps.version == new.apps.version:
        return [f"apps: the same catalogue ({old.apps.source})"]
    lines = [f"apps: catalogue {old.apps.version} → {new.apps.version}: {', '.join(catalogue_changes(old, new))}",
             f"clicks read as another app: {sum(result.reclassified.values())}"]
    for (before, after), count in result.reclassified.most_common():
        lines.append(f"  {count:>7}  {before} → {after}")
        lines.extend(f"           e.g. {example}" for example in result.reclassified_examples[(before, after)])
    return lines


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("diff", help="replay recorded clicks against two rule sets and compare")
    parser.add_argument("old", metavar="OLD_DIR")
    parser.add_argument("new", metavar="NEW_DIR")
    parser.add_argument("--clicks", required=True, metavar="FILE",
                        help="JSON lines {request, ua, at?, visitor?}: the click log's lines (grep '^{'), "
                             "or explain --batch input; '-' for stdin")
    parser.add_argument("--at", metavar="TIME",
                        help="replay the clicks as if they happened from TIME's date on (each keeps its time of "
                             "day and visitor): preview a change scheduled for later, e.g. --at 2026-12-07 or "
                             "--at 2026-12-07T00:00+08:00")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.set_defaults(run=run)


def _target_day(text: str) -> datetime:
    """--at's time: a date (2026-12-07) or a time with or without zone; a zone-less one keeps the clicks'."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("not a date or time: write 2026-12-07 or 2026-12-07T00:00+08:00") from None


def run(args: argparse.Namespace, out: IO[str]) -> int:
    sets = []
    for label, location in (("OLD_DIR", args.old), ("NEW_DIR", args.new)):
        try:
            settings = Settings.from_env(rules_dir=location, serving=False)
        except ValueError as err:  # a bad setting (SigningKeyError too): one sentence, as `rules check` says it
            out.write(f"error: {err}\n")
            return 1
        loaded = load_reporting(settings, lambda line: out.write(f"{line}\n"))
        if loaded is None:
            out.write(f"{label} does not load: nothing compared\n")
            return 1
        sets.append(loaded)
    old, new = sets
    try:
        if args.clicks == "-":
            records = list(read_clicks(sys.stdin))
        else:
            with open(args.clicks, encoding="utf-8") as handle:
                records = list(read_clicks(handle))
    except OSError as err:
        out.write(f"error: --clicks {args.clicks}: {err.strerror or err}\n")
        return 1
    clicks = [record for record in records if isinstance(record, RecordedClick)]
    shift = timedelta(0)
    if args.at:
        try:
            target = _target_day(args.at)
        except ValueError as err:
            out.write(f"error: --at {args.at!r}: {err}\n")
            return 1
        shift = shift_days(clicks, target)
        if clicks:
            first = min(click.at for click in clicks) + shift
            # To stderr with --format json, whose standard output is one JSON document.
            note = sys.stderr if args.format == "json" else out
            ignored = "; the time of day given is not used" if "T" in args.at else ""
            note.write(f"replayed as if from {first.astimezone(target.tzinfo or first.tzinfo).date()} on "
                       f"(moved {shift.days:+d} days; times of day and visitors kept{ignored})\n")
    if not clicks:
        # Nothing to replay is a mistake, not "0 changes": a log with a prefix on every line
        # (`docker compose logs` without --no-log-prefix) reads as no clicks at all.
        out.write(f"error: no click lines in --clicks {args.clicks}: give the router's output as it wrote it "
                  "(JSON lines; `docker compose logs --no-log-prefix`, `kubectl logs --prefix=false`)\n")
        return 1
    result = compare(old, new, clicks, settings, shift)
    result.unreadable = [record for record in records if isinstance(record, UnreadableLine)]
    out.write(render_json(result, old, new) if args.format == "json" else render_text(result, old, new))
    return 0
