"""User-Agent -> Client: which app the tap happened in, on which OS and device.

This runs once per click, so both paths are kept cheap:

* a UA seen before is one dict lookup in an LRU keyed by the (truncated) UA;
* a new UA on one of WeChat's templates (router.decision.wechat_shapes) costs one anchored regex and two
  lookups (~3-5 µs): its Android model-and-build verdict and its Client are kept per spelling;
* a new UA of another named app on a phone, or of a common browser, costs ~5-15 µs of
  substring tests, anchored regexes and object building, with no ua-parser run;
  anything else one ua-parser run with the Rust resolver (~20-40 µs) on top.
  Long marker lists run as one alternation in the Rust `regex` crate ua-parser
  brings (_WordList: finite automata, linear in the UA, ~1 µs); Python regexes
  run only behind a substring test or on a short slice. The UA is cut to
  MAX_UA_LENGTH first, so a 100 KB header costs no more than a 1 KB one.

The OS and device of a named app's phone UA, everything about WeChat's and the common browsers' UAs
(router.decision.browser_shapes), also with product tokens appended that name no app or bot, are read
here; anything else asks ua-parser 1.x through
router.decision.ua_tables, which loads its tables the first time one is needed.

The app comes from our own markers, tested in this order. The order is the
whole point: several apps embed another app's marker, and bots name apps.

0. A bot named after an app (``DingTalkBot-LinkService``, ``Weibo spider``) -> bot.
1. ``wxwork/``           -> wecom. WeCom also sends a fake ``MicroMessenger/7.0.1``.
2. ``MicroMessenger/``   -> wechat (also ``WindowsWechat``/``MacWechat`` alone on
   desktop). Mac WeChat sends ``WindowsWechat`` too (old versions without
   ``MacWechat``), so a Mac platform or ``MacWechat`` makes it macOS.
3. ``QQ/<ver>``          -> qq, matched with a left boundary: ``MQQBrowser/`` on
   its own is the QQ Browser app (a browser), but Android QQ carries both.
4. ``weibo``             -> weibo (its spiders left at step 0).
5. ``AlipayClient/``     -> alipay.   } both also carry ``AliApp(``, so they are
6. ``DingTalk/``/``DingTalk(`` -> dingtalk. } tested before Taobao's code.
7. ``AliApp(TB/``/``AliApp(TM/`` -> taobao. Alibaba's other apps (Lazada
   ``AliApp(LA/``, AliExpress, Xianyu...) share ``AliApp(``/``WindVane``: step 10.
8. ``aweme``/``BytedanceWebview``/``ByteLocale`` -> douyin, unless it is another
   ByteDance app: TikTok (``musical_ly``, ``trill_``, or a ``Region``/``ByteLocale``
   outside mainland China), Toutiao or Feishu -> other_inapp.
9. Explicit crawler / link-preview / HTTP-library / headless markers -> bot. After
   the router's own apps (a WeChat UA stays WeChat whatever else it says), before
   the other named apps.
10. Named apps with no rules of their own (Baidu, Feishu, Toutiao, Kuaishou,
    Xiaohongshu, Zhihu, Facebook, Instagram, Google app ``GSA/``, Snapchat, Naver,
    KakaoTalk, LINE, Pinterest, Electron desktop apps such as Slack or Teams, and
    Alibaba's other apps) -> other_inapp.
11. Bots by shape: ua-parser's ``Spider`` device, a bare okhttp, a URL/domain/mail
    contact line, or no browser ua-parser knows and no rendering engine at all;
    and an empty UA.
12. Generic webviews -> other_inapp: Android ``; wv)`` or ua-parser's Chrome Mobile
    WebView (``Version/4.0 Chrome/``, Android 4.4's webview before ``wv``), and iOS
    WKWebView (``AppleWebKit`` and ``Mobile/`` but no ``Safari/``). A browser built
    on the system WebView that names itself (``VivoBrowser``, ``UCBrowser``,
    ``Quark``, ``OPR/``...) stays a browser; Tencent's X5 core (``MQQBrowser``
    with ``TBS/``) inside an unnamed app does not count as a name.
13. Anything else -> browser.

Device: HarmonyOS NEXT's ``(Tablet;``/``(PC;``; iOS by ``iPad``; e-readers and an
outright ``(Tablet;`` are tablets; Android (and Android-compatible HarmonyOS) is
a desktop when the model names a PC line (Chromebook, Inspiron...), a tablet when
it names a pad (``TB-``, ``Tab``, ``Pad``, ``SM-T``, Huawei Wi-Fi-only ``-W09``)
or the app says ``Pad/APad``, else a phone when it says ``Mobile`` anywhere
(X5/TBS splits it from ``Safari``), else a tablet; Windows phones (``Lumia``) are
phones and IE's ``Touch`` Windows tablets tablets.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

import ua_parser_rs  # ua-parser's Rust regex engine, used directly by _WordList (no tables loaded)

from router.decision.browser_shapes import Shape, read_shape
from router.decision.recent import Recent
from router.decision.slots import slot_constructor
from router.decision.types import OS, App, Client, Device, Version
from router.decision.versions import parse_version
from router.decision.wechat_shapes import WeChatShape, read_wechat

if TYPE_CHECKING:
    from router.decision.ua_tables import FastUserAgent

    Agent: TypeAlias = "FastUserAgent | _NoAgent"

__all__ = [
    "MAX_UA_LENGTH",
    "cache_clear",
    "cache_info",
    "parse_client",
    "parse_version",
    "tables_built",
    "warm_up",
]

# The enum members this module compares against, bound once: on Python 3.11 looking a member up on its
# class goes through the enum metaclass's __getattr__ hook (~0.15 µs), and reading one user agent makes
# dozens of such comparisons.
_APP_ALIPAY = App.ALIPAY
_APP_BOT = App.BOT
_APP_BROWSER = App.BROWSER
_APP_DINGTALK = App.DINGTALK
_APP_DOUYIN = App.DOUYIN
_APP_OTHER_INAPP = App.OTHER_INAPP
_APP_QQ = App.QQ
_APP_TAOBAO = App.TAOBAO
_APP_WECHAT = App.WECHAT
_APP_WECOM = App.WECOM
_APP_WEIBO = App.WEIBO
_DEVICE_DESKTOP = Device.DESKTOP
_DEVICE_MOBILE = Device.MOBILE
_DEVICE_TABLET = Device.TABLET
_OS_ANDROID = OS.ANDROID
_OS_HARMONYOS = OS.HARMONYOS
_OS_IOS = OS.IOS
_OS_LINUX = OS.LINUX
_OS_MACOS = OS.MACOS
_OS_OTHER = OS.OTHER
_OS_WINDOWS = OS.WINDOWS

MAX_UA_LENGTH = 1024
"""Longer UAs are cut to this many characters before parsing and before caching.
Real UAs, WeChat's included, stay well under 600 characters."""

