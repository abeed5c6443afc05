"""`rules check`: load exactly what the server loads, start nothing, and report every problem.

Errors come from the loader itself (router.decision.rules), so `check` can never disagree with the server.
Warnings are what loads but is probably a mistake: a rule no click can reach because an earlier
rule matches every click it would, and a time window that is already over. An app catalogue that differs
from the shipped one is read against the known user agents (router.decision.known_agents): the loader
refuses one that reads too many as another app than their labels say; below that, every user agent it
reads differently is reported here, per entry and marker.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from router.decision.conditions import Window
from router.decision.known_agents import load_corpus, reclassification
from router.decision.rules import Rule, RuleSet
from router.decision.yaml_reader import Problem


def _at(rule: Rule, message: str) -> Problem:
    return Problem(rule.file, rule.line, rule.column, message)


def warnings(rules: RuleSet, now: datetime) -> list[Problem]:
    """Rules that load but can never decide a click."""
    found = []
    for index, rule in enumerate(rules.rules):
        earlier = next((other for other in rules.rules[:index] if other.shadows(rule)), None)
        if earlier is not None:
            found.append(_at(rule, f"rule {rule.id!r} can never match: rule {earlier.id!r} ({earlier.where}) "
                                   "matches every click it would; move it above, or narrow the earlier rule"))
        for condition in rule.conditions:
            if isinstance(condition, Window) and condition.end is not None and condition.end <= now:
                closed = condition.end.isoformat(timespec="seconds")
                found.append(_at(rule, f"rule {rule.id!r} has a window that closed at {closed}; "
                                       "it can never match again"))
    return found


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", help="validate a rules directory as the server would, start nothing")
    parser.add_argument("directory", nargs="?", metavar="DIR|URL",
                        help="rules directory or bundle URL (default: $ROUTER_RULES_DIR or the shipped rules)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: IO[str]) -> int:
    """Errors first, then warnings, each as file:line:col; exit 1 on any error, 0 otherwise."""
    from router.serve.config import Settings
    from router.serve.reload import load_reporting

    try:
        settings = Settings.from_env(rules_dir=args.directory, serving=False)
    except ValueError as err:
        out.write(f"error: {err}\n")
        return 1
    errors: list[str] = []
    rules = load_reporting(settings, errors.append)  # a directory or a bundle URL, as the server reads it
    if rules is None:
        out.writelines(f"{line}\n" for line in errors)
        count = len(errors)
        out.write(f"{count} error{'s' if count != 1 else ''}: these rules would not load\n")
        return 1
    found = warnings(rules, datetime.now(UTC))
    for problem in found:
        out.write(problem.labelled("warning") + "\n")
    directory = Path(settings.rules_dir) if settings.rules_dir and "://" not in str(settings.rules_dir) else None
    corpus = load_corpus(directory)
    moved = reclassification(rules.apps, corpus)  # below the limit (the loader refuses more): said, not refused
    moved_warnings = 0
    for move in moved.largest_first():
        file, line = move.place
        kind = "warning" if move.harmful else "note"  # onto their labels only: as intended
        moved_warnings += move.harmful
        out.write(Problem(file, line, 1, move.message()).labelled(kind) + "\n")
    source = ("the shipped catalogue: no 'apps:' in these rules" if rules.apps.source == "built-in"
              else rules.apps.source)
    known = f"{len(corpus.agents):,} known user agents ({corpus.source})"
    outcome = (f"{sum(move.count for move in moved.moves):,} of {known} read as another app" if moved.moves
               else f"{known} read as the shipped catalogue reads them")
    count = len(found) + moved_warnings
    plural = "s" if count != 1 else ""
    out.write(f"ok: {len(rules.rules)} rules, version {rules.version}, {len(rules.apps.entries)} apps ({source}; "
              f"{outcome}), {count} warning{plural}\n")
    return 0
