"""One reader for the YAML people write: rule files and case files alike, so a fix to one is a fix to both.

Text is composed into nodes, never constructed into objects (no tag can build anything), and walked by
hand, so every problem carries the file, line and column where it was written. Refused the same way in
every kind of file:

- more than MAX_FILE_BYTES, or bytes that are not UTF-8;
- YAML aliases (`*name`): an alias lets a small file stand for a huge one ("billion laughs"), and neither
  rules nor cases need one. They are refused while composing, at the alias, before anything is expanded;
- tags other than YAML's plain ones (str, int, float, bool, null, timestamp, seq, map);
- keys that are not plain words, and duplicate keys (YAML loaders silently keep the last one).

Errors, drawn once:

    Problem      a value: file, line, column and a sentence; readers collect them rather than stop
    NodeError    raised by a walk at a node it cannot read further; the caller records it as a Problem
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1_000_000
PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")
)
NULL_TAG = "tag:yaml.org,2002:null"


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


class NodeError(Exception):
    """A node that can't be read further; the walk records it and goes on with the next part."""

    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


def suggest(word: str, choices: Sequence[str]) -> str:
    """"; did you mean 'x'?" for a near miss, else the list of what is expected."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(choices)}"


def display_name(path: Path) -> str:
    """A path as the user gave it, relative to the working directory when it lies under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _AliasFound(Exception):
    def __init__(self, mark: yaml.Mark | None) -> None:
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader's composer, stopping at the first alias instead of handing back the node it names."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            raise _AliasFound(self.peek_event().start_mark)
        return super().compose_node(parent, index)


class YamlReader:
    """One file's text -> nodes, and the accessors every walk of those nodes uses; problems collected.

    `kind` names the files in messages ("rule files", "case files").
    """

    def __init__(self, file: str, kind: str, problems: list[Problem] | None = None) -> None:
        self.file = file
        self.kind = kind
        self.problems: list[Problem] = [] if problems is None else problems
        self._scalars = SafeConstructor()

    # --- recording problems ---

    def problem(self, node: Node | None, message: str) -> None:
        line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else (1, 1)
        self.problems.append(Problem(self.file, line, column, message))

    def at(self, line: int, column: int, message: str) -> Problem:
        problem = Problem(self.file, line, column, message)
        self.problems.append(problem)
        return problem

    # --- bytes -> text -> nodes ---

    def decode(self, data: bytes) -> str | None:
        """The file's text, or None after recording why it can't be read (too big, not UTF-8)."""
        if len(data) > MAX_FILE_BYTES:
            self.at(1, 1, f"file is larger than the limit of {MAX_FILE_BYTES} bytes")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as err:  # placed where the bad byte is, so an editor can jump to it
            line = data.count(b"\n", 0, err.start) + 1
            column = err.start - data.rfind(b"\n", 0, err.start)
            byte = data[err.start]
            self.at(line, column, f"not UTF-8 text ({err.reason}, byte 0x{byte:02x}); save the file as UTF-8")
            return None

    def compose(self, text: str) -> Node | None:
        """The document's root node (a null scalar for an empty file), or None after recording a problem."""
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        except _AliasFound as found:
            line, column = (found.mark.line + 1, found.mark.column + 1) if found.mark else (1, 1)
            self.at(line, column, f"YAML aliases (*name) are not allowed in {self.kind}; write the value out")
            return None
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            source_line = text.splitlines()[line - 1] if mark and line <= len(text.splitlines()) else ""
            self.at(line, column, yaml_advice(str(err.problem or err), source_line, err.context or "", column))
            return None
        except yaml.YAMLError as err:
            self.at(1, 1, f"YAML: {err}")
            return None
        finally:
            loader.dispose()
        if root is None:  # an empty file, or only comments
            return ScalarNode(NULL_TAG, "", yaml.Mark(self.file, 0, 0, 0, "", 0), None)
        return root

    # --- walking nodes ---

    def check_tag(self, node: Node) -> None:
        if node.tag not in PLAIN_TAGS:
            raise NodeError(node, f"YAML tag {node.tag!r} is not allowed in {self.kind}")

    def pairs(self, node: Node, what: str) -> Iterator[tuple[ScalarNode, Node]]:
        """A mapping's key/value nodes; a duplicate key is recorded (and skipped), any other mistake raised."""
        self.check_tag(node)
        if not isinstance(node, MappingNode):
            raise NodeError(node, f"{what} must be a mapping")
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                raise NodeError(key, "mapping keys must be plain words")
            self.check_tag(key)
            if key.value in seen:
                self.problem(key, f"duplicate key {key.value!r} in {what}")
                continue
            seen.add(key.value)
            yield key, value

    def fields(self, node: Node, what: str, keys: Sequence[str]) -> dict[str, Node]:
        """A mapping's values by key, for a fixed set of keys: an unknown key is recorded with a suggestion."""
        found: dict[str, Node] = {}
        for key, value in self.pairs(node, what):
            if keys and key.value not in keys:
                self.problem(key, f"unknown key {key.value!r} in {what}{suggest(key.value, keys)}")
            else:
                found[key.value] = value
        return found

    def plain(self, node: Node) -> object:
        """A node as plain data (str, int, float, bool, None, datetime, list, dict), as YAML types it."""
        self.check_tag(node)
        if isinstance(node, ScalarNode):
            try:
                return self._scalars.construct_object(node)
            except (ConstructorError, ValueError) as err:
                raise NodeError(node, f"bad value {node.value!r}: {err}") from None
        if isinstance(node, SequenceNode):
            return [self.plain(item) for item in node.value]
        if isinstance(node, MappingNode):
            return {key.value: self.plain(value) for key, value in self.pairs(node, "a mapping")}
        raise NodeError(node, "unexpected YAML node")

    def text(self, node: Node, what: str) -> str:
        """A scalar exactly as written (`advertiser: 1001` is "1001"); a list, mapping or null is a mistake."""
        self.check_tag(node)
        if not isinstance(node, ScalarNode):
            raise NodeError(node, f"{what} must be a single value")
        if node.tag == NULL_TAG:
            raise NodeError(node, f"{what} has no value")
        return str(node.value)


