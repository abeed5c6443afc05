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
    """Keys used again within half the limit's insertions stay however long the tail of one-offs between
    them, where emptying a full store would lose them every time it fills."""
    store: Recent[str, int] = Recent(100)
    misses = 0
    for n in range(20_000):
        popular = f"popular-{n % 20}"
        if store.get(popular) is None:
            misses += 1
            store.put(popular, n)
        store.put(f"tail-{n}", n)  # seen once, never again
    assert misses == 20  # each popular key was missed only the first time
    assert store.get("tail-0") is None  # the tail is forgotten


def test_an_old_entry_used_again_moves_back_to_the_young_generation() -> None:
    store: Recent[int, str] = Recent(4)
    store.put(1, "one")
    store.put(2, "two")
    store.put(3, "three")  # young was full: {1, 2} are now old
    assert store.get(1) == "one"  # promoted
    store.put(4, "four")
    store.put(5, "five")  # {3, 1} (young) become old; 2 is dropped
    assert (store.get(2), store.get(1), 1 in store) == (None, "one", True)


def test_clear_and_limits() -> None:
    store: Recent[int, int] = Recent(10)
    store.put(1, 1)
    store.clear()
    assert len(store) == 0 and store.get(1) is None
    with pytest.raises(ValueError, match="at least 2"):
        Recent(1)
