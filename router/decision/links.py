"""Turn the `url` value of a click into a normalised `Link`, or a `LinkError` that says why not.

The model:

* The input is either a bare URL (it starts with a scheme or `//`) or a share text (淘口令) that a
  user copied out of the Taobao app. From a share text we take the first `http(s)://` URL, the title
  (「…」, or a leading 【…】 that is not just the platform's name) and the token (`tk=` of the link, or
  a ￥…￥-style code). A share text with a token and no URL becomes a `TOKEN` link.
* A URL is parsed by hand, strictly, instead of with `urlsplit`: browsers and Python disagree about
  backslashes, userinfo, percent-encoded hosts and numeric hosts, and every such disagreement is a way
  to smuggle a foreign host past an allowlist. So anything ambiguous is refused rather than guessed.
* The host is mapped and encoded the way browsers do (UTS-46 non-transitional IDNA, as the WHATWG
  URL standard says: case, fullwidth letters and dots `。．｡`), then checked against the allowlist
  exactly or with a dot-boundary suffix match. A host a WHATWG parser would read as IPv4
  (`2130706433`, `0x7f.1`) is refused. The path's dot segments (`..`, `%2e%2e`) are resolved as a
  browser resolves them. Everything we emit is re-serialised from the checked parts (`https://`, the
  ASCII host, the re-quoted path and query), so the browser is sent to exactly the host we checked,
  and the URL we emit is already in its WHATWG-serialised form.
* Known shapes (items, shops, short/affiliate/coupon links) get their canonical URLs; any other page
  on an allowlisted host is kept as a `PAGE`.

Percent-decoding: the web layer already decoded the `url` parameter once. This module never decodes
again; query values are read raw (so `id=%31` is not an item id) and hosts are never decoded at all.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from typing import NamedTuple
from urllib.parse import quote

import idna  # UTS-46 mapping as browsers do it; comes with httpx

from router.decision.types import Link, LinkKind, Platform


class LinkError(ValueError):
    """The input is not a usable destination.

    str(err) is a sentence shown to the user, naming the bad value (truncated to ~80 chars,
    repr-quoted) and what was expected.
    """


DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("taobao.com", "tmall.com", "tb.cn", "tmall.hk")

MAX_INPUT_CHARS = 4096
MAX_HOST_CHARS = 253  # the DNS limit for a name without its trailing dot
_SHOWN_CHARS = 80
_MAX_TITLE_CHARS = 200

_EXPECTED_LINK = "expected a Taobao or Tmall link such as https://item.taobao.com/item.htm?id=123"

# --- compiled once: parse_link runs on every click --------------------------------------------------

# RFC 3986 scheme, followed by its colon.
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_WHITESPACE_RE = re.compile(r"\s")
# In ASCII, the characters a URL may not contain here: controls, space, DEL and the backslash (which
# browsers read as '/', so `https:/\evil.com` and `https://evil.com\@taobao.com` go to evil.com).
_BAD_ASCII_RE = re.compile(r"[\x00-\x20\x7f\\]")
# After the scheme: authority, path, query and fragment. No newlines can be left by then.
_HIER_RE = re.compile(r"//(?P<authority>[^/?#]*)(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#.*)?")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_HOST_RE = re.compile(r"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")
# WHATWG URL parsers treat a host whose last label is numeric (or 0x-hex) as IPv4: 2130706433, 0x7f.1
_IPV4ISH_LAST_LABEL_RE = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)")
_DIGITS_ID_RE = re.compile(r"[0-9]{1,20}")
# A '%' that does not start a %xx escape; it is quoted as %25 so the output is a valid URL.
_LONE_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")

# Share texts.
_LINK_CHARS = r"[^\s\"'<>，。、；：！？「」『』【】《》〈〉（）〔〕［］｛｝“”‘’]"  # what a share text's link may hold
_SHARE_URL_RE = re.compile(rf"https?://{_LINK_CHARS}+", re.IGNORECASE)
# WHATWG URL parsing removes every ASCII tab and line break from a URL before reading it.
_TAB_OR_NEWLINE_RE = re.compile(r"[\t\n\r]")
# A tab or line break right after a share text's link, then more characters a link could go on with.
_BROKEN_LINK_RE = re.compile(rf"[\t\n\r]+({_LINK_CHARS}+)")
# A line of these alone (-----, ====, ....) after a link decorates the text; it does not continue the link.
_DECORATION = frozenset("-=_~*.·+#")
_URL_TRAILING_PUNCTUATION = ".,;:!?)]}"
_HOST_ONLY_URL_RE = re.compile(r"[A-Za-z]+://[^/?#]*")
_IDNA_DOTS = "。．｡"  # what UTS-46 maps to '.'
# The marks a share code is wrapped in. Taobao varies them to slip past chat apps' filters: currency signs
# (￥ € $ ₳ £ …, the whole Unicode currency block), brackets, and emoji or symbols (💰 🔑 📱 ✔).
_TOKEN_MARKS = (
    "$¢£¤¥₠-₿﹩＄￠￡￥￦()（）"  # currency signs, brackets
    "\u2190-\u21ff\u2300-\u23ff\u25a0-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff"  # arrows, symbols, emoji
)
# A code between two marks: 6-16 letters and digits, a space allowed inside the marks, and the fixed
# `CZ3457`-style marker newer texts put before the code in the same brackets: `1復制( CZ3457 WCRJWdrj9qo)`.
# A code has a letter in it: digits alone between marks are a price or a count.
_TOKEN_RE = re.compile(
    rf"[{_TOKEN_MARKS}] ?(?:CZ[0-9]{{4}} )?((?=[0-9]{{0,15}}[A-Za-z])[A-Za-z0-9]{{6,16}}) ?[{_TOKEN_MARKS}]"
)
# 【在售价】¥29.9, 【推荐理由】30天热卖: a short bracketed word followed by its value is a label, not a title.
_LABEL_MAX_CHARS = 6
_TK_RE = re.compile(r"[A-Za-z0-9]{6,16}")
_CORNER_TITLE_RE = re.compile(r"「([^「」]*)」")
_LENTICULAR_RE = re.compile(r"【([^【】\n]*)】([^【\n]*)")
_BRACKETED_RE = re.compile(r"「[^「」]*」|【[^【】]*】")
_TMALL_MARK_RE = re.compile(r"【(?:手机)?天猫】")
# 【淘宝】 and friends name the app the text came from, not the thing shared.
_PLATFORM_WORDS = frozenset({"淘宝", "天猫", "手机淘宝", "手机天猫"})
# Stripped from titles: invisible bidi overrides could make a title read differently on a page.
_TITLE_JUNK_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_TITLE_SPACE_RE = re.compile(r"\s+")

# Path and query characters left as they are when re-quoting. '%' is kept so existing escapes are
# not double-encoded; quotes, '<', '>' and friends are encoded so the URL is safe to put in a page.
_PATH_SAFE = "/%:@!$&()*+,;="
_QUERY_SAFE = _PATH_SAFE + "?"

# --- known Taobao / Tmall shapes ----------------------------------------------------------------------

# Hosts whose pages are an item whenever they carry a digits-only `id`, whatever the path.
_ID_ITEM_HOSTS = frozenset(
    {
        "item.taobao.com",
        "m.intl.taobao.com",
        "detail.tmall.com",
        "detail.m.tmall.com",
        "chaoshi.detail.tmall.com",
        "detail.tmall.hk",
    }
)
# Hosts where only one path is an item page (with `id`).
_ID_ITEM_PATHS = {
    "h5.m.taobao.com": frozenset({"/awp/core/detail.htm"}),
    "main.m.taobao.com": frozenset({"/detail/index.html"}),
}
# Hosts with the item id in the path.
_PATH_ITEM_RES = {
    "a.m.taobao.com": re.compile(r"/i([0-9]{1,20})\.html?"),
    "www.taobao.com": re.compile(r"/list/item/([0-9]{1,20})\.html?"),  # an item's page in Taobao's listings
    "world.taobao.com": re.compile(r"/item/([0-9]{1,20})\.html?"),
}
_SHORT_PATH_RE = re.compile(r"/h\.[A-Za-z0-9]+/?")
_AFFILIATE_HOST = "s.click.taobao.com"
_COUPON_HOST = "uland.taobao.com"
_TAOBAO_SHOP_HOST_RE = re.compile(r"shop([0-9]{1,20})\.(?:m\.)?taobao\.com")
_TAOBAO_MOBILE_SHOP_HOST = "shop.m.taobao.com"
_TMALL_SHOP_HOST_RE = re.compile(r"([a-z0-9_-]+)\.(?:m\.)?tmall\.(?:com|hk)")
# Subdomains of tmall.com/tmall.hk that are Tmall's own sites, not a shop's name.
_TMALL_NOT_SHOPS = frozenset(
    {
        "www", "m", "detail", "pages", "chaoshi", "list", "login", "s", "search", "cart", "buy",
        "vip", "brand", "jx", "ju", "wt", "world", "global", "help", "service", "member",
        "passport", "register", "rule", "mall", "miao", "err", "zhaoshang", "mdetail", "h5",
    }
)  # fmt: skip
_SHOP_ID_PARAMS = ("shop_id", "shopId")
# WeChat appends these when a page is re-shared from its browser; they mean nothing to Taobao.
_WECHAT_PARAMS = frozenset({"from", "isappinstalled"})
_TMALL_DOMAINS = frozenset({"tmall.com", "tmall.hk"})
_TMALL_DOTTED = (".tmall.com", ".tmall.hk")
_SHORT_DOMAINS = frozenset({"tb.cn"})
_SHORT_DOTTED = (".tb.cn",)
# Kinds whose host says nothing about the platform, so a 【天猫】 share text may decide it.
_NEUTRAL_KINDS = frozenset({LinkKind.SHORT, LinkKind.AFFILIATE, LinkKind.COUPON})
_DEFAULT_PORTS = {"https": 443, "http": 80}


# --- hosts ---------------------------------------------------------------------------------------------


def _ascii_host(host: str) -> str | None:
    """Lower-case, IDNA-encode and validate a host; None when it is not a usable DNS name."""
    if not host.isascii():
        try:
            # UTS-46, non-transitional, as browsers: fullwidth letters to ASCII, '。' to '.', 'ß' kept
            # (xn--zca, not "ss"). Python's own "idna" codec is IDNA 2003 and maps ß and ς elsewhere.
            host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if len(host) > MAX_HOST_CHARS or not _HOST_RE.fullmatch(host):
        return None
    if "xn--" in host and not all(_valid_a_label(label) for label in host.split(".") if label.startswith("xn--")):
        return None
    return host


def _valid_a_label(label: str) -> bool:
    """Whether an xn-- label decodes to a valid IDNA name (browsers refuse a broken one)."""
    try:
        idna.ulabel(label)
    except (idna.IDNAError, UnicodeError, ValueError):
        return False
    return True


def _host_is(host: str, names: frozenset[str], dotted: tuple[str, ...]) -> bool:
    """Whether host is one of names or a subdomain of one (dotted holds them with a leading dot)."""
    return host in names or host.endswith(dotted)


@functools.lru_cache(maxsize=32)
def _allowed_forms(allowed: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The allowlist as exact names and '.'-prefixed suffixes, normalised like hosts."""
    names = frozenset(h for h in (_ascii_host(a) for a in allowed if isinstance(a, str)) if h)
    return names, tuple("." + name for name in names)


