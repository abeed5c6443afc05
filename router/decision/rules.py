"""Rule files -> one immutable RuleSet, or every problem at once as file:line:col.

A rules directory holds YAML files, read in name order. Each file may have
`rules:` (a list, evaluated in order across files, first match wins) and one
file in the directory holds `default:` (the action when nothing matches);
an optional `settings:` mapping configures how app links are built.

    rules:
      - id: wechat-ad-unidesk
        description: Uni Desk ads in WeChat Moments open the app in one tap.
        when: {app: wechat, channel: ad, ad_source: unidesk}
        then: app
    default: landing

Files are read by router.decision.yaml_reader (the reader case files use too):
composed into nodes, never constructed into objects, and walked by hand, so
every problem carries the line and column where it was written. A set with
any problem is rejected whole.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from router.decision.apps import Catalogue, build_catalogue, bundled_catalogue, read_catalogue
from router.decision.clients import ClientReader, reader_of
from router.decision.conditions import CONDITION_TYPES, Condition, ConditionError, Rollout, build_condition
from router.decision.index import RuleIndex
from router.decision.memo import BUILT_LIMIT, CHOICE_LIMIT, ClientKind, Keys
from router.decision.recent import Recent
from router.decision.types import LANDING_PAGES, LANGUAGES, Action, AppEntry, Client, Decision
from router.decision.yaml_reader import MAX_FILE_BYTES, NodeError, Problem, YamlReader, display_name, is_empty, suggest

MAX_RULES = 2_000
RULE_FILE_SUFFIXES = (".yaml", ".yml")

VIA_CHOICES = ("auto", "scheme", "tbopen", "intent", "universal")
TARGET_APPS = ("taobao", "tmall")
THEN_OPTIONS: dict[Action, tuple[str, ...]] = {
    Action.APP: ("action", "via", "app"),
    Action.WEB: ("action",),
    Action.LANDING: ("action", "page", "via", "app"),  # via/app: how the page tries the app
    Action.BLOCK: ("action", "status", "message"),
}
RULE_KEYS = ("id", "description", "when", "then")
TOP_KEYS = ("rules", "default", "settings", "apps")
SETTINGS_KEYS = ("universal_link_hosts",)


class RuleSetError(Exception):
    """A rule set that does not validate; `problems` lists every one found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


MESSAGE_LANGUAGES = LANGUAGES  # the languages a block's message can be given in: the pages'.


@dataclass(frozen=True, slots=True)
class Then:
    """A rule's `then`: the action and its options."""

    action: Action
    via: str = "auto"  # app, landing: how to open the app (auto picks per OS and client)
    app: str = "taobao"  # app, landing: which app to open
    page: str = ""  # landing: page variant, e.g. "moments"
    status: int = 403  # block: HTTP status
    message: str = ""  # block: what the person is told (in the first language the rule gives)
    messages: tuple[tuple[str, str], ...] = ()  # block: the message per language, when the rule gives several


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    conditions: tuple[Condition, ...]
    then: Then
    description: str = ""
    file: str = ""  # where the rule is written, for explanations and warnings
    line: int = 1
    column: int = 1
    # Whether the rule's answer is the same for clicks alike in all but time and visitor (no condition of
    # it reads a part that differs per click: Condition.per_click): only decisions that never tried a rule
    # that is not may be reused for another click.
    timeless: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timeless", not any(condition.per_click() for condition in self.conditions))

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def shadows(self, later: Rule) -> bool:
        """Whether this rule matches every click `later` would match, so `later` can never decide."""
        theirs = later.conditions
        for mine in self.conditions:
            always = isinstance(mine, Rollout) and mine.percent >= 100
            if not always and not any(mine.covers(condition) for condition in theirs):
                return False
        return True

    def first_failure(self, ctx: object) -> Condition | None:
        for condition in self.conditions:
            if not condition.holds(ctx, self.id):  # type: ignore[arg-type]
                return condition
        return None


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    default: Then
    version: str  # short content hash of the files, for logs and /readyz
    files: tuple[str, ...] = ()
    universal_link_hosts: tuple[str, ...] = field(default=())
    # The app catalogue the rules were read with (`apps:`; the shipped one when no file has it): their `app`
    # names, and what reads the user agent of a click decided on these rules (`reader`).
    apps: Catalogue = field(default_factory=bundled_catalogue, compare=False)
    reader: ClientReader = field(init=False, repr=False, compare=False)
    # Built from `rules` whenever a RuleSet is made (dataclasses.replace included), never passed in; the
    # memos (router.decision.memo) start empty with every rule set, so a reload never reuses an answer.
    index: RuleIndex[Rule] = field(init=False, repr=False, compare=False)
    keys: Keys = field(init=False, repr=False, compare=False)
    choices: Recent[tuple[object, ...], tuple[Then, str]] = field(init=False, repr=False, compare=False)
    built: Recent[tuple[object, ...], Decision] = field(init=False, repr=False, compare=False)
    # The rules with a partial rollout (between 0 and 100 %), each with its place in `rules` and its rollout
    # condition (router.decision.decide: rollout_arms), and each rule's place by id. A rollout at 0 or 100 %
    # has one arm: everybody is out, or in.
    rollouts: tuple[tuple[int, Rule, Rollout], ...] = field(init=False, repr=False, compare=False)
    positions: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", RuleIndex(self.rules))
        object.__setattr__(self, "reader", reader_of(self.apps))
        object.__setattr__(self, "rollouts", tuple(
            (position, rule, condition) for position, rule in enumerate(self.rules)
            for condition in rule.conditions if isinstance(condition, Rollout) and condition.per_click()))
        object.__setattr__(self, "positions", {rule.id: position for position, rule in enumerate(self.rules)})
        object.__setattr__(self, "keys", Keys(condition for rule in self.rules for condition in rule.conditions))
        object.__setattr__(self, "choices", Recent(CHOICE_LIMIT))
        object.__setattr__(self, "built", Recent(BUILT_LIMIT))

    def kind_of(self, client: Client) -> ClientKind:
        """What this rule set's decisions read of `client` (router.decision.memo: Keys.kind)."""
        return self.keys.kind(client)

    @property
    def headers_read(self) -> tuple[str, ...]:
        """The request headers this rule set's conditions read, by lower-case name: what a click's Context
        carries in `headers`, in this order."""
        return self.keys.headers


