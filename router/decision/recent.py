"""Recent: a bounded store that keeps what is used and forgets what is not, for the per-click memos.

Emptying a store when it is full is cheap but wrong for click traffic: a day's clicks are a few popular
links and kinds of client plus a long tail seen once, and when the tail fills the store the popular
entries go with it, again and again (a working set just above the limit misses most of the time).

So a store that keeps what is used, in the manner of an LRU: the CLOCK (second chance) approximation of
it. A hit only notes the key as used (a set.add: no reordering, about a third of an OrderedDict's
move_to_end round trip on the path every click takes several times); when a new entry pushes the store
past its limit, the oldest entries are looked at in turn: one used since it was last looked at goes to
the young end with its mark cleared, the first one not used is forgotten. A working set up to `limit`
entries, each used between two passes, fits whatever the tail between its uses. Not locked: under the
GIL the worst a race does is lose one entry or one mark.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["Recent"]


class Recent(Generic[K, V]):
    __slots__ = ("_kept", "_used", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a Recent store holds at least 1 entry")
        self.limit = limit
        self._kept: OrderedDict[K, V] = OrderedDict()
        self._used: set[K] = set()  # keys got since they were last looked at for eviction

    def get(self, key: K) -> V | None:
        value = self._kept.get(key)
        if value is not None:
            self._used.add(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep `value` (never None: None is what get answers for a key not held)."""
        kept = self._kept
        if key in kept:
            self._used.add(key)
        kept[key] = value
        if len(kept) > self.limit:
            self._evict()

    def _evict(self) -> None:
        kept, used = self._kept, self._used
        while len(kept) > self.limit:
            oldest = next(iter(kept))  # an OrderedDict's first key: O(1), its own linked list
            if oldest in used:
                used.discard(oldest)  # a second chance: to the young end, unmarked
                kept.move_to_end(oldest)
            else:
                del kept[oldest]

    def pop(self, key: K) -> V | None:
        """Forget `key`; what was kept for it, or None."""
        self._used.discard(key)
        return self._kept.pop(key, None)

    def values(self) -> list[V]:
        return list(self._kept.values())

    def clear(self) -> None:
        self._kept = OrderedDict()
        self._used = set()

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, key: object) -> bool:
        return key in self._kept
