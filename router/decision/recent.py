"""Recent: a bounded store that keeps what is used and forgets what is not, for the per-click memos.

Emptying a store when it is full is cheap but wrong for click traffic: a day's clicks are a few popular
links and kinds of client plus a long tail seen once, and when the tail fills the store the popular
entries go with it, again and again (a working set just above the limit misses most of the time). An
exact LRU moves an entry on every hit, which costs more than the lookups it saves here.

So two generations: new entries go into `young`; when it holds half the limit, it becomes `old` and the
previous `old` is dropped. A hit in `old` is moved back into `young`. What was used within the last two
half-limits of insertions stays; a one-off is gone after two; never more than `limit` entries. A hit in
`young` is one dict lookup. Not locked: under the GIL the worst a race does is lose one entry.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["Recent"]


class Recent(Generic[K, V]):
    __slots__ = ("_half", "_old", "_young", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 2:
            raise ValueError("a Recent store holds at least 2 entries")
        self.limit = limit
        self._half = limit // 2
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self._young.get(key)
        if value is None:
            value = self._old.pop(key, None)
            if value is not None:
                self._put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep `value` (never None: None is what get answers for a key not held)."""
        self._put(key, value)

    def _put(self, key: K, value: V) -> None:
        young = self._young
        if len(young) >= self._half and key not in young:
            self._old, self._young = young, {}
            young = self._young
        young[key] = value

    def clear(self) -> None:
        self._young, self._old = {}, {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def __contains__(self, key: object) -> bool:
        return key in self._young or key in self._old
