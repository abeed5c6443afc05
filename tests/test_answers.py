"""Kept answers (router.decision.answers) and the click stream's writer (router.serve.clicklog)."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from router.decision.answers import MAX_KEY_CHARS, Answers
from router.decision.click import read_click
from router.decision.clients import parse_client
from router.decision.rules import RuleSet, RuleSource, build_rule_set
from router.decision.types import Context, Decision
from router.serve import clicklog
from router.serve.clicklog import ClickLog
from router.serve.config import Settings, bundled_rules_dir
from tests import uas
from tests.conftest import TEST_KEYS

AT = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
SETTINGS = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS)
QUERY = "url=" + quote("https://item.taobao.com/item.htm?id=123456", safe="")


def rules(text: str) -> RuleSet:
    return build_rule_set([RuleSource("r.yaml", text.encode())], origin="r")


PLAIN = rules("rules:\n  - {id: safari, when: {app: browser}, then: app}\ndefault: landing\n")
ROLLOUT = rules("rules:\n  - {id: half, when: {app: browser, rollout: 50}, then: app}\ndefault: landing\n")
WINDOW = rules("rules:\n  - {id: sale, when: {window: {from: '2026-11-11T00:00:00+08:00'}}, then: web}\n"
               "default: landing\n")


def serve_click(answers: Answers, ruleset: RuleSet, path: str, query: str, ua: str, *, at: datetime, visitor: str,
                settings: Settings = SETTINGS, headers: tuple[tuple[str, str], ...] = (),
                tags: tuple[str, ...] = ()) -> tuple[Context, Decision]:
    """What the click handler does with a click that waits on nothing (router.serve.clicks): the answer kept
    for it, else the click read and decided, and kept when it may be (raises BadClick like read_click)."""
    client = parse_client(ua)
    kept = answers.get(ruleset, path, query, client, headers, tags)
    if kept is not None:
        return kept
    ctx = read_click(path, query, ua, at=at, settings=settings, visitor=visitor, client=client, headers=headers,
                     tags=tags)
    return ctx, answers.decide(ruleset, path, query, ctx)


def answer(answers: Answers, ruleset: RuleSet, visitor: str = "visitor-01", path: str = "/go",
           query: str = QUERY) -> object:
    return serve_click(answers, ruleset, path, query, uas.SAFARI_IOS, at=AT, visitor=visitor)


def test_a_timeless_answer_is_kept_and_given_again() -> None:
    """The second identical /go click gets the very same decision without being read again."""
    answers = Answers()
    _, first = answer(answers, PLAIN)  # type: ignore[misc]
    _, again = answer(answers, PLAIN, visitor="someone-else")  # type: ignore[misc]
    assert len(answers) == 1 and again is first


def test_user_agents_that_say_the_same_client_share_one_answer() -> None:
    """Kept by the Client, not the user agent: two WeChat users (their per-install ids differ) share one
    answer; another client gets its own."""
    ruleset = rules("rules:\n  - {id: wechat, when: {app: wechat}, then: web}\ndefault: landing\n")
    answers = Answers()
    first_ua, second_ua = (uas.WECHAT_ANDROID.replace("MMWEBID/", f"MMWEBID/{n}") for n in (1, 2))
    assert parse_client(first_ua) == parse_client(second_ua)
    ctx, first = serve_click(answers, ruleset, "/go", QUERY, first_ua, at=AT, visitor="a", settings=SETTINGS)
    again_ctx, again = serve_click(answers, ruleset, "/go", QUERY, second_ua, at=AT, visitor="b", settings=SETTINGS)
    assert again is first and again_ctx is ctx and first.action.value == "web" and len(answers) == 1
    _, other = serve_click(answers, ruleset, "/go", QUERY, uas.SAFARI_IOS, at=AT, visitor="c", settings=SETTINGS)
    assert other.action.value == "landing" and len(answers) == 2


def test_clients_of_one_kind_share_an_answer_and_each_click_keeps_its_own_client() -> None:
    """Kept by what the rules read of a client (its kind), not the Client: WeChat 8.0.47 and 8.0.49 on
    the same side of a version range share one answer, 8.0.20 on the other side gets its own; the Context
    handed out always carries the click's own Client (what is logged and shown of it)."""
    ruleset = rules("rules:\n  - {id: new-wechat, when: {app: wechat, app_version: '>=8.0.30'}, then: web}\n"
                    "default: landing\n")
    answers = Answers()
    uas_by_version = {v: uas.WECHAT_ANDROID.replace("MicroMessenger/8.0.47", f"MicroMessenger/{v}")
                      for v in ("8.0.47", "8.0.49", "8.0.20")}
    clients = {v: parse_client(ua) for v, ua in uas_by_version.items()}
    assert len(set(clients.values())) == 3
    first_ctx, first = serve_click(answers, ruleset, "/go", QUERY, uas_by_version["8.0.47"], at=AT, visitor="a",
                                      settings=SETTINGS)
    ctx, again = serve_click(answers, ruleset, "/go", QUERY, uas_by_version["8.0.49"], at=AT, visitor="b",
                                settings=SETTINGS)
    assert again is first and first.action.value == "web" and len(answers) == 1
    assert ctx.client is clients["8.0.49"] and first_ctx.client is clients["8.0.47"] and ctx.link == first_ctx.link
    old_ctx, old = serve_click(answers, ruleset, "/go", QUERY, uas_by_version["8.0.20"], at=AT, visitor="c",
                                  settings=SETTINGS)
    assert old.action.value == "landing" and old_ctx.client is clients["8.0.20"] and len(answers) == 2


