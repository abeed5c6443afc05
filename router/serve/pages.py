"""The landing and message pages: what they say, in which language, and each rendered into an answer.

Templates (`templates/*.html`) and their words (`templates/text/<lang>.yaml`) are files a designer
edits; this module picks the language, the page's mode and the links, and hands the template only
values it can print. Jinja autoescaping is always on; URLs go through the `href` filter (router-built
schemes only) and the script's settings through `tojson`, which is safe inside <script>.

`Pages` turns a decided click into its answer (a `Page`: status, headers, body): a redirect, a landing
page, or a message page, each with its own Content-Security-Policy nonce.
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
from router.decision.recent import Recent
from router.decision.short_links import Preview
from router.decision.types import LANGUAGES, OS, Action, App, Channel, Context, Decision, Device
from router.serve.headers import SECURITY_HEADERS

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
__all__ = ["LANGUAGES", "Page", "Pages"]

_LINK_APPS = frozenset({App.TAOBAO, App.TMALL})  # the apps Taobao links open in
_PHONE_OSES = (OS.IOS, OS.ANDROID, OS.HARMONYOS)
_MENU_SYMBOL = "···"  # every supported app puts "more" at the top right as three dots
_HREF_SCHEMES = frozenset({"https", "taobao", "tbopen", "tmall", "intent", "market", "itms-apps"})
_MAX_ACCEPT_LANGUAGE = 512

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
    # An app's own web view (the catalogue's `kind: inapp`) won't open Taobao for a link it didn't
    # whitelist: the page guides out of it. A browser opens the app, and so does Taobao's own web view.
    return "inapp" if client.app.kind == "inapp" and client.app not in _LINK_APPS else "phone"


def _menu_label(table: dict[str, Any], ctx: Context, lang: str) -> str:
    """The menu item that opens a browser: the catalogue's for the app (on this OS), else the pages' own words."""
    label = ctx.client.app.menu_label(lang, ctx.client.os.value)
    return label if label is not None else str(table["menu_label"])


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


def landing_key(ctx: Context, decision: Decision, lang: str, preview: Preview | None = None) -> tuple[object, ...]:
    """Everything landing_context reads, so two clicks with the same key get the same page (nonce aside):
    WeChat taps differ in build and network in every user agent, yet most share a handful of pages."""
    client = ctx.client
    harmony_version = client.os_version if client.os is OS.HARMONYOS else None  # decides the store
    # The app's entry as a whole: a reloaded catalogue may rename an app or change its menu under the same id.
    in_moments = ctx.channel is Channel.MOMENTS  # what the page says the link is (landing_context)
    return (ctx.link, client.app.details, client.os, harmony_version, client.device, client.bot, ctx.forward,
            decision.landing, decision.app_link, decision.app, lang, in_moments, preview)


def landing_context(ctx: Context, decision: Decision, lang: str, nonce: str, fallback_delay_ms: int,
                    token: str = "", beacon: str = "", preview: Preview | None = None) -> dict[str, Any]:
    """What landing.html prints. `token` and `beacon`: the click's token and where the page sends its outcome
    beacons (router.serve.outcomes); without them the page sends none. `preview`: a short link's title,
    description and image (router.serve.kept_links), for the page and for link previews (og:, twitter:)."""
    link, client = ctx.link, ctx.client
    table = texts()[lang]
    # Words about opening an app name the app the link really opens (a Tmall item opens in Taobao
    # unless a rule says `app: tmall`); the badge names the link's own platform.
    app_to_open = str(table["platform"][decision.app])
    in_app = client.app.name(lang)  # every entry names its app in every language (checked when it is read)
    kind = str(table["kind"][link.kind.value])
    t = _landing_words(lang, app_to_open, str(table["platform"][link.platform.value]), kind, in_app,
                       _menu_label(table, ctx, lang))
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
    heading = (preview.title if preview else None) or link.title or t["page_title"]
    return {
        "t": t,
        "title": heading,
        "heading": heading,
        "description": (preview.description if preview else None) or t["og_description"],
        "image": preview.image if preview else None,
        "page_url": preview.url if preview else None,
        "about": preview.description if preview else None,
        "nonce": nonce,
        "mode": mode,
        # A browser is the way forward only when the link has a page to open there.
        "show_guide": mode == "inapp" and web is not None and client.app.leave == "menu",
        # An app with no way to a browser (`leave: none`): say so, and offer what to copy.
        "no_way_out": mode == "inapp" and client.app.leave == "none",
        "moments": moments,
        # Said to be a Moments link only when the click says it came from Moments: the moments page also
        # answers taps whose channel is unknown, and they are told what is known (the app they are in).
        "in_moments": moments and ctx.channel is Channel.MOMENTS,
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
               else t["message_not_found"] if status == 404 else t["message_gone"] if status == 410
               else t["message_try_again"] if status == 503 else t["message_bad_link"])
    return {"t": t, "title": t["message_title"], "summary": summary, "message": message, "technical": technical,
            "status_line": t["message_status"], "nonce": nonce}


# A landing page is rendered once per decision and language with this placeholder where the nonce goes;
# each response puts in a fresh nonce (_template). The placeholder is random per process, so no
# input can contain it (escaping aside, a link would have to guess 128 bits).
_NONCE_PLACEHOLDER = new_nonce().encode()
# Likewise the click token (router.serve.click_token), made per landing response.
_TOKEN_PLACEHOLDER = ("token-" + new_nonce()).encode()
# A page's headers but its policy's nonces and its length, made once: per language, and for every page.
_CSP = content_security_policy("%s").encode()  # the policy has no `%` of its own: its two nonces are the slots
_CONTENT_LANGUAGE = {lang: (b"content-language", lang.encode()) for lang in LANGUAGES}
_PAGE_HEADERS = [(b"vary", b"Accept-Language"), (b"content-type", b"text/html; charset=utf-8")]
_REDIRECT_HEADERS = [*SECURITY_HEADERS, (b"content-length", b"0")]
_RENDERED_LIMIT = 512  # landing pages kept rendered (each ~9 KB: ~4.5 MB at most); the used ones stay
_LANGUAGE_LIMIT = 256  # Accept-Language values remembered with the language they choose
_LANGUAGE_KEY_CHARS = 200  # longer values are read each time, never kept


class Page:
    """An answer ready to send: status, header pairs, body. Each Page is built for one answer, its headers
    list its own: the click handler adds the request id and cookie to it in place."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Pages:
    """Renders the landing and message pages from their templates, each with a fresh CSP nonce.

    A landing page is rendered once per `landing_key` (what the page shows: link, the client's kind,
    forwarded ids, the decision's page options, language) and reused with a new nonce and token (one
    bytes formatting).
    """

    def __init__(self, fallback_delay_ms: int, beacon_path: str) -> None:
        self.env = environment()
        self.fallback_delay_ms = fallback_delay_ms
        self.beacon_path = beacon_path  # where a landing page sends its outcome beacons (router.serve.outcomes)
        self._rendered: Recent[tuple[object, ...], bytes] = Recent(_RENDERED_LIMIT)
        self._languages: dict[str | None, str] = {}

    def language(self, accept_language: str | None) -> str:
        lang = self._languages.get(accept_language)
        if lang is None:
            lang = choose_language(accept_language)
            if accept_language is None or len(accept_language) <= _LANGUAGE_KEY_CHARS:  # browsers' are short
                if len(self._languages) >= _LANGUAGE_LIMIT:
                    self._languages.clear()
                self._languages[accept_language] = lang
        return lang

    def _page(self, status: int, body: bytes, nonce: bytes, lang: str) -> Page:
        headers = [*SECURITY_HEADERS, (b"content-security-policy", _CSP % (nonce, nonce)), _CONTENT_LANGUAGE[lang],
                   *_PAGE_HEADERS, (b"content-length", b"%d" % len(body))]
        return Page(status, headers, body)

    def landing(self, accept_language: str | None, ctx: Context, decision: Decision, token: str = "",
                preview: Preview | None = None) -> Page:
        """The landing page; `token` (the click's, router.serve.click_token) goes into its script's settings,
        for the outcome beacons and the page's own URL; `preview`: a short link's (router.serve.kept_links)."""
        lang = self.language(accept_language)
        key = landing_key(ctx, decision, lang, preview)
        template = self._rendered.get(key)
        if template is None:
            context = landing_context(ctx, decision, lang, _NONCE_PLACEHOLDER.decode(), self.fallback_delay_ms,
                                      _TOKEN_PLACEHOLDER.decode(), self.beacon_path, preview)
            template = _template(self.env.get_template("landing.html").render(context).encode())
            self._rendered.put(key, template)
        nonce = new_nonce().encode()
        # A token is base64url, a key id and dots: nothing that needs escaping in JSON or HTML.
        body = template % {b"n": nonce, b"t": token.encode()}
        return self._page(200, body, nonce, lang)

    def message(self, accept_language: str | None, status: int, message: str, *, technical: bool = False,
                messages: tuple[tuple[str, str], ...] = ()) -> Page:
        """A 4xx page. `messages`: a block rule's message per language (the reader's is shown); `technical`:
        `message` is the router's own reason for input it can't use, shown folded."""
        nonce = new_nonce()
        lang = self.language(accept_language)
        if messages:
            message = dict(messages).get(lang, message)
        body = self.env.get_template("message.html").render(
            message_context(status, message, lang, nonce, technical))
        return self._page(status, body.encode(), nonce.encode(), lang)

    def respond(self, accept_language: str | None, ctx: Context, decision: Decision, token: str = "",
                preview: Preview | None = None) -> Page:
        """The answer to a decided click; a landing page carries the click's `token` (and a short link's
        `preview`)."""
        if decision.action in (Action.APP, Action.WEB) and decision.location:
            # The location is built by the router from parsed parts, never echoed from input.
            return Page(302, [(b"location", decision.location.encode()), *_REDIRECT_HEADERS], b"")
        if decision.action is Action.BLOCK:
            return self.message(accept_language, decision.status, decision.reason, messages=decision.messages)
        return self.landing(accept_language, ctx, decision, token, preview)


def _template(page: bytes) -> bytes:
    """A rendered page as a bytes %-template: its own `%` doubled, each placeholder a named slot (`%(n)s` the
    nonce, `%(t)s` the token), so that an answer's page is one formatting call, in C."""
    return (page.replace(b"%", b"%%").replace(_NONCE_PLACEHOLDER, b"%(n)s")
            .replace(_TOKEN_PLACEHOLDER, b"%(t)s"))
