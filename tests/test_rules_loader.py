"""Rule files: what loads, and every mistake reported as file:line:col with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.decision.rules import RuleSetError, RuleSource, build_rule_set, load_rules
from router.decision.types import Action

GOOD = """\
rules:
  - id: wechat-ad
    when: {app: wechat, channel: ad, app_version: ">=8.0.30"}
    then: {action: app, via: scheme}
default: landing
"""


def write(directory: Path, text: str, name: str = "main.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(directory: Path) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        load_rules(directory)
    return [str(problem) for problem in caught.value.problems]


def test_good_file_loads(rules_dir: Path) -> None:
    """A valid file becomes an immutable rule set with its default and a version hash."""
    write(rules_dir, GOOD)
    rules = load_rules(rules_dir)
    assert [rule.id for rule in rules.rules] == ["wechat-ad"]
    assert rules.rules[0].then.action is Action.APP
    assert rules.rules[0].then.via == "scheme"
    assert rules.default.action is Action.LANDING
    assert len(rules.version) == 12


def test_version_changes_with_content(rules_dir: Path) -> None:
    """The version hash follows the files' content."""
    write(rules_dir, GOOD)
    first = load_rules(rules_dir).version
    write(rules_dir, GOOD.replace("8.0.30", "8.0.31"))
    assert load_rules(rules_dir).version != first


def test_files_are_read_in_name_order(rules_dir: Path) -> None:
    """Rules from several files are evaluated in file-name order."""
    write(rules_dir, "rules:\n  - id: second\n    when: {app: qq}\n    then: web\n", "20-b.yaml")
    write(rules_dir, "rules:\n  - id: first\n    when: {app: qq}\n    then: web\ndefault: web\n", "10-a.yaml")
    assert [rule.id for rule in load_rules(rules_dir).rules] == ["first", "second"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules:\n  - id: a\n    when: {advertizer: x}\n    then: web\ndefault: web\n",
         "main.yaml:3:12: unknown condition 'advertizer'; did you mean 'advertiser'?"),
        ("rules:\n  - id: a\n    when: {app: wechatt}\n    then: web\ndefault: web\n",
         "main.yaml:3:17: unknown app 'wechatt'; did you mean 'wechat'?"),
        ("rules:\n  - id: a\n    when: {os: beos}\n    then: web\ndefault: web\n",
         "main.yaml:3:16: unknown os 'beos'; expected one of: android, harmonyos, ios, linux, macos, other, windows"),
        ("rules:\n  - id: a\n    when: {app: wechat}\n    then: redirect\ndefault: web\n",
         "main.yaml:4:11: unknown action 'redirect'"),
        ("rules:\n  - id: a\n    when: {app_version: 8.0}\n    then: web\ndefault: web\n",
         "main.yaml:3:25: 'app_version' must be a quoted string such as '>=8.0.30'"),
        ("rules:\n  - id: a\n    when: {app_version: '>>8'}\n    then: web\ndefault: web\n",
         "main.yaml:3:25: bad version range '>>8'"),
        ("rules:\n  - id: a\n    when: {rollout: 150}\n    then: web\ndefault: web\n",
         "main.yaml:3:21: 'rollout' is a percentage from 0 to 100, got 150"),
        ("rules:\n  - id: a\n    when: {window: {from: '2026-11-11T00:00:00'}}\n    then: web\ndefault: web\n",
         "has no timezone"),
        ("rules:\n  - id: a\n    when: {window: {from: '2026-11-12T00:00:00+08:00',"
         " until: '2026-11-11T00:00:00+08:00'}}"
         "\n    then: web\ndefault: web\n",
         "is not before 'until'"),
        ("rules:\n  - id: a\n    when: {}\n    then: web\ndefault: web\n",
         "main.yaml:3:11: 'when' is empty"),
        ("rules:\n  - id: a\n    when: {app: qq}\n    then: web\n  - id: a\n    when: {app: qq}\n    then: web\n"
         "default: web\n",
         "main.yaml:5:5: duplicate rule id 'a' (first at "),
        ("rules:\n  - id: a\n    when: {app: qq, app: wechat}\n    then: web\ndefault: web\n",
         "main.yaml:3:21: duplicate key 'app'"),
        ("rules:\n  - id: a\n    when: {app: qq}\n    then: {action: web, via: intent}\ndefault: web\n",
         "option 'via' does not apply to action 'web'"),
        ("rules:\n  - id: a\n    when: {app: !!python/object:os.system qq}\n    then: web\ndefault: web\n",
         "YAML tag 'tag:yaml.org,2002:python/object:os.system' is not allowed"),
        ("rules:\n  - id: a\n    when: {app: qq\n    then: web\n", "(YAML: "),
        ("rules:\n  - id: a\n    then: web\ndefault: web\n", "main.yaml:2:5: rule is missing 'when'"),
        ("rulez: []\ndefault: web\n", "main.yaml:1:1: unknown top-level key 'rulez'; did you mean 'rules'?"),
        ("rules: []\n", "no 'default:' action"),
        ("x: &a [1, 2]\nrules:\n  - id: a\n    when: {app: &b [qq, qq], os: *b}\n    then: web\ndefault: web\n",
         "YAML aliases (*name) are not allowed"),
        ("rules:\n  - id: a\n    when: {app: qq}\n    then: {action: block, status: 302}\ndefault: web\n",
         "block 'status' must be a 4xx code, got 302"),
    ],
)
def test_mistakes_are_reported_with_position(rules_dir: Path, text: str, expected: str) -> None:
    """Each kind of mistake names file:line:col and what is wrong."""
    write(rules_dir, text)
    found = problems(rules_dir)
    assert any(expected in problem for problem in found), found


