"""A response's head and body leave in one write (router.serve.protocol: HeadWithBody), and HTTP stays whole:
HEAD, 100-continue, pipelining, Connection: close, on uvicorn's own cycle and on a real server."""

from __future__ import annotations

import asyncio
import functools
import socket
from typing import Any
from urllib.parse import quote

import httptools
import httpx
from uvicorn.config import Config
from uvicorn.server import ServerState

from router.serve.config import Settings, bundled_rules_dir
from router.serve.protocol import CONTINUE, BoundedHttpToolsProtocol, HeadWithBody
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS
from tests.servers import Server

ITEM = quote("https://item.taobao.com/item.htm?id=1", safe="")
LANDING = f"/go?url={ITEM}&from=groupmessage"


class Recorder:
    """A transport that keeps what is written to it, each write apart."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False

    def resume_reading(self) -> None:
        pass


def _held(method: str = "GET") -> tuple[Recorder, HeadWithBody]:
    transport = Recorder()
    return transport, HeadWithBody(transport, {"method": method})  # type: ignore[arg-type]


def test_the_head_waits_for_the_body_and_nothing_else_waits() -> None:
    transport, get = _held()
    get.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
    assert transport.writes == []
    get.write(b"hello")
    get.write(b" more")  # a streamed body's later parts go at once
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", b" more"]

    transport, head = _held("HEAD")
    head.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")  # no body follows a HEAD answer's head
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"]

    scope = {"method": "GET"}
    transport = Recorder()
    rewritten = HeadWithBody(transport, scope)  # type: ignore[arg-type]
    scope["method"] = "HEAD"  # as uvicorn does, the method is read when the answer is written
    rewritten.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"]

    transport, stream = _held()
    stream.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")  # a stream's first part may be late
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]

    transport, post = _held("POST")
    post.write(CONTINUE)  # the client waits for it before sending its body
    assert transport.writes == [CONTINUE]
    post.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    post.write(b"")
    assert transport.writes == [CONTINUE, b"HTTP/1.1 204 No Content\r\n\r\n"]

    transport, closing = _held()
    closing.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    closing.close()  # an app that failed after starting its answer: the head still goes, then the close
    assert transport.writes == [b"HTTP/1.1 500 Internal Server Error\r\n\r\n"] and transport.closed
    assert closing.get_extra_info("peername") == ("127.0.0.1", 5555)  # the rest is the transport's own

    transport, gone = _held()
    gone.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
    transport.closed = True  # the client went away before the body: nothing is written to a closed transport
    gone.close()
    assert transport.writes == []


@functools.cache
def _config() -> Config:
    """uvicorn's settings for the router app behind the real protocol class (made once for the module)."""
    app = create_app(Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS))
    config = Config(app, http=BoundedHttpToolsProtocol, access_log=False, lifespan="off", proxy_headers=False)
    config.load()
    return config


def _connection() -> tuple[BoundedHttpToolsProtocol, Recorder]:
    """A connection to the router app on the real protocol class, its transport recording (in a running loop)."""
    transport = Recorder()
    protocol = BoundedHttpToolsProtocol(config=_config(), server_state=ServerState(), app_state={})
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


def test_a_held_head_goes_before_what_the_protocol_writes_itself() -> None:
    """A refusal of the next request on the connection (431, 400) follows the current response's head."""

    async def run() -> list[bytes]:
        protocol, transport = _connection()
        protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        protocol.cycle.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n")  # held, as by a send
        protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000)
        for task in list(protocol.tasks):
            task.cancel()
        protocol.connection_lost(None)
        return transport.writes

    writes = asyncio.run(run())
    assert writes[0] == b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n", writes
    assert writes[1].startswith(b"HTTP/1.1 431 "), writes


def _serve_once(raw: bytes) -> list[bytes]:
    """`raw` fed to one connection to the router app, on uvicorn's cycle (a click is not answered at once,
    router.serve.protocol): what it wrote, write by write."""

    async def run() -> list[bytes]:
        protocol, transport = _connection()
        protocol._answer_now = None
        protocol.data_received(raw)
        for _ in range(100):
            await asyncio.sleep(0)
            if not protocol.tasks and not protocol.pipeline:
                break
        protocol.connection_lost(None)
        return transport.writes

    return asyncio.run(run())


def test_a_landing_page_and_a_redirect_are_one_write_each_on_uvicorns_cycle() -> None:
    ua = f"User-Agent: {uas.WECHAT_IOS}\r\n".encode()
    writes = _serve_once(b"GET " + LANDING.encode() + b" HTTP/1.1\r\nHost: x\r\n" + ua + b"\r\n")
    assert len(writes) == 1
    head, _, body = writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body.startswith(b"<!doctype html>")
    assert f"content-length: {len(body)}".encode() in head
    # Two requests sent at once (pipelined): two answers, in order, a write each.
    redirect = f"GET /go?url={ITEM} HTTP/1.1\r\nHost: x\r\nUser-Agent: {uas.CHROME_WINDOWS}\r\n\r\n".encode()
    writes = _serve_once(redirect + b"HEAD " + LANDING.encode() + b" HTTP/1.1\r\nHost: x\r\n" + ua + b"\r\n")
    assert [write.split(b"\r\n", 1)[0] for write in writes] == [b"HTTP/1.1 302 Found", b"HTTP/1.1 200 OK"]
    assert writes[1].endswith(b"\r\n\r\n")  # a HEAD answer: the head alone


class _Response:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


def _read_response(sock: socket.socket, method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:
    """One whole response from `sock` (parsed with httptools, so its framing is checked)."""
    response = _Response()
    parser = httptools.HttpResponseParser(response)
    if method == "HEAD":
        # No body follows a HEAD answer, whatever its content-length: read to the head's end.
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        head = data.split(b"\r\n\r\n")[0]
        lines = head.split(b"\r\n")
        headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
        return int(lines[0].split()[1]), headers, b""
    while not response.complete:
        chunk = sock.recv(65536)
        assert chunk, "the server closed before the response was complete"
        parser.feed_data(chunk)
    return parser.get_status_code(), response.headers, response.body


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
