"""What the router counts can't be bent by an anonymous client: each test mounts an attack and shows it
fails (visitor ids, shared `ct=` URLs, click ids, stalled stores, spelled-over click ids, the `*` proxy
warning). Limits by network and per link: tests/test_limits_network.py; opaque tokens:
tests/test_token_opacity.py; the readout's side: tests/test_report_integrity.py."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest
from starlette.testclient import TestClient

from router.decision.conditions import rollout_bucket
from router.decision.rules import RuleSource, build_rule_set
from router.decision.signing import SigningKeys, sign
from router.serve.click_token import TOKEN_TTL_SECONDS, read_token
from router.serve.config import ANY_NETWORK, Settings, bundled_rules_dir
from router.serve.limits import Limit
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS
from tests.scrape import parse, value
from tests.servers import Server, free_port, wait_until
from tests.test_outcomes import ROLLOUT_RULES as PILOT  # a 50 % group-chat pilot: web in, landing out
from tests.test_shared import KEYS_TEXT, RedisServer, redis_binary

ITEM = "https://item.taobao.com/item.htm?id=123456"
GROUP = f"/go?url={quote(ITEM, safe='')}&from=groupmessage"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def app_for(rules_text: str | None = None, keys: SigningKeys = TEST_KEYS, **settings: object) -> TestClient:
    rules = build_rule_set([RuleSource("r.yaml", rules_text.encode())], origin="r") if rules_text else None
    configured = Settings(rules_dir=bundled_rules_dir(), signing_keys=keys, metrics_from=ANY_NETWORK,
                          **settings)  # type: ignore[arg-type]
    client = TestClient(create_app(configured, rules), follow_redirects=False)
    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # each request says its own cookie
    return client


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.INFO, logger="router.clicks"):
        yield


def lines(caplog: pytest.LogCaptureFixture, kind: str) -> list[dict[str, object]]:
    found = [json.loads(record.getMessage()) for record in caplog.records if record.name == "router.clicks"]
    return [line for line in found if line["type"] == kind]


def page_token(body: str) -> str:
    config = re.search(r'id="landing-config"[^>]*>(.*?)</script>', body, re.S)
    assert config is not None, body[:300]
    return str(json.loads(config.group(1))["token"])


def cookie_of(response: httpx.Response) -> str:
    return response.headers["set-cookie"].split(";")[0].partition("=")[2]


# --- 1. rollout buckets can't be chosen --------------------------------------------------------------------


def test_chosen_visitor_ids_are_not_believed_and_get_fresh_ones(caplog: pytest.LogCaptureFixture) -> None:
    """The attack: pick visitor ids offline whose bucket falls outside the pilot, and click as each. A
    cookie the router did not issue gets a fresh id, and the bucket is drawn from a keyed pseudonym: the
    picked ids land in both arms."""
    app = app_for(PILOT)
    chosen = [f"attacker-{n:05d}" for n in range(400) if rollout_bucket("group-web", f"attacker-{n:05d}") >= 50][:24]
    issued = []
    for visitor in chosen:
        answer = app.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID, "cookie": f"adlink_vid={visitor}"})
        issued.append(cookie_of(answer))  # never the chosen id: a fresh one, set with this answer
    clicks = lines(caplog, "click")
    assert all(line["visitor_from"] == "new" for line in clicks)
    assert not {line["visitor"] for line in clicks} & set(chosen)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}\.k2\.[A-Za-z0-9_-]{22}", cookie) for cookie in issued)
    arms = [line["arms"][0]["in"] for line in clicks]  # type: ignore[index]
    assert True in arms and False in arms  # all 24 outside by chance: 1 in 16 million


def test_the_routers_own_visitors_are_sticky_but_their_buckets_cannot_be_computed_from_the_cookie(
        caplog: pytest.LogCaptureFixture) -> None:
    """Cookies the router issued come back as the same visitor (no new cookie). An attacker holding 40 of them
    can't tell offline which arm each is in: the bucket's input is the HMAC's other half, never sent."""
    app = app_for(PILOT)
    cookies = [cookie_of(app.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID})) for _ in range(40)]
    first = lines(caplog, "click")
    caplog.clear()
    for cookie in cookies:
        again = app.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID, "cookie": f"adlink_vid={cookie}"})
        assert "set-cookie" not in again.headers
    second = lines(caplog, "click")
    assert [line["visitor"] for line in second] == [line["visitor"] for line in first]  # sticky
    assert all(line["visitor_from"] == "cookie" for line in second)
    assert [line["arms"] for line in second] == [line["arms"] for line in first]
    assert not {line["visitor"] for line in first} & {part for c in cookies for part in c.split(".")}
    # The attacker's best offline guesses (the cookie's text, its id) pick "outside" ones: both arms appear.
    for guess in (lambda cookie: cookie, lambda cookie: cookie.split(".")[0]):
        picked = [line["arms"][0]["in"] for cookie, line in zip(cookies, second, strict=True)  # type: ignore[index]
                  if rollout_bucket("group-web", guess(cookie)) >= 50]
        assert len(picked) >= 8 and True in picked and False in picked


