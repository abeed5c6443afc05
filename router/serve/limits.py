"""Click limits: how fast one client address, or one signed ad link, may be clicked (off by default).

ROUTER_LIMIT_PER_ADDRESS and ROUTER_LIMIT_PER_AD_LINK are `COUNT/WINDOW` (`120/60s`, `20/1m`, `1000/1h`).
A click past a limit gets a 429 page that says which limit and when to try again (Retry-After), and an
access line; it is not decided, so it is not a click line (the rules never saw it).

The window slides: the count is this fixed window's plus the previous one's, weighted by how much of it
still lies within the sliding window (the two-window approximation: two counters a key, no list of
timestamps). Every click is counted, refused ones too, so a client that keeps hammering stays refused.

With a shared store (router.serve.shared) the counts are the fleet's: one INCR, EXPIRE and GET per click
and limit, within the store's deadline. Without one, or while it can't answer, each process counts its
own (a fleet of N then lets up to N times the limit through): the limit still holds, per process.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.serve.shared import SharedStore

__all__ = ["ClickLimits", "Limit", "parse_limit"]

_LIMIT_RE = re.compile(r"\s*(\d{1,9})\s*/\s*(\d{1,6})\s*(s|m|h)?\s*")
_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600}
_LOCAL_KEYS = 100_000  # window counters a process keeps at most when counting on its own


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    window: int  # seconds

    def __str__(self) -> str:
        return f"{self.count} clicks per {self.window} s"


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
                 clock: Callable[[], float] = time.time) -> None:
        self.per_address = per_address
        self.per_ad_link = per_ad_link
        self.store = store
        self._clock = clock
        self._local: dict[str, int] = {}  # "name:key:window" -> clicks, when counting here
        self.refused: dict[str, int] = {}  # clicks refused, by limit (router.serve.metrics)

    @property
    def active(self) -> bool:
        return self.per_address is not None or self.per_ad_link is not None

    async def address_refusal(self, address: str) -> tuple[str, int] | None:
        """Why a click from `address` is refused (a sentence, and the seconds to wait), or None. Checked
        before the click is read."""
        if self.per_address is None or not address:
            return None
        return await self._check("address", address, self.per_address, "from your address")

    async def ad_link_refusal(self, ad_link: str) -> tuple[str, int] | None:
        """The same for a verified ad link, named by what its signature covers (`ad_link`): checked after
        the signature, so a link spelled another way (an encoded character) is still the same link, and
        made-up signatures make no counters."""
        if self.per_ad_link is None:
            return None
        return await self._check("ad-link", ad_link, self.per_ad_link, "on this ad link")

    async def _check(self, name: str, key: str, limit: Limit, what: str) -> tuple[str, int] | None:
        estimate, wait = await self._count(name, _digest(key), limit)
        if estimate > limit.count:
            self.refused[name] = self.refused.get(name, 0) + 1
            return f"Too many clicks {what}: the limit is {limit}. Try again in {wait} s.", wait
        return None

    async def _count(self, name: str, key: str, limit: Limit) -> tuple[float, int]:
        """This click counted; the sliding window's estimate with it, and the seconds until it would pass."""
        now = self._clock()
        window = int(now // limit.window)
        into = (now - window * limit.window) / limit.window  # how far into the current window, 0..1
        current_key, previous_key = f"limit:{name}:{key}:{window}", f"limit:{name}:{key}:{window - 1}"
        counts = None
        if self.store is not None:
            counts = await self.store.count_in_window(current_key, previous_key, limit.window * 2)
        if counts is None:  # no store, or it can't say: this process counts
            counts = self._count_here(current_key, previous_key, window)
        current, previous = counts
        estimate = previous * (1 - into) + current
        wait = max(1, int(limit.window * (1 - into)) + 1)
        return estimate, wait

    def _count_here(self, current_key: str, previous_key: str, window: int) -> tuple[int, int]:
        local = self._local
        if len(local) >= _LOCAL_KEYS:  # bounded: drop what is older than the previous window
            for stale in [k for k in local if int(k.rsplit(":", 1)[1]) < window - 1]:
                del local[stale]
            if len(local) >= _LOCAL_KEYS:
                local.clear()
        current = local.get(current_key, 0) + 1
        local[current_key] = current
        return current, local.get(previous_key, 0)
