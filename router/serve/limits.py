"""Click limits: how fast one client, or one client on one signed ad link, may click (off by default); and
bounds on outcome beacons per client and per visitor (on by default, generous).

ROUTER_LIMIT_PER_ADDRESS and ROUTER_LIMIT_PER_AD_LINK are `COUNT/WINDOW` (`120/60s`, `20/1m`, `1000/1h`).
A click past a limit gets a 429 page that says which limit and when to try again (Retry-After), and an
access line; it is not decided, so it is not a click line (the rules never saw it).

A client is its network (`network_of`): an IPv4 address, or the IPv6 network of ROUTER_LIMIT_IPV6_PREFIX
bits (a /64 by default: one customer's allocation, from which a client takes as many addresses as it
likes). An ad link's limit is counted per ad link and client: one client can use up its own share of an
ad, never everyone's.

The window slides: the count is this fixed window's plus the previous one's, weighted by how much of it
still lies within the sliding window (the two-window approximation: two counters a key, no list of
timestamps). Check, then count: a click is counted only when the limit lets it through, so refused clicks
cost nobody anything, and a client that keeps hammering gets through at the limit's rate, no faster. A
click one limit let through and a later one refused is given back (`release_address`).

With a shared store (router.serve.shared) the counts are the fleet's: one script per click and limit
reads both windows and counts only what it lets through, atomically, within the store's deadline.
Without one, or while it can't answer, each process counts its own (a fleet of N then lets up to N times
the limit through): the limit still holds, per process.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.serve.shared import SharedStore

__all__ = ["ClickLimits", "Limit", "network_of", "parse_limit"]

_LIMIT_RE = re.compile(r"\s*(\d{1,9})\s*/\s*(\d{1,6})\s*(s|m|h)?\s*")
_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600}
_LOCAL_KEYS = 100_000  # window counters a process keeps at most per limit when counting on its own
# network_of runs on every click while a limit is on: the clients of the last few thousand clicks are
# remembered rather than parsed again. Text longer than any address (45 characters, and a zone) is not
# kept, so the cache stays small whatever a trusted proxy forwards.
_NETWORKS_KEPT = 4096
_LONGEST_ADDRESS = 64
_networks: dict[tuple[str, int], str] = {}


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    window: int  # seconds

    def __str__(self) -> str:
        return f"{self.count} clicks per {self.window} s"


def network_of(address: str, ipv6_prefix: int = 64) -> str:
    """What a limit counts a client address by: an IPv4 address as it is (also written IPv4-mapped,
    `::ffff:192.0.2.1`), an IPv6 address as its network of `ipv6_prefix` bits (`2001:db8:1:2::/64`), and
    anything else (a unix socket's peer, "") as given."""
    key = (address, ipv6_prefix)
    found = _networks.get(key)
    if found is not None:
        return found
    network = _network(address, ipv6_prefix)
    if len(address) <= _LONGEST_ADDRESS:
        if len(_networks) >= _NETWORKS_KEPT:
            _networks.clear()
        _networks[key] = network
    return network


def _network(address: str, ipv6_prefix: int) -> str:
    if not 0 <= ipv6_prefix <= 128:
        raise ValueError(f"an IPv6 prefix is 0 to 128 bits, got {ipv6_prefix}")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    if ip.ipv4_mapped is not None:  # a dual-stack socket's IPv4 client
        return str(ip.ipv4_mapped)
    host_bits = 128 - ipv6_prefix
    return f"{ipaddress.IPv6Address(int(ip) >> host_bits << host_bits)}/{ipv6_prefix}"


def _digest(text: str) -> str:
    """A key's fixed-size name: what is counted (an address, an ad link) is not written out in the store."""
    return base64.urlsafe_b64encode(hashlib.blake2b(text.encode(), digest_size=12).digest()).decode()


def parse_limit(name: str, text: str) -> Limit | None:
    """`COUNT/WINDOW` (window in s, m or h; seconds without a unit) or empty for no limit; ValueError else."""
    if not text.strip():
        return None
    match = _LIMIT_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{name} must be COUNT/WINDOW such as 120/60s, 20/1m or 1000/1h, got {text.strip()!r}")
    count, window = int(match.group(1)), int(match.group(2)) * _UNITS[match.group(3)]
    if count < 1 or not 1 <= window <= 86_400:
        raise ValueError(f"{name} needs at least 1 click and a window from 1 s to 1 day, got {text.strip()!r}")
    return Limit(count, window)


class ClickLimits:
    def __init__(self, per_address: Limit | None, per_ad_link: Limit | None, store: SharedStore | None = None,
                 clock: Callable[[], float] = time.time, *, ipv6_prefix: int = 64,
                 beacons_per_address: Limit | None = None, beacons_per_visitor: Limit | None = None) -> None:
        if not 0 <= ipv6_prefix <= 128:
            raise ValueError(f"an IPv6 prefix is 0 to 128 bits, got {ipv6_prefix}")
        self.per_address = per_address
        self.per_ad_link = per_ad_link
        self.beacons_per_address = beacons_per_address
        self.beacons_per_visitor = beacons_per_visitor
        self.ipv6_prefix = ipv6_prefix
        self.store = store
        self._clock = clock
        # When counting here: per limit (a flood of one, say visitors' beacons, never evicts another's counts),
        # "limit:{name:key}:window" -> counted.
        self._local: dict[str, dict[str, int]] = {}
        # Refused, by limit: address, ad-link (clicks), beacon-address, beacon-visitor (for tests and debugging).
        self.refused: dict[str, int] = {}

    @property
    def active(self) -> bool:
        """Whether a click limit is on (the beacons' bounds are `beacons_active`)."""
        return self.per_address is not None or self.per_ad_link is not None

    @property
    def beacons_active(self) -> bool:
        return self.beacons_per_address is not None or self.beacons_per_visitor is not None

    async def address_refusal(self, address: str) -> tuple[str, int] | None:
        """Why a click from `address` is refused (a sentence, and the seconds to wait), or None: let
        through, and counted. Checked before the click is read."""
        limit = self.per_address
        if limit is None or not address:
            return None
        return await self._check("address", network_of(address, self.ipv6_prefix), limit, "from your address")

    async def release_address(self, address: str) -> None:
        """Give back the count of a click `address_refusal` let through and a later limit refused."""
        limit = self.per_address
        if limit is not None and address:
            await self._release("address", network_of(address, self.ipv6_prefix), limit)

    async def ad_link_refusal(self, ad_link: str, address: str) -> tuple[str, int] | None:
        """The same for a verified ad link clicked from `address`, the link named by what its signature
        covers (`ad_link`): checked after the signature, so a link spelled another way (an encoded
        character) is still the same link, and made-up signatures make no counters. Counted per link and
        client network, so one client exhausts its own share only."""
        limit = self.per_ad_link
        if limit is None:
            return None
        key = f"{ad_link}\n{network_of(address, self.ipv6_prefix)}"
        return await self._check("ad-link", key, limit, "on this ad link from your address")

    async def beacon_refusal(self, address: str, visitor: str) -> str | None:
        """None when an outcome beacon from `address` and `visitor` is let through (and counted); else the
        bound it would exceed, "address" or "visitor". An empty address or visitor is not counted by it."""
        per_address, per_visitor = self.beacons_per_address, self.beacons_per_visitor
        network = network_of(address, self.ipv6_prefix) if per_address is not None and address else ""
        if per_address is not None and network:
            counted, _ = await self._admit("beacon-address", network, per_address)
            if not counted:
                self.refused["beacon-address"] = self.refused.get("beacon-address", 0) + 1
                return "address"
        if per_visitor is not None and visitor:
            counted, _ = await self._admit("beacon-visitor", visitor, per_visitor)
            if not counted:
                if per_address is not None and network:  # refused: it counts for neither
                    await self._release("beacon-address", network, per_address)
                self.refused["beacon-visitor"] = self.refused.get("beacon-visitor", 0) + 1
                return "visitor"
        return None

    async def _check(self, name: str, key: str, limit: Limit, what: str) -> tuple[str, int] | None:
        counted, wait = await self._admit(name, key, limit)
        if counted:
            return None
        self.refused[name] = self.refused.get(name, 0) + 1
        return f"Too many clicks {what}: the limit is {limit}. Try again in {wait} s.", wait

    def _window(self, name: str, key: str, limit: Limit) -> tuple[str, str, int, float]:
        """The current and previous windows' keys, the current window, and the weight of the previous one
        (the part of it still inside the sliding window, 1..0)."""
        now = self._clock()
        window = int(now // limit.window)
        weight = 1 - (now - window * limit.window) / limit.window
        # Both keys share a hash tag: a store that shards keys (a cluster, a proxy) runs the script on one node.
        stem = f"limit:{{{name}:{_digest(key)}}}:"
        return f"{stem}{window}", f"{stem}{window - 1}", window, weight

    async def _admit(self, name: str, key: str, limit: Limit) -> tuple[bool, int]:
        """Whether one more within the sliding window stays within `limit` (then it is counted), and the
        seconds until one would be let through."""
        current_key, previous_key, window, weight = self._window(name, key, limit)
        answer = None
        if self.store is not None:
            answer = await self.store.count_within(current_key, previous_key, weight, limit.count, limit.window * 2)
        if answer is None:  # no store, or it can't say: this process counts
            answer = self._admit_here(self._local.setdefault(name, {}), current_key, previous_key, window, weight,
                                      limit.count)
        return answer[0], max(1, int(limit.window * weight) + 1)

    @staticmethod
    def _admit_here(local: dict[str, int], current_key: str, previous_key: str, window: int, weight: float,
                    count: int) -> tuple[bool, int, int]:
        current, previous = local.get(current_key, 0), local.get(previous_key, 0)
        if previous * weight + current + 1 > count:
            return False, current, previous
        if current == 0 and len(local) >= _LOCAL_KEYS:  # bounded: drop what is older than the previous window
            for stale in [k for k in local if int(k.rsplit(":", 1)[1]) < window - 1]:
                del local[stale]
            if len(local) >= _LOCAL_KEYS:  # a flood of live keys: the oldest quarter goes, never all of them
                for oldest in list(local)[:_LOCAL_KEYS // 4]:
                    del local[oldest]
        local[current_key] = current + 1
        return True, current + 1, previous

    async def _release(self, name: str, key: str, limit: Limit) -> None:
        current_key, previous_key, _, _ = self._window(name, key, limit)
        released = None
        if self.store is not None:
            released = await self.store.uncount(current_key, previous_key, limit.window * 2)
        if released is None:
            # The count was made in this window, or, when it has just turned, in the previous one.
            local = self._local.get(name, {})
            for stored in (current_key, previous_key):
                if local.get(stored, 0) > 0:
                    local[stored] -= 1
                    return
