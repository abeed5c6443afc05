"""Recent: a bounded store that keeps what is used and forgets what is not, for the per-click memos.

Emptying a store when it is full is cheap but wrong for click traffic: a day's clicks are a few popular
links and kinds of client plus a long tail seen once, and when the tail fills the store the popular
entries go with it, again and again (a working set just above the limit misses most of the time).

So a least-recently-used store: a hit moves its entry to the young end (an OrderedDict's move_to_end, a
C call), a new entry past the limit pushes out the one used longest ago. A working set up to `limit`
entries fits whatever the tail between its uses. Not locked: under the GIL the worst a race does is
lose one entry.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["Recent"]


class Recent(Generic[K, V]):
    __slots__ = ("_kept", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a Recent store holds at least 1 entry")
        self.limit = limit
        self._kept: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._kept.get(key)
        if value is not None:
            try:  # noqa: SIM105  (suppress() is a context manager: several times the cost on this path)
                self._kept.move_to_end(key)
            except KeyError:  # removed by another thread between the two calls
                pass
        return value

    def put(self, key: K, value: V) -> None:
        """Keep `value` (never None: None is what get answers for a key not held)."""
        kept = self._kept
        kept[key] = value
        kept.move_to_end(key)
        if len(kept) > self.limit:
            kept.popitem(last=False)

    def clear(self) -> None:
        self._kept = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, key: object) -> bool:
        return key in self._kept
