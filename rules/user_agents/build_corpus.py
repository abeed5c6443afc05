"""Rebuild the user-agent regression corpus from public parser projects' test fixtures.

    python rules/user_agents/build_corpus.py DEVICE_DETECTOR UAP_CORE CRAWLER_USER_AGENTS UA_PARSER_JS \
        WHICHBROWSER BOWSER MOBILE_DETECT
    python rules/user_agents/build_corpus.py --only whichbrowser=WHICHBROWSER bowser=BOWSER
    python rules/user_agents/build_corpus.py --only browscap=BROWSCAP --out DIR
    python rules/user_agents/build_corpus.py --relabel

Each argument is a git directory (a clone, or a bare snapshot) of, in order: matomo-org/device-detector,
ua-parser/uap-core, monperrus/crawler-user-agents, faisalman/ua-parser-js, WhichBrowser/Parser,
lancedikson/bowser, serbanghita/Mobile-Detect. Files are read from each one's HEAD with `git show`, so
nothing has to be checked out; the commit read is written into sources.json. `--only NAME=DIR ...` rebuilds
only the named files (NAME is the file's stem) and leaves the others, and their entries in sources.json, as
they are. With `--out DIR` the named files, and a sources.json of their entries, are written into DIR instead
of the corpus folder (still skipping every UA the corpus folder's files hold): how a held-out source (HELD_OUT,
browscap/browscap's tests/issues and hotoo/detector's tests/*.js, named only with --only) is prepared without
joining the corpus.
`--relabel` rebuilds no file from its source: it re-derives the app label of every row of the files
already written from the source label the row carries (see relabel_app), for when a table below
changes. Not run by the test suite: the suite reads the files this writes.

The labelling rule is the code below and is written out in README.md: every label is derived from the
source's own label through an explicit table; a source label with no router equivalent leaves that
field unlabelled (None), never a guess. The user-agent string itself is never looked at to decide a
label, with two stated exceptions (device-detector's "Mobile Safari" and bowser's "Safari" on a UA
without a Safari/ token, see _dd_app and _bowser_app; uap-core's "WeChat Browser" on a UA with WeCom's
wxwork/ token, see _uap_app). Sampling is deterministic (ordered by a hash of
the UA) and stratified by label, so the corpus does not depend on what the router currently gets right.
A UA already in another file of the corpus (an earlier source's, or a file this script does not write)
is not taken again.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent

# --- the shared name table ------------------------------------------------------------------------------

# An in-app browser named by a source -> the app's id in the catalogue (rules/apps.yaml). Every other
# in-app browser is other_inapp: the catalogue names only these. TikTok is ByteDance's international app,
# not Douyin; Toutiao and Feishu/Lark are ByteDance's too, with ids of their own.
IN_APP_NAMES: dict[str, str] = {
    "wechat": "wechat",
    "wechat browser": "wechat",  # uap-core
    "wechat work": "wecom",
    "wecom": "wecom",
    "qq": "qq",  # the QQ messenger; QQ Browser is a browser and is never spelled "QQ" alone
    "sina weibo": "weibo",
    "weibo": "weibo",
    "alipay": "alipay",
    "dingtalk": "dingtalk",
    "douyin": "douyin",
    "taobao": "taobao",
    "tmall": "taobao",
    "toutiao": "toutiao",
    "jinri toutiao": "toutiao",
    "feishu": "feishu",
    "lark": "feishu",  # Feishu's international name
    "tiktok": "tiktok",
    "tiktok lite": "tiktok",
    "musical.ly": "tiktok",
    "xiaohongshu": "xiaohongshu",
    "rednote": "xiaohongshu",
    "kuaishou": "kuaishou",
    "kwai": "kuaishou",  # Kuaishou's international app
    "bilibili": "bilibili",
    "zhihu": "zhihu",
    "baidu box app": "baidu",  # device-detector, uap-core: the Baidu app (baiduboxapp)
    "baidu box app lite": "baidu",
    "baidu app": "baidu",  # ua-parser-js's description of it (see UPJ_APP_DESCRIPTIONS)
    "meituan": "meituan",
    "aimeituan": "meituan",  # WhichBrowser
    "pinduoduo": "pinduoduo",
    "jd": "jd",
    "jingdong": "jd",
}

# A browser named by a source -> its id in the catalogue, for the browsers the catalogue names (kind
# browser); every other browser is `browser`. Baidu Browser, QQ Browser and the like are not these.
BROWSER_NAMES: dict[str, str] = {
    "uc browser": "uc",
    "ucbrowser": "uc",  # ua-parser-js
    "quark": "quark",  # ua-parser-js
    "quark browser": "quark",  # WhichBrowser
}


def in_app(name: str) -> str:
    return IN_APP_NAMES.get(name.strip().lower(), "other_inapp")


def browser(name: str) -> str:
    return BROWSER_NAMES.get(name.strip().lower(), "browser")


@dataclass(frozen=True)
class Row:
    ua: str
    app: str | None
    os: str | None
    device: str | None
    path: str  # file inside the source repository
    label: str  # the source's own label, as written there

    def stratum(self) -> tuple[str | None, str | None, str | None]:
        return (self.app, self.os, self.device)


def shows_pages(ua: str) -> bool:
    """For sources whose OS and device fixtures don't say what kind of client sent the UA: a browser
    engine's UA (they all start "Mozilla/"), as opposed to an app's own HTTP client or a device's
    system service, which no person taps a link in. OS and device are labelled only for these."""
    return ua.startswith("Mozilla/")


def git_show(git_dir: Path, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", f"HEAD:{path}"], check=True, capture_output=True, text=True
    ).stdout


def git_ls(git_dir: Path, folder: str) -> list[str]:
    out = subprocess.run(
        ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "--name-only", "HEAD", folder],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return out.split()


def head_commit(git_dir: Path) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def load_yaml(text: str) -> object:
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


# --- matomo-org/device-detector -----------------------------------------------------------------------------

# Fixture files of the form factors a tap on a shop link comes from, plus apps and bots. TVs, consoles,
# cars, cameras, wearables and feature phones are left out: the router has no word for them.
DD_FILES = ("smartphone", "phablet", "tablet", "desktop", "mobile_apps", "bots")

DD_DEVICE = {"smartphone": "mobile", "phablet": "mobile", "tablet": "tablet", "desktop": "desktop"}
DD_OS_NAME = {"iOS": "ios", "iPadOS": "ios", "HarmonyOS": "harmonyos", "HarmonyOS NEXT": "harmonyos",
              "OpenHarmony": "harmonyos", "Windows": "windows", "Mac": "macos"}  # fmt: skip
# os_family "Android" covers its forks (Fire OS, LineageOS...), which the router calls android; HarmonyOS is
# in that family too but has its own name above, which wins. Linux distributions share os_family
# "GNU/Linux" with smart-TV systems, so only these names mean a Linux desktop.
DD_LINUX_NAMES = frozenset({"GNU/Linux", "Ubuntu", "Debian", "Fedora", "Arch Linux", "SUSE", "CentOS", "Gentoo",
                            "Kubuntu", "Red Hat", "Slackware", "Mandriva", "Linux Mint", "Lubuntu",
                            "Xubuntu"})  # fmt: skip
DD_BOT_CLIENT_TYPES = frozenset({"library"})  # HTTP libraries and download tools: not a person
DD_UNLABELLED_CLIENT_TYPES = frozenset({"mediaplayer", "pim", "feed reader"})  # no router equivalent
DD_WEBVIEW_BROWSER = "Chrome Webview"  # device-detector's name for an Android WebView no app claims
DD_IOS_ENGINE_BROWSER = "Mobile Safari"


def _dd_app(entry: dict, ua: str) -> str | None:
    if "bot" in entry:
        return "bot"
    client = entry.get("client")
    if not isinstance(client, dict):
        return None
    kind, name = client.get("type"), str(client.get("name") or "")
    if kind in DD_BOT_CLIENT_TYPES:
        return "bot"
    if kind == "mobile app":
        # An app's own HTTP client ("Pulse/4.0 (iPhone; iOS 7)") is no web page at all; only an app
        # showing a page, which sends a browser engine's UA, is an in-app browser.
        return in_app(name) if ua.startswith("Mozilla/") else None
    if kind == "browser":
        if name == DD_WEBVIEW_BROWSER:
            return "other_inapp"
        if name == DD_IOS_ENGINE_BROWSER and "Safari/" not in ua:
            # device-detector names the engine, not the app, here: it gives Safari and any app's
            # WKWebView the same label, so the label cannot say which one this is.
            return None
        return browser(name)
    return None


def _dd_shows_pages(entry: dict, ua: str) -> bool:
    """A browser, or an app showing a page (see _dd_app), with a browser engine's UA: what a person taps in."""
    client = entry.get("client")
    if not isinstance(client, dict):
        return False
    return shows_pages(ua) and client.get("type") in ("browser", "mobile app")


