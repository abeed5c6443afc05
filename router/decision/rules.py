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

The YAML is composed into nodes (never constructed into objects: no tag can
build anything) and walked by hand, so every problem carries the line and
column where it was written. A set with any problem is rejected whole.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from router.decision.conditions import Condition, ConditionError, ConditionName, Rollout, build_condition
from router.decision.types import LANDING_PAGES, Action

MAX_FILE_BYTES = 1_000_000
MAX_RULES = 2_000
RULE_FILE_SUFFIXES = (".yaml", ".yml")

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}
VIA_CHOICES = ("auto", "scheme", "tbopen", "intent", "universal")
TARGET_APPS = ("taobao", "tmall")
OUTCOME_OPTIONS: dict[Action, tuple[str, ...]] = {
    Action.APP: ("action", "via", "app"),
    Action.WEB: ("action",),
    Action.LANDING: ("action", "page", "via", "app"),  # via/app: how the page tries the app
    Action.BLOCK: ("action", "status", "message"),
}
RULE_KEYS = ("id", "description", "when", "then")
TOP_KEYS = ("rules", "default", "settings")
SETTINGS_KEYS = ("universal_link_hosts",)


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"

    def labelled(self, kind: str = "error") -> str:
        """`file:line:col: error: message`, as the rules commands print it (errors apart from warnings)."""
        return f"{self.file}:{self.line}:{self.column}: {kind}: {self.message}"


class RuleSetError(Exception):
    """A rule set that does not validate; `problems` lists every one found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@dataclass(frozen=True, slots=True)
class Outcome:
    """A rule's `then`: the action and its options."""

    action: Action
    via: str = "auto"  # app, landing: how to open the app (auto picks per OS and client)
    app: str = "taobao"  # app, landing: which app to open
    page: str = ""  # landing: page variant, e.g. "moments"
    status: int = 403  # block: HTTP status
    message: str = ""  # block: what the person is told


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    conditions: tuple[tuple[ConditionName, Condition], ...]
    then: Outcome
    description: str = ""
    file: str = ""  # where the rule is written, for explanations and warnings
    line: int = 1
    column: int = 1

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def shadows(self, later: Rule) -> bool:
        """Whether this rule matches every click `later` would match, so `later` can never decide."""
        theirs = [condition for _, condition in later.conditions]
        for _, mine in self.conditions:
            always = isinstance(mine, Rollout) and mine.percent >= 100
            if not always and not any(mine.covers(condition) for condition in theirs):
                return False
        return True

    def first_failure(self, ctx: object) -> Condition | None:
        for _, condition in self.conditions:
            if not condition.holds(ctx, self.id):  # type: ignore[arg-type]
                return condition
        return None


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    default: Outcome
    version: str  # short content hash of the files, for logs and /readyz
    files: tuple[str, ...] = ()
    universal_link_hosts: tuple[str, ...] = field(default=())


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(choices)}"