_CACHE_SIZE = 4096  # user agents kept with their Client
# WeChat's user agents are kept apart, and fewer: nearly every one is new (a per-install id) and its own
# template reads it in a few µs, so a day's flood of them would push every other kept user agent (a
# browser's costs several times more to read again) out of one store, and hold ~1.5 MB of strings seen
# once. Half as many keep the visitor who taps again within a few seconds, in less than 1 MB.
_WECHAT_CACHE_SIZE = 2048

# --- ua-parser's tables, loaded when first needed ------------------------------------------------------

# A few UAs of the kinds that dominate traffic, read by start-up so that compiling the regexes they need
# (and, with the tables, the Rust resolver's lazily compiled ones: hundreds of µs per first hit) is not
# left to the first real clicks.
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
)
# ...and two that only ua-parser's tables can place (their OS).
_WARM_UP_TABLE_UAS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
)


def tables_built() -> str:
    """Which of ua-parser's tables are in memory: "none", "os" or "all" (for /readyz and tests)."""
    tables = sys.modules.get("router.decision.ua_tables")  # not imported: nothing has needed them
    built = getattr(tables, "built", None)  # None too while another thread is still importing it
    return "none" if built is None else built()


def warm_up(*, tables: bool = False) -> None:
    """Compile this module's own regexes on the common user agents, so the first clicks don't pay for it;
    with `tables`, also build ua-parser's tables (~150 ms, ~25 MB; router.decision.ua_tables) and compile
    their common regexes. Does not touch the Client cache."""
    for ua in _WARM_UP_UAS:
        _parse(ua)
    if tables:
        from router.decision import ua_tables

        ua_tables.warm_up((*_WARM_UP_UAS, *_WARM_UP_TABLE_UAS))
        for ua in _WARM_UP_TABLE_UAS:
            _parse(ua)


class _Family(NamedTuple):
    family: str
    version: Version = ()


class _NoAgent:
    """What ua-parser would say of a named app's phone UA if asked nothing: families "Other" throughout,
    no flags (the phone's OS, device and app are read by this module)."""

    os = browser = device = _Family("Other")
    is_bot = is_tablet = is_mobile = False


_NO_AGENT = _NoAgent()


# --- versions --------------------------------------------------------------------------------------

_VER = r"(\d+(?:\.\d+)*)"


def _ints(dotted: str) -> Version:
    return tuple(map(int, dotted.split(".")))


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


