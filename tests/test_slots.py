"""router.decision.slots builds the very object the dataclass's own __init__ builds, still frozen."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from router.decision.clients import parse_client
from router.decision.links import parse_link
from router.decision.slots import slot_constructor
from router.decision.types import Channel, Client, Context
from tests import uas


def test_a_built_context_equals_the_dataclass_one_and_stays_frozen() -> None:
    values = dict(link=parse_link("https://item.taobao.com/item.htm?id=1"), client=parse_client(uas.WECHAT_IOS),
                  channel=Channel.GROUP_CHAT, channel_reason="from=groupmessage", at=datetime(2026, 1, 1, tzinfo=UTC),
                  visitor="v", forward=(("gdt_vid", "x"),), ad=None, in_rollout=True, expansion=None,
                  expansion_reason="", headers=(("accept-language", "en"),), tags=("spring-sale",))
    built = slot_constructor(Context)(*values.values())
    assert built == Context(**values) and hash(built) == hash(Context(**values))
    assert [getattr(built, name) for name in values] == list(values.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.visitor = "someone else"  # type: ignore[misc]


def test_only_slotted_dataclasses_without_post_init() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    for cls in (NoSlots, PostInit, dict):
        with pytest.raises(TypeError, match="slotted dataclass"):
            slot_constructor(cls)
    assert slot_constructor(Client).__name__ == "new_client"


def test_keys_keep_their_hash_and_it_is_the_fields_hash() -> None:
    """Client and Link keep their hash (router.decision.slots): built either way it is the hash of their
    compared fields, equal objects hash alike, and a changed field changes it."""
    from router.decision.slots import field_hash

    parsed = parse_client(uas.WECHAT_IOS)
    fields = {f.name: getattr(parsed, f.name) for f in dataclasses.fields(Client) if f.init}
    made = Client(**fields)
    built = slot_constructor(Client)(*fields.values())
    assert parsed == made == built and hash(parsed) == hash(made) == hash(built) == field_hash(made)
    assert hash(dataclasses.replace(made, browser="Other")) != hash(made)
    link = parse_link("https://item.taobao.com/item.htm?id=1")
    assert hash(link) == field_hash(link) == hash(dataclasses.replace(link))
    assert hash(dataclasses.replace(link, title="x")) != hash(link) and dataclasses.replace(link, title="x") != link
    assert "_hash" not in repr(link)