def test_a_tampered_cookie_or_one_of_a_dropped_key_gets_a_fresh_id(caplog: pytest.LogCaptureFixture) -> None:
    app = app_for(PILOT)
    cookie = cookie_of(app.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID}))
    visitor_id, kid, tag = cookie.split(".")
    flipped = tag[:-1] + ("A" if tag[-1] != "A" else "B")
    for bad in (f"{visitor_id}.{kid}.{flipped}", f"{visitor_id[:-1]}x.{kid}.{tag}", f"{visitor_id}.k1.{tag}",
                f"{visitor_id}.{kid}", visitor_id, "x" * 64):
        answer = app.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID, "cookie": f"adlink_vid={bad}"})
        assert cookie_of(answer) not in (bad, cookie)
    # Rotation: with a new first key, the old one still listed, a returning visitor keeps its id and buckets;
    # once the old key is dropped, it gets a fresh one.
    caplog.clear()
    rotated = app_for(PILOT, SigningKeys.parse("k3:third-secret-0123456789,k2:second-secret-0123456789"))
    kept = rotated.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID, "cookie": f"adlink_vid={cookie}"})
    assert "set-cookie" not in kept.headers and lines(caplog, "click")[-1]["visitor_from"] == "cookie"
    assert ".k3." in cookie_of(rotated.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID}))
    dropped = app_for(PILOT, SigningKeys.parse("k3:third-secret-0123456789"))
    assert cookie_of(dropped.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID,
                                                 "cookie": f"adlink_vid={cookie}"})) != cookie


def test_sixty_rounds_of_beacons_from_one_address_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    """The attack's second half: `copied` and `app_left` for each of 60 landing clicks. Past the bound per
    address the beacons are ignored (counted), so they move no arm."""
    app = app_for(PILOT, limit_beacons_per_address=Limit(20, 3600))
    for _ in range(60):
        answer = app.get(GROUP.replace("groupmessage", "singlemessage"), headers={"user-agent": uas.WECHAT_ANDROID})
        token, own = page_token(answer.text), {"cookie": f"adlink_vid={cookie_of(answer)}"}
        for event in ("copied", "app_left"):
            assert app.post("/outcome", content=f"t={token}&e={event}", headers={**FORM, **own}).status_code == 204
    assert len(lines(caplog, "outcome")) == 20
    metrics = parse(app.get("/metrics").text)
    assert value(metrics, "adlink_outcome_beacons_ignored_total", reason="limit") == 100


