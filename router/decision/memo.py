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
from router.decision.recent import Recent
from router.decision.types import OS, Client, Context

CHOICE_LIMIT = 4096
KIND_LIMIT = 4096
# Answers for longer links are built every time: a kept answer holds its location (an intent link carries
# the web URL twice), so OUTCOME_LIMIT answers stay a few MB however long the links anyone sends.
KEPT_LINK_CHARS = 1024
OUTCOME_LIMIT = 4096

# What a choice key holds, by the conditions that read it. A condition added to the language must be
# placed here (or among those that vary per click), or importing this module fails: a key missing
# something a rule reads would hand one click another's answer.
KEYED = {
    ConditionName.CHANNEL: "channel",
    ConditionName.APP: "client kind",
    ConditionName.OS: "client kind",
    ConditionName.DEVICE: "client kind",
    ConditionName.APP_VERSION: "client kind's version answers",
    ConditionName.OS_VERSION: "client kind's version answers",
    ConditionName.MINI_PROGRAM: "client kind",
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


ClientKind = tuple[object, ...]


def client_kind(client: Client, version_tests: tuple[VersionIn, ...], kinds: Recent[Client, ClientKind]) -> ClientKind:
    """Everything about a client that a rule set's decisions and the pages built from them read: its app,
    OS, device, mini-program and bot flags, a HarmonyOS version (it decides the app store), and its answers
    to the rule set's version conditions (`version_tests`) in place of its version numbers: user agents
    carry hundreds of versions, rules a few ranges. Clients are many (every browser build is one); their
    kinds, for one rule set, a few dozen. Kept per client in `kinds` (the rule set's)."""
    kind = kinds.get(client)
    if kind is None:
        harmony_version = client.os_version if client.os is OS.HARMONYOS else None
        versions = tuple(test.holds_for(client) for test in version_tests)
        kind = (client.app, client.os, client.device, client.mini_program, client.bot, harmony_version, versions)
        kinds.put(client, kind)
    return kind


def choice_key(ctx: Context, kind: ClientKind) -> tuple[object, ...]:
    """Everything about a click a timeless rule can read: the client's kind (client_kind) and the rest.
    With `in_rollout` too: the what-if of rule tests and explain puts a visitor inside a rollout at 0 %,
    which no real click is."""
    ad = ctx.ad
    ad_fields = (ad.source, ad.advertiser, ad.campaign) if ad is not None and ad.verified else None
    link = ctx.link
    return (kind, ctx.channel, link.kind, link.platform, expansion_state(ctx), ad_fields, ctx.in_rollout)


def version_tests(conditions: Iterable[Condition]) -> tuple[VersionIn, ...]:
    """The distinct version conditions among `conditions`, for choice_key."""
    seen: dict[tuple[str, object], VersionIn] = {}
    for condition in conditions:
        if isinstance(condition, VersionIn):
            seen.setdefault((condition.name, condition.range), condition)
    return tuple(seen.values())
