"""The landing page as HTML (the browser tests in test_landing_browser.py run it for real)."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from starlette.testclient import TestClient

from router.decision.rules import RuleSet, RuleSetError, load_rules
from router.decision.types import LANDING_PAGES
from router.serve.config import Settings
from router.serve.pages import TEMPLATES_DIR, choose_language, href, new_nonce
from router.serve.web import create_app
from tests import uas

SHARE = "【淘宝】https://m.tb.cn/h.gYx1a2b?tk=AbCd1234 CZ3457 「<img src=x onerror=alert(1)>好物」 点击链接直接打开"
ITEM = "https://item.taobao.com/item.htm?id=123456"
MOBILE = "https://h5.m.taobao.com/awp/core/detail.htm?id=123456"


def landing(client: TestClient, url: str, ua: str = uas.WECHAT_IOS, extra: str = "&from=groupmessage",
            lang: str = ""):  # type: ignore[no-untyped-def]
    headers = {"user-agent": ua}
    if lang:
        headers["accept-language"] = lang
    response = client.get(f"/go?url={quote(url, safe='')}{extra}", headers=headers)
    assert response.status_code == 200, response.text
    return response


def config(page: str) -> dict:  # type: ignore[type-arg]
    found = re.search(r'<script type="application/json" id="landing-config" nonce="[^"]+">(.*?)</script>', page)
    assert found, "no config block"
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def href_of(page: str, element_id: str) -> str | None:
    """The href of the link with this id, HTML-unescaped; None when the page has no such link."""
    found = re.search(rf'<a [^>]*id="{element_id}" href="([^"]*)"', page)
    return unescape(found.group(1)) if found else None


def test_wechat_page_guides_out_and_offers_copy_and_web(client: TestClient) -> None:
    """Inside WeChat on iOS: the ··· guide names Safari, the token is copyable, the web link is there."""
    page = landing(client, SHARE).text
    assert 'data-mode="inapp"' in page
    assert "微信内不能直接打开淘宝 App" in page
    menu = '<span class="menu" aria-hidden="true">···</span><span class="visually-hidden">更多</span>'
    assert f"点击右上角的 {menu}，选择「<span class=\"label\">在 Safari 中打开</span>」" in page
    textarea = '<textarea id="copy-text" rows="3" readonly>￥AbCd1234￥ https://m.tb.cn/h.gYx1a2b?tk=AbCd1234</textarea>'
    assert textarea in page
    assert '<a class="button secondary" id="web" href="https://m.tb.cn/h.gYx1a2b?tk=AbCd1234">' in page
    assert 'id="open-app"' not in page  # WeChat won't open it: no promise the page can't keep


def test_menu_label_follows_app_and_os(client: TestClient) -> None:
    """Android WeChat says 'Open in browser'; Weibo says its own words."""
    assert '选择「<span class="label">在浏览器打开</span>」' in landing(client, ITEM, ua=uas.WECHAT_ANDROID).text
    assert '选择「<span class="label">用浏览器打开</span>」' in landing(client, ITEM, ua=uas.WEIBO_IOS).text


def test_english_when_preferred(client: TestClient) -> None:
    """Accept-Language preferring English gets the English page."""
    response = landing(client, ITEM, lang="en-US,en;q=0.9,zh;q=0.5")
    assert '<html lang="en">' in response.text
    menu = '<span class="menu" aria-hidden="true">···</span><span class="visually-hidden">More</span>'
    step = f'Tap {menu} at the top right, then “<span class="label">Open in Safari</span>”'
    assert step in response.text
    assert response.headers["content-language"] == "en"


@pytest.mark.parametrize(
    ("header", "lang"),
    [(None, "zh-CN"), ("", "zh-CN"), ("fr-FR", "zh-CN"), ("en", "en"), ("zh-CN,en;q=0.8", "zh-CN"),
     ("en;q=0.4,zh-TW;q=0.6", "zh-CN"), ("de, en;q=0.7", "en"), ("en;q=abc", "zh-CN"), ("en;q=0", "zh-CN")],
)
def test_choose_language(header: str | None, lang: str) -> None:
    """Chinese by default; English only when the client prefers it to Chinese."""
    assert choose_language(header) == lang


def test_title_is_escaped_everywhere(client: TestClient) -> None:
    """A title from a share text is text in <title>, <h1>, meta attributes and the script config."""
    page = landing(client, SHARE).text
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;好物" in page
    assert '<meta property="og:title" content="&lt;img src=x onerror=alert(1)&gt;好物">' in page


def test_script_payload_in_destination_stays_data(client: TestClient) -> None:
    """A destination whose query holds a script payload can't break out of attributes or the JSON block."""
    url = "https://s.click.taobao.com/t?e=1&x=</script><script>alert(1)</script>\"><svg/onload=alert(2)>"
    page = landing(client, url, extra="&from=groupmessage&gdt_vid=</script><script>alert(3)</script>").text
    assert "<script>alert" not in page and "<svg" not in page
    assert href_of(page, "web").startswith("https://s.click.taobao.com/t?e=1&x=%3C/script%3E")
    assert href_of(page, "web").endswith("&gdt_vid=%3C%2Fscript%3E%3Cscript%3Ealert%283%29%3C%2Fscript%3E")


