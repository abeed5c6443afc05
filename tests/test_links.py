"""Tests for router.decision.links: recognising Taobao/Tmall links and share texts, and refusing everything else."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.decision.links import DEFAULT_ALLOWED_HOSTS, LinkError, host_allowed, parse_link
from router.decision.types import Link, LinkKind, Platform

TB = Platform.TAOBAO
TM = Platform.TMALL


def _rejected(raw: str) -> str:
    """The error text parse_link gives for raw (fails the test if it gives a Link)."""
    with pytest.raises(LinkError) as info:
        parse_link(raw)
    return str(info.value)


# --- host_allowed --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("taobao.com", True),
        ("item.taobao.com", True),
        ("ITEM.TaoBao.COM", True),
        ("item.taobao.com.", True),
        ("a.b.c.tmall.hk", True),
        ("m.tb.cn", True),
        ("item.taobao。com", True),  # IDNA maps the ideographic full stop to '.', as browsers do
        ("ｉｔｅｍ.ｔａｏｂａｏ.ｃｏｍ", True),  # fullwidth letters map to ASCII
        ("taobao.com.evil.com", False),
        ("eviltaobao.com", False),
        ("taobao.co", False),
        ("evil.com", False),
        ("taobao.com。evil.com", False),
        ("evil.com/.taobao.com", False),  # not a host name at all
        ("evil.com@taobao.com", False),
        ("", False),
        (".", False),
        ("taobao.com..", False),
        ("xn--.taobao.com\u3002\u3002", False),  # IDNA failure -> False
    ],
)
def test_host_allowed(host: str, expected: bool) -> None:
    """Exact or dot-boundary suffix matches only, after lower-casing and IDNA."""
    assert host_allowed(host, DEFAULT_ALLOWED_HOSTS) is expected


def test_host_allowed_custom_list() -> None:
    """The allowlist passed in is the one used, normalised like hosts."""
    assert host_allowed("shop.example.org", ("Example.ORG.",))
    assert not host_allowed("item.taobao.com", ("example.org",))
    assert not host_allowed("item.taobao.com", ())


# --- items ---------------------------------------------------------------------------------------------

TAOBAO_WEB = "https://item.taobao.com/item.htm?id={}"
TAOBAO_MOBILE = "https://h5.m.taobao.com/awp/core/detail.htm?id={}"
TMALL_WEB = "https://detail.tmall.com/item.htm?id={}"
TMALL_MOBILE = "https://detail.m.tmall.com/item.htm?id={}"


@pytest.mark.parametrize(
    ("raw", "platform", "item_id"),
    [
        ("https://item.taobao.com/item.htm?id=123456789", TB, "123456789"),
        ("https://item.taobao.com/item.htm?spm=a1z10.1&id=42&ns=1#detail", TB, "42"),
        ("https://m.intl.taobao.com/detail/detail.html?id=7001", TB, "7001"),
        ("https://world.taobao.com/item/520813250866.htm", TB, "520813250866"),
        ("https://a.m.taobao.com/i520813250866.htm", TB, "520813250866"),
        ("https://h5.m.taobao.com/awp/core/detail.htm?id=555", TB, "555"),
        ("https://main.m.taobao.com/detail/index.html?id=556&sku=1", TB, "556"),
        ("https://detail.tmall.com/item.htm?id=601", TM, "601"),
        ("https://detail.m.tmall.com/item.htm?id=602", TM, "602"),
        ("https://chaoshi.detail.tmall.com/item.htm?id=603", TM, "603"),
        ("https://detail.tmall.hk/hk/item.htm?id=604", TM, "604"),
        ("https://item.taobao.com/item.htm?id=1&id=2", TB, "1"),  # first of repeated params
        ("https://item.taobao.com/item.htm?id=" + "9" * 20, TB, "9" * 20),
        ("HTTPS://ITEM.TAOBAO.COM/item.htm?id=8", TB, "8"),
        ("//item.taobao.com/item.htm?id=9", TB, "9"),
        ("https://item.taobao.com:443/item.htm?id=10", TB, "10"),
        ("https://item.taobao.com./item.htm?id=11", TB, "11"),
        ("https://item.taobao。com/item.htm?id=12", TB, "12"),
        ("  https://item.taobao.com/item.htm?id=13\n", TB, "13"),
    ],
)
def test_items(raw: str, platform: Platform, item_id: str) -> None:
    """Every item shape gives the item id and the platform's canonical web and mobile URLs."""
    web, mobile = (TMALL_WEB, TMALL_MOBILE) if platform is TM else (TAOBAO_WEB, TAOBAO_MOBILE)
    assert parse_link(raw) == Link(
        platform=platform,
        kind=LinkKind.ITEM,
        web_url=web.format(item_id),
        mobile_url=mobile.format(item_id),
        item_id=item_id,
    )