class _FileReader(YamlReader):
    """Walks one rule file's node tree, collecting problems instead of stopping at the first."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        super().__init__(name, "rule files", problems)
        self.ids: list[tuple[str, int, int]] = []  # (id, line, column) of every rule, valid or not
        self.apps: Catalogue = bundled_catalogue()  # the catalogue the conditions are built with (read() sets it)

    def root(self, text: str) -> MappingNode | None:
        """The file's top mapping; None for an empty file, or after recording why it is not one. A file that
        does not parse is read around its broken blocks (YamlReader.compose: recover), so the mistakes in its
        other rules are told too; its syntax problem alone refuses the set."""
        root = self.compose(text, recover=True)
        if root is None or is_empty(root):
            return None
        if not isinstance(root, MappingNode):
            self.problem(root, "a rule file is a mapping with 'rules:' (and optionally 'default:', 'settings:', "
                               "'apps:')")
            return None
        return root

    def apps_node(self, root: MappingNode) -> ScalarNode | None:
        """The key of the file's `apps:` list, if it has one (read before any rule: rules name its apps)."""
        return next((key for key, _ in root.value if isinstance(key, ScalarNode) and key.value == "apps"), None)

    def read(self, root: MappingNode | None, apps: Catalogue) -> tuple[list[Rule], list[tuple[Then, Node]], list[str]]:
        rules: list[Rule] = []
        defaults: list[tuple[Then, Node]] = []
        hosts: list[str] = []
        self.apps = apps
        if root is None:
            return rules, defaults, hosts
        for key, value in self.pairs(root, "a rule file"):
            try:
                if key.value == "apps":
                    continue  # read first, by build_rule_set
                if key.value == "rules":
                    rules.extend(self.rule_list(value))
                elif key.value == "default":
                    defaults.append((self.then(value), key))
                elif key.value == "settings":
                    hosts.extend(self.settings(value))
                else:
                    self.problem(key, f"unknown top-level key {key.value!r}{suggest(key.value, TOP_KEYS)}")
            except NodeError as bad:
                self.problem(bad.node, bad.message)
        return rules, defaults, hosts

    def settings(self, node: Node) -> list[str]:
        hosts: list[str] = []
        for key, value in self.pairs(node, "'settings'"):
            if key.value != "universal_link_hosts":
                self.problem(key, f"unknown setting {key.value!r}{suggest(key.value, SETTINGS_KEYS)}")
                continue
            items = self.plain(value)
            if not isinstance(items, list) or not all(isinstance(h, str) and h for h in items):
                self.problem(value, "'universal_link_hosts' is a list of host names")
                continue
            hosts.extend(str(h).lower() for h in items)
        return hosts

    def rule_list(self, node: Node) -> Iterator[Rule]:
        if not isinstance(node, SequenceNode):
            raise NodeError(node, "'rules' must be a list of rules (each item starts with '- id: ...')")
        for item in node.value:
            try:
                rule = self.rule(item)
            except NodeError as bad:
                self.problem(bad.node, bad.message)
                continue
            if rule is not None:
                yield rule

    def rule(self, node: Node) -> Rule | None:
        if not isinstance(node, MappingNode):
            raise NodeError(node, "each rule is a mapping with id, when and then")
        fields: dict[str, Node] = {}
        for key, value in self.pairs(node, "a rule"):
            if key.value not in RULE_KEYS:
                self.problem(key, f"unknown rule key {key.value!r}{suggest(key.value, RULE_KEYS)}")
                continue
            fields[key.value] = value
        ok = True
        for required in ("id", "when", "then"):
            if required not in fields:
                self.problem(node, f"rule is missing {required!r}")
                ok = False
        if not ok:
            return None
        rule_id = self.plain(fields["id"])
        if not isinstance(rule_id, str) or not rule_id.strip():
            raise NodeError(fields["id"], f"rule id must be a non-empty string, got {rule_id!r}")
        self.ids.append((rule_id, node.start_mark.line + 1, node.start_mark.column + 1))
        description = self.plain(fields["description"]) if "description" in fields else ""
        if not isinstance(description, str):
            raise NodeError(fields["description"], "description must be a string")
        conditions = self.conditions(fields["when"])
        then = self.then(fields["then"])
        if conditions is None:
            return None
        mark = node.start_mark
        return Rule(rule_id, conditions, then, description, self.file, mark.line + 1, mark.column + 1)

    def conditions(self, node: Node) -> tuple[Condition, ...] | None:
        if not isinstance(node, MappingNode):
            raise NodeError(node, "'when' must be a mapping of conditions, e.g. {app: wechat, channel: ad}")
        if not node.value:
            raise NodeError(node, "'when' is empty; a rule that always matches is the 'default'")
        built: list[Condition] = []
        ok = True
        for key, value in self.pairs(node, "'when'"):
            if key.value not in CONDITION_TYPES:
                self.problem(key, f"unknown condition {key.value!r}{suggest(key.value, list(CONDITION_TYPES))}")
                ok = False
                continue
            try:
                built.append(build_condition(key.value, self.plain(value), self.apps))
            except ConditionError as err:
                self.problem(value, str(err))
                ok = False
            except NodeError as bad:
                self.problem(bad.node, bad.message)
                ok = False
        return tuple(built) if ok else None

    def then(self, node: Node) -> Then:
        actions = [action.value for action in Action]
        if isinstance(node, ScalarNode):
            word = self.plain(node)
            if not isinstance(word, str) or word not in actions:
                raise NodeError(node, f"unknown action {word!r}{suggest(str(word), actions)}")
            return Then(Action(word))
        if not isinstance(node, MappingNode):
            raise NodeError(node, f"'then' is an action ({', '.join(actions)}) or a mapping with 'action:'")
        options = {key.value: (key, value) for key, value in self.pairs(node, "'then'")}
        if "action" not in options:
            raise NodeError(node, "'then' mapping needs 'action:'")
        word = self.plain(options["action"][1])
        if not isinstance(word, str) or word not in actions:
            raise NodeError(options["action"][1], f"unknown action {word!r}{suggest(str(word), actions)}")
        action = Action(word)
        allowed = THEN_OPTIONS[action]
        values: dict[str, object] = {}
        for name, (key, value) in options.items():
            if name not in allowed:
                raise NodeError(key, f"option {name!r} does not apply to action {word!r}; "
                                     f"it takes: {', '.join(allowed)}")
            values[name] = self.plain(value)
        return self._checked_then(action, values, options)

    def _checked_then(
        self, action: Action, values: dict[str, object], nodes: dict[str, tuple[ScalarNode, Node]]
    ) -> Then:
        via = values.get("via", "auto")
        if via not in VIA_CHOICES:
            raise NodeError(nodes["via"][1], f"unknown via {via!r}{suggest(str(via), VIA_CHOICES)}")
        app = values.get("app", "taobao")
        if app not in TARGET_APPS:
            raise NodeError(nodes["app"][1], f"unknown app {app!r}; expected one of: {', '.join(TARGET_APPS)}")
        page = values.get("page", "")
        if page != "" and page not in LANDING_PAGES:
            raise NodeError(nodes["page"][1], f"unknown landing page {page!r}{suggest(str(page), LANDING_PAGES)}")
        status = values.get("status", 403)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 499:
            raise NodeError(nodes["status"][1], f"block 'status' must be a 4xx code, got {status!r}")
        message = values.get("message", "")
        messages: tuple[tuple[str, str], ...] = ()
        if isinstance(message, dict):
            # message: {zh-CN: …, en: …}: each page says it in the reader's language (the first one given
            # for a language it lacks).
            unknown = [lang for lang in message if lang not in MESSAGE_LANGUAGES]
            if unknown or not message or not all(isinstance(text, str) and text for text in message.values()):
                raise NodeError(nodes["message"][1], "'message' per language takes "
                                f"{' and '.join(MESSAGE_LANGUAGES)} with a text each"
                                + (f"; unknown language {unknown[0]!r}" if unknown else ""))
            messages = tuple((str(lang), str(text)) for lang, text in message.items())
            message = messages[0][1]
        if not isinstance(message, str):
            raise NodeError(nodes["message"][1], "'message' must be a string, or a mapping of language to string")
        return Then(action, str(via), str(app), page, status, message, messages)


def rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in RULE_FILE_SUFFIXES and p.is_file())


@dataclass(frozen=True, slots=True)
class RuleSource:
    """One rule file's bytes, wherever they came from (a directory, a fetched bundle)."""

    name: str  # as shown in problems: a path relative to the working directory, or a URL
    data: bytes


def load_rules(directory: str | Path) -> RuleSet:
    """Read and validate every rule file in `directory`; raise RuleSetError listing all problems."""
    root = Path(directory)
    if root.is_file():
        # A rule file given where its folder is wanted: every *.yaml in the folder is one rule set.
        folder = str(root.parent) if str(root.parent) != "." else "."
        raise RuleSetError([Problem(str(root), 1, 1, f"this is a rule file; give the rules directory that holds it "
                                                    f"({folder}): every *.yaml in it is read as one rule set")])
    if not root.is_dir():
        raise RuleSetError([Problem(str(root), 1, 1, "rules directory not found")])
    files = rule_files(root)
    if not files:
        raise RuleSetError([Problem(str(root), 1, 1, "no rule files (*.yaml) in the rules directory")])
    sources = []
    for path in files:
        with path.open("rb") as handle:  # never more than the limit (and one byte to notice) in memory
            sources.append(RuleSource(display_name(path), handle.read(MAX_FILE_BYTES + 1)))
    return build_rule_set(sources, origin=str(root), known=root)


