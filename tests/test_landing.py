"""The landing page served for `landing` answers: a real, working, escaped page."""

from __future__ import annotations

from urllib.parse import quote

from starlette.testclient import TestClient

from tests import uas

SHARE = "【淘宝】https://m.tb.cn/h.gYx1a2b?tk=AbCd1234 CZ3457 「<img src=x onerror=alert(1)>好物」 点击链接直接打开"
ITEM = "https://item.taobao.com/item.htm?id=123456"


def landing(client: TestClient, url: str, ua: str = uas.WECHAT_IOS, extra: str = "&from=groupmessage"):  # type: ignore[no-untyped-def]
    response = client.get(f"/go?url={quote(url, safe='')}{extra}", headers={"user-agent": ua})
    assert response.status_code == 200
    return response


def test_wechat_landing_has_guide_web_link_and_copy(client: TestClient) -> None:
    """Inside WeChat: the open-in-browser guide, the web link, and a copyable link with the token."""
    page = landing(client, SHARE).text
    assert "微信内无法直接打开淘宝" in page and "在浏览器打开" in page
    assert 'href="https://m.tb.cn/h.gYx1a2b?tk=AbCd1234"' in page
    assert "https://m.tb.cn/h.gYx1a2b?tk=AbCd1234 ￥AbCd1234￥</textarea>" in page
    assert '<button id="copy" type="button">' in page


def test_title_is_escaped(client: TestClient) -> None:
    """A title from the share text is shown as text, never as markup."""
    page = landing(client, SHARE).text
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;好物" in page


def test_moments_page_has_no_share_code(client: TestClient) -> None:
    """Moments: WeChat bans share codes there, so only the plain link is offered to copy."""
    page = landing(client, SHARE, extra="&from=timeline").text
    assert "朋友圈里的链接无法直接打开淘宝" in page
    assert "￥AbCd1234￥" not in page


def test_landing_keeps_attribution_on_web_link(client: TestClient) -> None:
    """Click ids reach the web link and the copied link on the landing page too."""
    page = landing(client, ITEM, extra="&from=groupmessage&gdt_vid=wx0abc").text
    assert 'href="https://h5.m.taobao.com/awp/core/detail.htm?id=123456&amp;gdt_vid=wx0abc"' in page


def test_landing_security_headers(client: TestClient) -> None:
    """Strict CSP with a nonce that the inline script and style carry; no caching; no framing."""
    response = landing(client, ITEM)
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_token_only_share_text_gets_landing_with_token(client: TestClient) -> None:
    """A 2018 share text with no link: nothing to redirect to, so the page offers the token."""
    page = landing(client, "复制这段描述€AbCd1234€后到👉淘♂寳♀👈", ua=uas.SAFARI_IOS, extra="").text
    assert "￥AbCd1234￥" in page
