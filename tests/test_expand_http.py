"""Short links expanded against real upstreams on 127.0.0.1, through the router's own HTTP face.

The upstream is a small threaded http.server that stands in for m.tb.cn (ROUTER_EXPAND_UPSTREAM), with
one path per behaviour: a fast redirect to an item, a page naming the item, a slow answer, a 5xx, a
redirect loop, redirects to a private address and to a foreign host, and a huge body. Each click is
asserted by status and Location, redirects not followed, and none may take much past the deadline.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import quote

import httpx
import pytest
from starlette.testclient import TestClient

from router.decision.rules import RuleSet
from router.serve.config import ANY_NETWORK, Settings, bundled_rules_dir
from router.serve.expand import DEFAULT_EXPAND_HOSTS
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS
from tests.scrape import parse, value
from tests.servers import Server

ITEM = "https://item.taobao.com/item.htm?id=123456"
DEADLINE = 2.0  # generous: a loaded machine is slow, and only the "slow" upstream (4 s) is meant to miss it
DESKTOP = {"user-agent": uas.CHROME_WINDOWS}  # answers `web`: the Location is the link itself
SAFARI = {"user-agent": uas.SAFARI_IOS}  # answers `app`
PAGE = b"<html><body><script>location.replace('https:\\/\\/a.m.taobao.com\\/i654321.htm?spm=a&amp;x=1')</script>"


class Upstream(BaseHTTPRequestHandler):
    counts: ClassVar[Counter[str]] = Counter()
    port = 0

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        Upstream.counts[path] += 1
        if path == "/h.fast":
            self._redirect(ITEM)
        elif path == "/h.hop":
            self._redirect("https://e.tb.cn/h.fast")
        elif path == "/h.page":
            self._answer(200, PAGE)
        elif path == "/h.slow":
            time.sleep(4)  # well past DEADLINE
            self._redirect(ITEM)
        elif path == "/h.error":
            self._answer(503, b"down")
        elif path == "/h.loop":
            self._redirect("https://m.tb.cn/h.loop2")
        elif path == "/h.loop2":
            self._redirect("/h.loop")
        elif path == "/h.private":
            self._redirect("https://10.0.0.7/item.htm?id=1")
        elif path == "/h.loopback":
            self._redirect(f"http://127.0.0.1:{Upstream.port}/h.fast")
        elif path == "/h.foreign":
            self._redirect("https://evil.example/item.htm?id=1")
        elif path == "/h.huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            try:
                for _ in range(1000):  # 64 MB if anyone read it all
                    self.wfile.write(b"x" * 65536)
            except OSError:
                pass  # the router stopped reading, as it should
        elif path == "/h.counted":
            time.sleep(0.2)  # long enough for concurrent clicks to pile up behind one fetch
            self._redirect(ITEM)
        else:
            self._answer(404, b"no such code")

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """A threaded HTTP server on a free loopback port, for as long as the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serving(Upstream) as server:
        Upstream.port = server.server_address[1]
        yield f"http://127.0.0.1:{Upstream.port}"


@pytest.fixture()
def client(upstream: str, shipped_rules: RuleSet) -> TestClient:
    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, expand_hosts=DEFAULT_EXPAND_HOSTS,
                        expand_timeout_seconds=DEADLINE, expand_upstream=upstream)
    return TestClient(create_app(settings, shipped_rules), follow_redirects=False)


def click(client: TestClient, link: str, headers: dict[str, str], extra: str = "") -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = client.get(f"/go?url={quote(link, safe='')}{extra}", headers=headers)
    return response, time.monotonic() - began


@pytest.mark.parametrize(
    ("code", "location"),
    [
        ("fast", ITEM),  # 302 to the item
        ("hop", ITEM),  # m.tb.cn -> e.tb.cn -> item
        ("page", "https://item.taobao.com/item.htm?id=654321"),  # 200 page naming the item
    ],
)
def test_expanded_click_goes_to_the_item(client: TestClient, code: str, location: str) -> None:
    """A short link that expands is decided on its item: the desktop gets the item page, Safari the app."""
    response, took = click(client, f"https://m.tb.cn/h.{code}?tk=AbCd1234", DESKTOP)
    assert response.status_code == 302 and response.headers["location"] == location
    response, _ = click(client, f"https://m.tb.cn/h.{code}?tk=AbCd1234", SAFARI)
    assert response.headers["location"] == location.replace("https://", "taobao://")
    assert took < DEADLINE + 1


