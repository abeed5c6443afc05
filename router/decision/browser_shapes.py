"""The exact user-agent shapes of the common browsers, read without ua-parser.

Safari and Chrome on iPhone and iPad, Chrome on Android, and Chrome, Edge, Safari and Firefox on
Windows 10, Windows 7, macOS and desktop Linux send user agents built from a fixed template where only
versions and (on Android) the model change. Those are most of the never-seen browser user agents a
click router gets, and ua-parser spends tens of microseconds on each walking its regex tables; one
anchored regex here reads the same families and versions in a small part of that.

Each shape is matched whole (`fullmatch`): a user agent with one token more or less than the template
(a `; wv` webview, an app's marker, an old `Build/` id, a bot's `(compatible; …)` tail) is not this
shape, and goes to ua-parser. The only free text a shape lets through is Android's model
name, which the caller checks for app, bot and HarmonyOS markers like any user agent. What is returned
is what ua-parser says for the same string (families, version parts as strings, device family) for
every real model; tests/test_browser_shapes.py holds every shape against ua-parser on generated
variants and on the user-agent corpus. A "model" that names another product (ua-parser's tables know
hundreds of names: "Yeti", "CrKey", "MSOffice 12"...), which no phone sends, is read as the template
says, Chrome on Android, where ua-parser would name that product: the click it decides is that sender's
own, and the per-model verdict kept for it is keyed by that model alone.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["BROWSER_TEMPLATE_TEXTS", "Shape", "read_shape"]


class Shape(NamedTuple):
    """What ua-parser would say: (family, major, minor, patch) for the OS and the browser, and the device
    family ("Other" where ua-parser names none that matters to the classification)."""

    os: tuple[str, str | None, str | None, str | None]
    browser: tuple[str, str | None, str | None, str | None]
    device: str
    model: str = ""  # the one free-text token of a shape (Android's model): the caller checks it for markers


_IOS = re.compile(
    r"Mozilla/5\.0 \((iPhone|iPad); CPU (?:iPhone )?OS (\d{1,2})_(\d{1,2})(?:_(\d{1,2}))? like Mac OS X\) "
    r"AppleWebKit/605\.1\.15 \(KHTML, like Gecko\) "
    r"(?:Version/(\d{1,2})\.(\d{1,2})(?:\.(\d{1,2}))?|CriOS/(\d{1,3})\.(\d{1,3})\.(\d{1,5})\.\d{1,4}) "
    r"Mobile/\d{2}[A-Z]\d{1,4} Safari/604\.1"
)
# Chrome's reduced Android user agent: the model (or "K") and nothing else in the parenthesis.
_ANDROID_CHROME = re.compile(
    r"Mozilla/5\.0 \(Linux; Android (\d{1,2})(?:\.(\d{1,2}))?(?:\.(\d{1,2}))?; ([A-Za-z0-9][A-Za-z0-9 _-]{0,31})\) "
    r"AppleWebKit/537\.36 \(KHTML, like Gecko\) Chrome/(\d{1,3})\.(\d{1,3})\.(\d{1,5})\.\d{1,4} (Mobile )?"
    r"Safari/537\.36"
)
_WINDOWS_NT = {"10.0": "10", "6.1": "7"}
_DESKTOP_CHROME = re.compile(
    r"Mozilla/5\.0 \((?:Windows NT (10\.0|6\.1)(?:; Win64; x64|; WOW64)?"
    r"|Macintosh; Intel Mac OS X (10)_(\d{1,2})_(\d{1,2})|X11; Linux x86_64)\) "
    r"AppleWebKit/537\.36 \(KHTML, like Gecko\) Chrome/(\d{1,3})\.(\d{1,3})\.(\d{1,5})\.\d{1,4} "
    r"Safari/537\.36(?: Edg/(\d{1,3})\.(\d{1,3})\.(\d{1,5})\.\d{1,4})?"
)
_MAC_SAFARI = re.compile(
    r"Mozilla/5\.0 \(Macintosh; Intel Mac OS X (10)_(\d{1,2})_(\d{1,2})\) AppleWebKit/605\.1\.15 "
    r"\(KHTML, like Gecko\) Version/(\d{1,2})\.(\d{1,2})(?:\.(\d{1,2}))? Safari/605\.1\.15"
)
_DESKTOP_FIREFOX = re.compile(
    r"Mozilla/5\.0 \((?:Windows NT (10\.0|6\.1)(?:; Win64; x64|; WOW64)?|Macintosh; Intel Mac OS X (10)\.(\d{1,2})"
    r"|X11; Linux x86_64|X11; Ubuntu; Linux x86_64); rv:(\d{2,3})\.(\d)\) Gecko/20100101 Firefox/(\d{2,3})\.(\d)"
)


def read_shape(ua: str) -> Shape | None:
    """The families and versions of a common browser's user agent, or None when `ua` is not one."""
    if not ua.startswith("Mozilla/5.0 ("):
        return None
    head = ua[13:17]
    # Each template's last token first: apps' webviews append theirs after it, so most fail here.
    if head == "iPho" or head == "iPad":
        return _ios(ua) if ua.endswith("Safari/604.1") else None
    if head == "Linu":
        return _android_chrome(ua) if ua.endswith("Safari/537.36") else None
    if ua.endswith(("Safari/537.36", ".0.0.0", "Safari/605.1.15")) or "Edg/" in ua:
        m = _DESKTOP_CHROME.fullmatch(ua)
        if m is not None:
            return _desktop_chrome(m)
        m = _MAC_SAFARI.fullmatch(ua)
        if m is not None:
            os_major, os_minor, os_patch, major, minor, patch = m.groups()
            return Shape(("Mac OS X", os_major, os_minor, os_patch), ("Safari", major, minor, patch), "Mac")
        return None
    m = _DESKTOP_FIREFOX.fullmatch(ua)
    if m is not None:
        nt, mac_major, mac_minor, _rv_major, _rv_minor, major, minor = m.groups()
        return Shape(_desktop_os(nt, mac_major, mac_minor, None, ua), ("Firefox", major, minor, None),
                     "Mac" if mac_major else "Other")
    return None


