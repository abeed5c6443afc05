"""A short link's landing page in a real headless Chromium (Debian's `chromium`, driven by Playwright; the
`browser` fixture is in tests/conftest.py): what a reader and a link preview see of the link's title,
description and image, and that a title is text, never markup.

The router is a real server on 127.0.0.1 with its links in an SQLite file in tmp_path, made through its own
JSON API. WeChat on an iPhone, opened from Moments (`?from=timeline`), gets the landing page under the shipped
rules (wechat-moments-unknown-landing). Every request the page makes anywhere but the router is recorded and
answered with a stub: nothing leaves the machine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from router.serve.link_store import LinkStore, upgrade
from tests import uas
from tests.servers import Server

PUBLIC = "https://go.example.com"
KEYS_TEXT = "k2:second-secret-0123456789,k1:first-secret-0123456789"
ITEM = "https://item.taobao.com/item.htm?id=606060"
IMAGE = "https://img.example.com/a.png"
IPHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
# A title that would run script wherever it is not escaped: in the page's text, in a meta tag's attribute.
HOSTILE_TITLE = "<script>window.__ranTitle = 1; alert('title')</script>\"><img src=x onerror=\"window.__ranImg=1\">"


@dataclass
class Router:
    base: str
    auth: dict[str, str]


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    database = f"sqlite:///{tmp_path_factory.mktemp('links')}/links.db"
    upgrade(database)
    with LinkStore(database) as store:
        text, _ = store.create_token("admin")
    running = Server(env={"ROUTER_DATABASE_URL": database, "ROUTER_PUBLIC_URL": PUBLIC, "ROUTER_REDIS_URL": "",
                          "ROUTER_SIGNING_KEYS": KEYS_TEXT}).wait_ready()
    try:
        yield Router(running.base, {"Authorization": f"Bearer {text}"})
    finally:
        running.stop()


def create(router: Router, **fields: Any) -> str:
    response = httpx.post(f"{router.base}/api/links", json={"url": ITEM, **fields}, headers=router.auth, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


@dataclass
class Visit:
    page: Any
    outside: list[str] = field(default_factory=list)  # requests the page made beyond the router, stubbed
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def open_short_link(browser: Any, router: Router, code: str) -> Visit:
    """/s/<code>?from=timeline in a fresh context, as WeChat on an iPhone; returns once the page has loaded."""
    context = browser.new_context(user_agent=uas.WECHAT_IOS, locale="zh-CN", **IPHONE,
                                  extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    page = context.new_page()
    seen = Visit(page)

    def route(handled: Any) -> None:
        if urlsplit(handled.request.url).hostname == "127.0.0.1":
            handled.continue_()
            return
        seen.outside.append(handled.request.url)
        handled.fulfill(status=204, body="")

    def dismiss(dialog: Any) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    context.route("**/*", route)
    page.on("dialog", dismiss)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    response = page.goto(f"{router.base}/s/{code}?from=timeline", wait_until="load")
    assert response is not None and response.status == 200, response and response.status
    assert response.headers.get("location") is None
    deadline = time.monotonic() + 15
    while page.evaluate("document.readyState") != "complete":
        assert time.monotonic() < deadline, "the page did not finish loading"
        page.wait_for_timeout(25)
    return seen


def meta(page: Any, selector: str) -> str | None:
    """The content of the one meta tag `selector` names (None when it has none)."""
    tags = page.locator(f"head meta[{selector}]")
    assert tags.count() == 1, f"{tags.count()} meta tags match {selector}"
    return tags.get_attribute("content")


def test_the_landing_page_shows_the_links_title_and_its_preview_tags(browser: Any, router: Router) -> None:
    code = create(router, title="春季大促", description="全场五折，仅限三天", image=IMAGE, tags=["spring"])
    seen = open_short_link(browser, router, code)
    page = seen.page
    try:
        assert page.title() == "春季大促"
        assert page.locator("h1").inner_text() == "春季大促"
        assert "全场五折，仅限三天" in page.locator("body").inner_text()
        assert meta(page, 'property="og:title"') == "春季大促"
        assert meta(page, 'property="og:description"') == "全场五折，仅限三天"
        assert meta(page, 'property="og:image"') == IMAGE
        assert meta(page, 'property="og:url"') == f"{PUBLIC}/s/{code}"
        assert meta(page, 'name="twitter:card"') == "summary_large_image"
        assert meta(page, 'name="twitter:title"') == "春季大促"
        # The Moments page: the way out of WeChat is its menu, the link to copy is the item's web page.
        assert page.locator(".guide").is_visible()
        assert seen.outside == [] and seen.errors == [] and seen.dialogs == []
    finally:
        page.context.close()


def test_a_title_is_text_not_markup(browser: Any, router: Router) -> None:
    code = create(router, title=HOSTILE_TITLE, description="<b>bold?</b>")
    seen = open_short_link(browser, router, code)
    page = seen.page
    try:
        assert page.title() == HOSTILE_TITLE
        assert page.locator("h1").inner_text() == HOSTILE_TITLE
        assert meta(page, 'property="og:title"') == HOSTILE_TITLE
        assert meta(page, 'name="twitter:title"') == HOSTILE_TITLE
        assert meta(page, 'property="og:description"') == "<b>bold?</b>"
        assert page.locator('head meta[property="og:image"]').count() == 0  # no image given, none shown
        assert page.locator("h1 script, h1 img, head img, body b").count() == 0
        assert page.evaluate("[window.__ranTitle, window.__ranImg]") == [None, None]
        assert seen.dialogs == [] and seen.outside == [] and seen.errors == []
        assert meta(page, 'name="twitter:card"') == "summary"  # no image, the small card
    finally:
        page.context.close()


def test_the_page_as_served_escapes_the_title(router: Router) -> None:
    """The bytes themselves, not only what Chromium made of them: no `<script>` of the title's."""
    code = create(router, title=HOSTILE_TITLE)
    page = httpx.get(f"{router.base}/s/{code}?from=timeline", headers={"user-agent": uas.WECHAT_IOS})
    assert page.status_code == 200
    assert "<script>window.__ranTitle" not in page.text and "onerror=\"window" not in page.text
    assert "&lt;script&gt;window.__ranTitle" in page.text