def test_escapes_are_bounded_and_duplicates_use_up_no_bound(caplog: pytest.LogCaptureFixture) -> None:
    """An escape counts as reaching the item, so it is bounded like a beacon: tapping cookieless until the
    wanted arm shows, then opening each page's address in "another app", records no more than the bound.
    A beacon sent again is a duplicate before it is counted against anyone's bound."""
    app = app_for(PILOT, limit_beacons_per_address=Limit(3, 3600))
    landing = app.get(GROUP.replace("groupmessage", "singlemessage"), headers={"user-agent": uas.WECHAT_ANDROID})
    own = {**FORM, "cookie": f"adlink_vid={cookie_of(landing)}"}
    for _ in range(10):  # one event, ten times: one recorded, nine duplicates, one of the three used
        app.post("/outcome", content=f"t={page_token(landing.text)}&e=copied", headers=own)
    for _ in range(6):
        page = app.get(GROUP.replace("groupmessage", "singlemessage"), headers={"user-agent": uas.WECHAT_ANDROID})
        app.get(f"{GROUP}&ct={page_token(page.text)}", headers={"user-agent": uas.SAFARI_IOS})
    assert [line["event"] for line in lines(caplog, "outcome")] == ["copied", "escaped", "escaped"]
    metrics = parse(app.get("/metrics").text)
    assert value(metrics, "adlink_outcome_beacons_ignored_total", reason="limit") == 4
    assert value(metrics, "adlink_outcomes_total", event="copied", result="duplicate") == 9


def test_one_visitors_beacons_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    app = app_for(PILOT, limit_beacons_per_visitor=Limit(6, 3600))
    cookie = cookie_of(app.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID}))
    for _ in range(10):
        answer = app.get(GROUP.replace("groupmessage", "singlemessage"),
                         headers={"user-agent": uas.WECHAT_ANDROID, "cookie": f"adlink_vid={cookie}"})
        app.post("/outcome", content=f"t={page_token(answer.text)}&e=copied",
                 headers={**FORM, "cookie": f"adlink_vid={cookie}"})
    assert len(lines(caplog, "outcome")) == 6


# --- 2. escapes are counted once ---------------------------------------------------------------------------


