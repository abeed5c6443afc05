"""Where a click goes: web URLs with attribution, and app deep links per OS and client.

Deep links are only ever built here, from the normalised Link, never passed
through from input. The forms (docs/wechat-and-taobao.md, "Opening the app"):

- scheme:    taobao://item.taobao.com/item.htm?id=1     (items)
- tbopen:    tbopen://m.taobao.com/tbopen/index.html?action=ali.open.nav&module=h5&h5Url=<web>
             (any page: the app opens the web URL inside itself)
- intent:    intent://…#Intent;scheme=…;package=com.taobao.taobao;S.browser_fallback_url=<web>;end
             (Android browsers: Chrome falls back to the web page when the app is missing)
- universal: the https web URL itself, on hosts configured as Universal Link hosts
             (iOS opens the app when installed, the page otherwise)

`auto` picks the form that falls back to the web wherever the platform allows:
intent in Android (and Android-compatible HarmonyOS) browsers, a Universal Link
on iOS when one is configured, the plain scheme elsewhere (in-app webviews
ignore intent fallbacks; HarmonyOS NEXT runs no Android apps).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from router.decision.types import OS, Client, Device, Link, LinkKind, Platform

_PACKAGES = {"taobao": "com.taobao.taobao", "tmall": "com.tmall.wireless"}
_TBOPEN = "tbopen://m.taobao.com/tbopen/index.html?action=ali.open.nav&module=h5&h5Url="
_PHONE_OSES = (OS.IOS, OS.ANDROID, OS.HARMONYOS)


def with_params(url: str, params: tuple[tuple[str, str], ...]) -> str:
    """`url` with attribution params appended, encoded; the URL's own query is kept as it is."""
    if not params:
        return url
    # What urlsplit calls the query (after the first "?", before any "#"), without a full split.
    joiner = "&" if url.partition("#")[0].partition("?")[2] else "?"
    global _last_encoded
    last = _last_encoded
    if last[0] is params:
        return url + joiner + last[1]
    encoded = "&".join(f"{_encoded(name)}={_encoded(value)}" for name, value in params)
    _last_encoded = (params, encoded)
    return url + joiner + encoded


# The last click's parameters, encoded: an app answer appends them to its web URL and to its app link, and
# the landing page's app link again. Compared by identity (one tuple per click), so a tuple that happens to
# be equal is encoded afresh; under the GIL the pair is read and replaced whole.
_last_encoded: tuple[tuple[tuple[str, str], ...], str] = ((), "")


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _encoded(text: str) -> str:
    """What urlencode(..., quote_via=quote) writes for one name or value: click ids are nearly always
    unreserved characters only, which quote leaves as they are, and a regex says so in a fraction of
    quote's time."""
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")


def runs_taobao(client: Client) -> bool:
    """Whether the client's OS has a Taobao app to open (phones and tablets; not desktops)."""
    return client.os in _PHONE_OSES


def web_location(link: Link, client: Client, forward: tuple[tuple[str, str], ...]) -> str | None:
    """The item's mobile page for phones and tablets, its desktop page otherwise."""
    url = link.web_url if client.device is Device.DESKTOP else link.mobile_url
    return with_params(url, forward) if url else None


def _scheme_url(link: Link, web: str, app: str) -> tuple[str, str]:
    """(scheme, rest-after-'scheme://') for opening `link` in the app."""
    if link.kind is LinkKind.ITEM and link.item_id:
        if app == "tmall" and link.platform is Platform.TMALL:
            payload = quote('{"action":"item:id=' + link.item_id + '"}', safe="")
            return "tmall", f"tmallclient/?{payload}"
        return "taobao", f"item.taobao.com/item.htm?id={link.item_id}"
    return "tbopen", _TBOPEN.removeprefix("tbopen://") + quote(web, safe="")


_APP_STORE_IDS = {"taobao": "387682726", "tmall": "518966501"}


def opened_app(link: Link, app: str = "taobao") -> str:
    """Which app an app link for `link` opens: Tmall only for a Tmall item a rule sends to `app: tmall`."""
    if app == "tmall" and link.platform is Platform.TMALL and link.kind is LinkKind.ITEM and link.item_id:
        return "tmall"
    return "taobao"


