"""The landing page in a real headless Chromium (Debian's `chromium`), driven by Playwright.

The router runs as a real server on 127.0.0.1. Every request the page makes to anywhere else is
intercepted and answered with a stub, so nothing ever leaves the machine; the tests assert which of
those the page tried. Screenshots of each case go to test-artifacts/.

Chromium is found as `chromium` (or $ROUTER_TEST_CHROMIUM; the `browser` fixture is in tests/conftest.py).
Without it the tests skip, except in CI (CI=true), where .ci/run installs it and a missing browser is a
failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tests import uas
from tests.servers import Server

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
ITEM = "https://item.taobao.com/item.htm?id=123456"
MOBILE = "https://h5.m.taobao.com/awp/core/detail.htm?id=123456"
SHARE = "【淘宝】https://m.tb.cn/h.gYx1a2b?tk=AbCd1234 CZ3457 「夏季新款 纯棉短袖T恤」 点击链接直接打开"
DELAY_MS = 800
IPHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
ANDROID = {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def landing_server(tmp_path_factory: pytest.TempPathFactory, delay_ms: int) -> Iterator[str]:
    """A router whose rules answer `landing` to every client, so every client sees the page."""
    rules = tmp_path_factory.mktemp("rules")
    (rules / "landing.yaml").write_text(
        "rules:\n"
        "  - {id: moments, when: {channel: moments}, then: {action: landing, page: moments}}\n"
        # A rule may make the page try the plain scheme on Android, where no browser falls back by itself.
        "  - {id: android-scheme, when: {os: android, channel: private_chat}, then: {action: landing, via: scheme}}\n"
        "default: landing\n"
    )
    running = Server("--rules", str(rules), env={"ROUTER_FALLBACK_DELAY_MS": str(delay_ms)}).wait_ready()
    try:
        yield running.base
    finally:
        running.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from landing_server(tmp_path_factory, DELAY_MS)


@pytest.fixture(scope="module")
def patient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The longest fallback delay, for tests that stay on a phone browser's page to use it."""
    yield from landing_server(tmp_path_factory, 10_000)


@dataclass
class Visit:
    """A page in a fresh browser context, with everything it tried recorded."""

    page: object
    requests: list[str] = field(default_factory=list)
    outside: list[tuple[float, str]] = field(default_factory=list)  # (seconds since open, url), intercepted
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    opened_at: float = 0.0


# Stands in for the app coming to the front: soon after the page tried it (on load), the page goes hidden.
APP_OPENS = """
window.addEventListener('load', () => setTimeout(() => {
  Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
  Object.defineProperty(document, 'hidden', {value: true, configurable: true});
  document.dispatchEvent(new Event('visibilitychange'));
}, 100));
"""


def visit(browser: object, server: str, url: str, ua: str, device: dict, *, extra: str = "",  # type: ignore[type-arg]
          locale: str = "zh-CN", javascript: bool = True, init_script: str = "") -> Visit:
    context = browser.new_context(  # type: ignore[attr-defined]
        user_agent=ua, locale=locale, java_script_enabled=javascript, **device,
        extra_http_headers={"Accept-Language": "en" if locale.startswith("en") else "zh-CN,zh;q=0.9"},
    )
    if init_script:
        context.add_init_script(init_script)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page = context.new_page()
    seen = Visit(page)

    def route(handled: object) -> None:
        request_url = handled.request.url  # type: ignore[attr-defined]
        parts = urlsplit(request_url)
        # Local requests go through; app links (taobao://, intent://) go to the browser, which has no
        # app for them: exactly what happens on a phone without the app.
        if parts.hostname == "127.0.0.1" or parts.scheme not in ("http", "https"):
            handled.continue_()  # type: ignore[attr-defined]
            return
        seen.outside.append((time.monotonic() - seen.opened_at, request_url))
        handled.fulfill(status=200, content_type="text/html", body="<title>stub</title>outside")  # type: ignore[attr-defined]

    context.route("**/*", route)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("console", lambda message: message.type == "error" and seen.console_errors.append(message.text))
    page.on("pageerror", lambda error: seen.console_errors.append(str(error)))

    def dismiss(dialog: object) -> None:
        seen.dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", dismiss)
    seen.opened_at = time.monotonic()
    # Not "load" (nor Playwright's load-state waits): a phone page starts navigating to the app link at
    # once, and that navigation, which no app answers here, would hold them until the fallback.
    page.goto(f"{server}/go?url={quote(url, safe='')}{extra}", wait_until="commit")
    wait_until(page, lambda: _ready_state(page) == "complete", what="the page to load")
    return seen


