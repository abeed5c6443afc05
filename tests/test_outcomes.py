"""Outcome beacons, click tokens, second jumps and rollout arms (router.serve.outcomes, click_token, decide)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from router.decision.rules import RuleSource, build_rule_set
from router.decision.signing import SigningKeys, sign
from router.serve.click_token import MAX_TOKEN_CHARS, ClickToken, read_token, token_of
from router.serve.config import ANY_NETWORK, Settings, bundled_rules_dir
from router.serve.outcomes import MAX_BODY, arms_of, arms_text, token_in
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS

ITEM = "https://item.taobao.com/item.htm?id=123456"
GROUP = f"/go?url={quote(ITEM, safe='')}&from=groupmessage"
NOW = 1_800_000_000.0


def token(**changes: object) -> ClickToken:
    fields: dict[str, object] = {"click": "req-1", "rule": "wechat-group", "rules": "abc123", "arms": "",
                                 "app": "wechat", "expires": int(NOW) + 3600}
    fields.update(changes)
    return ClickToken(**fields)  # type: ignore[arg-type]


# --- tokens ---------------------------------------------------------------------------------------


def test_a_token_reads_back_what_it_was_made_with() -> None:
    made = token(rule="rule, with: odd\ncharacters %", arms="a:in,b%2Cc:out")
    assert read_token(token_of(made, TEST_KEYS), TEST_KEYS, NOW) == made


def test_forged_expired_foreign_and_oversized_tokens_are_refused() -> None:
    good = token_of(token(), TEST_KEYS)
    kid, sealed = good.split(".")
    other = token_of(token(rule="other-rule"), TEST_KEYS).split(".")[1]
    assert read_token(f"{kid}.{other[:16]}{sealed[16:]}", TEST_KEYS, NOW) is None  # another token's nonce
    flipped = sealed[:-1] + ("A" if sealed[-1] != "A" else "B")
    assert read_token(f"{kid}.{flipped}", TEST_KEYS, NOW) is None
    assert read_token(good, TEST_KEYS, NOW + 3600) is None  # expired at its expiry
    assert read_token(good, SigningKeys.parse("k2:another-secret-0123456789"), NOW) is None
    assert read_token(f"nokey.{sealed}", TEST_KEYS, NOW) is None
    assert read_token("x" * (MAX_TOKEN_CHARS + 1), TEST_KEYS, NOW) is None
    for junk in ("", "a.b", "a.b.c.d", "!!!.k2.abc", "....", good + "."):
        assert read_token(junk, TEST_KEYS, NOW) is None, junk


def test_an_ad_links_signature_never_passes_for_a_token() -> None:
    """Tokens are signed for their own purpose: the same keys' MAC over an ad link is no token's."""
    signed = sign({"url": ITEM, "src": "unidesk"}, TEST_KEYS)
    assert read_token(f"{signed['url']}.{signed['kid']}.{signed['sig']}", TEST_KEYS, NOW) is None


def test_arms_travel_in_a_token_as_the_click_line_writes_them() -> None:
    arms = (("group-web", True), ("odd,id:x", False))
    assert arms_of(arms_text(arms)) == [{"rule": "group-web", "in": True}, {"rule": "odd,id:x", "in": False}]
    assert arms_of("") is None
    assert token_in("url=x&ct=abc.k.m&from=groupmessage") == "abc.k.m" and token_in("url=x&act=1") == ""


# --- the server ----------------------------------------------------------------------------------

ROLLOUT_RULES = """
rules:
  - id: group-web
    when: {app: wechat, channel: group_chat, rollout: 50}
    then: web
  - id: wechat-landing
    when: {app: wechat}
    then: landing
default: app
"""


@pytest.fixture()
def app() -> TestClient:
    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, metrics_from=ANY_NETWORK)
    return TestClient(create_app(settings), follow_redirects=False)


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The click stream's lines (click and outcome), captured for read()."""
    with caplog.at_level(logging.INFO, logger="router.clicks"):
        yield


def read(caplog: pytest.LogCaptureFixture, kind: str) -> list[dict[str, object]]:
    return [line for line in (json.loads(r.getMessage()) for r in caplog.records if r.name == "router.clicks")
            if line["type"] == kind]


