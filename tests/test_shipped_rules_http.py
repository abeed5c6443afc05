"""Every shipped rule, through HTTP, with redirects not followed: status and Location."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from starlette.testclient import TestClient

from router.decision.signing import sign
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS

ITEM = "https://item.taobao.com/item.htm?id=123456"
MOBILE = "https://h5.m.taobao.com/awp/core/detail.htm?id=123456"
SCHEME = "taobao://item.taobao.com/item.htm?id=123456"
INTENT = (
    "intent://item.taobao.com/item.htm?id=123456#Intent;scheme=taobao;package=com.taobao.taobao;"
    "S.browser_fallback_url=https%3A%2F%2Fh5.m.taobao.com%2Fawp%2Fcore%2Fdetail.htm%3Fid%3D123456;end"
)


def go(client: TestClient, ua: str, **params: str):
    query = urlencode({"url": ITEM, **params}, quote_via=quote)
    return client.get(f"/go?{query}", headers={"user-agent": ua})


def ad(client: TestClient, ua: str, source: str, extra: str = "", **fields: str):
    signed = sign({"url": ITEM, "src": source, "adv": "adv42", **fields}, TEST_KEYS)
    query = urlencode(signed, quote_via=quote)
    return client.get(f"/ad?{query}{extra}", headers={"user-agent": ua})


def test_wechat_unidesk_ad_opens_app(client: TestClient) -> None:
    """WeChat + verified Uni Desk ad -> 302 straight into the app, click id forwarded."""
    response = ad(client, uas.WECHAT_IOS, "unidesk", extra="&gdt_vid=wx0abc123&from_ad=1")
    assert response.status_code == 302
    assert response.headers["location"] == SCHEME + "&gdt_vid=wx0abc123"


def test_wechat_other_ad_source_gets_landing(client: TestClient) -> None:
    """WeChat + verified ad from another source -> the landing page."""
    response = ad(client, uas.WECHAT_ANDROID, "othernet")
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "在浏览器打开" in response.text
    assert MOBILE in response.text


def test_tampered_ad_is_not_an_ad(client: TestClient) -> None:
    """A Uni Desk ad link with a changed field loses ad privileges: landing, not app."""
    signed = sign({"url": ITEM, "src": "othernet", "adv": "adv42"}, TEST_KEYS)
    signed["src"] = "unidesk"
    response = client.get("/ad?" + urlencode(signed), headers={"user-agent": uas.WECHAT_IOS})
    assert response.status_code == 200
    assert "location" not in response.headers


def test_wechat_private_chat_gets_web(client: TestClient) -> None:
    """WeChat 1:1 chat -> 302 to the mobile web page; WeChat's own params are not forwarded."""
    response = go(client, uas.WECHAT_IOS, **{"from": "singlemessage", "isappinstalled": "0"})
    assert response.status_code == 302
    assert response.headers["location"] == MOBILE


def test_wechat_group_chat_gets_landing(client: TestClient) -> None:
    """WeChat group chat -> landing (the pilot rule ships at rollout 0)."""
    response = go(client, uas.WECHAT_ANDROID, **{"from": "groupmessage"})
    assert response.status_code == 200
    assert "复制" in response.text


@pytest.mark.parametrize("params", [{"from": "timeline"}, {}, {"ch": "ad"}])
def test_wechat_moments_or_unknown_gets_landing(client: TestClient, params: dict[str, str]) -> None:
    """WeChat Moments, unknown channel, or an unsigned ch=ad -> landing."""
    response = go(client, uas.WECHAT_IOS, **params)
    assert response.status_code == 200
    assert "在 Safari 中打开" in response.text


@pytest.mark.parametrize(
    "ua",
    [uas.WECOM_IOS, uas.QQ_ANDROID, uas.WEIBO_IOS, uas.ALIPAY_ANDROID, uas.DINGTALK_IOS, uas.DOUYIN_ANDROID],
)
def test_other_inapp_browsers_get_landing(client: TestClient, ua: str) -> None:
    """WeCom, QQ, Weibo, Alipay, DingTalk, Douyin -> landing, even from a 1:1 chat."""
    response = go(client, ua, **{"from": "singlemessage"})
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "右上角" in response.text


def test_inside_taobao_opens_app(client: TestClient) -> None:
    """Inside the Taobao app -> the app scheme."""
    response = go(client, uas.TAOBAO_IOS)
    assert response.status_code == 302
    assert response.headers["location"] == SCHEME


def test_ios_safari_opens_app(client: TestClient) -> None:
    """iOS Safari -> the app scheme (no Universal Link host configured in the shipped rules)."""
    response = go(client, uas.SAFARI_IOS)
    assert response.status_code == 302
    assert response.headers["location"] == SCHEME


def test_android_chrome_opens_app_with_web_fallback(client: TestClient) -> None:
    """Android Chrome -> intent:// whose browser_fallback_url is the mobile page."""
    response = go(client, uas.CHROME_ANDROID, gdt_vid="g1")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("intent://item.taobao.com/item.htm?id=123456&gdt_vid=g1#Intent;scheme=taobao;")
    assert "S.browser_fallback_url=https%3A%2F%2Fh5.m.taobao.com%2Fawp%2Fcore%2Fdetail.htm%3Fid%3D123456" in location
    assert location.endswith(";end")


def test_android_chrome_intent_exact(client: TestClient) -> None:
    """The whole intent URL, byte for byte."""
    assert go(client, uas.CHROME_ANDROID).headers["location"] == INTENT


@pytest.mark.parametrize("ua", [uas.CHROME_WINDOWS, uas.SAFARI_MAC, uas.WECHAT_WINDOWS, uas.WECHAT_MAC])
def test_desktop_gets_desktop_web(client: TestClient, ua: str) -> None:
    """Any desktop client, desktop WeChat included, even for an ad -> the desktop web page."""
    response = go(client, ua, **{"from": "groupmessage"})
    assert response.status_code == 302
    assert response.headers["location"] == ITEM


@pytest.mark.parametrize("ua", [uas.GOOGLEBOT, uas.FACEBOOK_PREVIEW, ""])
def test_bots_get_web(client: TestClient, ua: str) -> None:
    """Bots, link-preview crawlers and empty user agents -> the web page."""
    response = go(client, ua)
    assert response.status_code == 302
    assert response.headers["location"] in (ITEM, MOBILE)


def test_redirects_are_not_cached(client: TestClient) -> None:
    """A 302 says no-store: the next click must be decided again."""
    response = go(client, uas.SAFARI_IOS)
    assert response.headers["cache-control"] == "no-store"


def test_visitor_cookie_is_set_once(settings, shipped_rules) -> None:  # type: ignore[no-untyped-def]
    """The first click sets a sticky visitor cookie; a click carrying it gets none."""
    fresh = TestClient(create_app(settings, shipped_rules), follow_redirects=False)
    first = go(fresh, uas.SAFARI_IOS)
    assert "adlink_vid=" in first.headers["set-cookie"]
    assert "HttpOnly" in first.headers["set-cookie"]
    again = go(fresh, uas.SAFARI_IOS)  # the client's jar now sends the cookie back
    assert "set-cookie" not in again.headers
