"""uvicorn's httptools protocol with the limits a click target needs on a request's head.

httptools (llhttp) is several times faster than the pure-Python h11, but it keeps reading a head for as
long and as large as a client sends it. So this subclass:

- counts the bytes of a head as they arrive and answers 431 and closes once more than MAX_HEADER_BYTES
  came without the head ending (a 10 MB header is never buffered: what follows is read and dropped for
  a second, so the answer reaches the client, then the connection closes);
- checks the parsed head (request target and headers) against the same limit before any app sees it;
- answers 408 and closes when a head has started and is not complete within HEAD_TIMEOUT_SECONDS (a
  client dribbling a head byte by byte holds no connection for long). A kept-alive idle connection is
  not a head in progress: uvicorn's keep-alive timeout handles it.

Most clicks wait on nothing (no fleet store, limit or expansion to ask): those the app answers in
`on_headers_complete` itself, through its `answer_now` (router.serve.web), and the answer is written at
once, head and body in one write. uvicorn would make a request-response cycle, an event and a task for
each, run the app as a coroutine and check every header of its answer with a regex: for a click that
is most of the time it takes. Every other request (and a click that waits) goes the usual way; there the
response's head is held and sent with the first part of its body in one write (`HeadWithBody`): uvicorn
writes the head as soon as the app starts its response, and the body apart, two system calls and two TCP
segments for a landing page where one does.

The app checks the header size again (router.serve.edge), for servers started any other way.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import unquote

import httptools
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from router.serve.drain import DRAIN
from router.serve.edge import MAX_HEADER_BYTES
from router.serve.logs import ACCESS_LOGGER, new_request_id
from router.serve.metrics import count_protocol_refusal
from router.serve.outbox import outbox_for

HEAD_TIMEOUT_SECONDS = 10.0
access_log = logging.getLogger(ACCESS_LOGGER)
# After a refusal, what the client still sends is read and dropped for this long before the connection
# closes: closing with unread data makes the kernel reset the connection, and a reset can destroy the
# answer on its way to the client.
LINGER_SECONDS = 1.0
OUTGOING_LIMIT = 64 * 1024  # answers waiting for the outbox on one connection at most, in bytes
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"  # what uvicorn's cycle writes when an app reads a body the client
# holds back for it (Expect: 100-continue)


# A header value must not end its line early or carry other control characters (a tab may be in one): what
# uvicorn checks each header of an answer for, checked here once over an answer's values.
_UNSAFE_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
# How an answer given at once is written (router.serve.web: Clicks.now calls it): status, headers, body.
Respond = Callable[[int, list[tuple[bytes, bytes]], bytes], None]
AnswerNow = Callable[[Any, Respond], bool]  # (the request's ASGI scope, how to write its answer)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop reading a head that is over the limit."""


