"""Graceful drain: on SIGTERM, stop being ready while still serving; then stop accepting, finish, exit 0.

A load balancer (or Kubernetes, through the readiness probe) needs a while to stop sending clicks to an
instance that is going away. So SIGTERM starts a drain of ROUTER_DRAIN_SECONDS:

1. /readyz answers 503 ("draining") at once; /healthz stays 200 (the process is alive and well);
2. clicks keep being served, each answer with `Connection: close`, so clients and proxies open their
   next connection to where the balancer now sends them and no idle kept-alive connection is left to
   be cut at the end;
3. when the drain ends, the listening sockets close, connections accepted in the last moments get
   LAST_ACCEPTED_SECONDS to deliver their request, and uvicorn's own shutdown follows: idle connections
   closed, requests in flight finished (at most ROUTER_SHUTDOWN_SECONDS), the lifespan's shutdown (the
   click log written out), and the process exits 0.

A second SIGTERM during the drain ends it early; SIGINT (Ctrl+C) shuts down without a drain. With
ROUTER_DRAIN_SECONDS=0, SIGTERM shuts down at once, still gracefully, and still exits 0.

The state is the process's: one server runs per process (`serve --workers N` starts N processes, and
passes SIGTERM on to each).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from types import FrameType

import uvicorn

log = logging.getLogger("router.serve")

LAST_ACCEPTED_SECONDS = 0.5


class Drain:
    """Whether this process is draining: read by /readyz and by the protocol (Connection: close)."""

    def __init__(self) -> None:
        self.draining = False


DRAIN = Drain()


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_seconds: float, drain: Drain = DRAIN) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.drain = drain
        self._drain_ends: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        # Handled here and not recorded for uvicorn to raise again after shutdown: SIGTERM is the normal
        # way to stop the router, and it exits 0.
        self.drain.draining = True
        if self._drain_ends is None and self.drain_seconds > 0 and not self.should_exit:
            self._drain_ends = time.monotonic() + self.drain_seconds
            log.info("SIGTERM: draining for %g s (readiness 503, still serving), then stopping", self.drain_seconds)
        else:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._drain_ends is not None and not self.should_exit and time.monotonic() >= self._drain_ends:
            log.info("drain over: no new connections; finishing the requests in flight")
            for server in self.servers:
                server.close()
            # A connection the kernel accepted just before the close has its request on the way: give it
            # a moment to arrive before idle connections are closed.
            await asyncio.sleep(LAST_ACCEPTED_SECONDS)
            self.should_exit = True
        return await super().on_tick(counter)