def _is_allowed_ascii(host: str, allowed: tuple[str, ...]) -> bool:
    names, dotted = _allowed_forms(allowed if isinstance(allowed, tuple) else tuple(allowed))
    return _host_is(host, names, dotted)


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Exact match or dot-boundary suffix match of `host` against `allowed`.

    item.taobao.com is allowed by taobao.com; taobao.com.evil.com and eviltaobao.com are not.
    Lower-cased, a trailing dot stripped, non-ASCII hosts IDNA-encoded first (failure -> False).
    Hosts that are not valid DNS names (with '/', '@', '%', ...) are never allowed.
    """
    if not isinstance(host, str):
        return False
    ascii_host = _ascii_host(host)
    return ascii_host is not None and _is_allowed_ascii(ascii_host, allowed)


# --- errors --------------------------------------------------------------------------------------------


def _shown(value: str) -> str:
    """A value as it appears in an error: repr-quoted, cut to about 80 characters."""
    if len(value) > _SHOWN_CHARS:
        value = value[: _SHOWN_CHARS - 1] + "…"
    return repr(value)


def _bad_character(url: str) -> str | None:
    """Name the first character that may not appear in a URL here, or None."""
    match = _BAD_ASCII_RE.search(url)
    if match:
        char = match.group()
        if char == "\\":
            return "a backslash"
        return "whitespace" if char.isspace() else "a control character"
    if url.isascii():
        return None
    for char in url:
        if char.isascii():
            continue
        category = unicodedata.category(char)
        if category in ("Zs", "Zl", "Zp") or char.isspace():
            return "whitespace"
        if category in ("Cc", "Cs"):
            return "a control character"
        if category == "Cf":
            # Zero-width and bidi characters: invisible, and IDNA silently drops some of them.
            return "an invisible formatting character"
    return None


# --- URLs ----------------------------------------------------------------------------------------------


class _Parts(NamedTuple):  # a NamedTuple: cheaper to build than a dataclass, on every click
    """A checked URL: https scheme implied, ASCII allowlisted host, raw path and query."""

    host: str
    path: str
    query: str


def _split_url(url: str, allowed: tuple[str, ...]) -> _Parts:
    """Check a bare URL and split it into parts; raise LinkError for anything we will not follow."""
    bad = _bad_character(url)
    if bad:
        raise LinkError(
            f"link {_shown(url)} contains {bad}, which is not allowed in a link: {_EXPECTED_LINK}"
        )
    if url.startswith("//"):
        scheme, rest = "https", url  # scheme-relative: we only ever emit https
    else:
        match = _SCHEME_RE.match(url)
        if not match:
            raise LinkError(f"{_shown(url)} is not a link: {_EXPECTED_LINK}")
        scheme, rest = match.group()[:-1].lower(), url[match.end() :]
        if scheme not in ("http", "https", "taobao"):
            raise LinkError(
                f"link {_shown(url)} uses the {scheme!r} scheme, which is not allowed: "
                "expected an http:// or https:// link"
            )
    hier = _HIER_RE.fullmatch(rest)
    if not hier:
        raise LinkError(f"link {_shown(url)} has no '//' after {scheme + ':'!r}: {_EXPECTED_LINK}")
    host = _checked_host(hier["authority"], scheme, url, allowed)
    if scheme == "taobao" and host != _TAOBAO_MOBILE_SHOP_HOST:
        # The one app link we take is the shop link Taobao itself shares; it has an https twin.
        raise LinkError(
            f"app link {_shown(url)} is not accepted: expected an https:// link "
            f"(taobao:// is accepted only for {_TAOBAO_MOBILE_SHOP_HOST} shop pages)"
        )
    return _Parts(host=host, path=_resolved_path(hier["path"]), query=hier["query"] or "")


_SINGLE_DOT = frozenset({".", "%2e"})
_DOUBLE_DOT = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})


def _resolved_path(path: str) -> str:
    """The path with '.' and '..' segments (also as %2e, any case) resolved as the WHATWG URL parser does.

    The emitted URL is then already what a browser would make of it, and known shapes are matched on
    the path the browser will request (`/x/../i123.htm` is `/i123.htm`).
    """
    if "." not in path and "%2" not in path:  # nothing to resolve: the common case, kept cheap
        return path or "/"
    segments = path[1:].split("/")
    out: list[str] = []
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        lowered = segment.lower()
        if lowered in _DOUBLE_DOT:
            if out:
                out.pop()
            if index == last:
                out.append("")
        elif lowered in _SINGLE_DOT:
            if index == last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def _checked_host(authority: str, scheme: str, url: str, allowed: tuple[str, ...]) -> str:
    """The authority's host, normalised and allowlisted; raise LinkError otherwise."""
    if "@" in authority:
        what = "userinfo (a 'name@' part before the host)"
        raise LinkError(f"link {_shown(url)} has {what}, which is not allowed: {_EXPECTED_LINK}")
    if authority.startswith("["):
        raise LinkError(
            f"link {_shown(url)} has an IP address as its host, which is not allowed: {_EXPECTED_LINK}"
        )
    raw_host, colon, port = authority.partition(":")
    if colon and port and not (_PORT_RE.fullmatch(port) and int(port) == _DEFAULT_PORTS.get(scheme)):
        raise LinkError(f"link {_shown(url)} has port {port!r}, which is not allowed: expected no port")
    if not raw_host:
        raise LinkError(f"link {_shown(url)} has no host: {_EXPECTED_LINK}")
    if len(raw_host) > MAX_HOST_CHARS:
        raise LinkError(f"host {_shown(raw_host)} is too long: expected at most {MAX_HOST_CHARS} characters")
    host = _ascii_host(raw_host)
    if host is None:
        raise LinkError(f"host {_shown(raw_host)} is not a valid host name: {_EXPECTED_LINK}")
    if _IPV4ISH_LAST_LABEL_RE.fullmatch(host.rpartition(".")[2]):
        raise LinkError(f"host {_shown(raw_host)} is an IP address, which is not allowed: {_EXPECTED_LINK}")
    if not _is_allowed_ascii(host, allowed):
        raise LinkError(f"host {_shown(host)} is not allowed: {_expected_hosts(allowed)}")
    return host


