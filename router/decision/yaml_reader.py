"""One reader for the YAML people write: rule files and case files alike, so a fix to one is a fix to both.

Text is composed into nodes, never constructed into objects (no tag can build anything), and walked by
hand, so every problem carries the file, line and column where it was written. Refused the same way in
every kind of file:

- more than MAX_FILE_BYTES, or bytes that are not UTF-8;
- YAML aliases (`*name`): an alias lets a small file stand for a huge one ("billion laughs"), and neither
  rules nor cases need one. They are refused while composing, at the alias, before anything is expanded;
- tags other than YAML's plain ones (str, int, float, bool, null, timestamp, seq, map);
- keys that are not plain words, and duplicate keys (YAML loaders silently keep the last one).

A document that does not parse hides nothing else: `compose(text, recover=True)` reads it again block by
block (each top-level key; each item of a top-level list, such as one rule of `rules:`), so every broken
block is told at its own line and the blocks around it are still read and checked. What is read that way
is for reporting only: the file has a problem recorded, and a caller refuses it whole.

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


@dataclass(frozen=True, slots=True)
class Skipped:
    """A block of a file that does not parse, left unread: the top-level key it is written under, its first
    line (1-based) and its text. Its problem is recorded; what it declares (an app id…) is not known."""

    section: str
    line: int
    text: str


class _AliasFound(Exception):
    def __init__(self, mark: yaml.Mark | None) -> None:
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader's composer, stopping at the first alias instead of handing back the node it names."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            raise _AliasFound(self.peek_event().start_mark)
        return super().compose_node(parent, index)


def _compose(text: str, line: int = 0) -> Node | None:
    """The single document in `text`; `line`: the 0-based line `text` starts at in its file (its marks say so)."""
    loader = _Loader(text)
    loader.line = line  # the reader counts lines from here: a block read alone keeps its file's line numbers
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


# What YAML counts as a line break (its marks count lines by these; str.splitlines also splits at others).
_LINE = re.compile(r"[^\r\n\x85\u2028\u2029]*(?:\r\n|[\r\n\x85\u2028\u2029])|[^\r\n\x85\u2028\u2029]+$")
_TOP_KEY = re.compile(r"([A-Za-z_][\w-]*)[ \t]*:(?:\s|$)")  # `rules:` at column 0
_DOCUMENT_MARK = re.compile(r"(?:---|\.\.\.)(?:\s|$)|%")  # ---, ... and %YAML: more than one plain document
_DOCUMENT_START = re.compile(r"---[ \t]*(?:#.*)?$")  # a `---` alone, before the first key: harmless


def _lines(text: str) -> list[str]:
    """The text's lines, each with its line break, as YAML numbers them."""
    return _LINE.findall(text)


def _content(line: str) -> bool:
    """Whether a line holds anything but blanks and a comment."""
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _sections(lines: list[str]) -> list[tuple[int, int]] | None:
    """Where each top-level key's block starts and ends (0-based, end excluded), from the lines that start
    with `key:` at column 0; None when the text is not laid out as such a mapping (there is nothing to read
    around a broken block then)."""
    starts: list[int] = []
    for number, line in enumerate(lines):
        line = line.removeprefix("\ufeff") if number == 0 else line
        if not _content(line) or line[0] in " \t":
            continue
        if _DOCUMENT_MARK.match(line):
            if starts or not _DOCUMENT_START.match(line.rstrip("\r\n\x85\u2028\u2029")):
                return None
            continue
        if _TOP_KEY.match(line):
            starts.append(number)
        elif not starts:
            return None
        # else: a line at column 0 inside a block (a list written at column 0, or the broken line): it stays there
    if not starts:
        return None
    return list(zip(starts, [*starts[1:], len(lines)], strict=True))


def _items(lines: list[str], start: int, end: int) -> list[tuple[int, int]] | None:
    """Where each item of the block list under the key at `start` starts and ends: the lines that start with
    `- ` at the column of the first; None when the key's value is not a block list."""
    value = _TOP_KEY.sub("", lines[start].removeprefix("\ufeff"), count=1)
    if _content(value):
        return None  # `rules: [...]`, `default: web`: one block
    body = [number for number in range(start + 1, end) if _content(lines[number])]
    first = re.match(r"( *)-(?:\s|$)", lines[body[0]]) if body else None
    if first is None:
        return None
    item = re.compile(f" {{{len(first.group(1))}}}-(?:\\s|$)")
    starts = [number for number in body if item.match(lines[number])]
    return list(zip(starts, [*starts[1:], end], strict=True))


