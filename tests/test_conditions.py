"""Conditions: each holds or fails as documented, and explains the failure in domain words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from router.decision.apps import bundled_catalogue
from router.decision.conditions import ConditionError, build_condition, rollout_bucket
from router.decision.decide import decide, explain
from router.decision.rules import load_rules
from router.decision.types import (
    OS,
    AdClaim,
    Channel,
    Client,
    Context,
    Device,
    Link,
    LinkKind,
    Platform,
)
from router.decision.versions import parse_range, parse_version

LINK = Link(Platform.TAOBAO, LinkKind.ITEM, "https://item.taobao.com/item.htm?id=1",
            "https://h5.m.taobao.com/awp/core/detail.htm?id=1", item_id="1")
WECHAT = Client(bundled_catalogue()["wechat"], (8, 0, 20), OS.IOS, (17, 4), Device.MOBILE, bot=False)
CTX = Context(LINK, WECHAT, Channel.GROUP_CHAT, "test", datetime(2026, 11, 11, 12, tzinfo=UTC), "visitor-1")


def cond(name: str, value: object):  # type: ignore[no-untyped-def]
    return build_condition(name, value, bundled_catalogue())


@pytest.mark.parametrize(
    ("spec", "version", "holds"),
    [
        (">=8.0.30", (8, 0, 20), False),
        (">=8.0.30", (8, 0, 30), True),
        (">=8", (8,), True),
        ("<8", (7, 0, 22), True),
        (">=7.0.5,<8", (8, 0, 1), False),
        ("==8.0.*", (8, 0, 47), True),
        ("==8.0.*", (8, 1), False),
        ("!=8.0.1", (8, 0, 1), False),
        (">1", (), False),
    ],
)
def test_version_ranges(spec: str, version: tuple[int, ...], holds: bool) -> None:
    """Ranges compare integer tuples; an unknown version satisfies nothing."""
    assert parse_range(spec).contains(version) is holds


def test_parse_version_handles_wechat_forms() -> None:
    """WeChat's '8.0.7(0x18000722)' reads as 8.0.7; garbage as unknown."""
    assert parse_version("8.0.7(0x18000722)") == (8, 0, 7)
    assert parse_version("x") == ()


def test_app_version_explains_in_domain_words() -> None:
    """A version failure names the app and both versions."""
    condition = cond("app_version", ">=8.0.30")
    assert not condition.holds(CTX, "r")
    assert condition.explain(CTX) == "wechat 8.0.20 is older than >=8.0.30"
    assert cond("app_version", ">=7,<8").explain(CTX) == "wechat 8.0.20 is not older than >=7,<8"
    assert cond("app_version", "==7.*").explain(CTX) == "wechat 8.0.20 is not ==7.*"


def test_one_of_lists() -> None:
    """A list value means any of."""
    assert cond("channel", ["moments", "group_chat"]).holds(CTX, "r")
    assert not cond("channel", "moments").holds(CTX, "r")
    assert cond("channel", "moments").explain(CTX) == "channel is group_chat, not moments"


def test_window_with_timezone() -> None:
    """A Double 11 window in Beijing time holds at noon UTC on the 11th and not on the 12th."""
    condition = cond("window", {"from": "2026-11-11T00:00:00", "until": "2026-11-12T00:00:00",
                                "timezone": "Asia/Shanghai"})
    assert condition.holds(CTX, "r")
    later = replace(CTX, at=datetime(2026, 11, 12, 12, tzinfo=UTC))
    assert not condition.holds(later, "r")
    assert condition.explain(later) == (
        "2026-11-12T20:00:00+08:00 is after the window closed at 2026-11-12T00:00:00+08:00"
    )  # the click's time in the window's own zone


def test_window_before_opening_explains() -> None:
    """Before the window, the explanation says when it opens."""
    condition = cond("window", {"from": "2026-12-01T00:00:00+08:00"})
    assert condition.explain(CTX).endswith("is before the window opens at 2026-12-01T00:00:00+08:00")


def test_window_rejects_unknown_timezone() -> None:
    """A timezone name that doesn't exist is refused when the rule is built."""
    with pytest.raises(ConditionError, match="unknown timezone 'Mars/Base'"):
        cond("window", {"from": "2026-11-11T00:00:00", "timezone": "Mars/Base"})


def test_rollout_is_sticky_and_proportional() -> None:
    """A visitor's bucket is fixed per rule; about the given share of visitors is in."""
    assert rollout_bucket("pilot", "v1") == rollout_bucket("pilot", "v1")
    condition = cond("rollout", 30)
    inside = sum(condition.holds(replace(CTX, visitor=f"v{i}"), "pilot") for i in range(4000))
    assert 1000 < inside < 1400
    assert not any(cond("rollout", 0).holds(replace(CTX, visitor=f"v{i}"), "p") for i in range(500))
    assert all(cond("rollout", 100).holds(replace(CTX, visitor=f"v{i}"), "p") for i in range(500))


def test_rollout_is_independent_per_rule() -> None:
    """Being in one rule's 50% says nothing about another rule's."""
    both = sum(
        rollout_bucket("a", f"v{i}") < 50 and rollout_bucket("b", f"v{i}") < 50 for i in range(4000)
    )
    assert 800 < both < 1200


def test_ad_fields_need_verification() -> None:
    """ad_source holds only for a verified ad, and says why not otherwise."""
    condition = cond("ad_source", "unidesk")
    assert condition.explain(CTX) == "ad_source: not an ad click"
    forged = replace(CTX, ad=AdClaim("unidesk", "a", "", verified=False, reason="unknown signing key id 'x'",
                                        verdict="unknown_key"))
    assert not condition.holds(forged, "r")
    assert condition.explain(forged) == "ad_source: ad fields not trusted (unknown signing key id 'x')"
    real = replace(forged, ad=replace(forged.ad, verified=True))  # type: ignore[arg-type]
    assert condition.holds(real, "r")


def test_advertiser_accepts_numbers() -> None:
    """Advertiser ids written as numbers compare as text."""
    ctx = replace(CTX, ad=AdClaim("unidesk", "12345", "", True, "ok", "verified"))
    assert cond("advertiser", [12345, "999"]).holds(ctx, "r")


def test_mini_program() -> None:
    """mini_program: true holds only inside a mini program webview."""
    assert not cond("mini_program", True).holds(CTX, "r")
    assert cond("mini_program", False).holds(CTX, "r")


def test_first_match_wins_and_default(rules_dir: Path) -> None:
    """Rules are tried in order; the default answers when none match; explain walks the same way."""
    (rules_dir / "r.yaml").write_text(
        "rules:\n"
        "  - {id: old-wechat, when: {app: wechat, app_version: '<8'}, then: landing}\n"
        "  - {id: wechat-group, when: {app: wechat, channel: group_chat}, then: web}\n"
        "  - {id: never, when: {app: wechat}, then: {action: block, status: 451, message: Nope}}\n"
        "default: {action: block, message: Not here}\n"
    )
    rules = load_rules(rules_dir)
    assert decide(rules, CTX).rule == "wechat-group"
    assert explain(rules, CTX).rule == "wechat-group"
    assert [step.rule for step in explain(rules, CTX).trace] == ["old-wechat", "wechat-group"]
    qq = replace(CTX, client=replace(WECHAT, app=bundled_catalogue()["qq"]))
    blocked = decide(rules, qq)
    assert (blocked.rule, blocked.status, blocked.reason) == ("default", 403, "Not here")