def _dd_os(entry: dict) -> str | None:
    os = entry.get("os")
    if not isinstance(os, dict):
        return None
    name, family = os.get("name"), entry.get("os_family")
    if name in DD_OS_NAME:
        return DD_OS_NAME[name]
    if family == "Android":
        return "android"
    return "linux" if name in DD_LINUX_NAMES else None


def _dd_label(entry: dict) -> str:
    if "bot" in entry:
        return f"bot: {entry['bot'].get('name')}"
    client, os, device = entry.get("client") or {}, entry.get("os") or {}, entry.get("device") or {}
    return (
        f"client: {client.get('type')} / {client.get('name')}; os: {os.get('name')} ({entry.get('os_family')}); "
        f"device: {device.get('type')}"
    )


def device_detector(git_dir: Path) -> list[Row]:
    rows: list[Row] = []
    for path in git_ls(git_dir, "Tests/fixtures"):
        stem = Path(path).stem.split("-")[0]
        if stem not in DD_FILES:
            continue
        for entry in load_yaml(git_show(git_dir, path)) or []:  # type: ignore[union-attr]
            if entry.get("headers"):
                continue  # labelled from client hints as well: the router only sees the UA
            ua = str(entry["user_agent"])
            app = _dd_app(entry, ua)
            if not _dd_shows_pages(entry, ua):
                # Only the app label means something for a client that shows no page (a bot, an HTTP
                # library, an app's own fetches): the router gives it no OS or device to route on.
                rows.append(Row(ua, app, None, None, path, _dd_label(entry)))
                continue
            device = entry.get("device") if isinstance(entry.get("device"), dict) else {}
            rows.append(Row(ua, app, _dd_os(entry), DD_DEVICE.get(str(device.get("type"))), path, _dd_label(entry)))
    return rows


# --- ua-parser/uap-core ---------------------------------------------------------------------------------------

UAP_OS_FAMILY = {"iOS": "ios", "Android": "android", "HarmonyOS": "harmonyos", "Windows": "windows",
                 "Mac OS X": "macos", "Linux": "linux", "Ubuntu": "linux", "Fedora": "linux",
                 "Debian": "linux"}  # fmt: skip
UAP_SPIDER = "Spider"  # uap-core's device family for crawlers
UAP_DEVICE_FAMILY = {"iPhone": "mobile", "iPad": "tablet", "Generic Smartphone": "mobile",
                     "Generic Tablet": "tablet", "Spider": None}  # fmt: skip
# test_ua.yaml names browsers and apps alike; only families with an unambiguous router meaning are used.
UAP_IN_APP_FAMILIES = frozenset({"WeChat Browser", "Weibo", "Facebook", "Instagram", "Pinterest", "LINE",
                                 "KakaoTalk", "Snapchat", "TikTok", "Twitter", "Facebook Messenger",
                                 "Chrome Mobile WebView", "Google", "Baidu Box App", "DingTalk", "Alipay"})  # fmt: skip
UAP_BOT_FAMILIES = frozenset({"HeadlessChrome", "PhantomJS", "Python Requests", "Python-urllib", "axios",
                              "Apache-HttpClient", "curl", "Wget", "Scrapy", "Go-http-client", "okhttp", "Java",
                              "HTTPClient", "Googlebot", "bingbot", "Baiduspider", "LinkedInBot", "Twitterbot",
                              "FacebookBot", "Pinterestbot", "GPTBot", "PingdomBot", "AdsBot-Google", "BingPreview",
                              "Slurp", "YandexBot"})  # fmt: skip
UAP_BROWSER_FAMILIES = frozenset({"Chrome", "Chrome Mobile", "Chrome Mobile iOS", "Firefox", "Firefox Mobile",
                                  "Firefox iOS", "Safari", "Mobile Safari", "Edge", "Edge Mobile", "Opera",
                                  "Opera Mobile", "Opera Mini", "Samsung Internet", "UC Browser", "QQ Browser",
                                  "QQ Browser Mobile", "Yandex Browser", "Vivaldi", "Brave", "Huawei Browser",
                                  "Honor Browser", "HeyTap Browser", "VivoBrowser", "MiuiBrowser", "Baidu Browser",
                                  "360 Secure Browser", "DuckDuckGo Mobile", "Whale", "Maxthon", "Coc Coc",
                                  "Aloha Browser", "Puffin", "IE", "Dolphin"})  # fmt: skip


# uap-core has no WeCom family: its WeChat Browser regex finds the MicroMessenger/ token WeCom (WeChat Work)
# sends for compatibility, beside its own wxwork/ (Tencent's documented WeCom marker), and names WeCom's UAs
# WeChat Browser. On a UA with wxwork/ that family therefore means WeCom; see the README's corrections.
UAP_WECHAT_FAMILY, WECOM_TOKEN = "WeChat Browser", "wxwork/"


def _uap_app(family: str, ua: str) -> str | None:
    if family in UAP_IN_APP_FAMILIES:
        if not shows_pages(ua):
            return None  # as for device-detector's mobile apps
        return "wecom" if family == UAP_WECHAT_FAMILY and WECOM_TOKEN in ua else in_app(family)
    if family in UAP_BOT_FAMILIES:
        return "bot"
    return browser(family) if family in UAP_BROWSER_FAMILIES else None


def uap_core(git_dir: Path) -> list[Row]:
    rows: list[Row] = []
    files = (("tests/test_ua.yaml", "app"), ("tests/test_os.yaml", "os"), ("tests/test_device.yaml", "device"))
    for path, field in files:
        for case in load_yaml(git_show(git_dir, path))["test_cases"]:  # type: ignore[index]
            ua, family = str(case["user_agent_string"]), str(case["family"])
            label = f"{Path(path).stem}: family {family}"
            if field == "app":
                rows.append(Row(ua, _uap_app(family, ua), None, None, path, label))
            elif field == "os":
                rows.append(Row(ua, None, UAP_OS_FAMILY.get(family) if shows_pages(ua) else None, None, path, label))
            else:
                app = "bot" if family == UAP_SPIDER else None
                device = UAP_DEVICE_FAMILY.get(family) if shows_pages(ua) else None
                rows.append(Row(ua, app, None, device, path, label))
    return rows


