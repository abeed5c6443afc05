"""Decisions worked out once per rule set for what a click is, not who sent it.

A rule set answers every click with the same app, OS, device and mini-program flag, the same answers to
its version conditions, channel, link kind and platform, short-link state and verified ad fields by the
same rule, as long as no rule tried on the way had a window or a partial rollout
(router.decision.rules: `Rule.timeless`). So that choice is kept per such key, and the answer built from
it (the Location with its app link) per rule, link and client traits (router.decision.deeplinks:
`client_traits`) when the click forwards no attribution ids (those are per click). Never-seen user agents
of a known kind then cost a lookup, not a walk over the rules and a rebuilt URL.

Both stores belong to one RuleSet (a reload makes a new one, with empty stores) and are bounded
(router.decision.recent: what is used stays, the long tail goes).
"""

from __future__ import annotations

from collections.abc import Iterable

from router.decision.conditions import Condition, ConditionName, VersionIn, expansion_state
from router.decision.types import Context

CHOICE_LIMIT = 4096
# Answers for longer links are built every time: a kept answer holds its location (an intent link carries
# the web URL twice), so OUTCOME_LIMIT answers stay a few MB however long the links anyone sends.
KEPT_LINK_CHARS = 1024
OUTCOME_LIMIT = 4096

# What a choice key holds, by the conditions that read it. A condition added to the language must be
# placed here (or among those that vary per click), or importing this module fails: a key missing
# something a rule reads would hand one click another's answer.
KEYED = {
    ConditionName.CHANNEL: "channel",
    ConditionName.APP: "client app",
    ConditionName.OS: "client os",
    ConditionName.DEVICE: "client device",
    ConditionName.APP_VERSION: "the rule set's version tests",
    ConditionName.OS_VERSION: "the rule set's version tests",
    ConditionName.MINI_PROGRAM: "client mini program",
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


def choice_key(ctx: Context, version_tests: tuple[VersionIn, ...]) -> tuple[object, ...]:
    """Everything about a click a timeless rule can read. Versions only as the answers to the version
    conditions the rule set holds (`version_tests`): user agents carry hundreds of version numbers, rules
    a few ranges. With `in_rollout` too: the what-if of rule tests and explain puts a visitor inside a
    rollout at 0 %, which no real click is."""
    ad = ctx.ad
    ad_fields = (ad.source, ad.advertiser, ad.campaign) if ad is not None and ad.verified else None
    link = ctx.link
    client = ctx.client
    versions = tuple(test.holds(ctx, "") for test in version_tests) if version_tests else ()
    return (client.app, client.os, client.device, client.mini_program, versions, ctx.channel, link.kind,
            link.platform, expansion_state(ctx), ad_fields, ctx.in_rollout)


def version_tests(conditions: Iterable[Condition]) -> tuple[VersionIn, ...]:
    """The distinct version conditions among `conditions`, for choice_key."""
    seen: dict[tuple[str, object], VersionIn] = {}
    for condition in conditions:
        if isinstance(condition, VersionIn):
            seen.setdefault((condition.name, condition.range), condition)
    return tuple(seen.values())
