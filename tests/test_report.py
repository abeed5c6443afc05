"""The readout (router.policy.report): counts, intervals, arms, formats, mixed and compressed streams."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from router.cli import main
from router.policy.report import OUTCOME_COLUMNS, ReportError, Share, build_report, difference, wilson
from router.policy.report_render import percent, render_html, render_text

pytest.importorskip("duckdb")


def test_wilson_matches_published_values() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I.
    for (count, total), (low, high) in {(81, 263): (0.2553, 0.3662), (15, 148): (0.0624, 0.1605),
                                        (0, 20): (0.0, 0.1611), (1, 29): (0.0061, 0.1718)}.items():
        got = wilson(count, total)
        assert got == pytest.approx((low, high), abs=5e-4), (count, total)
    assert wilson(0, 0) == (0.0, 1.0)


def test_the_difference_interval_is_newcombes() -> None:
    # Newcombe (1998), "Interval estimation for the difference between independent proportions", method 10:
    # 56/70 - 48/80 = 0.2000, 95 % interval 0.0524 to 0.3339.
    d, low, high = difference(Share(56, 70), Share(48, 80))
    assert (d, low, high) == pytest.approx((0.2, 0.0524, 0.3339), abs=5e-4)


def click(n: int, *, rule: str, action: str, status: int, channel: str = "group_chat", app: str = "wechat",
          os: str = "android", arms: list[dict[str, object]] | None = None, at: str = "2026-12-01T08:00:00.000+00:00",
          visitor_from: str | None = "new") -> dict[str, object]:
    """A click line as the router writes it: its visitor id its own (`visitor_from`); None for an older line."""
    line: dict[str, object] = {"type": "click", "at": at, "request": "/go?url=x", "ua": "UA", "visitor": f"v{n}",
                               "action": action, "rule": rule, "status": status, "channel": channel, "app": app,
                               "os": os, "rules": "r1", "expansion": None, "expansion_reason": None,
                               "request_id": f"c{n}", "duration_ms": 0.1}
    if visitor_from is not None:
        line["visitor_from"] = visitor_from
    if arms is not None:
        line["arms"] = arms
    return line


def outcome(n: int, event: str) -> dict[str, object]:
    return {"type": "outcome", "at": "2026-12-01T08:00:05.000+00:00", "click": f"c{n}", "event": event,
            "rule": "x", "rules": "r1", "arms": None, "app": "wechat"}


def write_log(path: Path, lines: list[object], compress: bool = False) -> Path:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    if compress:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def rollout_day() -> list[object]:
    """A small day: 20 group-chat clicks in a 50 % rollout (10 in: web; 10 out: landing, 3 of them copied and 1
    left for the app), 5 Safari clicks to the app, and noise a real stream carries."""
    lines: list[object] = [{"type": "server", "level": "info", "message": "started"}, "not json at all", "{broken"]
    for n in range(20):
        inside = n < 10
        arms = [{"rule": "group-web", "in": inside}]
        if inside:
            lines.append(click(n, rule="group-web", action="web", status=302, arms=arms))
        else:
            lines.append(click(n, rule="wechat-landing", action="landing", status=200, arms=arms))
            lines.append(outcome(n, "shown"))
    for n in (10, 11, 12):
        lines += [outcome(n, "copied"), outcome(n, "copied")]  # a duplicate a reader must not count twice
    lines += [outcome(13, "app_attempt"), outcome(13, "app_left")]
    for n in range(20, 25):
        lines.append(click(n, rule="browsers-app", action="app", status=302, channel="unknown", app="browser",
                           os="ios"))
    lines.append(outcome(999, "copied"))  # a click outside the files: nothing to join
    return lines


def test_counts_reached_and_arms(tmp_path: Path) -> None:
    log = write_log(tmp_path / "clicks.log", rollout_day())
    report = build_report([str(log)], by=["rule"])
    groups = {g["key"]["rule"]: g for g in report["groups"]}
    assert report["total"]["clicks"] == 25
    landing = groups["wechat-landing"]
    assert landing["clicks"] == 10 and landing["actions"] == {"app": 0, "web": 0, "landing": 10, "block": 0}
    assert landing["outcomes"]["shown"]["count"] == 10 and landing["outcomes"]["copied"]["count"] == 3
    assert landing["outcomes"]["app_left"]["count"] == 1 and landing["outcomes"]["reached"]["count"] == 4
    assert groups["group-web"]["outcomes"]["reached"]["count"] == 10
    assert groups["browsers-app"]["outcomes"]["reached"]["rate"] == 1.0
    (arm,) = report["arms"]
    # Every click its own visitor (click() gives click n the visitor vn): as many visitors as clicks in each arm.
    assert arm["rule"] == "group-web" and arm["in"]["visitors"] == 10 and arm["out"]["visitors"] == 10
    assert arm["in"]["clicks"] == 10 and arm["out"]["clicks"] == 10
    assert arm["in"]["outcomes"]["reached"]["count"] == 10 and arm["out"]["outcomes"]["reached"]["count"] == 4
    assert arm["in"]["answer"] == "web" and arm["out"]["answer"] == "landing"
    assert arm["difference"]["reached"] == pytest.approx(0.6)
    low, high = arm["difference"]["low"], arm["difference"]["high"]
    assert 0 < low < 0.6 < high <= 1
    assert arm["sentence"].startswith("group-web: the web page reached the item for 100 % ± ")
    assert "of group-chat visitors in the rollout (n = 10 visitors, 10 clicks) vs 40 % ± " in arm["sentence"]
    assert "for the landing page outside it (n = 10 visitors, 10 clicks)" in arm["sentence"]


def test_grouping_by_several_dimensions_and_by_arm(tmp_path: Path) -> None:
    log = write_log(tmp_path / "clicks.log", rollout_day())
    by_app_os = build_report([str(log)], by=["app", "os"])
    assert {(g["key"]["app"], g["key"]["os"]): g["clicks"] for g in by_app_os["groups"]} == {
        ("wechat", "android"): 20, ("browser", "ios"): 5}
    by_arm = build_report([str(log)], by=["arm"])
    assert {(g["key"]["arm_rule"], g["key"]["arm_side"]): (g["visitors"], g["clicks"]) for g in by_arm["groups"]} == {
        ("group-web", "in"): (10, 10), ("group-web", "out"): (10, 10)}
    assert all("visitors" not in group for group in by_app_os["groups"])


def test_time_windows_gz_and_several_files(tmp_path: Path) -> None:
    early = [click(n, rule="r", action="web", status=302, at="2026-12-01T07:00:00.000+00:00") for n in range(3)]
    late = [click(n, rule="r", action="web", status=302, at="2026-12-02T07:00:00.000+08:00") for n in range(3, 7)]
    first = write_log(tmp_path / "a.log.gz", early, compress=True)
    second = write_log(tmp_path / "b.log", late)
    assert build_report([str(first), str(second)])["total"]["clicks"] == 7
    assert build_report([str(tmp_path / "*.log*")])["total"]["clicks"] == 7
    assert build_report([str(first), str(second)], since="2026-12-01T12:00")["total"]["clicks"] == 4
    assert build_report([str(first), str(second)], until="2026-12-01T12:00Z")["total"]["clicks"] == 3


def test_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ReportError, match="--since 'yesterday' is not a time"):
        build_report([str(tmp_path / "x.log")], since="yesterday")
    with pytest.raises(ReportError, match="group by one of rule, channel, app, os, arm"):
        build_report([str(tmp_path / "x.log")], by=["city"])
    assert main(["report", "--clicks", str(tmp_path / "missing.log")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: can't read the click stream: ") and err.count("\n") == 1
    empty = write_log(tmp_path / "empty.log", [{"type": "server", "message": "nothing"}])
    assert build_report([str(empty)])["total"]["clicks"] == 0


def test_text_fits_120_columns_and_json_and_html_say_the_same(tmp_path: Path) -> None:
    log = write_log(tmp_path / "clicks.log", rollout_day())
    text_out, json_out, html_out = (tmp_path / "r.txt", tmp_path / "r.json", tmp_path / "r.html")
    for fmt, out in (("text", text_out), ("json", json_out), ("html", html_out)):
        assert main(["report", "--clicks", str(log), "--by", "rule", "--format", fmt, "--output", str(out)]) == 0
    text = text_out.read_text(encoding="utf-8")
    assert max(len(line) for line in text.splitlines()) <= 120
    assert "wechat-landing" in text and "40 % ±" in text and "group-web: the web page reached the item" in text
    report = json.loads(json_out.read_text(encoding="utf-8"))
    assert report == build_report([str(log)], by=["rule"])
    html = html_out.read_text(encoding="utf-8")
    assert "<script" not in html and "default-src 'none'" in html and "<svg" in html
    assert render_text(report) == text and render_html(report) == html


def test_values_from_the_logs_are_escaped_in_html(tmp_path: Path) -> None:
    hostile = '<img src=x onerror=alert(1)>"&'
    log = write_log(tmp_path / "clicks.log", [
        click(1, rule=hostile, action="web", status=302, channel=hostile, arms=[{"rule": hostile, "in": True}])])
    html = render_html(build_report([str(log)], by=["rule", "channel"]))
    assert hostile not in html and "&lt;img src=x onerror=alert(1)&gt;&#34;&amp;" in html


def test_the_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/report_bench.py on a small day, gzip-compressed: it runs and says what it measured (no
    figure is asserted: speed is the benchmark's to show, not a test's)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "report_bench.py"), "--clicks", "3000", "--gzip",
                           "--keep", str(tmp_path / "day.log.gz")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "generated 3,000 clicks" in done.stdout and done.stdout.count("report --by") == 3
    day = build_report([str(tmp_path / "day.log.gz")], by=["arm"])
    assert day["total"]["clicks"] + day["bots_left_out"] == 3000 and day["bots_left_out"] > 0
    for comparison in day["arms"]:
        assert comparison["sentence"] in done.stdout
    # Its rollout compared once every visitor id is the router's own: each rollout click is either in the
    # comparison or left out of it (the day's lines without `visitor_from`), never lost.
    stamped = tmp_path / "stamped.log"
    with gzip.open(tmp_path / "day.log.gz", "rt", encoding="utf-8") as lines:
        write_log(stamped, [{**line, "visitor_from": "cookie"} if line.get("type") == "click" else line
                            for line in map(json.loads, lines)])
    (rollout,) = build_report([str(stamped)], by=["arm"])["arms"]
    assert rollout["sentence"].startswith("wechat-group-chat-pilot-web: the web page reached the item for")
    compared = sum(arm["clicks"] for arms in day["arms"] for arm in (arms["in"], arms["out"]))
    assert compared + day["arms_left_out"]["visitor_not_issued"] == rollout["in"]["clicks"] + rollout["out"]["clicks"]


def test_each_click_counts_once_and_bots_and_second_jumps_are_kept_apart(tmp_path: Path) -> None:
    """The same file twice or overlapping globs count each click once; bots' clicks and the clicks of second
    jumps are left out of the groups (and said so); only a 302 of an app or web answer counts as reached."""
    lines = rollout_day()
    lines.append(click(30, rule="bots-web", action="web", status=302, app="bot", os="other"))
    jumped = click(31, rule="browsers-app", action="app", status=302, channel="group_chat", app="browser", os="ios")
    jumped["escaped_from"] = "c10"
    lines += [jumped, outcome(10, "escaped")]
    lines.append(click(32, rule="odd", action="app", status=200, channel="unknown", app="browser", os="ios"))
    log = write_log(tmp_path / "clicks.log", lines)
    twice = build_report([str(log), str(log), str(tmp_path / "*.log")], by=["rule"])
    assert twice["files_read"] == 1 and twice["total"]["clicks"] == 26  # 25 + the 200 one
    assert twice["bots_left_out"] == 1 and twice["second_jump_clicks"] == 1
    groups = {g["key"]["rule"]: g for g in twice["groups"]}
    assert "bots-web" not in groups and groups["odd"]["outcomes"]["reached"]["count"] == 0
    assert groups["wechat-landing"]["outcomes"]["escaped"]["count"] == 1
    assert build_report([str(log)], bots=True)["total"]["clicks"] == 27
    text = " ".join(render_text(twice).split())
    assert "1 bot clicks left out (--bots counts them); 1 second-jump clicks counted with their first click" in text


def test_what_the_logs_say_never_breaks_the_report_or_the_terminal(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    odd = "\x1b[31mred\x1b[0m\nnext\u202eevil"
    log = write_log(tmp_path / "clicks.log", [
        click(1, rule=odd, action="web", status=302, at="not a time"),
        click(2, rule="a-rule-with-a-very-long-name-indeed", action="landing", status=200,
              arms=[{"rule": "a-rule-with-a-very-long-name-indeed", "in": False}]),
        click(3, rule="a-rule-with-a-very-long-name-indeed", action="web", status=302,
              arms=[{"rule": "a-rule-with-a-very-long-name-indeed", "in": True}])])
    report = build_report([str(log)], by=["arm"], since="2026-01-01")  # a click without a time is outside
    text = render_text(report)
    assert "\x1b" not in text and "\u202e" not in text
    lines = text.splitlines()
    for side in ("in", "out"):  # the long key whole, side and all, on a line of its own; its figures below it
        at = lines.index(f"a-rule-with-a-very-long-name-indeed / {side}")
        assert lines[at + 1].startswith(" " * 29) and lines[at + 1].split()[:2] == ["1", "0/1/0/0" if side == "in"
                                                                                      else "0/0/1/0"]
    assert "…" not in text and "-0 points" not in text
    whole = render_text(build_report([str(log)], by=["rule"]))
    assert "\\u001b[31mred\\u001b[0m\\u000anext\\u202eevil" in whole.splitlines()
    assert main(["report", "--clicks", str(log), "--format", "html", "--output", str(tmp_path / "no" / "x.html")]) == 2
    assert capsys.readouterr().err.startswith("error: can't write --output ")
    with pytest.raises(ReportError, match="is not before --until"):
        build_report([str(log)], since="2026-12-02", until="2026-12-01")
    empty = write_log(tmp_path / "server.log", [{"type": "server", "message": "hello"}])
    assert main(["report", "--clicks", str(empty)]) == 0
    captured = capsys.readouterr()
    assert "no click lines in these files" in captured.err and "nothing to report" in captured.out


def test_the_all_clicks_row_is_every_click_in_text_json_and_html(tmp_path: Path) -> None:
    """Below the groups, the totals of every click: the JSON's `total`, made by the same query and the same share
    and interval functions as each group's; the text's last row and the HTML table's footer say the same."""
    log = write_log(tmp_path / "clicks.log", rollout_day())
    report = build_report([str(log)], by=["rule"])
    total = report["total"]
    assert total["clicks"] == 25 == sum(group["clicks"] for group in report["groups"])
    assert total["actions"] == {"app": 5, "web": 10, "landing": 10, "block": 0}
    counts = {"shown": 10, "copied": 3, "app_left": 1, "escaped": 0, "web": 0, "store": 0, "reached": 19}
    for name in OUTCOME_COLUMNS:
        assert sum(group["outcomes"][name]["count"] for group in report["groups"]) == counts[name]
        assert total["outcomes"][name] == Share(counts[name], 25).as_json(), name
    # 19 of 25 reached: 76 %, Wilson's interval 56.6 % to 88.5 %, so ± 19 points (the larger side); worked by hand,
    # as the text row's other figures (10/25: 23.4 % to 59.2 %; 3/25: 4.2 % to 30.0 %; 1/25: 0.7 % to 19.5 %).
    assert total["outcomes"]["reached"]["low"] == pytest.approx(0.5657, abs=5e-4)
    assert total["outcomes"]["reached"]["high"] == pytest.approx(0.8850, abs=5e-4)

    lines = render_text(report).splitlines()
    row = next(line for line in lines if line.startswith("all clicks"))
    assert row.split() == ["all", "clicks", "25", "5/10/10/0", "40±19", "12±18", "4±16", "0±13", "0±13", "76±19"]
    assert lines[lines.index(row) - 1] == "-" * 120  # set apart from the groups

    html = render_html(report)
    footer = html[html.index("<tfoot>"):html.index("</tfoot>")]
    assert '<th scope="row" class="key" colspan="1">all clicks</th>' in footer
    assert '<td data-field="clicks" data-label="clicks">25</td>' in footer
    for name in OUTCOME_COLUMNS:
        value, half = percent(total["outcomes"][name]).split(" % ± ")
        assert (f'data-outcome="{name}" data-count="{counts[name]}" data-label="{name}"><span class="share">{value} %'
                f'</span> <span class="pm">± {half}</span>') in footer
    assert 'aria-label="76 % ± 19"' in footer