# --- monperrus/crawler-user-agents ----------------------------------------------------------------------------

CUA_PATH = "crawler-user-agents.json"


def crawler_user_agents(git_dir: Path) -> list[Row]:
    # Every instance of every pattern is a crawler, by the project's definition.
    rows: list[Row] = []
    for pattern in json.loads(git_show(git_dir, CUA_PATH)):
        for ua in pattern.get("instances", []):
            rows.append(Row(ua, "bot", None, None, CUA_PATH, f"pattern {pattern['pattern']}"))
    return rows


# --- faisalman/ua-parser-js -----------------------------------------------------------------------------------

UPJ_BOT_TYPES = frozenset({"crawler", "fetcher", "cli", "library"})  # no person behind these
UPJ_UNLABELLED_TYPES = frozenset({"email", "mediaplayer"})  # no router equivalent
UPJ_HEADLESS = frozenset({"Chrome Headless", "PhantomJS"})  # named as browsers, driven by scripts
# Named as browsers without a type, yet the name is an app: Electron desktop apps, and the in-app
# names of the shared table.
UPJ_APP_BROWSER_NAMES = frozenset({"Electron"})
# ua-parser-js names the Baidu app and Baidu Browser alike ("Baidu"); only a case's description says
# which one it is. A description starting with one of these names the in-app browser of that name.
UPJ_APP_DESCRIPTIONS = ("baidu app",)
UPJ_DEVICE = {"mobile": "mobile", "tablet": "tablet"}  # no type at all is not a stated desktop
UPJ_OS = {"Android": "android", "iOS": "ios", "HarmonyOS": "harmonyos", "OpenHarmony": "harmonyos",
          "Windows": "windows", "macOS": "macos", "Mac OS": "macos", "Linux": "linux", "Ubuntu": "linux",
          "Debian": "linux", "Fedora": "linux", "Arch": "linux", "Mint": "linux", "Kubuntu": "linux"}  # fmt: skip


def _upj_app(expect: dict, path: str, ua: str, desc: str) -> str | None:
    # An extension file's name is the type of every entry in it (mediaplayer.json's entries carry none).
    kind, name = expect.get("type") or _upj_extension_type(path), str(expect.get("name") or "")
    if kind in UPJ_BOT_TYPES:
        return "bot"
    if kind in UPJ_UNLABELLED_TYPES:
        return None
    described = next((d for d in UPJ_APP_DESCRIPTIONS if desc.lower().startswith(d)), None)
    if described is not None:
        return in_app(described) if shows_pages(ua) else None
    if kind == "inapp" or name in UPJ_APP_BROWSER_NAMES or name.lower() in IN_APP_NAMES:
        return in_app(name) if shows_pages(ua) else None  # as for device-detector's mobile apps
    return "bot" if name in UPJ_HEADLESS else browser(name)


def _upj_extension_type(path: str) -> str | None:
    return Path(path).stem if "/extension/" in path else None


def ua_parser_js(git_dir: Path) -> list[Row]:
    rows: list[Row] = []
    for path in git_ls(git_dir, "test/data/ua"):
        if not path.endswith(".json") or "/cpu/" in path or "/engine/" in path:
            continue
        for case in json.loads(git_show(git_dir, path)):
            ua, expect = case.get("ua"), case.get("expect") or {}
            if not isinstance(ua, str) or not ua:
                continue
            label = f"{case.get('desc')}: " + ", ".join(f"{k}={v}" for k, v in sorted(expect.items()))
            if "/browser/" in path or ("/extension/" in path and "name" in expect):
                rows.append(Row(ua, _upj_app(expect, path, ua, str(case.get("desc") or "")), None, None, path, label))
            elif not shows_pages(ua):
                continue
            elif "/device/" in path or "/extension/" in path:
                rows.append(Row(ua, None, None, UPJ_DEVICE.get(str(expect.get("type"))), path, label))
            elif "/os/" in path:
                rows.append(Row(ua, None, UPJ_OS.get(str(expect.get("name"))), None, path, label))
    return rows


# --- WhichBrowser/Parser ----------------------------------------------------------------------------------

WB_FOLDER = "tests/data"
WB_UA_HEADER = "User-Agent: "
WB_ENTRY_KEYS = frozenset({"headers", "result", "readable"})  # an entry with any other key was read with more
# Device types with a router word, plus bots; TVs, consoles, e-readers, PDAs, cars, cameras, watches,
# printers, signage and emulators have none, and their rows are left out (as device-detector's files).
WB_DEVICE = {"mobile": "mobile", "tablet": "tablet", "desktop": "desktop"}  # every mobile subtype is a phone
WB_BOT_DEVICE = "bot"
WB_KEPT_DEVICES = frozenset({*WB_DEVICE, WB_BOT_DEVICE, None})
WB_OS = {"iOS": "ios", "Android": "android", "FireOS": "android", "Nokia X Platform": "android",
         "Android TV": "android", "Google TV": "android", "Android Wear": "android",
         "Windows": "windows", "OS X": "macos",
         "Linux": "linux", "Ubuntu": "linux", "Debian": "linux", "Fedora": "linux", "SUSE": "linux",
         "Red Hat": "linux", "CentOS": "linux", "Gentoo": "linux", "Mandriva": "linux", "Mageia": "linux",
         "Slackware": "linux", "Kubuntu": "linux", "Linux Mint": "linux", "elementary OS": "linux",
         "Arch Linux": "linux", "Turbolinux": "linux", "gNewSense": "linux", "Antergos Linux": "linux",
         "Black Lab Linux": "linux", "moonOS": "linux"}  # fmt: skip
# Named systems that are none of the router's others: its word for them is `other`. Windows Phone,
# Windows Mobile and Windows CE are not Windows to the router. Chrome OS, classic Mac OS and Aliyun OS
# (which reports itself as Android) have no clear router word and stay unlabelled.
WB_OTHER_OS = frozenset({"Windows Phone", "Windows Mobile", "Windows CE", "BlackBerry OS", "BlackBerry",
                         "BlackBerry Tablet OS", "Series60", "Series40", "Series80", "Series30+", "Symbian",
                         "Nokia Asha Platform", "UIQ", "Bada", "Tizen", "webOS", "Firefox OS", "KaiOS",
                         "Sailfish", "MeeGo", "Maemo", "Brew", "Brew MP", "Palm OS", "Touchwiz", "MRE",
                         "Kin OS", "LiMo", "WoPhone", "FreeBSD", "OpenBSD", "NetBSD", "DragonFly BSD",
                         "Solaris", "OS/2", "AmigaOS", "Haiku", "BeOS", "RISC OS", "IRIX", "MorphOS", "AROS",
                         "Syllable", "QNX", "AIX", "HP-UX", "OpenVMS"})  # fmt: skip
WB_BROWSER_TYPES = frozenset({"browser", "browser:text"})
# App types whose Mozilla/ user agents are an app's web view showing a page; editors, media players,
# mail, feed readers, podcast, download and antivirus apps have no router word.
WB_WEBVIEW_APP_TYPES = frozenset({"app", "app:chat", "app:social", "app:search", "app:shopping", "app:news"})
# A browser with no name and only the web view it uses: an app's web view no app claims (device-detector's
# Chrome Webview). Other engines (Qt, Ekioh, AdobeAIR, Content Shell) name no app and are unlabelled.
WB_WEBVIEWS = frozenset({"Chromium WebView", "Crosswalk WebView", "Amazon WebView"})
WB_HEADLESS = frozenset({"Zombie.js", "PhantomJS"})  # named as browsers, driven by scripts