@pytest.mark.parametrize("code", ["slow", "error", "loop", "private", "loopback", "foreign", "huge", "missing"])
def test_failed_expansion_keeps_the_short_link(client: TestClient, code: str) -> None:
    """Slow, 5xx, loop, private or foreign redirect, huge body, 404: the click still gets the shipped rules'
    answer on the original link — a 302 to it on a desktop, the landing page in a WeChat group — fast."""
    short = f"https://m.tb.cn/h.{code}"
    response, took = click(client, short, DESKTOP)
    assert response.status_code == 302 and response.headers["location"] == short
    assert took < DEADLINE + 1
    response, took = click(client, short, {"user-agent": uas.WECHAT_IOS}, "&from=groupmessage")
    assert response.status_code == 200 and short in response.text
    assert took < DEADLINE + 1


def test_affiliate_link_is_expanded(client: TestClient) -> None:
    """s.click.taobao.com is an expansion host too."""
    response, _ = click(client, "https://s.click.taobao.com/h.fast", DESKTOP)
    assert response.status_code == 302 and response.headers["location"] == ITEM


def test_a_failure_is_remembered_briefly(client: TestClient) -> None:
    """A second click on a failing link is answered from the failure cache without calling the upstream."""
    before = Upstream.counts["/h.error"]
    click(client, "https://m.tb.cn/h.error?tk=once0001", DESKTOP)
    click(client, "https://m.tb.cn/h.error?tk=once0001", DESKTOP)
    assert Upstream.counts["/h.error"] == before + 1


def test_expansion_results_and_the_circuit_are_in_the_metrics(upstream: str, shipped_rules: RuleSet) -> None:
    """adlink_expansions_total by result, the upstream requests, and the circuit breaker's state per host:
    five 5xx in a row open it for m.tb.cn, and the next click is not sent upstream."""
    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, expand_hosts=DEFAULT_EXPAND_HOSTS,
                        expand_timeout_seconds=DEADLINE, expand_upstream=upstream, metrics_from=ANY_NETWORK)
    app = TestClient(create_app(settings, shipped_rules), follow_redirects=False)
    click(app, "https://m.tb.cn/h.fast?tk=metrics1", DESKTOP)
    click(app, "https://m.tb.cn/h.fast?tk=metrics1", SAFARI)  # a different client: expanded again, from the cache
    click(app, "https://m.tb.cn/h.page?tk=metrics2", DESKTOP)
    samples = parse(app.get("/metrics").text)
    assert value(samples, "adlink_expansions_total", result="expanded") == 3
    assert value(samples, "adlink_expansion_upstream_requests_total") == 2
    assert value(samples, "adlink_expansion_circuit_open", host="m.tb.cn") == 0
    for n in range(5):
        click(app, f"https://m.tb.cn/h.error?tk=metrics-error-{n}", DESKTOP)
    click(app, "https://m.tb.cn/h.error?tk=metrics-error-late", DESKTOP)
    samples = parse(app.get("/metrics").text)
    assert value(samples, "adlink_expansions_total", result="upstream_error") == 5
    assert value(samples, "adlink_expansions_total", result="circuit_open") == 1
    assert value(samples, "adlink_expansion_upstream_requests_total") == 7
    assert value(samples, "adlink_expansion_circuit_open", host="m.tb.cn") == 1
    assert value(samples, "adlink_expansion_circuit_open", host="e.tb.cn") == 0


def test_expansion_off_contacts_nobody(upstream: str, shipped_rules: RuleSet) -> None:
    """ROUTER_EXPAND_HOSTS=none: short links are decided as they are, and the upstream is never called."""
    settings = Settings.from_env({"ROUTER_EXPAND_HOSTS": "none", "ROUTER_EXPAND_UPSTREAM": upstream})
    before = sum(Upstream.counts.values())
    app = TestClient(create_app(settings, shipped_rules), follow_redirects=False)
    response, _ = click(app, "https://m.tb.cn/h.fast", DESKTOP)
    assert response.headers["location"] == "https://m.tb.cn/h.fast"
    assert sum(Upstream.counts.values()) == before


@pytest.mark.parametrize("value", ["http://10.0.0.1:8080", "https://upstream.example", "http://127.0.0.1:9/path"])
def test_upstream_override_is_loopback_only(value: str) -> None:
    """The test-only upstream setting is refused anywhere but a loopback origin."""
    with pytest.raises(ValueError, match="ROUTER_EXPAND_UPSTREAM must be a loopback origin"):
        Settings.from_env({"ROUTER_EXPAND_UPSTREAM": value})