@pytest.mark.parametrize(
    ("raw", "platform"),
    [
        ("http://item.taobao.com/item.htm?id=5", TB),
        ("http://detail.tmall.com/item.htm?id=5", TM),
        ("http://item.taobao.com:80/item.htm?id=5", TB),
    ],
)
def test_http_becomes_https(raw: str, platform: Platform) -> None:
    """http:// is accepted as input but only https:// comes out."""
    link = parse_link(raw)
    assert link.platform is platform
    assert link.web_url is not None and link.web_url.startswith("https://")
    assert link.mobile_url is not None and link.mobile_url.startswith("https://")


def test_http_page_becomes_https() -> None:
    """A rebuilt page URL is https too."""
    assert parse_link("http://www.taobao.com/markets/x").web_url == "https://www.taobao.com/markets/x"


@pytest.mark.parametrize(
    "raw",
    [
        "https://item.taobao.com/item.htm?id=abc",
        "https://item.taobao.com/item.htm?id=12a",
        "https://item.taobao.com/item.htm?id=",
        "https://item.taobao.com/item.htm?id=-1",
        "https://item.taobao.com/item.htm?id=%31%32",  # not decoded a second time
        "https://item.taobao.com/item.htm?id=" + "1" * 21,
        "https://item.taobao.com/item.htm?id=١٢٣",  # Arabic-Indic digits are not ASCII digits
        "https://item.taobao.com/item.htm?itemId=12",
        "https://detail.tmall.com/item.htm?id=1.5",
        "https://h5.m.taobao.com/other.htm?id=12",
        "https://a.m.taobao.com/ix.htm",
        "https://world.taobao.com/item/12x.htm",
    ],
)
def test_id_not_digits_is_not_an_item(raw: str) -> None:
    """A missing or non-digit id (or an item path on the wrong host) gives a page, not an item."""
    link = parse_link(raw)
    assert link.kind is LinkKind.PAGE
    assert link.item_id is None


# --- short, affiliate, coupon --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "url", "token"),
    [
        ("https://m.tb.cn/h.gYx1a2b?tk=AbCd1234", "https://m.tb.cn/h.gYx1a2b?tk=AbCd1234", "AbCd1234"),
        ("https://e.tb.cn/h.ABC123?tk=XyZ98765wq", "https://e.tb.cn/h.ABC123?tk=XyZ98765wq", "XyZ98765wq"),
        ("http://m.tb.cn/h.xxxx", "https://m.tb.cn/h.xxxx", None),
        ("https://s.tb.cn/h.Q1w2E3/", "https://s.tb.cn/h.Q1w2E3/", None),
        ("https://m.tb.cn/h.abc?tk=AbCd1234&sm=x#frag", "https://m.tb.cn/h.abc?tk=AbCd1234&sm=x", "AbCd1234"),
        (
            "https://m.tb.cn/h.abc?tk=ab%20cd&from=timeline",
            "https://m.tb.cn/h.abc?tk=ab%20cd&from=timeline",
            None,
        ),
    ],
)
def test_short_links(raw: str, url: str, token: str | None) -> None:
    """tb.cn /h.<code> links are short links; tk stays in the URL and becomes the token when well formed."""
    assert parse_link(raw) == Link(platform=TB, kind=LinkKind.SHORT, web_url=url, mobile_url=url, token=token)


def test_taobao_listing_item_page_is_an_item() -> None:
    """www.taobao.com/list/item/<id>.htm carries the item id: the item, not a page."""
    link = parse_link("https://www.taobao.com/list/item/612345678901.htm?spm=a21bo")
    assert (link.kind, link.item_id) == (LinkKind.ITEM, "612345678901")
    assert parse_link("https://www.taobao.com/list/product/612345678901.htm").kind is LinkKind.PAGE


def test_tb_cn_other_path_is_a_page() -> None:
    """A tb.cn URL without an /h.<alnum> code is only a page."""
    link = parse_link("https://m.tb.cn/about-us")
    assert (link.kind, link.web_url) == (LinkKind.PAGE, "https://m.tb.cn/about-us")


