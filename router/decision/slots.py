"""Building frozen, slotted dataclasses on the per-click path at half the cost of their own __init__.

A frozen dataclass's generated __init__ sets each field through object.__setattr__ (it has to get past
the frozen guard), the slow way, once per field, for every Context a click reads. Each slot's own
descriptor sets a field in a third of that time. `slot_constructor(cls)` returns a function taking every
field positionally, in declaration order, that builds the very same object (equal, hashable, still frozen
to everyone else).
It runs no __post_init__ and fills no defaults: for classes that have neither to run, called where every
field is at hand (a Client per new user agent, a Context per click read).

One exception, for the classes that are keys of the per-click stores (Client, Link): a generated
dataclass __hash__ hashes every field, in Python, on every lookup (for a Client, several times a click).
Such a class keeps its hash in a `_hash` field (`HASH_FIELD`: not compared, not given) that its
__post_init__ sets with `field_hash`, and slot_constructor's function sets it the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["HASH_FIELD", "field_hash", "slot_constructor"]

HASH_FIELD = "_hash"


def field_hash(obj: object) -> int:
    """The hash of a dataclass's compared fields, in order: what a cached `_hash` holds."""
    return hash(tuple(getattr(obj, f.name) for f in dataclasses.fields(obj) if f.compare))  # type: ignore[arg-type]


def slot_constructor(cls: type[T]) -> Callable[..., T]:
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: a slotted dataclass without __post_init__ is needed")
    fields = dataclasses.fields(cls)
    hashed = any(f.name == HASH_FIELD for f in fields)
    if hasattr(cls, "__post_init__") and not hashed:
        raise TypeError(f"{cls.__name__}: a slotted dataclass without __post_init__ is needed")
    names = [f.name for f in fields if f.name != HASH_FIELD]
    setters = {f"_set_{name}": cls.__dict__[name].__set__ for name in [*names, *([HASH_FIELD] if hashed else [])]}
    # Straight-line code, as dataclasses itself generates its __init__: a loop over the setters would
    # cost most of what the descriptors save.
    body = "".join(f"    _set_{name}(obj, {name})\n" for name in names)
    if hashed:  # as field_hash computes it (its __post_init__)
        compared = ", ".join(f.name for f in fields if f.compare)
        body += f"    _set_{HASH_FIELD}(obj, hash(({compared},)))\n"
    source = f"def build({', '.join(names)}):\n    obj = _new(_cls)\n{body}    return obj\n"
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **setters}
    exec(source, namespace)
    build: Callable[..., T] = namespace["build"]
    build.__qualname__ = build.__name__ = f"new_{cls.__name__.lower()}"
    return build
