"""/metrics: what is counted, with which labels, who may read it, and the sum over `serve --workers N`.

In-process apps (TestClient) for what a click counts; real `python -m router serve` processes for the
protocol's refusals, reloads, the address check behind a proxy and the workers' sum; the real Prometheus
server (Debian's `prometheus`) scraping a two-worker router and answering PromQL over its HTTP API.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from starlette.testclient import TestClient

from router.decision.rules import RuleSet
from router.decision.signing import sign
from router.serve.config import ANY_NETWORK, PRIVATE_NETWORKS, Settings, address_in, bundled_rules_dir
from router.serve.metrics import (
    DECISION_BUCKETS,
    FAMILIES,
    FLUSH_SECONDS,
    REQUEST_BUCKETS,
    RETIRED,
    Histogram,
    Metrics,
    WorkerFiles,
    retire_worker,
)
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS
from tests.scrape import Samples, parse, series, value
from tests.servers import Server, debian_tool, free_port, stop_process, wait_until

ITEM = "https://item.taobao.com/item.htm?id=123456"
CLICK = f"/go?url={quote(ITEM, safe='')}"
SAFARI = {"user-agent": uas.SAFARI_IOS}


def scraped(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


@pytest.fixture()
def app(shipped_rules: RuleSet) -> TestClient:
    """A fresh app (fresh counts) that lets anyone scrape: a TestClient's address is not an IP."""
    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, metrics_from=ANY_NETWORK)
    return TestClient(create_app(settings, shipped_rules), follow_redirects=False)


# --- what a click counts ------------------------------------------------------------------------------


def test_clicks_are_counted_by_action_rule_channel_and_app(app: TestClient) -> None:
    for _ in range(3):
        assert app.get(CLICK, headers=SAFARI).status_code == 302
    group = app.get(CLICK + "&from=groupmessage", headers={"user-agent": uas.WECHAT_IOS})
    assert group.status_code == 200
    bad = app.get("/go?url=https%3A%2F%2Fevil.example%2Fx", headers=SAFARI)
    assert bad.status_code == 400
    samples = scraped(app)
    assert value(samples, "adlink_clicks_total", action="app", rule="mobile-browser-app", channel="unknown",
                 app="browser") == 3
    wechat = [labels for labels in series(samples, "adlink_clicks_total") if labels["app"] == "wechat"]
    assert len(wechat) == 1 and wechat[0]["channel"] == "group_chat" and wechat[0]["action"] == "landing"
    assert value(samples, "adlink_clicks_total", **wechat[0]) == 1
    assert value(samples, "adlink_clicks_total", action="block", rule="bad-request", channel="none",
                 app="none") == 1
    assert value(samples, "adlink_refusals_total", status="400", stage="click") == 1


def test_label_values_are_bounded(app: TestClient) -> None:
    """Hundreds of different links and user agents make a handful of series, none naming a link or agent."""
    for n in range(300):
        link = quote(f"https://item.taobao.com/item.htm?id={100000 + n}", safe="")
        agent = uas.SAFARI_IOS.replace("604.1", f"604.{n}") if n % 2 else uas.CHROME_WINDOWS + f" X/{n}"
        app.get(f"/go?url={link}&gdt_vid=v{n}", headers={"user-agent": agent})
        app.get(f"/go?url=https%3A%2F%2Fbad{n}.example%2F", headers={"user-agent": agent})
    text = app.get("/metrics").text
    samples = parse(text)
    assert len(series(samples, "adlink_clicks_total")) <= 4
    assert sum(value(samples, "adlink_clicks_total", **labels)
               for labels in series(samples, "adlink_clicks_total")) == 600
    for leak in ("taobao.com", "example", "Mozilla", "gdt_vid", "100007", "X/3"):
        assert leak not in text


def test_histograms_count_every_click_and_cumulate(app: TestClient) -> None:
    for _ in range(5):
        app.get(CLICK, headers=SAFARI)
    app.get("/healthz")
    samples = scraped(app)
    assert value(samples, "adlink_request_duration_seconds_count", route="/go") == 5
    assert value(samples, "adlink_request_duration_seconds_count", route="/healthz") == 1
    assert value(samples, "adlink_decision_duration_seconds_count", answer="decided") == 1
    assert value(samples, "adlink_decision_duration_seconds_count", answer="kept") == 4  # repeats from memory
    buckets = [value(samples, "adlink_request_duration_seconds_bucket", route="/go", le=repr(bound))
               for bound in REQUEST_BUCKETS]
    assert buckets == sorted(buckets)  # cumulative
    assert value(samples, "adlink_request_duration_seconds_bucket", route="/go", le="+Inf") == 5
    assert 0 < value(samples, "adlink_request_duration_seconds_sum", route="/go") < 5