class _WordList:
    """A marker alternation run by the Rust `regex` crate that ua-parser's resolver already brings.

    It compiles to finite automata: linear in the UA whatever the UA holds, and a 60-word alternation
    costs ~1 µs, where Python's backtracking `re` tries every branch at every position (~75 µs).
    Patterns are written for lower-cased text and use no look-around (the crate has none).
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._extractor = ua_parser_rs.UserAgentExtractor([(pattern, "match", None, None, None, None)])

    @classmethod
    def of_literals(cls, words: tuple[str, ...], *, fold_case: bool = False) -> _WordList:
        """Any of these plain strings, case-sensitive unless fold_case."""
        body = "|".join("".join("\\" + ch if ch in _REGEX_SPECIALS else ch for ch in word) for word in words)
        return cls(f"(?i:{body})" if fold_case else body)

    def search(self, text: str) -> bool:
        return self._extractor.extract(text) is not None


class _FirstOf:
    """Several named patterns in one pass of the same Rust engine: the name of the first pattern, in the
    order given, that matches anywhere (or None). One call where a chain of _WordList tests made several."""

    def __init__(self, *named: tuple[str, _WordList]) -> None:
        self._extractor = ua_parser_rs.UserAgentExtractor(
            [(words.pattern, name, None, None, None, None) for name, words in named])

    def first(self, text: str) -> str | None:
        found = self._extractor.extract(text)
        return None if found is None else found.family


_REGEX_SPECIALS = frozenset("\\.^$|?*+()[]{}")


# Bots that name an app ("DingTalkBot-LinkService", "Weibo spider") are the app's link-preview fetchers,
# not the app: step 0, before any app marker. Behind a substring test, so a UA with none of these words
# never runs it.
_APP_NAMED_BOT_RE = _WordList(
    r"(?:dingtalk|weibo|wechat|weixin|alipay|taobao|tmall|douyin|toutiao|feishu|lark|baidu|sogou|bytedance"
    r"|tiktok|kuaishou|xiaohongshu|zhihu)[ _-]?(?:bot|spider|crawler)"
)

# Alibaba's hybrid container (WindVane, "AliApp(XX/") is in many of its apps; only Taobao's and Tmall's
# own codes mean the Taobao app. The rest (Lazada "LA", AliExpress, Xianyu, Fliggy...) are other_inapp.
_TAOBAO_CODES = ("aliapp(tb/", "aliapp(tm/")
_ALIBABA_CONTAINER = _WordList.of_literals(("aliapp(", "windvane"))

# ByteDance's international app. Its webview shares BytedanceWebview/ByteLocale with Douyin, so it is
# told apart by its own markers, else by a region or locale outside mainland China.
_TIKTOK_MARKERS = ("musical_ly", "trill_", "tiktok")
# ByteDance's other Chinese apps share BytedanceWebview/ByteLocale with Douyin too.
_BYTEDANCE_NOT_DOUYIN = ("NewsArticle/", "Lark/", "Feishu")

# Named apps that get no rules of their own (step 10), in one pass (see _WordList). Case-sensitive:
# the short ones ("Kwai", "XHS") would match random text if folded.
_OTHER_INAPP = _WordList.of_literals((
    "baiduboxapp", "Lark/", "Feishu", "NewsArticle/", "Kwai", "XHS", "xhsdiscover", "ZhihuHybrid",
    "FBAN", "FBAV", "FB_IAB", "Instagram", "GSA/", "NAVER(inapp", "Snapchat", "KAKAOTALK", "KAKAOSTORY",
    "DaumApps", "Pinterest", "Electron/", "Barcelona", "LinkedInApp", "Zalo", "YJApp", "Twitter for",
    "TwitterAndroid", "Teams/", "Slack/", "SP-engine/", "T7/",
))  # fmt: skip
# LINE needs a left boundary ("Pipeline/1.0" is not LINE), so a regex behind a substring test.
_LINE_RE = re.compile(r"(?<![A-Za-z])Line/\d")

# Explicit crawler / link-preview / HTTP-library / automation markers, folded to lower case because
# bots spell themselves inconsistently; tested after the router's own apps (a WeChat UA stays WeChat
# whatever else it says) and before the other named apps. One alternation of plain words (see
# _WordList). "bot" needs a letter or "-" before it and a non-letter after it
# ("Googlebot/", "TelegramBot (", "AhrefsBot;"; "Cubot", a phone maker, is excepted by _NOT_BOTS).
# "Sogou" alone would also hit Sogou's real browsers (SogouMobileBrowser, "SE 2.X MetaSr"), so only
# its spiders.
_BOT_RE = _WordList(
    r"[a-z-]bot\b|spider|crawl|scrap[ey]|slurp|archiver|preview|linkservice|linkexpand|unfurl|embedly"
    r"|iframely|cardyb|facebookexternal|facebookcatalog|meta-external|externalagent|whatsapp|google-|googleother"
    r"|google web|apis-google|mediapartners|feedfetcher|fetcher|validator|checker|monitor|uptime|pingdom"
    r"|scanner|inspect|lighthouse|headless|phantomjs|selenium|puppeteer|playwright|jsdom|curl/|wget|libwww"
    r"|python|java[/ -]|\(java\)|httpclient|http-client|http_client|httpie|postman|axios|node-fetch|undici"
    r"|go-http|guzzle|aiohttp|requests/|ruby|http\.rb|cohttp|powershell|bun/|deno/|php/"
    r"|perl|wordpress|proxy|synthetic|like gecko; compatible"
)
# A URL, a domain or a mail address in a UA is a crawler's contact line: browsers never send one. Only
# for UAs no app named (step 11): Facebook's webview puts its carrier's name there ("FBCR/Telekom.de").
_CONTACT_RE = _WordList(r"https?://|\+http|www\.|mailto|@[a-z0-9-]+\.[a-z]|[a-z0-9]\.(?:com|net|org|io|fr|de|ru)\b")
# Names the bot markers above match that are no bots: Cubot phones ("CUBOT P30").
_NOT_BOTS = ("cubot",)

# Android browsers built on the system WebView send its "; wv" or "Version/4.0 Chrome/" shape too, yet
# they are browsers (they can open app links): they name themselves, most with "Browser" in the name.
# Tencent's X5 core says "MQQBrowser/<v> TBS/<v>" inside any app that embeds it, so that is no browser.
_STANDALONE_BROWSER = _WordList.of_literals((
    "browser", "quark/", "opr/", "ucweb", "liebaofast", "duckduckgo/", "edga/", "ecosia", "puffin/",
    "firefox/", "crios/", "fxios/", "edgios/", "yaapp_", "yasearch", "coc_coc", "kiwi",
))  # fmt: skip
_X5_CORE = "tbs/"

# Tablets whose UA still says "Mobile": the model names a pad (Lenovo "TB-X606F", "Galaxy Tab",
# "MatePad", "Avvio PAD"; Coolpad is a phone maker), Samsung's SM-T/SM-X/SM-P tablets, Huawei/Honor
# Wi-Fi-only models ("-W09": only tablets are sold without a modem), or the app says so ("Pad/APad",
# DingTalk on a tablet).
_PAD_MODEL = _WordList(
    r"tab|pad|(?:^|[^a-z])(?:tb[-0-9]|sm-[txp][0-9]|kf[a-z]{2}\b|nexus (?:7|9|10)\b|pixel tablet)"
    r"|-w[0-9]{2}(?:[^0-9]|$)"
)
_PHONE_MAKERS_NAMED_PAD = ("coolpad",)
# E-readers run Android or Linux and often say "Mobile"; they are tablets. So is a form factor said
# outright: Firefox OS/Firefox tablets "(Tablet; rv:29.0)", webOS "(hp-tablet;".
_TABLET_MARKERS = _WordList.of_literals(("pocketbook", "kobo", "kindle", "ereader", "nook", "(tablet;", "hp-tablet"))
# ua-parser's generic tablet families (named apps skip its device domain, so these help the others only).
_TABLET_FAMILIES = frozenset({"Generic Tablet", "Generic_Android_Tablet"})
# Android also runs on laptops and desktop PCs (ChromeOS's Android apps, Android-x86 builds), which
# send no "Mobile" and so look like tablets; their model names the PC line.
_PC_MODEL = _WordList(
    r"chromebook|pixelbook|notebook|laptop|desktop|inspiron|latitude|vostro|elitebook|probook|pavilion"
    r"|travelmate|aspire|satellite|lifebook|thinkpad|ideapad|easynote|macbook|matebook|zenbook|vivobook"
    r"|\bnuc\d|\bpc\b|\baio\b|2in1"
)
_PC_OR_PAD_MODEL = _FirstOf(("pc", _PC_MODEL), ("pad", _PAD_MODEL))
# Phones that run Windows 10 Mobile say "Windows NT 10.0; ARM; Lumia 950" or "Windows Phone".
_WINDOWS_PHONE_MARKERS = ("windows phone", "lumia", "iemobile")

_LINUX_FAMILIES = frozenset(
    {
        "Ubuntu", "Kubuntu", "Lubuntu", "Debian", "Fedora", "Red Hat", "CentOS", "Gentoo", "Slackware",
        "SUSE", "openSUSE", "Mandriva", "PCLinuxOS", "Puppy", "BackTrack", "Chrome OS", "Mageia",
    }
)  # fmt: skip
_MOBILE_OSES = (_OS_IOS, _OS_ANDROID, _OS_HARMONYOS)
# Engines every real browser names; a UA with none of them and no browser ua-parser knows is a script.
_ENGINES = ("applewebkit", "gecko", "trident", "presto", "khtml", "arkweb")

_EMPTY_BOT = Client(app=_APP_BOT, app_version=(), os=_OS_OTHER, os_version=(), device=_DEVICE_DESKTOP, bot=True)

# Clients are few (apps x versions x OS versions x devices) where user agents are many: every new user agent
# that says the same gets the same Client object. It saves building a frozen dataclass per user agent (a few
# µs), keeps the UA cache small, and lets what is keyed by a Client hash one object's fields, often cached.
_CLIENT_LIMIT = 1024
_clients: Recent[tuple[object, ...], Client] = Recent(_CLIENT_LIMIT)


def _client(
    app: App, app_version: Version, os: OS, os_version: Version, device: Device,
    bot: bool = False, mini_program: bool = False, browser: str = "",
) -> Client:
    key = (app, app_version, os, os_version, device, bot, mini_program, browser)
    client = _clients.get(key)
    if client is None:
        client = _new_client(*key)
        _clients.put(key, client)
    return client


_new_client = slot_constructor(Client)  # router.decision.slots: half the cost of Client(...)
# _client's key is handed to it positionally: it must list the fields in their order.
if tuple(f.name for f in dataclasses.fields(Client) if f.init) != (
    "app", "app_version", "os", "os_version", "device", "bot", "mini_program", "browser"
):
    raise ImportError("router.decision.clients: Client's fields changed; update _client's key")


# --- parsing ----------------------------------------------------------------------------------------


def parse_client(ua: str | None) -> Client:
    """Classify one User-Agent header. Never raises; None or blank means a bot."""
    if not ua or not isinstance(ua, str):
        return _EMPTY_BOT
    if len(ua) > MAX_UA_LENGTH:
        ua = ua[:MAX_UA_LENGTH]
    if "MicroMessenger/" in ua:
        return _parse_wechat_cached(ua)
    return _parse_cached(ua)


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int
    currsize: int


def cache_info() -> CacheInfo:
    """LRU statistics of the Client caches together (hits, misses, maxsize, currsize)."""
    infos = (_parse_cached.cache_info(), _parse_wechat_cached.cache_info())
    return CacheInfo(*(sum(getattr(info, field) or 0 for info in infos)
                       for field in ("hits", "misses", "maxsize", "currsize")))


def cache_clear() -> None:
    """Empty the Client caches (tests, benchmarks)."""
    _parse_cached.cache_clear()
    _parse_wechat_cached.cache_clear()


def _parse_guarded(ua: str) -> Client:
    try:
        return _parse(ua)
    except Exception:
        # Belt and braces: a click must never fail on its User-Agent. A UA that
        # breaks the parser is not a browser anyone taps in.
        return _EMPTY_BOT


_parse_cached = lru_cache(maxsize=_CACHE_SIZE)(_parse_guarded)
_parse_wechat_cached = lru_cache(maxsize=_WECHAT_CACHE_SIZE)(_parse_guarded)


def _parse(ua: str) -> Client:
    if ua.isspace():
        return _EMPTY_BOT
    # The Rust resolver takes UTF-8; a lone surrogate (from a surrogateescape'd
    # header) can't be encoded, so replace those before handing the string over.
    # WeChat's own templates first: most clicks, and most never-seen user agents (router.decision.wechat_shapes).
    if "MicroMessenger/" in ua:
        wechat = read_wechat(ua)
        if wechat is not None:
            client = _wechat_client(wechat, ua)
            if client is not None:
                return client
    clean = ua if ua.isascii() else ua.encode("utf-8", "replace").decode("utf-8")
    low = clean.lower()
    # The common browsers' own templates: read whole, without ua-parser (router.decision.browser_shapes).
    # Their only free text, Android's model name, could still carry a marker, so it is read as a UA is.
    shape = read_shape(ua)
    if shape is not None:
        device = _shape_device(low, shape)
        if device is not None:
            return _shape_client(shape, device)
    named = _named_app(ua, low)
    if named is None:
        # A common browser's template with product tokens appended ("… Safari/604.1 Norton/130.0"): no
        # app or bot marker names it (steps 0-10), so it is that browser, as the template reads it.
        appended = _template_with_products(ua)
        if appended is not None and not _CONTACT_RE.search(low):
            device = _shape_device(low, appended)
            if device is not None:
                return _shape_client(appended, device)
    # ua-parser's device domain is its most expensive (~half the parse) and its browser domain only
    # names the webview; a tap inside a named app needs neither, so only the OS is resolved for it, and
    # for the phone shapes every such app sends (iOS, Android) not even that: one anchored regex reads it.
    # Named apps are most of the traffic and most of the never-seen user agents.
    phone_os = _phone_os(ua) if isinstance(named, tuple) else None
    if phone_os is not None:
        agent, (os, os_version) = _NO_AGENT, phone_os
    else:
        # Loaded (and the tables built) the first time a user agent gets here.
        from router.decision import ua_tables

        agent = ua_tables.agent(clean, os_only=bool(named))
        os, os_version = _os_of(agent, ua)

    if named is _APP_BOT or (named is None and _is_unnamed_bot(ua, low, agent)):
        # A crawler's version decides nothing.
        return _client(_APP_BOT, (), os, os_version, _DEVICE_DESKTOP, bot=True, browser=agent.browser.family)

    app: App
    app_version: Version = ()
    mini_program = False
    if isinstance(named, tuple):
        app, app_version, mini_program = named
    elif _is_generic_webview(ua, low, os, agent):
        app = _APP_OTHER_INAPP
    else:
        app, app_version = _APP_BROWSER, _int_prefix(agent.browser.version)

    if app in (_APP_WECHAT, _APP_WECOM) and ("macwechat" in low or "windowswechat" in low):
        # Desktop WeChat/WeCom. Mac WeChat says WindowsWechat too (old versions without MacWechat), so a
        # Mac UA (or MacWechat) wins.
        target = _OS_MACOS if ("macwechat" in low or os is _OS_MACOS) else _OS_WINDOWS
        if os is not target:
            os, os_version = target, ()
        device = _DEVICE_DESKTOP
    else:
        device = _device_of(ua, low, os, agent)

    return _client(app, app_version, os, os_version, device, False, mini_program, "" if named else agent.browser.family)


# A product token, as browsers' extensions and wrappers append them to a browser's template: `name/version`.
_PRODUCT = re.compile(r"[A-Za-z][\w.-]{0,39}/[\w.-]{1,40}")
_MAX_PRODUCTS = 4


def _template_with_products(ua: str) -> Shape | None:
    """The common browser template `ua` starts with, when all that follows it is up to _MAX_PRODUCTS product
    tokens; None otherwise. A browser built on another's engine appends its own name last
    (`Chrome/94… Safari/537.36 Core/1.94 QQBrowser/11.9`): when that token names a browser
    (_STANDALONE_BROWSER), it is the browser and its version; any other token leaves the template's."""
    cut = len(ua)
    for _ in range(_MAX_PRODUCTS):
        start = ua.rfind(" ", 0, cut)
        if start <= 0 or _PRODUCT.fullmatch(ua, start + 1, cut) is None:
            return None
        shape = read_shape(ua[:start])
        if shape is not None:
            last = ua[ua.rfind(" ") + 1:]
            if not _STANDALONE_BROWSER.search(last.lower()):
                return shape
            name, _, text = last.partition("/")
            # Its leading dotted number, as a template's parts ("2.0b1" is 2.0; no number, no version).
            major, minor, patch = [*(str(part) for part in parse_version(text)[:3]), None, None, None][:3]
            return shape._replace(browser=(name, major, minor, patch))
        cut = start
    return None


