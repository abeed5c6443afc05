"""Destinations checked the way a browser reads them: a WHATWG URL parser (ada-url) judges every output.

Three layers:

* parse_link over generated URLs and share texts: a LinkError, or a Link whose URLs a WHATWG parser
  reads as https on an allowlisted host, already in their serialised form; for a bare URL, on the same
  host a browser would reach from the input itself.
* Through HTTP (the whole app, every client kind in tests/uas.py): never a 5xx, and any 3xx Location
  parses to a scheme the router builds and, for every web URL in it, an allowlisted https host.
* tests/bypass_corpus.yaml: known open-redirect shapes, each a 400 with its reason or a redirect to
  the one allowlisted host a browser would also reach.
"""

from __future__ import annotations

import html
import runpy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import ada_url
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from router.decision.links import DEFAULT_ALLOWED_HOSTS, LinkError, host_allowed, parse_link
from router.decision.types import LinkKind
from tests import uas

# Schemes a Location may use: the web, and the app links the router builds from its own templates.
APP_SCHEMES = frozenset({"taobao", "tbopen", "tmall", "intent"})
# Hosts of those templates (taobao://item.taobao.com/…, tbopen://m.taobao.com/…, tmall://tmallclient/…).
APP_HOSTS = frozenset({"item.taobao.com", "m.taobao.com", "tmallclient"})
CLIENTS = sorted(
    (name, value) for name, value in vars(uas).items() if name.isupper() and isinstance(value, str)
)
CORPUS = Path(__file__).with_name("bypass_corpus.yaml")


# --- what a browser makes of a URL -----------------------------------------------------------------------


def whatwg(url: str) -> ada_url.URL:
    """`url` parsed as a browser parses it (fails the test when it does not parse)."""
    try:
        return ada_url.URL(url)
    except ValueError:
        raise AssertionError(f"{url!r} does not parse as a WHATWG URL") from None


def browser_host(raw: str) -> str | None:
    """The host a browser would visit for `raw` as a link on our page, or None where it cannot."""
    try:
        parsed = ada_url.URL(raw, base="https://router.invalid/go")
    except ValueError:
        return None
    return parsed.hostname.rstrip(".") or None


def assert_web_url(url: str) -> None:
    """https, an allowlisted host, no userinfo or port, and exactly its own WHATWG serialisation."""
    parsed = whatwg(url)
    assert parsed.protocol == "https:", url
    assert host_allowed(parsed.hostname, DEFAULT_ALLOWED_HOSTS), url
    assert (parsed.username, parsed.password, parsed.port) == ("", "", ""), url
    assert parsed.href == url, f"{url!r} serialises as {parsed.href!r}"


def assert_location(location: str) -> None:
    """A 3xx Location: a web URL, or an app link built from the router's templates around web URLs."""
    assert location.isascii() and location.isprintable(), location
    parsed = whatwg(location)
    scheme = parsed.protocol[:-1]
    if scheme == "https":
        assert_web_url(location)
        return
    assert scheme in APP_SCHEMES, location
    assert parsed.hostname in APP_HOSTS, location
    if scheme == "tbopen":
        h5 = [value for name, value in parse_qsl(parsed.search[1:]) if name == "h5Url"]
        assert len(h5) == 1, location
        assert_web_url(h5[0])
    if scheme == "intent":
        fields = dict(field.partition("=")[::2] for field in parsed.hash.split(";")[1:-1])
        assert fields["scheme"] in APP_SCHEMES - {"intent"}, location
        assert fields["package"] in ("com.taobao.taobao", "com.tmall.wireless"), location
        assert_web_url(unquote(fields["S.browser_fallback_url"]))


# --- generated input ---------------------------------------------------------------------------------------

