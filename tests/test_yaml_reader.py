"""One YAML reader (router.decision.yaml_reader) for rule files and case files: each mistake it refuses is
refused in both kinds of file, with the same words, at the same line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.decision.rules import RuleSetError, RuleSource, build_rule_set
from router.decision.yaml_reader import MAX_FILE_BYTES, YamlReader, is_empty
from router.policy.casebook import load_cases

RULE = "rules:\n  - id: a\n    description: {value}\n    when: {{app: qq}}\n    then: web\ndefault: web\n"
CASE = ("cases:\n  - name: a\n    click: {{url: {value}, ua: x}}\n    expect: {{action: web}}\n")


def rule_problems(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    try:
        build_rule_set([RuleSource("f.yaml", data)], origin="rules")
    except RuleSetError as err:
        return [str(problem) for problem in err.problems]
    return []


def case_problems(tmp_path: Path, text: str | bytes) -> list[str]:
    (tmp_path / "tests").mkdir(exist_ok=True)
    target = tmp_path / "tests" / "f.yaml"
    target.write_bytes(text.encode() if isinstance(text, str) else text)
    prefix = str(target.parent.parent) + "/"
    return [str(problem).removeprefix(prefix).removeprefix("tests/")
            for case in load_cases(tmp_path) for problem in case.problems]


# Each: a value written in place of a rule's description and of a case's url, and what both files are told.
MISTAKES = [
    ("[&x a, *x]", "YAML aliases (*name) are not allowed in {kind}; write the value out"),
    ("!!python/object:os.system x", "YAML tag 'tag:yaml.org,2002:python/object:os.system' is not allowed in {kind}"),
    ("[unclosed", "(YAML: "),
]


@pytest.mark.parametrize(("value", "message"), MISTAKES)
def test_a_mistake_reads_the_same_in_rule_and_case_files(tmp_path: Path, value: str, message: str) -> None:
    """Aliases, object tags and syntax errors: the same words in both kinds of file."""
    in_rules = rule_problems(RULE.format(value=value))
    in_cases = case_problems(tmp_path, CASE.format(value=value))
    assert any(message.format(kind="rule files") in problem for problem in in_rules), in_rules
    assert any(message.format(kind="case files") in problem for problem in in_cases), in_cases
    assert all(problem.startswith("f.yaml:") for problem in in_rules + in_cases)


def test_an_alias_of_a_single_value_is_refused_in_rule_files_too() -> None:
    """Before one reader, rule files took an alias of a scalar (only lists and maps were caught); now not."""
    text = "rules:\n  - id: &name a\n    description: *name\n    when: {app: qq}\n    then: web\ndefault: web\n"
    assert rule_problems(text) == [
        "f.yaml:3:18: YAML aliases (*name) are not allowed in rule files; write the value out"
    ]


def test_anchors_without_aliases_are_harmless() -> None:
    """An anchor alone expands nothing: the file loads."""
    assert rule_problems(RULE.format(value="&x a")) == []


def test_a_billion_laughs_is_refused_before_anything_is_expanded() -> None:
    """Nested aliases are refused at the first alias, in microseconds, not expanded."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    problems = rule_problems("\n".join(levels) + "\nrules: []\ndefault: web\n")
    assert problems == ["f.yaml:2:10: YAML aliases (*name) are not allowed in rule files; write the value out"]


@pytest.mark.parametrize(("data", "message"), [
    (b"rules: []\n#" + b"x" * MAX_FILE_BYTES, f"f.yaml:1:1: file is larger than the limit of {MAX_FILE_BYTES} bytes"),
    (b"rules: []\ndefault: \xff\n",
     "f.yaml:2:10: not UTF-8 text (invalid start byte, byte 0xff); save the file as UTF-8"),
])
def test_unreadable_bytes_read_the_same_in_both(tmp_path: Path, data: bytes, message: str) -> None:
    """Too big (at 1:1) or not UTF-8 (at the bad byte): one sentence, in both kinds of file."""
    assert rule_problems(data) == [message]
    assert case_problems(tmp_path, data) == [message]