def test_a_shared_ct_urls_later_clicks_stay_ordinary_clicks_in_their_arm(
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """The attack: a landing URL with its token, shared onward and opened in other apps by 20 people. Only the
    first is its click's escape; the other 19 are clicks of their own, with their own arms, and the readout
    keeps them in its groups."""
    app = app_for(PILOT)
    landing = app.get(GROUP.replace("groupmessage", "singlemessage"), headers={"user-agent": uas.WECHAT_ANDROID})
    token = page_token(landing.text)
    others = (uas.SAFARI_IOS, uas.QQ_ANDROID, uas.CHROME_WINDOWS, uas.CHROME_ANDROID)
    for n in range(20):
        assert app.get(f"{GROUP}&ct={token}", headers={"user-agent": others[n % 4]}).status_code in (200, 302)
    clicks = lines(caplog, "click")
    assert [("escaped_from" in line) for line in clicks] == [False, True] + [False] * 19
    assert [line["event"] for line in lines(caplog, "outcome")] == ["escaped"]
    stream = tmp_path / "clicks.jsonl"
    stream.write_text("".join(json.dumps(line) + "\n" for line in clicks + lines(caplog, "outcome")))
    report = subprocess.run([sys.executable, "-m", "router", "report", "--clicks", str(stream), "--format", "json"],
                            capture_output=True, text=True, check=True)
    found = json.loads(report.stdout)
    assert found["total"]["clicks"] == 20 and found["second_jump_clicks"] == 1


def test_a_token_read_from_a_shared_address_posts_nothing_on_its_click(caplog: pytest.LogCaptureFixture) -> None:
    """The page's address carries its token (`ct=`): someone it was shared with can read it. Without the
    visitor cookie the token was made for, their beacons record nothing (and use up nobody's bound); the
    page's own beacons, with the cookie its answer set, do. The click line keeps no token either."""
    app = app_for(PILOT)
    landing = app.get(GROUP.replace("groupmessage", "singlemessage"), headers={"user-agent": uas.WECHAT_ANDROID})
    token, cookie = page_token(landing.text), cookie_of(landing)
    stranger = cookie_of(app.get(GROUP, headers={"user-agent": uas.WECHAT_ANDROID}))
    for sent in ({}, {"cookie": f"adlink_vid={stranger}"}):
        assert app.post("/outcome", content=f"t={token}&e=copied", headers={**FORM, **sent}).status_code == 204
    assert lines(caplog, "outcome") == []
    app.post("/outcome", content=f"t={token}&e=copied", headers={**FORM, "cookie": f"adlink_vid={cookie}"})
    assert [line["event"] for line in lines(caplog, "outcome")] == ["copied"]
    assert value(parse(app.get("/metrics").text), "adlink_outcome_beacons_ignored_total", reason="visitor") == 2
    app.get(f"{GROUP}&ct={token}", headers={"user-agent": uas.SAFARI_IOS})
    assert lines(caplog, "click")[-1]["request"].endswith("&ct=-")  # type: ignore[union-attr]


def test_a_token_is_good_for_hours_not_a_day() -> None:
    app = app_for(PILOT)
    landing = app.get(GROUP.replace("groupmessage", "singlemessage"), headers={"user-agent": uas.WECHAT_ANDROID})
    token = page_token(landing.text)
    now = time.time()
    assert TOKEN_TTL_SECONDS <= 6 * 3600
    assert read_token(token, TEST_KEYS, now + TOKEN_TTL_SECONDS - 60) is not None
    assert read_token(token, TEST_KEYS, now + TOKEN_TTL_SECONDS + 1) is None


# --- 3. click ids are the router's own ----------------------------------------------------------------------


def test_a_clients_request_id_cannot_become_a_click_id_nor_claim_anothers_click() -> None:
    """The attack, behind a trusted proxy that passes the client's X-Request-ID: send the victim's click id,
    get a token for the same id, post `copied` and `app_left`. The id is only a correlation id: the
    attacker's click has an id of its own, and its beacons land on it."""
    server = Server(env={"ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_TRUSTED_PROXIES": "127.0.0.1"}).wait_ready()
    try:
        chat = GROUP  # the shipped rules answer a WeChat group chat with the landing page
        victim = httpx.get(server.base + chat, headers={"user-agent": uas.WECHAT_ANDROID}, timeout=10)
        victim_id = victim.headers["x-request-id"]
        attacker = httpx.get(server.base + chat, timeout=10,
                             headers={"user-agent": uas.WECHAT_ANDROID, "x-request-id": victim_id})
        token, own = page_token(attacker.text), {"cookie": f"adlink_vid={cookie_of(attacker)}"}
        for event in ("copied", "app_left"):
            httpx.post(server.base + "/outcome", content=f"t={token}&e={event}", headers={**FORM, **own}, timeout=10)
    finally:
        output = server.stop()
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    clicks = [record for record in records if record["type"] == "click"]
    outcomes = [record for record in records if record["type"] == "outcome"]
    assert attacker.headers["x-request-id"] != victim_id
    assert [click["request_id"] for click in clicks] == [victim_id, attacker.headers["x-request-id"]]
    assert clicks[1]["correlation_id"] == victim_id  # kept, apart
    assert {outcome["click"] for outcome in outcomes} == {attacker.headers["x-request-id"]}


def test_click_ids_are_random_not_a_counter() -> None:
    app = app_for()
    ids = [app.get(GROUP, headers={"user-agent": uas.SAFARI_IOS}).headers["x-request-id"] for _ in range(50)]
    assert len(set(ids)) == 50 and all(re.fullmatch(r"[0-9a-f]{24}", found) for found in ids)
    prefixes = {found[:10] for found in ids}
    assert len(prefixes) == 50  # no process prefix shared by a node's answers


# --- 6. unchecked replays are visible -----------------------------------------------------------------------


def ad_path(click_id: str, extra: str = "") -> str:
    query = urlencode(sign({"url": ITEM, "src": "unidesk", "adv": "a1"}, TEST_KEYS), quote_via=quote)
    return f"/ad?{query}&gdt_vid={click_id}{extra}"


def is_ad_answer(response: httpx.Response) -> bool:
    """A verified Uni Desk ad in WeChat goes straight to the app; a replay gets the landing page."""
    return response.status_code == 302 and response.headers["location"].startswith("taobao://")


WECHAT = {"user-agent": uas.WECHAT_IOS}


class DebugRedis(RedisServer):
    """redis-server with DEBUG allowed from loopback (off by default since Redis 7): DEBUG SLEEP stalls it."""

    def __init__(self, binary: str, directory: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory), "--enable-debug-command", "local"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        wait_until(lambda: self._pong(redis), 20, "redis-server starts")

    def _pong(self, redis: object) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())  # type: ignore[attr-defined]
        except Exception:
            assert self.process.poll() is None, "redis-server stopped"
            return False

    def stall(self, seconds: float) -> threading.Thread:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=seconds + 5)
        stalling = threading.Thread(target=lambda: client.execute_command("DEBUG", "SLEEP", seconds))
        stalling.start()
        time.sleep(0.2)  # the SLEEP is running
        return stalling


