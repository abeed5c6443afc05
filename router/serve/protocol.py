"""uvicorn's httptools protocol, with the limits a click target needs on a request's head.

Every request, clicks included, is answered by the ASGI app through uvicorn's own request-response cycle:
request reading, proxy headers (uvicorn's ProxyHeadersMiddleware), keep-alive, pipelining and, when it is
on, uvicorn's access line are uvicorn's. `BoundedHttpToolsProtocol` adds only what uvicorn can't do with
httptools, which keeps reading a head for as long and as large as a client sends it:

- it counts the bytes of a head as they arrive and answers 431 (414 while the request line has not ended:
  the target is what runs over) and closes once more than MAX_HEADER_BYTES came without the head ending
  (a 10 MB header is never buffered: what follows is read and dropped for LINGER_SECONDS, so the answer
  reaches the client, then the connection closes);
- it checks the parsed head (request target and headers) against the same limit before any app sees it;
- it answers 408 and closes when a head has started and is not complete within HEAD_TIMEOUT_SECONDS (a
  client dribbling a head byte by byte holds no connection for long). A kept-alive idle connection is
  not a head in progress: uvicorn's keep-alive timeout handles it;
- a head httptools can't parse is refused the same way, 400 (uvicorn's own 400 would close at once, and
  carry none of the headers every answer carries);

and two things of the router's own:

- every write on the connection goes through router.serve.outbox's `Coalescing` transport, installed as
  the connection starts: a turn's answers leave together, a response's head and body in one write;
- while the router drains (router.serve.drain) every answer says `Connection: close`.

The app checks the header size again (router.serve.edge), for servers started any other way.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from router.serve.drain import DRAIN
from router.serve.edge import MAX_HEADER_BYTES
from router.serve.headers import SECURITY_HEADERS
from router.serve.logs import log_access, new_request_id
from router.serve.metrics import count_protocol_refusal
from router.serve.outbox import Coalescing, outbox_for

HEAD_TIMEOUT_SECONDS = 10.0
# After a refusal, what the client still sends is read and dropped for this long before the connection
# closes: closing with unread data makes the kernel reset the connection, and a reset can destroy the
# answer on its way to the client.
LINGER_SECONDS = 1.0
_REFUSAL_HEADERS = b"".join(name + b": " + value + b"\r\n" for name, value in (
    *SECURITY_HEADERS, (b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")))


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop reading a head that is over the limit."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """The router's one subclass of uvicorn's protocol (the module docstring says what it adds).

    It relies on these internals of uvicorn 0.54's HttpToolsProtocol, which is why pyproject.toml bounds
    uvicorn to the 0.54 series: `connection_made` keeps the transport it is given as `self.transport` and
    builds its FlowControl on it (so the coalescing transport sees every write, and flow control still
    pauses and resumes the real one); `data_received` feeds `self.parser` and answers a parser error with
    `send_400_response`; `on_headers_complete` reads `self.url` and `self.headers` and leaves the request's
    cycle in `self.cycle`, whose `keep_alive` the cycle reads when it answers; the parser callbacks
    `on_message_begin` and `on_message_complete`; `self.loop`; and `self.server_state.default_headers` (the
    date) for its own refusals. tests/test_serving.py and tests/test_request_limits.py exercise each.
    """

    max_head_bytes = MAX_HEADER_BYTES
    head_timeout = HEAD_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # a connection starts waiting for a request's head
        self._head_begun = False  # ...and is idle until the parser sees one begin
        self._completed = False  # a request ended in the data being fed
        self._head_bytes = 0
        self._too_large = False  # the parser stopped on a head over the limit (not on bad HTTP)
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False  # answered without the app: the rest of the connection is dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Coalescing(transport, outbox_for(self.loop)))

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        self._completed = False
        super().data_received(data)  # a parser error: send_400_response, below
        if self._refused or not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes > self.max_head_bytes:
            self._refuse_too_large()
        elif self._head_timer is None and (self._head_begun or not self._completed):
            # A head that has begun and not ended, or bytes that began none (the CR/LF the parser skips
            # before a request: they stop uvicorn's keep-alive timer, so this one must run). Data that
            # ended with a whole request (nearly every click) arms nothing, and an idle kept-alive
            # connection is left to the keep-alive timeout.
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to what httptools could not parse, given as the router's other refusals are."""
        if self._too_large:
            self._refuse_too_large()
        else:
            self._refuse(400, msg + "\n")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True

    def _refuse_too_large(self) -> None:
        """414 when the request target is what runs over the limit (most of the head read so far: the parser
        hands over a target as it arrives, so one still arriving counts too); 431 when the header fields do.
        Decided from what the parser kept, at refusal time: nothing is added per header of every request."""
        if len(self.url) > max(self._head_bytes, len(self.url)) // 2:
            self._refuse(414, f"The request target is over the limit of {self.max_head_bytes} bytes.\n")
        else:
            self._refuse(431, f"Request headers are over the limit of {self.max_head_bytes} bytes.\n")

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        size = len(self.url)
        for name, value in self.headers:
            size += len(name) + len(value) + 4
        if size > self.max_head_bytes:
            self._too_large = True
            raise _HeadTooLarge  # the parser stops, with an error: send_400_response
        super().on_headers_complete()
        if DRAIN.draining and self.cycle is not None:
            self.cycle.keep_alive = False  # the answer says Connection: close: the next request goes elsewhere

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what comes next on this connection is the next request's head
        self._head_begun = False
        self._completed = True
        self._head_bytes = 0

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, f"The request's head did not arrive within {self.head_timeout:g} seconds.\n")

    def _refuse(self, status: int, message: str) -> None:
        """Answer without the app, and close: the rest of what this client sends is read and dropped."""
        self._stop_head_timer()
        self._refused = True
        body = message.encode()
        request_id = new_request_id()
        count_protocol_refusal(status)
        peer = self.transport.get_extra_info("peername")
        log_access(status, request_id, client=peer[0] if peer else None, why=message.strip())
        self.transport.write(b"".join([
            b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode()),
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            _REFUSAL_HEADERS,
            b"x-request-id: " + request_id.encode() + b"\r\n",
            b"content-length: %d\r\n\r\n" % len(body),
            body,
        ]))
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client sees the end of the answer and can close its side
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
