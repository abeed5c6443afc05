"""End to end: the real `python -m router serve` (uvicorn) on 127.0.0.1, driven over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests import uas
from tests.servers import Server

ITEM = "https://item.taobao.com/item.htm?id=123456"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    running = Server().wait_ready()
    try:
        yield running.base
    finally:
        running.stop()


def test_health_and_ready(server: str) -> None:
    """/healthz says ok; /readyz names the loaded rules' version."""
    assert httpx.get(f"{server}/healthz").text == "ok\n"
    ready = httpx.get(f"{server}/readyz").json()
    assert ready["status"] == "ready" and len(ready["rules_version"]) == 12 and ready["rules"] == 11


@pytest.mark.parametrize(
    ("ua", "status", "location"),
    [
        (uas.SAFARI_IOS, 302, "taobao://item.taobao.com/item.htm?id=123456"),
        (uas.CHROME_WINDOWS, 302, ITEM),
        (uas.WECHAT_ANDROID, 200, None),
    ],
)
def test_real_clicks(server: str, ua: str, status: int, location: str | None) -> None:
    """Clicks over real HTTP: status and Location, redirects not followed."""
    response = httpx.get(f"{server}/go?url={quote(ITEM, safe='')}", headers={"user-agent": ua})
    assert response.status_code == status
    assert response.headers.get("location") == location


def test_real_bad_click(server: str) -> None:
    """A non-allowlisted host over real HTTP: 400, no Location."""
    response = httpx.get(f"{server}/go?url={quote('https://taobao.com.evil.com/', safe='')}")
    assert response.status_code == 400
    assert "location" not in response.headers


