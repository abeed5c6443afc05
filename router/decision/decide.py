"""decide() and explain(): one walk over the rules, first match wins.

The server calls decide(); `python -m router explain` calls explain(). Both are
the same function: explain only also records, for each rule tried, the first
condition that rejected the click, and tries every rule where decide tries the
rules router.decision.index leaves as candidates (the same first match).
"""

from __future__ import annotations

import dataclasses

from router.decision.deeplinks import app_location, client_traits, opened_app, runs_taobao, web_location
from router.decision.memo import KEPT_LINK_CHARS
from router.decision.rules import Rule, RuleSet, Then
from router.decision.slots import slot_constructor
from router.decision.types import Action, Context, Decision, Step

DEFAULT_RULE = "default"

# A Decision per click that forwards ids (an ad's click id: its answer can't be kept), at a third of the
# cost of Decision(...) (router.decision.slots); every field given, in order: action, rule, status,
# location, reason, landing, app_link, app, notes, trace, messages.
_new_decision = slot_constructor(Decision)
if tuple(f.name for f in dataclasses.fields(Decision)) != (
    "action", "rule", "status", "location", "reason", "landing", "app_link", "app", "notes", "trace", "messages"
):
    raise ImportError("router.decision.decide: Decision's fields changed; update the _new_decision calls")
_APP, _WEB, _BLOCK, _LANDING = Action.APP, Action.WEB, Action.BLOCK, Action.LANDING  # bound once (clients.py says why)


def decide(rules: RuleSet, ctx: Context) -> Decision:
    return decide_timeless(rules, ctx)[0]


def decide_timeless(rules: RuleSet, ctx: Context) -> tuple[Decision, bool]:
    """The decision, and whether it holds for any click alike in all the rule set reads but its time and
    visitor: no rule tried on the way read either (Rule.timeless)."""
    key = rules.keys.choice(ctx, rules.kind_of(ctx.client))
    chosen = rules.choices.get(key)  # a timeless choice made before for a click of the same kind
    timeless = True
    if chosen is None:
        rule, timeless = _first_match(rules, ctx)
        chosen = (rules.default, DEFAULT_RULE) if rule is None else (rule.then, rule.id)
        if timeless:
            rules.choices.put(key, chosen)
    then, rule_id = chosen
    link = ctx.link
    if not timeless or ctx.forward or len(link.web_url or "") + len(link.mobile_url or "") > KEPT_LINK_CHARS:
        return _answer(rules, then, rule_id, ctx, ()), timeless
    # The answer depends on nothing but the rule, the link and the client: build it once.
    built_key = (then, rule_id, ctx.link, client_traits(ctx.client))
    decision = rules.built.get(built_key)
    if decision is None:
        decision = _answer(rules, then, rule_id, ctx, ())
        rules.built.put(built_key, decision)
    return decision, True


def _first_match(rules: RuleSet, ctx: Context) -> tuple[Rule | None, bool]:
    """The first rule that holds (None: the default), and whether every rule tried was timeless."""
    timeless = True
    # Only the rules the index says could match (the same first match as trying every rule).
    for rule in rules.index.candidates(ctx):
        timeless = timeless and rule.timeless
        if rule.first_failure(ctx) is None:
            return rule, timeless
    return None, timeless


def rollout_arms(rules: RuleSet, ctx: Context, answered: str) -> tuple[tuple[str, bool], ...]:
    """For each rule with a partial rollout that the click reached (it comes no later than the rule that
    answered, `answered`) and whose other conditions all hold: the rule's id and whether the visitor is
    inside its rollout. The two arms of a rollout are then the clicks it could have taken, in and out,
    whichever rule answered them: what a readout compares (python -m router report --by arm). Empty for a
    rule set without partial rollouts, at the cost of one test; and always empty for a timeless decision
    (decide_timeless), since such a rule, its other conditions holding, would have been tried."""
    if not rules.rollouts:
        return ()
    last = rules.positions.get(answered, len(rules.rules))
    arms = []
    for position, rule, rollout in rules.rollouts:
        if position > last:
            break
        if all(condition.holds(ctx, rule.id) for condition in rule.conditions if condition is not rollout):
            arms.append((rule.id, rollout.holds(ctx, rule.id)))
    return tuple(arms)


def explain(rules: RuleSet, ctx: Context) -> Decision:
    """decide() trying every rule, with each one's first failing condition in the trace."""
    steps: list[Step] = []
    for rule in rules.rules:
        failed = rule.first_failure(ctx)
        if failed is None:
            steps.append(Step(rule.id, True, "all conditions hold"))
            return _answer(rules, rule.then, rule.id, ctx, tuple(steps))
        steps.append(Step(rule.id, False, failed.explain(ctx)))
    return _answer(rules, rules.default, DEFAULT_RULE, ctx, tuple(steps))


def _answer(rules: RuleSet, then: Then, rule_id: str, ctx: Context, trace: tuple[Step, ...]) -> Decision:
    """Turn a rule's action into an answer; degrade honestly when the action cannot be carried out."""
    action = then.action
    if action is _BLOCK:
        reason = then.message or "This link is not available here."
        return _new_decision(_BLOCK, rule_id, then.status, None, reason, "", None, "taobao", (), trace, then.messages)
    if action is _APP:
        location, note = app_location(
            ctx.link, ctx.client, ctx.forward,
            via=then.via, app=then.app, universal_link_hosts=rules.universal_link_hosts,
        )
        if location is not None:
            return _new_decision(_APP, rule_id, 302, location, "", "", None, "taobao", (note,), trace, ())
        return _landing(rules, ctx, rule_id, then, trace, notes=(note,))
    if action is _WEB:
        location = web_location(ctx.link, ctx.client, ctx.forward)
        if location is not None:
            return _new_decision(_WEB, rule_id, 302, location, "", "", None, "taobao", (), trace, ())
        notes = ("the link has no web page (token only); landing page instead",)
        return _landing(rules, ctx, rule_id, then, trace, notes=notes)
    return _landing(rules, ctx, rule_id, then, trace)


def _landing(
    rules: RuleSet, ctx: Context, rule_id: str, then: Then, trace: tuple[Step, ...], notes: tuple[str, ...] = ()
) -> Decision:
    """The landing page, with the app link it offers (built like an `app` answer's, with the rule's options)."""
    app_link = None  # no app on this OS (a desktop): the page offers the web link only
    if runs_taobao(ctx.client):
        app_link, _ = app_location(
            ctx.link, ctx.client, ctx.forward,
            via=then.via, app=then.app, universal_link_hosts=rules.universal_link_hosts,
        )
    return _new_decision(_LANDING, rule_id, 200, None, "", then.page, app_link, opened_app(ctx.link, then.app), notes,
                         trace, ())
