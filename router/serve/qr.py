"""QR codes for short URLs: an SVG to scale anywhere, or a PNG of a requested width, drawn with `segno`.

A short link is often shown on a screen or printed to be scanned by a phone, so the router can draw its QR
code itself instead of sending the URL to a third-party image service. Both kinds are error correction
level M (a code still scans with about 15 % of it smudged or covered), dark modules on white, with the
4-module quiet zone the QR standard asks for, and always a full QR code (never a Micro QR, which most phone
scanners do not read). segno writes both formats itself; PNG needs no Pillow.

The SVG has a viewBox and no width or height, so it fills whatever box the page gives it. The PNG is made
of whole pixels per module, so its width is the largest multiple of the code's width (quiet zone included)
that is not larger than the size asked for; only a code too big to fit at one pixel a module comes out
wider than asked.

Only the router's own short URLs are ever drawn, but this module does not trust its caller: a URL that is
not http(s) with a host, is longer than MAX_URL_LENGTH, or holds anything but printable ASCII (a URL as
sent on the wire, percent-encoded), and a PNG size outside MIN_PNG_SIZE..MAX_PNG_SIZE, raise ValueError
with a sentence the HTTP layer can answer with a 400. The same URL always gives the same code, so the
last few hundred results are kept in a bounded LRU cache.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

import segno

MIN_PNG_SIZE = 64
MAX_PNG_SIZE = 2048
DEFAULT_PNG_SIZE = 320
MAX_URL_LENGTH = 2048
QUIET_ZONE = 4  # modules of light border on each side, as the QR standard asks
ERROR_LEVEL = "m"
CACHE_SIZE = 256  # (url, kind, size) results kept: the largest SVG is some 100 kB
DARK, LIGHT = "#000", "#fff"


def qr_svg(url: str) -> bytes:
    """A standalone SVG document (UTF-8, no XML declaration) of `url`'s QR code, sized only by its viewBox.
    ValueError if the URL is refused (see check_url)."""
    check_url(url)
    return _render(url, "svg", 0)


def qr_png(url: str, size: int = DEFAULT_PNG_SIZE) -> bytes:
    """A PNG of `url`'s QR code whose width is as close to `size` pixels as whole modules allow, never
    wider unless the code cannot fit at one pixel a module. ValueError if the URL is refused (see
    check_url) or `size` is outside MIN_PNG_SIZE..MAX_PNG_SIZE."""
    check_url(url)
    check_png_size(size)
    return _render(url, "png", size)


def check_url(url: str) -> None:
    """ValueError unless `url` is an http or https URL with a host, at most MAX_URL_LENGTH characters of
    printable ASCII."""
    if not isinstance(url, str):
        raise TypeError(f"the URL must be a str, not {type(url).__name__}")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"The URL is {len(url)} characters long; a QR code is made for at most "
                         f"{MAX_URL_LENGTH}.")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise ValueError("The URL must be printable ASCII without spaces (percent-encode anything else).")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ValueError("The URL could not be parsed.") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("A QR code is made only for http or https URLs.")
    if not host:
        raise ValueError("The URL has no host.")


def check_png_size(size: int) -> None:
    """ValueError unless `size` is a whole number of pixels from MIN_PNG_SIZE to MAX_PNG_SIZE."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValueError(f"The PNG size must be a whole number of pixels from {MIN_PNG_SIZE} to {MAX_PNG_SIZE}.")
    if not MIN_PNG_SIZE <= size <= MAX_PNG_SIZE:
        raise ValueError(f"The PNG size must be from {MIN_PNG_SIZE} to {MAX_PNG_SIZE} pixels, not {size}.")


def png_size(text: str | None) -> tuple[int, str]:
    """A `?size=` query value as a PNG width (DEFAULT_PNG_SIZE when not given), and "" or why it can't be."""
    if text is None or text == "":
        return DEFAULT_PNG_SIZE, ""
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        return 0, f"size must be a whole number of pixels from {MIN_PNG_SIZE} to {MAX_PNG_SIZE}"
    size = int(text)
    try:
        check_png_size(size)
    except ValueError as err:
        return 0, str(err)
    return size, ""


def png_scale(url: str, size: int) -> int:
    """Pixels per module for a PNG of `url` at most `size` wide: at least 1."""
    width, _ = _code(url).symbol_size(scale=1, border=QUIET_ZONE)
    return max(1, size // int(width))


@lru_cache(maxsize=64)
def _code(url: str) -> segno.QRCode:
    # Level M exactly (no boost to a higher level), a full QR code, segno's choice of version and mask.
    return segno.make_qr(url, error=ERROR_LEVEL, boost_error=False)


@lru_cache(maxsize=CACHE_SIZE)
def _render(url: str, kind: Literal["svg", "png"], size: int) -> bytes:
    out = io.BytesIO()
    if kind == "svg":
        _code(url).save(out, kind="svg", scale=1, border=QUIET_ZONE, dark=DARK, light=LIGHT,
                        omitsize=True, xmldecl=False, svgclass=None, lineclass=None, encoding="utf-8")
    else:
        _code(url).save(out, kind="png", scale=png_scale(url, size), border=QUIET_ZONE, dark=DARK, light=LIGHT)
    return out.getvalue()