def click_lines(output: str) -> list[dict[str, object]]:
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [record for record in records if record["type"] == "click"]


def test_a_stalled_store_marks_the_clicks_it_could_not_check(tmp_path: Path) -> None:
    """The attack: a click id first used on router 1 passes with ad privileges on router 2 while the store
    sleeps (`DEBUG SLEEP`). Failing open stays the design; the click now says its check was `local`, a
    metric counts it, and the readout shows it."""
    store = DebugRedis(redis_binary(), tmp_path)
    env = {"ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_REDIS_URL": store.url, "ROUTER_REDIS_TIMEOUT_MS": "300",
           "ROUTER_METRICS_FROM": "any"}
    one, two = Server(env=env).wait_ready(), Server(env=env).wait_ready()
    try:
        assert is_ad_answer(httpx.get(one.base + ad_path("wx-stall-1"), headers=WECHAT, timeout=10))
        stalling = store.stall(3)
        passed = httpx.get(two.base + ad_path("wx-stall-1"), headers=WECHAT, timeout=10)
        stalling.join()
        assert is_ad_answer(passed)  # fail-open, as designed, and said so in its line
        # Back: a new id is checked by the fleet; the stalled one's replay is caught again.
        wait_until(lambda: is_ad_answer(httpx.get(two.base + ad_path(f"wx-after-{time.monotonic_ns()}"),
                                                  headers=WECHAT, timeout=10)), 10, "the store answers again")
        assert not is_ad_answer(httpx.get(two.base + ad_path("wx-stall-1"), headers=WECHAT, timeout=10))
        samples = parse(httpx.get(two.base + "/metrics", timeout=10).text)
        assert value(samples, "adlink_ad_click_replay_checks_total", check="local") >= 1
        assert value(samples, "adlink_ad_click_replay_checks_total", check="fleet") >= 1
    finally:
        one.stop()
        output = two.stop()
        store.stop()
    checks = [(line["claim"]["verdict"], line["replay_check"]) for line in click_lines(output)]  # type: ignore[index]
    assert checks[0] == ("verified", "local")
    assert checks[-1] == ("replayed", "fleet")
    stream = tmp_path / "two.jsonl"
    stream.write_text(output)
    report = subprocess.run([sys.executable, "-m", "router", "report", "--clicks", str(stream)],
                            capture_output=True, text=True, check=True)
    said = " ".join(report.stdout.split())
    assert "Replays not checked: 1 ad click was decided while the fleet's store could not check" in said, said


