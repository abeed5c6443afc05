"""Requests the router refuses or doesn't believe: foreign Host names, oversized headers, forged proxies."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from starlette.testclient import TestClient

from router.serve.config import ANY_NETWORK, Settings, bundled_rules_dir
from router.serve.headers import SECURITY_HEADERS
from router.serve.limits import Limit
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS
from tests.servers import Server
from tests.test_response_writes import connection

ITEM = quote("https://item.taobao.com/item.htm?id=1", safe="")


def named_client(*names: str) -> TestClient:
    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, server_names=names)
    return TestClient(create_app(settings), follow_redirects=False)


def test_only_configured_host_names_are_served() -> None:
    """With ROUTER_SERVER_NAMES set, another Host is a 400 before any routing; listed names work."""
    client = named_client("go.example.com", "*.links.example.com")
    for host in ("go.example.com", "GO.example.com.", "cn.links.example.com", "go.example.com:8443"):
        response = client.get(f"/go?url={ITEM}", headers={"host": host, "user-agent": uas.CHROME_WINDOWS})
        assert response.status_code == 302, host
    for host in ("evil.com", "links.example.com", "go.example.com.evil.com", ""):
        response = client.get(f"/go?url={ITEM}", headers={"host": host})
        assert response.status_code == 400, host
        assert response.text == "This router does not serve that host name.\n"
        assert "set-cookie" not in response.headers and response.headers["x-content-type-options"] == "nosniff"


def test_health_probes_answer_whatever_the_host() -> None:
    """A container's HEALTHCHECK calls 127.0.0.1, Kubernetes the pod's IP: with ROUTER_SERVER_NAMES set,
    /healthz and /readyz still answer 200 for those (and for no Host at all); clicks still don't."""
    client = named_client("go.example.com")
    for host in ("127.0.0.1:8000", "10.1.2.3:8000", "[::1]:8000", "", "evil.com"):
        for path in ("/healthz", "/readyz"):
            assert client.get(path, headers={"host": host}).status_code == 200, (path, host)
        assert client.get(f"/go?url={ITEM}", headers={"host": host}).status_code == 400, host


def test_any_host_by_default_and_never_in_a_location(client: TestClient) -> None:
    """Without the setting any Host is answered, and no Location ever carries it."""
    response = client.get(f"/go?url={ITEM}", headers={"host": "evil.com", "user-agent": uas.CHROME_WINDOWS})
    assert response.status_code == 302 and "evil.com" not in response.headers["location"]


def test_every_kind_of_response_carries_its_security_headers(tmp_path: Path) -> None:
    """Every kind of answer the router gives carries every header of SECURITY_HEADERS (router.serve.headers):
    decided clicks (302, landing, block), a bad click, 404, 405, a click limit's 429, the edge's refusals,
    the beacons' 204, the probes and /metrics, and the protocol's own refusals. A new kind of answer belongs
    here; one that forgets the headers fails."""
    (tmp_path / "r.yaml").write_text("rules:\n  - id: no-qq\n    when: {app: qq}\n    then: block\n"
                                     "default: landing\n", encoding="utf-8")
    shipped = TestClient(create_app(Settings(
        rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, metrics_from=ANY_NETWORK,
        limit_per_address=Limit(1, 60))), follow_redirects=False)
    blocking = TestClient(create_app(Settings(rules_dir=tmp_path, signing_keys=TEST_KEYS)), follow_redirects=False)
    named = named_client("go.example.com")
    answers = {
        "redirect": (302, shipped.get(f"/go?url={ITEM}", headers={"user-agent": uas.CHROME_WINDOWS})),
        "too many clicks": (429, shipped.get(f"/go?url={ITEM}", headers={"user-agent": uas.CHROME_WINDOWS})),
        "landing": (200, blocking.get(f"/go?url={ITEM}&from=groupmessage", headers={"user-agent": uas.WECHAT_IOS})),
        "block": (403, blocking.get(f"/go?url={ITEM}", headers={"user-agent": uas.QQ_ANDROID})),
        "bad click": (400, blocking.get("/go")),
        "not found": (404, blocking.get("/nope")),
        "method not allowed": (405, blocking.post("/go")),
        "foreign host": (400, named.get(f"/go?url={ITEM}", headers={"host": "evil.com"})),
        "headers too large": (431, blocking.get("/healthz", headers={"x-big": "a" * 20_000})),
        "beacon": (204, blocking.post("/outcome", content=b"e=shown&t=x")),
        "healthz": (200, blocking.get("/healthz")),
        "readyz": (200, blocking.get("/readyz")),
        "metrics": (200, shipped.get("/metrics")),
        "metrics refused": (403, blocking.get("/metrics")),  # a TestClient's peer is no private network's
    }
    for kind, (status, response) in answers.items():
        assert response.status_code == status, kind
        for name, value in SECURITY_HEADERS:
            assert response.headers.get(name.decode()) == value.decode(), (kind, name)
    for kind in ("landing", "block", "bad click", "not found", "method not allowed", "too many clicks"):
        assert "default-src 'none'" in answers[kind][1].headers["content-security-policy"], kind
    for raw in _protocol_refusals():
        head = raw.split(b"\r\n\r\n", 1)[0].lower()
        for name, value in SECURITY_HEADERS:
            assert b"\r\n" + name + b": " + value + b"\r\n" in head + b"\r\n", (raw[:40], name)