LONG_RULE = "wechat-group-chat-spring-festival-pilot-straight-to-the-web-page-v2"


def test_a_long_rule_id_is_never_cut_in_the_text(tmp_path: Path) -> None:
    """A rule id longer than the key column is written whole, on a line of its own above its figures, in the groups'
    table, the rollouts' table and the sentence; one longer than a line too (the terminal wraps it, nothing cut)."""
    assert len(LONG_RULE) >= 60
    longest = "-".join(["a-rule-id-longer-than-a-whole-terminal-line"] * 3)  # 131 characters
    lines: list[object] = []
    for n in range(12):
        inside = n % 2 == 0
        arms = [{"rule": LONG_RULE, "in": inside}]
        lines.append(click(n, rule=LONG_RULE, action="web", status=302, arms=arms) if inside else
                     click(n, rule="wechat-landing", action="landing", status=200, arms=arms))
    lines += [click(n, rule=longest, action="app", status=302) for n in range(12, 15)]
    log = write_log(tmp_path / "clicks.log", lines)
    report = build_report([str(log)], by=["rule"])
    text = render_text(report)
    rows = text.splitlines()
    assert "…" not in text
    # The groups' table: the id alone on its line, the figures below it in their columns.
    at = rows.index(LONG_RULE)
    assert rows[at + 1].startswith(" " * 29) and rows[at + 1].split()[:2] == ["6", "0/6/0/0"]
    assert rows[at + 1].split()[-1] == percent(report["groups"][0]["outcomes"]["reached"], True)
    assert rows[rows.index(longest) + 1].split()[:2] == ["3", "3/0/0/0"]
    # The rollouts' table: the id once, whole, then its two arms.
    again = rows.index(LONG_RULE, at + 2)
    assert rows[again + 1].split()[:4] == ["in", "6", "6", "web"]  # visitors, then their clicks
    assert rows[again + 2].split()[:4] == ["out", "6", "6", "landing"]
    # The sentence: never broken at one of the id's hyphens.
    assert any(row.startswith(f"- {LONG_RULE}: the web page reached the item for ") for row in rows)
    # 120 columns, but for the line of an id longer than that.
    assert [row for row in rows if len(row) > 120] == [longest]
    by_arm = render_text(build_report([str(log)], by=["arm"])).splitlines()
    assert f"{LONG_RULE} / in" in by_arm and f"{LONG_RULE} / out" in by_arm


