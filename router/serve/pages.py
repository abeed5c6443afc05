"""What the landing and message pages say, and in which language: the context their templates get.

Templates (`templates/*.html`) and their words (`templates/text/<lang>.yaml`) are files a designer
edits; this module picks the language, the page's mode and the links, and hands the template only
values it can print. Jinja autoescaping is always on; URLs go through the `href` filter (router-built
schemes only) and the script's settings through `tojson`, which is safe inside <script>.
"""

from __future__ import annotations

import os
import re
import threading
from base64 import urlsafe_b64encode
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import yaml
from markupsafe import Markup

from router.decision.deeplinks import store_url, web_location
from router.decision.types import OS, App, Context, Decision, Device

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("zh-CN", "en")  # the first is the default

# Apps whose browser won't open Taobao for a link it didn't whitelist: the page guides out of them.
GUIDE_APPS = frozenset(
    {App.WECHAT, App.WECOM, App.QQ, App.WEIBO, App.ALIPAY, App.DINGTALK, App.DOUYIN, App.OTHER_INAPP}
)
_PHONE_OSES = (OS.IOS, OS.ANDROID, OS.HARMONYOS)
_MENU_SYMBOL = "···"  # every supported app puts "more" at the top right as three dots
_HREF_SCHEMES = frozenset({"https", "taobao", "tbopen", "tmall", "intent", "market", "itms-apps"})
_MAX_ACCEPT_LANGUAGE = 512

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def content_security_policy(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def new_nonce() -> str:
    """18 bytes (144 bits) from the OS's CSPRNG, URL-safe base64 (24 characters), drawn from a pool read 256
    nonces at a time and encoded at once (one getrandom call and one encoding per 256 pages): 18 bytes are
    a whole number of base64 groups, so each nonce is its own 24 characters of the pool's text."""
    with _nonce_lock:
        global _nonce_pool, _nonce_at
        if _nonce_at >= len(_nonce_pool):
            _nonce_pool, _nonce_at = urlsafe_b64encode(os.urandom(_NONCE_BYTES * 256)).decode(), 0
        start = _nonce_at
        _nonce_at = start + _NONCE_CHARS
    return _nonce_pool[start:start + _NONCE_CHARS]


_NONCE_BYTES = 18
_NONCE_CHARS = _NONCE_BYTES * 4 // 3
_nonce_lock = threading.Lock()  # each nonce handed out once, whichever thread renders (explain, tests)
_nonce_pool = ""
_nonce_at = 0


@cache
def texts() -> dict[str, dict[str, Any]]:
    """Every language's words, read once."""
    loaded = {}
    for lang in LANGUAGES:
        with open(TEMPLATES_DIR / "text" / f"{lang}.yaml", encoding="utf-8") as handle:
            loaded[lang] = yaml.safe_load(handle)
    return loaded


def choose_language(accept_language: str | None) -> str:
    """The supported language the Accept-Language header prefers most; Simplified Chinese by default."""
    candidates: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "")[:_MAX_ACCEPT_LANGUAGE].split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        lang = "en" if primary == "en" else "zh-CN" if primary == "zh" else None
        if lang and quality > 0:
            candidates.append((quality, -position, lang))  # on equal quality, the client's order wins
    return max(candidates)[2] if candidates else LANGUAGES[0]


def href(url: object) -> str:
    """A URL for an href attribute: only the schemes the router itself builds, anything else is '#'."""
    if not isinstance(url, str):
        return "#"
    scheme = urlsplit(url).scheme.lower() if ":" in url else ""
    return url if scheme in _HREF_SCHEMES else "#"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template, whatever its file name
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails the tests, not the page
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # shipped files: never stat them again on a click
    )
    env.filters["href"] = href
    env.globals["landing_script"] = landing_script()
    return env


def landing_script() -> Markup:
    """templates/landing.js as pages carry it: without its comments and indentation, which are for the people
    who edit it (about half of its bytes; every landing page carries the script inline). The script holds
    no string with a comment's delimiters in it, and its line breaks stay, so nothing else changes."""
    text = (TEMPLATES_DIR / "landing.js").read_text(encoding="utf-8")
    if "//" in re.sub(r"/\*.*?\*/", "", text, flags=re.S).replace("://", ""):
        raise ValueError("landing.js: write comments as /* … */ (line comments are not stripped)")
    lines = (line.strip() for line in re.sub(r"/\*.*?\*/", "", text, flags=re.S).splitlines())
    return Markup("\n".join(line for line in lines if line))  # our own file: safe inside <script>


def _words(lang: str, **values: str) -> dict[str, Any]:
    """The language's texts with placeholders filled; nested tables are left as they are."""
    table = texts()[lang]
    return {key: value.format(**values) if isinstance(value, str) else value for key, value in table.items()}