class HeadWithBody:
    """The transport uvicorn's request-response cycle writes to: the response's head (the cycle's first write
    but a `100 Continue`) is held and sent in one write with the body's first bytes, whatever they are (an
    empty body too). Anything else goes through at once: the `100 Continue` (the client waits for it before
    sending a body), every write after the head, the head of a HEAD response (no body follows) and of a
    chunked one (a stream, whose first part may be a long time coming).

    It keeps no reference to the cycle: a cycle that pointed back at it would be garbage only the collector
    can free, and a collection every hundred clicks costs more than the write saved."""

    __slots__ = ("_head", "_held", "_scope", "_transport")

    def __init__(self, transport: asyncio.Transport, scope: Mapping[str, object]) -> None:
        self._transport = transport
        self._scope = scope  # the request's method, read when the head comes (as uvicorn reads it)
        self._head = b""
        self._held = False  # True once a head was held (or let through)

    def write(self, data: bytes) -> None:
        if self._head:
            data, self._head = self._head + data, b""
        elif not self._held and data != CONTINUE:
            self._held = True
            if self._scope["method"] != "HEAD" and b"\r\ntransfer-encoding: chunked\r\n" not in data:
                self._head = data
                return
        self._transport.write(data)

    def flush(self) -> None:
        """Send a held head now: before the protocol writes to the connection itself (a refusal of the next
        request), or closes it."""
        if self._head:
            head, self._head = self._head, b""
            if not self._transport.is_closing():  # a client gone: uvicorn would not write either
                self._transport.write(head)

    def close(self) -> None:
        """A response that ends the connection (or an app that failed after starting it): the head goes
        first, as uvicorn would have written it."""
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, ...: the transport's own
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes = MAX_HEADER_BYTES
    head_timeout = HEAD_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # a connection starts waiting for a request's head
        self._head_begun = False  # ...and is idle until the parser sees one begin
        self._completed = False  # a request ended in the data being fed
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False  # answered without the app: the rest of the connection is dropped
        # The app's way to answer a click at once (router.serve.web: RouterApp.answer_now), found under
        # uvicorn's proxy-headers middleware when that wraps it (the middleware's work is done here then).
        app = self.app
        self._proxies = None
        if isinstance(app, ProxyHeadersMiddleware):
            self._proxies, app = app.trusted_hosts, app.app
        answer_now = getattr(app, "answer_now", None)
        # uvicorn's per-request features the answer at once has not: a concurrency limit's 503, a root path.
        plain = self.limit_concurrency is None and not self.root_path
        self._answer_now: AnswerNow | None = answer_now if plain else None
        self._answered_now = False  # the request being read was answered as its head ended
        self._head_only = False  # ...and it was a HEAD
        self._keep_alive = True  # ...and its answer leaves the connection open
        self._written = False  # ...and its answer was written
        self._outgoing: list[bytes] | None = None  # answers given at once, waiting in the loop's outbox
        self._outgoing_bytes = 0
        self._outbox = outbox_for(self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        self._outgoing = None  # the client is gone: nothing can reach it
        super().connection_lost(exc)

    def shutdown(self) -> None:
        self.flush_outgoing()  # the answers given go out before uvicorn closes an idle connection
        super().shutdown()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        self._completed = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as err:
            if isinstance(err.__context__, _HeadTooLarge):
                self._refuse(431, f"Request headers are over the limit of {self.max_head_bytes} bytes.\n")
            else:
                self.logger.warning("Invalid HTTP request received.")
                count_protocol_refusal(400)
                self._flush_held_head()
                self.send_400_response("Invalid HTTP request received.")
            return
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes > self.max_head_bytes:
            self._refuse(431, f"Request headers are over the limit of {self.max_head_bytes} bytes.\n")
        elif self._head_timer is None and (self._head_begun or not self._completed):
            # A head that has begun and not ended, or bytes that began none (the CR/LF the parser skips
            # before a request: they stop uvicorn's keep-alive timer, so this one must run). Data that
            # ended with a whole request (nearly every click) arms nothing, and an idle kept-alive
            # connection is left to the keep-alive timeout.
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def on_message_begin(self) -> None:
        # The keep-alive timer an answer given at once armed stops when the next request begins, even one
        # that came in the same data (data_received stopped it before that answer): a request that goes
        # uvicorn's way and takes longer than the keep-alive must not have its connection closed under it.
        self._unset_keepalive_if_required()
        super().on_message_begin()
        self._head_begun = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        size = len(self.url)
        for name, value in self.headers:
            size += len(name) + len(value) + 4
        if size > self.max_head_bytes:
            raise _HeadTooLarge
        if self.transport.is_closing():
            # A request sent after one whose answer closed the connection (Connection: close, a drain):
            # no answer can reach the client, and a click that isn't answered must not be logged as one.
            self._answered_now = True  # (its body, if any, is dropped like an answered click's)
            return
        if self._answer_now is not None and self._answered_at_once():
            return
        self.flush_outgoing()  # what was answered at once goes before this request's answer
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None:
            return
        if cycle.transport is self.transport:  # a cycle made just now (its task has not run yet)
            cycle.transport = cast(asyncio.Transport, HeadWithBody(self.transport, cycle.scope))
        if DRAIN.draining:
            cycle.keep_alive = False  # the answer says Connection: close: the next request goes elsewhere

    def _answered_at_once(self) -> bool:
        """Offer the request to the app's `answer_now`, when nothing is ahead of it on this connection; True
        when it was answered (the answer is written), False when it goes the usual way."""
        cycle = self.cycle
        if (cycle is not None and not cycle.response_complete) or self.pipeline or self.flow.write_paused:
            return False  # answers go out in order, and not faster than the client reads them
        parser = self.parser
        method = parser.get_method()
        if (method != b"GET" and method != b"HEAD") or parser.should_upgrade():
            return False
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")  # as uvicorn reads it: a path that isn't ASCII is a 400 either way
        if "%" in path:
            path = unquote(path)
        http_version = parser.get_http_version()
        scope = self.scope
        scope["method"] = "GET" if method == b"GET" else "HEAD"
        if http_version != "1.1":
            scope["http_version"] = http_version
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = url.query or b""
        client, scheme = scope["client"], scope["scheme"]
        if self._proxies is not None:
            _forwarded(scope, self._proxies)
        self._head_only = method == b"HEAD"
        self._keep_alive = http_version != "1.0" and parser.should_keep_alive() and not DRAIN.draining
        self._written = False
        try:
            answered = self._answer_now(scope, self._respond)  # type: ignore[misc]
        except Exception:  # a bug: before the answer was written, the usual way may still give one
            self.logger.exception("answering a click at once failed")
            if self._written:  # as uvicorn ends a response whose app failed after starting it
                self.flush_outgoing()
                self.transport.close()
            answered = self._written
        if not answered:
            scope["client"], scope["scheme"] = client, scheme  # uvicorn's middleware does this again
            return False
        self._answered_now = True
        self.on_response_complete()  # as uvicorn's cycle ends a response: counted, and the keep-alive timer
        return True

    def _respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Write an answer given at once: the status line, the server's headers (the date), the app's, and
        the body (none for a HEAD), in one write."""
        if _UNSAFE_VALUE.search(b"\t".join([value for _, value in headers])):
            raise ValueError("a header value with a control character in it")  # as uvicorn refuses one
        if self.access_log:  # uvicorn's access line, when it is on (`serve` turns it off: clicks have their own)
            scope = self.scope
            self.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(scope), scope["method"],
                                    get_path_with_query_string(scope), scope["http_version"], status)
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        for name, value in headers:
            head.append(name + b": " + value + b"\r\n")
        if not self._keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        if not self._head_only:
            head.append(body)
        self._written = True
        if self.transport.is_closing():
            return
        if self._keep_alive:
            self._send_soon(b"".join(head))
        else:  # the last answer on this connection: nothing to wait for
            self.flush_outgoing()
            self.transport.write(b"".join(head))
            self.transport.close()

    def _send_soon(self, data: bytes) -> None:
        """Write `data` with the other answers of this turn of the event loop (router.serve.outbox); at once
        when this connection has more than the transport's buffer would hold waiting (a client sending many
        requests at once), so that flow control sees it."""
        outgoing = self._outgoing
        if outgoing is None:
            self._outgoing = [data]
            self._outgoing_bytes = len(data)
            self._outbox.add(self)
        else:
            outgoing.append(data)
            self._outgoing_bytes += len(data)
            if self._outgoing_bytes > OUTGOING_LIMIT:
                self.flush_outgoing()

    def flush_outgoing(self) -> None:
        """Write this connection's waiting answers (called by the outbox, and before anything else is written)."""
        outgoing = self._outgoing
        if outgoing is not None:
            self._outgoing = None
            if not self.transport.is_closing():
                self.transport.write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))

    def on_body(self, body: bytes) -> None:
        if not self._answered_now:  # a body sent with a click answered at once is read and dropped
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._answered_now:
            self._answered_now = False
        else:
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

    def _flush_held_head(self) -> None:
        """Answers waiting in the outbox, and a head the current response holds (HeadWithBody), go out before
        anything the protocol writes itself."""
        self.flush_outgoing()
        transport = self.cycle.transport if self.cycle is not None else None
        if isinstance(transport, HeadWithBody):
            transport.flush()

    def _refuse(self, status: int, message: str) -> None:
        """Answer without the app, and close: the rest of what this client sends is read and dropped."""
        self._stop_head_timer()
        self._flush_held_head()
        self._refused = True
        body = message.encode()
        request_id = new_request_id()
        count_protocol_refusal(status)
        peer = self.transport.get_extra_info("peername")
        access_log.info("refused before the app: %d", status, extra={
            "request_id": request_id, "status": status, "client": peer[0] if peer else None})
        self.transport.write(b"".join([
            STATUS_LINE[status],
            b"content-type: text/plain; charset=utf-8\r\n",
            b"x-content-type-options: nosniff\r\n",
            b"cache-control: no-store\r\n",
            b"x-request-id: " + request_id.encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]))
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client sees the end of the answer and can close its side
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def _forwarded(scope: Any, proxies: Any) -> None:
    """What uvicorn's ProxyHeadersMiddleware does to a request's scope (it wraps the app, and a request
    answered at once never reaches it): from a trusted proxy, X-Forwarded-For's client and
    X-Forwarded-Proto's scheme."""
    client = scope.get("client")
    if (client[0] if client else None) not in proxies:  # as the middleware asks (`*` trusts even no address)
        return
    proto: bytes | None = None
    forwarded_for: list[bytes] = []
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            proto = value
        elif name == b"x-forwarded-for":
            forwarded_for.append(value)
    if proto is not None:
        scheme = proto.decode("latin1").strip()
        if scheme in {"http", "https", "ws", "wss"}:
            scope["scheme"] = scheme
    if forwarded_for:
        host, port = proxies.get_trusted_client_address(b", ".join(forwarded_for).decode("latin1"))
        if host:
            scope["client"] = (host, port)
