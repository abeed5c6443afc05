"""The known user agents (`user_agents/*.jsonl` beside the rules), and what a catalogue change does to them.

The corpus is real user agents from public parser projects' fixtures and pages, each labelled with the
router's words (rules/user_agents/README.md). The loader (router.decision.rules) reads it with a catalogue
that differs from the shipped one, and with the shipped one, and finds every user agent the change reads
as another app, per entry and marker (`file:line: marker 'X' would make N known user agents 'app'`); past
a small share moved away from their labels, the rules are refused, by `rules check` and by the server
alike. Each reading uses a reader of its own, thrown away after: the served reader's cache never holds the
corpus. The matrix takes its rows for apps no named client covers from here, and rule test cases may name
a client `<app>` or `<app>_<os>` that only the corpus has.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from router.decision.apps import Catalogue, bundled_catalogue, bundled_rules_dir
from router.decision.clients import ClientReader
from router.decision.types import Client
from router.decision.yaml_reader import display_name

CORPUS_DIR = "user_agents"
_PHONE_OSES = ("ios", "android", "harmonyos")
MAX_LINE_BYTES = 8_192
MAX_RECLASSIFIED_SHARE = 0.005  # of the known user agents, moved away from their labels: past it, `check` fails


@dataclass(frozen=True, slots=True)
class KnownAgent:
    ua: str
    app: str | None  # the label, in the router's words; None where the source does not say
    os: str | None
    device: str | None
    where: str  # file:line in the corpus


@dataclass(frozen=True)
class Corpus:
    agents: tuple[KnownAgent, ...]
    source: str  # the folder read, for the report


def corpus_dir(rules_dir: Path | None) -> Path:
    """The rules' own `user_agents/` when they have one, else the shipped one."""
    if rules_dir is not None and (rules_dir / CORPUS_DIR).is_dir():
        return rules_dir / CORPUS_DIR
    return bundled_rules_dir() / CORPUS_DIR


def load_corpus(rules_dir: Path | None) -> Corpus:
    folder = corpus_dir(rules_dir)
    return _load(folder.resolve())


@cache
def _load(folder: Path) -> Corpus:
    agents = []
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip() or len(line) > MAX_LINE_BYTES:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                ua = record.get("ua") if isinstance(record, dict) else None
                if isinstance(ua, str) and ua:
                    agents.append(KnownAgent(ua, _word(record, "app"), _word(record, "os"), _word(record, "device"),
                                             f"{path.name}:{number}"))
    return Corpus(tuple(agents), display_name(folder))


def _word(record: dict[str, object], key: str) -> str | None:
    value = record.get(key)
    return value if isinstance(value, str) else None


def example(corpus: Corpus, app: str, os: str | None = None) -> KnownAgent | None:
    """The first known user agent labelled `app` (and `os`), a phone's first: a client for rule tests and the
    matrix, for an app no named client covers."""
    labelled = [agent for agent in corpus.agents if agent.app == app and (os is None or agent.os == os)]
    # A phone's web view first: what a tap on a shared link most often is. Where the labels don't say (many
    # lines carry only the app), the user agent's own "Mobile" or "iPhone" does: not a Chromebook's web view.
    labelled.sort(key=lambda agent: (agent.device != "mobile", agent.os not in _PHONE_OSES,
                                     not ("Mobile" in agent.ua or "iPhone" in agent.ua), "Mozilla/" not in agent.ua))
    return labelled[0] if labelled else None


