"""The fleet's shared store (router.serve.shared): replays caught across router processes through a real
`redis-server` on 127.0.0.1 (Debian's package), and every failure of the store answered by the process's
own store within the deadline: down, killed mid-load and back, silent, answering garbage."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest

from router.decision.signing import ClickReplays, sign
from router.serve.config import Settings
from router.serve.shared import SharedStore, display_url, replay_ttl
from tests import uas
from tests.conftest import TEST_KEYS
from tests.scrape import parse, value
from tests.servers import Server, debian_tool, free_port, stop_process, wait_until

KEYS_TEXT = "k2:second-secret-0123456789,k1:first-secret-0123456789"  # TEST_KEYS, for the servers
ITEM = "https://item.taobao.com/item.htm?id=123456"
WECHAT = {"user-agent": uas.WECHAT_IOS}


def ad_query(click_id: str) -> str:
    return urlencode(sign({"url": ITEM, "src": "unidesk", "adv": "a1"}, TEST_KEYS), quote_via=quote) + (
        f"&gdt_vid={click_id}")


def is_ad_answer(response: httpx.Response) -> bool:
    """A verified Uni Desk ad in WeChat goes straight to the app; a replay gets the landing page."""
    return response.status_code == 302 and response.headers["location"].startswith("taobao://")


class RedisServer:
    """Debian's redis-server on a free loopback port, no persistence; stopped (or killed) by PID."""

    def __init__(self, binary: str, directory: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        import redis

        while True:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("redis-server did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        stop_process(self.process, timeout=10)


def redis_binary() -> str:
    return debian_tool("redis-server", package="redis-server")


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary(), tmp_path)
    try:
        yield server
    finally:
        server.stop()


def router(redis_url: str, **env: str) -> Server:
    """A router sharing the store, its deadline a little above the default's (these tests are about sharing;
    the deadline has tests of its own)."""
    return Server(env={"ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_REDIS_URL": redis_url,
                       "ROUTER_REDIS_TIMEOUT_MS": "300", **env}).wait_ready()


# --- across processes ------------------------------------------------------------------------------------


def test_a_click_id_used_on_one_router_is_refused_on_another(redis_server: RedisServer) -> None:
    a, b = router(redis_server.url), router(redis_server.url)
    try:
        assert is_ad_answer(httpx.get(f"{a.base}/ad?{ad_query('wx-fleet-1')}", headers=WECHAT))
        again = httpx.get(f"{b.base}/ad?{ad_query('wx-fleet-1')}", headers=WECHAT)
        assert again.status_code == 200 and "location" not in again.headers  # a replay: the landing page
        assert is_ad_answer(httpx.get(f"{b.base}/ad?{ad_query('wx-fleet-2')}", headers=WECHAT))  # a new id
        samples = parse(httpx.get(f"{b.base}/metrics").text)
        assert value(samples, "adlink_shared_store_calls_total", operation="first_use") == 2
        assert value(samples, "adlink_shared_store_fallbacks_total", operation="first_use") == 0
        assert value(samples, "adlink_shared_store_up") == 1
        assert httpx.get(f"{b.base}/readyz").json()["shared_store"] == {"configured": True, "up": True}
        assert str(redis_server.port) not in httpx.get(f"{b.base}/readyz").text  # no address on the public port
    finally:
        a.stop()
        b.stop()


def test_an_outcome_counts_once_across_the_fleet(redis_server: RedisServer) -> None:
    """A landing page's beacons reach whichever router the balancer picks: one `copied` per click in the
    fleet's stream, and its second jump recorded once though both routers see it."""
    a, b = router(redis_server.url), router(redis_server.url)
    try:
        page = httpx.get(f"{a.base}/go?url={quote(ITEM, safe='')}&from=groupmessage", headers=WECHAT)
        assert page.status_code == 200
        token = json.loads(page.text.split('id="landing-config"', 1)[1].split(">", 1)[1].split("</script>")[0])["token"]
        own = page.headers["set-cookie"].split(";")[0]  # the page's beacons carry the cookie its answer set
        for base in (a.base, b.base, a.base):
            sent = httpx.post(f"{base}/outcome", content=f"t={token}&e=copied",
                              headers={"content-type": "application/x-www-form-urlencoded", "cookie": own})
            assert sent.status_code == 204
        safari = {"user-agent": uas.SAFARI_IOS}
        for base in (b.base, a.base):
            httpx.get(f"{base}/go?url={quote(ITEM, safe='')}&from=groupmessage&ct={token}", headers=safari)

        def outcomes() -> list[tuple[str, str]]:
            found = []
            for server in (a, b):
                for line in server.output().splitlines():
                    if line.startswith('{"type":"outcome"'):
                        record = json.loads(line)
                        found.append((record["click"], record["event"]))
            return found

        click = page.headers["x-request-id"]
        wait_until(lambda: len(outcomes()) >= 2, 10, "the outcome lines")
        time.sleep(0.3)  # anything more would have been written by now (the stream's writer gathers 20 ms)
        assert sorted(outcomes()) == [(click, "copied"), (click, "escaped")]
        duplicates = sum(value(parse(httpx.get(f"{base}/metrics").text), "adlink_outcomes_total", event=event,
                               result="duplicate") for base in (a.base, b.base) for event in ("copied", "escaped"))
        assert duplicates == 3
    finally:
        a.stop()
        b.stop()


def test_the_store_killed_mid_load_and_back(redis_server: RedisServer, tmp_path: Path) -> None:
    """Redis killed while clicks arrive: no click fails, the fallback is counted, replays are still caught
    by each process on its own; Redis back on its port: sharing resumes by itself."""
    a, b = router(redis_server.url), router(redis_server.url)
    failures: list[str] = []
    stop = threading.Event()

    def load(base: str, prefix: str) -> int:
        sent = 0
        with httpx.Client(base_url=base, timeout=10) as client:
            while not stop.is_set():
                sent += 1
                try:
                    response = client.get(f"/ad?{ad_query(f'{prefix}-{sent}')}", headers=WECHAT)
                    if not is_ad_answer(response):
                        failures.append(f"{response.status_code} {response.headers.get('location')}")
                except httpx.HTTPError as err:
                    failures.append(type(err).__name__)
        return sent

    try:
        with ThreadPoolExecutor(4) as pool:
            loads = [pool.submit(load, base, f"wx-load-{n}") for n, base in enumerate((a.base, b.base) * 2)]
            time.sleep(1.0)
            redis_server.kill()
            time.sleep(2.0)
            # Down: each process still catches a replay it saw itself.
            assert is_ad_answer(httpx.get(f"{a.base}/ad?{ad_query('wx-down-1')}", headers=WECHAT))
            assert not is_ad_answer(httpx.get(f"{a.base}/ad?{ad_query('wx-down-1')}", headers=WECHAT))
            back = RedisServer(redis_binary(), tmp_path, port=redis_server.port)
            try:
                time.sleep(1.5)
                stop.set()
                sent = sum(done.result() for done in loads)
                assert sent > 40 and failures == [], failures[:5]
                samples = parse(httpx.get(f"{a.base}/metrics").text)
                assert value(samples, "adlink_shared_store_fallbacks_total", operation="first_use") > 0
                # Back: each process asks the store again by itself (a click after its rest), and a click
                # id used on A is refused on B again.
                def asking_again(base: str) -> bool:
                    httpx.get(f"{base}/ad?{ad_query(f'wx-back-{time.monotonic()}')}", headers=WECHAT)
                    return bool(httpx.get(f"{base}/readyz").json()["shared_store"]["up"])

                wait_until(lambda: asking_again(a.base) and asking_again(b.base), 10, "the store back")
                assert is_ad_answer(httpx.get(f"{a.base}/ad?{ad_query('wx-back-shared')}", headers=WECHAT))
                assert not is_ad_answer(httpx.get(f"{b.base}/ad?{ad_query('wx-back-shared')}", headers=WECHAT))
            finally:
                back.stop()
        output = a.stop()
        warnings = [line for line in output.splitlines() if '"level":"warning"' in line and "shared store" in line]
        assert len(warnings) == 1, warnings  # logged once, not per click
    finally:
        stop.set()
        a.stop()
        b.stop()


# --- a store that misbehaves, in process -----------------------------------------------------------------


@pytest.mark.parametrize("reply", [b":5\r\n", b"-ERR nonsense\r\n", b"HTTP/1.1 400 Bad Request\r\n\r\n", None])
def test_garbage_or_silence_falls_back_within_the_deadline(reply: bytes | None) -> None:
    async def scenario() -> tuple[list[bool], float, SharedStore]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(65536):
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        store = SharedStore(f"redis://:secret-password@127.0.0.1:{port}/0", timeout=0.05)
        local = ClickReplays()
        began = time.monotonic()
        answers = [await store.first_use("k", 60, lambda: local.first_use("k", 0.0)) for _ in range(3)]
        took = time.monotonic() - began
        await store.aclose()
        server.close()
        return answers, took, store

    answers, took, store = asyncio.run(scenario())
    assert answers == [True, False, False]  # the local store answered: first use, then replays
    assert took < 1.0  # one deadline (50 ms) at most, then the store rests: never a hang
    assert store.fallbacks == {"first_use": 3} and store.calls == {} and not store.up
    assert "secret-password" not in repr(store)


def test_settings_and_what_is_shown() -> None:
    assert Settings.from_env({}).redis_url == ""
    assert Settings.from_env({"ROUTER_REDIS_URL": "rediss://:pw@cache.internal:6380/2"}).redis_url.endswith("/2")
    assert Settings.from_env({"ROUTER_REDIS_TIMEOUT_MS": "15"}).redis_timeout_seconds == 0.015
    for bad, message in (("http://cache:6379", "must be redis://"), ("redis://", "must be redis://"),
                         ("redis://h:99999", "port that is not a number"), ("mongodb://:pw@h", "must be redis://")):
        with pytest.raises(ValueError, match=message) as raised:
            Settings.from_env({"ROUTER_REDIS_URL": bad})
        assert "pw" not in str(raised.value)
    with pytest.raises(ValueError, match="between 1 and 1000 milliseconds"):
        Settings.from_env({"ROUTER_REDIS_TIMEOUT_MS": "0"})
    assert display_url("redis://user:pw@h:1/0") == "redis://h:1/0"
    assert display_url("redis://:pw@h:1") == "redis://h:1" and display_url("redis://h:1/2?password=pw") == "redis://h:1/2"
    assert "pw" not in repr(Settings.from_env({"ROUTER_REDIS_URL": "redis://:pw@h:1/0"}))
    now = 1_000_000.0
    assert replay_ttl("", now, 86_400) == 86_400
    assert replay_ttl(str(int(now) + 3_600), now, 86_400) == 3_600  # until the link expires
    assert replay_ttl(str(int(now) + 5), now, 86_400) == 60 and replay_ttl("9" * 12, now, 86_400) == 7 * 24 * 3600


# --- short links: one fetch for the fleet ----------------------------------------------------------------


def test_twenty_clicks_on_a_short_link_across_two_routers_make_one_upstream_request(
        redis_server: RedisServer) -> None:
    from tests.test_expand_http import Upstream, serving

    with serving(Upstream) as upstream:
        Upstream.port = upstream.server_address[1]
        origin = f"http://127.0.0.1:{Upstream.port}"
        env = {"ROUTER_EXPAND_UPSTREAM": origin, "ROUTER_EXPAND_TIMEOUT_SECONDS": "3"}
        a, b = router(redis_server.url, **env), router(redis_server.url, **env)
        try:
            before = Upstream.counts["/h.counted"]
            link = quote("https://m.tb.cn/h.counted?tk=Fleet0001", safe="")
            desktop = {"user-agent": uas.CHROME_WINDOWS}
            with ThreadPoolExecutor(20) as pool:
                answers = list(pool.map(lambda base: httpx.get(f"{base}/go?url={link}", headers=desktop, timeout=10),
                                        [a.base, b.base] * 10))
            assert [response.status_code for response in answers] == [302] * 20
            assert {response.headers["location"] for response in answers} == {ITEM}
            assert Upstream.counts["/h.counted"] == before + 1  # one request for the whole fleet
            for base in (a.base, b.base):
                samples = parse(httpx.get(f"{base}/metrics").text)
                assert value(samples, "adlink_expansions_total", result="expanded") == 10
        finally:
            a.stop()
            b.stop()


def test_what_the_store_says_of_a_link_is_read_again_like_any_link() -> None:
    """A poisoned store can't send anyone elsewhere: a destination that is not an allowed https link, or
    data that does not read, is no answer (the router fetches the link itself)."""
    import orjson

    from router.serve.expand import Expanded
    from router.serve.shared import UNAVAILABLE, FleetExpansions

    fleet = FleetExpansions(SharedStore("redis://127.0.0.1:1/0", timeout=0.01))
    good = fleet._decoded(orjson.dumps({"url": ITEM, "reason": "expanded", "result": "expanded"}))
    assert isinstance(good, Expanded) and good.link is not None and good.link.web_url == ITEM
    failed = fleet._decoded(orjson.dumps({"url": None, "reason": "m.tb.cn answered 503", "result": "upstream_error"}))
    assert isinstance(failed, Expanded) and failed.link is None and failed.result == "upstream_error"
    for poisoned in ({"url": "https://evil.example/item.htm?id=1", "reason": "x", "result": "expanded"},
                     {"url": "javascript:alert(1)", "reason": "x", "result": "expanded"},
                     {"url": "https://m.tb.cn/h.again", "reason": "x", "result": "expanded"},
                     {"url": None, "reason": "x", "result": "expanded"},
                     {"url": None, "reason": "x", "result": "made-up"}, {"nothing": 1}):
        assert fleet._decoded(orjson.dumps(poisoned)) is UNAVAILABLE, poisoned
    assert fleet._decoded(b"\xff not json") is UNAVAILABLE


# --- click limits ----------------------------------------------------------------------------------------


def test_limits_are_counted_across_the_fleet(redis_server: RedisServer) -> None:
    """5 clicks a minute per address, counted by both routers together; a signed ad link, 3 a minute."""
    env = {"ROUTER_LIMIT_PER_ADDRESS": "5/60s", "ROUTER_LIMIT_PER_AD_LINK": "3/1m"}
    a, b = router(redis_server.url, **env), router(redis_server.url, **env)
    try:
        click = f"/go?url={quote(ITEM, safe='')}"
        safari = {"user-agent": uas.SAFARI_IOS}
        statuses = [httpx.get(f"{base}{click}", headers=safari).status_code for base in (a.base, b.base) * 3]
        assert statuses == [302] * 5 + [429]  # the sixth, wherever it lands
        refused = httpx.get(f"{a.base}{click}", headers=safari)
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 61
        assert "Too many clicks from your address: the limit is 5 clicks per 60 s" in refused.text
        samples = parse(httpx.get(f"{a.base}/metrics").text)
        assert value(samples, "adlink_refusals_total", status="429", stage="limit") >= 1
        assert value(samples, "adlink_shared_store_fallbacks_total", operation="count") == 0
        access = [line for line in a.stop().splitlines() if '"type":"access"' in line and '"status":429' in line]
        assert access and "the limit is 5 clicks per 60 s" in access[0]  # not a click line: an access line
    finally:
        a.stop()
        b.stop()
    c, d = (router(redis_server.url, ROUTER_LIMIT_PER_AD_LINK="3/1m") for _ in range(2))
    try:
        answers = [httpx.get(f"{base}/ad?{ad_query(f'wx-limit-{n}')}", headers=WECHAT)
                   for n, base in enumerate((c.base, d.base, c.base, d.base))]
        assert [response.status_code for response in answers] == [302, 302, 302, 429]
        assert "Too many clicks on this ad link" in answers[3].text
        go = httpx.get(f"{c.base}/go?url={quote(ITEM, safe='')}", headers={"user-agent": uas.SAFARI_IOS})
        assert go.status_code == 302  # /go: no ad link to count by
    finally:
        c.stop()
        d.stop()


def test_one_click_waits_for_the_store_no_longer_than_one_deadline(shipped_rules: Any) -> None:
    """A store that accepts and never answers, both limits on, an /ad click: three calls to the store (the
    address's limit, the replay check, the ad link's limit) share one deadline, and the click is answered."""
    import socket as socket_module

    from starlette.testclient import TestClient

    from router.serve.config import bundled_rules_dir
    from router.serve.limits import Limit
    from router.serve.web import create_app

    silent = socket_module.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    accepted: list[socket_module.socket] = []
    threading.Thread(target=lambda: [accepted.append(silent.accept()[0]) for _ in range(16)], daemon=True).start()
    try:
        settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS,
                            redis_url=f"redis://127.0.0.1:{silent.getsockname()[1]}/0", redis_timeout_seconds=0.3,
                            limit_per_address=Limit(100, 60), limit_per_ad_link=Limit(100, 60))
        app = create_app(settings, shipped_rules)
        client = TestClient(app, follow_redirects=False)
        began = time.monotonic()
        response = client.get(f"/ad?{ad_query('wx-budget-1')}", headers=WECHAT)
        took = time.monotonic() - began
        assert is_ad_answer(response)  # answered as without a store
        assert took < 0.65, took  # one deadline (0.3 s), not three (0.9 s)
        assert app.clicks.shared is not None
        assert app.clicks.shared.fallbacks == {"count": 2, "first_use": 1}
    finally:
        silent.close()
        for connection in accepted:
            connection.close()


def test_a_router_without_a_store_never_loads_its_client() -> None:
    """The Redis client weighs several MB of memory per worker: only ROUTER_REDIS_URL loads it."""
    import sys

    loaded = subprocess.run([sys.executable, "-c", "import sys, router.cli, router.serve.web, router.serve.shared; "
                             "print(any(name.split('.')[0] == 'redis' for name in sys.modules))"],
                            capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