def test_a_kept_answer_is_the_answer_decided_afresh_for_every_client_of_the_corpus() -> None:
    """Over the user-agent corpus and the shipped rules, in two orders: whatever client made the kept
    answer, every click gets what deciding it afresh gives, with its own client in the Context."""
    from router.decision.click import read_click
    from router.decision.decide import decide
    from router.decision.rules import load_rules

    shipped = load_rules(SETTINGS.rules_dir)
    # HarmonyOS 4 (Android apps run) and NEXT (they don't): one app, OS and device, different answers.
    harmony = ["Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00; HMSCore 6.11.0.302) AppleWebKit/537.36 "
               "(KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.1.300 Mobile Safari/537.36",
               "Mozilla/5.0 (Phone; OpenHarmony 5.0; HarmonyOS 5.0) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/114.0.0.0 Safari/537.36 ArkWeb/4.1.6.1 Mobile HuaweiBrowser/5.0.4.300"]
    agents = harmony + uas.corpus_user_agents()
    queries = [QUERY + "&from=groupmessage", QUERY + "&from=timeline", QUERY]
    for order in (agents, agents[::-1]):
        answers = Answers()
        for ua in order:
            for query in queries:
                ctx, decision = serve_click(answers, shipped, "/go", query, ua, at=AT, visitor="v", settings=SETTINGS)
                fresh = decide(shipped, read_click("/go", query, ua, at=AT, settings=SETTINGS, visitor="v"))
                assert ctx.client is parse_client(ua), ua
                assert (decision.action, decision.rule, decision.location, decision.landing, decision.app_link,
                        decision.notes) == (fresh.action, fresh.rule, fresh.location, fresh.landing,
                                            fresh.app_link, fresh.notes), (ua, query)


def test_answers_that_depend_on_who_or_when_are_not_kept() -> None:
    """A rollout (the visitor) or a window (the time) on the way: decided afresh every time."""
    for ruleset in (ROLLOUT, WINDOW):
        answers = Answers()
        answer(answers, ruleset)
        assert len(answers) == 0


def test_a_pilot_shipped_dark_or_fully_open_takes_nobody_or_everybody() -> None:
    """A rollout at 0 % or 100 % does not depend on the visitor: the answer is kept."""
    for percent in (0, 100):
        ruleset = rules(f"rules:\n  - {{id: pilot, when: {{app: browser, rollout: {percent}}}, then: web}}\n"
                        "default: app\n")
        answers = Answers()
        answer(answers, ruleset)
        assert len(answers) == 1