def _wb_name(value: object) -> str | None:
    """WhichBrowser writes a name either as a string or as {name: ..., version: ...}."""
    if isinstance(value, dict):
        value = value.get("name")
    return str(value) if value is not None else None


def _wb_ua(headers: object) -> str | None:
    """The user agent of an entry whose only header is User-Agent; None for the rest (their labels also
    come from other headers, and the router sees only the UA)."""
    if isinstance(headers, str):
        return headers[len(WB_UA_HEADER) :] if headers.startswith(WB_UA_HEADER) and "\n" not in headers else None
    if isinstance(headers, dict) and list(headers) == ["User-Agent"]:
        return str(headers["User-Agent"])
    return None


def _wb_app(result: dict, ua: str) -> str | None:
    device = result.get("device") or {}
    if device.get("type") == WB_BOT_DEVICE:
        return "bot"
    found = result.get("browser") or {}
    kind, name = found.get("type"), _wb_name(found.get("name"))
    if name is None:
        return "other_inapp" if _wb_name(found.get("using")) in WB_WEBVIEWS and shows_pages(ua) else None
    if kind is not None and str(kind).startswith("app"):
        if kind not in WB_WEBVIEW_APP_TYPES:
            return None
        return in_app(name) if shows_pages(ua) else None  # as for device-detector's mobile apps
    if kind is None or kind in WB_BROWSER_TYPES:  # WhichBrowser gives some browsers no type (Android Browser)
        return "bot" if name in WB_HEADLESS else browser(name)
    return None


def _wb_os(result: dict) -> str | None:
    name = _wb_name(result.get("os"))
    if name in WB_OS:
        return WB_OS[name]
    return "other" if name in WB_OTHER_OS else None


def _wb_label(result: dict) -> str:
    found, os, device = result.get("browser") or {}, result.get("os") or {}, result.get("device") or {}
    using = _wb_name(found.get("using"))
    return (
        f"browser: {found.get('type')} / {_wb_name(found.get('name'))}{f' using {using}' if using else ''}; "
        f"os: {_wb_name(os)}; device: {device.get('type')}"
        + (f" ({device['subtype']})" if device.get("subtype") else "")
    )


def whichbrowser(git_dir: Path) -> list[Row]:
    rows: list[Row] = []
    for path in git_ls(git_dir, WB_FOLDER):
        if not path.endswith(".yaml"):
            continue
        for entry in load_yaml(git_show(git_dir, path)) or []:  # type: ignore[union-attr]
            if set(entry) - WB_ENTRY_KEYS:
                continue  # read with more than the UA: options (detectBots: false), the engine's features...
            ua, result = _wb_ua(entry.get("headers")), entry.get("result") or {}
            if not ua or "camouflage" in result:
                continue  # not a UA alone, or one WhichBrowser says lies about the browser
            device = (result.get("device") or {}).get("type")
            if device not in WB_KEPT_DEVICES:
                continue
            app = _wb_app(result, ua)
            if app == "bot" or not shows_pages(ua):
                rows.append(Row(ua, app, None, None, path, _wb_label(result)))
                continue
            rows.append(Row(ua, app, _wb_os(result), WB_DEVICE.get(str(device)), path, _wb_label(result)))
    return rows


# --- lancedikson/bowser ---------------------------------------------------------------------------------------

BOWSER_PATH = "test/acceptance/useragentstrings.yml"
BOWSER_DEVICE = {"mobile": "mobile", "tablet": "tablet", "desktop": "desktop"}
BOWSER_BOT_PLATFORM = "bot"
BOWSER_KEPT_PLATFORMS = frozenset({*BOWSER_DEVICE, BOWSER_BOT_PLATFORM, None})  # not `tv`: no router word
BOWSER_OS = {"iOS": "ios", "Android": "android", "Windows": "windows", "macOS": "macos", "Linux": "linux",
             "Windows Phone": "other", "BlackBerry": "other", "WebOS": "other", "Tizen": "other",
             "Bada": "other"}  # fmt: skip  # Chrome OS, Roku, PlayStation 4: no router word
BOWSER_IN_APP = frozenset({"WeChat", "Google Search", "Electron"})  # the Google app (GSA); desktop apps
BOWSER_BOTS = frozenset({"Googlebot", "PhantomJS", "SlimerJS"})  # a crawler; browsers driven by scripts
BOWSER_UNLABELLED = frozenset({"Generic"})  # bowser's name for what it cannot name
BOWSER_IOS_ENGINE_BROWSER = "Safari"


def _bowser_app(spec: dict, ua: str) -> str | None:
    name = str((spec.get("browser") or {}).get("name") or "")
    if (spec.get("platform") or {}).get("type") == BOWSER_BOT_PLATFORM or name in BOWSER_BOTS:
        return "bot"
    if not name or name in BOWSER_UNLABELLED:
        return None
    if name == BOWSER_IOS_ENGINE_BROWSER and "Safari/" not in ua:
        # As device-detector's "Mobile Safari": bowser calls any iOS WebKit UA with no browser token Safari,
        # an app's web view (Facebook's FBAN/FBIOS...) included, so the label cannot say which it is.
        return None
    if name in BOWSER_IN_APP:
        return in_app(name) if shows_pages(ua) else None
    return browser(name)


def bowser(git_dir: Path) -> list[Row]:
    rows: list[Row] = []
    for group, cases in load_yaml(git_show(git_dir, BOWSER_PATH)).items():  # type: ignore[union-attr]
        for case in cases:
            ua, spec = str(case["ua"]), case.get("spec") or {}
            platform, os = (spec.get("platform") or {}).get("type"), (spec.get("os") or {}).get("name")
            if platform not in BOWSER_KEPT_PLATFORMS:
                continue
            label = f"{group}: browser {(spec.get('browser') or {}).get('name')}; os {os}; platform {platform}"
            app = _bowser_app(spec, ua)
            if app == "bot" or not shows_pages(ua):
                rows.append(Row(ua, app, None, None, BOWSER_PATH, label))
                continue
            rows.append(Row(ua, app, BOWSER_OS.get(str(os)), BOWSER_DEVICE.get(str(platform)), BOWSER_PATH, label))
    return rows


# --- serbanghita/Mobile-Detect --------------------------------------------------------------------------------

MD_FOLDER = "tests/providers/vendors"
# Mobile-Detect's two verdicts, (isMobile, isTablet) -> the router's device. isMobile is true for tablets too
# (isTablet narrows it). isMobile false says only "neither a phone nor a tablet" (desktops, TVs, consoles and
# bots alike), not "desktop": unlabelled, as is the contradictory (false, true).
MD_DEVICE = {(True, False): "mobile", (True, True): "tablet"}
# Mobile-Detect labels no app and no OS: its `version` entries are the numbers after tokens it finds in the UA
# (an `Android` one on Windows Phone 8.1's "Android 4.0" compatibility token too), not a verdict on the system.

_PHP_TOKEN = re.compile(
    r"""(?P<space>\s+|//[^\n]*|\#[^\n]*|/\*.*?\*/)|(?P<single>'(?:[^'\\]|\\.)*')|(?P<double>"(?:[^"\\]|\\.)*")"""
    r"""|(?P<open>\[|array\s*\()|(?P<close>[\])])|(?P<arrow>=>)|(?P<comma>,)|(?P<word>-?[A-Za-z0-9_.]+)"""
    r"""|(?P<end>;)|(?P<tag><\?php)""",
    re.S,
)
_PHP_WORDS = {"true": True, "false": False, "null": None}
_PHP_DOUBLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$"}


