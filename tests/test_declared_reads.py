"""What a click reads is declared once (router.decision.conditions), and what is kept is proved, not trusted.

- A condition type that does not declare what it reads is refused when it is defined.
- Every condition type reads only what it declares (the parts it does not are stand-ins that raise).
- A condition type defined here, in the test alone (one that reads the time, one that reads a request
  header), joins the rules, the schema and the reference with no other file touched, and caching holds
  for it: the property test below plays random click streams through everything a server keeps and holds
  every answer against the one decided afresh, with nothing kept, for the same click at the same time;
  its second form sends the streams through the server's own click handler, its clock set per click.
- Taking the time out of a key by hand makes the property test fail (the mutation check).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.decision import conditions
from router.decision.answers import Answers
from router.decision.apps import bundled_catalogue
from router.decision.click import BadClick, read_click
from router.decision.conditions import (
    CONDITION_TYPES,
    Condition,
    ConditionError,
    Header,
    Part,
    UndeclaredRead,
    condition_type,
    declared_only,
    header,
)
from router.decision.decide import decide, explain
from router.decision.named_clients import CLIENTS
from router.decision.rules import RuleSet, RuleSource, build_rule_set, load_rules
from router.decision.types import OS, Channel, Decision, Device, Expansion, LinkKind, Platform
from router.policy.casebook import Click
from router.policy.schema import rules_reference, rules_schema
from router.serve.config import Settings, bundled_rules_dir
from tests import uas
from tests.conftest import TEST_KEYS
from tests.test_answers import serve_click

SETTINGS = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS)
EDGE = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)  # windows open and close on the hours around it
LANGUAGE = "accept-language"


# Two condition types defined here alone. Defining one is the whole change: its class.


def _hour_of_day() -> type[Condition]:
    @condition_type
    @dataclass(frozen=True, slots=True)
    class HourOfDay(Condition):
        hours: frozenset[int]
        key = "hour_of_day"
        reads = frozenset({Part.TIME})
        meaning = "The hour of the click's day, 0-23, in UTC."
        example = "hour_of_day: [10, 11]"

        @classmethod
        def build(cls, value: object, apps: object = None) -> HourOfDay:
            hours = value if isinstance(value, list) else [value]
            if not hours or not all(isinstance(h, int) and not isinstance(h, bool) and 0 <= h <= 23 for h in hours):
                raise ConditionError(f"'hour_of_day' takes hours from 0 to 23, got {value!r}")
            return cls(frozenset(hours))  # type: ignore[arg-type]

        @classmethod
        def value_schema(cls, apps: object = None) -> dict[str, Any]:
            hour = {"type": "integer", "minimum": 0, "maximum": 23}
            return {"anyOf": [hour, {"type": "array", "items": hour, "minItems": 1}]}

        def holds(self, ctx: Any, rule_id: str) -> bool:
            return ctx.at.astimezone(UTC).hour in self.hours

        def explain(self, ctx: Any) -> str:
            return f"the hour is {ctx.at.astimezone(UTC).hour}, not {sorted(self.hours)}"

        def describe(self) -> str:
            return f"the hour is one of {sorted(self.hours)}"

    return HourOfDay


def _language() -> type[Condition]:
    @condition_type
    @dataclass(frozen=True, slots=True)
    class LanguageIs(Condition):
        languages: frozenset[str]
        key = "language"
        reads = frozenset({Header(LANGUAGE)})
        meaning = "The first language the browser asks for (Accept-Language), as two letters."
        example = "language: [zh, en]"

        @classmethod
        def build(cls, value: object, apps: object = None) -> LanguageIs:
            items = value if isinstance(value, list) else [value]
            if not items or not all(isinstance(item, str) and len(item) == 2 for item in items):
                raise ConditionError(f"'language' takes two-letter codes, got {value!r}")
            return cls(frozenset(str(item).lower() for item in items))

        @classmethod
        def value_schema(cls, apps: object = None) -> dict[str, Any]:
            code = {"type": "string", "minLength": 2, "maxLength": 2}
            return {"anyOf": [code, {"type": "array", "items": code, "minItems": 1}]}

        def holds(self, ctx: Any, rule_id: str) -> bool:
            return header(ctx, LANGUAGE)[:2].lower() in self.languages

        def explain(self, ctx: Any) -> str:
            return f"the language is {header(ctx, LANGUAGE)[:2] or 'not given'}, not {sorted(self.languages)}"

        def describe(self) -> str:
            return f"the language is {' or '.join(sorted(self.languages))}"

    return LanguageIs


@contextmanager
def synthetic_vocabulary() -> Iterator[tuple[type[Condition], type[Condition]]]:
    """The shipped condition types plus the two above, for the length of a test."""
    shipped = dict(CONDITION_TYPES)
    try:
        yield _hour_of_day(), _language()
    finally:
        CONDITION_TYPES.clear()
        CONDITION_TYPES.update(shipped)


# Declarations.


def test_a_condition_type_that_does_not_declare_what_it_reads_is_refused() -> None:
    """Forgetting `reads` (or declaring nothing) fails where the class is defined, naming what is missing."""
    shipped = dict(CONDITION_TYPES)
    with pytest.raises(TypeError, match="condition type Forgetful does not declare reads"):
        @condition_type
        @dataclass(frozen=True, slots=True)
        class Forgetful(Condition):
            key = "forgetful"
            meaning = "Forgets what it reads."
            example = "forgetful: true"

    with pytest.raises(TypeError, match="'reads' must be a non-empty frozenset"):
        @condition_type
        @dataclass(frozen=True, slots=True)
        class Empty(Condition):
            key = "empty"
            reads = frozenset()
            meaning = "Reads nothing."
            example = "empty: true"

    with pytest.raises(TypeError, match="does not implement build, value_schema, holds, explain, describe"):
        @condition_type
        class Hollow(Condition):
            key = "hollow"
            reads = frozenset({Part.LINK})
            meaning = "Declares, does nothing."
            example = "hollow: true"

    with pytest.raises(TypeError, match="condition key 'app' is taken by AppIs"):
        @condition_type
        class Twice(conditions.AppIs):
            __slots__ = ()

    assert shipped == CONDITION_TYPES  # nothing refused was registered


def _sample_clicks() -> list[Any]:
    """Clicks of every kind: apps and OSes, chats, ads (verified and not), short links, languages, times."""
    out = []
    uas_ = [client.ua for client in CLIENTS.values()] + [uas.WECHAT_IOS, uas.GOOGLEBOT]
    for n, ua in enumerate(uas_):
        for request in (_go("https://item.taobao.com/item.htm?id=1", "groupmessage"),
                        _go("https://m.tb.cn/h.abc?tk=x", ""), _ad("https://detail.tmall.com/item.htm?id=2"),
                        "/ad?url=https%3A%2F%2Fitem.taobao.com%2Fitem.htm%3Fid%3D3&src=unidesk&kid=k&sig=bad"):
            path, _, query = request.partition("?")
            ctx = read_click(path, query, ua, at=EDGE + timedelta(minutes=37 * n), settings=SETTINGS,
                             visitor=f"v{n}", headers=((LANGUAGE, ["zh-CN", "en-US", ""][n % 3]),))
            out.append(ctx)
    return out


def _example(kind: type[Condition]) -> Condition:
    """A condition of the type, built from the example the reference shows."""
    return kind.build(yaml.safe_load(kind.example)[kind.key], bundled_catalogue())


def test_every_condition_type_reads_only_what_it_declares() -> None:
    """holds, explain and describe see only the declared parts of a click (the rest raise when touched),
    and answer as they do on the whole click: so every key derived from the declarations is whole."""
    with synthetic_vocabulary():
        for key, kind in CONDITION_TYPES.items():
            condition = _example(kind)
            for ctx in _sample_clicks():
                seen = declared_only(ctx, kind.reads)
                try:
                    assert condition.holds(seen, "rule") == condition.holds(ctx, "rule"), key
                    if not condition.holds(ctx, "rule"):
                        assert condition.explain(seen) == condition.explain(ctx), key
                except UndeclaredRead as undeclared:
                    pytest.fail(f"condition {key!r} {undeclared}")
            assert condition.describe()


def test_a_condition_that_reads_what_it_does_not_declare_is_caught() -> None:
    """The check above can fail: an hour-of-day that claims to read the link only touches the time."""
    with synthetic_vocabulary() as (hour_of_day, _):
        condition = hour_of_day.build([10])
        ctx = _sample_clicks()[0]
        with pytest.raises(UndeclaredRead, match="read the click's at"):
            condition.holds(declared_only(ctx, frozenset({Part.LINK})), "rule")


def test_a_condition_type_defined_in_a_test_joins_the_rules_schema_and_reference() -> None:
    """The loader takes it (with file:line errors for bad values), and the schema and reference list it."""
    with synthetic_vocabulary():
        rules = _rules("rules:\n  - {id: evening, when: {hour_of_day: [18, 19]}, then: web}\n"
                       "  - {id: english, when: {language: en}, then: block}\ndefault: app\n")
        assert rules.headers_read == (LANGUAGE,)
        assert [rule.timeless for rule in rules.rules] == [False, True]
        when = rules_schema()["$defs"]["when"]["properties"]
        assert when["hour_of_day"]["anyOf"][0] == {"type": "integer", "minimum": 0, "maximum": 23}
        assert "| `language` | The first language the browser asks for" in rules_reference()
        assert "| header `accept-language` |" in rules_reference()
        with pytest.raises(Exception, match=r"t\.yaml:2:36: 'hour_of_day' takes hours from 0 to 23, got 25"):
            _rules("rules:\n  - {id: late, when: {hour_of_day: 25}, then: web}\ndefault: app\n")
    with pytest.raises(Exception, match="unknown condition 'hour_of_day'"):
        _rules("rules:\n  - {id: late, when: {hour_of_day: 2}, then: web}\ndefault: app\n")


def _rules(text: str) -> RuleSet:
    return build_rule_set([RuleSource("t.yaml", text.encode())], origin="t")


# The property: whatever is kept gives the answer decided afresh.

# The app names are the shipped catalogue's ids (router.decision.apps), not only the ones the code names.
_ENUMS = {"channel": Channel, "app": bundled_catalogue().ids, "os": OS, "device": Device, "link": LinkKind,
          "platform": Platform, "expansion": Expansion}
_EDGES = [(EDGE + timedelta(hours=h)).isoformat() for h in (-1, 0, 1, 2)]


def _subset(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)


def _window() -> st.SearchStrategy[dict[str, str]]:
    return st.one_of(
        st.builds(lambda a: {"from": a}, st.sampled_from(_EDGES)),
        st.builds(lambda b: {"until": b}, st.sampled_from(_EDGES)),
        st.tuples(st.integers(0, 2), st.integers(1, 3)).filter(lambda ab: ab[0] < ab[1]).map(
            lambda ab: {"from": _EDGES[ab[0]], "until": _EDGES[ab[1]]}),
    )


# A value strategy for every condition type there is: a new type without one fails the test below.
VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{key: _subset([str(value) for value in enum]) for key, enum in _ENUMS.items()},
    "app_version": st.sampled_from([">=8.0.30", "<8.0.40", ">=17", "==8.0.*", ">=7,<9", ">=120"]),
    "os_version": st.sampled_from([">=16", "<14", ">=10,<13", ">=5", "==17.*"]),
    "mini_program": st.booleans(),
    "ad_source": _subset(["unidesk", "gdt"]),
    "advertiser": _subset(["1001", "1002"]),
    "campaign": _subset(["c-618", "c-1111"]),
    "window": _window(),
    "rollout": st.sampled_from([0, 30, 50, 100]),
    "hour_of_day": st.lists(st.integers(8, 12), min_size=1, max_size=3, unique=True),
    "language": _subset(["zh", "en", "fr"]),
    "tag": _subset(["spring-sale", "vip"]),
}
THEN = st.sampled_from(["app", "web", "landing", "block", '{action: landing, page: moments}',
                        '{action: app, via: universal}', '{action: block, status: 451}'])


@st.composite
def rule_sets(draw: st.DrawFn) -> str:
    keys = sorted(VALUES)  # every condition type, the two defined here too (the test below holds them equal)
    lines = ["rules:"]
    for n in range(draw(st.integers(1, 10))):
        when = {key: draw(VALUES[key]) for key in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=2,
                                                               unique=True))}
        lines.append(f"  - {{id: r{n}, when: {json.dumps(when)}, then: {draw(THEN)}}}")
    lines.append(f"default: {draw(THEN)}")
    return "\n".join(lines) + "\n"


LINKS = ["https://item.taobao.com/item.htm?id=1", "https://detail.tmall.com/item.htm?id=2", "https://m.tb.cn/h.abc?tk=x",
         "https://s.click.taobao.com/t?e=1", "https://uland.taobao.com/coupon/edetail?e=x",
         "https://shop123.taobao.com/"]
AGENTS = sorted({client.ua for client in CLIENTS.values()} | {
    uas.WECHAT_IOS, uas.WECHAT_ANDROID, uas.WECOM_IOS, uas.SAFARI_IOS, uas.CHROME_ANDROID, uas.GOOGLEBOT,
    uas.WECHAT_IOS.replace("MicroMessenger/8.0.47", "MicroMessenger/8.0.20"),
    uas.WECHAT_IOS.replace("OS 17_4", "OS 13_1")})
LANGUAGES = ["zh-CN,zh;q=0.9", "en-US,en;q=0.8", "fr-FR", ""]


def _go(url: str, share: str, extra: str = "") -> str:
    path = Click(url=url).request(TEST_KEYS)
    return path + (f"&from={share}" if share else "") + extra


def _ad(url: str, advertiser: str = "1001", source: str = "unidesk", campaign: str = "c-618") -> str:
    return Click(url=url, channel=Channel.AD, ad_source=source, advertiser=advertiser,
                 campaign=campaign).request(TEST_KEYS)


@st.composite
def click_streams(draw: st.DrawFn) -> list[tuple[str, str, datetime, str, tuple[tuple[str, str], ...],
                                                  tuple[str, ...]]]:
    """Clicks as a server meets them: few links and user agents (so answers are kept and reused), the same
    user agent with other headers, many visitors or few, and times on both sides of the windows' edges."""
    visitors = draw(st.sampled_from([3, 300]))  # few visitors, or many on one rollout
    requests = st.one_of(
        st.builds(_go, st.sampled_from(LINKS), st.sampled_from(["", "groupmessage", "singlemessage", "timeline"]),
                  st.sampled_from(["", "", "&gdt_vid=wx123"])),
        st.builds(_ad, st.sampled_from(LINKS[:2]), st.sampled_from(["1001", "1002", "7"]),
                  st.sampled_from(["unidesk", "gdt"]), st.sampled_from(["c-618", "c-1111"])),
    )
    times = st.builds(lambda edge, seconds: EDGE + timedelta(hours=edge, seconds=seconds),
                      st.integers(-1, 2), st.sampled_from([-3600, -1, 0, 1, 1799, 3599]))
    # A few requests and user agents per stream, so that clicks repeat and what is kept is reused.
    pool = draw(st.lists(requests, min_size=1, max_size=3))
    agents = draw(st.lists(st.sampled_from(AGENTS), min_size=1, max_size=3))
    click = st.tuples(st.sampled_from(pool), st.sampled_from(agents), times,
                      st.integers(0, visitors - 1).map(lambda n: f"visitor-{n:04d}"),
                      st.sampled_from(LANGUAGES).map(lambda lang: ((LANGUAGE, lang),)),
                      # the tags of the short link the click came through (one destination, several links)
                      st.sampled_from([(), ("spring-sale",), ("vip", "spring-sale"), ("other",)]))
    return draw(st.lists(click, min_size=5, max_size=40))


