"""User-Agent -> Client: which app the tap happened in, on which OS and device.

This runs once per click, so both paths are kept cheap:

* a UA seen before is one dict lookup in an LRU keyed by the (truncated) UA;
* a new UA costs one ua-parser run with the Rust resolver (~20-40 µs) plus
  ~15 µs of substring tests and object building (no regex runs unless a cheap
  substring test found its marker, except the bot list); the UA is cut to
  MAX_UA_LENGTH first, so a 100 KB header costs no more than a 1 KB one.

OS, device and the bot flag come from ua-parser 1.x, wrapped in a subclass of
user-agents' ``UserAgent`` so its ``is_mobile``/``is_tablet``/``is_bot``
classification is reused as is (its own parser is ~0.5-1 ms per new UA).

The app comes from our own markers, tested in this order. The order is the
whole point: several apps embed another app's marker.

1. ``wxwork/``           -> wecom. WeCom also sends a fake ``MicroMessenger/7.0.1``.
2. ``MicroMessenger/``   -> wechat (also ``WindowsWechat``/``MacWechat`` alone on
   desktop). Mac WeChat sends both ``MacWechat`` and ``WindowsWechat``, so Mac wins.
3. ``QQ/<ver>``          -> qq, matched with a left boundary: ``MQQBrowser/`` on
   its own is the QQ Browser app (a browser), but Android QQ carries both.
4. ``Weibo``/``weibo__`` -> weibo.
5. ``AlipayClient/``     -> alipay.   } both also carry ``AliApp(``, so they are
6. ``DingTalk``          -> dingtalk. } tested before Taobao's ``AliApp(TB``.
7. ``AliApp(TB/``/``WindVane`` -> taobao.
8. ``aweme``/``BytedanceWebview``/``ByteLocale`` -> douyin. Toutiao and Feishu
   are ByteDance apps too, so the generic ByteDance markers only mean Douyin
   when neither of theirs is present (``aweme`` always means Douyin).
9. Named apps with no rules of their own (Baidu, Feishu, Toutiao, Kuaishou,
   Xiaohongshu, Zhihu, Facebook, Instagram, LINE) -> other_inapp.
10. Bots: ua-parser's ``Spider`` device plus explicit link-preview/HTTP-client
    markers, and an empty UA. All named in-app markers above are tested first,
    so a real WeChat UA never becomes a bot.
11. Generic webviews -> other_inapp: Android ``; wv)`` and iOS WKWebView (an iOS
    UA with ``AppleWebKit`` and ``Mobile/`` but no ``Safari/`` token).
    DEVIATION from "all in-app before bots": these two are guesses from the
    shape of a UA rather than an app saying its name, so a UA that also names a
    crawler is believed to be the crawler.
12. Anything else -> browser.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import TYPE_CHECKING

import ua_parser
from ua_parser import Domain
from ua_parser.regex import Resolver
from user_agents.parsers import (  # type: ignore[import-untyped]  # no stubs
    UserAgent,
    parse_browser,
    parse_device,
    parse_operating_system,
)

from router.decision.types import OS, App, Client, Device, Version
from router.decision.versions import parse_version

if TYPE_CHECKING:
    from functools import _CacheInfo

__all__ = [
    "MAX_UA_LENGTH",
    "FastUserAgent",
    "cache_clear",
    "cache_info",
    "parse_client",
    "parse_version",
    "warm_up",
]

MAX_UA_LENGTH = 1024
"""Longer UAs are cut to this many characters before parsing and before caching.
Real UAs, WeChat's included, stay well under 600 characters."""

_CACHE_SIZE = 8192

# --- ua-parser, built once and lazily --------------------------------------------------------------

_parser: ua_parser.Parser | None = None
_parser_lock = threading.Lock()

# A few UAs of the kinds that dominate traffic. The Rust resolver compiles its
# regexes lazily on first use, so parsing these at start-up moves that cost
# (hundreds of µs per first hit) off the first real clicks too.
_WARM_UP_UAS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.44(0x18002c2d) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 13; V2203A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/1110017 MMWEBSDK/20231002 "
    "MMWEBID/2280 MicroMessenger/8.0.43.2480(0x28002B51) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
)


def _get_parser() -> ua_parser.Parser:
    # Double-checked: the common case reads a global without taking the lock.
    global _parser
    parser = _parser
    if parser is None:
        with _parser_lock:
            parser = _parser
            if parser is None:
                # No CachingResolver: our LRU on the final Client already caches,
                # a second cache would only double the memory for the same hits.
                parser = ua_parser.Parser(Resolver(ua_parser.load_lazy_builtins()))
                _parser = parser
    return parser


