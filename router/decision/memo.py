"""Decisions worked out once per rule set for what a click is, not who sent it.

Two user agents that say the same thing (WeChat 8.0.47 on Android 13, a phone) are the same Client; a
rule set answers every click with the same client, channel, link kind and platform, short-link state and
verified ad fields by the same rule, as long as no rule tried on the way had a window or a partial
rollout (router.decision.rules: `Rule.timeless`). So that choice is kept per such key, and the answer
built from it (the Location with its app link) per rule, link and client when the click forwards no
attribution ids (those are per click). Never-seen user agents of a known kind then cost a lookup, not a
walk over the rules and a rebuilt URL.

Both stores belong to one RuleSet (a reload makes a new one, with empty stores), are bounded, and empty
when full: the popular keys come straight back.
"""

from __future__ import annotations

from router.decision.conditions import ConditionName, expansion_state
from router.decision.types import Context, Decision

MISSING = object()
"""What Choices.get answers for a key it does not hold (None is a kept answer: the default rule)."""
CHOICE_LIMIT = 4096
OUTCOME_LIMIT = 2048

# What a choice key holds, by the conditions that read it. A condition added to the language must be
# placed here (or among those that vary per click), or importing this module fails: a key missing
# something a rule reads would hand one click another's answer.
KEYED = {
    ConditionName.CHANNEL: "channel",
    ConditionName.APP: "client",
    ConditionName.OS: "client",
    ConditionName.DEVICE: "client",
    ConditionName.APP_VERSION: "client",
    ConditionName.OS_VERSION: "client",
    ConditionName.MINI_PROGRAM: "client",
    ConditionName.LINK: "link kind",
    ConditionName.PLATFORM: "link platform",
    ConditionName.EXPANSION: "expansion state",
    ConditionName.AD_SOURCE: "verified ad fields",
    ConditionName.ADVERTISER: "verified ad fields",
    ConditionName.CAMPAIGN: "verified ad fields",
}
PER_CLICK = frozenset({ConditionName.WINDOW, ConditionName.ROLLOUT})  # never kept: Rule.timeless
if set(KEYED) | PER_CLICK != set(ConditionName):
    raise ImportError(f"router.decision.memo: conditions not in the choice key: {set(ConditionName) - set(KEYED)}")


def choice_key(ctx: Context) -> tuple[object, ...]:
    """Everything about a click a timeless rule can read. With `in_rollout` too: the what-if of rule tests
    and explain puts a visitor inside a rollout at 0 %, which no real click is."""
    ad = ctx.ad
    ad_fields = (ad.source, ad.advertiser, ad.campaign) if ad is not None and ad.verified else None
    link = ctx.link
    return (ctx.client, ctx.channel, link.kind, link.platform, expansion_state(ctx), ad_fields, ctx.in_rollout)


class Choices:
    """The rule (None: the default) each choice key leads to, for the timeless ones."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: dict[tuple[object, ...], object] = {}

    def get(self, key: tuple[object, ...]) -> object:
        return self._kept.get(key, MISSING)

    def keep(self, key: tuple[object, ...], rule: object) -> None:
        if len(self._kept) >= CHOICE_LIMIT:
            self._kept.clear()
        self._kept[key] = rule

    def __len__(self) -> int:
        return len(self._kept)


class Outcomes:
    """Decisions built for (rule outcome, rule id, link, client) of clicks that forward nothing."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: dict[tuple[object, ...], Decision] = {}

    def get(self, key: tuple[object, ...]) -> Decision | None:
        return self._kept.get(key)

    def keep(self, key: tuple[object, ...], decision: Decision) -> None:
        if len(self._kept) >= OUTCOME_LIMIT:
            self._kept.clear()
        self._kept[key] = decision

    def __len__(self) -> int:
        return len(self._kept)
