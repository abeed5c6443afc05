"""The catalogue of apps (`apps:` in a rules directory, shipped as rules/apps.yaml): every app a tap can
happen in that the router can name, in precedence order.

An entry is the app's name as rules write it (`when: {app: xiaohongshu}`), so an `AppEntry` *is* that
name (a `str`, like an enum member) and carries the rest: its names in each language the pages speak,
the literal markers that name it in a user agent, its kind (`inapp`, `browser`, `bot`) and how a person
leaves it for a browser (`menu`, `none`). Everything that knows about apps reads them from here: the
rules' vocabulary and schema, the user-agent reader (router.decision.clients), the landing page's guide
and words, explain, the matrix and the readout.

What data can't say stays in code and is named by `App` (router.decision.types): bots and HTTP
libraries by class, browsers by shape, generic web views, WeChat's mini programs and desktop apps,
Douyin's region. A catalogue that lacks one of those names is refused.

Markers are matched literally in one pass of a finite automaton (the Rust `regex` crate ua-parser brings):
linear in the user agent, whatever the catalogue holds; no regular expression is ever read from a file.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import ua_parser_rs
from yaml.nodes import MappingNode, Node, SequenceNode

from router.decision.types import LANGUAGES, App, AppEntry, Version
from router.decision.yaml_reader import NodeError, Problem, YamlReader, suggest

__all__ = [
    "ENTRY_KEYS",
    "KINDS",
    "LEAVES",
    "AppEntry",
    "Catalogue",
    "CatalogueError",
    "bundled_catalogue",
    "bundled_rules_dir",
    "read_catalogue",
]

KINDS = ("inapp", "browser", "bot")
LEAVES = ("menu", "none")
ENTRY_KEYS = ("id", "names", "markers", "kind", "leave", "menu", "menu_ios", "versions")
# What the code relies on of the apps it names: their kind (a bot must be a bot...).
CODE_KINDS: dict[App, str] = {App.BOT: "bot", App.BROWSER: "browser"}
MAX_ENTRIES = 200
MAX_MARKERS = 1_000
MIN_MARKER, MAX_MARKER = 3, 64
MAX_NAME = 40
_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")
# A marker is printable ASCII (user agents are), without the characters that could only be a mistake.
_MARKER = re.compile(r"[\x20-\x7e]+")
# The number after a marker (or a `versions:` token): at most two separators first ("weibo__14.2",
# "Kwai/11.2", "DingTalk(7.0"), ending where the token does ("WindowsWechat(0x63090a13)" has none). A bare
# number of five digits or more is a build code, not a version ("aweme_290100", "BiliApp/7810200").
_NUMBER = re.compile(r"[/_( ]{0,2}(\d{1,6}(?:\.\d{1,9}){0,4})(?![A-Za-z0-9])")
_MAX_UNDOTTED = 4


class CatalogueError(Exception):
    """A catalogue that does not validate; `problems` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


def _pattern(marker: str) -> str:
    """A marker as the automaton matches it: literally, starting a token when it starts with a letter or digit."""
    literal = literal_pattern(marker)
    return f"(?:^|[^A-Za-z0-9]){literal}" if marker[0].isalnum() else literal


def literal_pattern(word: str) -> str:
    """`word` as a pattern of the Rust `regex` crate that matches it literally (router.decision.clients' word
    lists are written with it too)."""
    return "".join("\\" + ch if ch in _REGEX_SPECIALS else ch for ch in word)


_REGEX_SPECIALS = frozenset("\\.^$|?*+()[]{}#&-~ ")


_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _extractor(patterns: tuple[tuple[str, str], ...]) -> Any:
    """The automaton over these patterns, shared by every catalogue that has them: the shipped catalogue and a
    rules directory's identical copy (or a reload that changed no marker) hold one, not one each (megabytes)."""
    with _extractors_lock:
        found = _extractors.get(patterns)
        if found is None:
            found = ua_parser_rs.UserAgentExtractor([(pattern, name, None, None, None, None)
                                                     for pattern, name in patterns])
            if len(_extractors) >= _EXTRACTORS_KEPT:
                _extractors.pop(next(iter(_extractors)))
            _extractors[patterns] = found
        return found