def _protocol_refusals() -> list[bytes]:
    """What the protocol answers itself, before the app: 431 (a head past the limit), 408 (a head too slow,
    here after 0.05 s) and 400 (not HTTP)."""

    async def refused(data: bytes) -> bytes:
        protocol, transport = connection()
        protocol.head_timeout = 0.05
        protocol.data_received(data)
        await asyncio.sleep(0.1)
        protocol.connection_lost(None)
        return b"".join(transport.writes)

    async def run() -> list[bytes]:
        return [await refused(data) for data in (
            b"GET /go HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000,
            b"GET /go HTTP/1.1\r\nHost: x\r\nX-Half: ",
            b"NONSENSE\x00\r\n\r\n")]

    answers = asyncio.run(run())
    assert [raw.split(b" ", 2)[1] for raw in answers] == [b"431", b"408", b"400"], [raw[:40] for raw in answers]
    return answers


@pytest.mark.parametrize("head", [
    b"GET /go?url=" + b"a" * 20_000,  # still arriving: the request line alone is over the limit
    b"GET /go?url=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # whole, in one piece
])
def test_a_request_target_over_the_limit_is_414_not_431(head: bytes) -> None:
    """431 is for header fields; a request target (path and query) over the head's limit is a 414 that says
    so, as the app's own query limit is."""

    async def run() -> bytes:
        protocol, transport = connection()
        protocol.data_received(head)
        await asyncio.sleep(0.05)
        protocol.connection_lost(None)
        return b"".join(transport.writes)

    answer = asyncio.run(run())
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:80]
    assert b"The request target is over the limit of 16384 bytes." in answer


def _raw_request(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        return sock.recv(4096)


def test_oversized_headers_and_proxy_headers_on_a_real_server() -> None:
    """Real uvicorn: 64 KB of headers is refused; X-Forwarded-For is ignored unless the peer is trusted (the
    address a click limit counts is the peer's, or a trusted proxy's client's)."""
    one_a_minute = {"ROUTER_LIMIT_PER_ADDRESS": "1/60s"}
    plain = Server(env=one_a_minute).wait_ready()
    trusting = Server(env={**one_a_minute, "ROUTER_TRUSTED_PROXIES": "127.0.0.1"}).wait_ready()
    statuses: dict[str, list[int]] = {"plain": [], "trusting": []}
    try:
        answer = _raw_request(plain.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")
        assert answer.split(b" ", 2)[1] == b"431", answer[:80]
        assert httpx.get(f"{plain.base}/healthz").status_code == 200  # still serving
        for name, server in (("plain", plain), ("trusting", trusting)):
            for forwarded in ("", "203.0.113.7"):
                headers = {"user-agent": uas.CHROME_WINDOWS}
                if forwarded:
                    headers["x-forwarded-for"] = forwarded
                statuses[name].append(httpx.get(f"{server.base}/go?url={ITEM}", headers=headers).status_code)
    finally:
        plain.stop(), trusting.stop()
    assert statuses["plain"] == [302, 429]  # a client can't choose the address it is known by
    assert statuses["trusting"] == [302, 302]  # a trusted proxy's header is believed: another address


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset ends it too: what arrived before it counts)."""
    chunks = []
    try:
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def test_head_limits_of_the_fast_protocol_on_a_real_server() -> None:
    """httptools serves, with h11's limits kept: an endless head is cut at 16 KB, a dribbling one after 10 s."""
    server = Server().wait_ready()
    try:
        # A head that never ends: refused once past the limit, before it is complete, and the connection closed.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            for _ in range(40):
                try:
                    sock.sendall(b"X-Pad: " + b"a" * 1000 + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    break
            answer = _read_all(sock)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
        assert b"connection: close" in answer.lower()
        assert all(name + b": " + value in answer.lower() for name, value in SECURITY_HEADERS), answer
        # Meanwhile, on another connection, bare CR/LFs now and then (the parser skips them before a
        # request, and they stop the keep-alive timer): the head timer still closes it.
        dripped: list[bytes] = []

        def drip() -> None:
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
                try:
                    for _ in range(25):
                        sock.sendall(b"\r\n")
                        time.sleep(1)
                except OSError:
                    pass
                dripped.append(_read_all(sock))

        dripping = threading.Thread(target=drip)
        dripping.start()
        # A head that stops half-way: 408 and closed after the head timeout, not held open.
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ")
            answer = _read_all(sock)
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert all(name + b": " + value in answer.lower() for name, value in SECURITY_HEADERS), answer
        assert waited >= 9  # not before the head had its time
        dripping.join(40)
        assert dripped and dripped[0].startswith(b"HTTP/1.1 408 "), dripped
        # A normal request on a kept-alive connection still works, twice.
        with httpx.Client(base_url=server.base) as client:
            assert [client.get("/healthz").status_code for _ in range(2)] == [200, 200]
    finally:
        server.stop()
