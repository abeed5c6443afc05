"""`rules check`: the server's own loader, every problem at once, warnings apart from errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from router.cli import main


def check(directory: Path) -> tuple[int, str]:
    out = io.StringIO()
    return main(["rules", "check", str(directory)], out), out.getvalue()


def test_shipped_rules_pass_without_warnings() -> None:
    """The shipped rules load, with no warning."""
    code, text = check(Path(__file__).resolve().parent.parent / "rules")
    assert code == 0
    assert text.endswith("0 warnings\n") and "ok: 11 rules" in text


def test_errors_all_at_once_with_suggestions(rules_dir: Path) -> None:
    """Every error in every file, as file:line:col: error: …, with 'did you mean'; exit 1."""
    (rules_dir / "a.yaml").write_text("rules:\n  - id: x\n    when: {app: wechatt, advertizer: '1'}\n    then: web\n")
    (rules_dir / "b.yaml").write_text("rules:\n  - id: x\n    when: {os: ios}\n    then: teleport\ndefault: web\n")
    code, text = check(rules_dir)
    assert code == 1
    lines = text.splitlines()
    assert lines[0].endswith("a.yaml:3:17: error: unknown app 'wechatt'; did you mean 'wechat'?")
    assert lines[1].endswith("a.yaml:3:26: error: unknown condition 'advertizer'; did you mean 'advertiser'?")
    assert any(line.endswith("b.yaml:2:5: error: duplicate rule id 'x' (first at " + str(rules_dir / "a.yaml") + ":2)")
               or "b.yaml:2:5: error: duplicate rule id 'x'" in line for line in lines)
    assert any("b.yaml:4:11: error: unknown action 'teleport'" in line for line in lines)
    assert lines[-1] == "4 errors: these rules would not load"


def test_shadowed_rule_is_a_warning(rules_dir: Path) -> None:
    """A rule an earlier, broader rule always beats is reported, but the rules still pass."""
    (rules_dir / "r.yaml").write_text(
        "rules:\n"
        "  - {id: wechat-any, when: {app: [wechat, qq]}, then: landing}\n"
        "  - {id: wechat-ad, when: {app: wechat, channel: ad}, then: app}\n"
        "  - {id: qq-half, when: {app: qq, rollout: 50}, then: web}\n"
        "  - {id: qq-ios, when: {app: qq, os: ios}, then: web}\n"
        "default: web\n"
    )
    code, text = check(rules_dir)
    assert code == 0
    assert "r.yaml:3:5: warning: rule 'wechat-ad' can never match: rule 'wechat-any'" in text
    assert "r.yaml:4:5: warning: rule 'qq-half' can never match: rule 'wechat-any'" in text
    assert "r.yaml:5:5: warning: rule 'qq-ios' can never match: rule 'wechat-any'" in text
    assert text.endswith("3 warnings\n")


def test_rollout_and_narrower_rules_do_not_shadow(rules_dir: Path) -> None:
    """A partial rollout, or an earlier rule with a condition the later one lacks, shadows nothing."""
    (rules_dir / "r.yaml").write_text(
        "rules:\n"
        "  - {id: pilot, when: {app: wechat, channel: group_chat, rollout: 10}, then: web}\n"
        "  - {id: group, when: {app: wechat, channel: group_chat}, then: landing}\n"
        "  - {id: ios-wechat, when: {app: wechat, os: ios}, then: landing}\n"
        "  - {id: wechat, when: {app: wechat}, then: landing}\n"
        "  - {id: full, when: {app: qq, rollout: 100}, then: web}\n"
        "  - {id: qq, when: {app: qq}, then: web}\n"
        "default: web\n"
    )
    code, text = check(rules_dir)
    assert code == 0
    assert "'group' can never" not in text and "'wechat' can never" not in text
    assert "rule 'qq' can never match: rule 'full'" in text


def test_window_already_over_is_a_warning(rules_dir: Path) -> None:
    """A window that closed in the past can never match again."""
    (rules_dir / "r.yaml").write_text(
        "rules:\n  - id: double-11-2020\n    when: {app: qq, window: {until: '2020-11-12T00:00:00+08:00'}}\n"
        "    then: web\ndefault: web\n"
    )
    code, text = check(rules_dir)
    assert code == 0
    assert "r.yaml:2:5: warning: rule 'double-11-2020' has a window that closed at 2020-11-12T00:00:00+08:00" in text


def test_check_starts_nothing_and_uses_the_server_loader(rules_dir: Path) -> None:
    """What check rejects, the server refuses too (same loader); check itself opens no port."""
    from router.decision.rules import RuleSetError, load_rules

    (rules_dir / "r.yaml").write_text("rules: []\ndefault: {action: landing, page: moment}\n")
    code, text = check(rules_dir)
    assert code == 1 and "unknown landing page 'moment'" in text
    try:
        load_rules(rules_dir)
    except RuleSetError as err:
        assert "unknown landing page 'moment'" in str(err)
    else:
        raise AssertionError("the server's loader accepted what check rejected")


def test_check_reads_a_bundle_url_like_the_server(tmp_path: Path) -> None:
    """`rules check URL` fetches and validates a rules bundle exactly as `serve --rules URL` would."""
    import http.server
    import threading
    from functools import partial

    (tmp_path / "good.yaml").write_text("rules:\n  - {id: q, when: {app: qq}, then: web}\ndefault: landing\n")
    (tmp_path / "bad.yaml").write_text("rules:\n  - {id: q, when: {app: qqq}, then: web}\ndefault: landing\n")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined,method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        out = io.StringIO()
        assert main(["rules", "check", f"{base}/good.yaml"], out) == 0
        assert out.getvalue().startswith("ok: 1 rules")
        out = io.StringIO()
        assert main(["rules", "check", f"{base}/bad.yaml"], out) == 1
        assert f"{base}/bad.yaml:2:25: error: unknown app 'qqq'; did you mean 'qq'?" in out.getvalue()
    finally:
        server.shutdown()


def test_a_list_of_every_value_shadows_like_no_condition(rules_dir: Path) -> None:
    """A rule listing every channel matches any channel, so it shadows a later rule about one channel."""
    (rules_dir / "r.yaml").write_text(
        "rules:\n"
        "  - {id: every, when: {app: qq, channel: [ad, private_chat, group_chat, moments, unknown]}, then: web}\n"
        "  - {id: qq-ios, when: {app: qq, os: ios}, then: landing}\n"
        "default: web\n"
    )
    assert "rule 'qq-ios' can never match: rule 'every'" in check(rules_dir)[1]


def test_version_does_not_depend_on_file_names(tmp_path: Path) -> None:
    """The same rules have the same version whatever their file is called (a directory or a bundle)."""
    from router.decision.rules import load_rules

    text = (Path(__file__).resolve().parent.parent / "rules" / "default.yaml").read_text(encoding="utf-8")
    versions = set()
    for name in ("default.yaml", "rules.yaml"):
        folder = tmp_path / name.split(".")[0]
        folder.mkdir()
        (folder / name).write_text(text, encoding="utf-8")
        versions.add(load_rules(folder).version)
    assert len(versions) == 1


def test_timezone_typo_gets_a_suggestion(rules_dir: Path) -> None:
    """A misspelt IANA zone name is refused with the closest real one."""
    (rules_dir / "r.yaml").write_text("rules:\n  - {id: w, when: {window: {from: '2026-11-11T00:00:00', "
                                      "timezone: Asia/Shangai}}, then: web}\ndefault: web\n")
    assert "unknown timezone 'Asia/Shangai'; did you mean 'Asia/Shanghai'?" in check(rules_dir)[1]


def test_a_rule_file_given_for_its_folder_says_so(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`rules check rules/default.yaml`: the file exists, so the message names it a file and its folder."""
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    assert main(["rules", "check", "rules/default.yaml"]) == 1
    out = capsys.readouterr().out
    assert "rules/default.yaml:1:1: error: this is a rule file; give the rules directory that holds it (rules)" in out
    assert "not found" not in out