SCHEMES = [
    "https://", "http://", "HtTpS://", "//", "///", "/\\", "\\/", "https:/\\", "https:\\\\", "https:", "https:///",
    "taobao://", "tbopen://", "intent://", "javascript:", "java\tscript:", "jav\nascript:", "data:text/html,",
    "\thttps://", " https://", "ｈｔｔｐｓ://", "",
]  # fmt: skip
HOSTS = [
    "item.taobao.com", "detail.tmall.com", "m.tb.cn", "shop.m.taobao.com", "s.click.taobao.com", "taobao.com",
    "evil.com", "taobao.com.evil.com", "eviltaobao.com", "taobao.com。evil.com", "taobao.com．evil.com",
    "taobao.com｡evil.com", "item.taobao。com", "ｔａｏｂａｏ.com", "ＩＴＥＭ.ＴＡＯＢＡＯ.ＣＯＭ", "straße.taobao.com",
    "店铺.taobao.com", "xn--fiq.taobao.com", "xn--.taobao.com", "ⓔⓥⓘⓛ.com", "127.0.0.1", "2130706433", "0x7f.1",
    "0177.0.0.1", "１２７.０.０.１", "[::1]", "[::ffff:127.0.0.1]", "item.taobao.com.", "item.taobao.com..",
    "taobao.com%2eevil.com", "evil.com%2f.taobao.com", "%65vil.com", "a" * 250 + ".taobao.com", "",
]  # fmt: skip
PIECES = [
    "/", "//", "\\", "@", "#", "?", ":", ":443", ":80", ":8080", ":0443", "%2f", "%2F", "%2e", "%2E", "%2e%2e",
    ".", "..", "/./", "/../", "。", "．", "｡", "%", "%zz", "%00", "%0d%0a", "\r\n", "\t", "\n", "\x00", " ",
    "evil.com", "taobao.com", ".taobao.com", "item.taobao.com", "@evil.com", "?taobao.com", "#taobao.com",
    "id=", "123", "&", "=", "item.htm", "h.abc", "tk=", "\u202e", "\u200b", "\u2028", "ß", "'", '"', "<", ">",
]  # fmt: skip
URLS = st.builds(
    lambda scheme, host, tail: scheme + host + tail,
    st.sampled_from(SCHEMES),
    st.sampled_from(HOSTS) | st.text(max_size=12),
    st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=10).map("".join),
)
SHARE_TEXTS = st.builds(
    lambda head, url, tail: f"{head}{url}{tail}",
    st.sampled_from(["【淘宝】", "【天猫】", "「标题」", "复制这段描述 ", " ", ""]),
    URLS,
    st.sampled_from(["", " ", "\n", "\r\n", "\t", "。", "．", ".", "/", " ￥AbCd1234￥ ", "\n「标题」", "evil.com"])
    .flatmap(lambda sep: st.sampled_from(["", "evil.com", ".evil.com", " 点击链接直接打开"]).map(sep.__add__)),
)
FORWARD_VALUES = st.sampled_from(["1", "abc%0d%0aSet-Cookie:%20a=b", "%E2%80%AE", "x&url=https://evil.com", "%00"])


def check_link(raw: str) -> None:
    """parse_link(raw) gives a LinkError, or URLs a browser reads as https on an allowlisted host."""
    try:
        link = parse_link(raw)
    except LinkError as err:
        assert str(err)
        return
    if link.kind is LinkKind.TOKEN:
        assert link.web_url is None and link.mobile_url is None
        return
    assert link.web_url is not None and link.mobile_url is not None
    assert_web_url(link.web_url)
    assert_web_url(link.mobile_url)


@settings(max_examples=1500, deadline=None)
@given(URLS)
def test_generated_urls_give_a_browser_safe_link_or_an_error(raw: str) -> None:
    """Any URL-shaped input: a LinkError, or URLs a WHATWG parser reads as https on an allowlisted host."""
    check_link(raw)


@settings(max_examples=800, deadline=None)
@given(SHARE_TEXTS)
def test_generated_share_texts_give_a_browser_safe_link_or_an_error(raw: str) -> None:
    """Any share-text-shaped input: a LinkError, or URLs a WHATWG parser reads as https on an allowlisted host."""
    check_link(raw)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_gives_a_browser_safe_link_or_an_error(raw: str) -> None:
    """Arbitrary text: the same guarantee."""
    check_link(raw)


@settings(max_examples=1500, deadline=None)
@given(URLS)
def test_accepted_url_goes_to_the_host_a_browser_would_visit(raw: str) -> None:
    """A bare URL we accept is on the host a browser reaches from the input itself (trailing dot aside)."""
    try:
        link = parse_link(raw)
    except LinkError:
        return
    if link.kind in (LinkKind.ITEM, LinkKind.SHOP) or any(c.isspace() for c in raw.strip()):
        return  # canonical URLs on another host of the same site; share texts are not one URL
    assert link.web_url is not None
    assert browser_host(raw.strip()) == whatwg(link.web_url).hostname, raw


