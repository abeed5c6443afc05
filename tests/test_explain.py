"""`python -m router explain`: one JSON object per click, the trace, and --batch replay."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from router.cli import main
from tests import uas

ITEM = "https://item.taobao.com/item.htm?id=123456"
GROUP_CLICK = f"/go?url={quote(ITEM, safe='')}&from=groupmessage"


def run(*argv: str) -> dict:  # type: ignore[type-arg]
    out = io.StringIO()
    assert main(["explain", *argv], out) == 0
    return json.loads(out.getvalue())


def test_explain_group_chat() -> None:
    """A WeChat group chat click: action, rule, channel, client, link and a trace in plain words."""
    result = run(GROUP_CLICK, "--ua", uas.WECHAT_IOS, "--at", "2026-11-21T10:00:00+08:00")
    assert result["action"] == "landing"
    assert result["rule"] == "wechat-group-chat-landing"
    assert result["location"] is None
    assert result["channel"] == "group_chat"
    assert result["client"] == {"app": "wechat", "app_version": "8.0.47", "os": "ios", "os_version": "17.4",
                                "device": "mobile", "bot": False, "mini_program": False,
                                "app_kind": "inapp", "app_leave": "menu",
                                "app_names": {"zh-CN": "微信", "en": "WeChat"},
                                "app_named_by": result["client"]["app_named_by"]}
    assert re.fullmatch(r"marker 'MicroMessenger/' \(rules/apps\.yaml:\d+\)", result["client"]["app_named_by"])
    assert result["link"]["platform"] == "taobao" and result["link"]["kind"] == "item"
    assert result["link"]["item_id"] == "123456"
    trace = result["trace"]
    assert trace[0] == {"rule": "bots-web", "matched": False, "reason": "app is wechat, not bot"}
    assert {"rule": "wechat-ad-unidesk-app", "matched": False, "reason": "channel is group_chat, not ad"} in trace
    assert {"rule": "wechat-group-chat-pilot-web", "matched": False,
            "reason": "rollout is at 0%: nobody is in it yet"} in trace
    assert trace[-1] == {"rule": "wechat-group-chat-landing", "matched": True, "reason": "all conditions hold"}
    assert result["landing"] == {"page": "default", "app_link": "taobao://item.taobao.com/item.htm?id=123456"}


def test_explain_redirect_has_location() -> None:
    """A 302 decision prints its Location."""
    result = run(f"/go?url={quote(ITEM, safe='')}", "--ua", uas.SAFARI_IOS)
    assert result["action"] == "app"
    assert result["location"] == "taobao://item.taobao.com/item.htm?id=123456"


def test_explain_link_and_channel_flags() -> None:
    """--link with --channel builds the click; --channel ad signs it with the configured key."""
    result = run("--link", ITEM, "--channel", "ad", "--ad-source", "unidesk", "--ua", uas.WECHAT_ANDROID)
    assert (result["action"], result["rule"], result["channel"]) == ("app", "wechat-ad-unidesk-app", "ad")
    assert result["ad"]["verified"] is True


def test_explain_bad_request_is_a_block() -> None:
    """A click the router refuses explains as a 400 block with the reason."""
    result = run("/go?url=https://evil.example/", "--ua", uas.SAFARI_IOS)
    assert result["action"] == "block" and result["status"] == 400
    assert "not allowed" in result["reason"]


def test_explain_untrusted_ad_says_why() -> None:
    """A forged ad click says in the trace why its ad fields were not trusted."""
    result = run(f"/ad?url={quote(ITEM, safe='')}&src=unidesk&adv=1&kid=k1&sig=forged", "--ua", uas.WECHAT_IOS)
    assert result["channel"] == "unknown"
    assert result["channel_reason"] == "ad link not trusted: unknown signing key id 'k1'"
    assert result["rule"] == "wechat-moments-unknown-landing"


def test_explain_naive_time_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--at without a timezone is an error that says how to fix it."""
    assert main(["explain", GROUP_CLICK, "--at", "2026-11-21T10:00:00"], io.StringIO()) == 2
    assert "has no timezone" in capsys.readouterr().err