def build_rule_set(sources: list[RuleSource], origin: str, known: Path | None = None) -> RuleSet:
    """Validate rule files given as bytes (the one loader the server, the CLI and remote bundles use). An app
    catalogue that differs from the shipped one is read against the known user agents: `known`'s
    `user_agents/` (a rules directory's own), else the shipped ones (router.decision.known_agents)."""
    if not sources:
        raise RuleSetError([Problem(origin, 1, 1, "no rule files")])
    problems: list[Problem] = []
    ids: list[tuple[str, str, int, int]] = []  # (id, file, line, column), for duplicates
    rules: list[Rule] = []
    defaults: list[tuple[Then, Node, str]] = []
    hosts: list[str] = []
    digest = hashlib.sha256()
    read: list[tuple[_FileReader, MappingNode | None]] = []
    for source in sources:
        name, data = source.name, source.data
        reader = _FileReader(name, problems)
        text = reader.decode(data)
        if text is None:
            continue
        # Content only, in evaluation order: the same rules have the same version wherever they come
        # from (a directory, a bundle URL) and whatever their files are called.
        digest.update(data + b"\0")
        read.append((reader, reader.root(text)))
    apps, declared = _catalogue(read, problems)
    if apps is not None and not problems:
        problems.extend(_greedy_markers(apps, known))
    for reader, root in read:
        name = reader.file
        file_rules, file_defaults, file_hosts = reader.read(root, apps or _lenient(declared))
        rules.extend(file_rules)
        ids.extend((rule_id, name, line, column) for rule_id, line, column in reader.ids)
        defaults.extend((then, node, name) for then, node in file_defaults)
        hosts.extend(file_hosts)
    # Checked over every rule that has an id, including rules with other mistakes: all problems at once.
    seen: dict[str, str] = {}
    for rule_id, file, line, column in ids:
        if rule_id in seen:
            message = f"duplicate rule id {rule_id!r} (first at {seen[rule_id]})"
            problems.append(Problem(file, line, column, message))
        else:
            seen[rule_id] = f"{file}:{line}"
    if len(rules) > MAX_RULES:
        problems.append(Problem(origin, 1, 1, f"{len(rules)} rules; the limit is {MAX_RULES}"))
    if not defaults and not problems:
        problems.append(Problem(sources[0].name, 1, 1, "no 'default:' action in any rule file"))
    for _, node, name in defaults[1:]:
        first = defaults[0]
        problems.append(
            Problem(name, node.start_mark.line + 1, node.start_mark.column + 1,
                    f"second 'default:' (first in {first[2]}:{first[1].start_mark.line + 1})")
        )
    if problems:
        raise RuleSetError(sorted(problems, key=lambda p: (p.file, p.line, p.column)))
    return RuleSet(
        rules=tuple(rules),
        default=defaults[0][0],
        version=digest.hexdigest()[:12],
        files=tuple(source.name for source in sources),
        universal_link_hosts=tuple(hosts),
        apps=apps or bundled_catalogue(),
    )