def _ready_state(page: object) -> str:
    try:
        return str(page.evaluate("document.readyState"))  # type: ignore[attr-defined]
    except Exception:  # the context was replaced by a navigation (the fallback): ask again
        return ""


def wait_until(page: object, condition: Callable[[], bool], *, what: str, seconds: float = 15) -> None:
    """Poll the page's own state (or what the test recorded of it) until `condition` holds.

    Never Playwright's navigation waits (wait_for_url, load states): the page's attempt to open the app
    is a navigation no app answers here, and its abort (net::ERR_ABORTED) fails any navigation wait that
    happens to be pending, which under load is a matter of timing. wait_for_timeout, unlike time.sleep,
    lets Playwright deliver the events (requests, routes) the condition may read. The limit is generous:
    a busy machine is slow, and a condition that holds ends the wait at once.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:g} s for {what}; the page is at {page.url}")  # type: ignore[attr-defined]
        page.wait_for_timeout(25)  # type: ignore[attr-defined]


def app_attempts(seen: Visit) -> list[str]:
    """The app links the page navigated to (the browser reports them as requests it can't serve)."""
    return [url for url in seen.requests if url.startswith(("intent:", "taobao:", "tbopen:", "tmall:"))]


def screenshot(seen: Visit, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    seen.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_wechat_iphone_guide_and_copy(browser: object, server: str) -> None:
    """WeChat on iPhone: the guide and its pointer show, copy puts the token on the clipboard, nothing leaves."""
    seen = visit(browser, server, SHARE, uas.WECHAT_IOS, IPHONE, extra="&from=groupmessage")
    page = seen.page
    assert page.locator(".guide").is_visible()  # type: ignore[attr-defined]
    assert "在 Safari 中打开" in page.locator(".guide").inner_text()  # type: ignore[attr-defined]
    pointer = page.locator(".pointer").bounding_box()  # type: ignore[attr-defined]
    assert pointer["y"] < 40 and pointer["x"] + pointer["width"] > 390 - 40  # at the ··· menu, top right
    screenshot(seen, "wechat-iphone-group-chat")
    page.get_by_role("button", name="复制").click()  # type: ignore[attr-defined]
    page.wait_for_selector("#copy-status:not(:empty)")  # type: ignore[attr-defined]
    assert page.locator("#copy-status").inner_text() == "已复制，打开淘宝 App 即可查看"  # type: ignore[attr-defined]
    clipboard = page.evaluate("navigator.clipboard.readText()")  # type: ignore[attr-defined]
    assert clipboard == "￥AbCd1234￥ https://m.tb.cn/h.gYx1a2b?tk=AbCd1234"
    screenshot(seen, "wechat-iphone-copied")
    assert seen.console_errors == []
    assert seen.outside == []
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in seen.requests), seen.requests
    assert page.url.startswith(server)  # type: ignore[attr-defined]


def test_wechat_moments_copies_the_plain_link(browser: object, server: str) -> None:
    """Moments: the copied text is the link, never a share code."""
    seen = visit(browser, server, SHARE, uas.WECHAT_IOS, IPHONE, extra="&from=timeline")
    seen.page.get_by_role("button", name="复制").click()  # type: ignore[attr-defined]
    seen.page.wait_for_selector("#copy-status:not(:empty)")  # type: ignore[attr-defined]
    assert seen.page.evaluate("navigator.clipboard.readText()") == "https://m.tb.cn/h.gYx1a2b?tk=AbCd1234"  # type: ignore[attr-defined]
    screenshot(seen, "wechat-iphone-moments")
    assert seen.console_errors == [] and seen.outside == []


def test_english_page(browser: object, server: str) -> None:
    """An English-preferring WeChat user gets the English guide."""
    seen = visit(browser, server, ITEM, uas.WECHAT_ANDROID, ANDROID, locale="en-US", extra="&from=groupmessage")
    assert "Open in Browser" in seen.page.locator(".guide").inner_text()  # type: ignore[attr-defined]
    screenshot(seen, "wechat-android-english")
    assert seen.console_errors == [] and seen.outside == []


def test_android_chrome_tries_the_app_then_the_web(browser: object, server: str) -> None:
    """Android Chrome: the app is tried once through an intent; with no app there, the web page opens.

    Chromium, like Chrome on Android, follows the intent's own S.browser_fallback_url when no app takes
    it, so here the web page comes from the intent itself; the page's timer is the backstop for
    browsers that ignore that fallback, and the next tests run it with the plain app scheme.
    """
    seen = visit(browser, server, ITEM, uas.CHROME_ANDROID, ANDROID, extra="&gdt_vid=wx0abc")
    page = seen.page
    wait_until(page, lambda: page.url.startswith(MOBILE), what="the web page")  # type: ignore[attr-defined]
    assert page.url == f"{MOBILE}&gdt_vid=wx0abc"  # type: ignore[attr-defined]
    # Requests are reported without their fragment (#Intent;…;end): the intent's target is what counts.
    assert app_attempts(seen) == ["intent://item.taobao.com/item.htm?id=123456&gdt_vid=wx0abc"]
    # The intent's fallback and the page's backstop may both start it; nowhere else is ever asked for.
    assert {url for _, url in seen.outside} == {f"{MOBILE}&gdt_vid=wx0abc"}


PHONES = [
    pytest.param(uas.SAFARI_IOS, IPHONE, "", id="iphone-safari"),
    pytest.param(uas.CHROME_ANDROID, ANDROID, "&ch=private_chat", id="android-chrome-scheme"),
]


@pytest.mark.parametrize(("ua", "device", "extra"), PHONES)
def test_phone_falls_back_only_after_the_delay_while_visible(
    browser: object, server: str, ua: str, device: dict, extra: str  # type: ignore[type-arg]
) -> None:
    """The app scheme is tried once; the page is still visible after the delay, so it opens the web page."""
    seen = visit(browser, server, ITEM, ua, device, extra=f"{extra}&gdt_vid=wx0abc")
    page = seen.page
    wait_until(page, lambda: page.url == f"{MOBILE}&gdt_vid=wx0abc", what="the web fallback")  # type: ignore[attr-defined]
    assert app_attempts(seen) == ["taobao://item.taobao.com/item.htm?id=123456&gdt_vid=wx0abc"]
    fallbacks = [(at, url) for at, url in seen.outside if url.startswith(MOBILE)]
    assert len(fallbacks) == 1
    assert fallbacks[0][0] >= DELAY_MS / 1000  # not before the delay: the app had its chance


@pytest.mark.parametrize(("ua", "device", "extra"), PHONES)
def test_phone_no_fallback_when_app_opened(
    browser: object, server: str, ua: str, device: dict, extra: str  # type: ignore[type-arg]
) -> None:
    """When the page goes hidden (the app came to the front), the web fallback never fires."""
    seen = visit(browser, server, ITEM, ua, device, extra=extra, init_script=APP_OPENS)
    page = seen.page
    page.wait_for_timeout(DELAY_MS * 2.5)  # type: ignore[attr-defined]
    assert fallback_state(page) == "cancelled"
    assert len(app_attempts(seen)) == 1
    # Coming back from the app makes the page visible again: still no late fallback.
    page.evaluate(  # type: ignore[attr-defined]
        """() => {
          Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});
          Object.defineProperty(document, 'hidden', {value: false, configurable: true});
          document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    page.wait_for_timeout(DELAY_MS * 1.5)  # type: ignore[attr-defined]
    assert page.url.startswith(server)  # type: ignore[attr-defined]
    assert [url for _, url in seen.outside if url.startswith(MOBILE)] == []


def test_open_button_repeats_the_attempt(browser: object, patient_server: str) -> None:
    """The big Open button tries the app again on tap."""
    seen = visit(browser, patient_server, ITEM, uas.SAFARI_IOS, IPHONE)
    page = seen.page
    screenshot(seen, "iphone-safari-trying-app")
    button = page.get_by_role("link", name="打开淘宝 App")  # type: ignore[attr-defined]
    assert button.get_attribute("href") == "taobao://item.taobao.com/item.htm?id=123456"
    button.click()
    page.wait_for_selector('body[data-app-attempts="2"]', state="attached")  # type: ignore[attr-defined]
    page.wait_for_timeout(200)  # type: ignore[attr-defined]
    assert len(app_attempts(seen)) == 2


AFFILIATE = "https://s.click.taobao.com/t?e=1"  # a link kept as it is: its query reaches the page


@pytest.mark.parametrize(
    ("name", "url", "extra", "ua", "device"),
    [
        ("query-script-wechat", AFFILIATE + "&x=</script><script>window.__pwned=1;alert(1)</script>", "",
         uas.WECHAT_IOS, IPHONE),
        ("query-attr-android", AFFILIATE + '&x="><img/src=x/onerror="window.__pwned=1;alert(2)">', "",
         uas.CHROME_ANDROID, ANDROID),
        ("title-wechat", "【淘宝】https://m.tb.cn/h.gYx1a2b?tk=AbCd1234 「<img src=x onerror=alert(3)>」 打开", "",
         uas.WECHAT_IOS, IPHONE),
        ("click-id-android", ITEM, "&gdt_vid=" + quote("'\"></script><script>window.__pwned=1;alert(4)</script>"),
         uas.SAFARI_IOS, IPHONE),
        ("json-break-wechat", AFFILIATE + "&x=\u2028</script><script>window.__pwned=1</script>", "",
         uas.WECHAT_ANDROID, ANDROID),
    ],
)
def test_injection_never_executes(
    browser: object, patient_server: str, name: str, url: str, extra: str, ua: str, device: dict  # type: ignore[type-arg]
) -> None:
    """Script payloads in the destination's query, the share title or a click id never run."""
    seen = visit(browser, patient_server, url, ua, device, extra=f"&from=groupmessage{extra}")
    page = seen.page
    page.wait_for_timeout(300)  # type: ignore[attr-defined]
    assert page.url.startswith(patient_server)  # type: ignore[attr-defined]
    assert page.evaluate("typeof window.__pwned") == "undefined"  # type: ignore[attr-defined]
    assert page.locator("main").inner_text()  # type: ignore[attr-defined]  # the page rendered
    screenshot(seen, f"injection-{name}")
    assert seen.dialogs == []


def test_without_javascript(browser: object, server: str) -> None:
    """JavaScript off: the web link and the token are plain, selectable content; no dead copy button."""
    seen = visit(browser, server, SHARE, uas.WECHAT_IOS, IPHONE, extra="&from=groupmessage", javascript=False)
    page = seen.page
    assert page.locator("#copy-text").input_value() == "￥AbCd1234￥ https://m.tb.cn/h.gYx1a2b?tk=AbCd1234"  # type: ignore[attr-defined]
    assert page.locator("#web").get_attribute("href") == "https://m.tb.cn/h.gYx1a2b?tk=AbCd1234"  # type: ignore[attr-defined]
    assert not page.locator("#copy").is_visible()  # type: ignore[attr-defined]
    screenshot(seen, "wechat-iphone-no-javascript")


def test_keyboard_order_and_names(browser: object, patient_server: str) -> None:
    """Tab goes through the page in reading order; every control has a name."""
    seen = visit(browser, patient_server, ITEM, uas.SAFARI_IOS, IPHONE)
    page = seen.page
    order = []
    for _ in range(3):
        page.keyboard.press("Tab")  # type: ignore[attr-defined]
        order.append(page.evaluate("document.activeElement.id"))  # type: ignore[attr-defined]
    assert order == ["open-app", "web", "download"]
    for control in page.locator("a, button").all():  # type: ignore[attr-defined]
        assert control.inner_text().strip()


# Stands in for an "Open in 'Taobao'?" prompt: the page stays visible but loses focus to it.
PROMPT_SHOWN = """
window.addEventListener('load', () => setTimeout(() => window.dispatchEvent(new Event('blur')), 100));
"""


def test_phone_no_fallback_behind_an_open_app_prompt(browser: object, server: str) -> None:
    """A confirm prompt keeps the page visible but takes focus: the fallback must not fire behind it."""
    seen = visit(browser, server, ITEM, uas.SAFARI_IOS, IPHONE, init_script=PROMPT_SHOWN)
    seen.page.wait_for_timeout(DELAY_MS * 2.5)  # type: ignore[attr-defined]
    assert fallback_state(seen.page) == "cancelled"
    assert len(app_attempts(seen)) == 1
    assert seen.page.url.startswith(server)  # type: ignore[attr-defined]
    assert seen.outside == []


def fallback_state(page: object) -> str | None:
    """What the page says of its fallback timer (<body data-fallback>): armed, cancelled or fired."""
    try:
        return page.locator("body").get_attribute("data-fallback", timeout=1000)  # type: ignore[attr-defined, no-any-return]
    except Exception:  # the page has navigated away
        return None


def test_phone_no_fallback_once_the_person_uses_the_page(browser: object, patient_server: str) -> None:
    """A tap on the page before the delay is over means someone is reading it: the timer is cancelled.

    The page's own state says so at once; with the longest delay the tap is surely within it, however
    busy the machine, so the test never depends on how fast the tap arrives.
    """
    seen = visit(browser, patient_server, ITEM, uas.SAFARI_IOS, IPHONE)
    page = seen.page
    wait_until(page, lambda: fallback_state(page) == "armed", what="the fallback timer to start")
    page.mouse.click(200, 700)  # type: ignore[attr-defined]  # an empty spot, not a link
    wait_until(page, lambda: fallback_state(page) != "armed", what="the tap to reach the page")
    assert fallback_state(page) == "cancelled"
    assert page.url.startswith(patient_server)  # type: ignore[attr-defined]
    assert seen.outside == []


CLIPBOARD_REJECTS = "navigator.clipboard.writeText = () => Promise.reject(new Error('denied'));"
CLIPBOARD_HANGS = "navigator.clipboard.writeText = () => new Promise(() => {});"


def test_copy_falls_back_when_the_clipboard_api_refuses(browser: object, server: str) -> None:
    """A webview whose Clipboard API refuses still copies, through the selection."""
    seen = visit(browser, server, SHARE, uas.WECHAT_ANDROID, ANDROID, extra="&from=groupmessage",
                 init_script=CLIPBOARD_REJECTS)
    page = seen.page
    page.get_by_role("button", name="复制").click()  # type: ignore[attr-defined]
    page.wait_for_selector("#copy-status:not(:empty)")  # type: ignore[attr-defined]
    assert page.locator("#copy-status").inner_text() == "已复制，打开淘宝 App 即可查看"  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.id") == "copy"  # type: ignore[attr-defined]  # focus stays


def test_copy_says_so_when_the_clipboard_never_answers(browser: object, server: str) -> None:
    """A Clipboard API that never settles: after a while the page says to copy by hand, text selected."""
    seen = visit(browser, server, SHARE, uas.WECHAT_ANDROID, ANDROID, extra="&from=groupmessage",
                 init_script=CLIPBOARD_HANGS)
    page = seen.page
    page.get_by_role("button", name="复制").click()  # type: ignore[attr-defined]
    page.wait_for_selector("#copy-status.failed", timeout=5000)  # type: ignore[attr-defined]
    assert page.locator("#copy-status").inner_text() == "复制失败，请长按上面的内容手动复制"  # type: ignore[attr-defined]


def test_the_menu_items_words_stay_on_one_line_on_an_iphone(browser: object, server: str) -> None:
    """「在 Safari 中打开」 on a 390 px iPhone: one line box, never split where a person reads two items."""
    seen = visit(browser, server, ITEM, uas.WECHAT_IOS, IPHONE, extra="&from=groupmessage")
    label = seen.page.locator(".guide .label")  # type: ignore[attr-defined]
    assert label.inner_text() == "在 Safari 中打开"
    assert seen.page.evaluate("document.querySelector('.guide .label').getClientRects().length") == 1  # type: ignore[attr-defined]
