"""A click is served one way: every request through uvicorn's request-response cycle, on the router's
protocol class (router.serve.protocol), its writes coalesced (router.serve.outbox). Answers come in order
with pipelining, whole, with keep-alive, HEAD, HTTP/1.0, Connection: close, the drain, a trusted proxy and
shutdown as HTTP wants them."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from urllib.parse import urlencode

import httptools
import httpx
import pytest
from starlette.testclient import TestClient
from uvicorn.config import Config

from router.cli import _server_limits
from router.decision.signing import sign
from router.serve.config import Settings, bundled_rules_dir
from router.serve.drain import DRAIN
from router.serve.expand import DEFAULT_EXPAND_HOSTS
from router.serve.limits import Limit
from router.serve.protocol import BoundedHttpToolsProtocol
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS
from tests.servers import Server
from tests.test_response_writes import (
    ITEM,
    LANDING,
    REDIRECT,
    answered,
    answers,
    connection,
    request,
    served,
    settled,
)


def test_pipelined_requests_are_answered_in_order() -> None:
    """A click, one that waits (a page's second jump), a landing page, a health check: in the order sent."""
    second_jump = f"/go?url={ITEM.replace('id%3D1', 'id%3D2')}&from=groupmessage&ct=x.y.z"
    raw = (request(REDIRECT) + request(second_jump, uas.CHROME_WINDOWS) + request(LANDING, uas.WECHAT_IOS)
           + request("/healthz"))
    found = answers(b"".join(served(raw)))
    assert [status for status, _, _ in found] == ["HTTP/1.1 302 Found"] * 2 + ["HTTP/1.1 200 OK"] * 2
    assert [headers["location"].rsplit("=", 1)[1] for _, headers, _ in found[:2]] == ["1", "2"]
    assert found[2][2].startswith(b"<!doctype html>") and found[3][2] == b"ok\n"
    assert len({headers["x-request-id"] for _, headers, _ in found}) == 4


def test_a_click_is_kept_alive_and_the_next_request_is_answered_on_the_same_connection() -> None:
    async def run() -> None:
        protocol, transport = connection()
        protocol.data_received(request(REDIRECT))
        await settled(protocol)
        assert protocol.timeout_keep_alive_task is not None and not transport.closed
        protocol.data_received(request(LANDING, uas.WECHAT_IOS))
        assert protocol.timeout_keep_alive_task is None  # a request in progress is not timed out
        await settled(protocol)
        found = answers(b"".join(transport.writes))
        assert [status for status, _, _ in found] == ["HTTP/1.1 302 Found", "HTTP/1.1 200 OK"]
        assert protocol.timeout_keep_alive_task is not None and not transport.closed
        protocol.connection_lost(None)

    asyncio.run(run())


@pytest.mark.parametrize("case", ["close", "http/1.0", "draining"])
def test_a_last_answer_says_so_and_closes(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connection: close, HTTP/1.0, or a draining router: the answer says `connection: close`, and the request
    sent after it on the connection is not answered (nor logged as a click)."""
    extra = "Connection: close\r\n" if case == "close" else ""
    version = "1.0" if case == "http/1.0" else "1.1"
    if case == "draining":
        monkeypatch.setattr(DRAIN, "draining", True)
    stream = io.BytesIO()
    config = Config(create_app(Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS), click_stream=stream),
                    http=BoundedHttpToolsProtocol, access_log=False, lifespan="off", proxy_headers=False)

    async def run() -> None:
        protocol, transport = connection(config)
        protocol.data_received(request(REDIRECT, extra=extra, version=version) + request(REDIRECT))
        for _ in range(50):
            await asyncio.sleep(0)
        assert len(transport.writes) == 1 and transport.closed  # its writes out before the close
        [(status, headers, _)] = answers(transport.writes[0])
        assert status.endswith("302 Found") and headers["connection"] == "close"
        protocol.connection_lost(None)
        config.loaded_app.clicks.click_log.close()

    asyncio.run(run())
    assert len(stream.getvalue().splitlines()) == 1  # one click answered, one logged


def test_a_head_request_has_no_body_and_http_1_0_is_answered_too() -> None:
    found = answers(b"".join(served(request(LANDING, uas.WECHAT_IOS, method="HEAD"))), heads=(0,))
    assert found[0][0] == "HTTP/1.1 200 OK" and int(found[0][1]["content-length"]) > 1000 and found[0][2] == b""
    [(status, headers, _)] = answers(b"".join(served(request(REDIRECT, version="1.0"))))
    assert status == "HTTP/1.1 302 Found" and headers["connection"] == "close"


def test_answers_waiting_for_the_turns_end_go_out_before_a_shutdown_closes_the_connection() -> None:
    async def run() -> None:
        protocol, transport = connection()
        protocol.data_received(request(REDIRECT))
        await answered(protocol)
        assert transport.writes == []  # answered, waiting for the turn's end
        protocol.shutdown()  # uvicorn's graceful shutdown closes idle connections
        assert len(transport.writes) == 1 and transport.closed
        assert answers(transport.writes[0])[0][0] == "HTTP/1.1 302 Found"
        protocol.connection_lost(None)

    asyncio.run(run())


def test_a_trusted_proxys_forwarded_address_is_believed_through_the_serve_commands_options() -> None:
    """`adlink-router serve` turns on uvicorn's proxy-headers middleware for ROUTER_TRUSTED_PROXIES only: the
    address the limits count is the forwarded client's behind a trusted proxy, the proxy's own otherwise."""
    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, trusted_proxies=("10.0.0.1",),
                        limit_per_address=Limit(1, 60))
    options = {name: value for name, value in _server_limits(settings).items() if name != "loop"}
    config = Config(create_app(settings), access_log=False, lifespan="off", **options)
    config.load()
    assert config.http_protocol_class is BoundedHttpToolsProtocol

    async def statuses(*sent: tuple[bytes, str]) -> list[str]:
        found = []
        for raw, peer in sent:
            protocol, transport = connection(config, peer)
            protocol.data_received(raw)
            await settled(protocol)
            protocol.connection_lost(None)
            [(status, _, _)] = answers(b"".join(transport.writes))
            found.append(status.split()[1])
        return found

    forwarded = request(REDIRECT, extra="X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n")
    # One click a minute per address: the forwarded click counts for 203.0.113.7, as if it had come itself;
    # from a peer that is no trusted proxy the header is not believed, and the click counts for the peer.
    assert asyncio.run(statuses((forwarded, "10.0.0.1"), (request(REDIRECT), "203.0.113.7"),
                                (forwarded, "10.0.0.2"), (request(REDIRECT), "10.0.0.2"),
                                (request(REDIRECT), "10.0.0.1"))) == ["302", "429", "302", "429", "302"]


def test_with_short_links_to_expand_an_ad_clicks_id_is_used_once() -> None:
    """With short-link expansion on (the default), an ad click's id is recorded as it is answered (its second
    use is a replay, counted once); every click is logged once, in order."""
    stream = io.BytesIO()
    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, expand_hosts=DEFAULT_EXPAND_HOSTS)
    ad = "/ad?" + urlencode(sign({"url": "https://item.taobao.com/item.htm?id=1", "src": "unidesk", "adv": "a1"},
                                 TEST_KEYS))
    config = Config(create_app(settings, click_stream=stream), http=BoundedHttpToolsProtocol, access_log=False,
                    lifespan="off", proxy_headers=False)
    raw = b"".join(request(target) for target in (ad + "&gdt_vid=wx1", ad + "&gdt_vid=wx1", ad + "&gdt_vid=wx2",
                                                  REDIRECT + "&gdt_vid=wx3"))
    found = answers(b"".join(served(raw, config)))
    clicks = config.loaded_app.clicks
    clicks.click_log.close()
    assert len(found) == 4 and clicks.replays.replays == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["channel"] for line in lines][:3] == ["ad", "unknown", "ad"], lines


def test_a_header_value_with_a_line_break_is_never_written() -> None:
    """uvicorn's cycle refuses it (and closes the connection): nothing of the answer reaches the client."""

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 302,  # type: ignore[operator]
                    "headers": [(b"location", b"https://a.example/\r\nset-cookie: x=1")]})

    config = Config(app, http=BoundedHttpToolsProtocol, access_log=False, lifespan="off", proxy_headers=False)
    config.load()

    async def run() -> tuple[list[bytes], bool]:
        protocol, transport = connection(config)
        protocol.data_received(request(REDIRECT))
        await settled(protocol)
        protocol.connection_lost(None)
        return transport.writes, transport.closed

    writes, closed = asyncio.run(run())
    assert b"set-cookie: x=1" not in b"".join(writes) and closed