_SHAPE_OS = {"iOS": _OS_IOS, "Android": _OS_ANDROID, "Windows": _OS_WINDOWS, "Mac OS X": _OS_MACOS,
             "Linux": _OS_LINUX, "Ubuntu": _OS_LINUX}


def _shape_client(shape: Shape, device: Device) -> Client:
    """What the steps below make of a common browser's user agent (no app marker, no bot, no webview in
    any of the shapes), given what ua-parser would have said about it. Kept per OS, browser and device as
    written: a browser release and an OS version are sent by millions."""
    key = (shape.os, shape.browser, device)
    client = _shape_clients.get(key)
    if client is None:
        os_family, *os_parts = shape.os
        family, *browser_parts = shape.browser
        client = _client(_APP_BROWSER, _parts(browser_parts), _SHAPE_OS[os_family], _parts(os_parts), device,
                         browser=family)
        _shape_clients.put(key, client)
    return client


_shape_clients: Recent[tuple[object, ...], Client] = Recent(1024)


def _shape_device(low: str, shape: Shape) -> Device | None:
    """A common browser's device; None when its model name carries a marker (it is read the long way)."""
    if shape.os[0] == "iOS":
        return _DEVICE_TABLET if shape.device == "iPad" else _DEVICE_MOBILE
    if not shape.model:
        return _DEVICE_DESKTOP
    # Android: the template is fixed, so the model and whether it says "Mobile" decide; models repeat
    # across millions of phones, so their verdict is kept.
    key = (shape.model, shape.browser[0])  # "Chrome Mobile" or "Chrome": with or without "Mobile"
    verdict = _android_models.get(key)
    if verdict is None:
        verdict = _MARKED if _has_markers(shape.model) else _device_of("", low, _OS_ANDROID, _NO_AGENT)
        _android_models.put(key, verdict)
    return None if verdict is _MARKED else verdict  # type: ignore[return-value]


