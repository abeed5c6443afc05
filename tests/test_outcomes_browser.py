"""Outcomes from real landing pages in headless Chromium, into the router's click stream and the readout.

A real router (`python -m router serve`) answers every click with its landing page; Chromium copies, opens
the app (the page then goes hidden), falls back to the web, taps the web link, and opens a WeChat page's own
address in Safari (the second jump). What the router wrote is then read back as its click stream and by
`python -m router report`, whose HTML page Chromium opens to check its numbers against the JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from router.policy.report import build_report
from router.policy.report_render import percent, render_html
from tests import uas
from tests.servers import Server
from tests.test_landing_browser import (
    ANDROID,
    APP_OPENS,
    ARTIFACTS,
    IPHONE,
    ITEM,
    MOBILE,
    fallback_state,
    visit,
    wait_until,
)

DELAY_MS = 800


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A router that answers every click with the landing page (Android 1:1 chats try the plain scheme)."""
    rules = tmp_path_factory.mktemp("rules")
    (rules / "landing.yaml").write_text(
        "rules:\n"
        "  - {id: android-scheme, when: {os: android, channel: private_chat}, then: {action: landing, via: scheme}}\n"
        "default: landing\n"
    )
    running = Server("--rules", str(rules), env={"ROUTER_FALLBACK_DELAY_MS": str(DELAY_MS)}).wait_ready()
    try:
        yield running
    finally:
        running.stop()


def stream(server: Server) -> list[dict[str, object]]:
    lines = []
    for text in server.output().splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            if line.get("type") in ("click", "outcome"):
                lines.append(line)
    return lines


def click_of(server: Server, ua: str) -> str:
    """The request id of the (latest) click made with `ua`."""
    found = wait_until_lines(server, lambda lines: [ln for ln in lines if ln["type"] == "click" and ln["ua"] == ua],
                             what=f"a click line for {ua[:40]}")
    return str(found[-1]["request_id"])


def wait_until_lines(server: Server, pick, what: str, seconds: float = 15):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        found = pick(stream(server))
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in the click stream within {seconds} s")
        time.sleep(0.05)


def events_of(server: Server, click: str, expected: set[str]) -> set[str]:
    """The outcome events recorded for `click`, once `expected` are all there."""
    def pick(lines: list[dict[str, object]]) -> set[str]:
        events = {str(ln["event"]) for ln in lines if ln["type"] == "outcome" and ln["click"] == click}
        return events if expected <= events else set()

    return wait_until_lines(server, pick, what=f"outcomes {sorted(expected)} of {click}")  # type: ignore[no-any-return]


def test_what_people_do_on_real_pages_lands_in_the_stream_once_each(browser: object, router: Server) -> None:
    base = router.base
    # WeChat on iPhone, group chat: the guide, and the person copies the code.
    wechat_ua = uas.WECHAT_IOS.replace("NetType/WIFI", "NetType/4G")
    seen = visit(browser, base, ITEM, wechat_ua, IPHONE, extra="&from=groupmessage")
    seen.page.get_by_role("button", name="复制").click()  # type: ignore[attr-defined]
    seen.page.wait_for_selector("#copy-status:not(:empty)")  # type: ignore[attr-defined]
    seen.page.get_by_role("button", name="复制").click()  # copied twice: one `copied` counts  # type: ignore[attr-defined]
    copier = click_of(router, wechat_ua)
    assert events_of(router, copier, {"shown", "copied"}) == {"shown", "copied"}

    # Safari on iPhone: the page tries the app and goes hidden (the app came to the front).
    safari_ua = uas.SAFARI_IOS.replace("Mobile/15E148", "Mobile/15E149")
    seen = visit(browser, base, ITEM, safari_ua, IPHONE, init_script=APP_OPENS)
    wait_until(seen.page, lambda: fallback_state(seen.page) == "cancelled", what="the page to go hidden")
    opener = click_of(router, safari_ua)
    assert events_of(router, opener, {"app_attempt", "app_left"}) == {"shown", "app_attempt", "app_left"}

    # Chrome on Android with the plain scheme: no app, so after the delay the page falls back to the web.
    chrome_ua = uas.CHROME_ANDROID.replace("Mobile Safari", "Mobile  Safari")
    seen = visit(browser, base, ITEM, chrome_ua, ANDROID, extra="&ch=private_chat")
    wait_until(seen.page, lambda: seen.page.url.startswith(MOBILE), what="the web fallback")  # type: ignore[attr-defined]
    fallen = click_of(router, chrome_ua)
    assert events_of(router, fallen, {"fallback_web"}) == {"shown", "app_attempt", "fallback_web"}

    # WeChat on Android: the person taps the web link.
    tapper_ua = uas.WECHAT_ANDROID.replace("NetType/WIFI", "NetType/5G")
    seen = visit(browser, base, ITEM, tapper_ua, ANDROID, extra="&from=singlemessage")
    seen.page.locator("#web").click()  # type: ignore[attr-defined]
    tapper = click_of(router, tapper_ua)
    assert events_of(router, tapper, {"web_tap"}) == {"shown", "web_tap"}

    outcomes = [ln for ln in stream(router) if ln["type"] == "outcome"]
    pairs = [(ln["click"], ln["event"]) for ln in outcomes]
    assert len(pairs) == len(set(pairs))  # one of each event per click, though some were sent twice

    # The readout of what the router wrote, as JSON and as the HTML page a policy owner opens.
    log = ARTIFACTS / "outcomes-stream.log"
    ARTIFACTS.mkdir(exist_ok=True)
    log.write_text(router.output(), encoding="utf-8")
    report = build_report([str(log)], by=["app", "os"])
    groups = {(g["key"]["app"], g["key"]["os"]): g for g in report["groups"]}
    assert groups[("wechat", "ios")]["outcomes"]["copied"]["count"] >= 1
    assert groups[("browser", "ios")]["outcomes"]["app_left"]["count"] >= 1
    assert groups[("browser", "android")]["outcomes"]["web"]["count"] >= 1
    assert groups[("wechat", "android")]["outcomes"]["web"]["count"] >= 1
    check_html_against_json(browser, report, ARTIFACTS / "outcomes-report.html")