def test_a_histogram_puts_a_value_on_its_bound_in_that_bucket() -> None:
    """Prometheus buckets are `le`: 0.001 counts in the 0.001 bucket, past the last bound is +Inf; the same
    through Histogram.observe (other routes, decisions) and the click's inlined copy."""
    histogram = Histogram(REQUEST_BUCKETS)
    metrics = Metrics()
    for seconds in (0.001, 0.0010001, 99.0):
        histogram.observe(seconds)
        metrics.click("/go", "app", "r", None, None, seconds)
    index = REQUEST_BUCKETS.index(0.001)
    for counts in (histogram.counts, metrics.requests["/go"].counts):
        assert counts[index] == 1 and counts[index + 1] == 1 and counts[-1] == 1 and sum(counts) == 3
    assert len(Histogram(DECISION_BUCKETS).sample()) == len(DECISION_BUCKETS) + 2  # buckets, +Inf, sum


def test_an_unexpected_error_is_counted_from_zero(app: TestClient) -> None:
    """adlink_click_errors_total is there at 0 before any error (an alert on its increase sees the first)."""
    assert ("adlink_click_errors_total", frozenset()) in scraped(app)

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    app.app.clicks.answers.decide = broken  # type: ignore[attr-defined]
    response = app.get(CLICK, headers=SAFARI)
    assert response.status_code in (200, 400) and "location" not in response.headers  # the safe page
    samples = scraped(app)
    assert value(samples, "adlink_click_errors_total") == 1
    assert value(samples, "adlink_clicks_total", action="error", rule="error-fallback", channel="unknown",
                 app="browser") == 1


def test_refusals_are_counted_by_status_and_stage(shipped_rules: RuleSet) -> None:
    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, metrics_from=ANY_NETWORK,
                        server_names=("go.example.com",))
    app = TestClient(create_app(settings, shipped_rules), base_url="http://go.example.com", follow_redirects=False)
    assert app.get("/nowhere").status_code == 404
    assert app.post(CLICK).status_code == 405
    assert app.get(CLICK, headers={"host": "other.example"}).status_code == 400
    assert app.get(CLICK, headers={**SAFARI, "x-big": "a" * 20_000}).status_code == 431
    assert app.get("/go", headers=SAFARI).status_code == 400  # no link
    samples = scraped(app)
    assert value(samples, "adlink_refusals_total", status="404", stage="route") == 1
    assert value(samples, "adlink_refusals_total", status="405", stage="route") == 1
    assert value(samples, "adlink_refusals_total", status="400", stage="edge") == 1
    assert value(samples, "adlink_refusals_total", status="431", stage="edge") == 1
    assert value(samples, "adlink_refusals_total", status="400", stage="click") == 1


def test_replayed_ad_clicks_are_counted(app: TestClient) -> None:
    query = urlencode(sign({"url": ITEM, "src": "unidesk", "adv": "a1"}, TEST_KEYS)) + "&gdt_vid=wx-metrics-1"
    wechat = {"user-agent": uas.WECHAT_IOS}
    assert app.get(f"/ad?{query}", headers=wechat).status_code == 302
    assert value(scraped(app), "adlink_ad_click_replays_total") == 0
    assert app.get(f"/ad?{query}", headers=wechat).status_code == 200  # the replay: landing, no ad privileges
    assert app.get(f"/ad?{query}", headers=wechat).status_code == 200
    assert value(scraped(app), "adlink_ad_click_replays_total") == 2


def test_rules_version_and_zero_counts_are_there_from_the_start(app: TestClient, shipped_rules: RuleSet) -> None:
    """A fresh router already shows its rules and every unlabelled counter at 0, so an alert on an increase
    sees the first one."""
    samples = scraped(app)
    assert value(samples, "adlink_rules_info", version=shipped_rules.version) == 1
    assert value(samples, "adlink_rules") == len(shipped_rules.rules)
    assert ("adlink_rules_last_reload_rejected", frozenset()) in samples
    assert ("adlink_ad_click_replays_total", frozenset()) in samples
    assert value(samples, "adlink_workers") == 1
    assert value(samples, "adlink_worker_resident_memory_bytes") > 10_000_000