def test_all_problems_reported_together(rules_dir: Path) -> None:
    """Several mistakes in several rules are all listed, not just the first."""
    write(rules_dir, "rules:\n  - id: a\n    when: {app: nope}\n    then: web\n"
                     "  - id: b\n    when: {os: nope}\n    then: nope\ndefault: web\n")
    found = problems(rules_dir)
    assert len(found) == 3, found


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    """A rules directory that isn't there is a clear error, not a traceback."""
    with pytest.raises(RuleSetError, match="rules directory not found"):
        load_rules(tmp_path / "nope")


def test_oversized_file_is_rejected(rules_dir: Path) -> None:
    """A file over the size limit is refused without being parsed."""
    write(rules_dir, "# " + "x" * 1_000_001 + "\n" + GOOD)
    assert any("larger than the limit of 1000000 bytes" in problem for problem in problems(rules_dir))


def test_shipped_rules_load(shipped_rules) -> None:  # type: ignore[no-untyped-def]
    """The shipped rules validate and cover the issue's table in order."""
    assert [rule.id for rule in shipped_rules.rules] == [
        "bots-web", "desktop-web", "wechat-ad-unidesk-app", "wechat-ad-other-landing",
        "wechat-private-chat-web", "wechat-group-chat-pilot-web", "wechat-group-chat-landing",
        "wechat-moments-unknown-landing", "other-inapp-landing", "taobao-inapp-app", "mobile-browser-app",
    ]
    assert shipped_rules.default.action is Action.LANDING


def test_too_many_rules_are_refused(rules_dir: Path) -> None:
    """A rule set past the rule-count limit is refused whole (the server keeps its last good set)."""
    body = "".join(f"  - {{id: r{n}, when: {{app: qq}}, then: web}}\n" for n in range(2001))
    write(rules_dir, "rules:\n" + body + "default: web\n")
    assert any("2001 rules; the limit is 2000" in problem for problem in problems(rules_dir))


def test_a_block_message_per_language_takes_the_pages_languages() -> None:
    from router.decision.rules import MESSAGE_LANGUAGES
    from router.serve.pages import LANGUAGES

    assert MESSAGE_LANGUAGES == LANGUAGES
    text = ("rules:\n  - id: a\n    when: {app: qq}\n    then: {action: block, message: {zh-CN: 不行, fr: Non}}\n"
            "default: web\n")
    with pytest.raises(RuleSetError) as refused:
        build_rule_set([RuleSource("main.yaml", text.encode())], origin="t")
    assert "'message' per language takes zh-CN and en with a text each; unknown language 'fr'" in str(refused.value)
