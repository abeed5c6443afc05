"""The WHATWG URL conformance inputs (web-platform-tests' urltestdata.json), moved onto Taobao hosts.

Every input of the WPT file (tests/data/wpt_url_inputs.json names its source) is given to the router as
a click's link three ways: as it is (its hosts are nobody's: the router must refuse it), with each host
a WHATWG parser finds in it written as `item.taobao.com`, and as `detail.tmall.com` with `?id=123456`
put where its query is. The judge is ada-url, a WHATWG parser, reading the same text as a link on one of
the router's own https pages (so `//host/…` is https, and a path alone leads nowhere the router would
send anyone). Whenever the router accepts an input as one link, a browser must read it to the same
host and the same item, shop or page — never another.
"""

from __future__ import annotations

import json
from pathlib import Path

import ada_url
import pytest

from router.decision.links import LinkError, parse_link
from router.decision.types import Link

DATA = json.loads((Path(__file__).parent / "data" / "wpt_url_inputs.json").read_text(encoding="utf-8"))
INPUTS: list[str] = DATA["inputs"]
# WPT's inputs are read against this base; it finds the host text that an input names, if any.
WPT_BASE = "http://example.org/foo/bar"
SPACES = frozenset(" \u00a0\u3000\f\v")


# A link is opened from a page of the router's (https): a scheme-relative `//host/…` is https there too.
PAGE = "https://router.invalid/go"


def browser(url: str) -> ada_url.URL | None:
    try:
        return ada_url.URL(url, base=PAGE)
    except ValueError:
        return None


def router(url: str) -> Link | None:
    try:
        return parse_link(url)
    except LinkError:
        return None


def identity(link: Link) -> tuple[object, ...]:
    page = link.web_url.partition("?")[0] if link.web_url else None
    return (link.kind, link.item_id, link.shop_id, None if link.item_id or link.shop_id else page)


def on_taobao(raw: str, host: str, query: str = "") -> str | None:
    """`raw` with the host text a WHATWG parser reads in it replaced by `host` (and the query by `query`)."""
    try:
        parsed = ada_url.URL(raw, base=WPT_BASE)
    except ValueError:
        return None
    name = parsed.hostname
    if not name or name == "example.org" or name not in raw:
        return None
    moved = raw.replace(name, host)
    if query:
        moved = moved.replace(parsed.search, query) if parsed.search and parsed.search in moved else None
    return moved


def variants() -> list[pytest.param]:
    cases: dict[str, str] = {}
    for index, raw in enumerate(INPUTS):
        cases.setdefault(raw, f"{index}-as-is")
        for suffix, moved in (("item", on_taobao(raw, "item.taobao.com")),
                              ("tmall-id", on_taobao(raw, "detail.tmall.com", "?id=123456"))):
            if moved is not None:
                cases.setdefault(moved, f"{index}-{suffix}")
    return [pytest.param(text, id=name) for text, name in cases.items()]


VARIANTS = variants()


def test_the_data_is_whole() -> None:
    """All of the WPT file's distinct inputs are here, and the Taobao variants cover a good share of them."""
    assert len(INPUTS) >= 800
    moved = [param for param in VARIANTS if not param.id.endswith("-as-is")]
    assert len(moved) >= 200


@pytest.mark.parametrize("text", VARIANTS)
def test_never_another_host_or_item_than_a_browser_reads(text: str) -> None:
    """An accepted link is read by a browser to the same host and the same item, shop or page."""
    link = router(text)
    if link is None or link.web_url is None:
        return  # refused (or a share code with no link): nothing is opened
    inner = text.strip()
    read = browser(inner)
    if any(char in SPACES for char in inner) or (not inner.isascii() and " " in inner):
        # A share text: the router takes the link out of the words around it (a space ends it). Read
        # whole, a browser may put the words into the path or query, but never into the host: the host
        # must be the one a browser reads.
        assert read is not None and read.hostname.rstrip(".").lower() == browser(link.web_url).hostname, (
            f"{text!r}: router {link.web_url}, browser {read.href if read else None}")
        return
    assert read is not None, f"the router accepted {text!r}, which a browser cannot open"
    assert read.protocol in ("http:", "https:"), text
    ours = browser(link.web_url)
    assert ours is not None
    assert ours.hostname == read.hostname.rstrip(".").lower(), f"{text!r}: router {link.web_url}, browser {read.href}"
    theirs = router(read.href)
    assert theirs is not None and identity(theirs) == identity(link), (
        f"{text!r}: router reads {link.web_url}, a browser opens {read.href}"
    )