FIELDS = ("action", "rule", "status", "location", "reason", "landing", "app_link", "app", "notes", "messages")


def served_and_fresh(rules: RuleSet, stream: list[Any]) -> Iterator[tuple[Any, Decision | None, Decision | None]]:
    """For each click of `stream`: what a server keeping everything serves (as the click handler does: the
    kept answers first, else read and decide, keeping what may be), and what a rule set that kept nothing
    decides for the same click at the same time."""
    answers = Answers()
    for request, ua, at, visitor, headers, *rest in stream:
        tags = rest[0] if rest else ()
        path, _, query = request.partition("?")
        wanted = tuple((name, dict(headers).get(name, "")) for name in rules.headers_read)
        served: Decision | None
        try:
            served = serve_click(answers, rules, path, query, ua, at=at, visitor=visitor, settings=SETTINGS,
                                 headers=wanted, tags=tags)[1]
        except BadClick:
            served = None
        fresh: Decision | None
        try:
            afresh = dataclasses.replace(rules)  # the same rules with empty stores
            ctx = read_click(path, query, ua, at=at, settings=SETTINGS, visitor=visitor, headers=wanted, tags=tags)
            fresh = decide(afresh, ctx)
            assert _same(fresh, explain(afresh, ctx))  # the full walk agrees with the index
        except BadClick:
            fresh = None
        yield (request, ua, at, visitor, headers, tags), served, fresh