def _expected_hosts(allowed: tuple[str, ...]) -> str:
    names = ", ".join(str(a) for a in allowed)
    return f"expected {names} or one of their subdomains" if names else "no hosts are allowed"


def _quote(text: str, safe: str) -> str:
    """Percent-encode what needs it, keeping existing %xx escapes as they are."""
    return quote(_LONE_PERCENT_RE.sub("%25", text), safe=safe)


def _rebuilt(parts: _Parts, drop: frozenset[str] = frozenset()) -> str:
    """The URL again, from its checked parts: https, ASCII host, re-quoted path and query, no fragment."""
    query = parts.query
    if drop and query:
        query = "&".join(p for p in query.split("&") if p and p.partition("=")[0] not in drop)
    url = f"https://{parts.host}{_quote(parts.path, _PATH_SAFE)}"
    return f"{url}?{_quote(query, _QUERY_SAFE)}" if query else url


def _params(query: str) -> dict[str, str]:
    """Query parameters, raw (not decoded again); the first of repeated names wins."""
    params: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        params.setdefault(name, value)
    return params


# --- classification ------------------------------------------------------------------------------------


def _item_id(parts: _Parts, params: dict[str, str]) -> str | None:
    """The item id if this URL is a known item page shape, else None."""
    host = parts.host
    if host in _ID_ITEM_HOSTS or parts.path in _ID_ITEM_PATHS.get(host, ()):
        item_id = params.get("id", "")
        return item_id if _DIGITS_ID_RE.fullmatch(item_id) else None
    path_re = _PATH_ITEM_RES.get(host)
    if path_re:
        match = path_re.fullmatch(parts.path)
        return match.group(1) if match else None
    return None