def _php_string(token: str, kind: str) -> str:
    body = token[1:-1]
    if kind == "single":  # only \' and \\ are escapes in a single-quoted PHP string
        return re.sub(r"\\([\\'])", r"\1", body)
    if re.search(r"(?<!\\)\$", body):
        raise ValueError(f"interpolated PHP string: {token}")
    return re.sub(r"\\(.)", lambda m: _PHP_DOUBLE_ESCAPES.get(m[1], m[0]), body)


def php_returned_array(text: str) -> dict:
    """The array literal a PHP fixture file returns (`<?php return [...];`), as a dict: string and int keys,
    a value with no key taking the next int (as PHP does), a repeated key keeping its last value (as PHP
    does); strings, true/false/null, numbers and nested arrays, comments skipped. Nothing else is PHP here."""
    tokens = [(m.lastgroup, m[0]) for m in _PHP_TOKEN.finditer(text) if m.lastgroup not in ("space", "tag")]
    if "".join(m[0] for m in _PHP_TOKEN.finditer(text)) != text:
        raise ValueError("not a plain PHP array literal")
    pos = 0

    def value() -> object:
        nonlocal pos
        kind, token = tokens[pos]
        pos += 1
        if kind in ("single", "double"):
            return _php_string(token, kind)
        if kind == "word" and token.lower() in _PHP_WORDS:
            return _PHP_WORDS[token.lower()]
        if kind == "word":
            return float(token) if "." in token else int(token)
        if kind != "open":
            raise ValueError(f"unexpected {token!r}")
        array: dict = {}
        while tokens[pos][0] != "close":
            item = value()
            if tokens[pos][0] == "arrow":
                pos += 1
                array[item] = value()
            else:
                array[max((k for k in array if isinstance(k, int)), default=-1) + 1] = item
            if tokens[pos][0] == "comma":
                pos += 1
        pos += 1
        return array

    if tokens[:1] != [("word", "return")]:
        raise ValueError("no `return` of an array")
    pos = 1
    found = value()
    if not isinstance(found, dict) or tokens[pos:] != [("end", ";")]:
        raise ValueError("not a single returned array")
    return found


def _md_flag(value: object) -> str:
    return {True: "true", False: "false", None: "unset"}.get(value, repr(value))  # type: ignore[call-overload]


def mobile_detect(git_dir: Path) -> list[Row]:
    # The project's tests/UserAgentList.inc.php joins the files with array_merge, so a vendor named in two
    # files keeps only one file's cases: here the later by name (Others.php's `ZTE` gives way to ZTE.php's, as
    # in the project's generated tests/ualist.json). The shadowed cases are never tested, nor read here.
    vendors: dict[str, tuple[str, dict]] = {}
    for path in git_ls(git_dir, MD_FOLDER):
        if path.endswith(".php"):
            for vendor, cases in php_returned_array(git_show(git_dir, path)).items():
                vendors[str(vendor)] = (path, cases)
    rows: list[Row] = []
    for vendor, (path, cases) in vendors.items():
        for ua, spec in cases.items():
            if not isinstance(ua, str) or not isinstance(spec, dict):
                continue  # a UA listed with no verdict (PHP gave it an int key): no label
            mobile, tablet = spec.get("isMobile"), spec.get("isTablet")
            label = f"{vendor}: isMobile {_md_flag(mobile)}, isTablet {_md_flag(tablet)}"
            device = MD_DEVICE.get((mobile, tablet)) if shows_pages(ua) else None  # type: ignore[arg-type]
            rows.append(Row(ua, None, None, device, path, label))
    return rows


# --- browscap/browscap ----------------------------------------------------------------------------------------

BC_FOLDER = "tests/issues"
# Not a returned array of tests: UAs the project keeps to make sure they parse to its "Default Browser", i.e.
# that no pattern names them. No label.
BC_SKIPPED = frozenset({"tests/issues/issue-000-invalids.php"})
_BC_HEADER = re.compile(r"\A<\?php\s+declare\s*\(\s*strict_types\s*=\s*1\s*\)\s*;")
# The project's FullTest checks a test's every property only when the test's `full` flag is set; a test
# without it is read only by the lite and standard builds, which do not check Browser_Type, so it is not read.
BC_TESTED_BUILD = "full"
BC_DEVICE = {"Mobile Phone": "mobile", "Tablet": "tablet", "Desktop": "desktop"}  # "Mobile Device": no form factor
# Device types with no router word: the rows are left out (as WhichBrowser's). "Mobile Device" (a handheld
# browscap cannot size: iPods, generic iOS web views), "unknown" and no Device_Type keep the row, unlabelled.
BC_LEFT_OUT_DEVICES = frozenset({"TV Device", "Console", "Ebook Reader", "Car Entertainment System",
                                 "Digital Camera"})  # fmt: skip
BC_OS = {"iOS": "ios", "ipadOS": "ios", "Android": "android", "Miui OS": "android",  # "a fork of Android OS by Xiaomi"
         "Android for GoogleTV": "android",
         "Win10": "windows", "Win8.1": "windows", "Win8": "windows", "Win7": "windows", "WinVista": "windows",
         "WinXP": "windows", "Win2000": "windows", "WinME": "windows", "Win98": "windows", "Win95": "windows",
         "WinNT": "windows", "Win32": "windows", "Win64": "windows", "Win16": "windows", "Win31": "windows",
         "WinRT8": "windows", "WinRT8.1": "windows",  # Windows RT: Windows 8 on ARM tablets
         "MacOSX": "macos", "macOS": "macos",
         "Linux": "linux", "Ubuntu": "linux", "Debian": "linux", "Fedora": "linux", "Red Hat": "linux",
         "Xubuntu": "linux", "Ubuntu Touch": "linux"}  # fmt: skip
# Named systems that are none of the router's others (as WB_OTHER_OS): Windows CE/Mobile/Phone, the phone
# systems, J2ME feature phones (browscap's JAVA), the BSDs and other Unixes, and consoles. ChromeOS,
# Chromecast OS, Darwin (browscap: "a Core Component of MacOSX and iOS"), MacPPC/Mac68K (classic Mac OS or
# OS X), CygWin, ATV OS X and unknown: no clear router word, unlabelled.
BC_OTHER_OS = frozenset({"WinCE", "WinMobile", "WinPhone", "WinPhone6", "WinPhone7", "WinPhone7.5", "WinPhone7.10",
                         "WinPhone8", "WinPhone8.1", "WinPhone10", "SymbianOS", "Series30", "Series40", "Series60",
                         "Asha", "RIM OS", "RIM Tablet OS", "Bada", "Tizen", "webOS", "FirefoxOS", "KaiOS",
                         "SailfishOS", "MeeGo", "Maemo", "Brew", "MAUI", "PalmOS", "JAVA", "FreeBSD", "OpenBSD",
                         "NetBSD", "DragonFly BSD", "BSD", "SunOS", "Solaris", "AIX", "HP-UX", "IRIX64",
                         "Tru64 UNIX", "Unix", "OS/2", "Amiga OS", "BeOS", "Haiku", "RISC OS", "Syllable",
                         "Inferno OS", "CellOS", "OrbisOS", "Playstation Vita", "Nintendo Wii", "Nintendo WiiU",
                         "Nintendo DS", "Nintendo DSi", "Nintendo 3DS", "Nintendo Switch", "Xbox 360",
                         "Xbox OS", "Xbox OS 10"})  # fmt: skip