@pytest.mark.parametrize(
    ("raw", "kind", "url"),
    [
        ("https://s.click.taobao.com/t4Xyz9A", LinkKind.AFFILIATE, "https://s.click.taobao.com/t4Xyz9A"),
        (
            "https://s.click.taobao.com/t?e=m%3D2%26s%3Dabc&pid=mm_1_2_3",
            LinkKind.AFFILIATE,
            "https://s.click.taobao.com/t?e=m%3D2%26s%3Dabc&pid=mm_1_2_3",
        ),
        (
            "https://uland.taobao.com/coupon/edetail?e=abc%3D%3D&af=1",
            LinkKind.COUPON,
            "https://uland.taobao.com/coupon/edetail?e=abc%3D%3D&af=1",
        ),
        (
            "https://uland.taobao.com/quan/detail?e=x",
            LinkKind.COUPON,
            "https://uland.taobao.com/quan/detail?e=x",
        ),
    ],
)
def test_affiliate_and_coupon(raw: str, kind: LinkKind, url: str) -> None:
    """s.click.taobao.com is affiliate, any uland.taobao.com path is a coupon; escapes are kept."""
    assert parse_link(raw) == Link(platform=TB, kind=kind, web_url=url, mobile_url=url)


# --- shops ---------------------------------------------------------------------------------------------

TAOBAO_SHOP_MOBILE = "https://shop.m.taobao.com/shop/shop_index.htm?shop_id={}"


@pytest.mark.parametrize(
    ("raw", "shop_id"),
    [
        ("https://shop12345.taobao.com/", "12345"),
        ("https://shop12345.taobao.com/category.htm?search=y", "12345"),
        ("https://shop777.m.taobao.com/", "777"),
        ("https://shop.m.taobao.com/shop/shop_index.htm?shop_id=888", "888"),
        ("https://shop.m.taobao.com/shop/shop_index.htm?shopId=889", "889"),
        ("taobao://shop.m.taobao.com/shop/shop_index.htm?shop_id=990", "990"),
        ("TAOBAO://shop.m.taobao.com/shop/shop_index.htm?shop_id=991", "991"),
    ],
)
def test_taobao_shops_with_id(raw: str, shop_id: str) -> None:
    """Taobao shops with an id get the canonical shop URLs; the taobao:// shop link becomes https."""
    assert parse_link(raw) == Link(
        platform=TB,
        kind=LinkKind.SHOP,
        web_url=f"https://shop{shop_id}.taobao.com/",
        mobile_url=TAOBAO_SHOP_MOBILE.format(shop_id),
        shop_id=shop_id,
    )


@pytest.mark.parametrize(
    ("raw", "platform", "url", "shop_id"),
    [
        ("https://nike.tmall.com/", TM, "https://nike.tmall.com/", None),
        ("https://nike.tmall.com", TM, "https://nike.tmall.com/", None),
        (
            "https://nike.tmall.com/shop/view_shop.htm?shopId=123",
            TM,
            "https://nike.tmall.com/shop/view_shop.htm?shopId=123",
            "123",
        ),
        (
            "https://nike.m.tmall.com/?shop_id=124&from=timeline",
            TM,
            "https://nike.m.tmall.com/?shop_id=124",
            "124",
        ),
        ("https://apple.tmall.hk/", TM, "https://apple.tmall.hk/", None),
        ("https://nike.tmall.com/?shop_id=abc", TM, "https://nike.tmall.com/?shop_id=abc", None),
        (
            "https://shop.m.taobao.com/shop/shop_index.htm",
            TB,
            "https://shop.m.taobao.com/shop/shop_index.htm",
            None,
        ),
    ],
)
def test_shops_rebuilt(raw: str, platform: Platform, url: str, shop_id: str | None) -> None:
    """Tmall shops and shops without an id keep their own (rebuilt) URL; shop_id comes from the query."""
    assert parse_link(raw) == Link(
        platform=platform, kind=LinkKind.SHOP, web_url=url, mobile_url=url, shop_id=shop_id
    )


@pytest.mark.parametrize(
    "host",
    ["www.tmall.com", "pages.tmall.com", "chaoshi.tmall.com", "list.tmall.com", "detail.tmall.com"],
)
def test_tmall_own_sites_are_not_shops(host: str) -> None:
    """Tmall's own subdomains are pages of Tmall, not shops."""
    link = parse_link(f"https://{host}/wow/x")
    assert (link.platform, link.kind) == (TM, LinkKind.PAGE)