def visits() -> list[object]:
    """A 50 % rollout of `pilot` (the web page) with visitors who click more than once. In: a (5 web clicks),
    b (2 landing clicks, not reached, and 1 web click), c (1 landing click from Moments, not reached), d (2 landing
    clicks, the second copied from). Out: e (1 landing click), f (1 landing click, left for the app), g (1 landing
    and 1 web click: a tie) and d again (1 landing click: a visitor in both arms, as when the rollout's percentage
    changed during the day)."""
    plan = [("a", True, "web", None), ("a", True, "web", None), ("a", True, "web", None), ("a", True, "web", None),
            ("a", True, "web", None), ("b", True, "landing", None), ("b", True, "landing", None),
            ("b", True, "web", None), ("c", True, "landing", None), ("d", True, "landing", None),
            ("d", True, "landing", "copied"), ("e", False, "landing", None), ("f", False, "landing", "app_left"),
            ("g", False, "landing", None), ("g", False, "web", None), ("d", False, "landing", None)]
    lines: list[object] = []
    for n, (visitor, inside, action, event) in enumerate(plan):
        line = click(n, rule="pilot" if action == "web" else "landing", action=action,
                     status=302 if action == "web" else 200, channel="moments" if visitor == "c" else "group_chat",
                     arms=[{"rule": "pilot", "in": inside}], visitor_from="cookie")
        line["visitor"] = visitor
        lines.append(line)
        if event:
            lines.append(outcome(n, event))
    return lines