def _same(a: Decision | None, b: Decision | None) -> bool:
    if a is None or b is None:
        return a is b
    return all(getattr(a, name) == getattr(b, name) for name in FIELDS)


def first_difference(rules: RuleSet, stream: list[Any]) -> tuple[Any, Decision | None, Decision | None] | None:
    return next((found for found in served_and_fresh(rules, stream) if not _same(found[1], found[2])), None)


def test_the_property_test_draws_every_condition_type() -> None:
    """A condition type the property test cannot draw would escape it."""
    with synthetic_vocabulary():
        assert set(VALUES) == set(CONDITION_TYPES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=rule_sets(), stream=click_streams())
def test_every_kept_answer_is_the_answer_decided_afresh(text: str, stream: list[Any]) -> None:
    """Random rule sets of every condition type (shipped and defined here) and random click streams: what
    the kept answers, choices, kinds and built answers serve is what nothing kept decides."""
    with synthetic_vocabulary():
        rules = _rules(text)
        found = first_difference(rules, stream)
        assert found is None, f"{text}\nclick {found[0]}\nserved {found[1]}\nfresh  {found[2]}"  # type: ignore[index]


def test_taking_the_time_out_of_a_key_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mutation check: an hour-of-day that says it reads the link, not the time, is kept as if timeless,
    and the 10:00 answer is served at 20:00; the property's check sees it."""
    with synthetic_vocabulary() as (hour_of_day, _):
        monkeypatch.setattr(hour_of_day, "reads", frozenset({Part.LINK}))
        rules = _rules("rules:\n  - {id: morning, when: {hour_of_day: 10}, then: web}\ndefault: app\n")
        request = _go(LINKS[0], "")
        stream = [(request, uas.SAFARI_IOS, EDGE, "v", ()), (request, uas.SAFARI_IOS, EDGE.replace(hour=20), "v", ())]
        found = first_difference(rules, stream)
        assert found is not None and found[1].rule == "morning" and found[2].rule == "default"  # type: ignore[union-attr]