# --- pages ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "platform", "url"),
    [
        ("https://www.taobao.com/", TB, "https://www.taobao.com/"),
        ("https://taobao.com", TB, "https://taobao.com/"),
        (
            "https://market.m.taobao.com/app/x/index.html?a=1",
            TB,
            "https://market.m.taobao.com/app/x/index.html?a=1",
        ),
        ("https://pages.tmall.com/wow/a/act/x", TM, "https://pages.tmall.com/wow/a/act/x"),
        ("https://www.tmall.hk/", TM, "https://www.tmall.hk/"),
        ("https://s.taobao.com/search?q=手机", TB, "https://s.taobao.com/search?q=%E6%89%8B%E6%9C%BA"),
        ("https://s.taobao.com/search?q=%E6%89%8B", TB, "https://s.taobao.com/search?q=%E6%89%8B"),
        ("https://s.taobao.com/search?q=100%", TB, "https://s.taobao.com/search?q=100%25"),
        ("https://s.taobao.com/a<b>?q=\"x'", TB, "https://s.taobao.com/a%3Cb%3E?q=%22x%27"),
        ("https://www.taobao.com/x?from=timeline&isappinstalled=0", TB, "https://www.taobao.com/x"),
        ("https://www.taobao.com/x?a=1&from=groupmessage&b=2", TB, "https://www.taobao.com/x?a=1&b=2"),
        ("https://www.taobao.com/x?", TB, "https://www.taobao.com/x"),
        ("https://www.taobao.com/x#section", TB, "https://www.taobao.com/x"),
        ("https://WWW.TAOBAO.COM/Path", TB, "https://www.taobao.com/Path"),
        ("https://ｗｗｗ.taobao.com/", TB, "https://www.taobao.com/"),
    ],
)
def test_pages(raw: str, platform: Platform, url: str) -> None:
    """Other URLs on allowlisted hosts are pages, rebuilt with https, a clean host and safe quoting."""
    assert parse_link(raw) == Link(platform=platform, kind=LinkKind.PAGE, web_url=url, mobile_url=url)


def test_custom_allowlist() -> None:
    """The allowlist argument decides what passes; unknown hosts are pages of Taobao."""
    assert parse_link("https://go.example.org/x", ("example.org",)).web_url == "https://go.example.org/x"
    with pytest.raises(LinkError, match="not allowed"):
        parse_link("https://item.taobao.com/item.htm?id=1", ("example.org",))


# --- share texts ---------------------------------------------------------------------------------------

SHARE_2023 = (
    "【淘宝】https://m.tb.cn/h.gYx1a2b?tk=AbCd1234 CZ3457 「Title here」 "
    + "点击链接直接打开 或者 淘宝搜索直接打开"
)
SHARE_2018 = (
    "【Title】http://m.tb.cn/h.xxxx 点击链接，再选择浏览器咑閞；或復·制这段描述￥AbCd1234￥后到👉淘♂寳♀👈"
)


def test_share_text_2023() -> None:
    """2023 style: the short link, the token from tk= and the title from 「…」."""
    assert parse_link(SHARE_2023) == Link(
        platform=TB,
        kind=LinkKind.SHORT,
        web_url="https://m.tb.cn/h.gYx1a2b?tk=AbCd1234",
        mobile_url="https://m.tb.cn/h.gYx1a2b?tk=AbCd1234",
        token="AbCd1234",
        title="Title here",
    )