def test_a_restarted_store_marks_its_clicks_for_a_replay_window(tmp_path: Path) -> None:
    """A store restarted without persistence forgot every click id: its clicks say `restarted` until a whole
    window (the click id's) has passed since its start."""
    store = RedisServer(redis_binary(), tmp_path)
    env = {"ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_REDIS_URL": store.url, "ROUTER_REDIS_TIMEOUT_MS": "300"}
    router = Server(env=env).wait_ready()
    try:
        assert is_ad_answer(httpx.get(router.base + ad_path("wx-before"), headers=WECHAT, timeout=10))
        store.kill()
        store = RedisServer(redis_binary(), tmp_path, port=store.port)

        def asked_the_store_again() -> bool:
            httpx.get(router.base + ad_path(f"wx-new-{time.monotonic_ns()}"), headers=WECHAT, timeout=10)
            checked = [line["replay_check"] for line in click_lines(router.output())]
            return len(checked) > 1 and checked[-1] != "local"

        wait_until(asked_the_store_again, 15, "the router asks the restarted store")
    finally:
        output = router.stop()
        store.stop()
    checks = [line["replay_check"] for line in click_lines(output)]
    assert checks[0] == "fleet" and checks[-1] == "restarted"


def test_a_flushed_store_marks_its_clicks_too(tmp_path: Path) -> None:
    """A store that forgets without restarting (FLUSHALL, an eviction): the router that had read its start
    notices the key gone, and the clicks after say `restarted`."""
    import redis

    store = RedisServer(redis_binary(), tmp_path)
    router = Server(env={"ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_REDIS_URL": store.url}).wait_ready()
    try:
        assert is_ad_answer(httpx.get(router.base + ad_path("wx-kept"), headers=WECHAT, timeout=10))
        redis.Redis.from_url(store.url).flushall()
        assert is_ad_answer(httpx.get(router.base + ad_path("wx-after-flush"), headers=WECHAT, timeout=10))
    finally:
        output = router.stop()
        store.stop()
    assert [line["replay_check"] for line in click_lines(output)] == ["fleet", "restarted"]


def test_without_a_store_each_process_says_it_checked_alone(caplog: pytest.LogCaptureFixture) -> None:
    app = app_for()
    assert is_ad_answer(app.get(ad_path("wx-alone"), headers=WECHAT))  # type: ignore[arg-type]
    app.get(GROUP, headers=WECHAT)  # no click id: no check to speak of
    app.get(ad_path("wx-alone").partition("&gdt_vid")[0], headers=WECHAT)
    assert [line.get("replay_check") for line in lines(caplog, "click")] == ["process", None, None]


# --- 7. one spelling per click id ---------------------------------------------------------------------------


def test_a_click_id_spelled_over_is_still_a_replay(caplog: pytest.LogCaptureFixture) -> None:
    """The attack: after `gdt_vid=A`, `GDT_VID=A` and `gdt_vid=B&gdt_vid=A` still got ad privileges (and the
    second passed both ids on)."""
    app = app_for()
    first = app.get(ad_path("A"), headers=WECHAT)
    assert is_ad_answer(first) and first.headers["location"].count("gdt_vid=A") == 1  # type: ignore[arg-type]
    upper = app.get(ad_path("A").replace("gdt_vid=", "GDT_VID="), headers=WECHAT)
    assert upper.status_code == 200 and "location" not in upper.headers  # a replay: the landing page
    twice = app.get(ad_path("B", "&gdt_vid=A"), headers=WECHAT)
    assert twice.status_code == 400 and "is given more than once with different values" in twice.text
    same = app.get(ad_path("C", "&gdt_vid=C"), headers=WECHAT)  # the same id twice is one id
    assert is_ad_answer(same) and same.headers["location"].count("gdt_vid=C") == 1  # type: ignore[arg-type]
    mixed = app.get(ad_path("D").replace("gdt_vid=", "Gdt_Vid="), headers=WECHAT)
    assert is_ad_answer(mixed) and "gdt_vid=D" in mixed.headers["location"]  # type: ignore[arg-type]
    assert "Gdt_Vid" not in mixed.headers["location"]
    # Each id is checked on its own: an id used before is caught whatever new id comes beside it.
    assert is_ad_answer(app.get(ad_path("E").replace("gdt_vid=E", "qz_gdt=Q"), headers=WECHAT))  # type: ignore[arg-type]
    beside = app.get(ad_path("F", "&qz_gdt=Q"), headers=WECHAT)
    assert beside.status_code == 200 and "location" not in beside.headers
    verdicts = [line["claim"]["verdict"] for line in lines(caplog, "click") if line["status"] != 400]  # type: ignore[index]
    assert verdicts == ["verified", "replayed", "verified", "verified", "verified", "replayed"]


