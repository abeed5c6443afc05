"""Rebuild the user-agent regression corpus from public parser projects' test fixtures.

    python rules/user_agents/build_corpus.py DEVICE_DETECTOR UAP_CORE CRAWLER_USER_AGENTS UA_PARSER_JS

Each argument is a git directory (a clone, or a bare snapshot) of, in order: matomo-org/device-detector,
ua-parser/uap-core, monperrus/crawler-user-agents, faisalman/ua-parser-js. Files are read from each
one's HEAD with `git show`, so nothing has to be checked out; the commit read is written into
sources.json. Not run by the test suite: the suite reads the files this writes.

The labelling rule is the code below and is written out in README.md: every label is derived from the
source's own label through an explicit table; a source label with no router equivalent leaves that
field unlabelled (None), never a guess. The user-agent string itself is never looked at to decide a
label, with one stated exception (device-detector's "Mobile Safari" on a UA without a Safari/ token,
see _dd_app). Sampling is deterministic (ordered by a hash of the UA) and stratified by label, so the
corpus does not depend on what the router currently gets right.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent

# --- the shared name table ------------------------------------------------------------------------------

# An in-app browser named by a source -> the router's App. Every other in-app browser is other_inapp:
# the router has rules of its own only for these. TikTok is ByteDance's international app, not Douyin.
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
}


def in_app(name: str) -> str:
    return IN_APP_NAMES.get(name.strip().lower(), "other_inapp")


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
        return "browser"
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


def _uap_app(family: str, ua: str) -> str | None:
    if family in UAP_IN_APP_FAMILIES:
        return in_app(family) if shows_pages(ua) else None  # as for device-detector's mobile apps
    if family in UAP_BOT_FAMILIES:
        return "bot"
    return "browser" if family in UAP_BROWSER_FAMILIES else None


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
UPJ_DEVICE = {"mobile": "mobile", "tablet": "tablet"}  # no type at all is not a stated desktop
UPJ_OS = {"Android": "android", "iOS": "ios", "HarmonyOS": "harmonyos", "OpenHarmony": "harmonyos",
          "Windows": "windows", "macOS": "macos", "Mac OS": "macos", "Linux": "linux", "Ubuntu": "linux",
          "Debian": "linux", "Fedora": "linux", "Arch": "linux", "Mint": "linux", "Kubuntu": "linux"}  # fmt: skip


def _upj_app(expect: dict, path: str, ua: str) -> str | None:
    # An extension file's name is the type of every entry in it (mediaplayer.json's entries carry none).
    kind, name = expect.get("type") or _upj_extension_type(path), str(expect.get("name") or "")
    if kind in UPJ_BOT_TYPES:
        return "bot"
    if kind in UPJ_UNLABELLED_TYPES:
        return None
    if kind == "inapp" or name in UPJ_APP_BROWSER_NAMES or name.lower() in IN_APP_NAMES:
        return in_app(name) if shows_pages(ua) else None  # as for device-detector's mobile apps
    return "bot" if name in UPJ_HEADLESS else "browser"


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
                rows.append(Row(ua, _upj_app(expect, path, ua), None, None, path, label))
            elif not shows_pages(ua):
                continue
            elif "/device/" in path or "/extension/" in path:
                rows.append(Row(ua, None, None, UPJ_DEVICE.get(str(expect.get("type"))), path, label))
            elif "/os/" in path:
                rows.append(Row(ua, None, UPJ_OS.get(str(expect.get("name"))), None, path, label))
    return rows


# --- sampling -------------------------------------------------------------------------------------------------


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


def main(argv: list[str]) -> int:
    if len(argv) != len(SOURCES):
        print(__doc__, file=sys.stderr)
        return 2
    seen: set[str] = set()
    manifest = []
    for source, git_dir in zip(SOURCES, map(Path, argv), strict=True):
        rows = sample(source.read(git_dir), source.per_stratum, seen)
        with (OUT / source.out).open("w", encoding="utf-8") as f:
            for row in rows:
                record = {"ua": row.ua, "app": row.app, "os": row.os, "device": row.device,
                          "path": row.path, "label": row.label}  # fmt: skip
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        manifest.append({"file": source.out, "repo": source.repo, "commit": head_commit(git_dir),
                         "license": source.license, "rows": len(rows),
                         "paths": sorted({row.path for row in rows})})  # fmt: skip
        print(f"{source.out}: {len(rows)} rows", file=sys.stderr)
    (OUT / "sources.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
