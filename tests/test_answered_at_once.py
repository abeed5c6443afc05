"""Clicks answered in the protocol's own callback (router.serve.protocol: `answer_now`), their answers written
together at the end of the event loop's turn (router.serve.outbox): the same answers as uvicorn's cycle
gives, in order, whole, with keep-alive, HEAD, Connection: close, proxies and shutdown as before."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import socket
import weakref
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import urlencode

import httptools
import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from router.decision.signing import sign
from router.serve.config import Settings, bundled_rules_dir
from router.serve.drain import DRAIN
from router.serve.expand import DEFAULT_EXPAND_HOSTS
from router.serve.outbox import MAX_WAITING, Outbox, _outboxes, outbox_for
from router.serve.protocol import BoundedHttpToolsProtocol
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS
from tests.servers import Server
from tests.test_response_writes import ITEM, LANDING, Recorder

REDIRECT = f"/go?url={ITEM}"


def _request(target: str, ua: str = uas.CHROME_WINDOWS, method: str = "GET", extra: str = "",
             version: str = "1.1") -> bytes:
    return f"{method} {target} HTTP/{version}\r\nHost: x\r\nUser-Agent: {ua}\r\n{extra}\r\n".encode()


def _protocol(peer: str = "127.0.0.1", settings: Settings | None = None, click_stream: IO[bytes] | None = None,
              **config: Any) -> tuple[BoundedHttpToolsProtocol, Recorder]:
    """A connection from `peer` to the router app on the real protocol class (in a running loop)."""
    app = create_app(settings or Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS),
                     click_stream=click_stream)
    options = {"http": BoundedHttpToolsProtocol, "access_log": False, "lifespan": "off", "proxy_headers": False,
               **config}
    loaded = Config(app, **options)
    loaded.load()
    transport = Recorder()
    transport.get_extra_info = lambda name, default=None: {  # type: ignore[method-assign]
        "sockname": ("127.0.0.1", 8000), "peername": (peer, 5555)}.get(name, default)
    state = ServerState()
    state.default_headers = [(b"date", b"Wed, 02 Dec 2026 12:00:00 GMT")]
    protocol = BoundedHttpToolsProtocol(config=loaded, server_state=state, app_state={})
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


def _served(raw: bytes, at_once: bool = True, **config: Any) -> tuple[list[bytes], BoundedHttpToolsProtocol]:
    """`raw` fed to one connection: what was written, write by write, once every answer is out. With
    `at_once=False` the protocol never answers at once (uvicorn's cycle answers everything)."""

    async def run() -> tuple[list[bytes], BoundedHttpToolsProtocol]:
        protocol, transport = _protocol(**config)
        if not at_once:
            protocol._answer_now = None
        protocol.data_received(raw)
        for _ in range(100):
            await asyncio.sleep(0)
            if not protocol.tasks and not protocol.pipeline and protocol._outgoing is None:
                break
        protocol.connection_lost(None)
        return transport.writes, protocol

    return asyncio.run(run())


def _answers(stream: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """The answers in a byte stream: status line, headers, body (by content-length)."""
    answers = []
    while stream:
        head, _, rest = stream.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        pairs = [line.split(": ", 1) for line in lines[1:]]
        headers = {name.lower(): value for name, value in pairs}
        size = int(headers.get("content-length", "0")) if "HEAD" not in lines[0] else 0
        answers.append((lines[0], headers, rest[:size]))
        stream = rest[size:]
    return answers


def test_a_click_is_answered_in_the_callback_and_written_when_the_loops_turn_ends() -> None:
    async def run() -> None:
        protocol, transport = _protocol()
        protocol.data_received(_request(REDIRECT))
        assert not protocol.tasks and protocol.cycle is None  # no task, no cycle: answered already
        assert transport.writes == []  # ...and waiting for the end of the turn
        await asyncio.sleep(0)
        assert len(transport.writes) == 1
        [(status, headers, body)] = _answers(transport.writes[0])
        assert status == "HTTP/1.1 302 Found" and body == b""
        assert headers["location"].startswith("https://item.taobao.com/item.htm?id=1")
        assert headers["date"] == "Wed, 02 Dec 2026 12:00:00 GMT" and headers["content-length"] == "0"
        assert headers["x-request-id"] and headers["set-cookie"].startswith("adlink_vid=")
        assert "connection" not in headers and not transport.closed  # kept alive
        assert protocol.timeout_keep_alive_task is not None  # ...until the keep-alive timeout
        protocol.connection_lost(None)

    asyncio.run(run())


@pytest.mark.parametrize("target, ua", [
    (REDIRECT, uas.CHROME_WINDOWS),  # 302 to the web page
    (REDIRECT, uas.SAFARI_IOS),  # 302 to the app
    (LANDING, uas.WECHAT_IOS),  # 200 landing page
    ("/go?url=https%3A%2F%2Fevil.example.com%2F", uas.CHROME_WINDOWS),  # 400: not an allowed host
    ("/ad?url=x&sig=nope", uas.CHROME_WINDOWS),  # 400: an ad link that doesn't verify
])
def test_answers_at_once_are_uvicorns_answers(target: str, ua: str) -> None:
    """The same status, headers and body as uvicorn's cycle gives (but what is made per click: the request
    id, nonces, token and date)."""
    raw = _request(target, ua) + _request(target, ua, method="HEAD")
    fast_writes, _ = _served(raw)
    usual_writes, _ = _served(raw, at_once=False)
    assert len(fast_writes) == 1 and len(usual_writes) == 2  # two answers in one write, or one write each
    fast_answers, usual_answers = _answers(b"".join(fast_writes)), _answers(b"".join(usual_writes))
    assert len(fast_answers) == len(usual_answers) == 2
    per_click = ("x-request-id", "content-security-policy", "date")
    for (status, headers, body), (usual_status, usual_headers, usual_body) in zip(
            fast_answers, usual_answers, strict=True):
        assert status == usual_status
        assert list(headers) == list(usual_headers)
        assert {k: v for k, v in headers.items() if k not in per_click} == {
            k: v for k, v in usual_headers.items() if k not in per_click}
        assert len(body) == len(usual_body)
    assert fast_answers[1][2] == b"" and int(fast_answers[1][1]["content-length"]) == len(fast_answers[0][2])


def test_pipelined_requests_are_answered_in_order_whichever_way_each_goes() -> None:
    """A click answered at once, one that waits (a page's second jump), a health check, a click: in the
    order sent, the ones after a waiting one queued behind it as uvicorn queues them."""
    second_jump = f"/go?url={ITEM}&from=groupmessage&ct=x.y.z"
    raw = (_request(REDIRECT) + _request(second_jump, uas.CHROME_WINDOWS) + _request(LANDING, uas.WECHAT_IOS)
           + _request("/healthz"))
    writes, _ = _served(raw)
    answers = _answers(b"".join(writes))
    assert [status for status, _, _ in answers] == ["HTTP/1.1 302 Found"] * 2 + ["HTTP/1.1 200 OK"] * 2
    assert answers[2][2].startswith(b"<!doctype html>") and answers[3][2] == b"ok\n"
    ids = [headers["x-request-id"] for _, headers, _ in answers]
    assert len(set(ids)) == 4 and ids == sorted(ids, key=lambda rid: int(rid.rsplit("-", 1)[1], 16))


def test_the_keep_alive_timer_of_an_answer_given_at_once_stops_when_the_next_request_begins() -> None:
    """A click answered at once arms uvicorn's keep-alive timer; the request after it in the same data goes
    uvicorn's way (it may take longer than the keep-alive) and must not have its connection closed under it."""

    async def run() -> None:
        protocol, _ = _protocol()
        protocol.data_received(_request(REDIRECT) + _request(f"/go?url={ITEM}&ct=x.y.z"))
        assert protocol.tasks  # the second goes uvicorn's way
        assert protocol.timeout_keep_alive_task is None
        for _ in range(20):
            await asyncio.sleep(0)
        assert protocol.timeout_keep_alive_task is not None  # armed again once its answer is out
        protocol.connection_lost(None)

    asyncio.run(run())


def test_with_short_links_to_expand_only_a_short_link_waits_and_an_ad_clicks_id_is_used_once() -> None:
    """With short-link expansion on (the default), a click whose link is not a short link is still answered at
    once, an ad click's id recorded as it is answered (its second use is a replay, counted once); a short
    link goes uvicorn's way, to be expanded."""
    stream = io.BytesIO()
    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, expand_hosts=DEFAULT_EXPAND_HOSTS)
    ad = "/ad?" + urlencode(sign({"url": "https://item.taobao.com/item.htm?id=1", "src": "unidesk", "adv": "a1"},
                                 TEST_KEYS))

    async def run() -> tuple[int, int]:
        protocol, transport = _protocol(settings=settings, click_stream=stream)
        clicks = protocol.app.clicks
        for target in (ad + "&gdt_vid=wx1", ad + "&gdt_vid=wx1", ad + "&gdt_vid=wx2", REDIRECT + "&gdt_vid=wx3"):
            protocol.data_received(_request(target))
            assert not protocol.tasks, target  # answered at once
        await asyncio.sleep(0)
        answered = len(_answers(b"".join(transport.writes)))
        protocol.data_received(_request("/go?url=" + "https%3A%2F%2Fm.tb.cn%2Fh.abc"))
        assert protocol.tasks  # a short link: expanded, uvicorn's way
        for task in list(protocol.tasks):
            task.cancel()
        protocol.connection_lost(None)
        clicks.click_log.close()
        return answered, clicks.replays.replays

    answered, replays = asyncio.run(run())
    assert answered == 4 and replays == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["channel"] for line in lines][:3] == ["ad", "unknown", "ad"], lines


