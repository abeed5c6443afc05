"""router.serve.qr: QR codes for short URLs, read back with a real decoder.

PNGs go straight to Debian's `zbarimg` (zbar-tools). The SVG is rendered by headless Chromium (the
`browser` fixture in tests/conftest.py) at a size of its page's choosing, and the screenshot goes to
zbarimg: the SVG is then known to be a standalone document a browser draws, and to scale. Without zbarimg
or Chromium those tests skip, except under CI=true, where they fail (.ci/run installs both).
"""

from __future__ import annotations

import base64
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest
import segno

from router.serve import qr
from tests.servers import debian_tool

SVG_NS = "{http://www.w3.org/2000/svg}"
URLS = [
    "https://s.example.com/aB3xK9q",  # a 7-character code
    "https://s.example.com/" + "summer-sale-2024-cotton-t-shirts-free-shipping-for-members-only",  # 64 chars
    "https://links.example.com:8443/Zx9_-q7",  # https with a port
]
LONGEST = "https://s.example.com/" + "a1B2-" * 405 + "x"  # MAX_URL_LENGTH characters


def zbar(image: Path) -> str:
    """What zbarimg reads in `image`: the one code's text, exactly."""
    zbarimg = debian_tool("zbarimg", package="zbar-tools")
    done = subprocess.run([zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, (done.returncode, done.stderr.decode(errors="replace"))
    text = done.stdout.decode("utf-8")
    assert text.endswith("\n") and text.count("\n") == 1, f"not one code: {text!r}"
    return text[:-1]


def png_rows(png: bytes) -> tuple[int, list[list[bool]]]:
    """(width, rows of dark pixels) of a 1-bit greyscale PNG, as segno writes it."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    position = 8
    while position < len(png):
        (length,) = struct.unpack(">I", png[position:position + 4])
        kind = png[position + 4:position + 8]
        chunks[kind] = chunks.get(kind, b"") + png[position + 8:position + 8 + length]
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (1, 0), "segno's PNG is no longer 1-bit greyscale: update this reader"
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + (width + 7) // 8
    rows, previous = [], bytes(stride - 1)
    for y in range(height):
        kind, line = raw[y * stride], bytearray(raw[y * stride + 1:(y + 1) * stride])
        for i, byte in enumerate(line):  # undo the row's filter; at one bit a pixel, "the pixel left" is a byte
            left, up, up_left = (line[i - 1] if i else 0), previous[i], (previous[i - 1] if i else 0)
            guess = {0: 0, 1: left, 2: up, 3: (left + up) // 2, 4: paeth(left, up, up_left)}[kind]
            line[i] = (byte + guess) & 0xFF
        rows.append([not (line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
        previous = bytes(line)
    return width, rows


def paeth(left: int, up: int, up_left: int) -> int:
    estimate = left + up - up_left
    near_left, near_up, near_up_left = abs(estimate - left), abs(estimate - up), abs(estimate - up_left)
    if near_left <= near_up and near_left <= near_up_left:
        return left
    return up if near_up <= near_up_left else up_left


def modules(url: str) -> int:
    """The code's width in modules, quiet zone included."""
    return int(segno.make_qr(url, error="m", boost_error=False).symbol_size(scale=1, border=4)[0])


# --- PNG --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", URLS)
def test_the_png_decodes_to_the_url(url: str, tmp_path: Path) -> None:
    image = tmp_path / "code.png"
    image.write_bytes(qr.qr_png(url, qr.DEFAULT_PNG_SIZE))
    assert zbar(image) == url


def test_the_longest_url_decodes(tmp_path: Path) -> None:
    assert len(LONGEST) == qr.MAX_URL_LENGTH
    image = tmp_path / "code.png"
    image.write_bytes(qr.qr_png(LONGEST, 1000))
    assert zbar(image) == LONGEST


@pytest.mark.parametrize("size", [qr.MIN_PNG_SIZE, 100, qr.DEFAULT_PNG_SIZE, 333, 1000, qr.MAX_PNG_SIZE])
@pytest.mark.parametrize("url", URLS)
def test_the_png_is_as_wide_as_whole_modules_allow(url: str, size: int) -> None:
    width, rows = png_rows(qr.qr_png(url, size))
    assert len(rows) == width
    across = modules(url)
    assert width % across == 0
    assert size - across < width <= size


def test_a_code_too_big_for_the_size_is_one_pixel_a_module() -> None:
    width, _ = png_rows(qr.qr_png(LONGEST, qr.MIN_PNG_SIZE))
    assert width == modules(LONGEST) > qr.MIN_PNG_SIZE


def test_the_png_is_dark_on_white_with_a_quiet_zone_of_four_modules() -> None:
    url = URLS[0]
    width, rows = png_rows(qr.qr_png(url, qr.DEFAULT_PNG_SIZE))
    scale = width // modules(url)
    border = 4 * scale
    for y, row in enumerate(rows):
        if y < border or y >= width - border:
            assert not any(row), f"row {y} is in the quiet zone"
        else:
            assert not any(row[:border]) and not any(row[-border:]), f"row {y}'s quiet zone"
    # The top left finder pattern's corner module starts right after the quiet zone.
    assert rows[border][border] and not rows[border - 1][border] and not rows[border][border - 1]


def test_the_default_size() -> None:
    assert qr.qr_png(URLS[0]) == qr.qr_png(URLS[0], qr.DEFAULT_PNG_SIZE)
    assert qr.MIN_PNG_SIZE <= qr.DEFAULT_PNG_SIZE <= qr.MAX_PNG_SIZE


@pytest.mark.parametrize("size", [0, -1, qr.MIN_PNG_SIZE - 1, qr.MAX_PNG_SIZE + 1, 10**9])
def test_an_out_of_range_size_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match=r"The PNG size must be from 64 to 2048 pixels, not -?\d+\."):
        qr.qr_png(URLS[0], size)


@pytest.mark.parametrize("size", [True, 320.0, "320", None])
def test_a_size_that_is_not_a_whole_number_is_refused(size: object) -> None:
    with pytest.raises(ValueError, match=r"whole number of pixels from 64 to 2048"):
        qr.qr_png(URLS[0], size)  # type: ignore[arg-type]


# --- SVG --------------------------------------------------------------------------------------------------


def test_the_svg_is_a_standalone_scalable_document() -> None:
    url = URLS[0]
    svg = qr.qr_svg(url)
    root = ET.fromstring(svg.decode("utf-8"))
    assert root.tag == f"{SVG_NS}svg"
    across = modules(url)
    assert root.get("viewBox") == f"0 0 {across} {across}"
    assert root.get("width") is None and root.get("height") is None
    background, code = list(root)
    assert background.get("fill") == "#fff" and background.get("d") == f"M0 0h{across}v{across}h-{across}z"
    assert code.get("stroke") == "#000"
    assert code.get("d", "").startswith("M4 4.5h7"), "the finder pattern starts after a 4-module quiet zone"


@pytest.mark.parametrize("url", URLS)
def test_the_svg_rendered_by_chromium_decodes_to_the_url(url: str, browser: object, tmp_path: Path) -> None:
    svg = qr.qr_svg(url)
    context = browser.new_context(viewport={"width": 600, "height": 600})  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        source = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
        # Only the page's box gives the image its size: 450 CSS pixels, not a whole number of any viewBox.
        page.set_content(f'<body style="margin:0;background:#fff"><img id="qr" src="{source}" '
                         'style="width:450px;height:450px;display:block"></body>')
        page.wait_for_function("document.getElementById('qr').complete")
        assert page.evaluate("document.getElementById('qr').naturalWidth") > 0, "Chromium did not draw the SVG"
        image = tmp_path / "svg.png"
        page.locator("#qr").screenshot(path=str(image))
    finally:
        context.close()
    assert zbar(image) == url


# --- what is refused --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "message"), [
    (LONGEST + "b", r"2049 characters long; a QR code is made for at most 2048\."),
    ("ftp://s.example.com/aB3xK9q", r"only for http or https URLs"),
    ("javascript:alert(1)", r"only for http or https URLs"),
    ("s.example.com/aB3xK9q", r"only for http or https URLs"),
    ("", r"only for http or https URLs"),
    ("https:///aB3xK9q", r"has no host"),
    ("https://", r"has no host"),
    ("https://[::1/x", r"could not be parsed"),
    ("https://s.example.com/a b", r"printable ASCII without spaces"),
    ("https://s.example.com/a\nb", r"printable ASCII without spaces"),
    ("https://s.example.com/短", r"printable ASCII without spaces"),
])
def test_a_bad_url_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        qr.qr_svg(url)
    with pytest.raises(ValueError, match=message):
        qr.qr_png(url, qr.DEFAULT_PNG_SIZE)


def test_http_is_drawn_too() -> None:
    assert qr.qr_svg("http://s.example.com/aB3xK9q").startswith(b"<svg ")


# --- level M, full QR, cached -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://a.co/x", *URLS])
def test_level_m_and_never_micro_qr(url: str) -> None:
    code = qr._code(url)
    assert code.error == "M" and not code.is_micro


def test_the_same_url_is_drawn_once() -> None:
    url = "https://s.example.com/cache01"
    first = qr.qr_png(url, 200)
    hits = qr._render.cache_info().hits
    assert qr.qr_png(url, 200) is first
    assert qr._render.cache_info().hits == hits + 1
    assert qr.qr_png(url, 300) is not first and qr.qr_svg(url) is qr.qr_svg(url)
    assert qr._render.cache_info().maxsize == qr.CACHE_SIZE