_MARKED = "marked"  # an Android model name that carries a marker
_android_models: Recent[tuple[str, str], Device | str] = Recent(4096)


def _wechat_client(shape: WeChatShape, ua: str) -> Client | None:
    """What the steps below make of a user agent on one of WeChat's templates; None when its Android
    parenthesis carries a marker (it is read the long way)."""
    device: Device | str | None
    if shape.os == "iOS":
        device = _DEVICE_TABLET if shape.device == "iPad" else _DEVICE_MOBILE
    else:
        # The template's fixed text holds no marker and says "Mobile Safari": the parenthesis (model and
        # firmware build) alone decides the device, and the verdict is kept for the next phone like it.
        device = _wechat_parentheses.get(shape.parenthesis)
        if device is None:
            device = _parenthesis_device(shape.parenthesis)
            _wechat_parentheses.put(shape.parenthesis, device)
        if device is _MARKED:
            return None
    key = (shape.os, shape.os_version, shape.app_version, device)
    client = _wechat_clients.get(key)
    if client is None:
        os_version = tuple(int(part) for part in shape.os_version.replace("_", ".").split("."))
        client = _client(_APP_WECHAT, _ints(shape.app_version), _OS_IOS if shape.os == "iOS" else _OS_ANDROID,
                         os_version, device)  # type: ignore[arg-type]
        _wechat_clients.put(key, client)
    return client