def _item_link(platform: Platform, item_id: str) -> Link:
    if platform is Platform.TMALL:
        web = f"https://detail.tmall.com/item.htm?id={item_id}"
        mobile = f"https://detail.m.tmall.com/item.htm?id={item_id}"
    else:
        web = f"https://item.taobao.com/item.htm?id={item_id}"
        mobile = f"https://h5.m.taobao.com/awp/core/detail.htm?id={item_id}"
    return Link(platform=platform, kind=LinkKind.ITEM, web_url=web, mobile_url=mobile, item_id=item_id)


def _shop_id_param(params: dict[str, str]) -> str | None:
    for name in _SHOP_ID_PARAMS:
        value = params.get(name, "")
        if _DIGITS_ID_RE.fullmatch(value):
            return value
    return None


def _shop_link(parts: _Parts, params: dict[str, str]) -> Link | None:
    """A shop Link if the URL is a known shop shape, else None."""
    host = parts.host
    match = _TAOBAO_SHOP_HOST_RE.fullmatch(host)
    shop_id = match.group(1) if match else None
    if match or host == _TAOBAO_MOBILE_SHOP_HOST:
        shop_id = shop_id or _shop_id_param(params)
        if shop_id:
            return Link(
                platform=Platform.TAOBAO,
                kind=LinkKind.SHOP,
                web_url=f"https://shop{shop_id}.taobao.com/",
                mobile_url=f"https://{_TAOBAO_MOBILE_SHOP_HOST}/shop/shop_index.htm?shop_id={shop_id}",
                shop_id=shop_id,
            )
        url = _rebuilt(parts, _WECHAT_PARAMS)
        return Link(platform=Platform.TAOBAO, kind=LinkKind.SHOP, web_url=url, mobile_url=url)
    match = _TMALL_SHOP_HOST_RE.fullmatch(host)
    if match and match.group(1) not in _TMALL_NOT_SHOPS:
        # A Tmall shop is known by its name's host; we have no verified id-based URL for it.
        url = _rebuilt(parts, _WECHAT_PARAMS)
        return Link(
            platform=Platform.TMALL,
            kind=LinkKind.SHOP,
            web_url=url,
            mobile_url=url,
            shop_id=_shop_id_param(params),
        )
    return None