def _ios(ua: str) -> Shape | None:
    m = _IOS.fullmatch(ua)
    if m is None:
        return None
    device, os_major, os_minor, os_patch, major, minor, patch, cr_major, cr_minor, cr_patch = m.groups()
    if cr_major is not None:
        browser: tuple[str, str | None, str | None, str | None] = ("Chrome Mobile iOS", cr_major, cr_minor, cr_patch)
    else:
        browser = ("Mobile Safari", major, minor, patch)
    return Shape(("iOS", os_major, os_minor, os_patch), browser, device)


def _android_chrome(ua: str) -> Shape | None:
    m = _ANDROID_CHROME.fullmatch(ua)
    if m is None:
        return None
    os_major, os_minor, os_patch, model, major, minor, patch, mobile = m.groups()
    if model == "wv":
        return None  # "(Linux; Android 14; wv)": a webview's marker where the model goes, not a model
    family = "Chrome Mobile" if mobile else "Chrome"
    return Shape(("Android", os_major, os_minor, os_patch), (family, major, minor, patch), "Other", model)


def _desktop_chrome(m: re.Match[str]) -> Shape:
    nt, mac_major, mac_minor, mac_patch, major, minor, patch, edge_major, edge_minor, edge_patch = m.groups()
    if edge_major is not None:
        browser: tuple[str, str | None, str | None, str | None] = ("Edge", edge_major, edge_minor, edge_patch)
    else:
        browser = ("Chrome", major, minor, patch)
    return Shape(_desktop_os(nt, mac_major, mac_minor, mac_patch, m.string), browser, "Mac" if mac_major else "Other")


def _desktop_os(
    nt: str | None, mac_major: str | None, mac_minor: str | None, mac_patch: str | None, ua: str
) -> tuple[str, str | None, str | None, str | None]:
    if nt is not None:
        return ("Windows", _WINDOWS_NT[nt], None, None)
    if mac_major is not None:
        return ("Mac OS X", mac_major, mac_minor, mac_patch)
    return ("Ubuntu" if "Ubuntu" in ua else "Linux", None, None, None)


# One user agent per alternative the templates allow, each read by them (tests/test_browser_shapes.py), with
# the free text (Android's model) as "\x00": what router.decision.clients checks a catalogue's markers
# against before it trusts the templates (a marker that could occur in their fixed text turns them off).
BROWSER_TEMPLATE_TEXTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; \x00) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13.1.2; \x00) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:115.0) Gecko/20100101 Firefox/115.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
)