def test_share_text_2018() -> None:
    """2018 style: the short link, the title from the leading 【…】 and the ￥…￥ token."""
    assert parse_link(SHARE_2018) == Link(
        platform=TB,
        kind=LinkKind.SHORT,
        web_url="https://m.tb.cn/h.xxxx",
        mobile_url="https://m.tb.cn/h.xxxx",
        token="AbCd1234",
        title="Title",
    )


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("复制这段描述€AbCd1234€后到👉淘♂寳♀👈", "AbCd1234"),
        ("复制这段描述￥AbCd1234￥后到👉淘♂寳♀👈", "AbCd1234"),
        ("复制这段描述¥Zz9Yy8Xx7¥后到👉淘♂寳♀👈", "Zz9Yy8Xx7"),
        ("復·制这段描述$AbCdEf123456$后咑閞👉手机淘宝👈", "AbCdEf123456"),
        ("复制这段描述(AbCd1234)后到👉淘♂寳♀👈", "AbCd1234"),
        ("复制这段描述（AbCd1234）后到👉淘♂寳♀👈", "AbCd1234"),
        ("复制这段描述￥abc123￥", "abc123"),  # tolerant: 6 characters
        ("复制这段描述￥ABCDEFGH12345678￥", "ABCDEFGH12345678"),  # tolerant: 16 characters
        ("复制这段描述₳AbCd1234₳后到👉淘♂寳♀👈", "AbCd1234"),  # other currency signs
        ("复制这段描述£AbCd1234£打开", "AbCd1234"),
        ("复制💰AbCd1234💰打开👉手机淘宝👈", "AbCd1234"),  # emoji and symbols as marks
        ("复制🔑AbCd1234🔑打开", "AbCd1234"),
        ("📱AbCd1234📱", "AbCd1234"),
        ("✔AbCd1234✔ 打开淘宝", "AbCd1234"),
        ("1復制( CZ3457 WCRJWdrj9qo)打开tao寳抢购/", "WCRJWdrj9qo"),  # newer: a space and CZ3457 inside
        ("5fu😄質3$FbOzd8kUAFb$:// ZH9102,打開/", "FbOzd8kUAFb"),
    ],
)
def test_share_text_without_url_gives_token(text: str, token: str) -> None:
    """A share text with a code in any delimiter and no URL is a TOKEN link."""
    assert parse_link(text) == Link(
        platform=TB, kind=LinkKind.TOKEN, web_url=None, mobile_url=None, token=token
    )


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("【夏季T恤 纯棉】复制这段描述￥AbCd1234￥后到👉淘♂寳♀👈", "夏季T恤 纯棉"),
        ("【淘宝】复制这段描述￥AbCd1234￥后到👉淘♂寳♀👈", None),
        ("【手机淘宝】复制这段描述￥AbCd1234￥", None),
        ("【天猫】复制这段描述￥AbCd1234￥", None),
        ("【淘宝】「Nice  shoes\u202e」 复制这段描述￥AbCd1234￥", "Nice shoes"),  # cleaned
        ("「」 复制￥AbCd1234￥", None),
        ("牙刷\n【推荐理由】30天热卖\n【券后价】 7.9 元\n复制￥AbCd1234￥", None),  # labels, not titles
        ("【在售价】¥29.9\n【夏季新款 纯棉短袖】\n复制￥AbCd1234￥", "夏季新款 纯棉短袖"),
        ("【短袖】\nhttps://m.tb.cn/h.abc?tk=AbCd1234", "短袖"),  # alone on its line: a title
        ("【短袖】https://m.tb.cn/h.abc?tk=AbCd1234", "短袖"),  # followed by the link: a title
    ],
)
def test_share_text_titles(text: str, title: str | None) -> None:
    """Titles come from 「…」 or a 【…】 that is not the platform's name, cleaned of invisible characters."""
    assert parse_link(text).title == title


def test_title_brackets_do_not_yield_tokens() -> None:
    """A '(Model123)' inside a title is not taken for the share code."""
    link = parse_link("【淘宝】https://m.tb.cn/h.abc 「Phone (Model123)」 点击链接直接打开")
    assert (link.token, link.title) == (None, "Phone (Model123)")


def test_share_text_with_item_url() -> None:
    """A share text around an item URL gives the item, with the text's title and code."""
    link = parse_link("【Cool bag】https://item.taobao.com/item.htm?id=77，复制这段描述￥AbCd1234￥")
    assert (link.kind, link.item_id, link.title, link.token) == (LinkKind.ITEM, "77", "Cool bag", "AbCd1234")
    assert link.web_url == TAOBAO_WEB.format("77")


def test_share_text_url_ends_at_punctuation() -> None:
    """The URL in a share text ends at CJK punctuation, quotes and trailing ASCII punctuation."""
    for text in (
        "看看这个：https://m.tb.cn/h.abc。好看",
        "看看这个「https://m.tb.cn/h.abc」",
        'see "https://m.tb.cn/h.abc".',
        "see <https://m.tb.cn/h.abc>",
        "see (https://m.tb.cn/h.abc).",
    ):
        assert parse_link(text).web_url == "https://m.tb.cn/h.abc", text


@pytest.mark.parametrize(
    ("text", "platform", "kind"),
    [
        (
            "【天猫】https://m.tb.cn/h.gYx1a2b?tk=AbCd1234 「Tmall thing」 点击链接直接打开",
            TM,
            LinkKind.SHORT,
        ),
        ("【手机天猫】https://s.click.taobao.com/abc 「x」", TM, LinkKind.AFFILIATE),
        ("【天猫】复制这段描述￥AbCd1234￥后到👉天猫👈", TM, LinkKind.TOKEN),
        # The URL says Taobao: the text's platform does not override it.
        ("【天猫】https://item.taobao.com/item.htm?id=5 「x」", TB, LinkKind.ITEM),
        ("【淘宝】https://detail.tmall.com/item.htm?id=5 「x」", TM, LinkKind.ITEM),
    ],
)
def test_tmall_share_texts(text: str, platform: Platform, kind: LinkKind) -> None:
    """【天猫】 makes a share text Tmall where the URL itself does not say."""
    link = parse_link(text)
    assert (link.platform, link.kind) == (platform, kind)