def test_moments_page_has_no_share_code(client: TestClient) -> None:
    """Moments: WeChat bans share codes there, so the page offers the plain link to copy."""
    page = landing(client, SHARE, extra="&from=timeline").text
    assert "朋友圈里的链接需要在浏览器中打开" in page
    assert "￥AbCd1234￥" not in page
    assert "也可以复制下面的链接" in page


def test_a_tap_on_an_unknown_channel_is_not_told_it_came_from_moments(client: TestClient) -> None:
    """The moments page also answers WeChat taps whose channel is unknown: they keep its copy rule (no share
    code), but are told what is known, that WeChat can't open Taobao, never that the link is a Moments one."""
    page = landing(client, SHARE, extra="").text  # no `from`: the channel is unknown
    assert "朋友圈" not in page and "微信内不能直接打开" in page
    assert "￥AbCd1234￥" not in page and "也可以复制下面的链接" in page


def test_attribution_reaches_every_link(client: TestClient) -> None:
    """Click ids reach the web link, the copied text and the script's fallback."""
    page = landing(client, ITEM, extra="&from=groupmessage&gdt_vid=wx0abc").text
    assert href_of(page, "web") == f"{MOBILE}&gdt_vid=wx0abc"
    assert f"readonly>{MOBILE}&amp;gdt_vid=wx0abc</textarea>" in page


def test_security_headers_and_nonce(client: TestClient) -> None:
    """Strict CSP whose nonce is on the inline style and scripts; nosniff, no-store, no framing."""
    response = landing(client, ITEM)
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert response.text.count(f'nonce="{nonce}"') == 4  # style, no-script style, config, script
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert nonce not in landing(client, ITEM).headers["content-security-policy"]  # fresh per response


def test_a_page_given_again_gets_its_own_nonce(client: TestClient) -> None:
    """The same click twice (the second from the kept answer and page): same page, a fresh nonce in each,
    in the CSP and on every inline element, and nothing of the first response's nonce left."""
    first, second = landing(client, ITEM), landing(client, ITEM)
    nonces = [r.headers["content-security-policy"].split("'nonce-")[1].split("'")[0] for r in (first, second)]
    assert nonces[0] != nonces[1]
    for response, nonce in zip((first, second), nonces, strict=True):
        assert response.text.count(f'nonce="{nonce}"') == 4
        assert response.text.count("nonce=") == 4
    # The click token differs too: one per click (router.serve.click_token).
    assert without_token(first.text.replace(nonces[0], "N")) == without_token(second.text.replace(nonces[1], "N"))
    assert config(first.text)["token"] != config(second.text)["token"]


