"""`rules diff`: recorded clicks replayed against two rule sets, changes grouped and counted."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from router.cli import main
from tests import uas

SHIPPED = (Path(__file__).resolve().parent.parent / "rules" / "default.yaml").read_text(encoding="utf-8")
ITEM = quote("https://item.taobao.com/item.htm?id=1", safe="")
PILOT = "when: {app: wechat, channel: group_chat, rollout: 0}"


@pytest.fixture()
def sets(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "default.yaml").write_text(SHIPPED, encoding="utf-8")
    return old, new


def clicks_file(tmp_path: Path, count: int = 200) -> Path:
    """A day in miniature: WeChat group and 1:1 chats, QQ, Safari; one unreadable line."""
    mix = [(uas.WECHAT_IOS, "&from=groupmessage"), (uas.WECHAT_ANDROID, "&from=singlemessage"),
           (uas.QQ_ANDROID, "&from=groupmessage"), (uas.SAFARI_IOS, "")]
    lines = [json.dumps({"request": f"/go?url={ITEM}{extra}", "ua": ua, "at": "2026-11-21T10:00:00+08:00",
                         "visitor": f"visitor-{n}"})
             for n in range(count) for ua, extra in [mix[n % len(mix)]]]
    path = tmp_path / "clicks.jsonl"
    path.write_text("\n".join([*lines, "not json"]) + "\n", encoding="utf-8")
    return path


def diff(old: Path, new: Path, clicks: Path, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(["rules", "diff", str(old), str(new), "--clicks", str(clicks), *extra], out), out.getvalue()


def test_pilot_at_full_rollout_changes_only_wechat_group_chats(sets: tuple[Path, Path], tmp_path: Path) -> None:
    """Raising the group-chat pilot to 100% moves exactly the WeChat group chat clicks from landing to web."""
    old, new = sets
    (new / "default.yaml").write_text(SHIPPED.replace(PILOT, PILOT.replace("rollout: 0", "rollout: 100")))
    code, text = diff(old, new, clicks_file(tmp_path))
    assert code == 0
    assert "clicks: 200 read, 1 unreadable line, 0 refused before any rule, 200 decided by both" in text
    assert "action changes: 50 of 200 (25.0%)" in text
    assert "       50  group_chat    wechat      landing → web" in text
    assert "(wechat-group-chat-landing → wechat-group-chat-pilot-web)" in text
    assert text.count("e.g. line") == 3


def test_half_rollout_moves_about_half_and_replays_stably(sets: tuple[Path, Path], tmp_path: Path) -> None:
    """A 50% pilot moves about half of those visitors, the same ones every time (sticky per visitor)."""
    old, new = sets
    (new / "default.yaml").write_text(SHIPPED.replace(PILOT, PILOT.replace("rollout: 0", "rollout: 50")))
    clicks = clicks_file(tmp_path, 800)
    code, first = diff(old, new, clicks, "--format", "json")
    moved = json.loads(first)["changed"]
    assert code == 0 and 70 < moved < 130
    assert diff(old, new, clicks, "--format", "json")[1] == first


def test_identical_sets_change_nothing(sets: tuple[Path, Path], tmp_path: Path) -> None:
    """The same rules on both sides: no click changes."""
    old, new = sets
    (new / "default.yaml").write_text(SHIPPED)
    code, text = diff(old, new, clicks_file(tmp_path))
    assert code == 0 and "action changes: 0 of 200 (0.0%)" in text


def test_rule_only_changes_are_counted_apart(sets: tuple[Path, Path], tmp_path: Path) -> None:
    """Renaming a rule keeps every action: counted as 'same action, another rule'."""
    old, new = sets
    (new / "default.yaml").write_text(SHIPPED.replace("id: mobile-browser-app", "id: phone-browser-app"))
    code, text = diff(old, new, clicks_file(tmp_path))
    assert code == 0
    assert "action changes: 0 of 200" in text and "same action, another rule: 50" in text


def test_broken_new_rules_are_named(sets: tuple[Path, Path], tmp_path: Path) -> None:
    """A NEW_DIR that doesn't load: its problems with file:line, exit 1, nothing compared."""
    old, new = sets
    (new / "default.yaml").write_text(SHIPPED.replace("when: {app: [taobao, tmall]}", "when: {app: [tao, tmall]}"))
    code, text = diff(old, new, clicks_file(tmp_path))
    assert code == 1
    assert "default.yaml:67:17: error: unknown app 'tao'" in text and "NEW_DIR does not load" in text