def test_a_header_read_by_a_rule_keys_the_kept_answers() -> None:
    """The same user agent and link with another Accept-Language: each gets its own answer, kept apart."""
    with synthetic_vocabulary():
        rules = _rules("rules:\n  - {id: english, when: {language: en}, then: web}\ndefault: app\n")
        request = _go(LINKS[0], "")
        stream = [(request, uas.SAFARI_IOS, EDGE, "v", ((LANGUAGE, lang),)) for lang in ("en-US", "zh-CN", "en-GB")]
        served = [found[1].rule for found in served_and_fresh(rules, stream)]  # type: ignore[union-attr]
        assert served == ["english", "default", "english"]


def test_a_tag_read_by_a_rule_keys_the_kept_answers() -> None:
    """One destination behind short links of different tags: each tag set gets its own answer, kept apart,
    and a long link (no tags) matches no tag rule."""
    rules = _rules("rules:\n  - {id: sale, when: {tag: spring-sale}, then: web}\ndefault: app\n")
    request = _go(LINKS[0], "")
    stream = [(request, uas.SAFARI_IOS, EDGE, "v", (), tags)
              for tags in [("spring-sale",), (), ("vip", "spring-sale"), ("vip",), ("spring-sale",)]]
    served = [found[1].rule for found in served_and_fresh(rules, stream)]  # type: ignore[union-attr]
    assert served == ["sale", "default", "sale", "default", "sale"]


