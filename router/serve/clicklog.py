"""The click stream: one JSON line per decided click, the input of `explain --batch` and `rules diff`.

Written by a thread of its own, so the event loop never waits on a slow or full stream: a click only
appends its line to one buffer of waiting lines (under a lock, uncontended but for the thread's swap once
a batch). The thread takes the whole buffer every _GATHER_SECONDS and writes it in one go. Lines are
serialised with orjson (a few hundred nanoseconds, non-ASCII kept as UTF-8 like the rest of the log).

One growing buffer, not a line object per click handed from thread to thread: lines allocated on the
event loop and freed by the writer would scatter the heap, and a long-running router would keep megabytes
more resident for it.

Without a stream (an app built in code, tests) lines go to the `router.clicks` logger, synchronously.
At most MAX_WAITING_BYTES of lines wait for the stream; past that they are dropped and the count is
reported.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import IO, Any

import orjson

logger = logging.getLogger("router.clicks")
_GATHER_SECONDS = 0.02  # how long lines pile up before a write: one wake-up of the thread per batch
# Lines waiting at most, in bytes (~50,000 clicks). A stream that stops taking lines (a stuck log shipper)
# must not grow the process without bound: past this, lines are dropped and counted, and the count is
# written as soon as the stream takes lines again (a {"type": "dropped"} line).
MAX_WAITING_BYTES = 32 * 1024 * 1024


_MILLISECONDS = [f".{n:03d}+00:00" for n in range(1000)]
_second: tuple[int, str] = (-1, "")  # the last second a click line was stamped in, and its text


def click_time(now: float, at: datetime) -> str:
    """`at.isoformat(timespec="milliseconds")` for `at = datetime.fromtimestamp(now, UTC)`: the date and time
    of day formatted once a second (isoformat on every click would cost more), the milliseconds from a table."""
    global _second
    whole = int(now)
    if at.microsecond == 0 and now - whole >= 0.5:  # `at` rounded up into the next second
        whole += 1
    second = _second
    if second[0] != whole:
        second = _second = (whole, at.replace(microsecond=0).isoformat()[:-6])
    return second[1] + _MILLISECONDS[at.microsecond // 1000]


class ClickLog:
    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self.stream = stream
        self._waiting = bytearray()  # lines not written yet, each ending in a newline
        self._lock = threading.Lock()  # between a click's append and the thread's taking of the buffer
        self._wake = threading.Event()  # set when lines start waiting (or when closing)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.dropped = 0  # lines dropped since the last report, while too many were waiting
        self.dropped_total = 0  # ...and since the start (router.serve.metrics)

    def write(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        if self.stream is None:
            logger.info(line[:-1].decode())
            return
        if self._thread is None:
            self._start()
        with self._lock:
            waiting = self._waiting
            if len(waiting) + len(line) > MAX_WAITING_BYTES:
                self.dropped += 1
                self.dropped_total += 1
                return
            first = not waiting
            waiting += line
        if first:  # once per batch: the thread sleeps while nothing waits
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="click-log", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stream = self.stream
        if stream is None:
            return
        while True:
            self._wake.wait()
            if not self._stopping:
                # Let lines pile up for a moment: one wake-up (and one hand-over of the interpreter lock) per
                # batch rather than per click, which under load would cost the event loop more than the lines.
                time.sleep(_GATHER_SECONDS)
            with self._lock:
                data, self._waiting = self._waiting, bytearray()
                self._wake.clear()  # under the lock: a line appended after this sets it again
                dropped, self.dropped = self.dropped, 0
                stopping = self._stopping
            if dropped:
                data += orjson.dumps({"type": "dropped", "lines": dropped,
                                      "reason": f"more than {MAX_WAITING_BYTES} bytes of click lines were waiting"},
                                     option=orjson.OPT_APPEND_NEWLINE)
            if data:
                try:
                    stream.write(data)
                    stream.flush()
                except (OSError, ValueError):  # a closed or broken stream must not take the server down
                    pass
            if stopping:
                return

    def close(self, timeout: float = 5.0) -> None:
        """Write what is waiting and stop the thread (at shutdown)."""
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake.set()
            thread.join(timeout)
            self._thread = None
            self._stopping = False  # a line written after this starts a thread again
