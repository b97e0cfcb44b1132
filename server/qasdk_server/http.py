"""The HTTP connection: how large a request's head may be and how long it may take.

uvicorn's httptools protocol (what ``http="auto"`` picks, uvicorn[standard]
installs httptools) bounds neither: httptools collects a header of any size (a
50 MB header was answered 200), and no timer runs while a request is read, so a client
that sends a byte every few seconds (slowloris) holds a connection as long as it
likes. uvicorn's options do not cover it: ``h11_max_incomplete_event_size`` is
read by the (pure-Python, slower) h11 protocol only, ``timeout_keep_alive`` runs
only between requests. This subclass of the httptools protocol adds:

- ``limits.request_headers``: bytes of the URL and the headers (names and
  values) together, else 431;
- ``limits.request_timeout``: seconds to send them (counted from the connection's
  start or the request's first byte), then as long again for the body, else 408.
  A slow *answer* is not limited: the clock stops once the request is in.

The answer is the API's JSON error body. The connection is then half-closed and
what the client still sends is discarded for a moment, so it reads the answer
instead of a reset. Limits are read for each request: a reload applies them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import chain
from typing import Any, Literal

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from qasdk.config import LimitsConfig
from qasdk_server.errors import ErrorBody, ErrorDetail

__all__ = ["LimitedHttpProtocol", "protocol_for"]

#: Seconds a refused connection stays open so the client can read why.
LINGER = 2.0

_Reading = Literal["head", "body", "idle", "refused"]


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size limit on heads and a deadline on requests."""

    @staticmethod
    def current_limits() -> LimitsConfig:
        """The limits in force (the running configuration's: see :func:`protocol_for`)."""
        return LimitsConfig()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = self.current_limits()
        self._reading: _Reading = "head"
        self._unparsed = 0  # bytes read while a head was incomplete
        self._due: float | None = None  # loop time the request must be in by, if reading one
        self._timer: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None

    # -- the connection ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_clock()  # a connection that sends nothing is a slow client too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        for timer in (self._timer, self._linger):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading == "refused":
            return
        if self._reading == "idle":  # the first bytes of the next request
            self._next_request()
        super().data_received(data)
        if self._reading == "head" and not self.transport.is_closing():
            # A header still arriving is collected whole by httptools: count what came so far.
            self._unparsed += len(data)
            if self._unparsed > self._limits.request_headers:
                self._too_large()

    def _next_request(self) -> None:
        self._limits = self.current_limits()
        self._reading, self._unparsed = "head", 0
        self._start_clock()

    # -- parser callbacks: once refused, the rest of what was read is ignored ----------

    def on_message_begin(self) -> None:
        if self._reading == "refused":
            return
        if self._reading == "idle":  # pipelined: this request began in the last one's read
            self._next_request()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        if self._reading == "refused":
            return
        # Measured once the head is parsed (a callback per header would slow every request).
        names_and_values = sum(map(len, chain.from_iterable(self.headers)))
        size = len(self.url) + names_and_values + 4 * len(self.headers)  # ": ", CRLF
        if size > self._limits.request_headers:
            self._too_large()
            return
        self._reading = "body"
        self._start_clock()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._reading != "refused":
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._reading == "refused":
            return
        self._reading = "idle"
        self._stop_clock()
        super().on_message_complete()

    # -- the limits ----------------------------------------------------------------------

    def _too_large(self) -> None:
        self._refuse(
            431,
            "headers_too_large",
            f"the request line and headers are larger than "
            f"{self._limits.request_headers} bytes (limits.request_headers)",
        )

    # One timer per connection, moved lazily: starting and stopping the clock for each
    # request only sets ``_due`` (timers per request cost more than the rest of this class).

    def _start_clock(self) -> None:
        self._due = self.loop.time() + self._limits.request_timeout
        if self._timer is None:
            self._timer = self.loop.call_at(self._due, self._check_clock)

    def _stop_clock(self) -> None:
        self._due = None

    def _check_clock(self) -> None:
        self._timer = None
        if self._due is None or self.transport.is_closing():
            return  # stopped: the next request starts it again
        if self.loop.time() < self._due:
            self._timer = self.loop.call_at(self._due, self._check_clock)
            return
        self._due = None
        if self._reading == "body" and self.flow.read_paused:
            self._start_clock()  # the application is not reading yet: not the client's fault
            return
        part = "headers" if self._reading == "head" else "body"
        self._refuse(
            408,
            "request_timeout",
            f"the request's {part} took longer than {self._limits.request_timeout:g} s "
            "to arrive (limits.request_timeout)",
        )

    # -- refusing --------------------------------------------------------------------

    def _refuse(self, status: int, kind: str, message: str) -> None:
        """Answer ``status`` unless another answer is under way; close the connection."""
        reading, self._reading = self._reading, "refused"
        self._stop_clock()
        self.headers = []  # what the parser still reads lands here, not in a request's scope
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if reading == "head":  # ``cycle`` is the previous request's, if any
            busy = cycle is not None and not cycle.response_complete
            answer = not busy
        else:  # ``cycle`` is this request's; its handler may be waiting for the body
            assert cycle is not None
            busy = cycle.response_started and not cycle.response_complete
            answer = not cycle.response_started
        if busy:
            assert cycle is not None
            cycle.keep_alive = False  # close once the answer under way is sent
            return
        if answer:
            if cycle is not None and reading == "body":
                cycle.disconnected = True  # the handler gets a disconnect; its answer is dropped
                cycle.message_event.set()
            self.transport.write(self._answer(status, kind, message))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = self.loop.call_later(LINGER, self.transport.close)

    def _answer(self, status: int, kind: str, message: str) -> bytes:
        body = msgspec.json.encode(ErrorBody(ErrorDetail(kind, message)))
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        return b"".join(head) + body


def protocol_for(limits: Callable[[], LimitsConfig]) -> type[LimitedHttpProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, reading ``limits()``."""

    class Protocol(LimitedHttpProtocol):
        current_limits = staticmethod(limits)

    return Protocol