class YamlReader:
    """One file's text -> nodes, and the accessors every walk of those nodes uses; problems collected.

    `kind` names the files in messages ("rule files", "case files").
    """

    def __init__(self, file: str, kind: str, problems: list[Problem] | None = None) -> None:
        self.file = file
        self.kind = kind
        self.problems: list[Problem] = [] if problems is None else problems
        self.skipped: list[Skipped] = []  # blocks of a broken file left unread (compose with recover)
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

    def compose(self, text: str, recover: bool = False) -> Node | None:
        """The document's root node (a null scalar for an empty file), or None after recording a problem.

        With `recover`, a document that does not parse is read again block by block (see `_recovered`): every
        broken block's problem is recorded, and the root of what could be read around them is returned, for
        reporting only (the recorded problem refuses the file; `skipped` lists what was left unread)."""
        try:
            root = _compose(text)
        except _AliasFound as found:
            self.problems.append(self._alias_problem(found))
            return None
        except yaml.MarkedYAMLError as err:
            # Recovering, a complaint at the stream's end is placed where the unclosed quote or bracket starts.
            problem = self._syntax_problem(err, _lines(text), text if recover else None)
            recovered = self._recovered(text, problem) if recover else None
            if recovered is None:
                self.problems.append(problem)
            return recovered
        except yaml.YAMLError as err:
            self.at(1, 1, f"YAML: {err}")
            return None
        if root is None:  # an empty file, or only comments
            return ScalarNode(NULL_TAG, "", yaml.Mark(self.file, 0, 0, 0, "", 0), None)
        return root

    def _alias_problem(self, found: _AliasFound) -> Problem:
        line, column = (found.mark.line + 1, found.mark.column + 1) if found.mark else (1, 1)
        return Problem(self.file, line, column, f"YAML aliases (*name) are not allowed in {self.kind}; write the "
                                                "value out")

    def _syntax_problem(self, err: yaml.MarkedYAMLError, lines: list[str], piece: str | None = None) -> Problem:
        """A parser's complaint at its place, in plain words. Given the `piece` of text read, a complaint at its end
        (a quote or bracket never closed) is placed where the unclosed thing starts: not past the last line, nor
        on the next block's first line."""
        mark = err.problem_mark or err.context_mark
        if piece is not None and err.context_mark is not None and (
                mark is None or mark.index >= len(piece.rstrip())):
            mark = err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        source_line = lines[line - 1].rstrip("\r\n\x85\u2028\u2029") if mark and line <= len(lines) else ""
        return Problem(self.file, line, column, yaml_advice(str(err.problem or err), source_line, err.context or "",
                                                            column))

    def _piece(self, lines: list[str], start: int, end: int) -> tuple[Node | None, Problem | None]:
        """Lines start..end (0-based, end excluded) read alone, at their own lines and columns: the node, or
        the problem that stops them."""
        piece = "".join(lines[start:end])
        try:
            return _compose(piece, start), None
        except _AliasFound as found:
            return None, self._alias_problem(found)
        except yaml.MarkedYAMLError as err:
            return None, self._syntax_problem(err, lines, piece)
        except yaml.YAMLError as err:
            return None, Problem(self.file, start + 1, 1, f"YAML: {err}")

    def _recovered(self, text: str, first: Problem) -> MappingNode | None:
        """A document that does not parse as a whole (`first` is what the parser said), read block by block:
        each top-level `key:` block, and for a broken one whose value is a block list, each item (lines from
        one `- ` at the list's column to the next). A block that does not read alone is left out, its problem
        recorded (`first` itself for the block it falls in: its words see the whole file); the others make a
        root mapping, so their own mistakes are found too. None when the text is not laid out so, or when no
        block is broken alone (then only `first` can be told)."""
        lines = _lines(text)
        sections = _sections(lines)
        if sections is None:
            return None
        blocks: list[tuple[int, int, Problem | None]] = []  # (start, end, problem): every piece read
        skipped: list[Skipped] = []
        pairs: list[tuple[Node, Node]] = []
        for start, end in sections:
            pairs.extend(self._section(lines, start, end, blocks, skipped))
        if all(problem is None for _, _, problem in blocks):
            return None
        at = first.line - 1
        holder = next((block for block in blocks if block[0] <= at < block[1]), None)
        if holder is None and at >= blocks[-1][1]:  # past the last line: the stream's end
            holder = blocks[-1]
        for block in blocks:
            if block[2] is not None:
                self.problems.append(first if block is holder else block[2])
        self.skipped.extend(skipped)
        start_mark = pairs[0][0].start_mark if pairs else yaml.Mark(self.file, 0, 0, 0, "", 0)
        end_mark = pairs[-1][1].end_mark if pairs else start_mark
        return MappingNode("tag:yaml.org,2002:map", pairs, start_mark, end_mark)

    def _section(self, lines: list[str], start: int, end: int, blocks: list[tuple[int, int, Problem | None]],
                 skipped: list[Skipped]) -> list[tuple[Node, Node]]:
        """One top-level key's block: its key/value pairs; a broken block list read item by item."""
        name = lines[start].removeprefix("\ufeff").split(":", 1)[0].strip()
        node, problem = self._piece(lines, start, end)
        if problem is None:
            blocks.append((start, end, None))
            return list(node.value) if isinstance(node, MappingNode) else []
        items = _items(lines, start, end)
        head, head_problem = self._piece(lines, start, items[0][0]) if items else (None, problem)
        if items is None or head_problem is not None or not isinstance(head, MappingNode) or len(head.value) != 1:
            blocks.append((start, end, problem))
            skipped.append(Skipped(name, start + 1, "".join(lines[start:end])))
            return []
        blocks.append((start, items[0][0], None))
        values: list[Node] = []
        for first, last in items:
            item, problem = self._piece(lines, first, last)
            if problem is None and isinstance(item, SequenceNode):
                values.extend(item.value)
                blocks.append((first, last, None))
                continue
            if problem is None:  # not a list item alone: can't be placed in the list
                column = len(lines[first]) - len(lines[first].lstrip(" ")) + 1
                problem = Problem(self.file, first + 1, column, "this list item can't be read on its own")
            blocks.append((first, last, problem))
            skipped.append(Skipped(name, first + 1, "".join(lines[first:last])))
        key, value = head.value[0]
        start_mark = values[0].start_mark if values else value.start_mark
        end_mark = values[-1].end_mark if values else value.end_mark
        return [(key, SequenceNode("tag:yaml.org,2002:seq", values, start_mark, end_mark))]

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