def without_token(page: str) -> str:
    return page.replace(config(page)["token"], "T")


def test_nonces_are_never_handed_out_twice() -> None:
    """Drawn from a pool of the OS's random bytes: 24 URL-safe characters (18 bytes) each, all different,
    across several refills of the pool."""
    nonces = [new_nonce() for _ in range(2000)]
    assert len(set(nonces)) == len(nonces)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{24}", nonce) for nonce in nonces)


def test_clicks_that_show_the_same_page_share_one_rendering(settings: Settings, shipped_rules: RuleSet) -> None:
    """WeChat taps whose user agents differ only in build and network get one rendered page between them;
    a tap from another OS gets its own."""
    app = create_app(settings, shipped_rules)
    http = TestClient(app, follow_redirects=False)
    pages = app.clicks.pages
    warmed = len(pages._rendered)  # start-up's warm-up renders a few pages (router.serve.warm), for another item
    bodies = []
    for build in ("8.0.47.2560", "8.0.47.2561", "8.0.47.2562"):
        ua = uas.WECHAT_ANDROID.replace("MicroMessenger/", f"MicroMessenger/{build} X/")
        response = http.get(f"/go?url={quote(ITEM, safe='')}&from=groupmessage", headers={"user-agent": ua})
        nonce = response.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
        bodies.append(without_token(response.text.replace(nonce, "N")))
    assert bodies[0] == bodies[1] == bodies[2] and len(pages._rendered) == warmed + 1
    http.get(f"/go?url={quote(ITEM, safe='')}&from=groupmessage", headers={"user-agent": uas.WECHAT_IOS})
    assert len(pages._rendered) == warmed + 2


def test_self_contained_and_small(client: TestClient) -> None:
    """No external resources, under 20 KB, noindex, Open Graph and Twitter card tags."""
    page = landing(client, SHARE).text
    assert len(page.encode()) < 20_000
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)="(https?:)?//', page)
    assert '<meta name="robots" content="noindex,nofollow">' in page
    assert '<meta property="og:type" content="website">' in page
    assert '<meta name="twitter:card" content="summary">' in page


