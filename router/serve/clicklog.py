"""The click stream: one JSON line per decided click, the input of `explain --batch` and `rules diff`.

Written by a thread of its own, so the event loop never waits on a slow or full stream: a click only
appends its line to a queue (a C call). The thread writes whatever has piled up in one go. Lines are
serialised with orjson (a few hundred nanoseconds, non-ASCII kept as UTF-8 like the rest of the log).

Without a stream (an app built in code, tests) lines go to the `router.clicks` logger, synchronously.
At most MAX_WAITING lines wait for the stream; past that they are dropped and the count is reported.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from queue import Empty, SimpleQueue
from typing import IO, Any

import orjson

logger = logging.getLogger("router.clicks")
_STOP = object()  # put by close(): the thread writes what is left and ends
_BATCH = 4096  # lines written at most in one write call
_GATHER_SECONDS = 0.02
# Lines waiting at most. A stream that stops taking lines (a stuck log shipper) must not grow the
# process without bound: past this, lines are dropped and counted, and the count is written as soon as
# the stream takes lines again (a {"type": "dropped"} line).
MAX_WAITING = 100_000


_MILLISECONDS = [f".{n:03d}+00:00" for n in range(1000)]
_second: tuple[int, str] = (-1, "")  # the last second a click line was stamped in, and its text


def click_time(now: float, at: datetime) -> str:
    """`at.isoformat(timespec="milliseconds")` for `at = datetime.fromtimestamp(now, UTC)`: the date and time
    of day formatted once a second (isoformat costs a click 2 µs), the milliseconds from a table."""
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
        self._lines: SimpleQueue[bytes | object] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0  # lines dropped since the last report, while too many were waiting
        self.dropped_total = 0  # ...and since the start (router.serve.metrics)

    def write(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record)
        if self.stream is None:
            logger.info(line.decode())
            return
        if self._thread is None:
            self._start()
        if self._lines.qsize() >= MAX_WAITING:
            self.dropped += 1
            self.dropped_total += 1
            return
        self._lines.put(line)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="click-log", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stream = self.stream
        if stream is None:
            return
        while True:
            batch = [self._lines.get()]
            # Let lines pile up for a moment: one wake-up (and one hand-over of the interpreter lock) per
            # batch rather than per click, which under load would cost the event loop more than the lines.
            time.sleep(_GATHER_SECONDS)
            while len(batch) < _BATCH:
                try:
                    batch.append(self._lines.get_nowait())
                except Empty:
                    break
            stopping = any(line is _STOP for line in batch)
            lines = [line for line in batch if isinstance(line, bytes)]
            if self.dropped:
                dropped, self.dropped = self.dropped, 0  # a count read and reset here; a race loses none for long
                lines.append(orjson.dumps({"type": "dropped", "lines": dropped,
                                           "reason": f"more than {MAX_WAITING} click lines were waiting"}))
            if lines:
                try:
                    stream.write(b"\n".join(lines) + b"\n")
                    stream.flush()
                except (OSError, ValueError):  # a closed or broken stream must not take the server down
                    pass
            if stopping:
                return

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued and stop the thread (at shutdown)."""
        thread = self._thread
        if thread is not None:
            self._lines.put(_STOP)
            thread.join(timeout)
            self._thread = None