def _mode(ctx: Context) -> str:
    client = ctx.client
    if client.bot or client.device is Device.DESKTOP or client.os not in _PHONE_OSES:
        return "static"  # desktop WeChat included: there is no app to guide anyone to
    return "inapp" if client.app in GUIDE_APPS else "phone"


def _menu_label(table: dict[str, Any], ctx: Context) -> str:
    labels = table["menu_labels"]
    app, os = ctx.client.app.value, ctx.client.os.value
    return str(labels.get(f"{app}_{os}") or labels.get(app) or labels["default"])


@cache
def _landing_words(lang: str, app_to_open: str, platform: str, kind: str, in_app: str, label: str) -> dict[str, Any]:
    """A landing page's words, filled once per combination (a few hundred at most), not on every click.
    Shared between responses: the templates only read it."""
    t = _words(lang, platform=app_to_open, kind=kind, app=in_app, menu="{menu}", label="{label}", status="")
    before, _, after = t["guide_step"].partition("{menu}")
    # The menu item's words are printed whole (no line break inside: 「在 Safari 中打开」 split over two lines
    # on a 390 px iPhone reads as two items), so the text around them is cut there too.
    between, _, last = after.partition("{label}")
    t.update(platform_name=platform, kind_name=kind, guide_step_before=before, guide_step_between=between,
             guide_label=label, guide_step_after=last)
    return t


def landing_key(ctx: Context, decision: Decision, lang: str) -> tuple[object, ...]:
    """Everything landing_context reads, so two clicks with the same key get the same page (nonce aside):
    WeChat taps differ in build and network in every user agent, yet most share a handful of pages."""
    client = ctx.client
    harmony_version = client.os_version if client.os is OS.HARMONYOS else None  # decides the store
    return (ctx.link, client.app, client.os, harmony_version, client.device, client.bot, ctx.forward,
            decision.landing, decision.app_link, decision.app, lang)


def landing_context(ctx: Context, decision: Decision, lang: str, nonce: str, fallback_delay_ms: int,
                    token: str = "", beacon: str = "") -> dict[str, Any]:
    """What landing.html prints. `token` and `beacon`: the click's token and where the page sends its outcome
    beacons (router.serve.outcomes); without them the page sends none."""
    link, client = ctx.link, ctx.client
    table = texts()[lang]
    # Words about opening an app name the app the link really opens (a Tmall item opens in Taobao
    # unless a rule says `app: tmall`); the badge names the link's own platform.
    app_to_open = str(table["platform"][decision.app])
    in_app = str(table["apps"].get(client.app.value, table["apps"]["other_inapp"]))
    kind = str(table["kind"][link.kind.value])
    t = _landing_words(lang, app_to_open, str(table["platform"][link.platform.value]), kind, in_app,
                       _menu_label(table, ctx))
    mode = _mode(ctx)
    moments = decision.landing == "moments"
    web = web_location(link, client, ctx.forward)
    app_url = decision.app_link if mode == "phone" else None
    # Copying is the way out of an in-app browser; elsewhere it is offered only when a code with no
    # link is all there is. Moments has banned share codes (口令) since 2018: the plain link there,
    # unless the code is the only way forward.
    copy_is_token = bool(link.token) and (not moments or web is None)
    copy_text = (f"￥{link.token}￥ {web}" if web else f"￥{link.token}￥") if copy_is_token else (web or "")
    if mode != "inapp" and web is not None:
        copy_text = ""
    heading = link.title or t["page_title"]
    return {
        "t": t,
        "title": heading,
        "heading": heading,
        "nonce": nonce,
        "mode": mode,
        # A browser is the way forward only when the link has a page to open there.
        "show_guide": mode == "inapp" and web is not None,
        "moments": moments,
        "menu": _MENU_SYMBOL,
        "web_url": web,
        "app_url": app_url,
        "store_url": store_url(client, decision.app) if mode == "phone" else None,
        "copy_text": copy_text,
        "copy_is_token": copy_is_token,
        "config": {
            "mode": mode,
            "delay": fallback_delay_ms,
            "text": {"copied": t["copy_done"], "copyFailed": t["copy_failed"]},
            "token": token,
            "beacon": beacon,
        },
    }


def message_context(status: int, message: str, lang: str, nonce: str, technical: bool = False) -> dict[str, Any]:
    """A 4xx page: a sentence in the reader's language, then `message`: a block rule's words for the person,
    or (`technical`) the router's own reason, folded away for support."""
    t = _words(lang, platform="", kind="", app="", menu="", label="", status=str(status))
    summary = (t["message_blocked"] if status in (403, 451) else t["message_too_many"] if status == 429
               else t["message_bad_link"])
    return {"t": t, "title": t["message_title"], "summary": summary, "message": message, "technical": technical,
            "status_line": t["message_status"], "nonce": nonce}