_EXTRACTORS_KEPT = 4
_extractors: dict[tuple[tuple[str, str], ...], Any] = {}
_extractors_lock = threading.Lock()


def _starts_token(ua: str, at: int) -> bool:
    return at == 0 or ua[at - 1] not in _WORD


@dataclass(frozen=True, eq=False)
class Catalogue:
    """The apps, in precedence order, and one automaton over all their markers."""

    entries: tuple[AppEntry, ...]
    source: str  # where it was read ("rules/apps.yaml"), or "built-in"
    version: str  # a hash of what the entries say: two catalogues that say the same have the same version

    def __post_init__(self) -> None:
        by_id = {entry.id: entry for entry in self.entries}
        object.__setattr__(self, "by_id", by_id)
        object.__setattr__(self, "bot_at", next(i for i, entry in enumerate(self.entries) if entry.id == App.BOT))
        named = [(str(i), entry) for i, entry in enumerate(self.entries) if entry.markers]
        # One pattern per entry, in precedence order: the automaton answers with the first entry that has a
        # marker anywhere in the user agent, in one pass.
        patterns = tuple(("|".join(_pattern(marker) for marker in entry.markers), i) for i, entry in named)
        object.__setattr__(self, "_extractor", _extractor(patterns) if patterns else None)
        # Each entry's version tokens in the order they are tried, with whether a token must start one
        # (version_in runs for every never-seen user agent of a named app).
        object.__setattr__(self, "_version_tokens", {
            entry.id: tuple((token, token[0].isalnum()) for token in (*entry.versions, *entry.markers))
            for entry in self.entries})

    by_id: dict[str, AppEntry] = field(init=False, repr=False)
    bot_at: int = field(init=False, repr=False)  # the `bot` entry's place: entries above it win over bots' words
    _extractor: Any = field(init=False, repr=False)  # ua_parser_rs.UserAgentExtractor over every marker, or None
    _version_tokens: dict[str, tuple[tuple[str, bool], ...]] = field(init=False, repr=False)

    def __getitem__(self, app: str) -> AppEntry:
        return self.by_id[app]

    def __contains__(self, app: object) -> bool:
        return app in self.by_id

    def __iter__(self) -> Iterator[AppEntry]:
        return iter(self.entries)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(entry.id for entry in self.entries)

    def first(self, ua: str) -> tuple[int, AppEntry] | None:
        """The first entry, in precedence order, with a marker in `ua`, and its place; None when none has."""
        if self._extractor is None:
            return None
        found = self._extractor.extract(ua)
        if found is None:
            return None
        at = int(found.family)
        return at, self.entries[at]

    def marker_in(self, entry: AppEntry, ua: str) -> str | None:
        """Which of `entry`'s markers `ua` carries (the first one listed); None when it carries none."""
        for marker in entry.markers:
            at = ua.find(marker)
            while at >= 0:
                if _starts_token(ua, at) or not marker[0].isalnum():
                    return marker
                at = ua.find(marker, at + 1)
        return None

    def named_by(self, entry: AppEntry, ua: str) -> str:
        """How `ua` came to be `entry`, for explain: its marker and where the entry is written, or the code's
        class of user agents when no marker of it is there."""
        marker = self.marker_in(entry, ua)
        if marker is not None:
            return f"marker {marker!r} ({entry.where or self.source})"
        if entry.id == App.TIKTOK and self.marker_in(self.by_id[App.DOUYIN], ua):
            return "Douyin's markers with a region or locale outside mainland China (code)"
        reason = _CODE_REASONS[App(entry.id)] if entry.id in App._value2member_map_ else entry.id
        return f"no marker: {reason} (code)"

    def version_in(self, entry: AppEntry, ua: str) -> Version:
        """The app's version: the number after its first `versions:` token that has one, else after its first
        marker that has one; () when none does."""
        for token, bounded in self._version_tokens[entry.id]:
            at = ua.find(token)
            while at >= 0:
                if not bounded or at == 0 or ua[at - 1] not in _WORD:
                    m = _NUMBER.match(ua, at + len(token))
                    if m is not None:
                        number = m.group(1)
                        if "." in number:
                            return tuple(map(int, number.split(".")))
                        if len(number) <= _MAX_UNDOTTED:
                            return (int(number),)
                at = ua.find(token, at + 1)
        return ()