def _classify(parts: _Parts) -> Link:
    """The Link for a checked URL: a known shape, or a page on an allowlisted host."""
    params = _params(parts.query)
    platform = Platform.TMALL if _host_is(parts.host, _TMALL_DOMAINS, _TMALL_DOTTED) else Platform.TAOBAO
    item_id = _item_id(parts, params)
    if item_id:
        return _item_link(platform, item_id)
    if _host_is(parts.host, _SHORT_DOMAINS, _SHORT_DOTTED) and _SHORT_PATH_RE.fullmatch(parts.path):
        tk = params.get("tk", "")
        url = _rebuilt(parts)  # tk stays: it is what the short link resolves with
        token = tk if _TK_RE.fullmatch(tk) else None
        return Link(platform=platform, kind=LinkKind.SHORT, web_url=url, mobile_url=url, token=token)
    if parts.host in (_AFFILIATE_HOST, _COUPON_HOST):
        kind = LinkKind.AFFILIATE if parts.host == _AFFILIATE_HOST else LinkKind.COUPON
        url = _rebuilt(parts)
        return Link(platform=platform, kind=kind, web_url=url, mobile_url=url)
    shop = _shop_link(parts, params)
    if shop:
        return shop
    url = _rebuilt(parts, _WECHAT_PARAMS)
    return Link(platform=platform, kind=LinkKind.PAGE, web_url=url, mobile_url=url)