def _parenthesis_device(parenthesis: str) -> Device | str:
    """The device an Android WeChat template's parenthesis says, as _device_of reads the whole user agent
    (the rest of the template adds ") ... Mobile Safari" and no marker); _MARKED when it names an app, a
    bot, HarmonyOS or a mini program."""
    low = parenthesis.lower()
    if _has_markers(parenthesis) or "miniprogram" in low:
        return _MARKED
    return _device_of("", low + ") mobile safari", _OS_ANDROID, _NO_AGENT)


# Built Clients by the template's spellings: versions repeat across millions of user agents.
_wechat_clients: Recent[tuple[str, str, str, object], Client] = Recent(1024)
_wechat_parentheses: Recent[str, Device | str] = Recent(2048)


def _has_markers(model: str) -> bool:
    if not model:
        return False
    low = model.lower()
    return _named_app(model, low) is not None or "harmony" in low or "hmos" in low


def _parts(parts: list[str | None]) -> Version:
    return tuple(int(part) for part in parts if part is not None)


def _named_app(ua: str, low: str) -> tuple[App, Version, bool] | App | None:
    """Steps 0-10: App.BOT for a bot that names itself; (app, version, mini_program) for an app that
    names itself; None when nothing does."""
    if ("bot" in low or "spider" in low or "crawler" in low) and _APP_NAMED_BOT_RE.search(low):
        return _APP_BOT
    if "wxwork/" in low:
        return _APP_WECOM, _version_from(_WXWORK_RE, low), False
    if "micromessenger/" in low or "windowswechat" in low or "macwechat" in low:
        # Covers "miniprogramhtmlwebview" too.
        return _APP_WECHAT, _version_from(_WECHAT_RE, low), "miniprogram" in low
    if "qq/" in low and (m := _QQ_RE.search(ua)):
        return _APP_QQ, _ints(m.group(1)), False
    if "weibo" in low:
        return _APP_WEIBO, _version_from(_WEIBO_RE, low), False
    if "alipayclient/" in low:
        return _APP_ALIPAY, _version_from(_ALIPAY_RE, low), False
    if "dingtalk/" in low or "dingtalk(" in low:
        return _APP_DINGTALK, _version_from(_DINGTALK_RE, low), False
    if any(code in low for code in _TAOBAO_CODES):
        return _APP_TAOBAO, _version_from(_TAOBAO_RE, low), False
    if "aweme" in low or "bytedancewebview" in low or "bytelocale" in low:
        return _bytedance_app(ua, low)
    if _BOT_RE.search(low) and not any(word in low for word in _NOT_BOTS):
        return _APP_BOT
    if _OTHER_INAPP.search(ua) or _ALIBABA_CONTAINER.search(low) or ("Line/" in ua and _LINE_RE.search(ua)):
        return _APP_OTHER_INAPP, (), False
    return None