def store_url(client: Client, app: str = "taobao") -> str | None:
    """Where to get the app on this client's OS; None where there is no store to send people to."""
    if client.os is OS.IOS:
        return f"https://apps.apple.com/app/id{_APP_STORE_IDS[app]}"
    if _runs_android_apps(client):
        # Android phones (and Android-compatible HarmonyOS) hand market:// to whichever store they
        # have: Huawei's, Xiaomi's, OPPO's, vivo's, Tencent's or Google's.
        return f"market://details?id={_PACKAGES[app]}"
    return None  # desktops; HarmonyOS NEXT, whose AppGallery ids for Taobao aren't verified here


def app_url(link: Link) -> str | None:
    """The link's own app deep link (scheme form, no attribution): what `explain` shows for the link."""
    if link.mobile_url is None:
        return None
    scheme, rest = _scheme_url(link, link.mobile_url, "taobao")
    return f"{scheme}://{rest}"


def app_location(
    link: Link,
    client: Client,
    forward: tuple[tuple[str, str], ...],
    *,
    via: str = "auto",
    app: str = "taobao",
    universal_link_hosts: tuple[str, ...] = (),
) -> tuple[str | None, str]:
    """(location, note). Location is None when no app can be opened (no web URL to hand it)."""
    web = web_location(link, client, forward)
    if web is None:
        return None, "the link has no URL (token only), so the app cannot be opened with it"
    if not runs_taobao(client):
        return web, f"no Taobao app on {client.os.value}; the web page is served instead"
    if via == "auto":
        via = _auto_via(client, web, universal_link_hosts)
    if via == "universal":
        if urlsplit(web).hostname not in universal_link_hosts:
            # A Universal Link only works on a host the app claims; anything else is just the web page.
            return web, "no Universal Link host configured for this link; served as the web page"
        return web, "Universal Link: opens the app when installed, the web page otherwise"
    scheme, rest = _scheme_url(link, web, app)
    if scheme != "tbopen" and forward:
        rest = with_params(rest, forward)
    if via == "tbopen" and scheme != "tbopen":
        scheme, rest = "tbopen", _TBOPEN.removeprefix("tbopen://") + quote(web, safe="")
    if via == "intent":
        package = _PACKAGES["tmall" if scheme == "tmall" else "taobao"]
        fallback = quote(web, safe="")
        return (
            f"intent://{rest}#Intent;scheme={scheme};package={package};S.browser_fallback_url={fallback};end",
            "Android intent: opens the app, or the web page when the app is missing",
        )
    return f"{scheme}://{rest}", "app scheme: opens the app (no web fallback on this client)"


def client_traits(client: Client) -> tuple[object, ...]:
    """Everything the answers built here read from a client: clients with the same traits get the same
    locations and notes (router.decision.memo keeps answers by these, not by every version number)."""
    return (client.app.kind == "browser", client.os, client.device, _runs_android_apps(client))


# Bound once for client_traits and _runs_android_apps, which run on every click: on Python 3.11 an enum
# member looked up on its class goes through the enum metaclass's __getattr__ hook.
_ANDROID, _HARMONYOS = OS.ANDROID, OS.HARMONYOS


def _runs_android_apps(client: Client) -> bool:
    """Android, or HarmonyOS 2-4 (Android-compatible); HarmonyOS NEXT (5+) has no Android runtime."""
    os = client.os
    if os is _ANDROID:
        return True
    return os is _HARMONYOS and (not client.os_version or client.os_version < (5,))


def _auto_via(client: Client, web: str, universal_link_hosts: tuple[str, ...]) -> str:
    # A browser (the catalogue's `kind: browser`: UC and Quark too) follows an intent with its web fallback.
    if client.app.kind == "browser" and _runs_android_apps(client):
        return "intent"
    if universal_link_hosts and client.os is OS.IOS and urlsplit(web).hostname in universal_link_hosts:
        return "universal"
    return "scheme"
