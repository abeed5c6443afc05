"""router.serve.limits: the settings, the sliding window, and counting in the process (no shared store)."""

from __future__ import annotations

import asyncio

import pytest

from router.serve.config import Settings
from router.serve.limits import ClickLimits, Limit, parse_limit


def test_settings() -> None:
    assert parse_limit("X", "") is None
    assert parse_limit("X", "120/60s") == Limit(120, 60) == parse_limit("X", " 120 / 1m ")
    assert parse_limit("X", "1000/1h") == Limit(1000, 3600) and parse_limit("X", "5/10") == Limit(5, 10)
    for bad in ("120", "120/", "/60", "abc/60s", "120/60d", "0/60s", "5/0s", "5/25h"):
        with pytest.raises(ValueError, match="X"):
            parse_limit("X", bad)
    settings = Settings.from_env({"ROUTER_LIMIT_PER_ADDRESS": "120/1m", "ROUTER_LIMIT_PER_AD_LINK": "20/1m"})
    assert (settings.limit_per_address, settings.limit_per_ad_link) == (Limit(120, 60), Limit(20, 60))
    assert Settings.from_env({}).limit_per_address is None


def test_the_window_slides() -> None:
    """3 clicks per 10 s. The previous window counts for the part of it still inside the sliding one."""
    now = [1000.0]  # the start of a window
    limits = ClickLimits(Limit(3, 10), None, clock=lambda: now[0])

    def click() -> tuple[str, int] | None:
        return asyncio.run(limits.address_refusal("203.0.113.9"))

    assert [click() for _ in range(3)] == [None, None, None]
    refused = click()
    assert refused is not None and refused[0].startswith("Too many clicks from your address: the limit is 3")
    assert refused[1] == 11  # the rest of this window, rounded up
    assert asyncio.run(limits.address_refusal("198.51.100.7")) is None  # another address
    now[0] = 1012.0  # 2 s into the next window: the 3 let through weigh 0.8 of 3 = 2.4 (+1 this one: 3.4)
    assert click() is not None
    now[0] = 1019.5  # 9.5 s in: 0.05 of the previous 3 (the refused ones never counted), plus this one: 1.15
    assert click() is None
    assert limits.refused == {"address": 2}


def test_ad_links_are_limited_by_what_their_signature_covers() -> None:
    limits = ClickLimits(None, Limit(2, 60), clock=lambda: 500.0)

    def click(ad_link: str) -> tuple[str, int] | None:
        return asyncio.run(limits.ad_link_refusal(ad_link, "203.0.113.9"))

    assert click("unidesk|a1||https://item.taobao.com/item.htm?id=1") is None
    assert click("unidesk|a1||https://item.taobao.com/item.htm?id=1") is None
    refused = click("unidesk|a1||https://item.taobao.com/item.htm?id=1")
    assert refused is not None and "on this ad link from your address" in refused[0]
    assert click("unidesk|a2||https://item.taobao.com/item.htm?id=1") is None  # another ad
    assert asyncio.run(ClickLimits(None, None).address_refusal("203.0.113.9")) is None  # no limits: nothing
    assert not ClickLimits(None, None).active and limits.active
    assert all("item.taobao" not in key for table in limits._local.values() for key in table)  # under a digest