# --- reading a catalogue -------------------------------------------------------------------------------


class _CatalogueReader:
    """Walks an `apps:` list's nodes, collecting problems with the file:line:col they are at."""

    def __init__(self, reader: YamlReader) -> None:
        self.yaml = reader
        self.seen_ids: dict[str, str] = {}
        self.seen_markers: dict[str, tuple[str, str]] = {}  # marker -> (entry id, where)

    def where(self, node: Node) -> str:
        return f"{self.yaml.file}:{node.start_mark.line + 1}"

    def entries(self, node: Node) -> list[AppEntry]:
        if not isinstance(node, SequenceNode):
            raise NodeError(node, "'apps' is a list of apps, each starting with '- id: …'")
        if len(node.value) > MAX_ENTRIES:
            raise NodeError(node, f"{len(node.value)} apps; the limit is {MAX_ENTRIES}")
        out = []
        for item in node.value:
            try:
                entry = self.entry(item)
            except NodeError as bad:
                self.yaml.problem(bad.node, bad.message)
                continue
            if entry is not None:
                out.append(entry)
        return out

    def entry(self, node: Node) -> AppEntry | None:
        if not isinstance(node, MappingNode):
            raise NodeError(node, "each app is a mapping with id, names, markers, kind and leave")
        fields = self.yaml.fields(node, "an app", ENTRY_KEYS)
        missing = [key for key in ("id", "names", "markers", "kind", "leave") if key not in fields]
        if missing:
            raise NodeError(node, f"app is missing {', '.join(repr(key) for key in missing)}")
        app_id = self.yaml.text(fields["id"], "'id'")
        if not _ID.fullmatch(app_id):
            raise NodeError(fields["id"], f"app id {app_id!r} must be lower-case letters, digits and _ "
                                          f"(starting with a letter, at most 32): rules write it as a word")
        if app_id in self.seen_ids:
            raise NodeError(fields["id"], f"duplicate app id {app_id!r} (first at {self.seen_ids[app_id]})")
        self.seen_ids[app_id] = self.where(node)
        names = self.languages(fields["names"], f"{app_id}: 'names'")
        kind = self.choice(fields["kind"], "kind", KINDS)
        leave = self.choice(fields["leave"], "leave", LEAVES)
        menus = {}
        for key in ("menu", "menu_ios"):
            if key in fields:
                if leave != "menu":
                    raise NodeError(fields[key], f"{app_id}: '{key}' names a menu item, but 'leave' is {leave!r}")
                menus[key] = self.languages(fields[key], f"{app_id}: '{key}'")
        markers = self.tokens(fields["markers"], app_id, "markers")
        versions = self.tokens(fields["versions"], app_id, "versions") if "versions" in fields else ()
        if not markers and app_id not in CODE_KINDS:
            raise NodeError(fields["markers"], f"{app_id}: no markers, so no user agent can ever be {app_id!r}; "
                                               "list the tokens its user agent carries")
        for marker, marker_node in zip(markers, self._items(fields["markers"]), strict=True):
            self.claim(marker, marker_node, app_id)
        marker_where = {marker: self.where(marker_node)
                        for marker, marker_node in zip(markers, self._items(fields["markers"]), strict=True)}
        return AppEntry(app_id, names=names, markers=markers, kind=kind, leave=leave, menu=menus.get("menu"),
                        menu_ios=menus.get("menu_ios"), versions=versions, where=self.where(node),
                        marker_where=marker_where)

    @staticmethod
    def _items(node: Node) -> list[Node]:
        return list(node.value) if isinstance(node, SequenceNode) else []

    def languages(self, node: Node, what: str) -> dict[str, str]:
        found = {}
        for key, value in self.yaml.pairs(node, what):
            if key.value not in LANGUAGES:
                raise NodeError(key, f"{what}: unknown language {key.value!r}{suggest(key.value, LANGUAGES)}")
            text = self.yaml.text(value, f"{what}: {key.value}").strip()
            if not text or len(text) > MAX_NAME:
                raise NodeError(value, f"{what}: {key.value} must be 1 to {MAX_NAME} characters")
            found[key.value] = text
        missing = [lang for lang in LANGUAGES if lang not in found]
        if missing:
            raise NodeError(node, f"{what} needs every language the pages speak ({', '.join(LANGUAGES)}); "
                                  f"missing {', '.join(missing)}")
        return found

    def choice(self, node: Node, what: str, allowed: tuple[str, ...]) -> str:
        word = self.yaml.text(node, f"'{what}'")
        if word not in allowed:
            raise NodeError(node, f"unknown {what} {word!r}{suggest(word, allowed)}")
        return word

    def tokens(self, node: Node, app_id: str, what: str) -> tuple[str, ...]:
        if not isinstance(node, SequenceNode):
            raise NodeError(node, f"{app_id}: '{what}' is a list of literal user-agent tokens, e.g. [LemonChat]")
        out = []
        for item in node.value:
            token = self.yaml.text(item, f"a {what[:-1]}")
            if not MIN_MARKER <= len(token) <= MAX_MARKER or not _MARKER.fullmatch(token) or token != token.strip():
                raise NodeError(item, f"{app_id}: {what[:-1]} {token!r} must be {MIN_MARKER} to {MAX_MARKER} "
                                      "printable ASCII characters, without spaces at either end (shorter ones "
                                      "match unrelated user agents)")
            if token in out:
                raise NodeError(item, f"{app_id}: {what[:-1]} {token!r} is listed twice")
            out.append(token)
        return tuple(out)

    def claim(self, marker: str, node: Node, app_id: str) -> None:
        """A marker names one app, and one an earlier app's marker sits inside could never name this one."""
        if marker in self.seen_markers:
            owner, where = self.seen_markers[marker]
            raise NodeError(node, f"{app_id}: marker {marker!r} is already {owner}'s ({where}): the first app "
                                  f"listed wins, so it would never name {app_id!r}")
        for earlier, (owner, where) in self.seen_markers.items():
            if owner != app_id and _contains(marker, earlier):
                raise NodeError(node, f"{app_id}: marker {marker!r} contains {owner}'s marker {earlier!r} "
                                      f"({where}), listed first: every user agent with it is {owner!r}")
        self.seen_markers[marker] = (app_id, f"{self.yaml.file}:{node.start_mark.line + 1}")