def _bytedance_app(ua: str, low: str) -> tuple[App, Version, bool]:
    """Douyin, or another ByteDance app (TikTok, Toutiao, Feishu) sharing its webview markers."""
    if "aweme" in low:
        version = _version_from(_DOUYIN_APP_VERSION_RE, low) or _version_from(_DOUYIN_AWEME_RE, low)
        return _APP_DOUYIN, version, False
    if any(m in low for m in _TIKTOK_MARKERS) or any(m in ua for m in _BYTEDANCE_NOT_DOUYIN):
        return _APP_OTHER_INAPP, (), False
    if not _says_mainland_china(low):
        return _APP_OTHER_INAPP, (), False  # TikTok (or TikTok Lite) without its own name
    return _APP_DOUYIN, _version_from(_DOUYIN_APP_VERSION_RE, low), False


def _says_mainland_china(low: str) -> bool:
    """Region/CN, or with no region a Chinese ByteLocale: how Douyin's webview describes itself."""
    region = _token_value(low, "region/")
    if region:
        return region == "cn"
    locale = _token_value(low, "bytelocale/")
    return not locale or locale.startswith("zh")


def _token_value(low: str, key: str) -> str:
    """The value after `key` up to the next space ("region/cn" -> "cn"); empty when absent."""
    start = low.find(key)
    if start < 0:
        return ""
    start += len(key)
    end = low.find(" ", start)
    return low[start:] if end < 0 else low[start:end]


def _is_unnamed_bot(ua: str, low: str, agent: Agent) -> bool:
    """Step 11: ua-parser's crawler list, a bare HTTP library, or a UA shaped like no browser at all."""
    if agent.is_bot or ("okhttp" in low and "mozilla" not in low) or _CONTACT_RE.search(low):
        return True
    if agent.browser.family != "Other":
        return False
    # No browser ua-parser knows, no rendering engine, and no word of browsing: a script or a service
    # ("Crusader/1.0", "Mozilla/5.0 (compatible)"), not a browser too rare for ua-parser.
    return not any(engine in low for engine in _ENGINES) and "brows" not in low


def _is_generic_webview(ua: str, low: str, os: OS, agent: Agent) -> bool:
    """Step 12: a webview no marker named (Android WebView, iOS WKWebView), unless a browser built on it
    says its own name."""
    if os is _OS_ANDROID or os is _OS_HARMONYOS:
        webview = "; wv)" in ua or agent.browser.family == "Chrome Mobile WebView"
    elif os is _OS_IOS:
        webview = "AppleWebKit" in ua and "Mobile/" in ua and "Safari/" not in ua
    else:
        return False
    if not webview:
        return False
    names_itself = _STANDALONE_BROWSER.search(low)
    return not names_itself or (_X5_CORE in low and "mqqbrowser/" in low)