@pytest.mark.parametrize(
    ("raw", "location"),
    [
        ("https://item.taobao.com/a/../b", "https://item.taobao.com/b"),
        ("https://item.taobao.com/a/%2e%2E/b", "https://item.taobao.com/b"),
        ("https://item.taobao.com/a/.%2e", "https://item.taobao.com/"),
        ("https://item.taobao.com/./a/.", "https://item.taobao.com/a/"),
        ("https://item.taobao.com/../../..", "https://item.taobao.com/"),
        ("https://item.taobao.com//a/./b", "https://item.taobao.com//a/b"),
        ("https://item.taobao.com/a..b/.c", "https://item.taobao.com/a..b/.c"),
    ],
)
def test_dot_segments_are_resolved_as_browsers_do(raw: str, location: str) -> None:
    """'.' and '..' path segments, also percent-encoded, are resolved once, as the WHATWG parser does."""
    assert parse_link(raw).web_url == location == whatwg(raw).href


def test_dot_segments_reach_known_shapes() -> None:
    """A mobile item path behind '..' is recognised as the item the browser would request."""
    link = parse_link("https://a.m.taobao.com/x/%2e%2e/i123.htm")
    assert (link.kind, link.item_id) == (LinkKind.ITEM, "123")


@pytest.mark.parametrize(
    ("host", "ascii_host"),
    [
        ("straße.taobao.com", "xn--strae-oqa.taobao.com"),  # UTS-46 non-transitional: ß kept, not "ss"
        ("ς.taobao.com", "xn--3xa.taobao.com"),  # final sigma kept, not σ
        ("ＩＴＥＭ．ｔａｏｂａｏ｡com", "item.taobao.com"),
    ],
)
def test_hosts_are_mapped_like_browsers(host: str, ascii_host: str) -> None:
    """Non-ASCII hosts are mapped with UTS-46 as browsers do, not with Python's IDNA 2003 codec."""
    url = f"https://{host}/"
    assert parse_link(url).web_url == f"https://{ascii_host}/" == whatwg(url).href


@pytest.mark.parametrize("host", ["xn--.taobao.com", "xn--zz.taobao.com", "١.taobao.com", "\u0301a.taobao.com"])
def test_hosts_a_browser_refuses_are_refused(host: str) -> None:
    """Broken A-labels and names IDNA forbids (bidi, leading combining mark) are not valid host names."""
    with pytest.raises(LinkError, match="is not a valid host name"):
        parse_link(f"https://{host}/")


@pytest.mark.parametrize(
    "text",
    [
        "看看 https://taobao.com\r\n.evil.com",
        "看看 https://taobao.com\t.evil.com",
        "看看 https://taobao.com.\nevil.com",
        "看看 https://taobao.com。evil.com",
    ],
)
def test_share_text_link_running_on_into_a_host_is_refused(text: str) -> None:
    """A host-only link a browser would join with what follows (tab, line break, '。') is refused."""
    with pytest.raises(LinkError, match="runs on into"):
        parse_link(text)


@pytest.mark.parametrize(
    "text",
    [
        "看看 https://taobao.com 「标题」",
        "看看 https://m.tb.cn/h.abc\n「标题」",
        "https://m.tb.cn/h.abc?tk=AbCd1234\r\n点击链接直接打开",
        "看看 https://m.tb.cn/h.abc?tk=AbCd1234\nCZ3457 「标题」",
    ],
)
def test_share_text_link_cut_where_the_host_cannot_change_is_kept(text: str) -> None:
    """A space or words after the link, or a break that only a query's extras follow: the same page."""
    assert parse_link(text).web_url is not None


@pytest.mark.parametrize(
    "text",
    [
        "看看 https://taobao.com\n/x",
        "看看 https://item.taobao.com/item.htm?id=123\n456 「标题」",
        "看看 https://item.taobao.com/item.htm?id=123\t456",
        "https://m.tb.cn/h.abc\r\ndef 「标题」",
        "https://shop123.taobao.com\n4.taobao.com/ 店铺",
        "看看 https://item.taobao.com/item.htm?spm=a21n57.1\n.0.0&id=123",
        "https://item.taobao.com/item\n.htm?id=123 看看",
        "看 https://item.taobao.com/item.htm?id=123\n-456",
    ],
)
def test_share_text_link_cut_short_of_another_page_is_refused(text: str) -> None:
    """A tab or line break then more link characters: a browser reads on, to another page; refused."""
    with pytest.raises(LinkError, match=r"cut by a tab or line break|runs on into"):
        parse_link(text)


