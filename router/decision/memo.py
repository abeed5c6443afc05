"""What a rule set keeps for the clicks that repeat, keyed by what its conditions declare they read.

A rule set's choice for a click (the rule that matches, or the default) depends on nothing but the
parts of the click its conditions read (router.decision.conditions: each condition type's `reads`). So
when no rule tried on the way read a part that differs per click (the time, the visitor: `PER_CLICK`),
the choice is kept per `Keys.choice` key, and the answer built from it (the Location with its app link)
per rule, link and client traits (router.decision.deeplinks: `client_traits`) when the click forwards no
attribution ids (those are per click). Never-seen user agents of a known kind then cost a lookup, not a
walk over the rules and a rebuilt URL.

The keys are derived, never written by hand: each part a rule set reads goes into them the way `_PART_KEYS`
says, its request headers by their values, and the client by its kind: the client's answers to every
condition that reads the client alone, plus what the answers built read (`client_traits`). User agents
carry hundreds of versions and Clients are thousands; for one rule set their kinds are a few dozen.

Every store belongs to one RuleSet (a reload makes a new one, with empty stores) and is bounded
(router.decision.recent: what is used stays, the long tail goes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from router.decision.conditions import NO_RULE, PER_CLICK, Condition, Header, Part, client_only
from router.decision.deeplinks import client_traits
from router.decision.recent import Recent
from router.decision.types import Client, Context, Expansion, Link

CHOICE_LIMIT = 4096
KIND_LIMIT = 4096
# Answers for longer links are built every time: a kept answer holds its location (an intent link carries
# the web URL twice), so BUILT_LIMIT answers stay a few MB however long the links anyone sends.
KEPT_LINK_CHARS = 1024
BUILT_LIMIT = 4096

# How each part of a click goes into a key. The client is keyed by its kind (Keys.kind) and the per-click
# parts never are; a part added to the vocabulary without its place here stops the import, since a key
# missing something a rule reads would hand one click another's answer.
_PART_KEYS: dict[Part, Callable[[Context], object]] = {
    Part.LINK: lambda ctx: _link_key(ctx.link, ctx.expansion),
    Part.CHANNEL: lambda ctx: ctx.channel,
    Part.AD: lambda ctx: ctx.ad,
    Part.TAGS: lambda ctx: ctx.tags,
}
if set(_PART_KEYS) | {Part.CLIENT} | PER_CLICK != set(Part):
    raise ImportError(f"router.decision.memo: parts without a key: {set(Part) - set(_PART_KEYS) - PER_CLICK}")
_CLIENT_ONLY = frozenset({Part.CLIENT})


def _link_key(link: Link, expansion: Expansion | None) -> tuple[object, ...]:
    return (link, expansion)


ClientKind = tuple[object, ...]


class Keys:
    """The keys of one rule set's kept choices and answers, derived from what its conditions read."""

    __slots__ = ("_client_tests", "_part_keys", "_whole_client", "headers", "kinds")

    def __init__(self, conditions: Iterable[Condition]) -> None:
        distinct = tuple(dict.fromkeys(conditions))
        reads: set[object] = set().union(*(condition.reads for condition in distinct))
        # The conditions that read the client alone are answered once per client (its kind); one that
        # reads the client with anything else makes the whole client part of the key.
        self._client_tests = tuple(condition for condition in distinct if condition.reads == _CLIENT_ONLY)
        self._whole_client = any(Part.CLIENT in c.reads and c.reads != _CLIENT_ONLY for c in distinct)
        self._part_keys = tuple(_PART_KEYS[part] for part in Part if part in reads and part in _PART_KEYS)
        self.headers = tuple(sorted(read.name for read in reads if isinstance(read, Header)))
        self.kinds: Recent[Client, ClientKind] = Recent(KIND_LIMIT)

    def kind(self, client: Client) -> ClientKind:
        """What the rule set's decisions, and the answers built from them, read of `client` (kept per client)."""
        kind = self.kinds.get(client)
        if kind is None:
            seen = client_only(client)
            answers = tuple(test.holds(seen, NO_RULE) for test in self._client_tests)
            kind = (client_traits(client), answers, client if self._whole_client else None)
            self.kinds.put(client, kind)
        return kind

    def choice(self, ctx: Context, kind: ClientKind) -> tuple[object, ...]:
        """The key of a click's choice: its client's kind, every other part the rules read, and the what-if
        of rule tests and explain (`in_rollout`: it puts a visitor inside a rollout at 0 %, which no real
        click is)."""
        return (kind, ctx.in_rollout, ctx.headers, *[part_key(ctx) for part_key in self._part_keys])