def _parse_url(url: str, allowed: tuple[str, ...]) -> Link:
    return _classify(_split_url(url, allowed))


# --- share texts ---------------------------------------------------------------------------------------


def _clean_title(title: str) -> str | None:
    title = _TITLE_SPACE_RE.sub(" ", _TITLE_JUNK_RE.sub("", title)).strip()
    if len(title) > _MAX_TITLE_CHARS:
        title = title[: _MAX_TITLE_CHARS - 1] + "…"
    return title or None


def _title(text: str) -> str | None:
    """「Title」 (2023 style), else the first 【Title】 that is not just the platform's name (2018 style)."""
    match = _CORNER_TITLE_RE.search(text)
    if match:
        title = _clean_title(match.group(1))
        if title:
            return title
    titles: list[str] = []
    promotion = False  # a text with labels (【券后价】 7.9 元) labels with all its short 【】 words
    # Whether this bracket's line has words before it (other brackets aside), kept up as the matches go:
    # looking back from each bracket would make a text of many brackets cost its length squared.
    words_before, previous_end = False, 0
    for match in _LENTICULAR_RE.finditer(text):
        gap = text[previous_end : match.start()]
        newline = gap.rfind("\n")
        words_before = bool(gap[newline + 1 :].strip()) if newline >= 0 else words_before or bool(gap.strip())
        previous_end = match.end()
        rest_of_line = match.group(2)
        title = _clean_title(match.group(1))
        if title and title not in _PLATFORM_WORDS:
            if _is_label(title, words_before, rest_of_line):
                promotion = True
            else:
                titles.append(title)
        words_before = words_before or bool(rest_of_line.strip())
    if promotion:
        titles = [title for title in titles if not _is_short_word(title)]
    return titles[0] if titles else None