def test_openmetrics_when_asked(app: TestClient) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    app.get(CLICK, headers=SAFARI)
    response = app.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"adlink_clicks", "adlink_request_duration_seconds", "adlink_rules_info"} <= names


# --- who may read it -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "inside"), [
    ("127.0.0.1", True), ("10.2.3.4", True), ("172.31.0.9", True), ("192.168.1.1", True), ("100.64.1.1", True),
    ("::1", True), ("fd12::1", True), ("::ffff:10.0.0.1", True),
    ("8.8.8.8", False), ("172.32.0.1", False), ("2001:db8::1", False), ("::ffff:8.8.8.8", False),
    ("testclient", False), ("", False),
])
def test_private_networks(address: str, inside: bool) -> None:
    assert address_in(address, PRIVATE_NETWORKS) is inside


def test_metrics_from_setting() -> None:
    assert Settings.from_env({}).metrics_from == PRIVATE_NETWORKS
    assert Settings.from_env({"ROUTER_METRICS_FROM": "any"}).metrics_from == ANY_NETWORK
    assert Settings.from_env({"ROUTER_METRICS_FROM": "off"}).metrics_from == ()
    only = Settings.from_env({"ROUTER_METRICS_FROM": "10.9.0.0/16, 127.0.0.1"}).metrics_from
    assert address_in("10.9.8.7", only) and address_in("127.0.0.1", only) and not address_in("10.8.0.1", only)
    with pytest.raises(ValueError, match="ROUTER_METRICS_FROM must be private, any, off or a list of networks"):
        Settings.from_env({"ROUTER_METRICS_FROM": "everyone"})


def test_a_client_that_is_not_an_address_is_refused(client: TestClient) -> None:
    """The shared test app keeps the default (private networks); a TestClient's peer is 'testclient'."""
    response = client.get("/metrics")
    assert response.status_code == 403
    assert "ROUTER_METRICS_FROM" in response.text and "adlink_" not in response.text


def test_behind_a_proxy_the_public_is_refused_and_the_host_name_does_not_matter() -> None:
    """With a trusted proxy the client is the forwarded address: the public gets 403, a private network
    the page. /metrics answers whatever the Host (Prometheus scrapes by address); clicks still check it."""
    server = Server(env={"ROUTER_TRUSTED_PROXIES": "127.0.0.1", "ROUTER_SERVER_NAMES": "go.example.com"})
    try:
        server.wait_ready()
        public = httpx.get(f"{server.base}/metrics", headers={"x-forwarded-for": "203.0.113.9"})
        assert public.status_code == 403 and "ROUTER_METRICS_FROM" in public.text
        inside = httpx.get(f"{server.base}/metrics", headers={"x-forwarded-for": "10.1.2.3"})
        assert inside.status_code == 200 and "adlink_rules_info" in inside.text
        assert httpx.get(f"{server.base}{CLICK}", headers=SAFARI).status_code == 400  # Host 127.0.0.1: not served
    finally:
        server.stop()


def test_metrics_off_is_a_404() -> None:
    server = Server(env={"ROUTER_METRICS_FROM": "off"})
    try:
        server.wait_ready()
        assert httpx.get(f"{server.base}/metrics").status_code == 404
    finally:
        server.stop()


# --- a real server: refusals before the app, reloads --------------------------------------------------