def test_a_bad_setting_is_one_line_and_only_for_the_commands_that_read_it() -> None:
    """ROUTER_PORT=abc: `rules check` does not read it and works; `serve` refuses in one JSON line naming
    the variable and what it takes (no traceback); so does a ROUTER_LOG_LEVEL it does not know."""
    import os
    import subprocess
    import sys

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "router", *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env})

    checked = run("rules", "check", ROUTER_PORT="abc")
    assert checked.returncode == 0 and checked.stdout.startswith("ok: "), checked.stderr
    # What only a server reads (its metrics port, store, limits…) is the server's to complain about.
    checked = run("rules", "check", ROUTER_METRICS_PORT="abc", ROUTER_LIMIT_PER_ADDRESS="lots")
    assert checked.returncode == 0 and checked.stdout.startswith("ok: "), checked.stdout + checked.stderr
    for env, message in ((dict(ROUTER_PORT="abc"), "ROUTER_PORT must be a port number from 1 to 65535, got 'abc'"),
                         (dict(ROUTER_METRICS_PORT="abc"), "ROUTER_METRICS_PORT must be a port number, got 'abc'"),
                         (dict(ROUTER_TRUSTED_PROXIES="10.0.0.0/33"), "ROUTER_TRUSTED_PROXIES must be addresses or "),
                         (dict(ROUTER_LOG_LEVEL="loud"), "ROUTER_LOG_LEVEL must be one of critical, error, warning")):
        served = run("serve", **env)
        assert served.returncode == 2 and "Traceback" not in served.stdout + served.stderr
        (line,) = [text for text in served.stdout.splitlines() if text.startswith("{")]
        assert message in line and '"level":"critical"' in line


def test_a_mistyped_option_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    mistakes = ((["serve", "--prot", "9000"], "--port"), (["explain", "--clinet", "wechat_ios"], "--client"),
                (["rules", "check", "--formt", "x"], "--format"))
    for argv, suggestion in mistakes:
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        assert stopped.value.code == 2
        assert f"(did you mean {suggestion}?)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "rules" in capsys.readouterr().out.splitlines()[0]  # the top-level help names every command