def _is_short_word(word: str) -> bool:
    return len(word) <= _LABEL_MAX_CHARS and " " not in word


def _is_label(word: str, words_before: bool, rest_of_line: str) -> bool:
    """A short word in 【】 with other words on its line labels them: 【券后价】 7.9 元, 皂液【包邮】.

    A title in 【】 is long, or is followed by the link (【短袖】https://…), or stands alone on its line.
    """
    if not _is_short_word(word):
        return False
    rest = rest_of_line.strip()
    if rest:
        return rest[:4].lower() != "http"
    return words_before


def _token(text: str) -> str | None:
    """The ￥AbCd1234￥-style code, looked for outside titles so a title's '(Model123)' is not taken."""
    match = _TOKEN_RE.search(_BRACKETED_RE.sub(" ", text))
    return match.group(1) if match else None


def _check_url_ends(url: str, after: str) -> None:
    """Refuse a share text's host-only URL that a browser would read as running on into what follows.

    Browsers drop tabs and line breaks inside a URL and read '。' in a host as a dot, so in
    "https://taobao.com\\n.evil.com" or "https://taobao.com。evil.com" they see the host
    taobao.com.evil.com, not the taobao.com our share-text reading stops at. A URL with a path, query
    or fragment is safe to cut: what follows could only change those.
    """
    if not after or _HOST_ONLY_URL_RE.fullmatch(url) is None:
        return
    joined = after.lstrip("\t\r\n")
    if not joined or joined[0].isspace() or joined[0] in "/?#":
        return  # a space ends the URL for a browser too (or makes its host invalid); '/' keeps the host
    if len(joined) == len(after) and joined[0] not in _IDNA_DOTS:
        return  # the share-text reading stopped where a browser's host stops or fails
    raise LinkError(
        f"link {_shown(url)} runs on into {_shown(after[:20])} without a space: a browser would read both as "
        "one host; put a space after the link"
    )


def _is_control(char: str) -> bool:
    """A character that ends a share text's link for us (it is whitespace to Python) but not for a browser:
    not a space, tab or line break, but a control, line or paragraph separator."""
    return char not in " \t\r\n" and (unicodedata.category(char) in ("Cc", "Zl", "Zp"))


def _identity(link: Link) -> tuple[object, ...]:
    """What a link leads to: its kind, item or shop, and page (host and path); not its query's extras."""
    page = link.web_url.partition("?")[0] if link.web_url else None
    return (link.kind, link.item_id, link.shop_id, None if link.item_id or link.shop_id else page)


def _check_not_broken(found: str, after: str, link: Link, allowed: tuple[str, ...]) -> None:
    """Refuse a share text's link that a tab or line break cuts short of another item, shop or page.

    Browsers drop tabs and line breaks inside a URL, so "https://item.taobao.com/item.htm?id=123<TAB>456"
    is item 123456 to them, not the item 123 our reading stops at. When the link read on through the
    break leads somewhere else than the link cut there, the text is ambiguous: refused, never guessed.
    A break followed by other text (a title, 「…」, Chinese words) ends the link, as a space does.
    """
    broken = _BROKEN_LINK_RE.match(after)
    if broken is None:
        return
    more = broken.group(1)
    if not more[0].isascii() and unicodedata.category(more[0])[0] != "C":
        return  # words on the next line (a title, 打开淘宝): the link ended at the break
    if len(more) >= 3 and _DECORATION.issuperset(more):
        return  # a decoration line (-----): the link ended at the break
    joined = found + broken.group(1)
    try:
        same = _identity(_parse_url(joined.rstrip(_URL_TRAILING_PUNCTUATION), allowed)) == _identity(link)
    except LinkError:
        same = False
    if not same:
        raise LinkError(
            f"link {_shown(found)} is cut by a tab or line break before {_shown(broken.group(1)[:20])}: a browser "
            "drops those and would read one longer link, to another page; remove the break, or put a space "
            "after the link"
        )