def scrape(base: str) -> Samples:
    response = httpx.get(f"{base}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    return parse(response.text)


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_protocol_refusals_and_reloads_on_a_real_server(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), rules, ignore=shutil.ignore_patterns("tests"))
    server = Server("--rules", str(rules), env={"ROUTER_RULES_POLL_SECONDS": "0.2"})
    try:
        server.wait_ready()
        first = httpx.get(f"{server.base}/readyz").json()["rules_version"]
        huge = b"GET /go HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
        assert raw_request(server.port, huge).startswith(b"HTTP/1.1 431")
        assert raw_request(server.port, b"NONSENSE\x00\r\n\r\n").startswith(b"HTTP/1.1 400")
        samples = scrape(server.base)
        assert value(samples, "adlink_refusals_total", status="431", stage="protocol") == 1
        assert value(samples, "adlink_refusals_total", status="400", stage="protocol") == 1

        default = rules / "default.yaml"
        default.write_text(default.read_text() + "\n# a change\n")
        samples = wait_until(lambda: (s := scrape(server.base)) and value(s, "adlink_rules_reloads_total",
                                                                         result="accepted") == 1 and s, 10, "accepted")
        second = httpx.get(f"{server.base}/readyz").json()["rules_version"]
        assert second != first
        assert value(samples, "adlink_rules_info", version=second) == 1
        assert value(samples, "adlink_rules_info", version=first) == 0
        assert value(samples, "adlink_rules_last_reload_rejected") == 0

        (rules / "broken.yaml").write_text("rules:\n  - id: x\n    when: {chanel: ad}\n    then: app\n")
        samples = wait_until(lambda: (s := scrape(server.base)) and value(s, "adlink_rules_reloads_total",
                                                                         result="rejected") >= 1 and s, 10, "rejected")
        assert value(samples, "adlink_rules_last_reload_rejected") == 1
        assert value(samples, "adlink_rules_info", version=second) == 1  # the last good rules still serve

        shutil.rmtree(rules)  # the source gone: unavailable, not rejected (no file:line to fix)
        samples = wait_until(lambda: (s := scrape(server.base)) and value(s, "adlink_rules_reloads_total",
                                                                         result="unavailable") >= 1 and s, 10, "gone")
        assert value(samples, "adlink_rules_last_reload_rejected") == 0
        assert value(samples, "adlink_rules_info", version=second) == 1
    finally:
        server.stop()


# --- serve --workers 2: one sum, whichever worker answers ---------------------------------------------


def click_on_new_connections(base: str, count: int) -> None:
    """Each click on a connection of its own: the kernel spreads them over the workers' sockets."""
    for _ in range(count):
        with httpx.Client() as fresh:
            assert fresh.get(f"{base}{CLICK}", headers=SAFARI).status_code == 302


def pids_serving(base: str) -> set[int]:
    pids = set()
    for _ in range(40):
        with httpx.Client() as fresh:
            pids.add(fresh.get(f"{base}/readyz").json()["pid"])
    return pids


def clicks_total(samples: Samples) -> float:
    return value(samples, "adlink_clicks_total", action="app", rule="mobile-browser-app", channel="unknown",
                 app="browser")


