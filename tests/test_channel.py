"""Channel inference and parameter forwarding, through read_click."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import pytest

from router.decision.click import read_click
from router.decision.signing import sign
from router.decision.types import Channel
from router.serve.config import Settings
from tests import uas
from tests.conftest import TEST_KEYS

ITEM = "https://item.taobao.com/item.htm?id=42"
AT = datetime(2026, 11, 21, 12, tzinfo=UTC)


def click(settings: Settings, path: str, **params: str):  # type: ignore[no-untyped-def]
    return read_click(path, urlencode(params, quote_via=quote), uas.WECHAT_IOS, at=AT, settings=settings)


@pytest.mark.parametrize(
    ("params", "channel"),
    [
        ({"from": "singlemessage"}, Channel.PRIVATE_CHAT),
        ({"from": "groupmessage"}, Channel.GROUP_CHAT),
        ({"from": "timeline"}, Channel.MOMENTS),
        ({"from": "somethingelse"}, Channel.UNKNOWN),
        ({}, Channel.UNKNOWN),
        ({"ch": "group_chat"}, Channel.GROUP_CHAT),
        ({"ch": "private_chat", "from": "groupmessage"}, Channel.GROUP_CHAT),
        ({"ch": "ad"}, Channel.UNKNOWN),
        ({"ch": "nonsense"}, Channel.UNKNOWN),
    ],
)
def test_go_channel(settings: Settings, params: dict[str, str], channel: Channel) -> None:
    """/go: from= wins over a stamped ch=, and ch=ad is never trusted."""
    assert click(settings, "/go", url=ITEM, **params).channel is channel


def test_unsigned_ch_ad_explains_why(settings: Settings) -> None:
    """The reason for ignoring ch=ad is in the context, for explain."""
    ctx = click(settings, "/go", url=ITEM, ch="ad")
    assert ctx.channel_reason == "ch=ad is ignored: the ad channel comes only from a verified /ad link"


def test_verified_ad_is_ad(settings: Settings) -> None:
    """A verified /ad link is channel ad with its fields trusted."""
    ctx = click(settings, "/ad", **sign({"url": ITEM, "src": "unidesk", "adv": "a1"}, TEST_KEYS))
    assert ctx.channel is Channel.AD
    assert ctx.ad is not None and ctx.ad.verified and ctx.ad.source == "unidesk"


def test_verified_ad_with_stamped_channel(settings: Settings) -> None:
    """A signer may stamp another channel into an ad link (ch is signed)."""
    ctx = click(settings, "/ad", **sign({"url": ITEM, "src": "kol", "adv": "a1", "ch": "moments"}, TEST_KEYS))
    assert ctx.channel is Channel.MOMENTS


def test_reshared_ad_link_takes_share_channel(settings: Settings) -> None:
    """An ad link re-shared into a group chat is a group chat click, not an ad click."""
    fields = sign({"url": ITEM, "src": "unidesk", "adv": "a1"}, TEST_KEYS)
    ctx = click(settings, "/ad", **fields, **{"from": "groupmessage"})
    assert ctx.channel is Channel.GROUP_CHAT
    assert "re-shared" in ctx.channel_reason


def test_bad_signature_is_unknown_even_with_from(settings: Settings) -> None:
    """An /ad link that fails verification is always unknown, never ad."""
    fields = sign({"url": ITEM, "src": "unidesk", "adv": "a1"}, TEST_KEYS) | {"adv": "a2"}
    ctx = click(settings, "/ad", **fields, **{"from": "singlemessage"})
    assert ctx.channel is Channel.UNKNOWN
    assert ctx.ad is not None and not ctx.ad.verified
    assert ctx.channel_reason.startswith("ad link not trusted: signature does not match")


def test_forwarding_keeps_click_ids_and_drops_wechat_params(settings: Settings) -> None:
    """gdt_vid, qz_gdt, weixinadinfo, click_id pass through unchanged; from/isappinstalled don't."""
    ctx = click(settings, "/go", url=ITEM, gdt_vid="wx0a", qz_gdt="q1", weixinadinfo="123.wx0a.0.1",
                click_id="c-7", isappinstalled="0", utm_x="y", **{"from": "timeline"})
    assert ctx.forward == (("gdt_vid", "wx0a"), ("qz_gdt", "q1"), ("weixinadinfo", "123.wx0a.0.1"), ("click_id", "c-7"))
