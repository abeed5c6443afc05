"""Tests for router.decision.short_links: codes, slugs, and reading a short link's fields so that an API call
can never make a link a /go click would refuse (no open redirect)."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest

from router.decision.click import MAX_LINK_CHARS, MAX_QUERY_LENGTH, BadClick, ClickSettings, read_click
from router.decision.links import DEFAULT_ALLOWED_HOSTS, parse_link
from router.decision.short_links import (
    BASE62,
    CODE_LENGTH,
    FIELD_NAMES,
    RESERVED_SLUGS,
    STAMP_CHANNELS,
    LinkFieldErrors,
    LinkFields,
    is_code_shaped,
    is_slug,
    long_link,
    new_code,
    patched,
    read_link_fields,
    slug_problem,
    to_json,
)
from router.decision.types import Channel

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
HOSTS = DEFAULT_ALLOWED_HOSTS
SETTINGS = ClickSettings(allowed_hosts=HOSTS)
ITEM = "https://item.taobao.com/item.htm?id=123"
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def _read(data: object, *, partial: bool = False, hosts: tuple[str, ...] = HOSTS) -> LinkFields:
    return read_link_fields(data, allowed_hosts=hosts, now=NOW, partial=partial)


def _errors(data: object, *, partial: bool = False, hosts: tuple[str, ...] = HOSTS) -> dict[str, str]:
    with pytest.raises(LinkFieldErrors) as info:
        _read(data, partial=partial, hosts=hosts)
    return info.value.fields


def _click_error(url: str, hosts: tuple[str, ...] = HOSTS) -> str:
    """The sentence a /go click on `url` gets."""
    with pytest.raises(BadClick) as info:
        read_click("/go", f"url={quote(url, safe='')}", UA, at=NOW, settings=ClickSettings(allowed_hosts=hosts))
    return info.value.message


# --- codes ---------------------------------------------------------------------------------------------------


def test_a_code_is_seven_base62_characters() -> None:
    assert BASE62 == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for _ in range(200):
        code = new_code()
        assert len(code) == CODE_LENGTH == 7
        assert set(code) <= set(BASE62)
        assert is_code_shaped(code)


def test_codes_are_uniform_over_the_alphabet() -> None:
    """20,000 codes: every character appears, none more than 1.5× (or less than 0.5×) the mean."""
    counts = Counter("".join(new_code() for _ in range(20_000)))
    assert set(counts) == set(BASE62)
    mean = 20_000 * CODE_LENGTH / len(BASE62)
    assert max(counts.values()) < 1.5 * mean
    assert min(counts.values()) > 0.5 * mean


def test_bytes_past_the_last_whole_multiple_of_62_are_thrown_away() -> None:
    """248..255 would favour 0-7 under `% 62`: they are rejected, and more bytes drawn."""
    asked: list[int] = []

    def source(n: int) -> bytes:
        asked.append(n)
        return bytes([255, 248, 0, 61, 62, 247]) if len(asked) == 1 else bytes([1] * n)

    # 255 and 248 dropped; 0 -> '0', 61 -> 'z', 62 -> '0', 247 -> 'z'; then 1s until seven.
    assert new_code(source) == "0z0z111"
    assert len(asked) == 2


def test_every_byte_value_below_248_maps_to_each_character_four_times() -> None:
    """What makes the draw unbiased: the kept byte values split evenly over the 62 characters."""
    seen: Counter[str] = Counter()
    for value in range(248):
        seen[new_code(lambda n, v=value: bytes([v] * n))[0]] += 1
    assert set(seen.values()) == {4} and len(seen) == 62


def test_codes_use_os_urandom_by_default() -> None:
    assert new_code.__defaults__ == (os.urandom,)


# --- slugs and code-shaped segments --------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["abc", "spring-sale", "A1-b2-C3", "x" * 64, "2024", "go2", "api-docs"])
def test_good_slugs(slug: str) -> None:
    assert slug_problem(slug) is None and is_slug(slug)
    assert is_code_shaped(slug)


@pytest.mark.parametrize(("slug", "words"), [
    ("ab", "2 characters long"),
    ("x" * 65, "65 characters long"),
    ("", "0 characters long"),
    ("-abc", "not starting or ending with '-'"),
    ("abc-", "not starting or ending with '-'"),
    ("a_b", "letters, digits and '-'"),
    ("a.b", "letters, digits and '-'"),
    ("a b", "letters, digits and '-'"),
    ("a/b", "letters, digits and '-'"),
    ("ｓａｌｅ", "letters, digits and '-'"),  # fullwidth: not ASCII
    ("abc\n", "letters, digits and '-'"),
])
def test_bad_slugs(slug: str, words: str) -> None:
    problem = slug_problem(slug)
    assert problem is not None and words in problem
    assert not is_slug(slug)


@pytest.mark.parametrize("word", sorted(RESERVED_SLUGS))
def test_reserved_slugs_are_refused_in_any_case(word: str) -> None:
    for spelling in (word, word.upper(), word.capitalize()):
        if len(spelling) < 3:
            assert not is_slug(spelling)  # too short anyway
            continue
        problem = slug_problem(spelling)
        assert problem is not None and "reserved" in problem


def test_the_reserved_words_cover_the_served_paths() -> None:
    assert {"api", "s", "go", "ad", "outcome", "healthz", "readyz", "metrics", "admin", "static", "login", "docs",
            "openapi"} <= RESERVED_SLUGS
    assert isinstance(RESERVED_SLUGS, frozenset)
    assert all(word == word.lower() for word in RESERVED_SLUGS)


def test_a_slug_must_be_text() -> None:
    assert slug_problem(123) == "expected text, got a whole number"
    assert not is_slug(None)


@pytest.mark.parametrize(("segment", "shaped"), [
    ("aZ09xYz", True), ("a", True), ("-", True), ("x" * 64, True), ("spring-sale", True),
    ("", False), ("x" * 65, False), ("a.b", False), ("a/b", False), ("a%20b", False), ("abc\n", False),
    ("ａｂｃ", False), ("é", False), ("a b", False), ("..", False),
])
def test_code_shaped_segments(segment: str, shaped: bool) -> None:
    assert is_code_shaped(segment) is shaped


def test_code_shaped_takes_only_text() -> None:
    assert not is_code_shaped(None) and not is_code_shaped(b"abc")


# --- reading fields: good input ----------------------------------------------------------------------------


FULL: dict[str, Any] = {
    "url": ITEM,
    "slug": "spring-sale",
    "channel": "group_chat",
    "advertiser": "Acme Ltd.",
    "campaign": "spring 2030",
    "tags": ["Sale", "spring", "sale", "x-1"],
    "title": "春季大促 🎉 Spring sale",
    "description": "Everything half off.\u3000Really.",
    "image": "https://img.alicdn.com/imgextra/i1/O1CN01.jpg?x=1&y=%20",
    "expires_at": "2030-02-01T00:00:00+08:00",
    "max_clicks": 1000,
    "disabled": False,
}


def test_a_full_body_is_read() -> None:
    fields = _read(FULL)
    assert fields.url == ITEM
    assert fields.slug == "spring-sale"
    assert fields.channel is Channel.GROUP_CHAT
    assert fields.tags == ("sale", "spring", "x-1")  # lower-cased, deduplicated, order kept
    assert fields.expires_at == datetime(2030, 2, 1, tzinfo=timezone(timedelta(hours=8)))
    assert fields.max_clicks == 1000 and fields.disabled is False
    assert fields.given == frozenset(FIELD_NAMES)


def test_to_json_uses_exactly_the_json_names() -> None:
    out = to_json(_read(FULL))
    assert list(out) == list(FIELD_NAMES) == [
        "url", "slug", "channel", "advertiser", "campaign", "tags", "title", "description", "image", "expires_at",
        "max_clicks", "disabled",
    ]
    assert out["channel"] == "group_chat"
    assert out["tags"] == ["sale", "spring", "x-1"]
    assert out["expires_at"] == "2030-02-01T00:00:00+08:00"
    # What to_json writes reads back as the same fields.
    assert _read(out) == _read(FULL)


def test_a_minimal_body_gets_the_defaults_and_omits_the_rest() -> None:
    fields = _read({"url": ITEM})
    assert fields == LinkFields(url=ITEM, tags=(), disabled=False)
    assert to_json(fields) == {"url": ITEM, "tags": [], "disabled": False}


def test_the_url_is_stored_exactly_as_given() -> None:
    """Not normalised: the click reads the very text, as `/go?url=` would."""
    for url in ("  HTTPS://ITEM.TAOBAO.COM/item.htm?id=123  ", "//item.taobao.com/item.htm?id=1&b=2+3",
                "【淘宝】好物 https://m.tb.cn/h.abc?tk=AbCdEf123 「标题」"):
        assert _read({"url": url}).url == url


def test_optional_fields_may_be_null() -> None:
    body = {"url": ITEM, **{name: None for name in FIELD_NAMES if name not in ("url", "tags", "disabled")}}
    assert _read(body) == LinkFields(url=ITEM, tags=(), disabled=False)


@pytest.mark.parametrize("channel", STAMP_CHANNELS)
def test_every_stamp_channel_is_accepted(channel: str) -> None:
    assert _read({"url": ITEM, "channel": channel}).channel == Channel(channel)


def test_stamp_channels_are_every_channel_but_ad() -> None:
    assert set(STAMP_CHANNELS) == {"private_chat", "group_chat", "moments", "unknown"}


def test_an_image_on_any_host_is_fine() -> None:
    """The image is not a destination: the allowlist does not apply to it."""
    for image in ("https://cdn.example.org/a.png", "HTTPS://Img.Example.com:8443/p/a.webp#x", "https://a.b"):
        assert _read({"url": ITEM, "image": image}).image == image


def test_expiry_in_other_offsets_and_z() -> None:
    assert _read({"url": ITEM, "expires_at": "2030-01-01T12:00:01Z"}).expires_at == NOW + timedelta(seconds=1)
    assert _read({"url": ITEM, "expires_at": "2030-01-01T07:00:01-05:00"}).expires_at == NOW + timedelta(seconds=1)


def test_max_clicks_bounds() -> None:
    assert _read({"url": ITEM, "max_clicks": 1}).max_clicks == 1
    assert _read({"url": ITEM, "max_clicks": 1_000_000_000}).max_clicks == 1_000_000_000


# --- reading fields: bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "https://evil.example.com/",
    "https://taobao.com.evil.com/item.htm?id=1",
    "https://evil.com\\@item.taobao.com/",
    "https://user@item.taobao.com/",
    "javascript:alert(1)",
    "https://127.0.0.1/",
    "https://2130706433/",
    "http://item.taobao.com\u3002evil.com/",
    "not a link at all",
    "https://item.taobao.com/item.htm?id=1\u202e",
])
def test_a_destination_a_click_refuses_is_refused_with_the_clicks_words(url: str) -> None:
    errors = _errors({"url": url})
    assert list(errors) == ["url"]
    assert errors["url"] == _click_error(url)


def test_the_allowlist_given_is_the_one_used() -> None:
    url = "https://shop.example.com/p/1"
    assert "url" in _errors({"url": url})
    assert _read({"url": url}, hosts=("example.com",)).url == url
    assert _errors({"url": ITEM}, hosts=("example.com",))["url"] == _click_error(ITEM, ("example.com",))


def test_a_destination_too_long_for_a_click_is_refused_with_the_clicks_words() -> None:
    url = "https://item.taobao.com/item.htm?q=" + "a" * MAX_LINK_CHARS
    assert _errors({"url": url})["url"] == _click_error(url)
    assert f"the limit is {MAX_LINK_CHARS}" in _errors({"url": url})["url"]


def test_a_destination_whose_query_would_not_fit_a_click_is_refused() -> None:
    """A share text may be long and all non-ASCII: percent-encoded, it would outgrow the /go query."""
    text = "好" * 1400 + " https://item.taobao.com/item.htm?id=123"
    assert len(long_link(LinkFields(url=text))) > MAX_QUERY_LENGTH
    assert f"the limit is {MAX_QUERY_LENGTH}" in _errors({"url": text})["url"]


@pytest.mark.parametrize(("url", "words"), [
    (None, "may not be null"),
    ("", "missing"),
    ("   ", "missing"),
    (123, "expected a link as text, got a whole number"),
    (["https://item.taobao.com/"], "expected a link as text, got a list"),
])
def test_a_missing_or_mistyped_url(url: object, words: str) -> None:
    assert words in _errors({"url": url})["url"]


def test_a_body_without_url_is_refused() -> None:
    assert "missing" in _errors({"title": "x"})["url"]


@pytest.mark.parametrize(("value", "words"), [
    (0, "out of range"),
    (-1, "out of range"),
    (1_000_000_001, "out of range"),
    (True, "got a boolean"),
    (False, "got a boolean"),
    (5.0, "decimal point"),
    (2.5, "decimal point"),
    ("10", "got text"),
])
def test_bad_max_clicks(value: object, words: str) -> None:
    errors = _errors({"url": ITEM, "max_clicks": value})
    assert list(errors) == ["max_clicks"] and words in errors["max_clicks"]


@pytest.mark.parametrize(("value", "words"), [
    ("2029-12-31T00:00:00+00:00", "already passed"),
    ("2030-01-01T12:00:00Z", "already passed"),  # now is not the future
    ("2030-01-01T19:59:59+08:00", "already passed"),  # 11:59:59 UTC
    ("2031-01-01T00:00:00", "no offset"),
    ("2031-01-01", "no offset"),
    ("next tuesday", "not a time"),
    ("2031-13-01T00:00:00Z", "not a time"),
    ("２０３１-01-01T00:00:00Z", "not a time"),
    ("2031-01-01T00:00:00Z" + " " * 60, "not a time"),
    (1924991999, "got a whole number"),
])
def test_bad_expiry(value: object, words: str) -> None:
    errors = _errors({"url": ITEM, "expires_at": value})
    assert list(errors) == ["expires_at"] and words in errors["expires_at"]


def test_unknown_fields_are_named() -> None:
    errors = _errors({"url": ITEM, "redirect": "https://evil.com", "Title": "x"})
    assert set(errors) == {"redirect", "Title"}
    assert "unknown field" in errors["redirect"] and "url, slug" in errors["redirect"]


def test_a_flood_of_unknown_fields_is_summed_up() -> None:
    errors = _errors({"url": ITEM, **{f"f{i}": 1 for i in range(50)}})
    assert len(errors) == 11 and errors["…"] == "40 more unknown fields"


def test_a_huge_unknown_name_is_cut_short() -> None:
    errors = _errors({"url": ITEM, "x" * 10_000: 1})
    assert all(len(name) < 100 for name in errors)


@pytest.mark.parametrize(("tags", "words"), [
    ("sale", "expected a list of tags, got text"),
    (["ok", ""], "tag 1"),
    (["with space"], "tag 0"),
    (["under_score"], "tag 0"),
    (["x" * 33], "tag 0"),
    (["ünï"], "tag 0"),
    (["ok", 3], "tag 1 is a whole number"),
    ([f"t{i}" for i in range(21)], "21 tags given; the limit is 20"),
    ({"a": 1}, "got an object"),
])
def test_bad_tags(tags: object, words: str) -> None:
    errors = _errors({"url": ITEM, "tags": tags})
    assert list(errors) == ["tags"] and words in errors["tags"]


def test_twenty_tags_are_fine() -> None:
    assert len(_read({"url": ITEM, "tags": [f"t{i}" for i in range(20)]}).tags or ()) == 20


@pytest.mark.parametrize(("image", "words"), [
    ("http://img.example.com/a.png", "not an https URL"),
    ("//img.example.com/a.png", "not an https URL"),
    ("data:image/png;base64,AAAA", "not an https URL"),
    ("javascript:alert(1)", "not an https URL"),
    ("https://10.0.0.1/a.png", "IP address"),
    ("https://169.254.169.254/latest/meta-data", "IP address"),
    ("https://2130706433/a.png", "IP address"),
    ("https://0x7f.1/a.png", "IP address"),
    ("https://[::1]/a.png", "IP address"),
    ("https://user:pass@img.example.com/a.png", "user name or password"),
    ("https://img.example.com@evil.com/a.png", "user name or password"),
    ("https://localhost/a.png", "bare host name"),
    ("https://img.example.com/a b.png", "whitespace"),
    ("https://img.example.com/a\x00.png", "control character"),
    ("https://img.example.com/\u56fe.png", "non-ASCII"),
    ("https://img.example.com\\evil.com/a.png", "backslash"),
    ("https://img.example.com/a\".png", "not a valid URL"),
    ("https://img.example.com/a<b>.png", "not a valid URL"),
    ("https://img.example.com/a%zz.png", "not a valid URL"),
    ("https:///a.png", "no valid host name"),
    ("https://-bad.example.com/a.png", "no valid host name"),
    ("https://img.example.com:99999/a.png", "invalid port"),
    ("https://img.example.com/" + "a" * 1000, "the limit is 1000"),
    (42, "got a whole number"),
])
def test_bad_images(image: object, words: str) -> None:
    errors = _errors({"url": ITEM, "image": image})
    assert list(errors) == ["image"] and words in errors["image"], errors


@pytest.mark.parametrize(("name", "value", "words"), [
    ("title", "x" * 201, "201 characters long; the limit is 200"),
    ("description", "x" * 501, "501 characters long; the limit is 500"),
    ("advertiser", "x" * 65, "the limit is 64"),
    ("campaign", "x" * 65, "the limit is 64"),
    ("advertiser", "", "is empty"),
    ("campaign", "   ", "is empty"),
    ("title", "line\nbreak", "U+000A"),
    ("title", "tab\there", "U+0009"),
    ("title", "bidi \u202e override", "U+202E"),
    ("description", "nul \x00", "U+0000"),
    ("advertiser", "zero\u200bwidth", "U+200B"),
    ("campaign", "del\x7f", "U+007F"),
    ("title", 7, "expected text, got a whole number"),
    ("channel", "ad", "ad channel comes only from a verified /ad link"),
    ("channel", "wechat", "not a channel"),
    ("channel", "GROUP_CHAT", "not a channel"),
    ("channel", 1, "got a whole number"),
    ("slug", "go", "2 characters long"),
    ("slug", "ADMIN", "reserved"),
    ("slug", "-abc", "not a slug"),
    ("disabled", "false", "expected true or false, got text"),
    ("disabled", 0, "expected true or false, got a whole number"),
    ("disabled", None, "may not be null"),
    ("tags", None, "may not be null"),
])
def test_bad_text_and_enum_fields(name: str, value: object, words: str) -> None:
    errors = _errors({"url": ITEM, name: value})
    assert list(errors) == [name] and words in errors[name], errors


def test_emoji_sequences_and_ideographic_spaces_are_text() -> None:
    title = "全家 👨\u200d👩\u200d👧 好物\u3000推荐"
    assert _read({"url": ITEM, "title": title}).title == title


def test_every_bad_field_is_reported_at_once() -> None:
    body = {
        "url": "https://evil.example.com/",
        "slug": "api",
        "channel": "ad",
        "tags": ["bad tag"],
        "title": "x" * 300,
        "image": "http://img.example.com/a.png",
        "expires_at": "2000-01-01T00:00:00Z",
        "max_clicks": 0,
        "disabled": "no",
        "bogus": 1,
    }
    with pytest.raises(LinkFieldErrors) as info:
        _read(body)
    err = info.value
    assert set(err.fields) == {"url", "slug", "channel", "tags", "title", "image", "expires_at", "max_clicks",
                               "disabled", "bogus"}
    answer = err.to_json()
    assert set(answer) == {"error", "fields"} and answer["fields"] == err.fields
    assert answer["error"] == "10 fields of the link are not valid"
    assert "url: " in str(err) and "max_clicks: " in str(err)


def test_a_body_that_is_not_an_object() -> None:
    for data in ([], "url", None, 3):
        with pytest.raises(LinkFieldErrors) as info:
            _read(data)
        assert info.value.fields == {} and "expected a JSON object" in info.value.error


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        read_link_fields({"url": ITEM}, allowed_hosts=HOSTS, now=datetime(2030, 1, 1))


def test_a_single_error_is_worded_in_the_singular() -> None:
    with pytest.raises(LinkFieldErrors) as info:
        _read({"url": ITEM, "max_clicks": 0})
    assert info.value.error == "1 field of the link is not valid"


# --- partial reads (PATCH) ---------------------------------------------------------------------------------


def test_a_partial_read_takes_only_the_given_fields() -> None:
    patch = _read({"title": "New title", "max_clicks": 5}, partial=True)
    assert patch == LinkFields(title="New title", max_clicks=5)
    assert patch.given == {"title", "max_clicks"}
    assert to_json(patch) == {"title": "New title", "max_clicks": 5}


def test_a_partial_read_still_checks_what_it_is_given() -> None:
    errors = _errors({"url": "https://evil.example.com/", "max_clicks": -3, "nope": 1}, partial=True)
    assert set(errors) == {"url", "max_clicks", "nope"}
    assert errors["url"] == _click_error("https://evil.example.com/")
    assert _read({}, partial=True) == LinkFields()


def test_a_patch_sets_and_clears() -> None:
    base = _read(FULL)
    patch = _read({"expires_at": None, "title": "Now cheaper", "tags": []}, partial=True)
    merged = patched(base, patch)
    assert merged.expires_at is None and merged.title == "Now cheaper" and merged.tags == ()
    assert merged.url == base.url and merged.max_clicks == base.max_clicks and merged.channel == base.channel
    assert patched(base, _read({}, partial=True)) == base


def test_a_patch_may_not_null_what_always_has_a_value() -> None:
    errors = _errors({"url": None, "disabled": None}, partial=True)
    assert set(errors) == {"url", "disabled"}


# --- the long link -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    ITEM,
    "https://item.taobao.com/item.htm?id=123&spm=a.b+c&x=%41",
    "  //detail.tmall.com/item.htm?id=9#frag  ",
    "https://s.click.taobao.com/t?e=m%3D2%26s%3Dabc&pvid=1",
    "【淘宝】限时 https://m.tb.cn/h.5abc?tk=AbCdEf123 「春季 新品+」 ￥AbCdEf123￥",
    "￥AbCdEf123￥ 打开手淘",
])
@pytest.mark.parametrize("channel", [None, *STAMP_CHANNELS])
def test_the_long_link_clicks_to_the_same_destination_and_channel(url: str, channel: str | None) -> None:
    body = {"url": url} if channel is None else {"url": url, "channel": channel}
    fields = _read(body)
    path, _, query = long_link(fields).partition("?")
    assert path == "/go"
    ctx = read_click(path, query, UA, at=NOW, settings=SETTINGS)
    # The same Link a /go click carrying the text itself gets.
    assert ctx.link == parse_link(url, HOSTS)
    if channel is None:
        assert ctx.channel is Channel.UNKNOWN and "no share parameter or channel stamp" in ctx.channel_reason
    else:
        assert ctx.channel is Channel(channel) and f"ch={channel}" in ctx.channel_reason


def test_the_long_link_is_percent_encoded_whole() -> None:
    fields = LinkFields(url="https://item.taobao.com/item.htm?id=1&ch=ad", channel=Channel.MOMENTS)
    assert long_link(fields) == "/go?url=https%3A%2F%2Fitem.taobao.com%2Fitem.htm%3Fid%3D1%26ch%3Dad&ch=moments"


def test_advertiser_and_campaign_are_not_in_the_long_link() -> None:
    fields = _read({"url": ITEM, "advertiser": "acme", "campaign": "c1"})
    assert long_link(fields) == "/go?url=https%3A%2F%2Fitem.taobao.com%2Fitem.htm%3Fid%3D123"


def test_a_link_without_url_has_no_long_link() -> None:
    with pytest.raises(ValueError):
        long_link(LinkFields(title="x"))


def test_a_long_link_fits_a_click_for_every_url_accepted() -> None:
    """At the edge: the longest share text of 好 accepted, stamped with the longest channel, fits the /go
    query and clicks; one 好 more is refused."""
    def body(count: int) -> dict[str, str]:
        return {"url": "好" * count + " https://item.taobao.com/item.htm?id=123", "channel": "private_chat"}

    def accepted(count: int) -> bool:
        try:
            _read(body(count))
        except LinkFieldErrors:
            return False
        return True

    low, high = 0, 2000  # accepted(low), not accepted(high)
    assert accepted(low) and not accepted(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if accepted(middle) else (low, middle)
    query = long_link(_read(body(low))).partition("?")[2]
    assert MAX_QUERY_LENGTH - 9 < len(query) <= MAX_QUERY_LENGTH
    assert read_click("/go", query, UA, at=NOW, settings=SETTINGS).channel is Channel.PRIVATE_CHAT
    assert f"the limit is {MAX_QUERY_LENGTH}" in _errors(body(high))["url"]


def test_link_fields_are_frozen() -> None:
    fields = _read({"url": ITEM})
    with pytest.raises(dataclasses.FrozenInstanceError):
        fields.url = "https://evil.com/"  # type: ignore[misc]
