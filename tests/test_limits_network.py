"""router.serve.limits by client network: IPv6 clients counted per /64, ad links per link and client, check
then count (a refused click counts for nobody), a click given back, the beacons' bounds; in the process, on
a real server behind a trusted proxy, and with a real redis-server shared by two routers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from router.serve import limits as limits_module
from router.serve.config import (
    DEFAULT_BEACONS_PER_ADDRESS,
    DEFAULT_BEACONS_PER_VISITOR,
    Settings,
    trusted_proxies_warning,
)
from router.serve.limits import ClickLimits, Limit, network_of
from router.serve.shared import SharedStore
from tests import uas
from tests.servers import Server
from tests.test_shared import ITEM, KEYS_TEXT, WECHAT, RedisServer, ad_query, is_ad_answer, redis_binary, router

ONE_64 = [f"2001:db8:1:2::{n}" for n in range(1, 9)]
SAFARI = {"user-agent": uas.SAFARI_IOS}
GO = f"/go?url={quote(ITEM, safe='')}"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- networks --------------------------------------------------------------------------------------------


def test_network_of() -> None:
    assert network_of("203.0.113.9") == "203.0.113.9"
    assert network_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64"
    assert network_of("2001:DB8:1:2::1") == network_of("2001:db8:1:2:0:0:0:2") == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:2::1", 48) == "2001:db8:1::/48"
    assert network_of("2001:db8:1:2::1", 128) == "2001:db8:1:2::1/128"
    assert network_of("::ffff:192.0.2.1") == network_of("::ffff:c000:201") == "192.0.2.1"  # IPv4-mapped: IPv4
    for garbage in ("", "unix-socket-peer", "999.1.1.1", "2001:db8::1::2"):
        assert network_of(garbage) == garbage


def test_the_cache_of_networks_is_bounded() -> None:
    for n in range(10_000):
        network_of(f"2001:db8:{n:x}::1")
    assert 0 < len(limits_module._networks) <= limits_module._NETWORKS_KEPT
    network_of("x" * 10_000)  # no address: given back, never kept
    assert all(len(address) <= limits_module._LONGEST_ADDRESS for address, _ in limits_module._networks)
    assert network_of("2001:db8:1:2::7") == "2001:db8:1:2::/64"  # still right after being emptied


def test_eight_addresses_of_one_64_share_a_limit_and_two_64s_do_not() -> None:
    limits = ClickLimits(Limit(5, 60), None, clock=Clock(6000.0))
    answers = [asyncio.run(limits.address_refusal(address)) for address in ONE_64 for _ in range(5)]
    assert [answer is None for answer in answers] == [True] * 5 + [False] * 35
    assert asyncio.run(limits.address_refusal("2001:db8:1:3::1")) is None  # the next /64
    assert asyncio.run(limits.address_refusal("198.51.100.7")) is None  # IPv4: per address
    assert asyncio.run(limits.address_refusal("198.51.100.8")) is None
    wide = ClickLimits(Limit(5, 60), None, clock=Clock(6000.0), ipv6_prefix=48)
    assert [asyncio.run(wide.address_refusal(f"2001:db8:1:{n}::1")) is None for n in range(7)] == [True] * 5 + [
        False] * 2
    with pytest.raises(ValueError, match="IPv6 prefix"):
        ClickLimits(Limit(5, 60), None, ipv6_prefix=129)


def test_refused_clicks_are_not_counted() -> None:
    """A client hammering ten times a second for five minutes gets through at about the limit's rate: 5 at
    once, then 4 to 5 a minute (the two-window estimate errs towards refusing), never more than 5 in any
    60 s; not 5 in all, as when every refused click counted too."""
    clock = Clock(6000.0)  # a window's start
    limits = ClickLimits(Limit(5, 60), None, clock=clock)
    through: list[float] = []
    for tick in range(3000):
        clock.now = 6000.0 + tick / 10
        if asyncio.run(limits.address_refusal("203.0.113.9")) is None:
            through.append(clock.now)
    assert 5 + 4 * 4 <= len(through) <= 5 * 5, through
    assert max(sum(first <= at < first + 60 for at in through) for first in through) == 5
    assert limits.refused["address"] == 3000 - len(through)


def test_an_ad_link_exhausted_from_one_address_still_answers_another() -> None:
    limits = ClickLimits(None, Limit(2, 60), clock=Clock(500.0))

    def click(address: str) -> tuple[str, int] | None:
        return asyncio.run(limits.ad_link_refusal("unidesk\na1\n\nhttps://item.taobao.com/item.htm?id=1", address))

    assert [click("2001:db8:1:2::1"), click("2001:db8:1:2::2")] == [None, None]
    refused = click("2001:db8:1:2::3")  # the same /64
    assert refused is not None
    assert refused[0].startswith("Too many clicks on this ad link from your address: the limit is 2 clicks per 60 s")
    assert click("203.0.113.9") is None and click("2001:db8:1:3::1") is None  # everyone else: their own share
    assert limits.refused == {"ad-link": 1}


def test_release_address_gives_one_click_back() -> None:
    clock = Clock(6000.0)
    limits = ClickLimits(Limit(2, 60), None, clock=clock)

    def click() -> bool:
        return asyncio.run(limits.address_refusal("203.0.113.9")) is None

    asyncio.run(limits.release_address("203.0.113.9"))  # nothing counted: nothing to give back, never below 0
    assert [click(), click(), click()] == [True, True, False]
    asyncio.run(limits.release_address("203.0.113.9"))
    assert [click(), click()] == [True, False]
    clock.now = 6060.0  # the window turned: a count made in the previous one is given back there
    asyncio.run(limits.release_address("203.0.113.9"))
    assert [click(), click()] == [True, False]  # the previous window's 1 left, weighing in full, and this one
    asyncio.run(ClickLimits(None, Limit(1, 60)).release_address("203.0.113.9"))  # no address limit: nothing


def test_beacons_are_bounded_per_address_and_per_visitor() -> None:
    limits = ClickLimits(None, None, clock=Clock(500.0), beacons_per_address=Limit(3, 60),
                         beacons_per_visitor=Limit(2, 60))
    assert limits.beacons_active and not limits.active

    def beacon(address: str, visitor: str) -> str | None:
        return asyncio.run(limits.beacon_refusal(address, visitor))

    assert [beacon("2001:db8:1:2::1", "v1") for _ in range(3)] == [None, None, "visitor"]
    assert beacon("2001:db8:1:2::2", "v2") is None  # the refused one took no place of the /64's
    assert beacon("2001:db8:1:2::3", "v3") == "address"
    assert beacon("2001:db8:1:3::1", "v3") is None  # another /64
    assert [beacon("198.51.100.7", "") for _ in range(4)] == [None, None, None, "address"]  # no visitor: address only
    assert [beacon("", "v4") for _ in range(3)] == [None, None, "visitor"]  # no address: visitor only
    assert limits.refused == {"beacon-visitor": 2, "beacon-address": 2}
    off = ClickLimits(None, None)
    assert not off.beacons_active and asyncio.run(off.beacon_refusal("203.0.113.9", "v1")) is None


# --- settings --------------------------------------------------------------------------------------------


def test_settings() -> None:
    default = Settings.from_env({})
    assert default.limit_ipv6_prefix == 64
    assert (default.limit_beacons_per_address, default.limit_beacons_per_visitor) == (
        DEFAULT_BEACONS_PER_ADDRESS, DEFAULT_BEACONS_PER_VISITOR) == (Limit(600, 3600), Limit(60, 3600))
    given = Settings.from_env({"ROUTER_LIMIT_IPV6_PREFIX": "56", "ROUTER_LIMIT_BEACONS_PER_ADDRESS": "100/1m",
                               "ROUTER_LIMIT_BEACONS_PER_VISITOR": "off"})
    assert (given.limit_ipv6_prefix, given.limit_beacons_per_address, given.limit_beacons_per_visitor) == (
        56, Limit(100, 60), None)
    assert Settings.from_env({"ROUTER_LIMIT_BEACONS_PER_ADDRESS": " "}).limit_beacons_per_address is None
    for name, bad in (("ROUTER_LIMIT_IPV6_PREFIX", "31"), ("ROUTER_LIMIT_IPV6_PREFIX", "129"),
                      ("ROUTER_LIMIT_IPV6_PREFIX", "x"), ("ROUTER_LIMIT_BEACONS_PER_VISITOR", "lots")):
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: bad})


def test_trusting_every_proxy_is_warned_of() -> None:
    everyone = Settings.from_env({"ROUTER_TRUSTED_PROXIES": "*"}).trusted_proxies
    warning = trusted_proxies_warning(everyone)
    assert warning is not None and "X-Forwarded-For" in warning and "any client can pick the address" in warning
    assert "load balancer that overwrites the header" in warning and warning.count(". ") == 0
    assert trusted_proxies_warning(Settings.from_env({"ROUTER_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"})
                                   .trusted_proxies) is None
    assert trusted_proxies_warning(()) is None


# --- a real server behind a trusted proxy ----------------------------------------------------------------


def test_a_real_server_counts_forwarded_ipv6_clients_by_64_and_ad_links_per_client() -> None:
    server = Server(env={"ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_TRUSTED_PROXIES": "127.0.0.1",
                         "ROUTER_LIMIT_PER_ADDRESS": "5/60s", "ROUTER_LIMIT_PER_AD_LINK": "2/60s"}).wait_ready()
    try:
        with httpx.Client(base_url=server.base) as client:

            def go(forwarded: str) -> int:
                return client.get(GO, headers={**SAFARI, "x-forwarded-for": forwarded}).status_code

            def ad(forwarded: str, click_id: str) -> httpx.Response:
                return client.get(f"/ad?{ad_query(click_id)}", headers={**WECHAT, "x-forwarded-for": forwarded})

            assert [go(address) for address in ONE_64 for _ in range(5)] == [302] * 5 + [429] * 35
            assert go("2001:db8:1:3::1") == 302  # another /64

            # The ad link's limit, exhausted from one client, still answers another; the click it refused
            # is given back to that client's address limit (2 ad clicks + 3 others = its 5).
            answers = [ad("2001:db8:2:1::1", f"wx-net-{n}") for n in range(3)]
            assert [is_ad_answer(answer) for answer in answers[:2]] == [True, True]
            assert answers[2].status_code == 429
            assert "Too many clicks on this ad link from your address" in answers[2].text
            assert is_ad_answer(ad("2001:db8:2:2::1", "wx-net-other"))
            assert [go("2001:db8:2:1::9") for _ in range(4)] == [302, 302, 302, 429]
    finally:
        server.stop()


# --- with a real redis-server ----------------------------------------------------------------------------


@pytest.fixture()
def store_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary(), tmp_path)
    try:
        yield server
    finally:
        server.stop()


def _counted(url: str) -> int:
    """What the store's click-limit counters hold, together."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return sum(int(client.get(key) or 0) for key in client.scan_iter("adlink:limit:*"))
    finally:
        client.close()