def warm_up() -> None:
    """Build the parser (~150-250 ms) and compile its common regexes.

    Called by the server at start-up so the first clicks don't pay for it.
    Does not touch the Client cache.
    """
    parser = _get_parser()
    for ua in _WARM_UP_UAS:
        parser.parse(ua)


class FastUserAgent(UserAgent):
    """user-agents' UserAgent filled from a ua-parser 1.x Result.

    Only ``__init__`` differs, so the inherited ``is_mobile``, ``is_tablet``,
    ``is_pc`` and ``is_bot`` classify exactly as user-agents does.
    """

    def __init__(self, result: ua_parser.Result | ua_parser.PartialResult) -> None:
        # Deliberately no super().__init__(): that would parse the string again
        # with user-agents' slow pure-Python parser.
        # Result uses None for "no match"; user-agents expects family "Other" then.
        # Spelled out rather than result.with_defaults(): that copies the Result.
        self.ua_string = result.string
        o = result.os
        self.os = (
            parse_operating_system(o.family, o.major, o.minor, o.patch, o.patch_minor) if o else _OTHER_OS
        )
        b = result.user_agent
        self.browser = (
            parse_browser(b.family, b.major, b.minor, b.patch, b.patch_minor) if b else _OTHER_BROWSER
        )
        d = result.device
        self.device = parse_device(d.family, d.brand, d.model) if d else _OTHER_DEVICE


_OTHER_OS = parse_operating_system("Other")
_OTHER_BROWSER = parse_browser("Other")
_OTHER_DEVICE = parse_device("Other", None, None)


# --- versions --------------------------------------------------------------------------------------

_VER = r"(\d+(?:\.\d+)*)"


def _ints(dotted: str) -> Version:
    return tuple(int(p) for p in dotted.split("."))


def _version_from(regex: re.Pattern[str], ua: str) -> Version:
    m = regex.search(ua)
    return _ints(m.group(1)) if m else ()


def _int_prefix(version: tuple[int | str, ...]) -> Version:
    # user-agents turns digit strings into ints and keeps the rest as strings
    # (Windows "XP", patch "beta"...): keep the numeric prefix only.
    out: list[int] = []
    for p in version:
        if not isinstance(p, int):
            break
        out.append(p)
    return tuple(out)


# All version regexes run only after a cheap substring test said the marker is
# there. They search the lower-cased UA with lower-case literals and no IGNORECASE:
# a pattern that starts with a plain literal lets `re` jump to it with a fast
# substring scan (~1 µs) instead of trying every position (~4 µs).
_WXWORK_RE = re.compile(r"wxwork/" + _VER)
_WECHAT_RE = re.compile(r"micromessenger/" + _VER)
# Case-sensitive on the original UA. The left boundary is a lookbehind placed
# *after* the literal so the literal still leads (a leading lookbehind costs ~7 µs):
# "QQ/8.9" matches, "xQQ/" or "MQQ/" doesn't; "MQQBrowser/6.2" has no "QQ/" at all.
_QQ_RE = re.compile(r"QQ/(?<![A-Za-z0-9_]QQ/)" + _VER)
_WEIBO_RE = re.compile(r"weibo__" + _VER)
_ALIPAY_RE = re.compile(r"alipayclient/" + _VER)
_DINGTALK_RE = re.compile(r"dingtalk[/(]" + _VER)  # DingTalk/7.0.40, AliApp(DingTalk/7.0.40), DingTalk(7.0)
_TAOBAO_RE = re.compile(r"aliapp\(tb/" + _VER)
# Android Douyin sends "aweme_260100" (a build code) and the real version in
# app_version/; iOS sends "aweme_26.1.0". So app_version/ first, then a dotted aweme_.
_DOUYIN_APP_VERSION_RE = re.compile(r"app_version/" + _VER)
_DOUYIN_AWEME_RE = re.compile(r"aweme_(\d+\.\d+(?:\.\d+)*)")
# HarmonyOS's own version is preferred over the OpenHarmony base it builds on.
_HARMONYOS_RE = re.compile(r"HarmonyOS[ /]" + _VER)
_OPENHARMONY_RE = re.compile(r"OpenHarmony " + _VER)

# --- markers ----------------------------------------------------------------------------------------