def _parse_share_text(text: str, allowed: tuple[str, ...]) -> Link:
    title = _title(text)
    tmall_text = _TMALL_MARK_RE.search(text) is not None
    match = _SHARE_URL_RE.search(text)
    if match is None:
        token = _token(text)
        if token is None:
            raise LinkError(
                f"no Taobao link or share code found in {_shown(text)}: expected a link, "
                "or a share text with a code like ￥AbCd1234￥"
            )
        platform = Platform.TMALL if tmall_text else Platform.TAOBAO
        return Link(
            platform=platform, kind=LinkKind.TOKEN, web_url=None, mobile_url=None, token=token, title=title
        )
    url = match.group().rstrip(_URL_TRAILING_PUNCTUATION)
    after = text[match.end() :]
    if after and _is_control(after[0]):
        # A browser keeps (percent-encodes) a vertical tab, form feed, NEL or line separator inside a
        # URL, so it would not stop where a share text's link stops: refused rather than read short.
        raise LinkError(
            f"link {_shown(url)} is followed by a control character ({after[0]!r}): {_EXPECTED_LINK}"
        )
    _check_url_ends(url, after)
    link = _parse_url(url, allowed)
    _check_not_broken(match.group(), after, link, allowed)
    token = link.token or _token(text[: match.start()] + " " + text[match.end() :])
    platform = Platform.TMALL if tmall_text and link.kind in _NEUTRAL_KINDS else link.platform
    return dataclasses.replace(link, platform=platform, token=token, title=title)


# --- entry point ---------------------------------------------------------------------------------------


def _is_bare_url(text: str) -> bool:
    """Whether the input is one URL rather than a share text.

    Anything with whitespace inside is a share text, even when it starts with its link
    ("https://m.tb.cn/h.x?tk=… 「title」 点击链接直接打开"), and so is "Title: 【…】 https://…". A
    javascript:/data: URL pasted with spaces still fails there: it holds no Taobao link or code.
    """
    if _WHITESPACE_RE.search(text) is not None:
        return False
    return text.startswith("//") or _SCHEME_RE.match(text) is not None


_CACHE_SIZE = 4096
_CACHEABLE_CHARS = 512


def parse_link(raw: str, allowed: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS) -> Link:
    """A URL or a share text -> Link, or raises LinkError.

    Never raises anything else for a str input. Every URL in the result starts with https:// and
    has a host on `allowed`.

    Ad campaigns send the same destination millions of times, so results are cached (a Link is
    immutable). Only short inputs are cached, to bound memory; errors are never cached.
    """
    if isinstance(raw, str) and len(raw) <= _CACHEABLE_CHARS:
        return _parse_link_cached(raw, allowed)
    return _parse_link(raw, allowed)


def link_cache_clear() -> None:
    """Empty the Link cache (benchmarks, tests)."""
    _parse_link_cached.cache_clear()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parse_link_cached(raw: str, allowed: tuple[str, ...]) -> Link:
    return _parse_link(raw, allowed)


def _parse_link(raw: str, allowed: tuple[str, ...]) -> Link:
    if not isinstance(raw, str):
        raise LinkError(f"expected a link as text, got {type(raw).__name__}")
    if len(raw) > MAX_INPUT_CHARS:
        raise LinkError(
            f"input {_shown(raw)} is too long ({len(raw)} characters): expected at most {MAX_INPUT_CHARS}"
        )
    text = raw.strip()
    if not text:
        raise LinkError(f"no link given ({_shown(raw)}): {_EXPECTED_LINK}, or a share text")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: not text a browser could have sent
            raise LinkError(f"input {_shown(text)} is not valid text: {_EXPECTED_LINK}") from None
    if _is_bare_url(text):
        return _parse_url(text, allowed)
    unbroken = _without_tabs_and_newlines(text)
    if unbroken is not None:
        return _parse_url(unbroken, allowed)
    return _parse_share_text(text, allowed)


def _without_tabs_and_newlines(text: str) -> str | None:
    """A bare link that only tabs or line breaks split, joined as a browser joins it; else None.

    Only for all-ASCII input: a line break followed by words ("…?tk=x\n打开淘宝") is a share text's
    next line, and its link ends there.
    """
    if not text.isascii() or _TAB_OR_NEWLINE_RE.search(text) is None:
        return None
    joined = _TAB_OR_NEWLINE_RE.sub("", text)
    return joined if _is_bare_url(joined) else None
