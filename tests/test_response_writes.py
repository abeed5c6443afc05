"""A turn's writes leave together, a response's head and body in one write (router.serve.outbox: the
coalescing transport the protocol installs), in order with the protocol's own refusals, and never stuck."""

from __future__ import annotations

import asyncio
import functools
import gc
import weakref
from typing import Any
from urllib.parse import quote

from uvicorn.config import Config
from uvicorn.server import ServerState

from router.serve.config import Settings, bundled_rules_dir
from router.serve.outbox import MAX_WAITING, MAX_WAITING_BYTES, Coalescing, Outbox, _outboxes, outbox_for
from router.serve.protocol import BoundedHttpToolsProtocol
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS

ITEM = quote("https://item.taobao.com/item.htm?id=1", safe="")
LANDING = f"/go?url={ITEM}&from=groupmessage"
REDIRECT = f"/go?url={ITEM}"


class Recorder:
    """A transport that keeps what is written to it, each write apart."""

    def __init__(self, peer: str = "127.0.0.1") -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.eof = False
        self.aborted = False
        self.peer = peer

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": (self.peer, 5555)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def get_write_buffer_size(self) -> int:
        return 0


def request(target: str, ua: str = uas.CHROME_WINDOWS, method: str = "GET", extra: str = "",
            version: str = "1.1") -> bytes:
    return f"{method} {target} HTTP/{version}\r\nHost: x\r\nUser-Agent: {ua}\r\n{extra}\r\n".encode()


@functools.cache
def _default_config() -> Config:
    """uvicorn's settings for the router app behind the real protocol class (made once for the module)."""
    config = Config(create_app(Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS)),
                    http=BoundedHttpToolsProtocol, access_log=False, lifespan="off", proxy_headers=False)
    config.load()
    return config


def connection(config: Config | None = None, peer: str = "127.0.0.1") -> tuple[BoundedHttpToolsProtocol, Recorder]:
    """A connection from `peer` to an app on the real protocol class, its transport recording (in a running
    loop); the router app by default."""
    transport = Recorder(peer)
    state = ServerState()
    state.default_headers = [(b"date", b"Wed, 02 Dec 2026 12:00:00 GMT")]
    protocol = BoundedHttpToolsProtocol(config=config or _default_config(), server_state=state, app_state={})
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def answered(protocol: BoundedHttpToolsProtocol) -> None:
    """Turns of the loop until the requests' apps have answered (their writes may still wait for the outbox)."""
    for _ in range(50):
        await asyncio.sleep(0)
        if all(task.done() for task in protocol.tasks) and not protocol.pipeline:
            return


async def settled(protocol: BoundedHttpToolsProtocol, turns: int = 100) -> None:
    """Turns of the loop until every request on the connection is answered and its writes are out."""
    for _ in range(turns):
        await asyncio.sleep(0)
        if not protocol.tasks and not protocol.pipeline and protocol.transport.get_write_buffer_size() == 0:
            return


def served(raw: bytes, config: Config | None = None) -> list[bytes]:
    """`raw` fed to one connection: what was written, write by write, once every answer is out."""

    async def run() -> list[bytes]:
        protocol, transport = connection(config)
        protocol.data_received(raw)
        await settled(protocol)
        protocol.connection_lost(None)
        return transport.writes

    return asyncio.run(run())


def answers(stream: bytes, heads: tuple[int, ...] = ()) -> list[tuple[str, dict[str, str], bytes]]:
    """The answers in a byte stream: status line, headers, body (by content-length; none for the answers
    numbered in `heads`, to HEAD requests)."""
    found: list[tuple[str, dict[str, str], bytes]] = []
    while stream:
        head, _, rest = stream.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
        size = int(headers.get("content-length", "0")) if len(found) not in heads else 0
        found.append((lines[0], headers, rest[:size]))
        stream = rest[size:]
    return found


# --- the transport and the outbox ------------------------------------------------------------------------


def test_writes_wait_for_the_turns_end_and_leave_in_one_write() -> None:
    async def run() -> None:
        transport = Recorder()
        held = Coalescing(transport, outbox_for(asyncio.get_running_loop()))  # type: ignore[arg-type]
        held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        held.write(b"")  # nothing: no write of its own
        held.write(b"hello")
        assert transport.writes == [] and held.get_write_buffer_size() == 43
        await asyncio.sleep(0)
        assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"]
        held.write(b"x" * MAX_WAITING_BYTES)
        held.write(b"y")  # past the mark: out at once, for the transport's flow control to see
        assert transport.writes[1:] == [b"x" * MAX_WAITING_BYTES + b"y"]
        await asyncio.sleep(0)
        assert len(transport.writes) == 2
        assert held.get_extra_info("peername") == ("127.0.0.1", 5555)  # the rest is the transport's own

    asyncio.run(run())


def test_what_ends_a_connection_writes_what_waits_first() -> None:
    async def run() -> None:
        outbox = outbox_for(asyncio.get_running_loop())
        transport = Recorder()
        closing = Coalescing(transport, outbox)  # type: ignore[arg-type]
        closing.write(b"last answer")
        closing.close()
        assert transport.writes == [b"last answer"] and transport.closed

        transport = Recorder()
        half = Coalescing(transport, outbox)  # type: ignore[arg-type]
        half.write(b"refusal")
        half.write_eof()
        assert transport.writes == [b"refusal"] and transport.eof

        transport = Recorder()
        aborted = Coalescing(transport, outbox)  # type: ignore[arg-type]
        aborted.write(b"dropped")
        aborted.abort()  # as a transport's abort drops its own buffer
        transport = Recorder()
        gone = Coalescing(transport, outbox)  # type: ignore[arg-type]
        gone.write(b"to nobody")
        transport.closed = True  # the client went away: nothing is written to a closing transport
        await asyncio.sleep(0)
        assert transport.writes == []

    asyncio.run(run())


