"""router.decision.memo: a rule set's kept choices and answers never change what a click gets.

Each test decides a click twice or more (the later ones answered from what was kept) and holds the
answers against explain()'s full walk, which keeps nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime

import pytest

from router.decision.click import read_click
from router.decision.decide import decide, decide_timeless, explain
from router.decision.rules import RuleSet, RuleSource, build_rule_set
from router.decision.types import Action, Context
from router.serve.config import Settings, bundled_rules_dir
from tests import uas
from tests.conftest import TEST_KEYS
from tests.test_rule_index import clicks, random_rules

AT = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
SETTINGS = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS)
ITEM = "url=https%3A%2F%2Fitem.taobao.com%2Fitem.htm%3Fid%3D123456"


def rules_of(text: str) -> RuleSet:
    return build_rule_set([RuleSource("memo.yaml", text.encode())], origin="memo")


def click(query: str, ua: str, visitor: str = "visitor-0001", **changes: object) -> Context:
    ctx = read_click("/go", query, ua, at=AT, settings=SETTINGS, visitor=visitor)
    return dataclasses.replace(ctx, **changes) if changes else ctx  # type: ignore[arg-type]


FIELDS = ("action", "rule", "status", "location", "landing", "app_link", "app", "reason")


def same(a: object, b: object) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in (*FIELDS, "notes"))


@pytest.mark.parametrize("seed", range(6))
def test_kept_answers_are_the_full_walks_answers(seed: int) -> None:
    """Random rule sets (ads, rollouts, versions) and clicks, each decided three times by new visitors."""
    rules = random_rules(seed, count=[5, 40, 300][seed % 3])
    for n, (path, query, ua) in enumerate(clicks(seed, 200)):
        for visitor in (f"v-{n}-a", f"v-{n}-b", f"v-{n}-c"):
            ctx = read_click(path, query, ua, at=AT, settings=SETTINGS, visitor=visitor)
            assert same(decide(rules, ctx), explain(rules, ctx)), (path, query, ua, visitor)
    assert len(rules.choices) > 0


def test_a_new_user_agent_of_a_known_kind_is_answered_from_the_kept_choice() -> None:
    rules = rules_of("rules:\n  - {id: wechat-web, when: {app: wechat}, then: web}\ndefault: app\n")
    first = decide(rules, click(ITEM, uas.WECHAT_IOS))
    assert len(rules.choices) == 1 and len(rules.built) == 1
    again = decide(rules, click(ITEM, uas.WECHAT_IOS + " NetType/4G", visitor="someone-else"))
    assert again is first  # the same Decision object: nothing was walked or built again
    assert (again.action, again.rule) == (Action.WEB, "wechat-web")


def test_rules_that_vary_per_click_are_never_kept() -> None:
    rules = rules_of(
        "rules:\n"
        "  - {id: half, when: {app: wechat, rollout: 50}, then: web}\n"
        "  - {id: night, when: {window: {from: '2026-11-11T00:00:00+08:00', until: '2026-11-12T00:00:00+08:00'}},"
        " then: block}\n"
        "default: app\n"
    )
    rules_seen = set()
    for n in range(200):
        ctx = click(ITEM, uas.WECHAT_IOS, visitor=f"visitor-{n:04d}")
        decision, timeless = decide_timeless(rules, ctx)
        assert not timeless
        assert same(decision, explain(rules, ctx))
        rules_seen.add(decision.rule)
    assert rules_seen == {"half", "night"}  # sticky buckets put visitors on both sides of the rollout
    assert len(rules.choices) == 0 and len(rules.built) == 0


def test_the_rollout_what_if_is_part_of_the_key() -> None:
    """A pilot at 0 % takes no real click, and every click of a rule test that says in_rollout: true."""
    rules = rules_of("rules:\n  - {id: pilot, when: {app: wechat, rollout: 0}, then: block}\ndefault: app\n")
    assert decide(rules, click(ITEM, uas.WECHAT_IOS)).rule == "default"
    assert decide(rules, click(ITEM, uas.WECHAT_IOS, in_rollout=True)).rule == "pilot"
    assert decide(rules, click(ITEM, uas.WECHAT_IOS, in_rollout=False)).rule == "default"
    assert decide(rules, click(ITEM, uas.WECHAT_IOS)).rule == "default"


def test_forwarded_ids_are_never_answered_from_another_click() -> None:
    rules = rules_of("default: app\n")
    locations = {decide(rules, click(f"{ITEM}&gdt_vid=wx0{n}", uas.SAFARI_IOS)).location for n in range(3)}
    assert locations == {f"taobao://item.taobao.com/item.htm?id=123456&gdt_vid=wx0{n}" for n in range(3)}
    assert len(rules.built) == 0  # only clicks that forward nothing share an answer


def test_each_link_and_client_gets_its_own_answer() -> None:
    rules = rules_of("default: app\n")
    iphone = decide(rules, click(ITEM, uas.SAFARI_IOS))
    android = decide(rules, click(ITEM, uas.CHROME_ANDROID))
    other_item = decide(rules, click(ITEM.replace("123456", "654321"), uas.SAFARI_IOS))
    assert iphone.location == "taobao://item.taobao.com/item.htm?id=123456"
    assert android.location is not None and android.location.startswith("intent://item.taobao.com/item.htm?id=123456")
    assert other_item.location == "taobao://item.taobao.com/item.htm?id=654321"


def test_a_reloaded_rule_set_starts_with_empty_stores() -> None:
    rules = rules_of("rules:\n  - {id: wechat-web, when: {app: wechat}, then: web}\ndefault: app\n")
    decide(rules, click(ITEM, uas.WECHAT_IOS))
    reloaded = dataclasses.replace(rules, default=rules.default)
    assert len(rules.choices) == 1 and len(reloaded.choices) == 0 and len(reloaded.built) == 0


def test_the_stores_are_bounded() -> None:
    """Every item a different link: the answers store stops at its limit and keeps the newest."""
    from router.decision.memo import BUILT_LIMIT

    rules = rules_of("default: app\n")
    for n in range(BUILT_LIMIT + 10):
        decide(rules, click(ITEM.replace("123456", str(10**6 + n)), uas.SAFARI_IOS))
    assert len(rules.built) == BUILT_LIMIT
    newest = decide(rules, click(ITEM.replace("123456", str(10**6 + BUILT_LIMIT + 9)), uas.SAFARI_IOS))
    assert newest.location == f"taobao://item.taobao.com/item.htm?id={10**6 + BUILT_LIMIT + 9}"
    assert len(rules.choices) == 1  # one kind of click, however many links


def test_version_conditions_split_the_kept_choices_by_their_answers() -> None:
    rules = rules_of("rules:\n  - {id: new-wechat, when: {app: wechat, app_version: '>=8.0.30'}, then: web}\n"
                     "default: landing\n")
    old, new = (uas.WECHAT_IOS.replace("MicroMessenger/8.0.47", f"MicroMessenger/{v}") for v in ("8.0.20", "8.0.31"))
    for _ in range(2):
        assert decide(rules, click(ITEM, old)).rule == "default"
        assert decide(rules, click(ITEM, new)).rule == "new-wechat"
        assert decide(rules, click(ITEM, uas.WECHAT_IOS)).rule == "new-wechat"  # 8.0.47 shares 8.0.31's choice
    assert len(rules.choices) == 2


@pytest.mark.parametrize(
    "action",
    ["app", "web", "landing", "{action: app, via: intent}", "{action: app, via: tbopen}",
     "{action: app, via: universal}", "{action: landing, page: moments}"],
)
def test_clients_with_the_same_traits_get_the_same_answer(action: str) -> None:
    """client_traits is all an answer reads from the client: over every app, OS, device and a spread of
    versions, clients with the same traits get the same answer, built afresh (explain keeps nothing)."""
    from router.decision.apps import bundled_catalogue
    from router.decision.deeplinks import client_traits
    from router.decision.types import OS, Client, Device

    rules = rules_of(f"settings: {{universal_link_hosts: [item.taobao.com]}}\ndefault: {action}\n")
    for query in (ITEM, "url=https%3A%2F%2Fshop123.taobao.com%2F", "url=" + "%EF%BF%A5AbCd1234%EF%BF%A5"):
        base = click(query, uas.SAFARI_IOS)
        answers: dict[tuple[object, ...], tuple[object, ...]] = {}
        for app, os, device, os_version in itertools.product(bundled_catalogue(), OS, Device,
                                                             [(), (4,), (5, 0), (17, 4)]):
            client = Client(app, (8, 0, 47), os, os_version, device, bot=app.kind == "bot")
            decision = explain(rules, dataclasses.replace(base, client=client))
            answer = tuple(getattr(decision, f) for f in (*FIELDS, "notes"))
            assert answers.setdefault(client_traits(client), answer) == answer, (query, client)




def test_answers_for_long_links_are_built_every_time() -> None:
    """A kept answer holds its location; links past KEPT_LINK_CHARS are answered afresh, so the store stays
    small whatever links anyone sends."""
    from router.decision.memo import KEPT_LINK_CHARS

    rules = rules_of("default: app\n")
    long_item = "url=" + "https%3A%2F%2Fpages.tmall.com%2Fwow%2Fa%3Fx%3D" + "a" * KEPT_LINK_CHARS
    first = decide(rules, click(long_item, uas.CHROME_ANDROID))
    again = decide(rules, click(long_item, uas.CHROME_ANDROID))
    assert first.location == again.location and first is not again
    assert len(rules.built) == 0
