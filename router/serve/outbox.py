"""Answers given in one turn of the event loop, written together at its end.

A client on the same machine as the router (a proxy beside it, a load generator) is woken by the kernel
when an answer reaches its socket. Written as each is made, the answers of one turn arrive a few dozen
microseconds apart, and the client is woken for each: it reads one, goes idle, and is woken again. On a
virtual machine waking an idle CPU costs the writer tens of microseconds, more than a click takes to
decide. Written back to back at the end of the turn, they find the client awake after the first.

The cost is a wait for the rest of the turn's work: one turn handles the requests that arrived while the
last one ran, and the outbox is written early once it holds MAX_WAITING answers, so an answer waits at
most that many clicks' work (well under a millisecond). An idle router's turn holds one answer, written at
once.
"""

from __future__ import annotations

import asyncio
from typing import Protocol
from weakref import WeakKeyDictionary

MAX_WAITING = 32  # answers held at most before the outbox is written, whatever the turn still holds


class Sender(Protocol):
    def flush_outgoing(self) -> None:
        """Write what this connection has waiting."""


class Outbox:
    """The connections with answers waiting, in the order they were given; written by one callback per turn."""

    def __init__(self) -> None:
        self._waiting: list[Sender] = []

    def add(self, sender: Sender) -> None:
        """`sender` has an answer waiting (and had none before this one); called on the event loop."""
        waiting = self._waiting
        if not waiting:
            # After the callbacks of this turn: the next turn's first. (The loop is looked up, not kept: the
            # outbox is kept per loop, weakly, and must not keep its loop alive.)
            asyncio.get_running_loop().call_soon(self.flush)
        waiting.append(sender)
        if len(waiting) >= MAX_WAITING:
            self.flush()

    def flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for sender in waiting:
            sender.flush_outgoing()


_outboxes: WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox] = WeakKeyDictionary()


def outbox_for(loop: asyncio.AbstractEventLoop) -> Outbox:
    """The event loop's outbox (one per loop: a process serves on one, tests start several)."""
    outbox = _outboxes.get(loop)
    if outbox is None:
        outbox = _outboxes[loop] = Outbox()
    return outbox