def test_explain_rules_errors_name_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Broken rules: file:line:col problems on stderr, exit 2, nothing explained."""
    (tmp_path / "r.yaml").write_text("rules:\n  - id: a\n    when: {app: wechatt}\n    then: web\ndefault: web\n")
    assert main(["explain", GROUP_CLICK, "--rules", str(tmp_path)], io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "r.yaml:3:17: unknown app 'wechatt'" in err
    assert "rules rejected: 1 problem" in err


def test_batch_replays_in_order(tmp_path: Path) -> None:
    """--batch: one JSON result per input line, in order, bad lines reported in place."""
    clicks = tmp_path / "clicks.jsonl"
    lines = [
        {"request": GROUP_CLICK, "ua": uas.WECHAT_IOS, "at": "2026-11-21T10:00:00+08:00"},
        {"request": f"/go?url={quote(ITEM, safe='')}", "ua": uas.CHROME_WINDOWS},
        "not json",
        {"request": "/go", "ua": uas.SAFARI_IOS},
    ]
    clicks.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    out = io.StringIO()
    assert main(["explain", "--batch", str(clicks)], out) == 0
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(results) == 4
    assert results[0]["rule"] == "wechat-group-chat-landing"
    assert results[1]["rule"] == "desktop-web" and results[1]["location"] == ITEM
    assert results[2]["line"] == 3 and "error" in results[2]
    assert results[3]["status"] == 400 and "missing 'url'" in results[3]["reason"]


def test_module_entry_point_runs() -> None:
    """`python -m router explain` works as a real process."""
    done = subprocess.run(
        [sys.executable, "-m", "router", "explain", GROUP_CLICK, "--ua", uas.WECHAT_ANDROID],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rule"] == "wechat-group-chat-landing"


def test_explain_text_marks_every_condition() -> None:
    """--format text: each rule tried with ✓/✗ per condition in domain words, stopping at the match."""
    out = io.StringIO()
    old_wechat = uas.WECHAT_IOS.replace("MicroMessenger/8.0.47", "MicroMessenger/7.0.20")
    assert main(["explain", GROUP_CLICK, "--ua", old_wechat, "--format", "text"], out) == 0
    text = out.getvalue()
    assert text.startswith("client   wechat 7.0.20 on ios 17.4 (mobile)\n")
    assert "channel  group_chat (WeChat share parameter from=groupmessage)" in text
    tried = ("✗ wechat-ad-unidesk-app  (rules/default.yaml:19)\n"
             "    ✓ app is wechat\n    ✗ channel is group_chat, not ad\n")
    assert tried in text
    assert "    ✗ rollout is at 0%: nobody is in it yet\n" in text
    assert "✓ wechat-group-chat-landing" in text
    assert "mobile-browser-app" not in text  # the walk stops at the match
    assert text.endswith("→ landing (200) by wechat-group-chat-landing\n")


def test_explain_text_for_a_refused_click() -> None:
    """A click refused before the rules says so in one line."""
    out = io.StringIO()
    assert main(["explain", "/go?url=https://evil.example/", "--format", "text"], out) == 0
    assert out.getvalue().startswith("→ block (400) before any rule: host 'evil.example' is not allowed")


def test_explain_with_a_named_client() -> None:
    """--client names a client from the named table instead of pasting a user agent."""
    result = run(GROUP_CLICK, "--client", "wechat_ios")
    assert result["client"]["app"] == "wechat" and result["rule"] == "wechat-group-chat-landing"


def test_explain_unknown_client_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt client name is refused with a suggestion."""
    assert main(["explain", GROUP_CLICK, "--client", "wechat_iso"], io.StringIO()) == 2
    assert "wechat_ios" in capsys.readouterr().err


def test_explain_warns_when_the_user_agent_reads_as_nobody_and_takes_rollout_what_ifs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from router.cli import main

    link = ["--link", "https://item.taobao.com/item.htm?id=1", "--channel", "group_chat", "--format", "text"]
    assert main(["explain", *link]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: no --ua or --client: the click is read as a bot")
    assert main(["explain", *link, "--ua", "<WeChat 7.0.20 on iOS>"]) == 0
    assert "is read as a bot: no app or browser a person taps in" in capsys.readouterr().err
    assert main(["explain", *link, "--client", "wechat_ios", "--in-rollout"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "→ web (302) by wechat-group-chat-pilot-web" in captured.out
    assert main(["explain", *link, "--client", "wechat_ios", "--out-of-rollout"]) == 0
    assert "→ landing (200) by wechat-group-chat-landing" in capsys.readouterr().out