def test_phone_browser_page_tries_the_app(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A landing answer in Android Chrome: the intent in the script, a big button, the store link."""
    (tmp_path / "r.yaml").write_text("rules: []\ndefault: landing\n")
    from router.serve.web import create_app

    http = TestClient(create_app(settings, load_rules(tmp_path)), follow_redirects=False)
    page = http.get(f"/go?url={quote(ITEM, safe='')}", headers={"user-agent": uas.CHROME_ANDROID}).text
    settings_of_page = config(page)
    assert settings_of_page.pop("token")  # the click's (tests/test_outcomes.py)
    assert settings_of_page == {"mode": "phone", "delay": 2000, "beacon": "/outcome", "text": {
        "copied": "已复制，打开淘宝 App 即可查看", "copyFailed": "复制失败，请长按上面的内容手动复制"}}
    assert (href_of(page, "open-app") or "").startswith("intent://item.taobao.com/item.htm?id=123456#Intent;")
    assert href_of(page, "download") == "market://details?id=com.taobao.taobao"
    assert 'id="copy-text"' not in page  # a phone browser opens the app or the web: nothing to copy
    ios = http.get(f"/go?url={quote(ITEM, safe='')}", headers={"user-agent": uas.SAFARI_IOS}).text
    assert href_of(ios, "download") == "https://apps.apple.com/app/id387682726"


def test_tmall_item_names_the_app_it_opens(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A Tmall item opens in Taobao unless a rule says `app: tmall`; button and store say which."""
    from router.serve.web import create_app

    tmall = "https://detail.tmall.com/item.htm?id=654321"
    for default, button, store in [
        ("landing", "打开淘宝 App", "https://apps.apple.com/app/id387682726"),
        ("{action: landing, app: tmall}", "打开天猫 App", "https://apps.apple.com/app/id518966501"),
    ]:
        (tmp_path / "r.yaml").write_text(f"rules: []\ndefault: {default}\n")
        http = TestClient(create_app(settings, load_rules(tmp_path)), follow_redirects=False)
        page = http.get(f"/go?url={quote(tmall, safe='')}", headers={"user-agent": uas.SAFARI_IOS}).text
        assert 'id="open-app" href="' in page and f">{button}</a>" in page
        assert href_of(page, "download") == store
        assert '<span class="badge">天猫</span>' in page


def test_desktop_wechat_gets_no_phone_guide(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Desktop WeChat is a computer: the web link, no menu guide, nothing to copy, no app promise."""
    from router.serve.web import create_app

    (tmp_path / "r.yaml").write_text("rules: []\ndefault: landing\n")
    http = TestClient(create_app(settings, load_rules(tmp_path)), follow_redirects=False)
    for ua in (uas.WECHAT_WINDOWS, uas.WECHAT_MAC):
        page = http.get(f"/go?url={quote(ITEM, safe='')}", headers={"user-agent": ua}).text
        assert 'data-mode="static"' in page
        assert "右上角" not in page and 'id="copy-text"' not in page and 'id="open-app"' not in page
        assert href_of(page, "web") == ITEM


def test_overlong_link_is_refused(client: TestClient) -> None:
    """A destination longer than the limit is a 414 that says so, keeping every page small."""
    response = client.get(f"/go?url={quote('https://s.click.taobao.com/t?e=' + 'a' * 2000, safe='')}",
                          headers={"user-agent": uas.WECHAT_IOS})
    assert response.status_code == 414
    assert "the limit is 1500" in response.text


def test_page_stays_small_for_the_longest_link(client: TestClient) -> None:
    """The longest accepted link, full of characters that escaping makes longer, still gives < 20 KB."""
    url = "https://s.click.taobao.com/t?" + "&a" * 730
    for ua in (uas.WECHAT_IOS, uas.SAFARI_IOS, uas.CHROME_ANDROID):
        response = client.get(f"/go?url={quote(url, safe='')}&from=groupmessage", headers={"user-agent": ua})
        assert response.status_code in (200, 302)
        assert len(response.content) < 20_000, (ua, len(response.content))


def test_rule_chooses_how_the_page_opens_the_app(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`then: {action: landing, via: tbopen}` makes the page try the tbopen wrapper; desktops get no app link."""
    (tmp_path / "r.yaml").write_text("rules: []\ndefault: {action: landing, via: tbopen}\n")
    from router.serve.web import create_app

    http = TestClient(create_app(settings, load_rules(tmp_path)), follow_redirects=False)
    page = http.get(f"/go?url={quote(ITEM, safe='')}", headers={"user-agent": uas.CHROME_ANDROID}).text
    assert (href_of(page, "open-app") or "").startswith(
        "tbopen://m.taobao.com/tbopen/index.html?action=ali.open.nav&module=h5&h5Url=")
    desktop = http.get(f"/go?url={quote(ITEM, safe='')}", headers={"user-agent": uas.CHROME_WINDOWS}).text
    assert href_of(desktop, "open-app") is None and config(desktop)["mode"] == "static"


def test_works_without_javascript(client: TestClient) -> None:
    """Without JS the copy button is hidden (by a <noscript> style), and the text and links are plain HTML."""
    page = landing(client, SHARE).text
    assert '<button class="button needs-script" id="copy" type="button">' in page
    assert "<noscript><style nonce=" in page and ".needs-script{display:none}</style></noscript>" in page
    assert "readonly>￥AbCd1234￥" in page


def test_token_only_moments_page_still_offers_the_token(client: TestClient) -> None:
    """With no link at all, even the Moments page shows the code: it is the only way forward."""
    page = landing(client, "复制这段描述￥AbCd1234￥后到👉淘♂寳♀👈", extra="&from=timeline").text
    assert "readonly>￥AbCd1234￥</textarea>" in page
    assert "这个淘口令没有网页链接" in page


@pytest.mark.parametrize(
    ("url", "expected"),
    [("https://a.taobao.com/", "https://a.taobao.com/"), ("javascript:alert(1)", "#"), ("data:text/html,x", "#"),
     ("taobao://x", "taobao://x"), ("//evil.com", "#"), ("JAVASCRIPT:alert(1)", "#"), (None, "#")],
)
def test_href_filter(url: object, expected: str) -> None:
    """Only the schemes the router builds reach an href."""
    assert href(url) == expected


def test_languages_have_the_same_words() -> None:
    """zh-CN.yaml and en.yaml define the same keys, nested ones included."""
    def keys(table: dict, prefix: str = "") -> set[str]:  # type: ignore[type-arg]
        out = set()
        for key, value in table.items():
            out |= keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}"}
        return out

    zh = yaml.safe_load((TEMPLATES_DIR / "text" / "zh-CN.yaml").read_text(encoding="utf-8"))
    en = yaml.safe_load((TEMPLATES_DIR / "text" / "en.yaml").read_text(encoding="utf-8"))
    assert keys(zh) == keys(en)


def test_message_page_in_english(client: TestClient) -> None:
    """Error pages follow Accept-Language too."""
    response = client.get("/go", headers={"accept-language": "en"})
    assert response.status_code == 400
    assert "This link can&#39;t be opened" in response.text and "Error 400" in unescape(response.text)


def test_landing_variants_known_to_rules(tmp_path: Path) -> None:
    """The rules loader accepts the landing variants the pages know, and names the rest."""
    for page in LANDING_PAGES:
        (tmp_path / "r.yaml").write_text(f"rules: []\ndefault: {{action: landing, page: {page}}}\n")
        assert load_rules(tmp_path).default.page == page
    (tmp_path / "r.yaml").write_text("rules: []\ndefault: {action: landing, page: moment}\n")
    with pytest.raises(RuleSetError, match="unknown landing page 'moment'; did you mean 'moments'"):
        load_rules(tmp_path)


def test_a_block_speaks_the_readers_language_and_a_bad_link_folds_its_technical_reason(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """A block rule's message per language; a link the router can't use gets a sentence in the reader's
    language, its technical (English) reason folded away for support and written to the click line."""
    import logging

    from router.serve.web import create_app

    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: no-qq\n    when: {app: qq}\n    then:\n      action: block\n      message:\n"
        "        zh-CN: 这个活动不在 QQ 里开放\n        en: This campaign is not open inside QQ\n"
        "default: landing\n", encoding="utf-8")
    http = TestClient(create_app(settings, load_rules(tmp_path)), follow_redirects=False)
    url = f"/go?url={quote(ITEM, safe='')}"
    chinese = http.get(url, headers={"user-agent": uas.QQ_ANDROID})
    english = http.get(url, headers={"user-agent": uas.QQ_ANDROID, "accept-language": "en-US,en;q=0.9"})
    assert chinese.status_code == english.status_code == 403
    assert "这个活动不在 QQ 里开放" in chinese.text and "This campaign" not in chinese.text
    assert "This campaign is not open inside QQ" in english.text and "这个活动" not in english.text
    with caplog.at_level(logging.INFO, logger="router.clicks"):
        bad = http.get("/go?url=" + quote("https://taobao.com.evil.com/x", safe=""),
                       headers={"user-agent": uas.WECHAT_IOS})
    assert bad.status_code == 400
    page = bad.text
    assert "这个链接的地址不完整或不被支持" in page
    folded = page.split("<details>", 1)[1].split("</details>", 1)[0]
    assert "技术信息（给客服）" in folded and "is not allowed" in folded  # the English reason, folded
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "router.clicks"]
    assert line["rule"] == "bad-request" and "is not allowed" in line["reason"]
