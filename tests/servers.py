"""Real `python -m router serve` processes on 127.0.0.1 for end-to-end and browser tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest


def debian_tool(*names: str, package: str) -> str:
    """The path of the first of `names` on PATH, a real part Debian's `package` brings. Missing: the test
    skips on a developer's machine, and fails under CI=true (.ci/run installs it)."""
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{names[0]} is not installed: .ci/run installs Debian's {package}")
    pytest.skip(f"{names[0]} is not installed (apt-get install {package})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """check()'s first true answer, looked at every `every` seconds; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(every)


def stop_process(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within `timeout`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Server:
    """One router process. Its output goes to a file, so a chatty server can never block on a full pipe."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 -- closed in stop()
        self._output: str | None = None  # what it printed, once stopped
        self.process = subprocess.Popen(
            [sys.executable, "-m", "router", "serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
            # No drain unless a test asks for one: SIGTERM stops a test's server at once (router.serve.drain).
            stdout=self._log, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "ROUTER_DRAIN_SECONDS": "0", **(env or {})},
        )

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def wait_ready(self) -> Server:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited ({self.process.returncode}): {self.output()}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("server did not become ready in 30 s")

    def wait_exit(self, timeout: float = 60) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> str:
        """Stop the server and return everything it printed (again, when called again)."""
        if self._output is not None:
            return self._output
        stop_process(self.process)
        self._output = self.output()
        self._log.close()
        return self._output