def page_token(body: str) -> str:
    config = json.loads(re.search(r'id="landing-config"[^>]*>(.*?)</script>', body, re.S).group(1))  # type: ignore[union-attr]
    return str(config["token"])


def land(app: TestClient, ua: str = uas.WECHAT_ANDROID, path: str = GROUP) -> tuple[str, str]:
    """A landing page: (its click's request id, its token)."""
    response = app.get(path, headers={"user-agent": ua})
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"], page_token(response.text)


def test_a_landing_page_carries_its_clicks_token_and_allows_beacons_to_its_origin(app: TestClient) -> None:
    response = app.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID})
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "connect-src 'self'" in csp and "default-src 'none'" in csp
    found = read_token(page_token(response.text), TEST_KEYS, time.time())
    assert found is not None and found.click == response.headers["x-request-id"] and found.app == "wechat"
    assert found.rule == "wechat-group-chat-landing"  # the rule that answered
    config = json.loads(re.search(r'id="landing-config"[^>]*>(.*?)</script>', response.text, re.S).group(1))  # type: ignore[union-attr]
    assert config["beacon"] == "/outcome"
    again = app.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID})
    assert page_token(again.text) != page_token(response.text)  # one per click, though the page is kept


def test_a_beacon_is_recorded_once_per_click_and_event(app: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    click, tok = land(app)
    for _ in range(3):
        sent = app.post("/outcome", content=f"t={tok}&e=copied",
                        headers={"content-type": "application/x-www-form-urlencoded"})
        assert sent.status_code == 204 and sent.content == b""
    assert app.post("/outcome", content=f"t={tok}&e=shown").status_code == 204  # text/plain, as sendBeacon may
    outcomes = read(caplog, "outcome")
    assert [(o["click"], o["event"]) for o in outcomes] == [(click, "copied"), (click, "shown")]
    assert outcomes[0]["app"] == "wechat" and outcomes[0]["rules"] and outcomes[0]["rule"]
    assert all(line["request_id"] != "" for line in read(caplog, "click"))
    assert len(read(caplog, "click")) == 1  # beacons are no clicks


def test_beacons_without_a_valid_token_or_event_change_nothing(
    app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    _, tok = land(app)
    expired = token_of(token(expires=int(time.time()) - 1), TEST_KEYS)
    foreign = token_of(token(), SigningKeys.parse("k2:not-our-secret-0123456789"))
    bodies = [f"t={tok[:-2]}xx&e=copied", f"t={expired}&e=copied", f"t={foreign}&e=copied", f"t={tok}&e=bought",
              f"t={tok}", "e=copied", "", "\xff\xfe", f"t={tok}&e=copied&" + "x=1&" * 10,
              f"t={tok}&e=copied&pad=" + "x" * MAX_BODY]
    for body in bodies:
        assert app.post("/outcome", content=body.encode("utf-8", "surrogateescape")).status_code == 204, body
    for method in ("GET", "PUT", "DELETE"):  # only a POST is read, whatever another method carries
        assert app.request(method, "/outcome", content=f"t={tok}&e=copied").status_code == 204
    declared = app.post("/outcome", content=f"t={tok}&e=copied", headers={"content-length": str(MAX_BODY + 1)})
    assert declared.status_code == 204
    assert read(caplog, "outcome") == []
    metrics = app.get("/metrics").text
    # token: cut, expired, another secret, none; event: unknown, none (4 bodies); body: more fields than a
    # beacon has, longer than MAX_BODY, 3 other methods, a declared length past MAX_BODY.
    assert 'adlink_outcome_beacons_ignored_total{reason="token"} 4.0' in metrics
    assert 'adlink_outcome_beacons_ignored_total{reason="event"} 4.0' in metrics
    assert 'adlink_outcome_beacons_ignored_total{reason="body"} 6.0' in metrics
    assert 'adlink_outcomes_total{event="copied",result="recorded"} 0.0' in metrics


def test_the_second_jump_is_recorded_for_the_first_click_and_decided_like_any(
    app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    first, tok = land(app)
    jumped = app.get(f"{GROUP}&ct={tok}", headers={"user-agent": uas.SAFARI_IOS})
    assert jumped.status_code == 302 and jumped.headers["location"].startswith(("taobao://", "https://"))
    (escaped,) = read(caplog, "outcome")
    assert escaped["event"] == "escaped" and escaped["click"] == first and escaped["to_app"] == "browser"
    assert escaped["request_id"] == jumped.headers["x-request-id"]
    click_lines = read(caplog, "click")
    assert click_lines[-1]["escaped_from"] == first and "escaped_from" not in click_lines[0]
    # Once per click; the same app again (a reload inside WeChat) is no jump; a forged token is nothing.
    app.get(f"{GROUP}&ct={tok}", headers={"user-agent": uas.CHROME_ANDROID})
    app.get(f"{GROUP}&ct={tok}", headers={"user-agent": uas.WECHAT_ANDROID})
    app.get(f"{GROUP}&ct={tok[:-3]}abc", headers={"user-agent": uas.SAFARI_IOS})
    assert len(read(caplog, "outcome")) == 1
    # Only the click whose escape was recorded says so: the token's later clicks are ordinary clicks.
    assert [("escaped_from" in line) for line in read(caplog, "click")] == [False, True, False, False, False]
    # A link preview's fetcher reading a shared page's address, or a HEAD: nobody jumped.
    second, other = land(app)
    app.get(f"{GROUP}&ct={other}", headers={"user-agent": uas.FACEBOOK_PREVIEW})
    app.get(f"{GROUP}&ct={other}", headers={"user-agent": uas.GOOGLEBOT})
    app.head(f"{GROUP}&ct={other}", headers={"user-agent": uas.SAFARI_IOS})
    assert len(read(caplog, "outcome")) == 1
    app.get(f"{GROUP}&ct={other}", headers={"user-agent": uas.SAFARI_IOS})  # the person, afterwards: counted
    assert [o["click"] for o in read(caplog, "outcome")] == [first, second]


def test_click_lines_name_the_rollout_arms_a_click_could_take(caplog: pytest.LogCaptureFixture) -> None:
    from router.decision.conditions import rollout_bucket

    rules = build_rule_set([RuleSource("r.yaml", ROLLOUT_RULES.encode())], origin="r")
    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS)
    app = TestClient(create_app(settings, rules), follow_redirects=False)
    for _ in range(20):  # 20 people: each without a cookie, each given one
        app.cookies.clear()
        app.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID})
    app.get(GROUP.replace("groupmessage", "singlemessage"), headers={"user-agent": uas.WECHAT_ANDROID})
    clicks = read(caplog, "click")
    arms = [line["arms"] for line in clicks[:20]]
    # Each from the visitor the line records (router.serve.visitors): what a replay reads back.
    expected = [[{"rule": "group-web", "in": rollout_bucket("group-web", str(line["visitor"])) < 50}]
                for line in clicks[:20]]
    assert arms == expected and {True, False} == {a[0]["in"] for a in arms}  # type: ignore[index]
    assert [line["rule"] for line in clicks[:20]] == ["group-web" if a[0]["in"] else "wechat-landing" for a in arms]  # type: ignore[index]
    assert "arms" not in clicks[20]  # a 1:1 chat never reaches the group rollout's other conditions
    assert all(line["os"] == "android" for line in clicks)


def test_a_beacon_body_that_never_arrives_is_not_waited_for() -> None:
    """A real server: a POST that declares 1,000 bytes and sends 2 gets its 204 once BODY_SECONDS are over
    (not when the client gives up), and the server stops at once afterwards, with nothing in its log but
    the usual lines."""
    import socket

    from router.serve.outcomes import BODY_SECONDS
    from tests.servers import Server

    server = Server(env={"ROUTER_SIGNING_KEYS": "k2:second-secret-0123456789"}).wait_ready()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"POST /outcome HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nt=")
            started = time.monotonic()
            answer = sock.recv(4096)
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 204 "), answer
        assert BODY_SECONDS * 0.9 <= waited < 30
    finally:
        output = server.stop()
    assert "Traceback" not in output and "CancelledError" not in output
