"""Issue 25, point 8: every problem at once. One YAML mistake hides none of the others: other files are still
checked, and within a file every block around the broken one is read and checked, each problem at the
file:line:col it is written at. A set with any problem is still refused whole, by `rules check`, by `serve`
and by a reload (the rules that serve keep serving)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from router.decision.rules import RuleSetError, load_rules
from router.serve.reload import ActiveRules, Reloader
from router.serve.sources import DirectoryWatch

SHIPPED = Path(__file__).resolve().parent.parent / "rules"
INDENTED = ("this line is indented differently from the rule or key above it: line up the keys of one mapping, and "
            "each '- ' of one list, in the same column (YAML: expected <block end>, but found "
            "'<block mapping start>')")

# Rule 2 has a key indented one space too far (line 9); rule 4 names a condition that does not exist (line 16),
# rule 5 repeats rule 1's id (line 19) and rule 6 an action that does not exist (line 25).
BROKEN = """\
# Rules with a broken second rule: the ones after it are still checked.
rules:
  - id: one
    when: {app: wechat}
    then: web

  - id: two
    when: {app: qq}
     then: landing

  - id: three
    when: {app: weibo}
    then: landing

  - id: four
    when: {app: alipay, chanel: ad}
    then: web

  - id: one
    when: {app: dingtalk}
    then: web

  - id: six
    when: {app: douyin}
    then: teleport