class _Responses:
    """httptools' callbacks for a stream of responses, parsed one after the other."""

    def __init__(self) -> None:
        self.done: list[tuple[int, dict[bytes, bytes], bytes]] = []
        self.parser = httptools.HttpResponseParser(self)
        self._headers: dict[bytes, bytes] = {}
        self._body = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self._headers, self._body))
        self._headers, self._body = {}, b""


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """`count` whole responses (to GET requests) from `sock`, checked by httptools' parser."""
    responses = _Responses()
    while len(responses.done) < count:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed after {len(responses.done)} responses"
        responses.parser.feed_data(chunk)
    return responses.done


def test_many_pipelined_clicks_on_a_real_server_come_back_whole_and_in_order() -> None:
    """200 requests sent at once on one connection (clicks of three kinds and health checks): 200 answers,
    each whole, in order; every click logged once."""
    server = Server(env={"ROUTER_CLICK_LOG": "stdout"}).wait_ready()
    try:
        kinds = [(REDIRECT, uas.CHROME_WINDOWS, 302), (LANDING, uas.WECHAT_IOS, 200),
                 (REDIRECT, uas.SAFARI_IOS, 302), ("/healthz", uas.CHROME_WINDOWS, 200)]
        sent = [kinds[n % len(kinds)] for n in range(200)]
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"".join(request(target, ua) for target, ua, _ in sent))
            got = read_responses(sock, len(sent))
        assert [status for status, _, _ in got] == [status for _, _, status in sent]
        for (target, _, _), (_, headers, body) in zip(sent, got, strict=True):
            assert int(headers[b"content-length"]) == len(body)
            if target == "/healthz":
                assert body == b"ok\n"
            elif target == LANDING:
                assert body.startswith(b"<!doctype html>") and body.rstrip().endswith(b"</html>")
        ids = [headers[b"x-request-id"].decode() for (target, _, _), (_, headers, _) in zip(sent, got, strict=True)
               if target != "/healthz"]
    finally:
        output = server.stop()
    logged = [json.loads(line)["request_id"] for line in output.splitlines()
              if line.startswith("{") and json.loads(line).get("type") == "click"]
    assert logged == ids and len(set(ids)) == 150


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _read_response(sock: socket.socket, method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:
    """One whole response from `sock` (parsed with httptools, so its framing is checked)."""
    if method == "HEAD":
        # No body follows a HEAD answer, whatever its content-length: read to the head's end.
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        lines = data.split(b"\r\n\r\n")[0].split(b"\r\n")
        headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
        return int(lines[0].split()[1]), headers, b""
    [response] = read_responses(sock, 1)
    return response


def test_responses_stay_whole_on_a_real_server() -> None:
    """On one kept-alive connection: a landing page, its HEAD, a redirect; then a beacon that waits for
    100 Continue before sending its body; then Connection: close, answered whole and then closed."""
    server = Server().wait_ready()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            ua = f"User-Agent: {uas.WECHAT_IOS}\r\n".encode()
            sock.sendall(b"GET " + LANDING.encode() + b" HTTP/1.1\r\nHost: x\r\n" + ua + b"\r\n")
            status, headers, body = _read_response(sock)
            assert status == 200 and int(headers[b"content-length"]) == len(body) > 1000
            assert body.startswith(b"<!doctype html>") and body.rstrip().endswith(b"</html>")
            sock.sendall(b"HEAD " + LANDING.encode() + b" HTTP/1.1\r\nHost: x\r\n" + ua + b"\r\n")
            status, headers, body = _read_response(sock, "HEAD")
            assert status == 200 and int(headers[b"content-length"]) > 1000 and body == b""
            sock.sendall(f"GET /go?url={ITEM} HTTP/1.1\r\nHost: x\r\nUser-Agent: {uas.CHROME_WINDOWS}\r\n\r\n".encode())
            status, headers, body = _read_response(sock)
            assert status == 302 and headers[b"location"].startswith(b"https://item.taobao.com/") and body == b""

            beacon = b"e=shown&t=not-a-token"
            sock.sendall(b"POST /outcome HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\n"
                         b"Content-Length: " + str(len(beacon)).encode() + b"\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(len(CONTINUE)) == CONTINUE  # sent before the body, or the client would wait
            sock.sendall(beacon)
            status, headers, body = _read_response(sock)
            assert status == 204 and body == b""
            # Its body was read (its token then found wanting), not given up on after waiting for it.
            metrics = httpx.get(f"{server.base}/metrics").text
            assert 'adlink_outcome_beacons_ignored_total{reason="token"} 1.0' in metrics
            assert 'adlink_outcome_beacons_ignored_total{reason="body"} 0.0' in metrics

            sock.sendall(f"GET /go?url={ITEM} HTTP/1.1\r\nHost: x\r\nUser-Agent: {uas.CHROME_WINDOWS}\r\n"
                         "Connection: close\r\n\r\n".encode())
            status, headers, _ = _read_response(sock)
            assert status == 302 and headers[b"connection"] == b"close"
            assert sock.recv(1) == b""  # and then closed
    finally:
        server.stop()



def test_a_rule_that_reads_a_request_header_is_served_on_the_header_each_click_carries() -> None:
    """A condition that reads a request header (here a test's own `language`, on Accept-Language) sees the
    click's own header, and the answer kept for a repeated click is never handed to a click whose header
    says otherwise."""
    from router.decision.rules import RuleSource, build_rule_set
    from tests.test_declared_reads import synthetic_vocabulary

    with synthetic_vocabulary():
        rules = build_rule_set([RuleSource("t.yaml", b"rules:\n  - {id: english, when: {language: en}, then: block}\n"
                                                      b"default: web\n")], origin="t")
        settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS)
        stream = io.BytesIO()
        app = create_app(settings, rules, click_stream=stream)
        served = []
        with TestClient(app, follow_redirects=False) as http:
            for language in ("en-US,en;q=0.9", "zh-CN", "en", "", "en-GB"):
                headers = {"user-agent": uas.CHROME_WINDOWS, "accept-language": language} if language else {
                    "user-agent": uas.CHROME_WINDOWS}
                served.append(http.get(REDIRECT, headers=headers).status_code)
        assert served == [403, 302, 403, 302, 403]
        # Each click line records the header the rules read, and explain --batch's replay of it decides alike.
        from router.policy.explain_json import explain_click
        from router.policy.replay import read_clicks

        recorded = list(read_clicks(stream.getvalue().decode().splitlines()))
        assert [dict(click.headers) for click in recorded] == [  # type: ignore[union-attr]
            {"accept-language": language} for language in ("en-US,en;q=0.9", "zh-CN", "en", "", "en-GB")]
        replayed = [explain_click(c.request, c.ua, c.at, settings, rules, c.visitor, headers=c.headers)["status"]
                    for c in recorded]  # type: ignore[union-attr]
        assert replayed == served


def test_a_refusal_behind_a_click_on_one_connection_holds_up_no_other_connection() -> None:
    """A click and an unreadable request in one packet: the 400 ends that connection (the click's answer,
    still being made, is dropped with it), and another connection's click is answered at once, with no
    error in the server's log."""
    server = Server().wait_ready()
    try:
        click = f"GET {REDIRECT} HTTP/1.1\r\nHost: x\r\nUser-Agent: {uas.CHROME_WINDOWS}\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as bad:
            bad.sendall(click + b"\x01GARBAGE\r\n\r\n")
            received = b""
            while chunk := bad.recv(65536):
                received += chunk
            assert b" 400 " in received.split(b"\r\n", 1)[0] or b"HTTP/1.1 400" in received
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.port), timeout=4) as good:
                good.sendall(click)
                assert good.recv(65536).startswith(b"HTTP/1.1 302 ")  # answered at once
    finally:
        output = server.stop()
    assert "write_eof" not in output and "Traceback" not in output, output[-2000:]
