"""`serve --workers N`: N worker processes, each listening on its own socket bound to the same address.

uvicorn's own supervisor shares one listening socket between its workers, and whichever worker's event
loop wakes first takes the connection: under load one worker can end up serving most of them. Here each
worker binds the address with SO_REUSEPORT, and the kernel spreads new connections over the sockets by
a hash of each connection's addresses: evenly, whatever the workers are busy with.

The parent only supervises. It starts the workers (each `adlink-router serve --reuse-port`, with the
settings in its environment), starts a worker again when one dies, passes SIGHUP on (every worker
reloads its rules), and on SIGTERM or SIGINT passes the signal on and waits for them to finish. It also
gives the workers a directory to share their metrics in (router.serve.metrics): ROUTER_METRICS_DIR, or
one of its own for as long as it runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from router.serve.metrics import clear_directory, retire_worker

log = logging.getLogger("router")
RESTART_PAUSE_SECONDS = 1.0  # a worker that dies at once is not started again in a tight loop


def listening_socket(host: str, port: int, backlog: int = 2048, reuse_port: bool = True) -> socket.socket:
    """A socket bound to host:port; with `reuse_port`, one that the other workers may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, command: list[str], workers: int, env: dict[str, str], stop_seconds: float = 30.0) -> None:
        self.command = command
        # How long a worker gets to stop after SIGTERM before it is killed: its drain and its shutdown
        # (router.serve.drain), with a margin.
        self.stop_seconds = stop_seconds
        self.count = workers
        self.env = env
        self.workers: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def _start_one(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command, env=self.env)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._forward)
        self.workers = [self._start_one() for _ in range(self.count)]
        log.info("started %d workers (pids %s), each on its own socket", self.count,
                 ", ".join(str(worker.pid) for worker in self.workers))
        while True:
            time.sleep(0.2)
            if self.stopping:
                break
            for index, worker in enumerate(self.workers):
                code = worker.poll()
                if code is not None and not self.stopping:
                    log.warning("worker %d exited with %d; starting another", worker.pid, code)
                    metrics_dir = self.env.get("ROUTER_METRICS_DIR")
                    if metrics_dir:  # its counters stay in the sum, in one file with every ended worker's
                        retire_worker(Path(metrics_dir), worker.pid)
                    time.sleep(RESTART_PAUSE_SECONDS)
                    self.workers[index] = self._start_one()
        codes = []
        for worker in self.workers:
            try:
                codes.append(worker.wait(timeout=self.stop_seconds))
            except subprocess.TimeoutExpired:
                worker.kill()
                codes.append(worker.wait())
        return 0 if all(code in (0, -signal.SIGTERM, -signal.SIGINT) for code in codes) else 1


def check_free(host: str, port: int) -> None:
    """OSError unless host:port is free. SO_REUSEPORT lets any process of the same user join a port that
    is already listened on, so a second `serve --workers N` on a busy port would quietly take a share of
    the first one's connections: a bind without it, tried first, fails on any listener."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        probe.bind((host, port))


def supervise(host: str, port: int, workers: int, log_level: str, env_overrides: dict[str, str],
              stop_seconds: float = 30.0) -> int:
    """Run `workers` copies of `serve --reuse-port` on host:port until told to stop; on SIGTERM each gets
    `stop_seconds` to drain and finish before it is killed."""
    command = [sys.executable, "-m", "router", "serve", "--host", host, "--port", str(port),
               "--log-level", log_level, "--reuse-port"]
    return Supervisor(command, workers, {**os.environ, **env_overrides}, stop_seconds).run()


@contextlib.contextmanager
def shared_metrics_dir(configured: str) -> Iterator[str]:
    """The workers' metrics directory: the configured one, emptied of an earlier run's snapshots, or a
    temporary one removed at the end. OSError when it can't be made or written (a read-only root: set
    ROUTER_METRICS_DIR to a writable volume)."""
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        clear_directory(directory)
        probe = directory / ".writable"
        probe.write_bytes(b"")
        probe.unlink()
        yield str(directory)
        return
    with tempfile.TemporaryDirectory(prefix="adlink-metrics-") as made:
        yield made