def test_a_browser_without_send_beacon_reports_through_fetch_with_its_cookie(browser: object, router: Server) -> None:
    """Where sendBeacon is missing, the page's fetch fallback sends the beacon with the page's cookie (the
    router counts a beacon only with the visitor cookie its token was made for)."""
    ua = uas.WECHAT_IOS.replace("NetType/WIFI", "NetType/3G")
    visit(browser, router.base, ITEM, ua, IPHONE, extra="&from=groupmessage",
          init_script="Object.defineProperty(navigator, 'sendBeacon', {value: undefined});")
    assert events_of(router, click_of(router, ua), {"shown"}) == {"shown"}


def check_html_against_json(browser: object, report: dict, path: Path) -> None:  # type: ignore[type-arg]
    path.write_text(render_html(report), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1200, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(path.as_uri())
    rows = page.locator("#groups tbody tr")
    assert rows.count() == len(report["groups"])
    for n, group in enumerate(report["groups"]):
        row = rows.nth(n)
        assert row.locator('[data-field="clicks"]').inner_text().replace(",", "") == str(group["clicks"])
        for name, share in group["outcomes"].items():
            cell = row.locator(f'[data-outcome="{name}"]')
            assert cell.get_attribute("data-count") == str(share["count"])
            assert cell.inner_text() == percent(share)
        for action, count in group["actions"].items():
            assert row.locator(f'[data-action="{action}"]').inner_text().replace(",", "") == str(count)
    page.screenshot(path=str(path.with_suffix(".png")), full_page=True)
    context.close()


def test_the_second_jump_is_recorded_across_two_browsers(browser: object, router: Server) -> None:
    """WeChat's page, opened again in Safari (what "open in Safari" does): escaped, for the WeChat click."""
    wechat_ua = uas.WECHAT_IOS.replace("NetType/WIFI", "NetType/5G")
    first = visit(browser, router.base, ITEM, wechat_ua, IPHONE, extra="&from=groupmessage")
    wait_until(first.page, lambda: "ct=" in first.page.url, what="the token in the page's address")  # type: ignore[attr-defined]
    address = first.page.url  # type: ignore[attr-defined]
    query = parse_qs(urlsplit(address).query)
    assert query["url"] == [ITEM] and query["from"] == ["groupmessage"] and len(query["ct"]) == 1
    wechat_click = click_of(router, wechat_ua)

    safari_ua = uas.SAFARI_IOS.replace("Mobile/15E148", "Mobile/15E150")
    context = browser.new_context(user_agent=safari_ua, **IPHONE)  # type: ignore[attr-defined]
    # Nothing leaves the machine: the page's fallback to the web gets a stub, as in visit().
    context.route("**/*", lambda handled: handled.continue_() if urlsplit(handled.request.url).hostname == "127.0.0.1"
                  else handled.fulfill(status=200, content_type="text/html", body="outside"))
    page = context.new_page()
    page.goto(address, wait_until="commit")
    jumped = wait_until_lines(router, lambda lines: [ln for ln in lines if ln["type"] == "outcome"
                                                     and ln["event"] == "escaped" and ln["click"] == wechat_click],
                              what="the escaped outcome")
    assert jumped[0]["app"] == "wechat" and jumped[0]["to_app"] == "browser"
    safari_click = [ln for ln in stream(router) if ln["type"] == "click" and ln["ua"] == safari_ua][-1]
    assert safari_click["escaped_from"] == wechat_click and jumped[0]["request_id"] == safari_click["request_id"]
    # The Safari page, with the WeChat page's token in its address, gets a token of its own.
    wait_until(page, lambda: "ct=" in page.url and page.url != address, what="Safari's own token")
    assert page.url.count("ct=") == 1
    context.close()