@dataclass
class Move:
    """Known user agents one entry's marker reads as another app than the shipped catalogue does."""

    where: str  # the entry's file:line
    marker: str  # the marker that now names them ("" when they lost their app: a marker went away)
    app: str  # what they are read as now
    away: Counter[str] = field(default_factory=Counter)  # moved off their label, by what the label says
    onto: int = 0  # moved onto their label: a fix
    unlabelled: int = 0
    example: str = ""

    @property
    def count(self) -> int:
        return sum(self.away.values()) + self.onto + self.unlabelled

    @property
    def harmful(self) -> bool:
        """Whether any moved off their label (or have none): a move onto their labels only is the owner's own
        lines for the app, as intended."""
        return bool(self.away) or self.unlabelled > 0

    @property
    def place(self) -> tuple[str, int]:
        """The file and line the move is told at: the marker's, else its entry's (line 1 when unknown)."""
        file, _, line = self.where.rpartition(":")
        return (file, int(line)) if line.isdigit() else (self.where, 1)

    def message(self) -> str:
        labels = ", ".join(f"{n:,} {label}" for label, n in self.away.most_common())
        parts = [part for part in (labels, f"{self.unlabelled:,} unlabelled" if self.unlabelled else "",
                                   f"{self.onto:,} onto their label" if self.onto else "") if part]
        what = f"marker {self.marker!r} would make" if self.marker else "would leave"
        return (f"{what} {self.count:,} known user agent{'s' if self.count != 1 else ''} {self.app!r} "
                f"({'; '.join(parts)}), e.g. {self.example}")


@dataclass
class Reclassification:
    total: int  # known user agents read
    moves: list[Move]
    corpus: str

    @property
    def away(self) -> int:
        return sum(sum(move.away.values()) + move.unlabelled for move in self.moves)

    def fails(self, share: float = MAX_RECLASSIFIED_SHARE) -> bool:
        return self.away > share * self.total

    def largest_first(self) -> list[Move]:
        return sorted(self.moves, key=lambda move: -move.count)

    def verdict(self, share: float = MAX_RECLASSIFIED_SHARE) -> str:
        limit = int(share * self.total)
        said = "too many: the catalogue is refused" if self.fails(share) else "within the limit"
        return (f"{self.away:,} of {self.total:,} known user agents ({self.corpus}) read as another app than "
                f"their label and the shipped catalogue say: {said} (at most {limit:,}, {100 * share:g} %)")


def reclassification(apps: Catalogue, corpus: Corpus, baseline: Catalogue | None = None) -> Reclassification:
    """How `apps` reads the corpus differently from `baseline` (the shipped catalogue)."""
    baseline = baseline or bundled_catalogue()
    if apps.version == baseline.version:
        return Reclassification(len(corpus.agents), [], corpus.source)
    new, old = ClientReader(apps), ClientReader(baseline)
    moves: dict[tuple[str, str, str], Move] = {}
    grouped: dict[tuple[str, str, str], list[KnownAgent]] = defaultdict(list)
    for agent in corpus.agents:
        now, before = new.parse(agent.ua), old.parse(agent.ua)
        if str(now.app) == str(before.app):
            continue
        key = _cause(apps, baseline, agent.ua, now, before)
        move = moves.get(key)
        if move is None:
            move = moves[key] = Move(*key, example=f"{agent.where}: {agent.ua[:100]}")
        grouped[key].append(agent)
        if agent.app is None:
            move.unlabelled += 1
        elif agent.app == str(now.app):
            move.onto += 1
        else:
            move.away[agent.app] += 1
    return Reclassification(len(corpus.agents), list(moves.values()), corpus.source)


def _cause(apps: Catalogue, baseline: Catalogue, ua: str, now: Client, before: Client) -> tuple[str, str, str]:
    """Which entry and marker of `apps` read `ua` as `now`; or, when no marker of it did, the entry of the
    shipped catalogue that no longer names it."""
    entry = apps.by_id.get(str(now.app))
    if entry is not None:
        marker = apps.marker_in(entry, ua)
        if marker is not None:
            return entry.marker_where.get(marker) or entry.where or apps.source, marker, str(now.app)
    lost = apps.by_id.get(str(before.app)) or baseline.by_id.get(str(before.app))
    where = (lost.where if lost is not None and lost.where else apps.source)
    return where, "", str(now.app)
