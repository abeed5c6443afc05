"""A connection's writes held for the rest of the event loop's turn, and a turn's writes sent together.

A client on the same machine as the router (a proxy beside it, a load generator) is woken by the kernel
when data reaches its socket. Written as each is made, the answers of one turn arrive a few dozen
microseconds apart, and the client is woken for each: it reads one, goes idle, and is woken again. On a
virtual machine waking an idle CPU costs the writer tens of microseconds, more than a click takes to
decide. Written back to back, they find the client awake after the first. And uvicorn's cycle writes a
response's head and its body apart: held together, they leave in one system call and one TCP segment.

`Coalescing` wraps a connection's transport (router.serve.protocol installs it as the connection starts,
so every write on the connection goes through it, in order): a write joins the connection's waiting bytes,
and the connection joins its loop's `Outbox`, which writes each waiting connection once, in a callback
at the start of the loop's next turn. Written early: a connection with more than MAX_WAITING_BYTES
waiting (a transport tells its protocol to pause writing past its own 64 KiB mark, and uvicorn's cycle
then waits: it must see what a slow reader leaves unread), and the whole outbox once MAX_WAITING
connections wait, so an answer waits at most that many answers' work (well under a millisecond). What
closes or half-closes the connection writes what waits first. An idle router's turn holds one answer,
written at the start of the next.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from weakref import WeakKeyDictionary

_log = logging.getLogger("router")

MAX_WAITING = 32  # connections held at most before the outbox is written, whatever the turn still holds
MAX_WAITING_BYTES = 64 * 1024  # held at most on one connection: a transport's own high-water mark


class Outbox:
    """The connections with writes waiting, in the order they first wrote; written by one callback per turn."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[Coalescing] = []

    def add(self, connection: Coalescing) -> None:
        """`connection` has writes waiting (and had none before them); called on the event loop."""
        waiting = self._waiting
        if not waiting:
            # After this turn's callbacks: among the next turn's first. (The loop is looked up, not kept: an
            # outbox is kept per loop, weakly, and must not keep its loop alive.)
            asyncio.get_running_loop().call_soon(self.flush)
        waiting.append(connection)
        if len(waiting) >= MAX_WAITING:
            self.flush()

    def flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for connection in waiting:
            try:
                connection.flush()
            except Exception:  # one connection's failure must not strand the others' answers
                _log.exception("writing a connection's waiting answers failed")


# One outbox per event loop (a process serves on one; tests start several), kept as long as its loop.
_outboxes: WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox] = WeakKeyDictionary()


def outbox_for(loop: asyncio.AbstractEventLoop) -> Outbox:
    """The event loop's outbox."""
    outbox = _outboxes.get(loop)
    if outbox is None:
        outbox = _outboxes[loop] = Outbox()
    return outbox


class Coalescing(asyncio.Transport):
    """A connection's transport whose writes wait in the loop's outbox; everything else is the transport's own.

    `close` and `write_eof` write what waits first, as a transport does its own buffer; `abort` drops it, as
    a transport's abort does. Nothing is written to a transport that is closing (the client is gone), nor after
    `write_eof` (a transport would raise, in the outbox's callback: the other connections' turn)."""

    __slots__ = ("_ended", "_outbox", "_size", "_transport", "_waiting")

    def __init__(self, transport: asyncio.Transport, outbox: Outbox) -> None:
        super().__init__()
        self._transport = transport
        self._outbox = outbox
        self._waiting: list[bytes] = []
        self._size = 0
        # The connection's output ended (write_eof: a refusal sent while an earlier request on it was still
        # being answered): what is written after it is dropped, as after a close, never raised at the outbox.
        self._ended = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data or self._ended:
            return
        waiting = self._waiting
        waiting.append(data if type(data) is bytes else bytes(data))
        self._size += len(data)
        if self._size > MAX_WAITING_BYTES:
            self.flush()
        elif len(waiting) == 1:  # the first write since the last flush: the outbox writes it (and any after)
            self._outbox.add(self)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Write what waits, in one write (the outbox calls it, and whatever ends the connection)."""
        waiting = self._waiting
        if waiting:
            self._waiting = []
            self._size = 0
            if not self._transport.is_closing():
                self._transport.write(waiting[0] if len(waiting) == 1 else b"".join(waiting))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._ended = True
        self._transport.write_eof()

    def abort(self) -> None:
        self._waiting = []
        self._size = 0
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()  # what was written before the protocol changes goes first (an upgrade)
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()