class _FileReader:
    """Walks one file's node tree, collecting problems instead of stopping at the first."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.name = name
        self.problems = problems
        self.ids: list[tuple[str, int, int]] = []  # (id, line, column) of every rule, valid or not
        self._scalars = SafeConstructor()
        self._expanded: set[int] = set()

    def problem(self, node: Node | None, message: str) -> None:
        line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else (1, 1)
        self.problems.append(Problem(self.name, line, column, message))

    def plain(self, node: Node) -> object:
        """A node as plain Python data (str/int/float/bool/None/datetime/list/dict), or a problem."""
        if node.tag not in _PLAIN_TAGS:
            raise _Bad(node, f"YAML tag {node.tag!r} is not allowed in rule files")
        if isinstance(node, ScalarNode):
            try:
                return self._scalars.construct_object(node)
            except (ConstructorError, ValueError) as err:
                raise _Bad(node, f"bad value {node.value!r}: {err}") from None
        # An alias makes the composer hand back the same node again; expanding nested aliases is
        # exponential ("billion laughs"), and rule files have no need for them.
        if id(node) in self._expanded:
            raise _Bad(node, "YAML aliases (*name) are not allowed in rule files; write the value out")
        self._expanded.add(id(node))
        if isinstance(node, SequenceNode):
            return [self.plain(item) for item in node.value]
        if isinstance(node, MappingNode):
            return {str(self.plain(key)): self.plain(value) for key, value in self.mapping(node)}
        raise _Bad(node, "unexpected YAML node")

    def mapping(self, node: MappingNode) -> Iterator[tuple[Node, Node]]:
        """Key/value pairs, reporting duplicate keys (YAML loaders silently keep the last one)."""
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                raise _Bad(key, "mapping keys must be plain words")
            if key.value in seen:
                self.problem(key, f"duplicate key {key.value!r}")
                continue
            seen.add(key.value)
            yield key, value

    def read(self, text: str) -> tuple[list[Rule], list[tuple[Outcome, Node]], list[str]]:
        rules: list[Rule] = []
        defaults: list[tuple[Outcome, Node]] = []
        hosts: list[str] = []
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            self.problems.append(Problem(self.name, line, column, f"YAML syntax: {err.problem or err}"))
            return rules, defaults, hosts
        except yaml.YAMLError as err:
            self.problems.append(Problem(self.name, 1, 1, f"YAML: {err}"))
            return rules, defaults, hosts
        if root is None:
            return rules, defaults, hosts
        if not isinstance(root, MappingNode):
            self.problem(root, "a rule file is a mapping with 'rules:' (and optionally 'default:', 'settings:')")
            return rules, defaults, hosts
        for key, value in self.mapping(root):
            try:
                if key.value == "rules":
                    rules.extend(self.rule_list(value))
                elif key.value == "default":
                    defaults.append((self.outcome(value), key))
                elif key.value == "settings":
                    hosts.extend(self.settings(value))
                else:
                    self.problem(key, f"unknown top-level key {key.value!r}{_suggest(key.value, TOP_KEYS)}")
            except _Bad as bad:
                self.problem(bad.node, bad.message)
        return rules, defaults, hosts

    def settings(self, node: Node) -> list[str]:
        if not isinstance(node, MappingNode):
            raise _Bad(node, "'settings' must be a mapping")
        hosts: list[str] = []
        for key, value in self.mapping(node):
            if key.value != "universal_link_hosts":
                self.problem(key, f"unknown setting {key.value!r}{_suggest(key.value, SETTINGS_KEYS)}")
                continue
            items = self.plain(value)
            if not isinstance(items, list) or not all(isinstance(h, str) and h for h in items):
                self.problem(value, "'universal_link_hosts' is a list of host names")
                continue
            hosts.extend(str(h).lower() for h in items)
        return hosts

    def rule_list(self, node: Node) -> Iterator[Rule]:
        if not isinstance(node, SequenceNode):
            raise _Bad(node, "'rules' must be a list of rules (each item starts with '- id: ...')")
        for item in node.value:
            try:
                rule = self.rule(item)
            except _Bad as bad:
                self.problem(bad.node, bad.message)
                continue
            if rule is not None:
                yield rule

    def rule(self, node: Node) -> Rule | None:
        if not isinstance(node, MappingNode):
            raise _Bad(node, "each rule is a mapping with id, when and then")
        fields: dict[str, Node] = {}
        for key, value in self.mapping(node):
            if key.value not in RULE_KEYS:
                self.problem(key, f"unknown rule key {key.value!r}{_suggest(key.value, RULE_KEYS)}")
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
            raise _Bad(fields["id"], f"rule id must be a non-empty string, got {rule_id!r}")
        self.ids.append((rule_id, node.start_mark.line + 1, node.start_mark.column + 1))
        description = self.plain(fields["description"]) if "description" in fields else ""
        if not isinstance(description, str):
            raise _Bad(fields["description"], "description must be a string")
        conditions = self.conditions(fields["when"])
        then = self.outcome(fields["then"])
        if conditions is None:
            return None
        mark = node.start_mark
        return Rule(rule_id, conditions, then, description, self.name, mark.line + 1, mark.column + 1)

    def conditions(self, node: Node) -> tuple[tuple[ConditionName, Condition], ...] | None:
        if not isinstance(node, MappingNode):
            raise _Bad(node, "'when' must be a mapping of conditions, e.g. {app: wechat, channel: ad}")
        if not node.value:
            raise _Bad(node, "'when' is empty; a rule that always matches is the 'default'")
        built: list[tuple[ConditionName, Condition]] = []
        ok = True
        names = [name.value for name in ConditionName]
        for key, value in self.mapping(node):
            if key.value not in names:
                self.problem(key, f"unknown condition {key.value!r}{_suggest(key.value, names)}")
                ok = False
                continue
            name = ConditionName(key.value)
            try:
                built.append((name, build_condition(name, self.plain(value))))
            except ConditionError as err:
                self.problem(value, str(err))
                ok = False
            except _Bad as bad:
                self.problem(bad.node, bad.message)
                ok = False
        return tuple(built) if ok else None

    def outcome(self, node: Node) -> Outcome:
        actions = [action.value for action in Action]
        if isinstance(node, ScalarNode):
            word = self.plain(node)
            if not isinstance(word, str) or word not in actions:
                raise _Bad(node, f"unknown action {word!r}{_suggest(str(word), actions)}")
            return Outcome(Action(word))
        if not isinstance(node, MappingNode):
            raise _Bad(node, f"'then' is an action ({', '.join(actions)}) or a mapping with 'action:'")
        options = {key.value: (key, value) for key, value in self.mapping(node)}
        if "action" not in options:
            raise _Bad(node, "'then' mapping needs 'action:'")
        word = self.plain(options["action"][1])
        if not isinstance(word, str) or word not in actions:
            raise _Bad(options["action"][1], f"unknown action {word!r}{_suggest(str(word), actions)}")
        action = Action(word)
        allowed = OUTCOME_OPTIONS[action]
        values: dict[str, object] = {}
        for name, (key, value) in options.items():
            if name not in allowed:
                raise _Bad(key, f"option {name!r} does not apply to action {word!r}; it takes: {', '.join(allowed)}")
            values[name] = self.plain(value)
        return self._checked_outcome(action, values, options)

    def _checked_outcome(
        self, action: Action, values: dict[str, object], nodes: dict[str, tuple[Node, Node]]
    ) -> Outcome:
        via = values.get("via", "auto")
        if via not in VIA_CHOICES:
            raise _Bad(nodes["via"][1], f"unknown via {via!r}{_suggest(str(via), VIA_CHOICES)}")
        app = values.get("app", "taobao")
        if app not in TARGET_APPS:
            raise _Bad(nodes["app"][1], f"unknown app {app!r}; expected one of: {', '.join(TARGET_APPS)}")
        page = values.get("page", "")
        if page != "" and page not in LANDING_PAGES:
            raise _Bad(nodes["page"][1], f"unknown landing page {page!r}{_suggest(str(page), LANDING_PAGES)}")
        status = values.get("status", 403)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 499:
            raise _Bad(nodes["status"][1], f"block 'status' must be a 4xx code, got {status!r}")
        message = values.get("message", "")
        if not isinstance(message, str):
            raise _Bad(nodes["message"][1], "'message' must be a string")
        return Outcome(action, str(via), str(app), page, status, message)


class _Bad(Exception):
    def __init__(self, node: Node, message: str) -> None:
        self.node = node
        self.message = message


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
    if not root.is_dir():
        raise RuleSetError([Problem(str(root), 1, 1, "rules directory not found")])
    files = rule_files(root)
    if not files:
        raise RuleSetError([Problem(str(root), 1, 1, "no rule files (*.yaml) in the rules directory")])
    sources = []
    for path in files:
        with path.open("rb") as handle:  # never more than the limit (and one byte to notice) in memory
            sources.append(RuleSource(_display_name(path), handle.read(MAX_FILE_BYTES + 1)))
    return build_rule_set(sources, origin=str(root))


def build_rule_set(sources: list[RuleSource], origin: str) -> RuleSet:
    """Validate rule files given as bytes (the one loader the server, the CLI and remote bundles use)."""
    if not sources:
        raise RuleSetError([Problem(origin, 1, 1, "no rule files")])
    problems: list[Problem] = []
    ids: list[tuple[str, str, int, int]] = []  # (id, file, line, column), for duplicates
    rules: list[Rule] = []
    defaults: list[tuple[Outcome, Node, str]] = []
    hosts: list[str] = []
    digest = hashlib.sha256()
    for source in sources:
        name, data = source.name, source.data
        if len(data) > MAX_FILE_BYTES:
            problems.append(Problem(name, 1, 1, f"file is larger than the limit of {MAX_FILE_BYTES} bytes"))
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            problems.append(Problem(name, 1, 1, f"not UTF-8 text ({err.reason} at byte {err.start})"))
            continue
        # Content only, in evaluation order: the same rules have the same version wherever they come
        # from (a directory, a bundle URL) and whatever their files are called.
        digest.update(data + b"\0")
        reader = _FileReader(name, problems)
        file_rules, file_defaults, file_hosts = reader.read(text)
        rules.extend(file_rules)
        ids.extend((rule_id, name, line, column) for rule_id, line, column in reader.ids)
        defaults.extend((outcome, node, name) for outcome, node in file_defaults)
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
    )


def _display_name(path: Path) -> str:
    """A path as the user gave it, relative to the working directory when it lies under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