def _device_of(ua: str, low: str, os: OS, agent: Agent) -> Device:
    if os is _OS_HARMONYOS and "(Tablet;" in ua:
        # HarmonyOS NEXT (ArkWeb) names the form factor first: "(Phone|Tablet|PC; OpenHarmony 5.0".
        return _DEVICE_TABLET
    if os is _OS_HARMONYOS and ("(PC;" in ua or "2in1" in low):
        return _DEVICE_DESKTOP
    if os is _OS_IOS:
        # Said by ua-parser's device domain too, which named apps skip.
        return _DEVICE_TABLET if "iPad" in ua else _DEVICE_MOBILE
    if _TABLET_MARKERS.search(low):
        return _DEVICE_TABLET
    if os is _OS_ANDROID or os is _OS_HARMONYOS:
        return _android_device(low, agent)
    if os is _OS_WINDOWS and any(m in low for m in _WINDOWS_PHONE_MARKERS):
        return _DEVICE_MOBILE
    if os is _OS_WINDOWS and "; touch;" in low:
        return _DEVICE_TABLET  # Internet Explorer on Windows tablets (Surface and the like) says "Touch"
    if agent.is_tablet:
        return _DEVICE_TABLET
    if agent.is_mobile or os in _MOBILE_OSES:
        return _DEVICE_MOBILE
    # Includes iPadOS Safari, which sends a Mac UA on purpose: nothing in
    # the string tells it apart, so it stays macos/desktop.
    return _DEVICE_DESKTOP


def _android_device(low: str, agent: Agent) -> Device:
    """Android phones say "Mobile" (Chrome's rule, followed by WebView and its browsers, even where
    X5/TBS splits it from "Safari"), tablets don't; a pad model or flag overrides a stray "Mobile"."""
    details = _android_details(low)
    model_kind = _PC_OR_PAD_MODEL.first(details)  # a PC line first: "ThinkPad" is a laptop, not a pad
    if model_kind == "pc":
        return _DEVICE_DESKTOP
    pad_model = model_kind == "pad" and not any(m in details for m in _PHONE_MAKERS_NAMED_PAD)
    if pad_model or "pad/apad" in low or agent.device.family in _TABLET_FAMILIES:
        return _DEVICE_TABLET
    if " mobile" in low or "mobile safari" in low:
        return _DEVICE_MOBILE
    # HarmonyOS NEXT names no Android: ua-parser's own judgement then.
    return _DEVICE_TABLET if "android" in low or agent.is_tablet else _DEVICE_MOBILE


def _android_details(low: str) -> str:
    """The Android parenthesis from "android" on ("android 13; sm-x710 build/tp1a..."): where the model is."""
    start = low.find("android")
    if start < 0:
        return ""
    end = low.find(")", start)
    return low[start:end] if end >= 0 else low[start:]


# The OS part of the UAs that apps' web views send on phones. Read with these, a named app's UA needs
# no ua-parser run; anything else (HarmonyOS, desktops, odd shapes) goes the long way.
_IOS_PHONE_RE = re.compile(
    r"\((?:iPhone|iPod touch|iPod|iPad);(?: U;)? CPU (?:iPhone )?OS (\d+)(?:_(\d+))?(?:_(\d+))? like Mac OS X"
)
_ANDROID_PHONE_RE = re.compile(r"\(Linux; (?:U; )?Android (\d+)(?:\.(\d+))?(?:\.(\d+))?[;)]")


def _phone_os(ua: str) -> tuple[OS, Version] | None:
    if "Harmony" in ua or "Hmos/" in ua:
        return None
    # Each regex only where its fixed text is (a substring test costs a tenth of a failing search).
    match = _IOS_PHONE_RE.search(ua) if " like Mac OS X" in ua else None
    os = _OS_IOS
    if match is None:
        match = _ANDROID_PHONE_RE.search(ua) if "(Linux; " in ua else None
        os = _OS_ANDROID
        if match is None:
            return None
    return os, tuple(int(part) for part in match.groups() if part is not None)


def _os_of(agent: Agent, ua: str) -> tuple[OS, Version]:
    if "HarmonyOS" in ua or "OpenHarmony" in ua or "Hmos/" in ua:
        # Android-compatible HarmonyOS 2-4 says "Android 12; HarmonyOS;" with no
        # version of its own; HarmonyOS NEXT says "OpenHarmony 5.0" (and may add
        # "HarmonyOS 5.0"). The Android version is not HarmonyOS's, so drop it.
        m = _HARMONYOS_RE.search(ua) or _OPENHARMONY_RE.search(ua)
        return _OS_HARMONYOS, (_ints(m.group(1)) if m else ())
    fam = agent.os.family
    if fam == "iOS":
        os = _OS_IOS
    elif fam == "Android":
        os = _OS_ANDROID
    elif fam.startswith("Windows"):
        os = _OS_WINDOWS
    elif fam in ("Mac OS X", "Mac OS"):
        os = _OS_MACOS
    elif fam in _LINUX_FAMILIES or "Linux" in fam:
        os = _OS_LINUX
    else:
        return _OS_OTHER, ()
    return os, _int_prefix(agent.os.version)