def test_the_store_counts_only_what_it_lets_through_across_the_fleet(store_server: RedisServer) -> None:
    """Two processes' limits, one store, one clock: 5 of 20 clicks through, 5 counted; half a window later
    the 5 weigh 2.5, so 2 more get through (had the 15 refused counted, none would)."""
    clock = Clock(6000.0)
    stores = [SharedStore(store_server.url, timeout=1.0) for _ in range(2)]
    fleet = [ClickLimits(Limit(5, 60), None, store, clock) for store in stores]

    async def clicks(count: int) -> list[bool]:
        return [await fleet[n % 2].address_refusal("2001:db8:1:2::5") is None for n in range(count)]

    async def run() -> None:
        try:
            assert await clicks(20) == [True] * 5 + [False] * 15
            assert _counted(store_server.url) == 5
            clock.now = 6090.0
            assert await clicks(6) == [True, True, False, False, False, False]
            await fleet[1].release_address("2001:db8:1:2::77")  # the same /64, given back on the other process
            assert await clicks(2) == [True, False]
            assert _counted(store_server.url) == 5 + 2
        finally:
            for store in stores:
                await store.aclose()

    asyncio.run(run())
    assert all(not store.fallbacks for store in stores)  # the store answered every call
    assert sum(store.calls.get("count", 0) for store in stores) == 28
    assert sum(store.calls.get("uncount", 0) for store in stores) == 1
    assert all(not limits._local for limits in fleet)  # nothing counted in a process


def test_two_routers_count_only_the_clicks_they_let_through(store_server: RedisServer) -> None:
    env = {"ROUTER_LIMIT_PER_ADDRESS": "5/60s"}
    a, b = router(store_server.url, **env), router(store_server.url, **env)
    try:
        statuses = [httpx.get(f"{base}{GO}", headers=SAFARI).status_code for base in (a.base, b.base) * 6]
        assert statuses == [302] * 5 + [429] * 7
        assert _counted(store_server.url) == 5
    finally:
        a.stop()
        b.stop()