# Browser_Type: crawlers (Bot; Bot/Crawler, browscap's type for feed fetchers), and site downloaders and
# tools (wget, HTTrack, gvfs): no person behind these. Multimedia Player, Email Client, Feed Reader, unknown
# (the "Default Browser") and no Browser_Type have no router word: unlabelled.
BC_BOT_TYPES = frozenset({"Bot", "Bot/Crawler", "Offline Browser", "Tool"})
BC_BROWSER_TYPE, BC_APP_TYPE = "Browser", "Application"
# Named as browsers or apps, driven by scripts: headless browsers, HTML-to-PDF/image renderers, command-line
# clients, an installer script.
BC_SCRIPTED = frozenset({"Headless Chrome", "Headless Edge", "PhantomJS", "SlimerJS", "phantomas", "wkhtmltopdf",
                         "wkhtmltoimage", "HiQPdf", "EvoPdf", "WnvPdf", "WebThumb", "Windows PowerShell",
                         "kioclient", "Installatron"})  # fmt: skip
# Typed Browser, named as a web view no app claims (device-detector's Chrome Webview): other_inapp.
BC_WEBVIEWS = frozenset({"Android WebView", "Mobile Safari UIWebView"})
# Typed Browser, yet the name is an in-app browser's (the QQ messenger's, Weibo's): the in-app table.
BC_IN_APP_BROWSERS = frozenset({"QQ-App", "Weibo"})
# Typed Application, yet the name is a browser's (Opera Coast; UC's iPad browser; two iOS browsers;
# Infraware's Polaris on feature phones; Beonex Communicator, Amaya and Cyberdog, browser suites): the browser
# table, on a browser engine's UA (their CFNetwork UAs are the app's own HTTP client).
BC_BROWSER_APPS = frozenset({"Coast", "UC Browser HD", "FastBrowser", "PERFECT Browser", "Polaris",
                             "Beonex Communicator", "Amaya", "Cyberdog"})  # fmt: skip
# browscap's names for the catalogue's browsers, in the shared table's spelling: UC's lite and iPad
# browsers are UC Browser (as TikTok Lite is TikTok).
BC_BROWSER_NAMES = {"UC Browser Mini": "UC Browser", "UC Browser HD": "UC Browser"}
# Named for a family of apps, not one: "AliApp" is Alibaba's container token, on Taobao's (TB), Qianniu's
# (QN), Alipay's (AP) and an SDK's (TUnionSDK) UAs alike. Unlabelled.
BC_FAMILY_APPS = frozenset({"AliApp"})
# browscap names most apps "<name> App" (WeChat App, Bilibili App, Zhihu App) or "<name>-App" (QQ-App); the
# in-app table is read with the full name first (Baidu Box App), then without that suffix.
_BC_APP_SUFFIX = re.compile(r"[ -]?App$")


def _bc_in_app(name: str) -> str:
    if name.strip().lower() in IN_APP_NAMES:
        return in_app(name)
    return in_app(_BC_APP_SUFFIX.sub("", name))


def _bc_app(props: dict, ua: str) -> str | None:
    kind, name = props.get("Browser_Type"), str(props.get("Browser") or "")
    if kind in BC_BOT_TYPES or (name in BC_SCRIPTED and kind in (BC_BROWSER_TYPE, BC_APP_TYPE)):
        return "bot"
    if kind == BC_BROWSER_TYPE:
        if name in BC_WEBVIEWS:
            return "other_inapp" if shows_pages(ua) else None
        if name in BC_IN_APP_BROWSERS:
            return _bc_in_app(name) if shows_pages(ua) else None  # as for device-detector's mobile apps
        return browser(BC_BROWSER_NAMES.get(name, name))
    if kind == BC_APP_TYPE:
        if not shows_pages(ua) or name in BC_FAMILY_APPS:
            return None  # an app's own HTTP client (Dalvik, CFNetwork...), or no one app named
        if name in BC_BROWSER_APPS:
            return browser(BC_BROWSER_NAMES.get(name, name))
        return _bc_in_app(name)
    return None


def _bc_os(props: dict) -> str | None:
    name = props.get("Platform")
    if name in BC_OS:
        return BC_OS[name]
    return "other" if name in BC_OTHER_OS else None


def _bc_label(key: str, props: dict) -> str:
    return (f"{key}: browser {props.get('Browser_Type')} / {props.get('Browser')}; platform {props.get('Platform')}; "
            f"device {props.get('Device_Type')}")  # fmt: skip


def browscap(git_dir: Path) -> list[Row]:
    rows: list[Row] = []
    for path in git_ls(git_dir, BC_FOLDER):
        if not path.endswith(".php") or path in BC_SKIPPED:
            continue
        for key, test in php_returned_array(_BC_HEADER.sub("<?php", git_show(git_dir, path))).items():
            if not test.get(BC_TESTED_BUILD):
                continue  # not checked with every property (see BC_TESTED_BUILD)
            ua, props = str(test["ua"]), test.get("properties") or {}
            if props.get("Device_Type") in BC_LEFT_OUT_DEVICES:
                continue
            app, label = _bc_app(props, ua), _bc_label(str(key), props)
            if app == "bot" or not shows_pages(ua):
                rows.append(Row(ua, app, None, None, path, label))
                continue
            rows.append(Row(ua, app, _bc_os(props), BC_DEVICE.get(str(props.get("Device_Type"))), path, label))
    return rows


# --- hotoo/detector -------------------------------------------------------------------------------------------

# Two mocha specs, each a JS array `UAs` of [ua, {device, os, browser, engine}] cases; every label is
# "<name>/<version>" (browser and engine add ";<mode>;<c|o>"), "na" when the project detects nothing.
# tests/morerule-test.js runs with the same default rules (lib/node-detector.js loads lib/rules.js) and names
# bots. Cases whose first element is a navigator object ({userAgent, appVersion, vendor}) were read with more
# than the UA and are not taken; nor is `engine`, an expression in places.
DT_FILES = ("tests/detector-spec.js", "tests/morerule-test.js")
_JS_STRIP = re.compile(r'(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<comment>//[^\n]*|/\*.*?\*/)', re.S)
_DT_CASE = re.compile(r'\[\s*(?P<ua>"(?:[^"\\]|\\.)*")\s*,\s*\{(?P<body>[^{}]*)\}\s*\]')
_DT_FIELD = re.compile(r'\b(?P<key>device|os|browser)\s*:\s*(?P<value>"(?:[^"\\]|\\.)*")')
# detector's device is a product or maker name, not a form factor: only these name one (pc is its name for
# a Windows computer, mac for a Macintosh). Makers (htc, mi, samsung, huawei...), android, blackberry, nokia,
# ipod, na, and wp (given to Windows CE handhelds as well as Windows Phones): unlabelled.
DT_DEVICE = {"pc": "desktop", "mac": "desktop", "iphone": "mobile", "ipad": "tablet"}
DT_OS = {"ios": "ios", "android": "android", "smartisanos": "android",  # Smartisan's Android fork (as Fire OS)
         "windows": "windows", "macosx": "macos", "linux": "linux",
         "wp": "other", "windowsce": "other", "symbian": "other", "blackberry": "other",
         "meego": "other"}  # fmt: skip  # yunos (Aliyun OS), chromeos, na: no clear router word