def test_workers_sum_their_counts_and_keep_those_of_a_worker_that_died(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    (metrics_dir).mkdir()
    (metrics_dir / "worker-999999.json").write_text('{"pid": 999999, "families": {}}')  # an earlier run's
    server = Server("--workers", "2", env={"ROUTER_METRICS_DIR": str(metrics_dir)})
    try:
        server.wait_ready()
        pids = wait_until(lambda: p if len(p := pids_serving(server.base)) == 2 else None, 30, "two workers")
        assert not (metrics_dir / "worker-999999.json").exists()
        click_on_new_connections(server.base, 30)
        # A worker's counts reach the other's scrapes within a flush (FLUSH_SECONDS): then, every scrape.
        wait_until(lambda: all(clicks_total(scrape(server.base)) == 30 for _ in range(4)), 10 * FLUSH_SECONDS, "30")
        for _ in range(10):  # whichever worker is scraped, the sum: its own counts and the other's file
            with httpx.Client() as fresh:
                samples = parse(fresh.get(f"{server.base}/metrics").text)
            assert clicks_total(samples) == 30
            assert value(samples, "adlink_workers") == 2
            assert value(samples, "adlink_request_duration_seconds_count", route="/go") == 30
        assert sorted(int(path.name.split("-")[1]) for path in metrics_dir.glob("worker-*.json")) == sorted(pids)

        # Counters never go down, whichever worker answers each scrape while clicks arrive.
        seen = []
        with ThreadPoolExecutor(1) as clicking:
            done = clicking.submit(click_on_new_connections, server.base, 20)
            while not done.done():
                with httpx.Client() as fresh:
                    seen.append(clicks_total(parse(fresh.get(f"{server.base}/metrics").text)))
            done.result()
        assert len(seen) > 3 and seen == sorted(seen), seen
        wait_until(lambda: clicks_total(scrape(server.base)) == 50, 10, "fifty clicks")

        os.kill(min(pids), signal.SIGKILL)  # a worker dies; the supervisor starts another
        wait_until(lambda: len(p := pids_serving(server.base)) == 2 and min(pids) not in p, 30, "a new worker")
        samples = scrape(server.base)
        assert clicks_total(samples) == 50  # the dead worker's clicks still count
        assert value(samples, "adlink_workers") == 2  # its gauges no longer do
        # ...folded by the supervisor into one file with every ended worker's counts
        assert (metrics_dir / RETIRED).exists() and not list(metrics_dir.glob(f"worker-{min(pids)}-*"))
        click_on_new_connections(server.base, 10)
        wait_until(lambda: clicks_total(scrape(server.base)) == 60, 10, "the new worker's clicks")
    finally:
        server.stop()


def test_workers_make_and_remove_a_directory_of_their_own() -> None:
    before = set(Path(tempfile.gettempdir()).glob("adlink-metrics-*"))
    server = Server("--workers", "2")
    try:
        server.wait_ready()
        made = set(Path(tempfile.gettempdir()).glob("adlink-metrics-*")) - before
        assert len(made) == 1
        click_on_new_connections(server.base, 4)
        wait_until(lambda: clicks_total(scrape(server.base)) == 4, 10, "four clicks")
    finally:
        server.stop()
    assert not any(path.exists() for path in made)


def test_a_read_only_place_for_the_workers_metrics_is_refused_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    server = Server("--workers", "2", env={"ROUTER_METRICS_DIR": str(blocker / "metrics")})
    assert server.wait_exit(30) == 2
    assert "ROUTER_METRICS_DIR" in server.stop()


# --- the real Prometheus ---------------------------------------------------------------------------------


def prometheus_binary() -> str:
    return debian_tool("prometheus", package="prometheus")


@pytest.fixture()
def prometheus_for(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Starts a Prometheus server that scrapes the given host:port every second; yields its base URL."""
    binary = prometheus_binary()
    processes: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "prometheus.log"

    def start(target: str) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: adlink-router\n    static_configs: [{{targets: ['{target}']}}]\n")
        with logs.open("wb") as log:
            processes.append(subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/-/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 60, "prometheus ready")
        return base

    try:
        yield start
    finally:
        for process in processes:
            stop_process(process)


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def test_prometheus_scrapes_two_workers_and_answers_promql(prometheus_for: Callable[[str], str]) -> None:
    server = Server("--workers", "2")
    try:
        server.wait_ready()
        click_on_new_connections(server.base, 25)
        version = httpx.get(f"{server.base}/readyz").json()["rules_version"]
        prometheus = prometheus_for(f"127.0.0.1:{server.port}")

        def total() -> list[dict[str, Any]]:
            result = query(prometheus, 'sum(adlink_clicks_total{action="app"})')
            return result if result and float(result[0]["value"][1]) == 25 else []

        wait_until(total, 60, "Prometheus sees the 25 clicks of both workers")
        assert query(prometheus, "up")[0]["value"][1] == "1"
        info = query(prometheus, "adlink_rules_info")
        assert [(row["metric"]["version"], row["value"][1]) for row in info] == [(version, "1")]  # an info metric
        # The README's query for the share of clicks by action: a rate, so clicks must go on between scrapes.
        share = ('sum by (action) (rate(adlink_clicks_total[1m])) / ignoring(action) group_left '
                 'sum(rate(adlink_clicks_total[1m]))')

        def shares() -> list[tuple[str, float]]:
            click_on_new_connections(server.base, 3)
            found = [(row["metric"]["action"], float(row["value"][1])) for row in query(prometheus, share)]
            return found if found and all(fraction == fraction for _, fraction in found) else []  # not NaN

        assert wait_until(shares, 60, "the share by action") == [("app", 1.0)]
        rejected = query(prometheus, 'sum(increase(adlink_rules_reloads_total{result="rejected"}[5m]))')
        assert [float(row["value"][1]) for row in rejected] == [0.0]
    finally:
        server.stop()


# --- the workers' files -----------------------------------------------------------------------------------


def test_a_dead_workers_file_is_folded_once_and_never_counted_twice(tmp_path: Path) -> None:
    """retire_worker folds an ended worker's counters into RETIRED and removes its file; a reader that sees
    both (between the two steps) counts them once; its gauges are gone; a broken file is skipped."""
    dead = {"adlink_clicks": [[["app", "r", "ad", "wechat"], 7]], "adlink_workers": [[[], 1]],
            "adlink_request_duration_seconds": [[["/go"], [1] * (len(REQUEST_BUCKETS) + 1) + [0.5]]]}
    (tmp_path / "worker-999999-0a0b0c0d.json").write_text(json.dumps({"pid": 999999, "families": dead}))
    (tmp_path / "worker-999998-00000000.json").write_text("{half a fi")  # a crash mid-write: skipped
    files = WorkerFiles(tmp_path)
    own: dict = {name: {} for name in FAMILIES}
    own["adlink_clicks"] = {("app", "r", "ad", "wechat"): 3}
    own["adlink_workers"] = {(): 1}

    def clicks() -> float:
        return files.total(own)["adlink_clicks"][("app", "r", "ad", "wechat")]

    assert clicks() == 10 and files.total(own)["adlink_workers"] == {(): 1}  # dead: its gauge left out
    saved = (tmp_path / "worker-999999-0a0b0c0d.json").read_bytes()
    retire_worker(tmp_path, 999999)
    assert not (tmp_path / "worker-999999-0a0b0c0d.json").exists() and (tmp_path / RETIRED).exists()
    assert clicks() == 10
    assert files.total(own)["adlink_request_duration_seconds"][("/go",)][-1] == 0.5
    (tmp_path / "worker-999999-0a0b0c0d.json").write_bytes(saved)  # as a reader between the two steps sees it
    assert clicks() == 10
    retire_worker(tmp_path, 999999)  # nothing new to fold: RETIRED names that file already
    assert clicks() == 10


def test_a_missing_directory_is_made_again_and_a_failed_write_counted(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    metrics = Metrics(str(directory))
    shutil.rmtree(directory)
    metrics.flush()  # made again
    assert len(list(directory.glob("worker-*.json"))) == 1
    shutil.rmtree(directory)
    directory.write_text("now a file")  # can't be made again: counted, never raised
    metrics.flush()
    assert metrics.snapshot()["adlink_metrics_write_errors"] == {(): 1}


def test_a_metrics_port_of_its_own() -> None:
    """ROUTER_METRICS_PORT: /metrics there (with the probes) and nowhere else; no clicks there."""
    metrics_port = free_port()
    server = Server(env={"ROUTER_METRICS_PORT": str(metrics_port)})
    try:
        server.wait_ready()
        on_metrics = f"http://127.0.0.1:{metrics_port}"
        assert httpx.get(f"{server.base}/metrics").status_code == 404
        assert httpx.get(f"{server.base}{CLICK}", headers=SAFARI).status_code == 302
        assert httpx.get(f"{on_metrics}{CLICK}", headers=SAFARI).status_code == 404
        assert httpx.get(f"{on_metrics}/readyz").status_code == 200
        samples = scrape(on_metrics)
        assert clicks_total(samples) == 1
        assert value(samples, "adlink_refusals_total", status="404", stage="edge") == 2
    finally:
        output = server.stop()
    assert f"http://127.0.0.1:{metrics_port} (metrics)" in output


def test_a_metrics_port_equal_to_the_clicks_port_or_out_of_range_is_refused() -> None:
    port = free_port()
    for env, expected in (({"ROUTER_METRICS_PORT": str(port)}, "ROUTER_METRICS_PORT must differ from the clicks' port"),
                          ({"ROUTER_METRICS_PORT": "0"}, "ROUTER_METRICS_PORT must be between 1 and 65535, got 0")):
        refused = Server("--port", str(port), env=env)
        assert refused.wait_exit(30) == 2
        assert expected in refused.stop()


def test_a_second_router_on_a_busy_port_is_refused() -> None:
    """SO_REUSEPORT would let a second `serve --workers 2` join the first one's port and take a share of its
    clicks: it is refused at start, naming the port."""
    first = Server("--workers", "2")
    try:
        first.wait_ready()
        second = Server("--port", str(first.port), "--workers", "2")
        assert second.wait_exit(30) == 2
        output = second.stop()
        assert f"can't listen on 127.0.0.1:{first.port}" in output and "another router" in output
        assert httpx.get(f"{first.base}/readyz").status_code == 200
    finally:
        first.stop()
