"""End to end: the real `python -m router serve` (uvicorn) on 127.0.0.1, driven over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests import uas

ITEM = "https://item.taobao.com/item.htm?id=123456"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})},
    )
    return process, port


def wait_ready(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not become ready in 30 s")


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    try:
        output, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    process, port = start()
    try:
        wait_ready(process, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def test_health_and_ready(server: str) -> None:
    """/healthz says ok; /readyz names the loaded rules' version."""
    base = server
    assert httpx.get(f"{base}/healthz").text == "ok\n"
    ready = httpx.get(f"{base}/readyz").json()
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
    base = server
    response = httpx.get(f"{base}/go?url={quote(ITEM, safe='')}", headers={"user-agent": ua})
    assert response.status_code == status
    assert response.headers.get("location") == location


def test_real_bad_click(server: str) -> None:
    """A non-allowlisted host over real HTTP: 400, no Location."""
    base = server
    response = httpx.get(f"{base}/go?url={quote('https://taobao.com.evil.com/', safe='')}")
    assert response.status_code == 400
    assert "location" not in response.headers


def test_startup_log_content() -> None:
    """A server started without keys warns about the development key and logs each click as JSON."""
    process, port = start(env={"ROUTER_SIGNING_KEYS": ""})
    try:
        wait_ready(process, port)
        httpx.get(f"http://127.0.0.1:{port}/go?url={quote(ITEM, safe='')}", headers={"user-agent": uas.SAFARI_IOS})
    finally:
        output = stop(process)
    assert output.count("PUBLIC DEVELOPMENT KEY") == 1
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
    process, _ = start("--rules", str(tmp_path))
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "broken.yaml:3:12: unknown condition 'chanel'; did you mean 'channel'?" in output
    assert "nothing was loaded" in output


def test_two_workers(tmp_path: Path) -> None:
    """--workers 2 serves the same decisions."""
    process, port = start("--workers", "2")
    try:
        wait_ready(process, port)
        response = httpx.get(f"http://127.0.0.1:{port}/go?url={quote(ITEM, safe='')}",
                             headers={"user-agent": uas.CHROME_WINDOWS})
        assert response.status_code == 302 and response.headers["location"] == ITEM
    finally:
        stop(process)
