"""User-Agent -> Client: which app the tap happened in, on which OS and device.

The apps are data: the catalogue (router.decision.apps, rules/apps.yaml) lists them in precedence order
with the literal markers that name them. A `ClientReader` reads user agents for one catalogue and keeps
its own caches: a catalogue reloaded with the rules gets a new reader, and nothing read with the old one
is reused. `parse_client` reads with the shipped catalogue.

This runs once per click, so both paths are kept cheap:

* a UA seen before is one dict lookup in an LRU keyed by the (truncated) UA;
* a new UA on one of WeChat's templates (router.decision.wechat_shapes) costs one anchored regex and two
  lookups (a few microseconds): its Android model-and-build verdict and its Client are kept per spelling;
* a new UA of another named app on a phone, or of a common browser, costs some microseconds of
  substring tests, anchored regexes and object building, with no ua-parser run;
  anything else one ua-parser run with the Rust resolver (tens of microseconds) on top
  (benchmarks/bench_decide.py measures it: docs/speed.md).
  The catalogue's markers, and the code's long word lists, run as one alternation in the Rust `regex`
  crate ua-parser brings (finite automata, linear in the UA); Python regexes run only behind a
  substring test or on a short slice. The UA is cut to MAX_UA_LENGTH first, so a 100 KB header costs no
  more than a 1 KB one.

The OS and device of a named app's phone UA, everything about WeChat's and the common browsers' UAs
(router.decision.browser_shapes), also with product tokens appended that name no app or bot, are read
here; anything else asks ua-parser 1.x through router.decision.ua_tables, which loads its tables the
first time one is needed. The templates' fast paths hold only for a catalogue none of whose markers
could occur in their fixed text (checked when the reader is built: a catalogue that could is read the
long way throughout).

The app, in this order. The order is the whole point: several apps embed another app's marker, and bots
name apps.

0. A bot named after an app (``DingTalkBot-LinkService``, ``Weibo spider``) -> bot.
1. The catalogue's entries above ``bot``, first marker found in precedence order (WeCom before WeChat:
   it sends a fake ``MicroMessenger/``; ByteDance's other apps before Douyin, whose web view markers
   they share).
2. Explicit crawler / link-preview / HTTP-library / headless words -> bot. After the entries above
   (a WeChat UA stays WeChat whatever else it says), before the ones below.
3. The catalogue's entries below ``bot``.
   Then what the code knows: Douyin's shared markers outside mainland China (no ``aweme``, a region or
   locale elsewhere) are TikTok's; WeChat in a mini program's web view; desktop WeChat and WeCom
   (``WindowsWechat``/``MacWechat``: Mac WeChat sends ``WindowsWechat`` too, so a Mac platform or
   ``MacWechat`` makes it macOS).
4. Bots by shape: ua-parser's ``Spider`` device, a bare okhttp, a URL/domain/mail
   contact line, or no browser ua-parser knows, no rendering engine at all and no
   platform a browser names (an old or niche system's: ``X11``, RISC OS, BeOS,
   Symbian, a BlackBerry pager...); and an empty UA.
5. Generic webviews -> other_inapp: Android ``; wv)`` or ua-parser's Chrome Mobile
   WebView (``Version/4.0 Chrome/`` before Chrome 43, the webview before ``wv``;
   Amazon's Fire OS WebView, a Kindle Fire model without ``Silk/``), and iOS
   WKWebView (``AppleWebKit`` and ``Mobile/`` but no ``Safari/``). A browser built
   on the system WebView that names itself (``VivoBrowser``, ``UCBrowser``,
   ``Quark``, ``OPR/``...) stays a browser; Tencent's X5 core (``MQQBrowser``
   with ``TBS/``) inside an unnamed app does not count as a name.
6. Anything else -> browser.

Device: HarmonyOS NEXT's ``(Tablet;``/``(PC;``; iOS by ``iPad``; e-readers and an
outright ``(Tablet;`` are tablets; Android (and Android-compatible HarmonyOS) is
a phone when the model is a phone's that may say otherwise (a foldable, Huawei's
or Samsung's ``SM-F``, sends no ``Mobile`` unfolded; Amazon's Fire Phone has Silk),
a desktop when the model names a PC line (Chromebook, Inspiron...), a tablet when
it names a pad (``TB-``, ``Tab``, ``Pad``, ``SM-T``, Huawei Wi-Fi-only ``-W09``,
Kindle Fire ``KF…``, Huawei/Honor and old Samsung tablet codes, other makers' pad
lines by code: Prestigio ``PMT``, Lenovo Yoga ``YT3-``/``B6000``...) or the app says
``Pad/APad``, else a phone when it says ``Mobile`` anywhere (X5/TBS splits it from
``Safari``), else a tablet; Windows phones (``Lumia``) are phones and IE's ``Touch``
Windows tablets tablets; handheld game consoles (3DS, PSP, Vita) are phones.

OS: ua-parser's family, except systems the router has no word for (Windows Phone,
Windows Mobile and CE, Symbian, BlackBerry, Tizen, webOS, feature phones, RISC OS...:
``other``, phones or tablets as their tokens say), Linux "like Android" (linux), an
Android build id without the word Android, Samsung Internet on X11 (DeX) and an
iOS-only browser on a Mac platform (an iPad in desktop mode).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

import ua_parser_rs  # ua-parser's Rust regex engine, used directly by _WordList (no tables loaded)

from router.decision.apps import AppEntry, Catalogue, bundled_catalogue, literal_pattern
from router.decision.browser_shapes import BROWSER_TEMPLATE_TEXTS, Shape, read_shape
from router.decision.recent import Recent
from router.decision.slots import slot_constructor
from router.decision.types import OS, App, Client, Device, Version
from router.decision.versions import parse_version
from router.decision.wechat_shapes import WECHAT_TEMPLATE_TEXTS, WeChatShape, read_wechat

if TYPE_CHECKING:
    from router.decision.ua_tables import FastUserAgent

    Agent: TypeAlias = "FastUserAgent | _NoAgent"

__all__ = [
    "MAX_UA_LENGTH",
    "WARM_UP_TABLE_UAS",
    "WARM_UP_UAS",
    "ClientReader",
    "cache_clear",
    "cache_info",
    "parse_client",
    "parse_version",
    "reader_of",
    "tables_built",
    "warm_up",
]

# The enum members this module compares against, bound once: on Python 3.11 looking a member up on its
# class goes through the enum metaclass's __getattr__ hook, and reading one user agent makes dozens of
# such comparisons.
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
WARM_UP_UAS = (
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
WARM_UP_TABLE_UAS = (
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
    with `tables`, also build ua-parser's tables (router.decision.ua_tables) and compile their common
    regexes. Does not touch the Client cache."""
    for ua in WARM_UP_UAS:
        _BUNDLED._parse(ua)
    if tables:
        from router.decision import ua_tables

        ua_tables.warm_up((*WARM_UP_UAS, *WARM_UP_TABLE_UAS))
        for ua in WARM_UP_TABLE_UAS:
            _BUNDLED._parse(ua)


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


