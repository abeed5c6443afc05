"""What the benchmarks that start servers share: a free loopback port, and waiting for a server to answer."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], object], what: str, seconds: float = 60) -> None:
    """Until `check()` is true (an error counts as not yet); SystemExit naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not listening yet, or answering something else: look again
            pass
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start within {seconds:g} s")