def _contains(marker: str, earlier: str) -> bool:
    """Whether every user agent that carries `marker` also carries `earlier` where a token may start."""
    at = marker.find(earlier)
    while at >= 0:
        if not earlier[0].isalnum() or _starts_token(marker, at):
            return True
        at = marker.find(earlier, at + 1)
    return False


def read_catalogue(node: Node, reader: YamlReader) -> tuple[list[AppEntry], tuple[str, ...]]:
    """The entries of an `apps:` node, and every id it declares (bad entries' too); problems go to `reader`
    (with file:line:col), bad entries are left out."""
    walk = _CatalogueReader(reader)
    try:
        entries = walk.entries(node)
    except NodeError as bad:
        reader.problem(bad.node, bad.message)
        entries = []
    return entries, tuple(walk.seen_ids)


def build_catalogue(entries: list[AppEntry], source: str, problems: list[Problem], where: Node | None,
                    file: str) -> Catalogue | None:
    """The catalogue of checked entries, after the checks that need them all; None after recording why not."""
    ids = {entry.id for entry in entries}
    line, column = (where.start_mark.line + 1, where.start_mark.column + 1) if where is not None else (1, 1)
    ok = True
    for app in App:
        if app.value not in ids:
            problems.append(Problem(file, line, column,
                                    f"the catalogue lacks {app.value!r}, which the router's code names "
                                    f"({_CODE_REASONS[app]}); add an entry for it"))
            ok = False
    for entry in entries:
        wanted = CODE_KINDS.get(App(entry.id)) if entry.id in App._value2member_map_ else None
        if wanted is not None and entry.kind != wanted:
            at = entry.where.rsplit(":", 1)
            problems.append(Problem(at[0], int(at[1]), 1, f"{entry.id}: kind must be {wanted!r} (the code reads "
                                                          f"it as one), not {entry.kind!r}"))
            ok = False
    markers = sum(len(entry.markers) for entry in entries)
    if markers > MAX_MARKERS:
        problems.append(Problem(file, line, column, f"{markers} markers; the limit is {MAX_MARKERS}"))
        ok = False
    if not ok:
        return None
    return Catalogue(tuple(entries), source, catalogue_version(entries))


