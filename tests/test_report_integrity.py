"""The readout can't be steered by what a client sends or a line someone adds: each test writes the log an attack
leaves and reads it with the real CLI (`python -m router report`), text and JSON.

- a visitor id the router did not issue (a line without `visitor_from`) may have been chosen for its rollout arm:
  such clicks are left out of the arm comparison, and counted;
- a visitor the router did issue, kept because it landed in the arm wanted ("shopping" for an arm), weighs as one
  visitor however many clicks it makes: the comparison counts visitors, and says how many clicks they made;
- one click id on two different click lines: no outcome is credited to it, and it is counted apart;
- /ad clicks whose click id was checked for replays by less than the fleet's memory are counted and said.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from router.policy.report import Share, build_report
from router.policy.report_render import render_html
from tests.test_report import click, outcome, write_log

pytest.importorskip("duckdb")

ROOT = Path(__file__).resolve().parent.parent
ROLLOUT = "group-web"


def report(*args: str) -> str:
    """The CLI's standard output for `python -m router report ARGS`."""
    done = subprocess.run([sys.executable, "-m", "router", "report", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def report_json(*args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(report(*args, "--format", "json"))
    return result


def one_text(*args: str) -> str:
    """The text report with its lines joined: a sentence wrapped at 120 columns reads whole."""
    return " ".join(report(*args).split())


def rollout_lines(text: str) -> list[str]:
    """The text report's rollouts: their table and sentences, up to what was left out."""
    lines = text.splitlines()
    start = lines.index("Rollouts (the visitors whose clicks reached the rule, in and out of its rollout, each counted "
                        "once per arm):")
    end = next((at for at in range(start, len(lines)) if lines[at].startswith("Left out of")), len(lines))
    while not lines[end - 1]:
        end -= 1
    return lines[start:end]


def honest_rollout() -> list[object]:
    """A 50 % rollout as the router writes it: 30 clicks in (the web page), 30 out (the landing page: 11 of them
    copied from), each by a visitor of its own, every visitor id the router's own, from its cookie or fresh."""
    lines: list[object] = []
    for n in range(60):
        inside = n < 30
        arms = [{"rule": ROLLOUT, "in": inside}]
        issued = "cookie" if n % 3 else "new"
        if inside:
            lines.append(click(n, rule=ROLLOUT, action="web", status=302, arms=arms, visitor_from=issued))
        else:
            lines.append(click(n, rule="wechat-landing", action="landing", status=200, arms=arms,
                               visitor_from=issued))
            lines.append(outcome(n, "shown"))
            if n < 41:
                lines.append(outcome(n, "copied"))
    return lines


def test_chosen_visitor_ids_dont_move_an_arm(tmp_path: Path) -> None:
    """60 clicks whose visitor ids the attacker chose (none the router issued: no `visitor_from`), all in the out
    arm and all "reached" by their own beacons, would take the landing page from 11/30 to 71/90. The comparison
    stays at the honest figures and says what it left out, and why."""
    honest = write_log(tmp_path / "honest.log", honest_rollout())
    attack = honest_rollout()
    for n in range(1000, 1060):
        line = click(n, rule="wechat-landing", action="landing", status=200,
                     arms=[{"rule": ROLLOUT, "in": False}], visitor_from=None)
        line["visitor"] = f"chosen-{n}"  # one the attacker found hashes out of the rollout
        attack += [line, outcome(n, "copied"), outcome(n, "app_left")]
    attacked = write_log(tmp_path / "attacked.log", attack)

    before, after = report_json("--clicks", str(honest)), report_json("--clicks", str(attacked))
    (arm,) = after["arms"]
    assert (arm["out"]["visitors"], arm["out"]["clicks"], arm["out"]["outcomes"]["reached"]["count"]) == (30, 30, 11)
    assert (arm["in"]["visitors"], arm["in"]["clicks"], arm["in"]["outcomes"]["reached"]["count"]) == (30, 30, 30)
    assert after["arms"] == before["arms"]
    assert after["arms_left_out"] == {"click_id_seen_twice": 0, "visitor_not_issued": 60}
    assert before["arms_left_out"] == {"click_id_seen_twice": 0, "visitor_not_issued": 0}
    # Every click is still counted once in the groups: only the arm comparison needs the router's own visitors.
    assert after["total"]["clicks"] == 120

    text_before, text_after = report("--clicks", str(honest)), report("--clicks", str(attacked))
    assert rollout_lines(text_after) == rollout_lines(text_before)
    assert "n = 30 visitors, 30 clicks) vs 37 % ± " in " ".join(" ".join(rollout_lines(text_after)).split())
    said = " ".join(text_after.split())
    assert "Left out of the rollout comparison: 60 clicks in rollouts (visitor not issued by the router: 60)." in said
    assert "Left out of" not in text_before

    by_arm = report_json("--clicks", str(attacked), "--by", "arm")
    assert {(g["key"]["arm_side"], g["visitors"], g["clicks"], g["outcomes"]["reached"]["count"])
            for g in by_arm["groups"]} == {("in", 30, 30, 30), ("out", 30, 30, 11)}
    assert "visitor not issued by the router: 60" in one_text("--clicks", str(attacked), "--by", "arm")

    html = render_html(build_report([str(attacked)]))
    assert 'id="arms-left-out" data-click-id-seen-twice="0" data-visitor-not-issued="60"' in html
    assert "visitor not issued by the router: 60" in html


def test_a_visitor_kept_for_its_arm_weighs_as_one(tmp_path: Path) -> None:
    """Shopping for an arm: cookieless requests until one answers with the landing page, that cookie kept (a visitor
    id the router issued, so nothing to leave out), then 60 clicks with it, each with the landing page's own genuine
    beacons. Counted by click the landing page would go from 11/30 to 71/90 reached (79 %), and the difference from
    +61 points to +21; counted by visitor it is one more visitor, reached: 12/31. The arm says its visitors made 90
    clicks, so the one who made 60 of them shows."""
    lines = honest_rollout()
    for n in range(2000, 2060):
        line = click(n, rule="wechat-landing", action="landing", status=200, arms=[{"rule": ROLLOUT, "in": False}],
                     visitor_from="cookie")
        line["visitor"] = "kept-for-its-arm"
        lines += [line, outcome(n, "shown"), outcome(n, "copied"), outcome(n, "app_left")]
    shopped = write_log(tmp_path / "shopped.log", lines)
    honest = write_log(tmp_path / "honest.log", honest_rollout())

    before, after = report_json("--clicks", str(honest)), report_json("--clicks", str(shopped))
    (arm,) = after["arms"]
    out = arm["out"]
    assert (out["visitors"], out["clicks"]) == (31, 90)
    assert out["outcomes"]["reached"] == Share(12, 31).as_json()
    assert out["outcomes"]["copied"] == Share(12, 31).as_json() and out["outcomes"]["app_left"]["count"] == 1
    assert out["actions"]["landing"] == 31 and out["answer"] == "landing"
    assert arm["in"] == before["arms"][0]["in"] and (arm["in"]["visitors"], arm["in"]["clicks"]) == (30, 30)
    assert arm["difference"]["reached"] == pytest.approx(1 - 12 / 31, abs=1e-6)
    assert after["arms_left_out"] == {"click_id_seen_twice": 0, "visitor_not_issued": 0}
    # The groups by rule count clicks, as ever: the landing page's 90, 71 of them reached.
    landing = next(group for group in after["groups"] if group["key"]["rule"] == "wechat-landing")
    assert (landing["clicks"], landing["outcomes"]["reached"]["count"]) == (90, 71) and "visitors" not in landing

    rollout = rollout_lines(report("--clicks", str(shopped)))
    out_row = next(line.split() for line in rollout if line.split()[:1] == ["out"])
    assert out_row == ["out", "31", "90", "landing", "39±17"]
    said = " ".join(" ".join(rollout).split())
    assert ("vs 39 % ± 17 for the landing page outside it (n = 31 visitors, 90 clicks); difference +61 points "
            "(95 % interval +40 to +76)") in said
    assert "79" not in said and "+21" not in said

    by_arm = report_json("--clicks", str(shopped), "--by", "arm")
    assert {(g["key"]["arm_side"], g["visitors"], g["clicks"], g["outcomes"]["reached"]["count"])
            for g in by_arm["groups"]} == {("in", 30, 30, 30), ("out", 31, 90, 12)}
    by_arm_rows = one_text("--clicks", str(shopped), "--by", "arm")
    assert "group-web / out 31 0/0/31/0 " in by_arm_rows and "all clicks 120 " in by_arm_rows

    html = report("--clicks", str(shopped), "--format", "html")
    assert '<div class="arm" data-side="out" data-visitors="31" data-clicks="90" data-reached="12">' in html
    assert "39 % ± 17 of 31 visitors (90 clicks)</span>" in html


def test_a_rollout_of_old_lines_only_is_not_compared_and_says_why(tmp_path: Path) -> None:
    lines = [click(n, rule=ROLLOUT, action="web", status=302, arms=[{"rule": ROLLOUT, "in": n % 2 == 0}],
                   visitor_from=None) for n in range(10)]
    log = write_log(tmp_path / "old.log", lines)
    result = report_json("--clicks", str(log), "--by", "arm")
    assert result["arms"] == [] and result["groups"] == [] and result["total"]["clicks"] == 10
    text = one_text("--clicks", str(log), "--by", "arm")
    assert "No rule with a partial rollout" not in text
    assert "Left out of the rollout comparison: 10 clicks in rollouts (visitor not issued by the router: 10)." in text


def test_two_click_lines_share_one_id(tmp_path: Path) -> None:
    """An attacker writes a click line under the victim's click id, and the outcomes that would make it reached.
    Neither line's click is credited with them: the victim's click is not reported as reached, and the id is
    counted as seen twice, in the heading and in what the arm comparison left out."""
    lines = honest_rollout()
    victim = 59  # out of the rollout, its landing page neither copied from nor left: not reached
    forged = click(victim, rule="wechat-landing", action="landing", status=200,
                   arms=[{"rule": ROLLOUT, "in": False}], at="2026-12-01T08:00:09.000+00:00")
    forged["visitor"], forged["ua"] = "attacker", "curl/8.5"
    lines += [forged, outcome(victim, "copied"), outcome(victim, "app_left")]
    log = write_log(tmp_path / "clicks.log", lines)

    result = report_json("--clicks", str(log))
    assert result["click_ids_seen_twice"] == 1
    assert result["arms_left_out"] == {"click_id_seen_twice": 1, "visitor_not_issued": 0}
    (arm,) = result["arms"]
    assert (arm["out"]["visitors"], arm["out"]["clicks"], arm["out"]["outcomes"]["reached"]["count"]) == (29, 29, 11)
    groups = {group["key"]["rule"]: group for group in result["groups"]}
    landing = groups["wechat-landing"]
    assert landing["clicks"] == 29 and landing["outcomes"]["reached"]["count"] == 11
    assert landing["outcomes"]["app_left"]["count"] == 0
    assert result["total"]["clicks"] == 59 and result["total"]["outcomes"]["reached"]["count"] == 41

    text = one_text("--clicks", str(log))
    assert "click ids seen twice: 1 (different click lines under one id: left out, their outcomes not counted)" in text
    assert "Left out of the rollout comparison: 1 clicks in rollouts (click id seen twice: 1)." in text
    assert "click ids seen twice: 1" in render_html(build_report([str(log)]))


def test_the_same_file_given_twice_counts_each_click_once_with_its_outcomes(tmp_path: Path) -> None:
    lines = honest_rollout()
    lines += [outcome(35, "app_attempt"), outcome(35, "app_left")]
    log = write_log(tmp_path / "clicks.log", lines)
    copy = tmp_path / "again" / "clicks.log"
    copy.parent.mkdir()
    shutil.copyfile(log, copy)

    once = report_json("--clicks", str(log))
    for twice in (report_json("--clicks", str(log), str(log)),
                  report_json("--clicks", str(log), str(copy)),
                  report_json("--clicks", str(tmp_path / "*.log"), str(tmp_path / "**" / "*.log"))):
        assert twice["click_ids_seen_twice"] == 0
        assert {key: value for key, value in twice.items() if key not in ("files", "files_read")} == {
            key: value for key, value in once.items() if key not in ("files", "files_read")}
    assert report_json("--clicks", str(log), str(copy))["files_read"] == 2
    (arm,) = once["arms"]
    assert (arm["out"]["visitors"], arm["out"]["clicks"], arm["out"]["outcomes"]["reached"]["count"]) == (30, 30, 11)
    landing = next(group for group in once["groups"] if group["key"]["rule"] == "wechat-landing")
    assert landing["outcomes"]["copied"]["count"] == 11 and landing["outcomes"]["app_left"]["count"] == 1
    assert "seen twice" not in report("--clicks", str(log), str(copy))


def ad_click(n: int, check: str | None) -> dict[str, object]:
    line = click(n, rule="wechat-ad-app", action="app", status=302, channel="ad")
    line["request"] = f"/ad?src=unidesk&gclid=g{n}&sig=x"
    if check is not None:
        line["replay_check"] = check
    return line


def test_replay_checks_are_counted_and_unchecked_ones_shown(tmp_path: Path) -> None:
    checks = ["fleet"] * 5 + ["process"] * 2 + ["local"] * 12 + ["restarted"] * 3 + [None] * 4
    lines: list[object] = [ad_click(n, check) for n, check in enumerate(checks)]
    lines.append(click(100, rule="wechat-landing", action="landing", status=200))
    log = write_log(tmp_path / "ads.log", lines)

    result = report_json("--clicks", str(log))
    assert result["ad_replay_checks"] == {"fleet": 5, "process": 2, "local": 12, "restarted": 3}
    text = one_text("--clicks", str(log))
    assert ("Replays not checked: 12 ad clicks were decided while the fleet's store could not check their click id "
            "(local: only the answering router's memory was asked) and 3 while its store had lost its memory") in text
    assert "first used on another router or before the loss went unnoticed." in text
    html = render_html(build_report([str(log)]))
    assert 'id="replay-checks" data-fleet="5" data-process="2" data-local="12" data-restarted="3"' in html

    # One kind alone is said alone.
    only_restarted = write_log(tmp_path / "restarted.log", [ad_click(n, "restarted") for n in range(3)])
    text = one_text("--clicks", str(only_restarted))
    assert ("Replays not checked: 3 ad clicks were decided while its store had lost its memory of click ids "
            "(restarted: it had forgotten earlier ones). A replay of a click id first used before the loss went "
            "unnoticed.") in text

    # Full checks only: the JSON carries the counts, the text and the page say nothing of them.
    checked = write_log(tmp_path / "checked.log", [ad_click(n, "fleet" if n % 2 else "process") for n in range(6)])
    assert report_json("--clicks", str(checked))["ad_replay_checks"] == {
        "fleet": 3, "process": 3, "local": 0, "restarted": 0}
    assert "Replays not checked" not in report("--clicks", str(checked))
    assert 'id="replay-checks"' not in render_html(build_report([str(checked)]))


def test_a_clean_log_says_nothing_new(tmp_path: Path) -> None:
    """Visitors the router issued, each id on one line, replays checked in full: none of the new sentences."""
    log = write_log(tmp_path / "clean.log", [*honest_rollout(), ad_click(200, "fleet")])
    text = report("--clicks", str(log), "--by", "arm")
    for said in ("Left out of", "seen twice", "Replays not checked"):
        assert said not in text
    result = report_json("--clicks", str(log))
    assert result["click_ids_seen_twice"] == 0 and not any(result["arms_left_out"].values())