# Named apps that get no rules of their own (step 9), tested with plain `in`
# (a dozen substring scans cost less than one alternation regex). Case-sensitive:
# the short ones ("Kwai", "XHS") would match random text if folded.
_OTHER_INAPP_MARKERS = (
    "baiduboxapp/", "Lark/", "Feishu", "NewsArticle/", "Kwai", "XHS", "xhsdiscover", "ZhihuHybrid",
    "FBAN", "FBAV", "Instagram",
)  # fmt: skip
# LINE needs a left boundary ("Pipeline/1.0" is not LINE), so a regex behind a substring test.
_LINE_RE = re.compile(r"(?<![A-Za-z])Line/\d")
# ByteDance's other apps share BytedanceWebview/ByteLocale with Douyin.
_BYTEDANCE_NOT_DOUYIN = ("NewsArticle/", "Lark/", "Feishu")

# Explicit crawler / link-preview / HTTP-library markers, folded to lower case
# because bots spell themselves inconsistently. "Sogou" alone would also hit
# Sogou's real browsers (SogouMobileBrowser, "SE 2.X MetaSr"), so only its spiders.
_BOT_RE = re.compile(
    r"facebookexternalhit|twitterbot|slackbot|telegrambot|whatsapp|discordbot|linkedinbot|googlebot"
    r"|bingbot|baiduspider|yisouspider|sogou[a-z -]{0,24}spider|360spider|bytespider|applebot"
    r"|skypeuripreview|curl/|wget|python-requests|python-httpx|go-http-client|headlesschrome"
)

_LINUX_FAMILIES = frozenset(
    {
        "Ubuntu", "Kubuntu", "Lubuntu", "Debian", "Fedora", "Red Hat", "CentOS", "Gentoo", "Slackware",
        "SUSE", "openSUSE", "Mandriva", "PCLinuxOS", "Puppy", "BackTrack", "Chrome OS", "Mageia",
    }
)  # fmt: skip
_MOBILE_OSES = (OS.IOS, OS.ANDROID, OS.HARMONYOS)

_EMPTY_BOT = Client(app=App.BOT, app_version=(), os=OS.OTHER, os_version=(), device=Device.DESKTOP, bot=True)


# --- parsing ----------------------------------------------------------------------------------------


def parse_client(ua: str | None) -> Client:
    """Classify one User-Agent header. Never raises; None or blank means a bot."""
    if not ua or not isinstance(ua, str):
        return _EMPTY_BOT
    if len(ua) > MAX_UA_LENGTH:
        ua = ua[:MAX_UA_LENGTH]
    return _parse_cached(ua)


def cache_info() -> _CacheInfo:
    """LRU statistics of the Client cache (hits, misses, maxsize, currsize)."""
    return _parse_cached.cache_info()


def cache_clear() -> None:
    """Empty the Client cache (tests, benchmarks)."""
    _parse_cached.cache_clear()


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_cached(ua: str) -> Client:
    try:
        return _parse(ua)
    except Exception:
        # Belt and braces: a click must never fail on its User-Agent. A UA that
        # breaks the parser is not a browser anyone taps in.
        return _EMPTY_BOT