def test_share_text_starting_like_a_scheme() -> None:
    """'Title: … https://…' is a share text, not a URL with the scheme 'title'."""
    link = parse_link("Title: 【Shoes】 https://m.tb.cn/h.abc?tk=AbCd1234")
    assert (link.kind, link.title, link.token) == (LinkKind.SHORT, "Shoes", "AbCd1234")


def test_empty_allowlist_message() -> None:
    """With nothing allowed, the error says so instead of listing nothing."""
    with pytest.raises(LinkError, match="no hosts are allowed"):
        parse_link("https://item.taobao.com/item.htm?id=1", ())


def test_share_text_first_url_wins_even_if_bad() -> None:
    """The first URL of a share text is the one used; a foreign one is refused, not skipped."""
    assert "not allowed" in _rejected("【淘宝】https://evil.com/x https://item.taobao.com/item.htm?id=1")


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "复制这段描述后到👉淘♂寳♀👈",
        "【淘宝】「A title」",
        "￥abc￥",
        "ftp://x y",
        "Title: 【x】 no link",
        "价格$199999$ 包邮",  # digits alone between marks: a price, not a code
        "/item.taobao.com/123000/",
    ],
)
def test_share_text_without_url_or_token(text: str) -> None:
    """Text with neither a link nor a code is refused."""
    assert "no Taobao link or share code found" in _rejected(text)


# --- rejected inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # look-alikes
        ("https://taobao.com.evil.com/", "'taobao.com.evil.com' is not allowed"),
        ("https://evil.com/?taobao.com", "'evil.com' is not allowed"),
        ("https://evil.com#item.taobao.com", "'evil.com' is not allowed"),
        ("https://item.taobao.com.evil.com", "'item.taobao.com.evil.com' is not allowed"),
        ("https://eviltaobao.com/", "not allowed"),
        ("https://item.taobao.com。evil.com/", "'item.taobao.com.evil.com' is not allowed"),
        ("//evil.com", "'evil.com' is not allowed"),
        ("//evil.com/item.taobao.com", "not allowed"),
        ("https://item.taobao.com@evil.com/", "userinfo"),
        ("https://user:pass@item.taobao.com/", "userinfo"),
        ("https://@item.taobao.com/", "userinfo"),
        ("https:/\\evil.com", "backslash"),
        ("https://evil.com\\@item.taobao.com", "backslash"),
        ("https://item.taobao.com\\.evil.com/", "backslash"),
        ("https://item.taobao.com%2eevil.com/", "not a valid host name"),  # hosts are never decoded
        ("https://item.taobao.com%40evil.com/", "not a valid host name"),
        ("https:evil.com", "no '//'"),
        ("https:/item.taobao.com", "no '//'"),
        ("https:///item.taobao.com", "no host"),
        ("https://", "no host"),
        # schemes
        ("javascript:alert(1)", "'javascript' scheme"),
        ("JavaScript://item.taobao.com/%0aalert(1)", "'javascript' scheme"),
        ("data:text/html,<script>alert(1)</script>", "'data' scheme"),
        ("ftp://item.taobao.com/", "'ftp' scheme"),
        ("intent://item.taobao.com/#Intent;scheme=taobao;end", "'intent' scheme"),
        ("tbopen://m.taobao.com/tbopen/index.html", "'tbopen' scheme"),
        ("taobao://item.taobao.com/item.htm?id=1", "app link"),
        ("taobao://evil.com/shop", "not allowed"),
        ("taobao://shop.m.taobao.com:443/shop/shop_index.htm?shop_id=1", "port"),
        # characters
        ("https://item.taobao.com/\x00", "control character"),
        ("https://item.taobao.com/\x7f", "control character"),
        ("https://item.taobao.com/\x9bx", "control character"),
        ("https://item.tao\u200bbao.com/", "invisible formatting character"),
        ("https://item.taobao.com/\u202eevil", "invisible formatting character"),
        # hosts
        ("https://127.0.0.1/", "IP address"),
        ("https://2130706433/", "IP address"),
        ("https://0x7f.1/", "IP address"),
        ("https://[::1]/", "IP address"),
        ("https://[2001:db8::1]:443/", "IP address"),
        ("https://item.taobao.com:8080/", "port '8080'"),
        ("https://item.taobao.com:80/", "port '80'"),  # 80 is not https's port
        ("http://item.taobao.com:443/", "port '443'"),
        ("https://item.taobao.com:x/", "port 'x'"),
        ("https://item.taobao.com:443:443/", "port"),
        ("https://" + "a" * 250 + ".taobao.com/", "too long"),
        ("https://" + "a" * 64 + ".taobao.com/", "not a valid host name"),
        ("https://item..taobao.com/", "not a valid host name"),
        ("https://item_$.taobao.com/", "not a valid host name"),
        ("https://.taobao.com/", "not a valid host name"),
        # input as a whole
        ("", "no link given"),
        ("   \n\t", "no link given"),
        ("https://item.taobao.com/item.htm?id=1&x=" + "a" * 5000, "too long"),
        ("\ud800", "not valid text"),
    ],
)
def test_rejected(raw: str, expected: str) -> None:
    """Look-alikes, bad schemes, characters, hosts and ports are refused with a sentence saying why."""
    assert expected in _rejected(raw)