@pytest.mark.parametrize("case", ["close", "http/1.0", "draining"])
def test_a_last_answer_says_so_and_closes_at_once(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = "Connection: close\r\n" if case == "close" else ""
    version = "1.0" if case == "http/1.0" else "1.1"
    if case == "draining":
        monkeypatch.setattr(DRAIN, "draining", True)

    async def run() -> None:
        protocol, transport = _protocol()
        protocol.data_received(_request(REDIRECT, extra=extra, version=version) + _request(REDIRECT))
        assert len(transport.writes) == 1 and transport.closed  # written before the turn ends, then closed
        [(status, headers, _)] = _answers(transport.writes[0])  # the request after it is not answered
        assert status.endswith("302 Found") and headers["connection"] == "close"
        await asyncio.sleep(0)
        assert len(transport.writes) == 1
        protocol.connection_lost(None)

    asyncio.run(run())


def test_a_trusted_proxys_forwarded_address_is_read_as_uvicorns_middleware_reads_it() -> None:
    """Behind a trusted proxy the visitor id (made from address and user agent when there is no cookie) is the
    forwarded client's: the same answered at once as through uvicorn's proxy-headers middleware."""

    def visitor(raw: bytes, peer: str, at_once: bool) -> str:
        async def run() -> str:
            protocol, transport = _protocol(peer, proxy_headers=True, forwarded_allow_ips="10.0.0.1")
            if not at_once:
                protocol._answer_now = None
            else:
                assert protocol._answer_now is not None  # found under the middleware
            protocol.data_received(raw)
            for _ in range(20):
                await asyncio.sleep(0)
            protocol.connection_lost(None)
            [(_, headers, _)] = _answers(b"".join(transport.writes))
            return headers["set-cookie"].split(";")[0]

        return asyncio.run(run())

    forwarded = _request(REDIRECT, extra="X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n")
    from_proxy = visitor(forwarded, "10.0.0.1", True)
    assert from_proxy == visitor(forwarded, "10.0.0.1", False)
    assert from_proxy == visitor(_request(REDIRECT), "203.0.113.7", True)  # as if the client had come itself
    from_anyone = visitor(forwarded, "10.0.0.2", True)  # not a trusted proxy: its header is not believed
    assert from_anyone == visitor(_request(REDIRECT), "10.0.0.2", True) != from_proxy


def test_a_header_value_with_a_line_break_is_never_written() -> None:
    async def run() -> None:
        protocol, transport = _protocol()
        protocol._keep_alive = True
        with pytest.raises(ValueError, match="control character"):
            protocol._respond(302, [(b"location", b"https://a.example/\r\nset-cookie: x=1")], b"")
        await asyncio.sleep(0)
        assert transport.writes == []
        protocol.connection_lost(None)

    asyncio.run(run())


def test_a_failure_before_the_answer_is_written_leaves_the_click_to_uvicorns_cycle() -> None:
    async def run() -> list[bytes]:
        protocol, transport = _protocol()

        def broken(scope: Any, respond: Callable[..., None]) -> bool:
            raise RuntimeError("a bug")

        protocol._answer_now = broken
        protocol.data_received(_request(REDIRECT))
        assert protocol.tasks  # the usual way
        for _ in range(20):
            await asyncio.sleep(0)
        protocol.connection_lost(None)
        return transport.writes

    [(status, headers, _)] = _answers(b"".join(asyncio.run(run())))
    assert status == "HTTP/1.1 302 Found" and headers["location"].startswith("https://item.taobao.com/")


def test_answers_waiting_for_the_turns_end_go_out_before_a_shutdown_closes_the_connection() -> None:
    async def run() -> None:
        protocol, transport = _protocol()
        protocol.data_received(_request(REDIRECT))
        assert transport.writes == []
        protocol.shutdown()  # uvicorn's graceful shutdown closes idle connections
        assert len(transport.writes) == 1 and transport.closed
        assert _answers(transport.writes[0])[0][0] == "HTTP/1.1 302 Found"
        protocol.connection_lost(None)

    asyncio.run(run())


def test_the_outbox_writes_once_per_turn_and_early_when_full() -> None:
    class Sender:
        def __init__(self, log: list[int], number: int) -> None:
            self.log, self.number = log, number

        def flush_outgoing(self) -> None:
            self.log.append(self.number)

    async def run() -> None:
        log: list[int] = []
        outbox = Outbox()
        for number in range(MAX_WAITING - 1):
            outbox.add(Sender(log, number))
        assert log == []
        await asyncio.sleep(0)
        assert log == list(range(MAX_WAITING - 1))  # in the order given
        log.clear()
        for number in range(MAX_WAITING + 3):
            outbox.add(Sender(log, number))
        assert log == list(range(MAX_WAITING))  # full: written at once
        await asyncio.sleep(0)
        assert log == list(range(MAX_WAITING + 3))

    asyncio.run(run())
    loop = asyncio.new_event_loop()
    outbox_for(loop)
    assert loop in _outboxes
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert gone() is None  # an outbox does not keep its loop alive


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


def _read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[bytes, bytes], bytes]]:
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
            sock.sendall(b"".join(_request(target, ua) for target, ua, _ in sent))
            got = _read_responses(sock, len(sent))
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