def test_missing_clicks_file_is_a_clear_error(sets: tuple[Path, Path], tmp_path: Path) -> None:
    """--clicks naming no file: one sentence, exit 1, no traceback."""
    old, new = sets
    (new / "default.yaml").write_text(SHIPPED)
    code, text = diff(old, new, tmp_path / "nope.jsonl")
    assert code == 1 and text.startswith("error: --clicks ") and "No such file or directory" in text


def test_clicks_from_stdin(sets: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--clicks - reads the clicks from standard input, like explain --batch -."""
    old, new = sets
    (new / "default.yaml").write_text(SHIPPED.replace(PILOT, PILOT.replace("rollout: 0", "rollout: 100")))
    monkeypatch.setattr("sys.stdin", io.StringIO(clicks_file(tmp_path, 8).read_text()))
    code, text = diff(old, new, Path("-"))
    assert code == 0 and "action changes: 2 of 8 (25.0%)" in text


def test_a_change_scheduled_for_later_previews_with_at(sets: tuple[Path, Path], tmp_path: Path) -> None:
    """Group chats to `web` for 30 % of visitors from next Monday: recorded clicks (a Saturday) show no change
    as they are; replayed --at that Monday they do, each group's share given against its own clicks too."""
    old, new = sets
    scheduled = PILOT.replace("rollout: 0}", "rollout: 30, window: {from: '2026-11-23T00:00:00+08:00'}}")
    (new / "default.yaml").write_text(SHIPPED.replace(PILOT, scheduled))
    clicks = clicks_file(tmp_path)
    code, text = diff(old, new, clicks)
    assert code == 0 and "action changes: 0 of 200" in text
    code, text = diff(old, new, clicks, "--at", "2026-11-23")
    assert code == 0 and text.startswith("replayed as if from 2026-11-23 on (moved +2 days")
    changed = int(text.split("action changes: ")[1].split(" of")[0])
    assert 5 <= changed <= 25  # about 30 % of the 50 WeChat group-chat clicks
    assert f"{100 * changed / 200:.1f}% of all, {100 * changed / 50:.1f}% of group_chat clicks in wechat" in text
    code, text = diff(old, new, clicks, "--at", "Monday")
    assert code == 1 and "error: --at 'Monday': not a date or time" in text


def test_diff_says_what_it_could_not_do(sets: tuple[Path, Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad setting is one line, not a traceback; a log of no click lines (a prefix on every line) is an
    error, not "0 changes"; --at with --format json keeps standard output one JSON document."""
    old, new = sets
    (new / "default.yaml").write_text(SHIPPED)
    prefixed = tmp_path / "compose.log"
    prefixed.write_text("".join(f"router-1  | {line}\n" for line in clicks_file(tmp_path).read_text().splitlines()))
    code, text = diff(old, new, prefixed)
    assert code == 1 and text.startswith("error: no click lines in --clicks ") and "--no-log-prefix" in text
    code, text = diff(old, new, clicks_file(tmp_path), "--at", "2026-11-23T10:00+08:00", "--format", "json")
    assert code == 0 and json.loads(text)["read"] == 200
    assert "the time of day given is not used" in capsys.readouterr().err
    monkeypatch.setenv("ROUTER_SIGNING_KEYS", "no-colon-here")
    code, text = diff(old, new, clicks_file(tmp_path))
    assert code == 1 and text.startswith("error: ") and "Traceback" not in text