# --- through HTTP ---------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=URLS | SHARE_TEXTS,
    ua=st.sampled_from(CLIENTS),
    extra=st.lists(st.sampled_from(["ch", "from", "gdt_vid", "click_id", "weixinadinfo"]), max_size=3),
    value=FORWARD_VALUES,
    path=st.sampled_from(["/go", "/ad"]),
)
def test_http_never_5xx_and_redirects_only_to_allowed_destinations(
    client: TestClient, raw: str, ua: tuple[str, str], extra: list[str], value: str, path: str
) -> None:
    """Every client kind, any url and forwarded params: no 5xx, and a 3xx only to an allowed destination."""
    query = "url=" + quote(raw, safe="") + "".join(f"&{name}={value}" for name in extra)
    response = client.get(f"{path}?{query}", headers={"user-agent": ua[1]})
    assert response.status_code < 500
    if 300 <= response.status_code < 400:
        assert_location(response.headers["location"])
    assert "set-cookie: a" not in str(response.headers).lower()


# --- the corpus of known bypass shapes ------------------------------------------------------------------------


def _corpus() -> list[Any]:
    cases = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["name"]) for case in cases]


def test_corpus_cases_are_well_formed() -> None:
    """Each case gives exactly one of url/query and expects a 400 with a reason, or one host."""
    names = [case["name"] for case in yaml.safe_load(CORPUS.read_text(encoding="utf-8"))]
    assert len(names) == len(set(names)) >= 60
    for param in _corpus():
        case = param.values[0]
        assert ("url" in case) != ("query" in case), case["name"]
        assert ("host" in case) != ("reason" in case), case["name"]


@pytest.mark.parametrize("case", _corpus())
@pytest.mark.parametrize("ua", [uas.CHROME_WINDOWS, uas.CHROME_ANDROID, uas.SAFARI_IOS, uas.WECHAT_IOS])
def test_bypass_corpus(client: TestClient, case: dict[str, str], ua: str) -> None:
    """A known bypass shape is a 400 that says why, or a redirect only to the host a browser would reach."""
    query = "url=" + quote(case["url"], safe="") if "url" in case else case["query"]
    response = client.get(f"/go?{query}", headers={"user-agent": ua, "accept-language": "en"})
    if "reason" in case:
        assert response.status_code == 400
        assert case["reason"] in html.unescape(response.text)
        assert "location" not in response.headers
        return
    assert response.status_code in (200, 302)  # landing page for WeChat, a redirect for the others
    if "url" in case and not any(c.isspace() for c in case["url"].strip()):
        assert browser_host(case["url"].strip()) == case["host"]  # the host a browser would reach anyway
    if response.status_code == 302:
        location = response.headers["location"]
        assert_location(location)
        if ua == uas.CHROME_WINDOWS:  # desktop: the web URL itself (phones get app links or mobile pages)
            assert whatwg(location).hostname == case["host"]
        assert "set-cookie: a" not in str(response.headers).lower()


# --- the fuzz target --------------------------------------------------------------------------------------


def test_fuzz_target_stops_by_itself(capsys: pytest.CaptureFixture[str]) -> None:
    """fuzz/fuzz_links.py runs its budget of inputs, finds nothing, and stops with status 0."""
    fuzz = runpy.run_path(str(Path(__file__).parents[1] / "fuzz" / "fuzz_links.py"))
    assert fuzz["main"](["--examples", "200", "--seconds", "20", "--batch", "100"]) == 0
    assert capsys.readouterr().out.startswith("ok: 200 inputs in ")


@pytest.mark.parametrize("char", ["\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u2028", "\u2029"])
def test_a_control_character_after_a_link_is_refused(char: str) -> None:
    """Python calls these whitespace and would end the link there; a browser keeps them: refused."""
    with pytest.raises(LinkError, match="followed by a control character"):
        parse_link(f"https://item.taobao.com/item.htm?id=123{char}456")


def test_a_decoration_line_after_a_link_ends_it() -> None:
    """A line of dashes under a promotion's link is decoration: the link stands."""
    link = parse_link("【下单链接】https://m.tb.cn/h.ecHATMZ\n-----------\n复制打开")
    assert link.web_url == "https://m.tb.cn/h.ecHATMZ"


@given(st.lists(st.tuples(st.text(max_size=20), st.text(max_size=40)), min_size=1, max_size=4))
@settings(max_examples=300)
def test_forwarded_params_are_encoded_as_urlencode_does(params: list[tuple[str, str]]) -> None:
    """with_params's quick path for plain click ids writes exactly what urlencode(quote_via=quote) writes,
    for any names and values (non-ASCII, reserved characters, empty)."""
    from urllib.parse import urlencode

    from router.decision.deeplinks import with_params

    url = "https://h5.m.taobao.com/awp/core/detail.htm?id=1"
    assert with_params(url, tuple(params)) == url + "&" + urlencode(params, quote_via=quote)