# Why the code names each App: said when a catalogue lacks one.
_CODE_REASONS = {
    App.WECHAT: "WeChat's templates, mini programs and desktop apps",
    App.WECOM: "its desktop app",
    App.DOUYIN: "Douyin's web view markers outside mainland China are TikTok's",
    App.TIKTOK: "Douyin's web view markers outside mainland China are TikTok's",
    App.TAOBAO: "an app links open in: its own web view is not guided out of it",
    App.TMALL: "an app links open in: its own web view is not guided out of it",
    App.OTHER_INAPP: "a web view no marker names",
    App.BROWSER: "anything no marker names",
    App.BOT: "crawlers and HTTP libraries, found by class",
}
if set(_CODE_REASONS) != set(App):
    raise ImportError("router.decision.apps: every App needs a reason in _CODE_REASONS")


def catalogue_version(entries: list[AppEntry] | tuple[AppEntry, ...]) -> str:
    digest = hashlib.sha256(repr([entry.details for entry in entries]).encode())
    return digest.hexdigest()[:12]


def parse_catalogue_text(text: str, file: str) -> Catalogue:
    """A catalogue from a file's text alone (an `apps:` mapping), or CatalogueError."""
    problems: list[Problem] = []
    reader = YamlReader(file, "rule files", problems)
    root = reader.compose(text)
    catalogue = None
    if root is not None:
        try:
            apps = next((value for key, value in reader.pairs(root, "the catalogue") if key.value == "apps"), None)
        except NodeError as bad:
            reader.problem(bad.node, bad.message)
            apps = None
        if apps is None and not problems:
            reader.problem(root, "no 'apps:' list")
        elif apps is not None:
            entries, _ = read_catalogue(apps, reader)
            if not problems:
                catalogue = build_catalogue(entries, file, problems, apps, file)
    if catalogue is None or problems:
        raise CatalogueError(problems)
    return catalogue


@cache
def bundled_catalogue() -> Catalogue:
    """The catalogue shipped with the router (rules/apps.yaml in a checkout, the bundled copy in a wheel):
    what `parse_client` reads with, and what `rules check` compares a changed catalogue with."""
    path = bundled_rules_dir() / "apps.yaml"
    catalogue = parse_catalogue_text(path.read_text(encoding="utf-8"), "apps.yaml")
    return Catalogue(catalogue.entries, "built-in", catalogue.version)


def bundled_rules_dir() -> Path:
    """The shipped rules: ./rules of a source checkout, or the copy inside an installed wheel."""
    package = Path(__file__).resolve().parent.parent  # router/
    for candidate in (package.parent / "rules", package / "bundled_rules"):
        if candidate.is_dir():
            return candidate
    return package.parent / "rules"