def test_duplicate_keys_are_named_in_both(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys silently; both readers say so."""
    rule = "rules:\n  - id: a\n    when: {app: qq, app: wechat}\n    then: web\ndefault: web\n"
    case = "cases:\n  - name: a\n    click: {url: u, url: v, ua: x}\n    expect: {action: web}\n"
    assert "f.yaml:3:21: duplicate key 'app' in 'when'" in rule_problems(rule)
    assert "f.yaml:3:21: duplicate key 'url' in 'click'" in case_problems(tmp_path, case)


def test_a_key_that_is_not_a_word_is_refused_in_both(tmp_path: Path) -> None:
    """A list used as a key is a mistake in either file."""
    rule = "rules:\n  - id: a\n    when: {[app]: qq}\n    then: web\ndefault: web\n"
    case = "cases:\n  - name: a\n    click: {[url]: u, ua: x}\n    expect: {action: web}\n"
    assert "f.yaml:3:12: mapping keys must be plain words" in rule_problems(rule)
    assert "f.yaml:3:13: mapping keys must be plain words" in case_problems(tmp_path, case)


def test_an_empty_file_composes_to_an_empty_document() -> None:
    """Only comments: nothing to read, and no problem from the reader itself."""
    reader = YamlReader("f.yaml", "rule files")
    root = reader.compose("# nothing yet\n")
    assert root is not None and is_empty(root) and reader.problems == []


@pytest.mark.parametrize(("text", "advice"), [
    ("rules:\n  - id: b\n    when:\n      app_version: >=8.0.30\n    then: web\ndefault: landing\n",
     "f.yaml:4:21: quote the version range: app_version: \">=8.0.30\""),
    ("rules:\n  - {id: b, when: {app_version: >=8.0.30}, then: web}\ndefault: landing\n",
     "f.yaml:2:33: quote the version range: app_version: \">=8.0.30\""),
    ("rules:\n  - {id: b, when: {app: @wechat}, then: web}\n", "f.yaml:2:25: quote the value: app: \"@wechat\""),
    ("rules:\n  - id: a\n    when: {app: wechat}\n    then: app\n   - id: b\n    then: web\n",
     "f.yaml:5:4: this line is indented differently from the rule or key above it"),
    ("rules:\n\t- id: a\n", "f.yaml:2:1: a tab: YAML indents with spaces only"),
    ("rules:\n  - id: a\n    description: note: this\n    then: app\n",
     "f.yaml:3:22: a ': ' in the middle of a value"),
    ("rules:\n  - id: \"a\n    then: app\n", "a quote or bracket opened and never closed"),
])
def test_yaml_syntax_errors_say_what_to_do(text: str, advice: str) -> None:
    """The parser's jargon becomes what to do, at file:line:col, with the parser's own words kept after it."""
    (problem,) = rule_problems(text)
    assert problem.startswith(advice) or advice in problem, problem
    assert "(YAML: " in problem



BROKEN_SECOND = ("rules:\n  - id: a\n    when: {app: qq}\n    then: web\n  - id: b\n    when: {app: qq}\n"
                 "     then: web\n  - id: c\n    when: {app: qq}\n    then: tele\n")


def test_a_broken_block_is_read_around_only_when_asked() -> None:
    """compose(recover=True) (rule files) reads the items around a broken one, at their own lines, and lists
    what it left unread; plain compose (case files) stops at the first syntax error, as before."""
    plain = YamlReader("f.yaml", "case files")
    assert plain.compose(BROKEN_SECOND) is None
    assert [f"{p.line}:{p.column}" for p in plain.problems] == ["7:6"] and plain.skipped == []

    reader = YamlReader("f.yaml", "rule files")
    root = reader.compose(BROKEN_SECOND, recover=True)
    assert root is not None and reader.problems == plain.problems
    ((key, items),) = root.value
    assert key.value == "rules" and [item.start_mark.line + 1 for item in items.value] == [2, 8]
    assert [(block.section, block.line, block.text) for block in reader.skipped] == [
        ("rules", 5, "  - id: b\n    when: {app: qq}\n     then: web\n")]


@pytest.mark.parametrize("text", [
    BROKEN_SECOND.replace("\n", "\r\n"),  # Windows line ends
    "\ufeff" + BROKEN_SECOND,  # a byte order mark
    "--- # a document start\n# and a comment\n" + BROKEN_SECOND,
    BROKEN_SECOND.replace("  - ", "- ").replace("    ", "  "),  # a list at column 0 (the broken line: column 4)
    BROKEN_SECOND.replace("  - id: b\n", "  - id: b\n    # a comment\n\n"),  # comments and blank lines
])
def test_lines_read_around_are_the_files_own(text: str) -> None:
    """However the file is written, the broken block and the mistake after it are told at their lines."""
    lines = text.split("\n")
    broken = next(n for n, line in enumerate(lines, 1) if line.startswith(("     then: web", "   then: web")))
    tele = next(n for n, line in enumerate(lines, 1) if "tele" in line)
    problems = rule_problems(text + "default: web\n")
    assert [problem.split(": ", 1)[0].rsplit(":", 1)[0] for problem in problems] == [
        f"f.yaml:{broken}", f"f.yaml:{tele}"], problems
    assert "indented differently" in problems[0] and "unknown action 'tele'" in problems[1]