def test_the_outbox_writes_once_per_turn_and_early_when_full() -> None:
    async def run() -> None:
        outbox = Outbox()
        transports = [Recorder() for _ in range(MAX_WAITING + 3)]
        connections = [Coalescing(transport, outbox) for transport in transports]  # type: ignore[arg-type]
        for number, held in enumerate(connections[:MAX_WAITING - 1]):
            held.write(b"%d" % number)
            held.write(b".")
        assert all(transport.writes == [] for transport in transports)
        await asyncio.sleep(0)
        assert [transport.writes for transport in transports[:MAX_WAITING - 1]] == [
            [b"%d." % number] for number in range(MAX_WAITING - 1)]  # each connection's writes as one
        for transport in transports:
            transport.writes.clear()
        for number, held in enumerate(connections):
            held.write(b"%d" % number)
        assert [len(transport.writes) for transport in transports] == [1] * MAX_WAITING + [0] * 3  # full: out now
        await asyncio.sleep(0)
        assert all(len(transport.writes) == 1 for transport in transports)

    asyncio.run(run())
    loop = asyncio.new_event_loop()
    outbox_for(loop)
    assert loop in _outboxes
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert gone() is None  # an outbox does not keep its loop alive


# --- on the router's connections -------------------------------------------------------------------------


def test_a_click_is_written_once_the_turn_ends_head_and_body_together() -> None:
    async def run() -> None:
        protocol, transport = connection()
        protocol.data_received(request(LANDING, uas.WECHAT_IOS))
        assert protocol.tasks  # uvicorn's cycle answers it, as every request
        await answered(protocol)
        assert transport.writes == []  # answered, and waiting in the outbox
        await asyncio.sleep(0)
        [written] = transport.writes
        [(status, headers, body)] = answers(written)
        assert status == "HTTP/1.1 200 OK" and body.startswith(b"<!doctype html>")
        assert int(headers["content-length"]) == len(body) > 1000
        assert headers["date"] == "Wed, 02 Dec 2026 12:00:00 GMT" and headers["x-request-id"]
        assert "connection" not in headers and not transport.closed  # kept alive
        assert protocol.timeout_keep_alive_task is not None  # ...until the keep-alive timeout
        protocol.connection_lost(None)

    asyncio.run(run())


def test_a_redirect_and_a_head_answer_pipelined_come_back_in_order() -> None:
    head_request = request(LANDING, uas.WECHAT_IOS, method="HEAD")
    writes = served(request(REDIRECT) + head_request)
    found = answers(b"".join(writes), heads=(1,))
    assert [status for status, _, _ in found] == ["HTTP/1.1 302 Found", "HTTP/1.1 200 OK"]
    assert found[0][1]["location"].startswith("https://item.taobao.com/") and found[0][2] == b""
    assert int(found[1][1]["content-length"]) > 1000  # the landing page's length, and no body after its head
    assert b"".join(writes).endswith(b"\r\n\r\n")
    assert len(writes) <= 2  # one write per turn, whatever the answers in it


def test_the_protocols_own_refusal_goes_after_the_answers_before_it() -> None:
    """A refusal of the next request on the connection (431) follows the answer to the one before it."""

    async def run() -> list[bytes]:
        protocol, transport = connection()
        protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await answered(protocol)  # the health check answered, its answer waiting for the turn's end
        assert transport.writes == []
        protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000)
        protocol.connection_lost(None)
        return transport.writes

    [written] = asyncio.run(run())  # one write: the refusal half-closes the connection, what waited goes first
    first, second = answers(written)
    assert first[0] == "HTTP/1.1 200 OK" and first[2] == b"ok\n"
    assert second[0] == "HTTP/1.1 431 Request Header Fields Too Large" and second[1]["connection"] == "close"


class _EndingTransport(Recorder):
    """A transport as asyncio's are: a write after write_eof raises."""

    def write(self, data: bytes) -> None:
        if self.eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        super().write(data)


class _BrokenTransport(Recorder):
    def write(self, data: bytes) -> None:
        raise OSError("broken")


def test_a_write_after_the_output_ended_is_dropped_and_strands_no_other_connection() -> None:
    """A refusal ends a connection's output (write_eof) while an earlier request on it is still answered:
    that late answer is dropped, never raised in the outbox's callback; and a connection whose write fails
    there does not keep the other connections' answers of the turn waiting."""
    ended, broken, other = _EndingTransport(), _BrokenTransport(), Recorder()

    async def turn() -> None:
        outbox = Outbox()
        refused, failing, fine = Coalescing(ended, outbox), Coalescing(broken, outbox), Coalescing(other, outbox)
        refused.write(b"400 refusal")
        refused.write_eof()  # written at once, before the output ends
        refused.write(b"302 of the request before it")  # too late: dropped
        failing.write(b"answer")
        fine.write(b"answer one")
        fine.write(b"answer two")
        await asyncio.sleep(0)  # the outbox's callback runs

    asyncio.run(turn())
    assert ended.writes == [b"400 refusal"] and ended.eof
    assert other.writes == [b"answer oneanswer two"]
