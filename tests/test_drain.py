"""SIGTERM under load, on a real server (one worker and two): readiness turns 503 while clicks are still
served, every request sent before the drain ended is answered, and the process exits 0."""

from __future__ import annotations

import signal
import threading
import time
from urllib.parse import quote

import httpx
import pytest

from tests import uas
from tests.servers import Server

DRAIN = 2.0
CLICK = "/go?url=" + quote("https://item.taobao.com/item.htm?id=123456", safe="")
HEADERS = {"user-agent": uas.SAFARI_IOS}


def _load(base: str, stop_at: float, results: list[tuple[float, bool, str]]) -> None:
    """Clicks one after another on a kept-alive client until stop_at: (sent at, answered 302, note)."""
    with httpx.Client(base_url=base, timeout=10) as client:
        while (sent := time.monotonic()) < stop_at:
            try:
                response = client.get(CLICK, headers=HEADERS)
                results.append((sent, response.status_code == 302, response.headers.get("connection", "")))
            except httpx.HTTPError as err:
                results.append((sent, False, type(err).__name__))
                time.sleep(0.02)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_without_losing_a_click(workers: int) -> None:
    server = Server("--workers", str(workers), env={"ROUTER_DRAIN_SECONDS": str(DRAIN)}).wait_ready()
    try:
        results: list[tuple[float, bool, str]] = []
        sent_term = time.monotonic() + 1.0
        stop_at = sent_term + DRAIN + 1.5
        threads = [threading.Thread(target=_load, args=(server.base, stop_at, results)) for _ in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(max(0.0, sent_term - time.monotonic()))
        sent_term = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        readiness = []
        while time.monotonic() < sent_term + DRAIN - 0.5:
            try:
                readiness.append(httpx.get(f"{server.base}/readyz", timeout=2).status_code)
            except httpx.HTTPError:
                readiness.append(0)
            time.sleep(0.1)
        for thread in threads:
            thread.join(30)
        code = server.process.wait(timeout=30)
    finally:
        output = server.stop()
    drain_ended = sent_term + DRAIN
    before_end = [(ok, note) for sent, ok, note in results if sent < drain_ended]
    during = [(ok, note) for sent, ok, note in results if sent_term + 0.2 < sent < drain_ended]
    assert code == 0, output[-2000:]
    assert before_end and all(ok for ok, _ in before_end), [r for r in before_end if not r[0]][:5]
    assert len(during) > 20 and all(note == "close" for _, note in during)  # served, each on its own connection
    assert 503 in readiness and 200 not in readiness[2:], readiness  # not ready from the first moments on
    assert "draining for 2 s" in output