def test_every_id_passed_on_is_checked_in_any_spelling(caplog: pytest.LogCaptureFixture) -> None:
    """`weixinadinfo` carries the click's id (`<aid>.<gdt_vid>.0.<n>`): it is checked like the others; a name
    encoded (`gdt%5Fvid`) or configured with capitals is the same name."""
    app = app_for(forward_params=("gdt_vid", "weixinadinfo", "clickId"))
    assert is_ad_answer(app.get(ad_path("G1", "&weixinadinfo=9.G1.0.1"), headers=WECHAT))  # type: ignore[arg-type]
    for replayed in (ad_path("G2", "&weixinadinfo=9.G1.0.1"),
                     ad_path("G2").replace("gdt_vid=G2", "WeixinAdInfo=9.G1.0.1"),
                     ad_path("G2").replace("gdt_vid=G2", "weixinadinfo=7.G1.0.5"),  # its gdt_vid is the id
                     ad_path("G1").replace("gdt_vid=", "gdt%5Fvid=")):
        again = app.get(replayed, headers=WECHAT)
        assert again.status_code == 200 and "location" not in again.headers, replayed
    # Passed on as configured (a destination may read `clickId` only), whatever spelling the click came with.
    forwarded = app.get(ad_path("G3", "&CLICKID=c-9"), headers=WECHAT)
    assert is_ad_answer(forwarded)  # type: ignore[arg-type]
    assert "clickId=c-9" in forwarded.headers["location"] and "gdt_vid=G3" in forwarded.headers["location"]
    on_go = app.get(f"/go?url={quote(ITEM, safe='')}&clickid=c-10", headers={"user-agent": uas.SAFARI_IOS})
    assert "clickId=c-10" in on_go.headers["location"]


# --- 9. trusting every proxy is said ------------------------------------------------------------------------


def test_a_cookie_split_over_headers_is_the_same_visitor(caplog: pytest.LogCaptureFixture) -> None:
    """An HTTP/2 hop may pass cookies in several Cookie headers: the click and its page's beacons read them
    all alike."""
    from router.serve.visitors import visitor_cookie

    assert visitor_cookie([b"a=1", b"adlink_vid=x.k.y; b=2"]) == "x.k.y" == visitor_cookie([b"adlink_vid=x.k.y"])
    assert visitor_cookie([]) is None and visitor_cookie([b"a=1"]) is None


def test_a_store_key_that_is_not_a_time_is_not_believed() -> None:
    from router.serve.shared import _since

    for garbage in (b"inf", b"nan", b"1e400", b"-5", b"99999999999", b"x", b""):
        assert _since(garbage) == (None, False), garbage
    assert _since(b"1700000000:lost") == (1_700_000_000.0, True)


def test_trusting_every_proxy_is_warned_of_at_start() -> None:
    warned = Server(env={"ROUTER_TRUSTED_PROXIES": "*"}).wait_ready().stop()
    quiet = Server(env={"ROUTER_TRUSTED_PROXIES": "127.0.0.1"}).wait_ready().stop()
    said = [json.loads(line)["message"] for line in warned.splitlines()
            if line.startswith("{") and json.loads(line).get("level") == "warning"]
    assert any("ROUTER_TRUSTED_PROXIES is '*'" in message and "any client can pick the address" in message
               for message in said), said
    assert "ROUTER_TRUSTED_PROXIES is" not in quiet