@pytest.mark.parametrize(
    ("raw", "web_url"),
    [
        ("https://item.taobao.com/item.htm?id=1 2", "https://item.taobao.com/item.htm?id=1"),
        ("https://item.taobao.com/\u3000x", "https://item.taobao.com/"),
        ("https://item.taobao.com/\u00a0x", "https://item.taobao.com/"),
        ("https://m.tb.cn/h.5abcDEF?tk=AbCd1234 「标题」 点击链接直接打开", "https://m.tb.cn/h.5abcDEF?tk=AbCd1234"),
    ],
)
def test_text_with_whitespace_is_a_share_text(raw: str, web_url: str) -> None:
    """Whitespace ends the link: the input is read as a share text that starts with its link."""
    assert parse_link(raw).web_url == web_url


@pytest.mark.parametrize(
    ("raw", "web_url"),
    [
        ("https://item.taobao.com/item.htm?id=123\t456", "https://item.taobao.com/item.htm?id=123456"),
        ("https://item.taobao.com/item.htm?id=123\r\n456", "https://item.taobao.com/item.htm?id=123456"),
        ("https://item.\ntaobao.com/item.htm?id=7", "https://item.taobao.com/item.htm?id=7"),
        ("https://item.taobao.com/\tx", "https://item.taobao.com/x"),
    ],
)
def test_tabs_and_line_breaks_inside_a_bare_link_are_dropped_as_browsers_do(raw: str, web_url: str) -> None:
    """WHATWG URL parsing removes tabs and line breaks: the link is the one a browser opens, never a part."""
    assert parse_link(raw).web_url == web_url


def test_a_line_break_before_words_ends_the_link() -> None:
    """A line break followed by Chinese words is a share text's next line, as a space would be."""
    link = parse_link("https://item.taobao.com/item.htm?id=123\n夏季新款 纯棉短袖")
    assert link.item_id == "123"


def test_share_text_starting_with_foreign_link_is_refused() -> None:
    """A share text whose link is not allowlisted is refused, not searched for a second link."""
    assert "not allowed" in _rejected("https://evil.com/ https://item.taobao.com/item.htm?id=1")


def test_fullwidth_dot_host_goes_where_a_browser_would() -> None:
    """item.taobao。com maps to item.taobao.com under IDNA, and we emit the mapped ASCII host."""
    link = parse_link("https://item.taobao。com/abc")
    assert link.web_url == "https://item.taobao.com/abc"


def test_punycode_host_is_emitted_ascii() -> None:
    """A non-ASCII subdomain is emitted in its IDNA (xn--) form, never as Unicode."""
    link = parse_link("https://店铺.taobao.com/")
    assert link.web_url is not None and link.web_url.isascii()
    assert urlsplit(link.web_url).hostname == "店铺".encode("idna").decode() + ".taobao.com"


def test_length_cap_is_4096() -> None:
    """4096 characters are accepted, 4097 are not."""
    base = "https://www.taobao.com/x?q="
    assert parse_link(base + "a" * (4096 - len(base))).kind is LinkKind.PAGE
    assert "too long" in _rejected(base + "a" * (4097 - len(base)))


@pytest.mark.parametrize(
    "raw",
    ["https://" + "x" * 200 + ".evil.example/", "javascript:" + "x" * 500, "复制" * 300],
)
def test_error_names_the_value_shortly(raw: str) -> None:
    """The error repr-quotes the bad value and cuts it to about 80 characters."""
    message = _rejected(raw)
    assert "…'" in message
    assert len(message) < 300


