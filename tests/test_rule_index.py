"""The compiled rule set (router.decision.index): decide() tries only candidate rules, and always lands
on the rule a full first-match walk (explain) lands on, whatever the rules and the click."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from router.decision.click import read_click
from router.decision.decide import decide, explain
from router.decision.named_clients import CLIENTS
from router.decision.rules import RuleSet, RuleSource, build_rule_set
from router.decision.types import Channel
from router.policy.casebook import Click
from router.serve.config import Settings, bundled_rules_dir
from tests.conftest import TEST_KEYS

AT = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
VOCABULARY = {
    "app": ["wechat", "wecom", "qq", "browser", "bot", "other_inapp", "taobao"],
    "channel": ["ad", "private_chat", "group_chat", "moments", "unknown"],
    "os": ["ios", "android", "windows", "macos"],
    "device": ["mobile", "tablet", "desktop"],
    "link": ["item", "short", "shop", "page"],
    "advertiser": [str(1000 + n) for n in range(40)],
    "ad_source": ["unidesk", "gdt"],
}
ACTIONS = ["app", "web", "landing", "block"]


def random_rules(seed: int, count: int) -> RuleSet:
    rng = random.Random(seed)
    lines = ["rules:"]
    for n in range(count):
        names = rng.sample(sorted(VOCABULARY), k=rng.randint(1, 3))
        when = []
        for name in names:
            values = rng.sample(VOCABULARY[name], k=rng.randint(1, min(3, len(VOCABULARY[name]))))
            when.append(f"{name}: [{', '.join(repr(v) for v in values)}]")
        if rng.random() < 0.2:
            when.append(f"rollout: {rng.choice([10, 50, 90])}")
        if rng.random() < 0.1:
            when.append('app_version: ">=8.0.30"')
        lines.append(f"  - {{id: r{n}, when: {{{', '.join(when)}}}, then: {rng.choice(ACTIONS)}}}")
    lines.append(f"default: {rng.choice(ACTIONS)}")
    return build_rule_set([RuleSource("random.yaml", "\n".join(lines).encode())], origin="random")


def clicks(seed: int, count: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        channel = rng.choice(list(Channel))
        click = Click(url=f"https://item.taobao.com/item.htm?id={rng.randint(1, 9)}", channel=channel,
                      ad_source=rng.choice(VOCABULARY["ad_source"]), advertiser=rng.choice(VOCABULARY["advertiser"]))
        path, _, query = click.request(TEST_KEYS).partition("?")
        out.append((path, query, rng.choice(list(CLIENTS.values())).ua + f" r/{n}"))
    return out


SETTINGS = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS)


@pytest.mark.parametrize("seed", range(12))
def test_the_index_finds_the_first_match_a_full_walk_finds(seed: int) -> None:
    """Random rule sets and clicks (ads with advertisers, rollouts, versions): the same rule decides."""
    rules = random_rules(seed, count=[5, 40, 300][seed % 3])
    for n, (path, query, ua) in enumerate(clicks(seed, 300)):
        ctx = read_click(path, query, ua, at=AT, settings=SETTINGS, visitor=f"visitor-{n:04d}")
        fast, full = decide(rules, ctx), explain(rules, ctx)
        assert (fast.rule, fast.action, fast.location) == (full.rule, full.action, full.location), (path, query, ua)


def test_a_click_tries_only_rules_that_could_match() -> None:
    """2,000 advertiser rules: a click of one advertiser tries its own rules and the unfiled ones, not all."""
    lines = ["rules:"]
    lines += [f"  - {{id: adv-{n}, when: {{advertiser: '{n}', channel: ad}}, then: block}}" for n in range(1999)]
    lines += ["  - {id: everyone, when: {rollout: 50}, then: web}", "default: landing"]
    rules = build_rule_set([RuleSource("many.yaml", "\n".join(lines).encode())], origin="many")
    click = Click(url="https://item.taobao.com/item.htm?id=1", channel=Channel.AD, ad_source="unidesk",
                  advertiser="1500")
    path, _, query = click.request(TEST_KEYS).partition("?")
    ctx = read_click(path, query, CLIENTS["wechat_ios"].ua, at=AT, settings=SETTINGS, visitor="visitor-1")
    assert [rule.id for rule in rules.index.candidates(ctx)] == ["adv-1500", "everyone"]
    assert decide(rules, ctx).rule == "adv-1500"
    assert rules.index.describe() == {"advertiser": 1999, "none": 1}


def test_a_rule_listing_every_value_is_not_filed_under_it() -> None:
    """`os: [every os]` lets every click through: such a rule is tried by every click."""
    every_os = ", ".join(["ios", "android", "harmonyos", "windows", "macos", "linux", "other"])
    text = f"rules:\n  - {{id: all-os, when: {{os: [{every_os}]}}, then: web}}\ndefault: landing\n"
    rules = build_rule_set([RuleSource("f.yaml", text.encode())], origin="f")
    assert rules.index.describe() == {"none": 1}
