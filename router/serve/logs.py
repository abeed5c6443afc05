"""Every line the server writes: one JSON object with a `type`, on one stream (stdout by default).

- `click`: one per decided click, written by router.serve.clicklog (the input of `explain --batch`,
  `rules diff` and the replay); data, not a log level: `--log-level` never silences it
  (ROUTER_CLICK_LOG says where it goes, or `off`);
- `access`: a request refused or answered with an error that is not a click (404, 405, 400 for a host
  not served, 431), with its status;
- `reload`: rules accepted or rejected (router.serve.reload);
- `server`: everything else the router and uvicorn say (start, stop, warnings, errors).

Each has `at` (UTC, ISO 8601), and where a request is concerned its `request_id` (the X-Request-ID the
response carries: always the router's own), `correlation_id` (a trusted proxy's X-Request-ID, when it sent one)
and `duration_ms`. Lines are whole: each is one write to the stream, and the click
writer's batches are whole lines too, so a log shipper and the readers in router.policy.replay can read
the stream line by line.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

import orjson

__all__ = [
    "CLICK_LOG_CHOICES",
    "JsonLineHandler",
    "click_stream",
    "configure_logging",
    "correlation_id",
    "log_access",
    "new_request_id",
]

ACCESS_LOGGER = "router.access"
access_log = logging.getLogger(ACCESS_LOGGER)
_TYPES = (("router.reload", "reload"), (ACCESS_LOGGER, "access"))
_EXTRA_FIELDS = ("request_id", "correlation_id", "duration_ms", "status", "method", "path", "client")


def _line_type(logger_name: str) -> str:
    for prefix, kind in _TYPES:
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return kind
    return "server"


class JsonLineHandler(logging.Handler):
    """Writes each record as one JSON line, in one write of bytes (never interleaved with the click writer's
    batches on the same stream)."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line: dict[str, Any] = {
                "type": _line_type(record.name),
                "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
            for name in _EXTRA_FIELDS:
                value = record.__dict__.get(name)
                if value is not None:
                    line[name] = value
            if record.exc_info:
                line["error"] = logging.Formatter().formatException(record.exc_info)
            data = orjson.dumps(line, default=str) + b"\n"
            with self.lock:  # type: ignore[union-attr]
                self.stream.write(data)
                self.stream.flush()
        except Exception:  # a log line must never take a request down
            self.handleError(record)


def configure_logging(level: str = "info", stream: IO[bytes] | None = None) -> None:
    """Route the router's and uvicorn's loggers to one JSON-line handler at `level` (clicks are not a level:
    router.serve.clicklog writes them whatever this says)."""
    import sys

    handler = JsonLineHandler(stream or sys.stdout.buffer)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("router", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # requests are logged as click and access lines
    logging.getLogger("router.clicks").propagate = False  # tests' in-memory click log, never printed twice


CLICK_LOG_CHOICES = ("stdout", "stderr", "off")


def click_stream(where: str) -> IO[bytes]:
    """Where click lines go (ROUTER_CLICK_LOG): stdout (the default, with every other line), stderr, or
    nowhere (`off`: a deployment that records clicks some other way)."""
    import sys

    where = where.strip().lower() or "stdout"
    if where == "off":
        return open(os.devnull, "wb")
    if where not in CLICK_LOG_CHOICES:
        raise ValueError(f"ROUTER_CLICK_LOG must be one of {', '.join(CLICK_LOG_CHOICES)}, got {where!r}")
    return sys.stderr.buffer if where == "stderr" else sys.stdout.buffer


# Request ids (a click's id): always made here, 96 random bits. Unguessable, so nobody can claim a click that
# is not theirs (an outcome beacon needs its token, a token names its click), and uncorrelated, so two answers
# tell nothing of a node's traffic. A proxy's X-Request-ID is kept beside it, as a correlation id.
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_request_id() -> str:
    return os.urandom(12).hex()


def correlation_id(header: bytes | None, trusted: bool) -> str | None:
    """The X-Request-ID a trusted proxy set (letters, digits and ._:- only, at most 64), else None: a field of
    its own in the lines, never a click's id."""
    if trusted and header:
        given = header.decode("latin-1")
        if _GIVEN_ID.fullmatch(given):
            return given
    return None


def log_access(status: int, request_id: str, *, scope: Mapping[str, Any] | None = None, client: str | None = None,
               seconds: float | None = None, why: str = "", correlation: str | None = None) -> None:
    """The access line (type `access`) of a request refused, or answered with an error, that is no click: by
    the app, with the request's ASGI `scope`, or by the protocol before a whole head came (router.serve.protocol),
    with the client's address only."""
    extra: dict[str, Any] = {"request_id": request_id, "status": status, "client": client,
                             "correlation_id": correlation}
    if seconds is not None:
        extra["duration_ms"] = round(seconds * 1000, 3)
    if scope is None:
        request = "a request's head"
    else:
        address = scope.get("client")
        extra["client"] = address[0] if address else None
        extra["method"], extra["path"] = scope["method"], scope["path"][:200]
        request = f"{extra['method']} {extra['path']}"
    access_log.info("%s -> %d%s", request, status, f": {why}" if why else "", extra=extra)