def test_real_server_concurrent_clicks_share_one_fetch(upstream: str) -> None:
    """`python -m router serve`: twenty concurrent clicks on one new short link make one upstream request,
    and every click is sent to the item."""
    server = Server(env={"ROUTER_EXPAND_UPSTREAM": upstream, "ROUTER_EXPAND_TIMEOUT_SECONDS": "2"}).wait_ready()
    try:
        before = Upstream.counts["/h.counted"]
        url = f"{server.base}/go?url={quote('https://m.tb.cn/h.counted?tk=Shared01', safe='')}"
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda _: httpx.get(url, headers=DESKTOP, timeout=10), range(20)))
        assert {(a.status_code, a.headers.get("location")) for a in answers} == {(302, ITEM)}
        assert Upstream.counts["/h.counted"] == before + 1
        slow = httpx.get(f"{server.base}/go?url={quote('https://m.tb.cn/h.slow', safe='')}", headers=DESKTOP,
                         timeout=10)
        assert slow.status_code == 302 and slow.headers["location"] == "https://m.tb.cn/h.slow"
    finally:
        output = server.stop()
    expansions = {record["expansion"] for record in map(json.loads, output.splitlines()) if record["type"] == "click"}
    assert {"expanded", "failed"} <= expansions


class KeepAliveUpstream(BaseHTTPRequestHandler):
    """An HTTP/1.1 upstream that keeps connections open, counting them and the requests it serves at once."""

    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    connections = 0
    active = 0
    most_at_once = 0

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with KeepAliveUpstream.lock:
            KeepAliveUpstream.connections += 1

    def do_GET(self) -> None:
        with KeepAliveUpstream.lock:
            KeepAliveUpstream.active += 1
            KeepAliveUpstream.most_at_once = max(KeepAliveUpstream.most_at_once, KeepAliveUpstream.active)
        try:
            if "slow" in self.path:
                time.sleep(0.1)
            item = self.path.rsplit("/", 1)[-1].split("?")[0].removeprefix("h.slow").removeprefix("h.")
            self.send_response(302)
            self.send_header("Location", f"https://item.taobao.com/item.htm?id=7{item}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        finally:
            with KeepAliveUpstream.lock:
                KeepAliveUpstream.active -= 1


@pytest.fixture()
def keepalive_upstream() -> Iterator[str]:
    KeepAliveUpstream.connections = KeepAliveUpstream.active = KeepAliveUpstream.most_at_once = 0
    with serving(KeepAliveUpstream) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def test_a_real_server_reuses_its_connection_to_the_upstream(keepalive_upstream: str) -> None:
    """`python -m router serve`: twenty clicks on twenty different short links, one after another, go to the
    upstream over one kept-alive connection (one TLS context and pool for the process, not one per fetch)."""
    server = Server(env={"ROUTER_EXPAND_UPSTREAM": keepalive_upstream, "ROUTER_EXPAND_TIMEOUT_SECONDS": "5"})
    server.wait_ready()
    try:
        for n in range(20):
            short = quote(f"https://m.tb.cn/h.{100 + n}?tk=Reuse{n:02d}", safe="")
            answer = httpx.get(f"{server.base}/go?url={short}", headers=DESKTOP, timeout=10)
            assert (answer.status_code, answer.headers["location"]) == (
                302, f"https://item.taobao.com/item.htm?id=7{100 + n}"), answer.text
    finally:
        server.stop()
    assert KeepAliveUpstream.connections == 1


def test_outbound_connections_are_bounded(keepalive_upstream: str) -> None:
    """Thirty different short links expanded at once with a bound of three connections: the upstream never
    serves more than three at a time, and every link still expands within its deadline."""
    import asyncio

    from router.serve.expand import Expander, ExpandPolicy

    expander = Expander(ExpandPolicy(timeout=5, upstream=keepalive_upstream, max_connections=3))

    async def expand_all() -> list[str | None]:
        try:
            results = await asyncio.gather(*(expander.expand(f"https://m.tb.cn/h.slow{n}") for n in range(30)))
            return [result.link.item_id if result.link else result.reason for result in results]
        finally:
            await expander.aclose()

    assert asyncio.run(expand_all()) == [f"7{n}" for n in range(30)]
    assert KeepAliveUpstream.most_at_once <= 3 and KeepAliveUpstream.connections <= 3
    assert expander.requests == 30
