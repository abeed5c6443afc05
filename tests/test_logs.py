"""What a real server writes (router.serve.logs): every line one JSON object with a type; clicks whatever
the log level; an access line for each refusal; a request id on every answer and its lines; and the
whole stream replayable by `explain --batch` as it is."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from urllib.parse import quote

import httpx

from tests import uas
from tests.servers import Server

CLICK = "/go?url=" + quote("https://item.taobao.com/item.htm?id=123456", safe="")


def _records(output: str) -> list[dict[str, object]]:
    records = [json.loads(line) for line in output.splitlines()]  # every line is JSON, or this raises
    assert all(record["type"] in ("click", "access", "reload", "server") for record in records), records
    return records


def test_every_line_is_typed_json_with_request_ids_and_refusals_logged() -> None:
    server = Server(env={"ROUTER_SERVER_NAMES": "127.0.0.1"}).wait_ready()
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            click = http.get(CLICK, headers={"user-agent": uas.SAFARI_IOS, "x-request-id": "from-the-client"})
            missing = http.get("/nope")
            wrong_method = http.post(CLICK)
            other_host = http.get(CLICK, headers={"host": "evil.example"})
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /go HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n")
            too_large = sock.recv(4096)
    finally:
        output = server.stop()
    records = _records(output)
    answers = [click, missing, wrong_method, other_host]
    assert [answer.status_code for answer in answers] == [302, 404, 405, 400]
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert len(set(ids)) == 4 and "from-the-client" not in ids  # no trusted proxy: the client's is not believed
    (click_line,) = [record for record in records if record["type"] == "click"]
    assert click_line["request_id"] == ids[0] and isinstance(click_line["duration_ms"], float)
    access = {record["status"]: record for record in records if record["type"] == "access"}
    assert set(access) == {404, 405, 400, 431}, access
    for answer in answers[1:]:
        assert access[answer.status_code]["request_id"] == answer.headers["x-request-id"]
    assert too_large.startswith(b"HTTP/1.1 431 ") and access[431]["request_id"].encode() in too_large
    assert any(record["type"] == "server" for record in records)  # uvicorn's own lines, as JSON too


def test_a_trusted_proxys_request_id_is_kept_beside_the_routers_own() -> None:
    """A click's id is always the router's own (random: nobody picks or predicts it); a trusted proxy's
    X-Request-ID is kept as `correlation_id`, to join the proxy's logs; from anyone else it is not read."""
    server = Server(env={"ROUTER_TRUSTED_PROXIES": "127.0.0.1"}).wait_ready()
    try:
        kept = httpx.get(server.base + CLICK, headers={"x-request-id": "lb-7f3a.42"}, timeout=10)
        odd = httpx.get(server.base + CLICK, headers={"x-request-id": "<script>"}, timeout=10)
        missing = httpx.get(server.base + "/nope", headers={"x-request-id": "lb-7f3a.43"}, timeout=10)
    finally:
        output = server.stop()
    ids = [answer.headers["x-request-id"] for answer in (kept, odd, missing)]
    assert all(re.fullmatch(r"[0-9a-f]{24}", found) for found in ids) and len(set(ids)) == 3
    records = _records(output)
    clicks = [record for record in records if record["type"] == "click"]
    assert [record["request_id"] for record in clicks] == ids[:2]
    assert clicks[0]["correlation_id"] == "lb-7f3a.42" and "correlation_id" not in clicks[1]
    [access] = [record for record in records if record["type"] == "access"]
    assert access["request_id"] == ids[2] and access["correlation_id"] == "lb-7f3a.43"


def test_clicks_are_data_not_a_log_level_and_the_stream_replays_as_is() -> None:
    """--log-level warning silences the server's and access lines, never the clicks; explain --batch
    reads the whole mixed output and replays the clicks alone."""
    server = Server("--log-level", "warning").wait_ready()
    try:
        for ua in (uas.SAFARI_IOS, uas.CHROME_WINDOWS):
            httpx.get(server.base + CLICK, headers={"user-agent": ua}, timeout=10)
        httpx.get(server.base + "/nope", timeout=10)
    finally:
        output = server.stop()
    records = _records(output)
    assert [record["type"] for record in records if record["type"] != "server"] == ["click", "click"]
    assert all(record["level"] in ("warning", "error", "critical") for record in records if record["type"] == "server")
    everything = Server("--log-level", "info").wait_ready()
    try:
        httpx.get(everything.base + CLICK, headers={"user-agent": uas.SAFARI_IOS}, timeout=10)
        httpx.get(everything.base + "/nope", timeout=10)
    finally:
        mixed = everything.stop()
    assert {record["type"] for record in _records(mixed)} >= {"click", "access", "server"}
    replay = subprocess.run([sys.executable, "-m", "router", "explain", "--batch", "-"], input=mixed,
                            capture_output=True, text=True, timeout=60)
    assert replay.returncode == 0, replay.stderr
    (replayed,) = [json.loads(line) for line in replay.stdout.splitlines()]
    assert replayed["rule"] == "mobile-browser-app"


def test_refusals_to_start_are_json_lines_too(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A bad setting, bad rules or --workers 0: the server does not start, exits 2, and every line it wrote
    is a `server` line at level critical, the rule's file:line in its message."""
    (tmp_path / "broken.yaml").write_text("rules:\n  - id: x\n    when: {chanel: ad}\n    then: app\ndefault: web\n")
    cases = [
        (Server(env={"ROUTER_FALLBACK_DELAY_MS": "5"}), "ROUTER_FALLBACK_DELAY_MS must be between 300 and 10000"),
        (Server("--rules", str(tmp_path)), "broken.yaml:3:12: unknown condition 'chanel'; did you mean 'channel'?"),
        (Server("--workers", "0"), "--workers must be at least 1, got 0"),
    ]
    for server, expected in cases:
        assert server.wait_exit() == 2
        records = _records(server.stop())
        assert records and all(r["type"] == "server" and r["level"] == "critical" for r in records), records
        assert any(expected in str(r["message"]) for r in records), records


def test_a_click_lines_time_is_isoformat_to_the_millisecond() -> None:
    """click_time formats the second once and adds the milliseconds: the very text isoformat gives, across
    seconds, days and years, and where a time rounds up into the next second."""
    import math
    import random
    from datetime import UTC, datetime

    from router.serve.clicklog import click_time

    draw = random.Random(20261202)
    for _ in range(20_000):
        base = float(draw.randint(0, 4_000_000_000))
        # A time that rounds up into `base`'s second, then one in the second before, then others.
        for now in (math.nextafter(base, 0), base - 0.5, base - draw.choice([4e-7, 5e-7, 6e-7, 1e-6]), base,
                    base + draw.random() * 3):
            at = datetime.fromtimestamp(now, UTC)
            assert click_time(now, at) == at.isoformat(timespec="milliseconds"), repr(now)
