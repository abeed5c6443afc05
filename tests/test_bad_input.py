"""Bad input gets a clear 4xx and never a Location outside the allowlist, never a 5xx."""

from __future__ import annotations

import html
from urllib.parse import quote, urlsplit

import pytest
from starlette.testclient import TestClient

from router.decision.links import DEFAULT_ALLOWED_HOSTS, host_allowed
from tests import uas

ITEM = "https://item.taobao.com/item.htm?id=123456"


def get(client: TestClient, query: str, ua: str = uas.SAFARI_IOS):  # type: ignore[no-untyped-def]
    return client.get(f"/go?{query}", headers={"user-agent": ua})


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("", "missing &#x27;url&#x27; parameter"),
        ("url=", "missing &#x27;url&#x27; parameter"),
        ("url=hello%20world", ""),
        ("url=" + quote("https://taobao.com.evil.com/item.htm?id=1", safe=""), "not allowed"),
        ("url=" + quote("https://evil.com/?taobao.com", safe=""), "not allowed"),
        ("url=" + quote("https://evil.com#item.taobao.com", safe=""), "not allowed"),
        ("url=" + quote("https://item.taobao.com@evil.com/", safe=""), ""),
        ("url=" + quote("https://evil.com\\@item.taobao.com/", safe=""), ""),
        ("url=" + quote("//evil.com/", safe=""), ""),
        ("url=" + quote("javascript:alert(1)//item.taobao.com", safe=""), ""),
        ("url=" + quote("data:text/html,<script>alert(1)</script>", safe=""), ""),
        ("url=" + quote("https://127.0.0.1/item.htm?id=1", safe=""), ""),
        ("url=" + quote(ITEM, safe="") + "&url=" + quote(ITEM, safe=""), "given 2 times"),
        ("url=" + quote(ITEM, safe="") + "&from=timeline&from=singlemessage", "given 2 times"),
        ("url=" + quote(ITEM, safe="") + "&ch=a&ch=b", "given 2 times"),
        ("url=" + "a" * 9000, "the limit is"),
    ],
)
def test_bad_click_is_a_clear_4xx(client: TestClient, query: str, text: str) -> None:
    """Each bad input answers 4xx with a page that says what was wrong, and no Location."""
    response = get(client, query)
    assert 400 <= response.status_code < 500
    assert "location" not in response.headers
    page = html.unescape(response.text)
    assert "无法打开这个链接" in page
    assert text.replace("&#x27;", "'") in page


def test_error_page_escapes_input(client: TestClient) -> None:
    """Input echoed in an error message is HTML-escaped."""
    response = get(client, "url=" + quote("<script>alert(1)</script>", safe=""))
    assert response.status_code == 400
    assert "<script>alert(1)" not in response.text


def test_huge_user_agent_is_bounded(client: TestClient) -> None:
    """A 100 KB user agent is over the header limit: a 431 that says so. 12 KB is cut, parsed and decided."""
    response = get(client, "url=" + quote(ITEM, safe=""), ua="Mozilla/5.0 (iPhone; " + "A" * 100_000)
    assert response.status_code == 431 and "the limit is 16384" in response.text
    response = get(client, "url=" + quote(ITEM, safe=""), ua="Mozilla/5.0 (iPhone; " + "A" * 12_000)
    assert response.status_code in (200, 302)


def test_empty_user_agent(client: TestClient) -> None:
    """No user agent reads as a bot: the web page."""
    response = client.get("/go?url=" + quote(ITEM, safe=""), headers={"user-agent": ""})
    assert response.status_code == 302
    assert host_allowed(urlsplit(response.headers["location"]).hostname or "", DEFAULT_ALLOWED_HOSTS)


def test_post_is_refused(client: TestClient) -> None:
    """Click routes take GET and HEAD only."""
    response = client.post("/go?url=" + quote(ITEM, safe=""))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_head_is_answered(client: TestClient) -> None:
    """HEAD gets the same status and Location as GET."""
    response = client.head("/go?url=" + quote(ITEM, safe=""), headers={"user-agent": uas.CHROME_WINDOWS})
    assert response.status_code == 302
    assert response.headers["location"] == ITEM


def test_unknown_path_is_404(client: TestClient) -> None:
    """Anything but the click targets and health checks is a 404 page."""
    response = client.get("/wp-admin")
    assert response.status_code == 404
    assert "/go?url=" in response.text


def test_too_many_params(client: TestClient) -> None:
    """More query parameters than the limit is a 400, not a slow parse."""
    response = get(client, "url=" + quote(ITEM, safe="") + "".join(f"&p{i}=1" for i in range(200)))
    assert response.status_code == 400
    assert "too many query parameters" in response.text


@pytest.mark.parametrize("ua", [uas.SAFARI_IOS, uas.CHROME_ANDROID, uas.WECHAT_IOS, uas.CHROME_WINDOWS, ""])
@pytest.mark.parametrize(
    "target",
    [
        ITEM, "https://m.tb.cn/h.gYx1a2b?tk=AbCd1234", "https://s.click.taobao.com/t?e=x",
        "https://detail.tmall.com/item.htm?id=9", "https://evil.com/", "https://ITEM.TAOBAO.COM./item.htm?id=7",
    ],
)
def test_every_location_is_allowlisted(client: TestClient, ua: str, target: str) -> None:
    """Whatever the client, a 302 goes to an app scheme or an allowlisted https host."""
    response = get(client, "url=" + quote(target, safe=""), ua=ua)
    assert response.status_code < 500
    if response.status_code == 302:
        location = response.headers["location"]
        parts = urlsplit(location)
        assert parts.scheme in ("https", "taobao", "tbopen", "intent", "tmall")
        if parts.scheme == "https":
            assert host_allowed(parts.hostname or "", DEFAULT_ALLOWED_HOSTS)


@pytest.mark.parametrize(("lang", "said"), [("zh-CN", "这个地址没有页面"), ("en", "There is no page at this address")])
def test_the_404_page_speaks_the_readers_language(client: TestClient, lang: str, said: str) -> None:
    """As the 400 page does: the reader's language says what happened, the router's English reason is folded."""
    page = client.get("/no-such-page", headers={"accept-language": lang})
    assert page.status_code == 404 and page.headers["content-language"] == lang
    assert said in page.text and "<details" in page.text and "No such page." in page.text