def _int_prefix(version: tuple[int | str, ...]) -> Version:
    # user-agents turns digit strings into ints and keeps the rest as strings
    # (Windows "XP", patch "beta"...): keep the numeric prefix only.
    out: list[int] = []
    for p in version:
        if not isinstance(p, int):
            break
        out.append(p)
    return tuple(out)


# Behind a substring test.
# HarmonyOS's own version is preferred over the OpenHarmony base it builds on.
_HARMONYOS_RE = re.compile(r"HarmonyOS[ /]" + _VER)
_OPENHARMONY_RE = re.compile(r"OpenHarmony " + _VER)

# --- markers ----------------------------------------------------------------------------------------


class _WordList:
    """A marker alternation run by the Rust `regex` crate that ua-parser's resolver already brings.

    It compiles to finite automata: linear in the UA whatever the UA holds, and a long alternation costs
    about what one word does, where Python's backtracking `re` tries every branch at every position.
    Patterns are written for lower-cased text and use no look-around (the crate has none).
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._extractor = ua_parser_rs.UserAgentExtractor([(pattern, "match", None, None, None, None)])

    @classmethod
    def of_literals(cls, words: tuple[str, ...], *, fold_case: bool = False) -> _WordList:
        """Any of these plain strings, case-sensitive unless fold_case."""
        body = "|".join(literal_pattern(word) for word in words)
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




# Bots that name an app ("DingTalkBot-LinkService", "Weibo spider") are the app's link-preview fetchers,
# not the app: step 0, before any app marker. Behind a substring test, so a UA with none of these words
# never runs it.
_APP_NAMED_BOT_RE = _WordList(
    r"(?:dingtalk|weibo|wechat|weixin|alipay|taobao|tmall|douyin|toutiao|feishu|lark|baidu|sogou|bytedance"
    r"|tiktok|kuaishou|xiaohongshu|zhihu)[ _-]?(?:bot|spider|crawler)"
)

# Explicit crawler / link-preview / HTTP-library / automation markers, folded to lower case because
# bots spell themselves inconsistently; tested after the catalogue's entries above `bot` (a WeChat UA
# stays WeChat whatever else it says) and before the ones below it. One alternation of plain words (see
# _WordList). "bot" needs a letter or "-" before it and a non-letter after it
# ("Googlebot/", "TelegramBot (", "AhrefsBot;"; "Cubot", a phone maker, is excepted by _NOT_BOTS).
# "Sogou" alone would also hit Sogou's real browsers (SogouMobileBrowser, "SE 2.X MetaSr"), so only
# its spiders.
_BOT_RE = _WordList(
    r"[a-z-]bot\b|spider|crawl|scrap[ey]|slurp|archiver|preview|linkservice|linkexpand|unfurl|embedly"
    r"|iframely|cardyb|facebookexternal|facebookcatalog|meta-external|externalagent|whatsapp|google-|googleother"
    r"|google web|apis-google|mediapartners|feedfetcher|fetcher|validator|checker|monitor|uptime|pingdom"
    r"|scanner|inspect|lighthouse|headless|phantomjs|slimerjs|zombie\.js|selenium|puppeteer|playwright|jsdom"
    r"|curl/|libcurl|wget|libwww|\+https?://|page ?speed"
    r"|python|java[/ -]|\(java\)|httpclient|http-client|http_client|httpie|postman|axios|node-fetch|undici"
    r"|go-http|guzzle|aiohttp|requests/|ruby|http\.rb|cohttp|powershell|bun/|deno/|php/"
    r"|perl|wordpress|proxy|synthetic|like gecko; compatible"
)
# A URL, a domain or a mail address in a UA is a crawler's contact line: browsers never send one. Only
# for UAs no app named (step 11): Facebook's webview puts its carrier's name there ("FBCR/Telekom.de").
_CONTACT_RE = _WordList(r"https?://|\+http|www\.|mailto|@[a-z0-9-]+\.[a-z]|[a-z0-9]\.(?:com|net|org|io|fr|de|ru)\b")
# Names the bot markers above match that are no bots: Cubot phones ("CUBOT P30").
_NOT_BOTS = ("cubot",)
# ...and Electron desktop apps (a Chromium web view: "WhatsApp/2.2017.6 Chrome/76… Electron/6.1.9 Safari/537.36",
# "Postman/9.29.0 Chrome/94… Electron/15.5.7"): the app's name may be a bot word, the UA is a person's window.
_ELECTRON = "electron/"

# Android browsers built on the system WebView send its "; wv" or "Version/4.0 Chrome/" shape too, yet
# they are browsers (they can open app links): they name themselves, most with "Browser" in the name.
# Tencent's X5 core says "MQQBrowser/<v> TBS/<v>" inside any app that embeds it, so that is no browser.
_STANDALONE_BROWSER = _WordList.of_literals((
    "browser", "quark/", "opr/", "ucweb", "liebaofast", "duckduckgo/", "edga/", "ecosia", "puffin/",
    "firefox/", "crios/", "fxios/", "edgios/", "yaapp_", "yasearch", "coc_coc", "kiwi", "opt/", "sleipnir/",
))  # fmt: skip
_X5_CORE = "tbs/"
_FIRE_OS_MODEL = re.compile(r"; (?:kf[a-z]{2,5}|sd4930ur) build/")  # behind a substring test
_WV_TOKEN_SINCE = 43  # the Chrome release from which Android's WebView says "; wv)" (see _is_generic_webview)

# Tablets whose UA still says "Mobile": the model names a pad (Lenovo "TB-X606F", "Galaxy Tab",
# "MatePad", "Avvio PAD"; Coolpad is a phone maker), Samsung's SM-T/SM-X/SM-P tablets, Huawei/Honor
# Wi-Fi-only models ("-W09": only tablets are sold without a modem), or the app says so ("Pad/APad",
# DingTalk on a tablet).
#
# Also by maker's code where the name says nothing: Amazon's Kindle Fire models, "KF" and two to five
# letters (KFTT, KFOT, KFARWI, KFTHWI, KFSOWI...: the Fire tablets' WebView and browsers say "Mobile
# Safari"); Samsung's tablets before the SM- codes (GT-P Galaxy Tabs, GT-N51xx/N80xx Galaxy Notes 8.0 and
# 10.1, sold without the GT- too: "N5110"); Huawei's and Honor's tablet codes (MediaPad, MatePad, Honor Pad:
# AGS, BAH, KOB2, CPN, JDN2, MRX, MON, AGM3...), whose web views say "Mobile" like their phones'.
#
# And the tablet lines of makers that also sell phones, by their model codes, where the stock browser
# of Android 2.x-4.x (and the early WebView after it) said "Mobile Safari" on tablets too: Prestigio's
# MultiPads "PMP3370B"/"PMT5887_3G" (its phones are PAP/PSP); Lenovo's Yoga Tabs "YT3-X50M"/"YT-X703F"
# and Yoga Tablets "Lenovo B6000-F"/"B8000"/"B8080-H"; ViewSonic's ViewPads "VB733"/"VB100a"; ODYS's
# "ODYS-Xpress"/"ODYS-NOON" and Xelio tablets; Allview's City, Speed, Viva and AX tablets (its phones are
# P, V, X, A); Fuhu's Nabi children's tablets "NABI-A"/"NABI2-NV7A"; Lava's Ivory tablets "IvoryS" (its
# phones are Iris); Celkon's CT tablets "Celkon CT 910+" (its phones are A and Q). Only with the maker's
# own spelling where the code alone is short ("B6000", "CT 9"), so no other maker's phone matches.
_PAD_MODEL = _WordList(
    r"tab|pad|(?:^|[^a-z])(?:tb[-0-9]|sm-[txp][0-9]|kf[a-z]{2,5}\b|nexus (?:7|9|10)\b|pixel tablet"
    r"|gt-p[0-9]{4}|(?:gt-)?n(?:51|80)[0-9]{2}\b"
    r"|(?:ags[0-9]?k?|agrk?|agm[0-9]|bah[0-9]?|btk|btv|bz[acdt][0-9]?|cmr|cpn|dbr|dby[0-9]?|gem|hey[0-9]?"
    r"|jdn[0-9]?|kob[0-9]?k?|krj|mon|mr[rx]|pce|scmr?|sht|tgr|wgrr?)-(?:[a-z]{1,3}[0-9]|[0-9]{3}))"
    r"|-w[0-9]{2}(?:[^0-9]|$)"
    r"|(?:^|[^a-z])(?:pm[pt][0-9]{4}|yt[0-9]?-[a-z]?[0-9]{2}|vb[0-9]{3}|xelio|ivory|nabi[0-9]?(?:[^a-z]|$))"
    r"|lenovo ?b[68]0[0-9]0|odys[ _-]|allview ?(?:city|speed|viva|ax[0-9])|celkon ct"
)
# Phones whose UA may say a tablet's: foldables, whose browsers and web views send no "Mobile" unfolded
# (Huawei's Mate X/Xs "TAH", Mate X2 "TET", Mate Xs 2 "PAL", Mate X3/X5 "ALT"/"GRL"; Samsung's Galaxy Z
# Fold and Flip, "SM-F9xx"/"SM-F7xx", the SM-F codes being foldables only; Google's "Pixel Fold"): the
# code is the phone's whatever the screen. And Amazon's Fire Phone "SD4930UR", whose Silk browser
# otherwise marks a Kindle Fire tablet (_TABLET_MARKERS): the model outranks the browser.
_PHONE_MODEL = _WordList(r"(?:^|[^a-z])(?:(?:tah|tet|pal|alt|grl)-a[ln][0-9]{2}|sm-f[0-9]{3}|sd4930ur\b)|pixel fold")
_PHONE_MAKERS_NAMED_PAD = ("coolpad",)
# E-readers run Android or Linux and often say "Mobile"; they are tablets. So is a form factor said
# outright: Firefox OS/Firefox tablets "(Tablet; rv:29.0)", Ubuntu Touch "(Ubuntu; Tablet)", Sailfish
# "Android 4.4; Tablet)", webOS "(hp-tablet;", BlackBerry's PlayBook; and Amazon's Silk, the Kindle Fire's
# browser (its desktop mode says "Macintosh" or "Linux", its mobile one "Mobile Safari"; Amazon's one
# phone is told by its model, _PHONE_MODEL). TrekStor's SurfTab line and the WeTab (MeeGo, "WeTab-Browser" on
# an X11 platform), named anywhere (some of its
# firmwares append "SurfTab_7.0" after an iPhone-like "Mobile/9A405" and leave the model out).
_TABLET_MARKERS = _WordList.of_literals((
    "pocketbook", "kobo", "kindle", "ereader", "nook", "(tablet;", "; tablet)", "hp-tablet", "playbook", "silk/",
    "surftab", "wetab",
))  # fmt: skip
# ua-parser's generic tablet families (named apps skip its device domain, so these help the others only).
_TABLET_FAMILIES = frozenset({"Generic Tablet", "Generic_Android_Tablet"})
# Android also runs on laptops and desktop PCs (ChromeOS's Android apps, Android-x86 builds), which
# send no "Mobile" and so look like tablets; their model names the PC line. So do Android all-in-one PCs
# and monitors, some with a "Mobile" their stock browser kept: a "PC" and a number ("NBPC724" netbook,
# "HL-PC1088"), Acer's DA series of Android all-in-one monitors ("DA241HL", "DA220HQL").
_PC_MODEL = _WordList(
    r"chromebook|pixelbook|notebook|laptop|desktop|inspiron|latitude|vostro|elitebook|probook|pavilion"
    r"|travelmate|aspire|satellite|lifebook|thinkpad|ideapad|easynote|macbook|matebook|zenbook|vivobook"
    r"|\bnuc\d|\bpc\b|\baio\b|2in1|pc[0-9]{3,4}\b|\bda2[0-9]{2}h"
)
_PC_OR_PAD_MODEL = _FirstOf(("pc", _PC_MODEL), ("pad", _PAD_MODEL), ("phone", _PHONE_MODEL))
# Phones that run Windows 10 Mobile say "Windows NT 10.0; ARM; Lumia 950" or "Windows Phone"; Windows
# Mobile and Windows CE are handhelds' systems (Pocket PCs, "PPC; 240x320"), IEMobile their browser.
_WINDOWS_PHONE_MARKERS = ("windows phone", "lumia", "iemobile", "windows ce", "windows mobile")

# Systems that are none of the router's named ones (OS `other`), which ua-parser reads as one of them or
# not at all: Windows Phone, Windows Mobile and Windows CE are not Windows (no Windows app opens there);
# Windows Phone 8.1's IE asking for desktop pages says "Windows NT 6.2; ARM; Touch; WPDesktop; Lumia 930"
# and no "Windows Phone": WPDesktop is that mode's word; PalmOS ("PalmSource; Blazer 3.0", "PalmOS") is no
# Windows either, whatever its "Windows 95" says. Symbian and Nokia's Series 40/60 (their UAs embed an
# iPhone's or a Mac's to get full pages); BlackBerry (RIM's pagers "RIM957", the PlayBook, BB10: several
# say "Android 2.3.3" for its player); Tizen (with its own "like Android"); webOS (an HP TouchPad's
# "wOSBrowser" on an "iPad" platform); MeeGo, Maemo, KaiOS, Bada; and the handsets' platforms (BREW/REX,
# Japan's FOMA, jig browser).
# Phones and tablets all: their device is `mobile` unless a tablet word says otherwise.
_OTHER_MOBILE_OS = _WordList(
    r"windows phone|windows ce|windows mobile|iemobile|wpdesktop|palmsource|palmos|palm os|symbian|series ?[46]0"
    r"|\bs60;|blackberry|\bbb10\b"
    r"|playbook|rim tablet|\brim ?[0-9]|tizen|webos|hpwos|wosbrowser|meego|maemo|kaios"
    r"|\bbada\b|brew/|\brex/|\bfoma\b|jig browser"
)
# Desktop systems of the same kind: RISC OS, BeOS and Haiku, AmigaOS and MorphOS, OS/2, Inferno, and the
# workstation Unixes Netscape once ran on (IRIX, HP-UX, SunOS, OSF/1, UNIX System V, NEWS-OS, BSD/386).
_OTHER_DESKTOP_OS = _WordList(
    r"risc ?os|beos|haiku|amiga|morphos|[ (;]os/2[;) ]|inferno|irix|hp-ux|sunos|osf1|osf_|unix_sv|news-os|bsd/386"
)
# Handset makers and Java ME words that name a feature phone, unless ua-parser reads Android or iOS there
# (Nokia's and Sony Ericsson's Android phones, Android phones' "Profile/MIDP-2.0"): OS `other`, a phone.
_FEATURE_PHONE = _WordList(r"nokia|sonyericsson|\(java;|j2me|midp-")
# Handheld game consoles (Nintendo's DS, DSi and 3DS, Sony's PSP and PS Vita): small screens carried in the
# hand, phones to a page. Their own systems (OS `other`), whatever tablet word their browsers borrow (the
# Vita's NetFront says "Silk/").
_HANDHELD_CONSOLE = _WordList(r"nintendo (?:3ds|dsi?\b)|playstation (?:portable|vita)|\(psp\b")
_OTHER_OS = _FirstOf(("mobile", _OTHER_MOBILE_OS), ("desktop", _OTHER_DESKTOP_OS), ("phone", _FEATURE_PHONE))
# Browsers only built for iOS: on a "Macintosh" platform they are an iPad asking for desktop pages.
_IOS_ONLY_BROWSERS = ("fxios/", "crios/", "edgios/")

_LINUX_FAMILIES = frozenset(
    {
        "Ubuntu", "Kubuntu", "Lubuntu", "Debian", "Fedora", "Red Hat", "CentOS", "Gentoo", "Slackware",
        "SUSE", "openSUSE", "Mandriva", "PCLinuxOS", "Puppy", "BackTrack", "Chrome OS", "Mageia",
    }
)  # fmt: skip
_MOBILE_OSES = (_OS_IOS, _OS_ANDROID, _OS_HARMONYOS)
# Engines every real browser names; a UA with none of them and no browser ua-parser knows is a script.
# "webkit" alone too: Ubuntu Touch's browser says "(Ubuntu; Mobile) WebKit/537.36" and nothing else.
_ENGINES = ("webkit", "gecko", "trident", "presto", "khtml", "arkweb")

# Clients are few (apps x versions x OS versions x devices) where user agents are many: every new user agent
# that says the same gets the same Client object. It saves building a frozen dataclass per user agent (a few
# µs), keeps the UA cache small, and lets what is keyed by a Client hash one object's fields, often cached.
_CLIENT_LIMIT = 1024

_new_client = slot_constructor(Client)  # router.decision.slots: half the cost of Client(...)
# ClientReader._client's key is handed to it positionally: it must list the fields in their order.
if tuple(f.name for f in dataclasses.fields(Client) if f.init) != (
    "app", "app_version", "os", "os_version", "device", "bot", "mini_program", "browser"
):
    raise ImportError("router.decision.clients: Client's fields changed; update ClientReader._client's key")

_MARKED = "marked"  # an Android model name that carries a marker
_BOT = "bot"  # what _named says of a bot that names itself


class ClientReader:
    """Reads user agents into Clients for one catalogue, with its own caches (see the module's docstring).

    Built by `reader_of`, once per catalogue: everything it keeps was read with that catalogue's
    markers, and a Client's `app` is that catalogue's entry."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        # The entries the code names (router.decision.types.App), bound once: identity tests on the hot path.
        self._wechat, self._wecom = catalogue[App.WECHAT], catalogue[App.WECOM]
        self._douyin, self._tiktok = catalogue[App.DOUYIN], catalogue[App.TIKTOK]
        self._other_inapp, self._browser, self._bot = (catalogue[App.OTHER_INAPP], catalogue[App.BROWSER],
                                                       catalogue[App.BOT])
        self._bot_at = catalogue.bot_at
        # The templates' fast paths hold only where no marker that could win can occur in their fixed text.
        wechat_at = catalogue.entries.index(self._wechat)
        self._wechat_template = not _hits(catalogue.entries[:wechat_at], WECHAT_FIXED_TEXTS)
        self._browser_templates = not _hits(catalogue.entries, BROWSER_FIXED_TEXTS)
        self._clients: Recent[tuple[object, ...], Client] = Recent(_CLIENT_LIMIT)
        self._shape_clients: Recent[tuple[object, ...], Client] = Recent(1024)
        self._android_models: Recent[tuple[str, str], Device | str] = Recent(4096)
        # Built Clients by the template's spellings: versions repeat across millions of user agents.
        self._wechat_clients: Recent[tuple[str, str, str, object], Client] = Recent(1024)
        self._wechat_parentheses: Recent[str, Device | str] = Recent(2048)
        self.empty = self._client(self._bot, (), _OS_OTHER, (), _DEVICE_DESKTOP, True)
        self._parse_cached = lru_cache(maxsize=_CACHE_SIZE)(self._parse_guarded)
        self._parse_wechat_cached = lru_cache(maxsize=_WECHAT_CACHE_SIZE)(self._parse_guarded)

    def parse(self, ua: str | None) -> Client:
        """Classify one User-Agent header. Never raises; None or blank means a bot."""
        if not ua or not isinstance(ua, str):
            return self.empty
        if len(ua) > MAX_UA_LENGTH:
            ua = ua[:MAX_UA_LENGTH]
        if "MicroMessenger/" in ua:
            return self._parse_wechat_cached(ua)
        return self._parse_cached(ua)

    def warm(self, agents: Iterable[str]) -> None:
        """Read `agents` once, uncached: what this reader compiles on first use is compiled now
        (router.serve.warm), and its cache of read user agents stays empty."""
        for ua in agents:
            self._parse(ua)

    def cache_info(self) -> CacheInfo:
        """LRU statistics of the Client caches together (hits, misses, maxsize, currsize)."""
        infos = (self._parse_cached.cache_info(), self._parse_wechat_cached.cache_info())
        return CacheInfo(*(sum(getattr(info, field) or 0 for info in infos)
                           for field in ("hits", "misses", "maxsize", "currsize")))

    def cache_clear(self) -> None:
        """Empty the Client caches (tests, benchmarks)."""
        self._parse_cached.cache_clear()
        self._parse_wechat_cached.cache_clear()

    def _client(
        self, app: AppEntry, app_version: Version, os: OS, os_version: Version, device: Device,
        bot: bool = False, mini_program: bool = False, browser: str = "",
    ) -> Client:
        key = (app, app_version, os, os_version, device, bot, mini_program, browser)
        client = self._clients.get(key)
        if client is None:
            client = _new_client(*key)
            self._clients.put(key, client)
        return client

    def _parse_guarded(self, ua: str) -> Client:
        try:
            return self._parse(ua)
        except Exception:
            # Belt and braces: a click must never fail on its User-Agent. A UA that
            # breaks the parser is not a browser anyone taps in.
            return self.empty

    def _parse(self, ua: str) -> Client:
        if ua.isspace():
            return self.empty
        # WeChat's own templates first: most clicks, and most never-seen user agents (router.decision.wechat_shapes).
        if self._wechat_template and "MicroMessenger/" in ua:
            wechat = read_wechat(ua)
            if wechat is not None:
                client = self._wechat_client(wechat)
                if client is not None:
                    return client
        # The Rust resolver takes UTF-8; a lone surrogate (from a surrogateescape'd
        # header) can't be encoded, so replace those before handing the string over.
        clean = ua if ua.isascii() else ua.encode("utf-8", "replace").decode("utf-8")
        low = clean.lower()
        # The common browsers' own templates: read whole, without ua-parser (router.decision.browser_shapes).
        # Their only free text, Android's model name, could still carry a marker, so it is read as a UA is.
        shape = read_shape(ua) if self._browser_templates else None
        if shape is not None:
            device = self._shape_device(low, shape)
            if device is not None:
                return self._shape_client(shape, device)
        named = self._named(clean, low)
        if named is None and self._browser_templates:
            # A common browser's template with product tokens appended ("… Safari/604.1 Norton/130.0"): no
            # app or bot marker names it, so it is that browser, as the template reads it.
            appended = _template_with_products(ua)
            if appended is not None and not _CONTACT_RE.search(low):
                device = self._shape_device(low, appended)
                if device is not None:
                    return self._shape_client(appended, device)
        # ua-parser's device domain is its most expensive and its browser domain only names the webview;
        # a tap inside a named app needs neither, so only the OS is resolved for it, and
        # for the phone shapes every such app sends (iOS, Android) not even that: one anchored regex reads it.
        # Named apps are most of the traffic and most of the never-seen user agents.
        phone_os = _phone_os(ua) if isinstance(named, tuple) else None
        if phone_os is not None:
            agent, (os, os_version) = _NO_AGENT, phone_os
        else:
            # Loaded (and the tables built) the first time a user agent gets here.
            from router.decision import ua_tables

            agent = ua_tables.agent(clean, os_only=bool(named))
            os, os_version = _os_of(agent, ua, low)

        if named is _BOT or (named is None and _is_unnamed_bot(ua, low, agent)):
            # A crawler's version decides nothing.
            return self._client(self._bot, (), os, os_version, _DEVICE_DESKTOP, bot=True,
                                browser=agent.browser.family)

        app: AppEntry
        app_version: Version = ()
        mini_program = False
        if isinstance(named, tuple):
            app, app_version = named
            if app.kind == "bot":  # the catalogue's crawlers are `bot` to the rules, as the code's are
                return self._client(self._bot, (), os, os_version, _DEVICE_DESKTOP, bot=True,
                                    browser=agent.browser.family)
            mini_program = app is self._wechat and "miniprogram" in low  # "miniprogramhtmlwebview" too
        elif _is_generic_webview(ua, low, os, agent):
            app = self._other_inapp
        else:
            app, app_version = self._browser, _int_prefix(agent.browser.version)

        if (app is self._wechat or app is self._wecom) and ("macwechat" in low or "windowswechat" in low):
            # Desktop WeChat/WeCom. Mac WeChat says WindowsWechat too (old versions without MacWechat), so a
            # Mac UA (or MacWechat) wins.
            target = _OS_MACOS if ("macwechat" in low or os is _OS_MACOS) else _OS_WINDOWS
            if os is not target:
                os, os_version = target, ()
            device = _DEVICE_DESKTOP
        else:
            device = _device_of(ua, low, os, agent)

        browser = "" if named else agent.browser.family
        return self._client(app, app_version, os, os_version, device, app.kind == "bot", mini_program, browser)

    def _named(self, ua: str, low: str) -> tuple[AppEntry, Version] | str | None:
        """Steps 0-3: _BOT for a bot that names itself; (entry, version) for an app a marker names; None
        when nothing does."""
        if ("bot" in low or "spider" in low or "crawler" in low) and _APP_NAMED_BOT_RE.search(low):
            return _BOT
        found = self.catalogue.first(ua)
        if found is None or found[0] > self._bot_at:
            if (_BOT_RE.search(low) and not any(word in low for word in _NOT_BOTS)
                    and not (_ELECTRON in low and "headless" not in low)):
                return _BOT
            if found is None:
                return None
        entry = found[1]
        if entry is self._douyin and "aweme" not in low and not _says_mainland_china(low):
            # Douyin's web view markers (BytedanceWebview, ByteLocale) with a region or locale outside
            # mainland China and no Douyin build: TikTok (or TikTok Lite) without its own name.
            entry = self._tiktok
        # `other_inapp` is many apps: no one version means anything across them.
        return entry, () if entry is self._other_inapp else self.catalogue.version_in(entry, ua)

    def _shape_client(self, shape: Shape, device: Device) -> Client:
        """What the steps make of a common browser's user agent (no app marker, no bot, no webview in any of
        the shapes), given what ua-parser would have said about it. Kept per OS, browser and device as
        written: a browser release and an OS version are sent by millions."""
        key = (shape.os, shape.browser, device)
        client = self._shape_clients.get(key)
        if client is None:
            os_family, *os_parts = shape.os
            family, *browser_parts = shape.browser
            client = self._client(self._browser, _parts(browser_parts), _SHAPE_OS[os_family], _parts(os_parts),
                                  device, browser=family)
            self._shape_clients.put(key, client)
        return client

    def _shape_device(self, low: str, shape: Shape) -> Device | None:
        """A common browser's device; None when its model name carries a marker (it is read the long way)."""
        if shape.os[0] == "iOS":
            return _DEVICE_TABLET if shape.device == "iPad" else _DEVICE_MOBILE
        if not shape.model:
            return _DEVICE_DESKTOP
        # Android: the template is fixed, so the model and whether it says "Mobile" decide; models repeat
        # across millions of phones, so their verdict is kept.
        key = (shape.model, shape.browser[0])  # "Chrome Mobile" or "Chrome": with or without "Mobile"
        verdict = self._android_models.get(key)
        if verdict is None:
            verdict = _MARKED if self._has_markers(shape.model) else _device_of("", low, _OS_ANDROID, _NO_AGENT)
            self._android_models.put(key, verdict)
        return None if verdict is _MARKED else verdict  # type: ignore[return-value]

    def _wechat_client(self, shape: WeChatShape) -> Client | None:
        """What the steps make of a user agent on one of WeChat's templates; None when its Android
        parenthesis carries a marker (it is read the long way)."""
        device: Device | str | None
        if shape.os == "iOS":
            device = _DEVICE_TABLET if shape.device == "iPad" else _DEVICE_MOBILE
        else:
            # The template's fixed text holds no marker and says "Mobile Safari": the parenthesis (model and
            # firmware build) alone decides the device, and the verdict is kept for the next phone like it.
            device = self._wechat_parentheses.get(shape.parenthesis)
            if device is None:
                device = self._parenthesis_device(shape.parenthesis)
                self._wechat_parentheses.put(shape.parenthesis, device)
            if device is _MARKED:
                return None
        key = (shape.os, shape.os_version, shape.app_version, device)
        client = self._wechat_clients.get(key)
        if client is None:
            os_version = tuple(int(part) for part in shape.os_version.replace("_", ".").split("."))
            client = self._client(self._wechat, _ints(shape.app_version),
                                  _OS_IOS if shape.os == "iOS" else _OS_ANDROID, os_version, device)  # type: ignore[arg-type]
            self._wechat_clients.put(key, client)
        return client

    def _parenthesis_device(self, parenthesis: str) -> Device | str:
        """The device an Android WeChat template's parenthesis says, as _device_of reads the whole user agent
        (the rest of the template adds ") ... Mobile Safari" and no marker); _MARKED when it names an app, a
        bot, HarmonyOS or a mini program."""
        low = parenthesis.lower()
        if self._has_markers(parenthesis) or "miniprogram" in low:
            return _MARKED
        return _device_of("", low + ") mobile safari", _OS_ANDROID, _NO_AGENT)

    def _has_markers(self, model: str) -> bool:
        if not model:
            return False
        low = model.lower()
        return self._named(model, low) is not None or "harmony" in low or "hmos" in low


def _digits_as_zero(text: str) -> str:
    return re.sub(r"\d+", "0", text)


def _hits(entries: tuple[AppEntry, ...], fixed_texts: tuple[str, ...]) -> bool:
    """Whether any marker of `entries` could occur in a template's fixed text. Digits are compared as runs
    (a marker found in a user agent is found, digit runs made "0" in both, in its template's text), and the
    template's free text is a character no marker has, so the answer errs only towards "could"."""
    return any(_digits_as_zero(marker) in text for entry in entries for marker in entry.markers
               for text in fixed_texts)


# The templates' fixed text, digit runs as "0" and free text as "\x00" (router.decision.wechat_shapes and
# router.decision.browser_shapes list them beside their regexes; their tests hold the two together).
WECHAT_FIXED_TEXTS = tuple(_digits_as_zero(text) for text in WECHAT_TEMPLATE_TEXTS)
BROWSER_FIXED_TEXTS = tuple(_digits_as_zero(text) for text in BROWSER_TEMPLATE_TEXTS)

def reader_of(catalogue: Catalogue) -> ClientReader:
    """The user-agent reader of `catalogue`: built the first time it is asked for, then kept with it."""
    reader = catalogue.__dict__.get("_reader")
    if reader is None:
        with _readers_lock:
            reader = catalogue.__dict__.get("_reader")
            if reader is None:
                reader = ClientReader(catalogue)
                object.__setattr__(catalogue, "_reader", reader)
    return reader


_readers_lock = threading.Lock()
_BUNDLED = reader_of(bundled_catalogue())
parse_client = _BUNDLED.parse
"""Classify one User-Agent header with the shipped catalogue. Never raises; None or blank means a bot."""


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int
    currsize: int


def cache_info() -> CacheInfo:
    """LRU statistics of the shipped catalogue's reader (hits, misses, maxsize, currsize)."""
    return _BUNDLED.cache_info()


def cache_clear() -> None:
    """Empty the shipped catalogue's reader's Client caches (tests, benchmarks)."""
    _BUNDLED.cache_clear()


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


def _parts(parts: list[str | None]) -> Version:
    return tuple(int(part) for part in parts if part is not None)


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
    if any(engine in low for engine in _ENGINES) or "brows" in low:
        return False
    # Nor a browser of a system no script runs on: the old and niche browsers name their platform, where a
    # script names none. Netscape's "(X11; I; IRIX 5.3 IP22)", "NetSurf/3.0 (RISC OS)", "NetPositive/2.2.1;
    # BeOS", a BlackBerry pager's "Go.Web/6.2; … RIM957", "Doris/1.15 [en] (Symbian)"; and the text-mode
    # browsers (w3m, Lynx, Links). A Mac platform too: the Mac's browsers before WebKit (Netscape 4's
    # "Mozilla/4.5 [fr] (Macintosh; U; PPC)", iCab's "(compatible; iCab 2.9.8; Macintosh; U; PPC)"), which
    # named no engine; a script never names a Mac without one.
    return not ("(x11;" in low or "macintosh;" in low or "w3m/" in low or "lynx/" in low or "links (" in low
                or _OTHER_OS.first(low))


def _is_generic_webview(ua: str, low: str, os: OS, agent: Agent) -> bool:
    """Step 12: a webview no marker named (Android WebView, iOS WKWebView), unless a browser built on it
    says its own name."""
    if os is _OS_ANDROID or os is _OS_HARMONYOS:
        # Without "; wv)", ua-parser's Chrome Mobile WebView is "Version/4.0 Chrome/": the WebView before
        # Chrome 43 said nothing more (Android 4.4's, Android 5.x's built-in Chrome/39, Fire OS 5's
        # Chrome/41). Every later WebView says "; wv)", so after it the same shape is a browser that keeps
        # the WebView's shape without its token (Firefox Focus/Klar "Version/4.0 Focus/1.2.1 Chrome/59");
        # so is any "Version/" other than the WebView's 4.0 (Samsung Internet 1.x "Version/1.5 Chrome/28",
        # the AOSP browser's "Version/1.0 Chrome/18").
        webview = "; wv)" in ua or (
            agent.browser.family == "Chrome Mobile WebView" and "Version/4.0 " in ua
            and _int_prefix(agent.browser.version)[:1] < (_WV_TOKEN_SINCE,))
    elif os is _OS_IOS:
        webview = "AppleWebKit" in ua and "Mobile/" in ua and "Safari/" not in ua
    else:
        return False
    if not webview and (os is _OS_ANDROID and ("; kf" in low or "; sd4930ur" in low) and "silk" not in low
                        and _FIRE_OS_MODEL.search(low) is not None):
        # Amazon's Fire OS devices (the Kindle Fire tablets "KF…", the Fire Phone "SD4930UR") browse with Silk,
        # which always says "Silk/"; a Chrome-shaped UA of theirs without it, with the full "Build/" id
        # (no browser's template), is Amazon WebView inside an app, which says no "; wv".
        webview = True
    if not webview:
        return False
    # An app's web view that calls itself an in-app browser ("IpnosInAppBrowser", Cordova's InAppBrowser)
    # names no browser, whatever its "Browser".
    names_itself = _STANDALONE_BROWSER.search(low) and "inappbrowser" not in low
    return not names_itself or (_X5_CORE in low and "mqqbrowser/" in low)


def _device_of(ua: str, low: str, os: OS, agent: Agent) -> Device:
    if "puffin/" in low:
        # Puffin renders pages on its servers, whose platform ("X11; U; Linux x86_64") its UA sends; the
        # device it runs on is the version's two-letter suffix, system then form factor ("Puffin/4.2.1IT":
        # I iOS, A Android, W Windows, L Linux; T tablet, P phone, D desktop).
        puffin = _PUFFIN_SUFFIX_RE.search(low)
        if puffin is not None:
            return _PUFFIN_DEVICES[puffin.group(1)]
    if os is _OS_HARMONYOS and "(Tablet;" in ua:
        # HarmonyOS NEXT (ArkWeb) names the form factor first: "(Phone|Tablet|PC; OpenHarmony 5.0".
        return _DEVICE_TABLET
    if os is _OS_HARMONYOS and ("(PC;" in ua or "2in1" in low):
        return _DEVICE_DESKTOP
    if os is _OS_IOS:
        # Said by ua-parser's device domain too, which named apps skip. An iOS browser on a "Macintosh"
        # platform is an iPad asking for desktop pages (see _os_of).
        return _DEVICE_TABLET if "iPad" in ua or "Macintosh" in ua else _DEVICE_MOBILE
    if os is _OS_ANDROID or os is _OS_HARMONYOS:
        return _android_device(low, os, agent)
    if os is _OS_OTHER and _HANDHELD_CONSOLE.search(low):
        return _DEVICE_MOBILE
    if _TABLET_MARKERS.search(low):
        return _DEVICE_TABLET
    if (os is _OS_WINDOWS or os is _OS_OTHER) and any(m in low for m in _WINDOWS_PHONE_MARKERS):
        return _DEVICE_MOBILE
    if os is _OS_OTHER or os is _OS_LINUX:
        # A phone system (_OTHER_OS), or Linux on a phone (Ubuntu Touch "(Ubuntu; Mobile)", Firefox OS
        # "(Mobile; rv:"): desktops' Linux never says "Mobile". A pad named in the platform's parenthesis
        # first (webOS's TouchPad "(iPad; U;", Lenovo's LeOS "lepad_001b", "(X11; Linux; PadFone").
        platform = low[low.find("("):low.find(")")] if "(" in low else ""
        if platform and _PC_OR_PAD_MODEL.first(platform) == "pad":
            return _DEVICE_TABLET
        kind = _OTHER_OS.first(low) if os is _OS_OTHER else None
        if (kind == "mobile" or kind == "phone" or "mobile" in low) and "smart-tv" not in low:
            return _DEVICE_MOBILE  # Tizen's TVs say "SMART-TV; Linux; Tizen": no phone
    if os is _OS_WINDOWS and "; touch;" in low:
        return _DEVICE_TABLET  # Internet Explorer on Windows tablets (Surface and the like) says "Touch"
    if agent.is_tablet:
        return _DEVICE_TABLET
    if agent.is_mobile or os in _MOBILE_OSES:
        return _DEVICE_MOBILE
    # Includes iPadOS Safari, which sends a Mac UA on purpose: nothing in
    # the string tells it apart, so it stays macos/desktop.
    return _DEVICE_DESKTOP


_PUFFIN_SUFFIX_RE = re.compile(r"puffin/[0-9.]+[ialw]([tpd])\b")  # behind a substring test
_PUFFIN_DEVICES = {"t": _DEVICE_TABLET, "p": _DEVICE_MOBILE, "d": _DEVICE_DESKTOP}


def _android_device(low: str, os: OS, agent: Agent) -> Device:
    """Android phones say "Mobile" (Chrome's rule, followed by WebView and its browsers, even where
    X5/TBS splits it from "Safari"), tablets don't; a pad model or flag overrides a stray "Mobile", a
    phone model (a foldable, the Fire Phone) a missing one or a tablet marker."""
    details = _android_details(low)
    model_kind = _PC_OR_PAD_MODEL.first(details)  # a PC line first: "ThinkPad" is a laptop, not a pad
    if model_kind == "phone":
        return _DEVICE_MOBILE
    if _TABLET_MARKERS.search(low):
        return _DEVICE_TABLET
    if os is _OS_ANDROID and "(x11;" in low:
        return _DEVICE_DESKTOP  # Android's desktop mode on an X11 platform (Samsung DeX, see _os_of)
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
    """The Android parenthesis from "android" on ("android 13; sm-x710 build/tp1a..."): where the model is.
    Some name no Android, only its version ("(Linux; 13; TB310XU)"): the parenthesis after "(linux;" then."""
    start = low.find("android")
    if start < 0:
        start = low.find("(linux;")
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


def _os_of(agent: Agent, ua: str, low: str) -> tuple[OS, Version]:
    if "HarmonyOS" in ua or "OpenHarmony" in ua or "Hmos/" in ua:
        # Android-compatible HarmonyOS 2-4 says "Android 12; HarmonyOS;" with no
        # version of its own; HarmonyOS NEXT says "OpenHarmony 5.0" (and may add
        # "HarmonyOS 5.0"). The Android version is not HarmonyOS's, so drop it.
        m = _HARMONYOS_RE.search(ua) or _OPENHARMONY_RE.search(ua)
        return _OS_HARMONYOS, (_ints(m.group(1)) if m else ())
    fam = agent.os.family
    # A system the router has no word for, whatever ua-parser reads (see _OTHER_OS); the feature phones'
    # words only where ua-parser reads no Android or iOS.
    kind = _OTHER_OS.first(low)
    if kind is not None and (kind != "phone" or fam not in ("Android", "iOS")):
        return _OS_OTHER, ()
    if "like android" in low:
        # Linux that says it runs Android apps (PocketBook's "Linux like Android", Ubuntu Touch's "Ubuntu
        # 14.04 like Android 4.4"): not Android. Tizen says so too, and is caught above.
        return _OS_LINUX, ()
    if fam == "Linux" and "build/" in low and "(linux;" in low:
        # "(Linux; 5.1.1; Nexus 5 Build/LMY48B)": an Android build id with the word Android left out.
        return _OS_ANDROID, ()
    if fam == "Android" and "sailfish" in low:
        # Sailfish OS says "Android 4.4" for its Android app layer: it is no Android.
        return _OS_OTHER, ()
    if "samsungbrowser/" in low and "(x11;" in low:
        # Samsung Internet runs only on Android: on an X11 platform it is Samsung DeX's desktop mode (or a
        # headset's: the Quest's "(X11; Linux x86_64; Quest 2)").
        return _OS_ANDROID, ()
    if fam in ("Mac OS X", "Mac OS") and any(name in low for name in _IOS_ONLY_BROWSERS):
        # Firefox, Chrome or Edge for iOS on a "Macintosh" platform: an iPad in desktop mode.
        return _OS_IOS, ()
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
    elif fam == "Other" and "(x11;" in low:
        # An X11 platform that names no system ("Mozilla/5.0 (X11; ) … Chrome/11"): a Unix desktop, which for
        # a browser that runs on it (Chrome, Firefox) is Linux; the BSDs and Solaris name themselves.
        return _OS_LINUX, ()
    else:
        return _OS_OTHER, ()
    return os, _int_prefix(agent.os.version)