def test_a_rule_after_the_match_does_not_matter() -> None:
    """A rollout rule after the deciding one is never tried: the answer is kept."""
    ruleset = rules("rules:\n  - {id: safari, when: {app: browser}, then: app}\n"
                    "  - {id: half, when: {rollout: 50}, then: web}\ndefault: landing\n")
    answers = Answers()
    answer(answers, ruleset)
    assert len(answers) == 1


def test_ad_clicks_and_long_keys_are_never_kept() -> None:
    """/ad (expiry, replays) and a query past the key limit are decided every time."""
    answers = Answers()
    answers.keep(PLAIN, "/ad", QUERY, *answer(Answers(), PLAIN))  # type: ignore[misc]
    answer(answers, PLAIN, query=QUERY + "&x=" + "a" * MAX_KEY_CHARS)
    assert len(answers) == 0


def test_another_rule_set_starts_afresh() -> None:
    """What was kept for one rule set is never given for another (a reload)."""
    answers = Answers()
    _, kept = answer(answers, PLAIN)  # type: ignore[misc]
    other = rules("rules:\n  - {id: safari, when: {app: browser}, then: web}\ndefault: landing\n")
    assert answers.get(other, "/go", QUERY, parse_client(uas.SAFARI_IOS)) is None
    _, fresh = answer(answers, other)  # type: ignore[misc]
    assert fresh is not kept and fresh.action.value == "web" and len(answers) == 1


def test_the_store_is_bounded() -> None:
    """The store never grows past its limit."""
    answers = Answers(limit=10)
    for n in range(25):
        answer(answers, PLAIN, query=f"{QUERY}&gdt_vid=wx{n}")
    assert 1 <= len(answers) <= 10


def test_the_click_stream_is_written_by_its_thread_and_flushed_on_close() -> None:
    """Lines are JSON, one per click, all of them written by the time close() returns."""
    stream = io.BytesIO()
    log = ClickLog(stream)
    for n in range(1000):
        log.write({"n": n, "ua": "微信"})
    log.close()
    lines = stream.getvalue().decode().splitlines()
    assert [json.loads(line)["n"] for line in lines] == list(range(1000))
    assert json.loads(lines[0])["ua"] == "微信"


def test_the_click_stream_writes_lines_written_after_a_close() -> None:
    """An app closed and used again (a second lifespan, tests) starts its writer again: no line is lost."""
    stream = io.BytesIO()
    log = ClickLog(stream)
    log.write({"n": 1})
    log.close()
    log.write({"n": 2})
    deadline = time.monotonic() + 10
    while b'"n":2' not in stream.getvalue() and time.monotonic() < deadline:  # written by the new thread
        time.sleep(0.01)
    for n in range(3, 6):
        log.write({"n": n})
    log.close()
    assert [json.loads(line)["n"] for line in stream.getvalue().splitlines()] == [1, 2, 3, 4, 5]


def test_a_broken_stream_never_breaks_a_click() -> None:
    """Writing to a closed stream is dropped quietly; write() itself never raises."""
    stream = io.BytesIO()
    stream.close()
    log = ClickLog(stream)
    log.write({"n": 1})
    log.close()


def test_a_stuck_stream_bounds_the_waiting_lines_and_reports_the_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the stream takes nothing, lines past the limit are dropped and counted; the count is written
    once the stream takes lines again."""
    monkeypatch.setattr(clicklog, "MAX_WAITING_BYTES", 50 * len(b'{"n":100}\n'))  # 50 lines
    release = threading.Event()

    class Stuck(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            release.wait(10)
            return super().write(data)

    stream = Stuck()
    log = ClickLog(stream)
    for n in range(500):
        log.write({"n": n})
    release.set()
    log.close()
    records = [json.loads(line) for line in stream.getvalue().decode().splitlines()]
    written = [r for r in records if "n" in r]
    dropped = sum(r["lines"] for r in records if r.get("type") == "dropped")
    assert len(written) + dropped == 500 and dropped >= 400