def test_the_rollout_comparison_counts_visitors(tmp_path: Path) -> None:
    """Each visitor once per arm: reached if any of its clicks there was, its answer the one most of its clicks
    there got (a tie: the first by name), counted in each arm it clicked in; the arm says its visitors' clicks too.
    The groups by rule count clicks as ever."""
    log = write_log(tmp_path / "clicks.log", visits())
    report = build_report([str(log)], by=["arm"])
    (arm,) = report["arms"]
    inside, outside = arm["in"], arm["out"]
    assert (inside["visitors"], inside["clicks"], outside["visitors"], outside["clicks"]) == (4, 11, 4, 5)
    # In: a, b (by its web click) and d (by its copy) reached; c did not. Out: f (app_left) and g (its web click).
    assert inside["outcomes"]["reached"] == Share(3, 4).as_json()
    assert outside["outcomes"]["reached"] == Share(2, 4).as_json()
    assert inside["outcomes"]["copied"]["count"] == 1 and outside["outcomes"]["app_left"]["count"] == 1
    # Answers by visitor: a web; b (2 of 3), c and d the landing page. By click the web page would lead, 6 to 5.
    assert inside["actions"] == {"app": 0, "web": 1, "landing": 3, "block": 0} and inside["answer"] == "landing"
    assert outside["actions"] == {"app": 0, "web": 0, "landing": 4, "block": 0} and outside["answer"] == "landing"
    assert arm["difference"]["reached"] == pytest.approx(0.25)
    assert inside["channel"] is None and outside["channel"] == "group_chat"  # c clicked from Moments
    assert arm["sentence"].startswith("pilot: the landing page reached the item for 75 % ± ")
    assert " of visitors in the rollout (n = 4 visitors, 11 clicks) vs 50 % ± " in arm["sentence"]
    assert "for the landing page outside it (n = 4 visitors, 5 clicks); difference +25 points" in arm["sentence"]
    assert "A redirect counts" not in arm["sentence"]
    assert [(g["key"]["arm_side"], g["visitors"], g["clicks"]) for g in report["groups"]] == [
        ("in", 4, 11), ("out", 4, 5)]

    # With another key, each visitor once per group of that key too.
    by_channel = build_report([str(log)], by=["arm", "channel"])
    assert {(g["key"]["arm_side"], g["key"]["channel"]): (g["visitors"], g["clicks"],
                                                          g["outcomes"]["reached"]["count"])
            for g in by_channel["groups"]} == {("in", "group_chat"): (3, 10, 3), ("in", "moments"): (1, 1, 0),
                                               ("out", "group_chat"): (4, 5, 2)}
    # By rule, clicks: 16 in all, the web page's 7 all reached, the landing page's 9 reached by 2 beacons.
    by_rule = {g["key"]["rule"]: g for g in build_report([str(log)], by=["rule"])["groups"]}
    assert {rule: (g["clicks"], g["outcomes"]["reached"]["count"], "visitors" in g) for rule, g in by_rule.items()} == {
        "landing": (9, 2, False), "pilot": (7, 7, False)}

    text = render_text(report)
    rows = text.splitlines()
    at = rows.index("Rollouts (the visitors whose clicks reached the rule, in and out of its rollout, each counted "
                    "once per arm):")
    assert rows[at + 2].split()[:6] == ["rollout", "arm", "visitors", "clicks", "answer", "reached"]
    reached_in = percent(inside["outcomes"]["reached"], True)
    assert reached_in.startswith("75±")
    assert rows[at + 3].split()[:6] == ["pilot", "in", "4", "11", "landing", reached_in]
    assert rows[at + 4].split()[:4] == ["out", "4", "5", "landing"]
    assert rows[0].startswith("16 clicks in 1 file(s)") and rows[2].split()[:2] == ["group", "visitors"]
    assert next(row for row in rows if row.startswith("all clicks")).split()[2] == "16"
    assert "By rollout arm, a row counts visitors, each once however many clicks it made" in " ".join(text.split())
    assert render_text(build_report([str(log)], by=["rule"])).splitlines()[2].split()[:2] == ["group", "clicks"]
    assert "By rollout arm" not in render_text(build_report([str(log)], by=["rule"]))

    html = render_html(report)
    assert '<div class="arm" data-side="in" data-visitors="4" data-clicks="11" data-reached="3">' in html
    assert "of 4 visitors (11 clicks)</span>" in html and "of 4 visitors (5 clicks)</span>" in html
    assert '<tr data-clicks="11" data-visitors="4">' in html
    assert '<td data-field="visitors" data-label="visitors">4</td>' in html and "<th>visitors</th>" in html
    assert "share of the visitors" in html and 'id="by-visitor"' in html
    footer = html[html.index("<tfoot>"):html.index("</tfoot>")]
    assert '<td data-field="clicks" data-label="clicks">16</td>' in footer
    by_rule_html = render_html(build_report([str(log)], by=["rule"]))
    assert "<th>clicks</th>" in by_rule_html and "visitors" not in by_rule_html.split("<h2>By rule</h2>")[1]

    # A line that says the router issued its visitor but names none is not the router's (it always writes the id):
    # with no visitor to count it by, it is left out of the comparison as a visitor not issued.
    nameless = click(99, rule="pilot", action="web", status=302, arms=[{"rule": "pilot", "in": True}],
                     visitor_from="new")
    del nameless["visitor"]
    with_nameless = build_report([str(write_log(tmp_path / "nameless.log", [*visits(), nameless]))], by=["arm"])
    assert with_nameless["arms"] == report["arms"] and with_nameless["total"]["clicks"] == 17
    assert with_nameless["arms_left_out"] == {"click_id_seen_twice": 0, "visitor_not_issued": 1}
