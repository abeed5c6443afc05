"""The HTML readout's layout in headless Chromium: every column, the `reached` one included, in view at a laptop's
1280 px and a phone's 390 px, with nothing to scroll sideways; long rule ids whole; the all-clicks row's figures.

The readout is made from a realistic day: rule ids of 60 and more characters (what policy owners write), several
channels, apps and systems, two rollouts, and then scaled to a fleet's day (over a million clicks: the widest
counts and the one-decimal shares of large groups).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from router.policy.report import ACTIONS, OUTCOME_COLUMNS, Share, build_report
from router.policy.report_render import percent, render_html
from tests.test_report import click, outcome, write_log

pytest.importorskip("duckdb")

LANDING = "wechat-group-chat-spring-festival-landing-page-with-copy-button-2027"
PILOT = "wechat-group-chat-spring-festival-pilot-straight-to-the-web-page-v2"
BROWSERS = "phone-browsers-open-the-taobao-app-directly-through-universal-links"
MOMENTS = "wechat-moments-landing-page-for-the-spring-festival-campaign-2027-v3"
MOMENTS_PILOT = "wechat-moments-copy-first-experiment-for-the-spring-festival-campaign"
LONG_IDS = (LANDING, PILOT, BROWSERS, MOMENTS, MOMENTS_PILOT)
assert all(len(rule) >= 60 for rule in LONG_IDS)

# A laptop, a tablet on its side and a phone (an iPhone's CSS width; mobile emulation applies the page's viewport
# meta as a phone does, and widens the window to a page that doesn't fit: the test checks the width it got too).
WIDTHS = {
    "1280": {"viewport": {"width": 1280, "height": 800}},
    "1024": {"viewport": {"width": 1024, "height": 768}},
    "390": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True},
}

# Landing-page outcomes and how often a landing page sees each, as the benchmark's day has them.
_LANDING_EVENTS = (("shown", 0.92), ("copied", 0.22), ("app_left", 0.12), ("escaped", 0.06), ("web_tap", 0.13),
                   ("store_tap", 0.02))


def _landing_outcomes(n: int, chance: random.Random) -> list[object]:
    return [outcome(n, event) for event, rate in _LANDING_EVENTS if chance.random() < rate]


def realistic_day(clicks: int = 4000) -> list[object]:
    """Group chats in a rollout of the web page against the landing page, Moments in a second rollout, phone
    browsers sent to the app, ads, QQ and a few clicks of no known channel: every kind of row a readout has."""
    chance = random.Random(25)
    lines: list[object] = []
    for n in range(clicks):
        pick = chance.random()
        os = chance.choice(("android", "ios", "harmonyos"))
        if pick < 0.45:  # WeChat group chats: the pilot's rollout, half in
            inside = chance.random() < 0.5
            arms = [{"rule": PILOT, "in": inside}]
            if inside:
                lines.append(click(n, rule=PILOT, action="web", status=302, os=os, arms=arms))
            else:
                lines.append(click(n, rule=LANDING, action="landing", status=200, os=os, arms=arms))
                lines += _landing_outcomes(n, chance)
        elif pick < 0.6:  # Moments: a second rollout, a tenth in
            arms = [{"rule": MOMENTS_PILOT, "in": chance.random() < 0.1}]
            rule = MOMENTS_PILOT if arms[0]["in"] else MOMENTS
            lines.append(click(n, rule=rule, action="landing", status=200, channel="moments", os=os, arms=arms))
            lines += _landing_outcomes(n, chance)
        elif pick < 0.8:
            lines.append(click(n, rule=BROWSERS, action="app", status=302, channel="unknown", app="browser", os=os))
        elif pick < 0.9:
            lines.append(click(n, rule="wechat-ad-unidesk-app", action="app", status=302, channel="ad", os=os))
        elif pick < 0.97:
            lines.append(click(n, rule="qq-private-chat-landing", action="landing", status=200,
                               channel="private_chat", app="qq", os=os))
            lines += _landing_outcomes(n, chance)
        else:
            lines.append(click(n, rule="blocked-scrapers", action="block", status=403, channel="unknown",
                               app="weibo", os=os))
    return lines


def scaled(report: dict[str, Any], factor: int) -> dict[str, Any]:
    """The same readout with every count `factor` times larger (a fleet's day): shares and intervals made again
    by the report's own Share, so the cells carry the widest figures a real day prints."""
    def row(group: dict[str, Any]) -> dict[str, Any]:
        scaled_group = {**group, "clicks": group["clicks"] * factor,
                        "actions": {name: count * factor for name, count in group["actions"].items()}}
        if "visitors" in group:  # a group by rollout arm: its shares are of its visitors
            scaled_group["visitors"] = group["visitors"] * factor
        units = scaled_group.get("visitors", scaled_group["clicks"])
        scaled_group["outcomes"] = {name: Share(share["count"] * factor, units).as_json()
                                    for name, share in group["outcomes"].items()}
        return scaled_group

    arms = [{**arm, "in": {**arm["in"], **row(arm["in"])}, "out": {**arm["out"], **row(arm["out"])}}
            for arm in report["arms"]]
    return {**report, "total": row(report["total"]), "groups": [row(group) for group in report["groups"]],
            "arms": arms}


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_log(tmp_path_factory.mktemp("day") / "clicks.log", realistic_day())


# What overflows the window, as the browser laid the page out: the page's own scroll width, any element that
# reaches past either edge, and any element whose content is wider than its box (clipped or scrolled inside it:
# a column hidden behind an inner scrollbar is as unread as one past the window's edge).
_OVERFLOW = """() => {
    const width = window.innerWidth;
    const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (el.className && typeof el.className === 'string' ? '.' + el.className : '') +
        ' ' + (el.textContent || '').trim().slice(0, 40);
    const past = [], clipped = [];
    for (const el of document.body.querySelectorAll('*')) {
        const box = el.getBoundingClientRect();
        if (box.width > 0 && (box.right > width + 0.5 || box.left < -0.5)) past.push(describe(el));
        if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) clipped.push(describe(el));
    }
    return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, past, clipped};
}"""


def opened_within(context: Any, html: str, tmp_path: Path, width: str) -> Any:
    """The readout's page opened in `context`, after checking that nothing runs past the window or is cut."""
    page_file = tmp_path / "readout.html"
    page_file.write_text(html, encoding="utf-8")
    page = context.new_page()
    page.goto(page_file.as_uri())
    layout = page.evaluate(_OVERFLOW)
    assert layout["innerWidth"] == int(width)
    assert layout["scrollWidth"] <= layout["innerWidth"], layout
    assert layout["past"] == [] and layout["clipped"] == [], layout
    return page



@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize(("by", "factor"), [(("rule",), 1), (("rule",), 300), (("rule", "channel"), 300),
                                             (("arm",), 300), (("app", "os"), 300)],
                         ids=["rule", "rule-fleet", "rule-channel-fleet", "arm-fleet", "app-os-fleet"])
def test_the_readout_fits_the_window(browser: Any, day: Path, tmp_path: Path, width: str, by: tuple[str, ...],
                                     factor: int) -> None:
    report = scaled(build_report([str(day)], by=by), factor)
    assert len(report["groups"]) >= 4 and len(report["arms"]) == 2
    context = browser.new_context(**WIDTHS[width])
    try:
        page = opened_within(context, render_html(report), tmp_path, width)
        # Every row's `reached` share and its bar are laid out, inside the window.
        reached = page.locator('#groups [data-outcome="reached"]')
        assert reached.count() == len(report["groups"]) + 1  # and the all-clicks row's
        for n in range(reached.count()):
            box = reached.nth(n).bounding_box()
            assert box is not None and box["width"] > 0 and box["x"] + box["width"] <= int(width)
        # Every key and rollout rule is shown whole (no ellipsis, no cut), the ids of 60 characters and more too.
        shown = page.locator("body").inner_text()
        values = {str(value) for group in report["groups"] for value in group["key"].values()}
        values |= {arm["rule"] for arm in report["arms"]}
        assert len([value for value in values if value in LONG_IDS]) >= 2
        for value in values:
            assert value in shown
        page.screenshot(path=str(tmp_path / f"readout-{width}.png"), full_page=True)
    finally:
        context.close()


def test_the_all_clicks_row_carries_the_totals(browser: Any, day: Path, tmp_path: Path) -> None:
    """Below the groups, one row of every click: its figures are the JSON's total, made by the same functions."""
    report = build_report([str(day)], by=["rule"])
    total = report["total"]
    assert total["clicks"] == sum(group["clicks"] for group in report["groups"]) == 4000
    for name in OUTCOME_COLUMNS:
        count = sum(group["outcomes"][name]["count"] for group in report["groups"])
        assert total["outcomes"][name] == Share(count, 4000).as_json()
    page_file = tmp_path / "readout.html"
    page_file.write_text(render_html(report), encoding="utf-8")
    context = browser.new_context(**WIDTHS["390"])
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        row = page.locator("#groups tfoot tr")
        assert row.count() == 1
        assert "all clicks" in row.locator("th").inner_text()
        assert row.locator('[data-field="clicks"]').inner_text() == "4,000"
        for action in ACTIONS:
            cell = row.locator(f'[data-action="{action}"]')
            assert cell.inner_text().replace(",", "") == str(total["actions"][action])
        for name in OUTCOME_COLUMNS:
            cell = row.locator(f'[data-outcome="{name}"]')
            assert cell.get_attribute("data-count") == str(total["outcomes"][name]["count"])
            assert cell.inner_text() == percent(total["outcomes"][name])
        assert row.locator("svg.bar").get_attribute("aria-label") == percent(total["outcomes"]["reached"])
    finally:
        context.close()


def integrity_day() -> list[object]:
    """The realistic day, and what the readout says it left out: clicks in a rollout whose visitor ids the router
    did not issue, a click id on two different lines, /ad clicks whose replays could not be checked in full."""
    lines = realistic_day(1000)
    for n in range(5000, 5040):
        lines.append(click(n, rule=LANDING, action="landing", status=200, arms=[{"rule": PILOT, "in": False}],
                           visitor_from=None))
    twin = click(7, rule=LANDING, action="landing", status=200, arms=[{"rule": PILOT, "in": False}])
    twin["visitor"] = "someone-else"
    lines.append(twin)
    for n, check in enumerate(["local"] * 12 + ["restarted"] * 3, start=6000):
        ad = click(n, rule="wechat-ad-unidesk-app", action="app", status=302, channel="ad")
        ad["replay_check"] = check
        lines.append(ad)
    return lines


@pytest.mark.parametrize("width", list(WIDTHS))
def test_what_was_left_out_fits_the_window(browser: Any, tmp_path: Path, width: str) -> None:
    """The sentences of what was left out of the comparison, and of unchecked replays, wrap within the window."""
    log = write_log(tmp_path / "clicks.log", integrity_day())
    report = build_report([str(log)], by=["rule"])
    assert report["click_ids_seen_twice"] == 1 and report["arms_left_out"]["visitor_not_issued"] == 40
    context = browser.new_context(**WIDTHS[width])
    try:
        page = opened_within(context, render_html(report), tmp_path, width)
        for selector in ("#replay-checks", "#arms-left-out"):
            box = page.locator(selector).bounding_box()
            assert box is not None and box["width"] > 0 and box["x"] + box["width"] <= int(width)
        shown = page.locator("body").inner_text()
        assert "visitor not issued by the router: 40" in shown and "click ids seen twice: 1" in shown
        assert "Replays not checked: 12 ad clicks" in shown
    finally:
        context.close()
