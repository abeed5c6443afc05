"""What the router says of itself, and to whom (issue: no silent fallbacks).

- /readyz on the public port, for any Host and any asker but this machine, is a status and a short reason:
  no pid, no path of the rules, no text of a rejected reload. The details go to the metrics port, to this
  machine (loopback, no proxy in between) and to the logs.
- Start-up warms everything before it is ready: the first clicks of each kind cost what the hundredth does.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from tests import uas
from tests.servers import Server, free_port, wait_until

ITEM = quote("https://item.taobao.com/item.htm?id=1", safe="")
SHIPPED = (Path(__file__).resolve().parent.parent / "rules" / "default.yaml").read_text(encoding="utf-8")


def _broken_reload(rules_dir: Path, server: Server) -> None:
    """A save with a mistake: the server keeps its rules and logs why."""
    (rules_dir / "default.yaml").write_text(SHIPPED.replace("then: landing", "then: landng", 1), encoding="utf-8")
    wait_until(lambda: "landng" in server.output(), 20, "the rejected reload in the log")


def test_the_public_readyz_is_a_status_and_a_reason(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "default.yaml").write_text(SHIPPED, encoding="utf-8")
    metrics_port = free_port()
    server = Server("--host", "0.0.0.0", "--development-key", "--rules", str(rules_dir),
                    env={"ROUTER_METRICS_PORT": str(metrics_port), "ROUTER_SERVER_NAMES": "go.example.com",
                         "ROUTER_RULES_POLL_SECONDS": "0.2"}).wait_ready()
    try:
        _broken_reload(rules_dir, server)
        # Through a proxy on this machine (it says whom it forwards for), with some other Host: the public answer.
        proxied = {"host": "attacker.example", "x-forwarded-for": "203.0.113.9"}
        public = httpx.get(f"{server.base}/readyz", headers=proxied)
        assert public.status_code == 200
        body = public.json()
        assert set(body) == {"status", "reason"} and body["status"] == "ready"
        assert body["reason"].startswith("serving rules ")
        for secret in (str(server.process.pid), str(rules_dir), "landng", "pid", "rules_source"):
            assert secret not in public.text
        # The metrics port, asked from a network that may scrape it, gets the details, the rejected reload's too;
        # with a metrics port, the clicks' port gives none even to this machine (a local proxy looks local).
        details = httpx.get(f"http://127.0.0.1:{metrics_port}/readyz").json()
        assert details["pid"] == server.process.pid and details["rules_source"] == str(rules_dir)
        assert details["last_reload"]["result"] == "rejected"
        assert any("landng" in error for error in details["last_reload"]["errors"])
        assert set(httpx.get(f"{server.base}/readyz").json()) == {"status", "reason"}
    finally:
        output = server.stop()
    assert "landng" in output  # ...and so does the log


def test_the_metrics_port_gives_details_only_to_who_may_scrape_it() -> None:
    """ROUTER_METRICS_FROM leaves loopback out: the metrics port's /readyz is the public answer, as /metrics
    is refused there."""
    metrics_port = free_port()
    server = Server(env={"ROUTER_METRICS_PORT": str(metrics_port), "ROUTER_METRICS_FROM": "10.0.0.0/8"}).wait_ready()
    try:
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").status_code == 403
        assert set(httpx.get(f"http://127.0.0.1:{metrics_port}/readyz").json()) == {"status", "reason"}
    finally:
        server.stop()


def test_without_a_metrics_port_this_machine_gets_the_details_unless_a_proxy_is_declared() -> None:
    """Loopback with no forwarding header is the machine itself; with ROUTER_TRUSTED_PROXIES a proxy is in
    front, and one that adds no header would make every client look local: nobody gets the details there."""
    alone = Server().wait_ready()
    try:
        assert httpx.get(f"{alone.base}/readyz").json()["pid"] == alone.process.pid
    finally:
        alone.stop()
    proxied = Server(env={"ROUTER_TRUSTED_PROXIES": "127.0.0.1"}).wait_ready()
    try:
        assert set(httpx.get(f"{proxied.base}/readyz").json()) == {"status", "reason"}
    finally:
        proxied.stop()


def _clicks_of(output: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("type") == "click"]


def test_the_first_clicks_cost_what_the_hundredth_does() -> None:
    """One server, four kinds of click that each used to pay for something on first use (ua-parser's tables,
    the landing page's template, a command-line client, the error page): each one's first `duration_ms`
    beside its hundredth. None of these user agents is one the warm-up reads (router.serve.warm): the test
    shows the warm-up covers their kind, not itself. Before, the first of them took hundreds of ms (tables)
    or tens (templates), the hundredth ~0.1 ms."""
    started = time.monotonic()
    server = Server(env={"ROUTER_SIGNING_KEYS": "k1:a-test-secret-0123456789"}).wait_ready()
    ready_after = time.monotonic() - started
    kinds = {
        "unusual agent": ("/go?url=" + ITEM, "Mozilla/5.0 (X11; FreeBSD amd64; rv:120.0) Gecko/20100101 Firefox/120.0"),
        "landing page": ("/go?url=" + ITEM + "&from=groupmessage", uas.WECHAT_IOS),
        "command line": ("/go?url=" + ITEM, "Wget/1.21.4"),
        "bad request": ("/go?url=https%3A%2F%2Fexample.com%2F", uas.SAFARI_IOS),
    }
    try:
        with httpx.Client(base_url=server.base) as client:
            for _ in range(100):
                for path, ua in kinds.values():
                    client.get(path, headers={"user-agent": ua})
    finally:
        output = server.stop()
    clicks = _clicks_of(output)
    assert len(clicks) == 400
    report = []
    for n, kind in enumerate(kinds):
        durations = [float(line["duration_ms"]) for line in clicks[n::len(kinds)]]  # type: ignore[arg-type]
        typical = statistics.median(durations[1:])
        report.append(f"{kind}: first {durations[0]:.2f} ms, hundredth {durations[99]:.2f} ms, "
                      f"median {typical:.2f} ms")
        # Generous for a busy machine, far below what a first use costs (tens to hundreds of ms).
        assert durations[0] <= 10 * typical + 10, report
    print(f"ready {ready_after:.2f} s after start; " + "; ".join(report))
