"""uvicorn's httptools protocol, with the bounds a server facing clients directly needs.

httptools parses faster than h11 (see bench/RESULTS.md), but uvicorn gives it no limit on a
request's head and no timeout for reading one: a client could hold a connection forever by
sending half a request, or grow the server's memory by the size of one endless header. Here:

- a request's head (request line and headers) larger than `max_header_bytes` is answered 431 and
  the connection closed, as soon as that many bytes have arrived without the head's end;
- a client that takes longer than `header_timeout` to send a head (from the connection's start,
  or the first byte of a later request), or pauses longer than `body_timeout` within a body, is
  disconnected (an idle keep-alive connection is uvicorn's `timeout_keep_alive`);
- uvicorn's 503 beyond `limit_concurrency` is plain text: here it is `{"detail": ...}` JSON with
  `Retry-After`, as every other error of the API.

The limits come from the environment (`ayeto.config.HttpLimits`), as the application does:
`ayeto serve` names this class to uvicorn, which builds one per connection in every worker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from typing import Any, Final, Literal

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from ayeto.config import HttpLimits, Settings

logger = logging.getLogger("ayeto.protocol")

HEAD_TOO_LARGE: Final = "request header fields too large: at most {limit} bytes"
TOO_BUSY: Final = "the server is at its limit of concurrent connections; try again shortly"
RETRY_AFTER_SECONDS: Final = 1
# After a refusal, how long what the client still sends is read and dropped before the
# connection closes: closed with unread data, it would be reset, and the client could lose the
# answer before reading it (a "lingering close", as nginx does).
LINGER_SECONDS: Final = 1.0

# What the protocol waits for from the client: a request's head, more of its body, or nothing
# (a request is being answered, or the connection is idle between requests).
_Awaiting = Literal["head", "body"] | None


class _Refused(Exception):
    """Stops the parser where a request is answered without reaching the application."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@functools.cache
def limits() -> HttpLimits:
    """This process's limits, read once (the settings were checked before the server started)."""
    return Settings.from_env().http


class Protocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits()
        # Bytes received while a head was awaited, up to the end of the last chunk read, and the
        # size of the chunk being read: together, a bound on the size of a head that ends in it.
        self._head_bytes = 0
        self._chunk_bytes = 0
        self._awaiting: _Awaiting = None
        # When the client last made progress on what is awaited. One timer per connection looks
        # at it when it could have expired, so a request costs two clock reads, not two timers.
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False

    # -- connection -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await("head")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # As uvicorn's, with the refusals below, and the head's size counted as it arrives.
        if self._refused:
            return
        self._unset_keepalive_if_required()
        self._chunk_bytes = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._awaiting = None  # the connection is no longer HTTP's to time
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Refused):
                self._refuse(exc.__context__)
            else:
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
            return
        if self._awaiting == "head":
            # httptools keeps a header until its end: the count stops an endless one early.
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(self._head_too_large())

    # -- parser callbacks -------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._awaiting != "head":  # the first request's head is timed from the connection
            self._head_bytes = 0
            self._await("head")

    def on_headers_complete(self) -> None:
        limits = self.limits
        # Measured only when the bytes read could hold a head that large: a head that arrives
        # in one piece, as most do, costs nothing to check.
        if self._head_bytes + self._chunk_bytes > limits.max_header_bytes and (
            len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            > limits.max_header_bytes
        ):
            raise self._head_too_large()
        if (
            len(self.connections) >= limits.limit_concurrency
            or len(self.tasks) >= limits.limit_concurrency
        ):
            raise _Refused(503, TOO_BUSY)
        self._await("body")
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._since = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._awaiting = None
        super().on_message_complete()

    # -- limits -----------------------------------------------------------------------------------

    def _head_too_large(self) -> _Refused:
        return _Refused(431, HEAD_TOO_LARGE.format(limit=self.limits.max_header_bytes))

    def _refuse(self, refusal: _Refused) -> None:
        """Answer `refusal` and close the connection; the rest of the request is never read."""
        logger.warning("answered %d without reading on: %s", refusal.status, refusal.detail)
        body = orjson.dumps({"detail": refusal.detail})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", uuid.uuid4().hex.encode()),
            (b"connection", b"close"),
        ]
        if refusal.status == 503:
            headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
        fields = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self._awaiting = None
        self._refused = True
        self.transport.write(STATUS_LINE[refusal.status] + fields + b"\r\n" + body)
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _await(self, what: Literal["head", "body"]) -> None:
        self._awaiting = what
        self._since = now = self.loop.time()
        due = now + self._timeout(what)
        # The timer may stay if it looks in time; one set for a longer timeout would look late.
        if self._timer is None or self._timer.when() > due:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(due, self._check)

    def _timeout(self, what: Literal["head", "body"]) -> float:
        return self.limits.header_timeout if what == "head" else self.limits.body_timeout

    def _check(self) -> None:
        """The timer: close a connection whose client stalled; else look again when it could."""
        self._timer = None
        awaiting = self._awaiting
        if awaiting is None or self.transport.is_closing():
            return
        timeout = self._timeout(awaiting)
        left = self._since + timeout - self.loop.time()
        # A body the application has not read yet is not the client's delay (flow control).
        if left <= 0 and not self.flow.read_paused:
            logger.info("closed a connection: no %s within %g s", awaiting, timeout)
            self._awaiting = None
            self.transport.close()
            return
        self._timer = self.loop.call_later(max(left, timeout / 10), self._check)


__all__ = ["Protocol", "limits"]