def test_startup_log_content() -> None:
    """A server started without keys warns about the development key and logs each click as replayable JSON."""
    running = Server(env={"ROUTER_SIGNING_KEYS": ""}).wait_ready()
    try:
        httpx.get(f"{running.base}/go?url={quote(ITEM, safe='')}", headers={"user-agent": uas.SAFARI_IOS})
    finally:
        output = running.stop()
    assert output.count("PUBLIC DEVELOPMENT KEY") == 1 and "forge outcome beacons" in output
    click_lines = [line for line in output.splitlines() if '"request"' in line]
    assert len(click_lines) == 1, output  # once, as bare JSON: the log replays with explain --batch
    record = json.loads(click_lines[0])
    assert record["request"] == "/go?url=https%3A%2F%2Fitem.taobao.com%2Fitem.htm%3Fid%3D123456"
    assert record["rule"] == "mobile-browser-app" and record["ua"] == uas.SAFARI_IOS
    replay = subprocess.run([sys.executable, "-m", "router", "explain", "--batch", "-"], input=click_lines[0],
                            capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(replay.stdout)["rule"] == "mobile-browser-app"


def test_bad_rules_refuse_to_start(tmp_path: Path) -> None:
    """A rule set that does not validate: the server never starts and names file:line."""
    (tmp_path / "broken.yaml").write_text("rules:\n  - id: x\n    when: {chanel: ad}\n    then: app\ndefault: web\n")
    running = Server("--rules", str(tmp_path))
    assert running.wait_exit() == 2
    output = running.stop()
    assert "broken.yaml:3:12: unknown condition 'chanel'; did you mean 'channel'?" in output
    assert "nothing was loaded" in output


def test_bad_setting_refuses_to_start() -> None:
    """A setting that cannot work stops the server with one sentence."""
    running = Server(env={"ROUTER_FALLBACK_DELAY_MS": "5"})
    assert running.wait_exit() == 2
    assert "ROUTER_FALLBACK_DELAY_MS must be between 300 and 10000 milliseconds, got 5" in running.stop()


def test_two_workers_share_the_connections() -> None:
    """--workers 2 serves the same decisions, and new connections spread over both workers (each has its own
    socket on the address); SIGTERM stops them all."""
    running = Server("--workers", "2").wait_ready()
    try:
        response = httpx.get(f"{running.base}/go?url={quote(ITEM, safe='')}",
                             headers={"user-agent": uas.CHROME_WINDOWS})
        assert response.status_code == 302 and response.headers["location"] == ITEM
        deadline = time.monotonic() + 30
        while True:  # both workers up: the first answered readiness before the second had bound
            # httpx.get opens a new connection every time: each is placed by the kernel anew.
            pids = Counter(httpx.get(f"{running.base}/readyz").json()["pid"] for _ in range(100))
            if len(pids) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(pids) == 2 and min(pids.values()) >= 20, pids  # about even: 100 connections, two sockets
    finally:
        output = running.stop()
    assert running.process.returncode == 0, output[-2000:]


def test_a_worker_that_dies_is_started_again() -> None:
    """--workers 2: a worker killed outright is replaced, and the address keeps answering meanwhile."""
    running = Server("--workers", "2").wait_ready()
    try:
        deadline = time.monotonic() + 30
        pids: set[int] = set()
        while len(pids) < 2 and time.monotonic() < deadline:
            pids |= {httpx.get(f"{running.base}/readyz").json()["pid"] for _ in range(20)}
        assert len(pids) == 2
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        seen: set[int] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # A connection queued on the dead worker's socket as it went is reset: try again.
            with contextlib.suppress(httpx.TransportError):
                seen |= {httpx.get(f"{running.base}/readyz").json()["pid"] for _ in range(20)}
            if len(seen - pids) == 1:
                break
            time.sleep(0.2)
        assert len(seen - pids) == 1, (pids, seen)  # a new worker answers in the dead one's place
    finally:
        output = running.stop()
    assert "starting another" in output


def test_ua_tables_load_when_a_user_agent_first_needs_them() -> None:
    """With ROUTER_UA_TABLES=lazy a served process keeps ua-parser's tables out of memory until an unusual
    user agent comes; by default (startup) they are built before it is ready."""
    running = Server(env={"ROUTER_UA_TABLES": "lazy"}).wait_ready()
    try:
        for ua in (uas.SAFARI_IOS, uas.CHROME_WINDOWS, uas.WECHAT_ANDROID, uas.WECHAT_IOS):
            httpx.get(f"{running.base}/go?url={quote(ITEM, safe='')}", headers={"user-agent": ua})
        assert httpx.get(f"{running.base}/readyz").json()["ua_tables"] == "none"
        odd = "Opera/9.80 (X11; Linux i686) Presto/2.12.388 Version/12.16"
        response = httpx.get(f"{running.base}/go?url={quote(ITEM, safe='')}", headers={"user-agent": odd})
        assert (response.status_code, response.headers["location"]) == (302, ITEM)  # a desktop browser: web
        assert httpx.get(f"{running.base}/readyz").json()["ua_tables"] == "all"
    finally:
        running.stop()
    eager = Server().wait_ready()
    try:
        assert httpx.get(f"{eager.base}/readyz").json()["ua_tables"] == "all"
    finally:
        eager.stop()


def test_the_images_healthcheck_follows_router_port_whatever_the_server_names() -> None:
    """The Dockerfile's HEALTHCHECK command, run as Docker runs it, against a real server on a port other
    than 8000 that serves only go.example.com: healthy; pointed at a port nobody listens on: unhealthy."""
    dockerfile = (Path(__file__).resolve().parent.parent / "Dockerfile").read_text()
    command = json.loads(dockerfile.split("HEALTHCHECK", 1)[1].split("CMD", 1)[1].splitlines()[0])
    assert command[0] == "python"
    server = Server(env={"ROUTER_SERVER_NAMES": "go.example.com"}).wait_ready()
    try:
        assert server.port != 8000
        probe = [sys.executable, *command[1:]]
        healthy = subprocess.run(probe, env={**os.environ, "ROUTER_PORT": str(server.port)}, capture_output=True,
                                 timeout=30)
        assert healthy.returncode == 0, healthy.stderr
        closed = subprocess.run(probe, env={**os.environ, "ROUTER_PORT": "9"}, capture_output=True, timeout=30)
        assert closed.returncode != 0
    finally:
        server.stop()