DT_BOTS = frozenset({"googlebot", "baiduspider", "bingbot", "msnbot", "nuhkbot", "alexabot", "curl"})
# detector's names for in-app browsers (lib/web-rules.js: micromessenger is WeChat; ali-* are Alibaba's
# clients, "ap" Alipay, "tb" Taobao, "tm" Tmall, "am" Alipay's merchant app; baiduboxapp the Baidu app), in
# the shared table's spelling. `webview` is its name for an iOS WebKit UA with no browser's token: an app's
# web view no app claims (device-detector's Chrome Webview), other_inapp.
DT_IN_APP = {"micromessenger": "WeChat", "ali-ap": "Alipay", "ali-ap-pd": "Alipay", "ali-tb": "Taobao",
             "ali-tb-pd": "Taobao", "ali-tm": "Tmall", "ali-tm-pd": "Tmall", "ali-am": "Alipay merchant",
             "baiduboxapp": "Baidu Box App", "webview": "WebView"}  # fmt: skip
# Browsers, in the shared table's spelling where the catalogue names them (qq is QQ Browser, baidu Baidu
# Browser, tao TaoBrowser, mi the MIUI browser, android the Android browser, tt TencentTraveler). A name not
# here or above is unlabelled.
DT_BROWSERS = {"uc": "UC Browser", "quark": "Quark", "ie": "IE", "edge": "Edge", "chrome": "Chrome",
               "firefox": "Firefox", "safari": "Safari", "opera": "Opera", "android": "Android Browser",
               "yandex": "Yandex", "360": "360", "sogou": "Sogou", "theworld": "TheWorld", "green": "GreenBrowser",
               "liebao": "Liebao", "maxthon": "Maxthon", "qq": "QQ Browser", "tt": "TencentTraveler",
               "tao": "TaoBrowser", "coolnovo": "CoolNovo", "saayaa": "SaaYaa", "baidu": "Baidu Browser",
               "mi": "MIUI Browser", "oupeng": "Oupeng", "nokia": "Nokia Browser",
               "blackberry": "BlackBerry Browser", "oppobrowser": "OppoBrowser"}  # fmt: skip


def _dt_name(value: str | None) -> str:
    return (value or "na").split("/", 1)[0]


def _dt_app(browser_label: str | None, ua: str) -> str | None:
    name = _dt_name(browser_label)
    if name in DT_BOTS:
        return "bot"
    if name in DT_IN_APP:
        return in_app(DT_IN_APP[name]) if shows_pages(ua) else None  # as for device-detector's mobile apps
    return browser(DT_BROWSERS[name]) if name in DT_BROWSERS else None


def _dt_label(info: dict) -> str:
    return "; ".join(f"{key}: {info.get(key)}" for key in ("device", "os", "browser"))


def hotoo_detector(git_dir: Path) -> list[Row]:
    rows: list[Row] = []
    for path in DT_FILES:
        text = _JS_STRIP.sub(lambda m: m["string"] or " ", git_show(git_dir, path))
        cases = list(_DT_CASE.finditer(text))
        listed = text.count('\n  ["')  # one case a line at the array's indent (navigator-object cases: `[{`)
        if len(cases) != listed:
            raise ValueError(f"{path}: {len(cases)} cases read of {listed}")
        for case in cases:
            ua = json.loads(case["ua"])
            info = {m["key"]: json.loads(m["value"]) for m in _DT_FIELD.finditer(case["body"])}
            if not ua:
                continue
            app, label = _dt_app(info.get("browser"), ua), _dt_label(info)
            if app == "bot" or not shows_pages(ua):
                rows.append(Row(ua, app, None, None, path, label))
                continue
            os, device = DT_OS.get(_dt_name(info.get("os"))), DT_DEVICE.get(_dt_name(info.get("device")))
            rows.append(Row(ua, app, os, device, path, label))
    return rows


# --- sampling -------------------------------------------------------------------------------------------------


WB_PER_STRATUM = 15
BOWSER_PER_STRATUM = 20
MD_PER_STRATUM = 150  # two labels only (mobile, tablet): a few hundred rows
BC_PER_STRATUM = 8  # browscap's 23,600 tested UAs fall in some 70 labels: a few hundred rows
DT_PER_STRATUM = 20  # hotoo/detector: 171 cases, 37 of the labelled ones browsers on Windows PCs: ~120 rows


@dataclass(frozen=True)
class Source:
    repo: str
    license: str
    read: Callable[[Path], list[Row]]
    per_stratum: int  # at most this many rows per (app, os, device) label
    out: str


SOURCES = (
    Source("matomo-org/device-detector", "LGPL-3.0", device_detector, 45, "device_detector.jsonl"),
    Source("ua-parser/uap-core", "Apache-2.0", uap_core, 40, "uap_core.jsonl"),
    Source("monperrus/crawler-user-agents", "MIT", crawler_user_agents, 250, "crawler_user_agents.jsonl"),
    Source("faisalman/ua-parser-js", "AGPL-3.0", ua_parser_js, 80, "ua_parser_js.jsonl"),
    Source("WhichBrowser/Parser", "MIT", whichbrowser, WB_PER_STRATUM, "whichbrowser.jsonl"),
    Source("lancedikson/bowser", "MIT", bowser, BOWSER_PER_STRATUM, "bowser.jsonl"),
    Source("serbanghita/Mobile-Detect", "MIT", mobile_detect, MD_PER_STRATUM, "mobile_detect.jsonl"),
)
# Held-out sources: read only by name with `--only` (not by the positional rebuild of SOURCES), to be measured
# before anyone tunes on them; written with `--out DIR` outside the corpus folder until then.
HELD_OUT = (
    Source("browscap/browscap", "MIT", browscap, BC_PER_STRATUM, "browscap.jsonl"),
    Source("hotoo/detector", "MIT", hotoo_detector, DT_PER_STRATUM, "hotoo_detector.jsonl"),
)


def _hash(ua: str) -> str:
    return hashlib.sha256(ua.encode("utf-8", "replace")).hexdigest()


def merge(rows: Iterable[Row]) -> list[Row]:
    """One row per UA: a UA in several of a source's files (uap-core's ua/os/device) gets every label."""
    by_ua: dict[str, Row] = {}
    for row in rows:
        old = by_ua.get(row.ua)
        if old is None:
            by_ua[row.ua] = row
            continue
        paths = old.path if row.path in old.path.split(" ") else f"{old.path} {row.path}"
        labels = old.label if row.label == old.label else f"{old.label}; {row.label}"
        by_ua[row.ua] = Row(row.ua, old.app or row.app, old.os or row.os, old.device or row.device, paths, labels)
    return list(by_ua.values())


def sample(rows: Iterable[Row], per_stratum: int, seen: set[str]) -> list[Row]:
    """Up to per_stratum rows per label, picked by hash (stable, blind to the router); labelled rows only."""
    strata: dict[tuple[str | None, str | None, str | None], list[Row]] = defaultdict(list)
    for row in sorted(merge(rows), key=lambda r: _hash(r.ua)):
        if row.stratum() == (None, None, None) or row.ua in seen:
            continue
        bucket = strata[row.stratum()]
        if len(bucket) < per_stratum:
            bucket.append(row)
            seen.add(row.ua)
    return sorted((row for bucket in strata.values() for row in bucket), key=lambda r: (r.path, r.ua))


# --- relabelling the rows already written -------------------------------------------------------------------
#
# When a table above changes (the catalogue gained toutiao, feishu, tiktok, baidu, uc, quark...), the
# files need not be rebuilt from their sources, whose commits are pinned: each row carries the source's
# label as written there, and the app is derived from it again with the same functions the readers use.
# Only `app` changes; OS and device labels, and every other field, are left as they are.