def test_the_shipped_rules_read_no_header_and_key_by_what_they_read() -> None:
    """The shipped rules read no request header: a click's Context carries none."""
    assert load_rules(bundled_rules_dir()).headers_read == ()


def _served_by_the_app(app: Any, request: str, ua: str, cookie: str,
                       headers: tuple[tuple[str, str], ...]) -> tuple[int, str | None]:
    """One click through the server's own click handler (router.serve.clicks), in process: status, Location."""
    path, _, query = request.partition("?")
    sent = [(b"host", b"x"), (b"user-agent", ua.encode()), (b"cookie", f"adlink_vid={cookie}".encode()),
            *((name.encode(), value.encode()) for name, value in headers if value)]
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "headers": sent, "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8000), "scheme": "http",
             "http_version": "1.1", "root_path": ""}
    answer: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["location"] = dict(message["headers"]).get(b"location", b"").decode() or None

    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["location"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=rule_sets(), stream=click_streams())
def test_the_servers_click_handler_serves_what_is_decided_afresh(text: str, stream: list[Any],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same property through the server's own click handler, with everything it keeps (kept answers,
    choices, kinds, built answers), its clock set to each click's time: status and Location are those of
    a decision made afresh with nothing kept."""
    from router.serve import clicks as click_handler
    from router.serve.visitors import Visitors
    from router.serve.web import create_app

    with synthetic_vocabulary():
        rules = _rules(text)
        app = create_app(SETTINGS, rules, click_stream=io.BytesIO())
        clock = [EDGE]
        monkeypatch.setattr(click_handler, "time", SimpleNamespace(time=lambda: clock[0].timestamp()))
        issued: dict[str, tuple[str, str]] = {}  # each of the stream's visitors, as a cookie the router issued
        for request, ua, at, named, headers, _tags in stream:  # a /go click carries no tags
            clock[0] = at
            cookie, visitor = issued.setdefault(named, Visitors(SETTINGS.signing_keys).issue())
            status, location = _served_by_the_app(app, request, ua, cookie, headers)
            path, _, query = request.partition("?")
            wanted = tuple((name, dict(headers).get(name, "")) for name in rules.headers_read)
            try:
                ctx = read_click(path, query, ua, at=at, settings=SETTINGS, visitor=visitor, headers=wanted)
            except BadClick as bad:
                assert status == bad.status, (text, request)
                continue
            fresh = decide(dataclasses.replace(rules), ctx)
            assert (status, location) == (fresh.status, fresh.location), (text, request, ua, at, visitor, headers)
