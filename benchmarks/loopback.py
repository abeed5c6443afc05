"""What the benchmarks that start servers share: a free loopback port, waiting for a server to answer, the
user agents they click with, and a router started beside its own Valkey/Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")
WECHAT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN")


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


def store_and_router(redis_server: str, directory: str, redis_port: int, router_port: int,
                     env: dict[str, str]) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """A redis-server without persistence on `redis_port` (its files in `directory`), and a router on
    `router_port` using it, quiet, with `env` on top: (store, router), for the caller to stop."""
    store = subprocess.Popen([redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", directory], stdout=subprocess.DEVNULL)
    router = subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "--port", str(router_port), "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "ROUTER_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "ROUTER_DRAIN_SECONDS": "0",
             "ROUTER_CLICK_LOG": "off", **env})
    return store, router