_DD_CLIENT = re.compile(r"^client: (?P<type>.*?) / (?P<name>.*?); os: ")
_UAP_FAMILY = re.compile(r"(?:^|; )(?P<file>test_ua|test_os|test_device): family (?P<family>.*?)(?=; test_|$)")
_UPJ_PART = re.compile(r"^(?P<desc>.*): (?P<expect>[a-z]+=.*)$")
_WB_LABEL = re.compile(
    r"^browser: (?P<type>.*?) / (?P<name>.*?)(?: using (?P<using>.*?))?; os: (?P<os>.*?); "
    r"device: (?P<device>\S+)(?: \((?P<subtype>.*)\))?$"
)
_BOWSER_LABEL = re.compile(r"^(?P<group>.*?): browser (?P<name>.*?); os (?P<os>.*?); platform (?P<platform>.*)$")
_DT_BROWSER = re.compile(r"(?:^|; )browser: (?P<browser>.*)$")
_BC_LABEL = re.compile(
    r"^(?P<key>[^:]*): browser (?P<type>.*?) / (?P<name>.*?); platform (?P<platform>.*?); device (?P<device>.*)$"
)


class LabelError(ValueError):
    """A row's label is not in the form its source's reader writes."""


def _none(text: str) -> str | None:
    return None if text == "None" else text


def _match(pattern: re.Pattern[str], label: str) -> re.Match[str]:
    found = pattern.match(label)
    if found is None:
        raise LabelError(label)
    return found


def _relabel_dd(record: dict) -> str | None:
    if record["label"].startswith("bot: "):
        return _dd_app({"bot": {}}, record["ua"])
    client = _match(_DD_CLIENT, record["label"])
    return _dd_app({"client": {"type": _none(client["type"]), "name": _none(client["name"])}}, record["ua"])


def _relabel_uap(record: dict) -> str | None:
    families = {m["file"]: m["family"] for m in _UAP_FAMILY.finditer(record["label"])}
    if not families:
        raise LabelError(record["label"])
    app = _uap_app(families["test_ua"], record["ua"]) if "test_ua" in families else None
    return app or ("bot" if families.get("test_device") == UAP_SPIDER else None)


def _relabel_upj(record: dict) -> str | None:
    paths = record["path"].split(" ")
    for i, part in enumerate(record["label"].split("; ")):
        path, found = paths[min(i, len(paths) - 1)], _match(_UPJ_PART, part)
        expect = dict(kv.partition("=")[::2] for kv in found["expect"].split(", "))
        if "/browser/" in path or ("/extension/" in path and "name" in expect):
            app = _upj_app(expect, path, record["ua"], found["desc"])
            if app is not None:
                return app
    return None


def _relabel_wb(record: dict) -> str | None:
    found = _match(_WB_LABEL, record["label"])
    result = {"browser": {"type": _none(found["type"]), "name": _none(found["name"]), "using": found["using"]},
              "device": {"type": _none(found["device"])}}  # fmt: skip
    return _wb_app(result, record["ua"])


def _relabel_bowser(record: dict) -> str | None:
    found = _match(_BOWSER_LABEL, record["label"])
    spec = {"browser": {"name": _none(found["name"])}, "platform": {"type": _none(found["platform"])}}
    return _bowser_app(spec, record["ua"])


def _relabel_bc(record: dict) -> str | None:
    found = _match(_BC_LABEL, record["label"])
    return _bc_app({"Browser_Type": _none(found["type"]), "Browser": _none(found["name"])}, record["ua"])


def _relabel_dt(record: dict) -> str | None:
    return _dt_app(_none(_match(_DT_BROWSER, record["label"].split("; ")[-1])["browser"]), record["ua"])


RELABEL: dict[str, Callable[[dict], str | None]] = {
    "device_detector.jsonl": _relabel_dd,
    "uap_core.jsonl": _relabel_uap,
    "crawler_user_agents.jsonl": lambda record: "bot",
    "ua_parser_js.jsonl": _relabel_upj,
    "whichbrowser.jsonl": _relabel_wb,
    "bowser.jsonl": _relabel_bowser,
    "mobile_detect.jsonl": lambda record: None,  # Mobile-Detect labels no app
    "browscap.jsonl": _relabel_bc,
    "hotoo_detector.jsonl": _relabel_dt,
}


def relabel_app(file: str, record: dict) -> str | None:
    """The app label of an already written row of `file`, derived again from the source label it carries."""
    return RELABEL[file](record)


def relabel(files: Iterable[str]) -> None:
    for file in files:
        path = OUT / file
        if not path.exists():
            continue
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        changed = 0
        for record in records:
            app = relabel_app(file, record)
            changed += app != record["app"]
            record["app"] = app  # keeps the key's place: the other fields are untouched
        _write(path, records)
        print(f"{file}: {changed} of {len(records)} rows relabelled", file=sys.stderr)


# --- writing --------------------------------------------------------------------------------------------------


def _write(path: Path, records: Iterable[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def other_files_uas(written: Iterable[str]) -> set[str]:
    """The UAs of every corpus file this run does not write (earlier sources' files under --only, and files
    other tools write), so that no UA is in two files."""
    skip = set(written)
    return {json.loads(line)["ua"] for path in sorted(OUT.glob("*.jsonl")) if path.name not in skip
            for line in path.read_text(encoding="utf-8").splitlines()}  # fmt: skip


def build(chosen: list[tuple[Source, Path]], out: Path = OUT) -> None:
    """Writes the chosen files, and their entries in sources.json, into `out` (the corpus folder unless
    `--out DIR`); a UA in another file of the corpus folder is not taken either way."""
    seen = other_files_uas(source.out for source, _ in chosen)
    manifest_path = out / "sources.json"
    old = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else []
    entries = {entry["file"]: entry for entry in old}
    for source, git_dir in chosen:
        rows = sample(source.read(git_dir), source.per_stratum, seen)
        _write(out / source.out, ({"ua": row.ua, "app": row.app, "os": row.os, "device": row.device,
                                   "path": row.path, "label": row.label} for row in rows))  # fmt: skip
        entries[source.out] = {"file": source.out, "repo": source.repo, "commit": head_commit(git_dir),
                               "license": source.license, "rows": len(rows),
                               "paths": sorted({row.path for row in rows})}  # fmt: skip
        print(f"{source.out}: {len(rows)} rows", file=sys.stderr)
    order = [source.out for source in (*SOURCES, *HELD_OUT)]
    manifest = sorted(entries.values(), key=lambda e: order.index(e["file"]) if e["file"] in order else len(order))
    # As written by hand and by the tool that writes named_apps.jsonl: non-ASCII paths stay as they are.
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    by_stem = {Path(source.out).stem: source for source in (*SOURCES, *HELD_OUT)}
    if argv == ["--relabel"]:
        relabel(source.out for source in (*SOURCES, *HELD_OUT))  # a file not in the corpus folder is skipped
        return 0
    if argv[:1] == ["--only"] and len(argv) > 1:
        args, out = argv[1:], OUT
        if "--out" in args:
            at = args.index("--out")
            if at + 1 >= len(args):
                print(__doc__, file=sys.stderr)
                return 2
            out, args = Path(args[at + 1]), args[:at] + args[at + 2 :]
        named = dict(arg.partition("=")[::2] for arg in args)
        if not named or not set(named) <= set(by_stem) or not all(named.values()):
            print(__doc__, file=sys.stderr)
            return 2
        out.mkdir(parents=True, exist_ok=True)
        build([(source, Path(named[stem])) for stem, source in by_stem.items() if stem in named], out)
        return 0
    if len(argv) != len(SOURCES):
        print(__doc__, file=sys.stderr)
        return 2
    build(list(zip(SOURCES, map(Path, argv), strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
