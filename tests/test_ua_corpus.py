"""parse_client on real user agents from public parser projects' fixtures (rules/user_agents).

The corpus labels come from each source's own labels (see the README there); this measures how often
the router agrees, per field, prints the accuracy per label and the most common confusions, and fails
below the floors. A field the source does not label is not counted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from router.decision.clients import parse_client
from router.decision.types import OS, App, Device

CORPUS = Path(__file__).parent.parent / "rules" / "user_agents"
FLOORS = {"app": 0.97, "os": 0.98, "device": 0.95}
MIN_ROWS = 1000
FIELDS = tuple(FLOORS)


@dataclass(frozen=True)
class Labelled:
    ua: str
    want: dict[str, str | None]
    where: str  # corpus file and source path, for the report


def load_corpus() -> list[Labelled]:
    rows: list[Labelled] = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            rows.append(Labelled(record["ua"], {f: record[f] for f in FIELDS}, f"{path.name}:{record['path']}"))
    return rows


@dataclass
class Score:
    right: Counter[str]
    total: Counter[str]
    confusions: Counter[tuple[str, str]]
    examples: dict[tuple[str, str], str]

    def accuracy(self) -> float:
        return sum(self.right.values()) / max(1, sum(self.total.values()))


def score(rows: list[Labelled], field: str) -> Score:
    result = Score(Counter(), Counter(), Counter(), {})
    for row in rows:
        want = row.want[field]
        if want is None:
            continue
        got = str(getattr(parse_client(row.ua), field))
        result.total[want] += 1
        if got == want:
            result.right[want] += 1
        else:
            result.confusions[(want, got)] += 1
            result.examples.setdefault((want, got), f"{row.where}: {row.ua[:160]}")
    return result


def report(field: str, s: Score) -> str:
    lines = [f"{field}: {s.accuracy():.1%} of {sum(s.total.values())} (floor {FLOORS[field]:.0%})"]
    for label, n in s.total.most_common():
        lines.append(f"  {label:<12} {s.right[label] / n:6.1%} of {n}")
    for (want, got), n in s.confusions.most_common(8):
        lines.append(f"  {want} taken for {got}: {n}, e.g. {s.examples[(want, got)]}")
    return "\n".join(lines)


CORPUS_ROWS = load_corpus()


def test_corpus_is_big_enough_and_labelled_with_router_words() -> None:
    """The corpus holds at least MIN_ROWS user agents, every label a value of the router's own enums."""
    assert len(CORPUS_ROWS) >= MIN_ROWS
    allowed = {"app": set(App), "os": set(OS), "device": set(Device)}
    for row in CORPUS_ROWS:
        for field in FIELDS:
            assert row.want[field] is None or row.want[field] in allowed[field], (field, row)


def test_corpus_user_agents_are_unique() -> None:
    """No user agent is counted twice."""
    uas = [row.ua for row in CORPUS_ROWS]
    assert len(uas) == len(set(uas))


@pytest.mark.parametrize("field", FIELDS)
def test_accuracy_meets_the_floor(field: str) -> None:
    """parse_client agrees with the sources' labels at least as often as the floor for the field."""
    s = score(CORPUS_ROWS, field)
    print(report(field, s))
    assert s.accuracy() >= FLOORS[field], report(field, s)


if __name__ == "__main__":
    for field in FIELDS:
        print(report(field, score(CORPUS_ROWS, field)))