def is_empty(node: Node) -> bool:
    """Whether a composed document is empty (only comments, or nothing)."""
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG and node.value in ("", "~", "null")


_CANNOT_START = re.compile(r"found character '(.+?)' that cannot start any token")


def _key_and_value(source_line: str, column: int) -> tuple[str, str]:
    """The key and the (unquoted) value around column `column` (1-based) of a line, block or flow style:
    `app_version: >=8.0.30` or `{app_version: >=8.0.30, …}` → ("app_version", ">=8.0.30")."""
    before = source_line[: max(column - 1, 0)]
    colon = before.rfind(":")
    if colon < 0:
        return "", ""
    key = re.split(r"[\s{,\[-]+", before[:colon].rstrip())[-1]
    value = re.split(r"[,}\]]", source_line[colon + 1:], maxsplit=1)[0].strip()
    return key, value


def yaml_advice(problem: str, source_line: str, context: str = "", column: int = 1) -> str:
    """A YAML parser's complaint as what to do about it, the parser's own words kept at the end (people search
    for them). The common mistakes in rule and case files: an unquoted version range, a tab, a line indented
    differently from its neighbours, a ': ' inside a value, an unclosed quote or bracket."""
    said = f"(YAML: {problem})"
    found = _CANNOT_START.search(problem)
    if found or "expected chomping or indentation indicators" in problem:
        # '>' and '|' start YAML's block texts, so `>=8.0.30` unquoted fails before its '='.
        char = found.group(1) if found else _key_and_value(source_line, column)[1][:1] or ">"
        if char == "\\t":
            return f"a tab: YAML indents with spaces only; replace the tab with spaces {said}"
        key, value = _key_and_value(source_line, column)
        if char in "<>=" and key and value:
            return f"quote the version range: {key}: \"{value}\" ({char!r} can't start a plain YAML value) {said}"
        if key and value:
            return f"quote the value: {key}: \"{value}\" ({char!r} can't start a plain YAML value) {said}"
        return f"{char!r} can't start a plain YAML value: quote it {said}"
    if "expected <block end>, but found" in problem or "did not find expected key" in problem:
        return ("this line is indented differently from the rule or key above it: line up the keys of one "
                f"mapping, and each '- ' of one list, in the same column {said}")
    if "mapping values are not allowed here" in problem:
        return (f"a ': ' in the middle of a value (or a key indented under a value): quote the value, or indent "
                f"the key as its siblings are {said}")
    if "could not find expected ':'" in problem:
        return (f"a line without 'key: value' (or a quote left open on a line above): add the ':' or close the "
                f"quote {said}")
    if ("found unexpected end of stream" in problem or "found '<stream end>'" in problem
            or "while scanning a quoted scalar" in context):
        return f"a quote or bracket opened and never closed: close it on the line where it starts {said}"
    if "expected ',' or '}'" in problem or "expected ',' or ']'" in problem:
        return f"a {{…}} or […] list that does not close as written: check its commas and brackets {said}"
    return f"YAML syntax: {problem}"