default: landing
"""
BROKEN_ERRORS = [
    f"9:6: error: {INDENTED}",
    "16:25: error: unknown condition 'chanel'; did you mean 'channel'?",
    "19:5: error: duplicate rule id 'one' (first at rules/r.yaml:3)",
    "25:11: error: unknown action 'teleport'; expected one of: app, web, landing, block",
]


def router(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, run where the rules directory is (its files are named `rules/…`)."""
    return subprocess.run([sys.executable, "-m", "router", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def errors(run: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in run.stdout.splitlines() if ": error: " in line]


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line holding `needle`: the tests' line numbers are the file's."""
    found = [number for number, line in enumerate(text.splitlines(), 1) if needle in line]
    return found[occurrence - 1]


def test_the_lines_given_are_the_files_own() -> None:
    """The expected places above are where the mistakes really are in BROKEN."""
    assert line_of(BROKEN, "     then: landing") == 9
    assert line_of(BROKEN, "chanel") == 16
    assert line_of(BROKEN, "- id: one", 2) == 19
    assert line_of(BROKEN, "teleport") == 25


def test_a_broken_rule_hides_none_of_the_rules_after_it(rules_dir: Path) -> None:
    """An indentation error in the 2nd rule and an unknown condition in the 4th (and a duplicate id, a bad
    action after them): `rules check` tells all four, at the file's own lines, and exits 1."""
    (rules_dir / "r.yaml").write_text(BROKEN, encoding="utf-8")
    run = router(rules_dir.parent, "rules", "check", "rules")
    assert run.returncode == 1, run.stdout + run.stderr
    assert errors(run) == [f"rules/r.yaml:{error}" for error in BROKEN_ERRORS]
    assert run.stdout.splitlines()[-1] == "4 errors: these rules would not load"
    assert "Traceback" not in run.stderr


def test_the_broken_set_is_refused_whole(rules_dir: Path, tmp_path: Path) -> None:
    """Read around the broken block only to report: the loader refuses the set with every problem, `serve`
    does not start on it, and a reload to it keeps the rules that serve."""
    (rules_dir / "r.yaml").write_text("rules: []\ndefault: web\n", encoding="utf-8")
    watch = DirectoryWatch(rules_dir, settle=0.05)
    active = ActiveRules(watch.load(), str(rules_dir))
    good = active.current
    (rules_dir / "r.yaml").write_text(BROKEN, encoding="utf-8")

    with pytest.raises(RuleSetError) as refused:
        load_rules(rules_dir)
    assert [f"{problem.line}:{problem.column}" for problem in refused.value.problems] == [
        error.split(": ")[0] for error in BROKEN_ERRORS]

    attempt = asyncio.run(Reloader(active, watch, interval=0.1).reload("watch", force=True))
    assert attempt is not None and not attempt.ok
    assert active.current is good and len(attempt.errors) == 4
    assert "r.yaml:9:6: this line is indented differently" in attempt.errors[0]

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    served = router(tmp_path, "serve", "--host", "127.0.0.1", "--port", str(port), "--rules", "rules")
    assert served.returncode == 2, served.stdout + served.stderr
    assert "rules/r.yaml:9:6: this line is indented differently" in served.stdout
    assert "rules/r.yaml:16:25: unknown condition 'chanel'" in served.stdout
    assert "rules rejected: 4 problems; nothing was loaded" in served.stdout


def test_two_broken_files_are_reported_together(rules_dir: Path) -> None:
    """Each file is checked whatever is wrong with the others: a syntax error in one and one in the other, and
    what follows each, all in one run."""
    (rules_dir / "a.yaml").write_text(
        "rules:\n"
        "  - id: a1\n"
        "    when:\n"
        "      app_version: >=8.0.30\n"  # 4:21: a version range unquoted
        "    then: web\n"
        "  - id: a2\n"
        "    when: {app: wechatt}\n"  # 7:17
        "    then: web\n", encoding="utf-8")
    (rules_dir / "b.yaml").write_text(
        "rules:\n"
        "  - id: b1\n"
        "    when: {app: qq}\n"
        "\tthen: web\n"  # 4:1: a tab
        "  - id: b2\n"
        "    when: {os: ios, advertizer: '1'}\n"  # 6:21
        "    then: web\n"
        "default: web\n", encoding="utf-8")
    run = router(rules_dir.parent, "rules", "check", "rules")
    assert run.returncode == 1
    assert [line.split(": (YAML")[0].split(" (YAML")[0] for line in errors(run)] == [
        "rules/a.yaml:4:21: error: quote the version range: app_version: \">=8.0.30\" ('>' can't start a plain "
        "YAML value)",
        "rules/a.yaml:7:17: error: unknown app 'wechatt'; did you mean 'wechat'?",
        "rules/b.yaml:4:1: error: a tab: YAML indents with spaces only; replace the tab with spaces",
        "rules/b.yaml:6:21: error: unknown condition 'advertizer'; did you mean 'advertiser'?",
    ]


def test_an_unclosed_quote_is_told_where_it_opens_and_the_rest_is_read(rules_dir: Path) -> None:
    """A quote left open swallows the rest of the file; read rule by rule, it is placed where it opens (the
    advice says to close it there), and the rules after it are checked."""
    (rules_dir / "r.yaml").write_text(
        "rules:\n"
        "  - id: \"one\n"  # 2:9
        "    when: {app: qq}\n"
        "    then: web\n"
        "  - id: two\n"
        "    when: {app: qq, chanel: ad}\n"  # 6:21
        "    then: web\n"
        "default: web\n", encoding="utf-8")
    with pytest.raises(RuleSetError) as refused:
        load_rules(rules_dir)
    first, second = refused.value.problems
    assert (first.line, first.column) == (2, 9) and "a quote or bracket opened and never closed" in first.message
    assert (second.line, second.column) == (6, 21) and "unknown condition 'chanel'" in second.message


@pytest.mark.parametrize(("broken", "where", "said"), [
    ("default: {action: landing, page: moments\n", "2:10", "a {…} or […] list that does not close as written"),
    ("settings:\n  universal_link_hosts: [a.example\n", "3:25", "a {…} or […] list that does not close as written"),
    ("settings:\n  universal_link_hosts:\n   - a.example\n  - b.example\n", "5:3", "indented differently"),
])
def test_a_broken_section_hides_the_rules_of_no_other(rules_dir: Path, broken: str, where: str, said: str) -> None:
    """`default:` and `settings:` broken: told once, at their place, and the rules are still checked (no
    second complaint that the set has no default)."""
    (rules_dir / "r.yaml").write_text(
        "rules: [{id: q, when: {app: qq, chanel: ad}, then: web}]\n" + broken, encoding="utf-8")
    with pytest.raises(RuleSetError) as refused:
        load_rules(rules_dir)
    told = [str(problem) for problem in refused.value.problems]
    assert len(told) == 2, told
    assert told[0].endswith("r.yaml:1:33: unknown condition 'chanel'; did you mean 'channel'?")
    assert f"r.yaml:{where}: " in told[1] and said in told[1]


def test_a_broken_app_entry_hides_neither_the_other_apps_nor_the_rules(rules_dir: Path) -> None:
    """An app of the catalogue whose block does not parse: told at its line; the other apps are still checked,
    and neither the catalogue nor a rule is blamed for the app left unread (a rule naming it is not told it
    names an unknown app)."""
    catalogue = (SHIPPED / "apps.yaml").read_text(encoding="utf-8")
    wechat = "    markers: [MicroMessenger/, WindowsWechat, MacWechat]\n"
    qq = "    markers: [QQ/]\n    kind: inapp\n"
    assert wechat in catalogue and qq in catalogue
    catalogue = catalogue.replace(wechat, " " + wechat, 1).replace(qq, qq.replace("inapp", "inap"), 1)
    catalogue += ("  - id: lemonchat\n    names: {zh-CN: 柠檬聊天, en: LemonChat}\n    markers: [LemonChat/]\n"
                  "   kind: inapp\n    leave: none\n")
    (rules_dir / "apps.yaml").write_text(catalogue, encoding="utf-8")
    (rules_dir / "r.yaml").write_text(
        "rules:\n"
        "  - {id: w, when: {app: wechat, channel: ad}, then: app}\n"
        "  - {id: l, when: {app: lemonchat}, then: web}\n"
        "  - {id: x, when: {app: lemonchatt}, then: web}\n"
        "default: landing\n", encoding="utf-8")
    with pytest.raises(RuleSetError) as refused:
        load_rules(rules_dir)
    told = [f"{Path(problem.file).name}:{problem.line}:{problem.column}: {problem.message}"
            for problem in refused.value.problems]
    lines = catalogue.splitlines()
    assert told[0].startswith(f"apps.yaml:{lines.index(' ' + wechat.rstrip()) + 1}:6: this line is indented")
    assert told[1] == f"apps.yaml:{lines.index(qq.splitlines()[1].replace('inapp', 'inap')) + 1}:11: unknown kind " \
                      "'inap'; did you mean 'inapp'?"
    assert told[2].startswith(f"apps.yaml:{lines.index('   kind: inapp') + 1}:4: this line is indented")
    assert told[3:] == ["r.yaml:4:25: unknown app 'lemonchatt'; did you mean 'lemonchat'?"]


def test_what_is_not_read_around(rules_dir: Path) -> None:
    """Recovery needs top-level `key:` blocks: a file of two documents is told as the parser sees it, once; and
    an alias still stops the file at the first one (writing it out shows the rest)."""
    (rules_dir / "r.yaml").write_text("rules: []\n---\ndefault: web\n  x: 1\n", encoding="utf-8")
    with pytest.raises(RuleSetError) as refused:
        load_rules(rules_dir)
    assert len(refused.value.problems) == 1
    (rules_dir / "r.yaml").write_text("rules:\n  - {id: &a a, description: *a, when: {app: qq}, then: web}\n"
                                      "  - {id: b, when: {app: qqq}, then: web}\ndefault: web\n", encoding="utf-8")
    with pytest.raises(RuleSetError) as refused:
        load_rules(rules_dir)
    (problem,) = refused.value.problems
    assert (problem.line, problem.column) == (2, 29) and "aliases" in problem.message
