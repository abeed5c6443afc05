"""router.decision.recent.Recent: bounded, and what is used survives a long tail of one-offs."""

from __future__ import annotations

import pytest

from router.decision.recent import Recent


def test_never_more_than_the_limit() -> None:
    store: Recent[int, int] = Recent(100)
    for n in range(10_000):
        store.put(n, n)
        assert len(store) <= 100


def test_popular_entries_survive_a_long_tail() -> None:
    """A working set used between one-offs stays however long the tail, up to the whole limit, where
    emptying a full store would lose it every time it fills."""
    store: Recent[str, int] = Recent(100)
    misses = 0
    for n in range(20_000):
        popular = f"popular-{n % 90}"
        if store.get(popular) is None:
            misses += 1
            store.put(popular, n)
        if n % 9 == 0:
            store.put(f"tail-{n}", n)  # seen once, never again
    assert misses == 90  # each popular key was missed only the first time
    assert store.get("tail-0") is None  # the tail is forgotten


def test_the_entry_used_longest_ago_goes_first() -> None:
    store: Recent[int, str] = Recent(3)
    store.put(1, "one")
    store.put(2, "two")
    store.put(3, "three")
    assert store.get(1) == "one"  # now the most recently used
    store.put(4, "four")  # pushes out 2, used longest ago
    assert (store.get(2), store.get(1), 3 in store, len(store)) == (None, "one", True, 3)


def test_clear_and_limits() -> None:
    store: Recent[int, int] = Recent(10)
    store.put(1, 1)
    store.clear()
    assert len(store) == 0 and store.get(1) is None
    with pytest.raises(ValueError, match="at least 1"):
        Recent(0)