def _lenient(declared: tuple[str, ...]) -> Catalogue:
    """What the rules are checked with when the catalogue itself has problems: the shipped apps and every id the
    broken catalogue declares, so that its mistakes are not reported a second time as unknown apps in rules."""
    shipped = bundled_catalogue()
    extra = tuple(AppEntry(app, names={lang: app for lang in LANGUAGES}, kind="inapp", leave="none")
                  for app in declared if app not in shipped)
    return Catalogue((*shipped.entries, *extra), "the shipped catalogue and the ids declared", shipped.version)


def _greedy_markers(apps: Catalogue, known: Path | None) -> list[Problem]:
    """The catalogue's markers that read too many known user agents as another app than their labels say:
    one problem per entry and marker that moves any, when the moves together pass the limit."""
    from router.decision.known_agents import load_corpus, reclassification  # reads files: only when asked

    if apps.version == bundled_catalogue().version:
        return []
    moved = reclassification(apps, load_corpus(known))
    if not moved.fails():
        return []
    out = [Problem(*move.place, 1, move.message() + "; a marker names one app only if no other app's user agent "
                   "carries it: use a token this app's user agent alone sends")
           for move in moved.largest_first() if move.harmful]  # onto their labels only: the owner's own lines
    out.append(Problem(apps.source, 1, 1, moved.verdict()))
    return out


_WRITTEN_ID = re.compile(r"^[ \t]*(?:-[ \t]+)?id[ \t]*:[ \t]*[\"']?([a-z][a-z0-9_]*)", re.MULTILINE)


def _catalogue(read: list[tuple[_FileReader, MappingNode | None]],
               problems: list[Problem]) -> tuple[Catalogue | None, tuple[str, ...]]:
    """The catalogue of the one file with `apps:` (the shipped one when no file has it), and the ids it
    declares; None after recording what is wrong with it (the rules are then checked with _lenient, so their
    own mistakes show too, and the catalogue's are not told twice)."""
    found = [(reader, root, key) for reader, root in read if root is not None
             for key in [reader.apps_node(root)] if key is not None]
    # Entries in a block that does not parse were left unread (their problem is recorded): the catalogue is
    # incomplete, so the rules are checked leniently, with the ids those blocks seem to declare too.
    unread = [block.text for reader, _ in read for block in reader.skipped if block.section == "apps"]
    guessed = tuple(app for text in unread for app in _WRITTEN_ID.findall(text))
    if not found:
        return (None, guessed) if unread else (bundled_catalogue(), ())
    for reader, _, key in found[1:]:
        first = found[0]
        reader.problem(key, f"second 'apps:' (first in {first[0].file}:{first[2].start_mark.line + 1}): "
                            "one file holds the app catalogue")
    reader, root, key = found[0]
    node = next(value for k, value in root.value if k is key)
    before = len(problems)
    entries, declared = read_catalogue(node, reader)
    if len(problems) > before or unread:
        return None, (*declared, *guessed)
    return build_catalogue(entries, reader.file, problems, node, reader.file), declared