def test_error_is_a_value_error() -> None:
    """LinkError is a ValueError, so generic handlers still catch it."""
    assert issubclass(LinkError, ValueError)


def test_non_str_input_is_a_link_error() -> None:
    """Even a wrong type is reported as a LinkError."""
    with pytest.raises(LinkError):
        parse_link(None)  # type: ignore[arg-type]


# --- property: nothing but a safe Link or a LinkError -------------------------------------------------


def _check_safe(raw: str) -> None:
    """Either a Link whose URLs are https on an allowlisted host, or a LinkError; nothing else."""
    try:
        link = parse_link(raw)
    except LinkError as err:
        assert str(err)
        return
    assert isinstance(link, Link)
    if link.kind is LinkKind.TOKEN:
        assert link.web_url is None and link.mobile_url is None and link.token
        return
    for url in (link.web_url, link.mobile_url):
        assert url is not None and url.startswith("https://")
        assert url.isascii()
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.port is None and not parts.username
        assert parts.hostname is not None and host_allowed(parts.hostname, DEFAULT_ALLOWED_HOSTS)
        assert parts.netloc == parts.hostname
        assert not parts.fragment
    if link.kind is LinkKind.ITEM:
        assert link.item_id is not None and link.item_id.isascii() and link.item_id.isdigit()


TRICKY_HOSTS = [
    "item.taobao.com",
    "detail.tmall.com",
    "m.tb.cn",
    "s.click.taobao.com",
    "uland.taobao.com",
    "shop123.taobao.com",
    "nike.tmall.com",
    "evil.com",
    "taobao.com.evil.com",
    "item.taobao。com",
    "taobao.com。evil.com",
    "ｔａｏｂａｏ.com",
    "127.0.0.1",
    "[::1]",
    "item.taobao.com@evil.com",
    "evil.com\\@item.taobao.com",
    "item.taobao.com:8080",
    "item.taobao.com.",
    "xn--.taobao.com",
    "%65vil.com",
    "",
]
URL_PIECES = st.sampled_from(
    [
        "/",
        "?",
        "#",
        "@",
        ":",
        "\\",
        "%",
        "%2e",
        "%40",
        "%zz",
        ".",
        "id=",
        "tk=",
        "&",
        "=",
        " ",
        "。",
        "h.",
        "item.htm",
    ]
)
URLS = st.builds(
    lambda scheme, host, tail: f"{scheme}{host}{tail}",
    st.sampled_from(
        ["https://", "http://", "//", "HTTPS://", "taobao://", "javascript:", "https:/", "https:\\\\", ""]
    ),
    st.sampled_from(TRICKY_HOSTS) | st.text(min_size=0, max_size=20),
    st.lists(
        URL_PIECES | st.text(max_size=5) | st.from_regex(r"[0-9]{1,22}", fullmatch=True), max_size=8
    ).map("".join),
)
SHARE_TEXTS = st.builds(
    lambda head, url, mid, token, tail: f"{head}{url}{mid}{token}{tail}",
    st.sampled_from(["【淘宝】", "【天猫】", "【Title】", "", "复制这段描述"]),
    URLS | st.just(""),
    st.sampled_from([" CZ3457 ", " 「Title」 ", "，", "。", " ", ""]),
    st.builds(
        lambda d1, body, d2: f"{d1}{body}{d2}",
        st.sampled_from(list("￥€¥$()（）")),
        st.from_regex(r"[A-Za-z0-9]{4,18}", fullmatch=True),
        st.sampled_from(list("￥€¥$()（）")),
    )
    | st.just(""),
    st.sampled_from(["后到👉淘♂寳♀👈", " 点击链接直接打开", ""]),
)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_property_any_text(raw: str) -> None:
    """Any text gives a safe Link or a LinkError."""
    _check_safe(raw)


@settings(max_examples=800, deadline=None)
@given(URLS)
def test_property_url_like(raw: str) -> None:
    """URL-shaped text built from tricky hosts and pieces gives a safe Link or a LinkError."""
    _check_safe(raw)


@settings(max_examples=400, deadline=None)
@given(SHARE_TEXTS)
def test_property_share_texts(raw: str) -> None:
    """Share-text-shaped input gives a safe Link or a LinkError."""
    _check_safe(raw)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[0-9]{1,20}", fullmatch=True))
def test_property_item_ids_round_trip(item_id: str) -> None:
    """Any 1–20 digit id is an item with exactly that id."""
    link = parse_link(f"https://item.taobao.com/item.htm?id={item_id}")
    assert (link.kind, link.item_id) == (LinkKind.ITEM, item_id)