def _parse(ua: str) -> Client:
    if ua.isspace():
        return _EMPTY_BOT
    # The Rust resolver takes UTF-8; a lone surrogate (from a surrogateescape'd
    # header) can't be encoded, so replace those before handing the string over.
    clean = ua if ua.isascii() else ua.encode("utf-8", "replace").decode("utf-8")
    low = ua.lower()
    named = _named_app(ua, low)
    # ua-parser's device domain is its most expensive (~half the parse) and its browser domain only
    # names the webview; a tap inside a named app needs neither, so only the OS is resolved for it.
    # Named apps are most of the traffic and most of the never-seen user agents.
    agent = FastUserAgent(_get_parser()(clean, Domain.OS if named else Domain.ALL))

    os, os_version = _os_of(agent, ua)
    device: Device | None = None  # None: decided from agent/os below
    app: App
    app_version: Version = ()
    mini_program = False

    if named is not None:
        app, app_version, mini_program = named
    elif agent.is_bot or _BOT_RE.search(low) or ("okhttp" in low and "mozilla" not in low):
        return Client(
            app=App.BOT,
            app_version=(),  # a crawler's version decides nothing
            os=os,
            os_version=os_version,
            device=Device.DESKTOP,
            bot=True,
            browser=agent.browser.family,
        )
    elif "; wv)" in ua or (os is OS.IOS and "AppleWebKit" in ua and "Mobile/" in ua and "Safari/" not in ua):
        app = App.OTHER_INAPP
    else:
        app, app_version = App.BROWSER, _int_prefix(agent.browser.version)

    if app in (App.WECHAT, App.WECOM) and ("macwechat" in low or "windowswechat" in low):
        # Desktop WeChat/WeCom. Mac WeChat also says WindowsWechat, so Mac first.
        target = OS.MACOS if "macwechat" in low else OS.WINDOWS
        if os is not target:
            os, os_version = target, ()
        device = Device.DESKTOP

    if device is None:
        if os is OS.HARMONYOS and "(Tablet;" in ua:
            # HarmonyOS NEXT (ArkWeb) names the form factor first: "(Phone|Tablet|PC; OpenHarmony 5.0".
            device = Device.TABLET
        elif os is OS.HARMONYOS and "(PC;" in ua:
            device = Device.DESKTOP
        elif os is OS.IOS and "iPad" in ua:
            device = Device.TABLET  # said by ua-parser's device domain, which named apps skip
        elif agent.is_tablet:
            device = Device.TABLET
        elif agent.is_mobile or os in _MOBILE_OSES:
            device = Device.MOBILE
        else:
            # Includes iPadOS Safari, which sends a Mac UA on purpose: nothing in
            # the string tells it apart, so it stays macos/desktop.
            device = Device.DESKTOP

    return Client(
        app=app,
        app_version=app_version,
        os=os,
        os_version=os_version,
        device=device,
        bot=False,
        mini_program=mini_program,
        browser="" if named else agent.browser.family,
    )


def _named_app(ua: str, low: str) -> tuple[App, Version, bool] | None:
    """Steps 1-9: (app, version, mini_program) for an app that names itself, else None."""
    if "wxwork/" in low:
        return App.WECOM, _version_from(_WXWORK_RE, low), False
    if "micromessenger/" in low or "windowswechat" in low or "macwechat" in low:
        # Covers "miniprogramhtmlwebview" too.
        return App.WECHAT, _version_from(_WECHAT_RE, low), "miniprogram" in low
    if "qq/" in low and (m := _QQ_RE.search(ua)):
        return App.QQ, _ints(m.group(1)), False
    if "weibo" in low:
        return App.WEIBO, _version_from(_WEIBO_RE, low), False
    if "alipayclient/" in low:
        return App.ALIPAY, _version_from(_ALIPAY_RE, low), False
    if "dingtalk" in low:
        return App.DINGTALK, _version_from(_DINGTALK_RE, low), False
    if "aliapp(tb/" in low or "windvane" in low:
        return App.TAOBAO, _version_from(_TAOBAO_RE, low), False
    if "aweme" in low or (
        ("bytedancewebview" in low or "bytelocale" in low) and not any(m in ua for m in _BYTEDANCE_NOT_DOUYIN)
    ):
        version = _version_from(_DOUYIN_APP_VERSION_RE, low) or _version_from(_DOUYIN_AWEME_RE, low)
        return App.DOUYIN, version, False
    if any(m in ua for m in _OTHER_INAPP_MARKERS) or ("Line/" in ua and _LINE_RE.search(ua)):
        return App.OTHER_INAPP, (), False
    return None


def _os_of(agent: FastUserAgent, ua: str) -> tuple[OS, Version]:
    if "HarmonyOS" in ua or "OpenHarmony" in ua:
        # Android-compatible HarmonyOS 2-4 says "Android 12; HarmonyOS;" with no
        # version of its own; HarmonyOS NEXT says "OpenHarmony 5.0" (and may add
        # "HarmonyOS 5.0"). The Android version is not HarmonyOS's, so drop it.
        m = _HARMONYOS_RE.search(ua) or _OPENHARMONY_RE.search(ua)
        return OS.HARMONYOS, (_ints(m.group(1)) if m else ())
    fam = agent.os.family
    if fam == "iOS":
        os = OS.IOS
    elif fam == "Android":
        os = OS.ANDROID
    elif fam.startswith("Windows"):
        os = OS.WINDOWS
    elif fam in ("Mac OS X", "Mac OS"):
        os = OS.MACOS
    elif fam in _LINUX_FAMILIES or "Linux" in fam:
        os = OS.LINUX
    else:
        return OS.OTHER, ()
    return os, _int_prefix(agent.os.version)
