"""The HTTP server's own bounds, checked while a request is read, before the application sees it
(docs/configuration.md, "Request limits").

uvicorn's HTTP protocol (httptools) reads headers of any size and number and waits for them as long
as a client likes. ``bounded_protocol`` returns it with limits: bytes of one header line and of the
whole request head, the number of headers (431), the time to send the head and then the body (408),
and open connections per process (503 with ``Retry-After``). Each refusal is Graph's error body,
sent with ``Connection: close``; the connection then reads and drops what the client is still
sending for a moment, so the client can read the answer rather than a reset.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from collections.abc import Callable
from http import HTTPStatus
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from presenced.api.http import DETACH, JSON_TYPE, error_parts, new_request_id
from presenced.config import Settings
from presenced.errors import PresencedError, RequestHeaderFieldsTooLarge, RequestTimeout, ServiceUnavailable
from presenced.logs import warn_occasionally

log = logging.getLogger("presenced.http")

#: How long, once the server stops, a connection between requests may still bring one in.
SHUTDOWN_GRACE = 1.0
#: How long a refused connection drains what its client still sends before it closes.
LINGER_SECONDS = 2.0


def bounded_protocol(settings: Settings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the request limits of ``settings``."""

    class Bounded(_BoundedProtocol):
        limits = settings
        handed = _Handed()

    return Bounded


class _Handed:
    """How many connections of one server were handed over to the responses they carry (``DETACH``): they
    count towards the connection limit, though uvicorn no longer knows them."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class _HandedOver(asyncio.Protocol):
    """A connection whose response took it over: what the client sends is dropped (a stream's client has
    nothing more to say), and its going is passed on to the response's owner."""

    __slots__ = ("_handed", "_owner")

    def __init__(self, owner: Any, handed: _Handed) -> None:
        self._owner = owner
        self._handed = handed
        handed.count += 1

    def data_received(self, data: bytes) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._handed.count -= 1
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.connection_lost(exc)


class _BoundedProtocol(HttpToolsProtocol):
    limits: Settings
    handed: _Handed
    #: The head's or the body's deadline, while one runs. Armed only once a read ends with a head or a body
    #: incomplete: a request that arrives whole (the usual case) costs no timer.
    _timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._refusal: PresencedError | None = None
        self._refused = False
        #: The server is stopping: the next request is the last (``shutdown``).
        self._stopping = False
        self._grace: asyncio.TimerHandle | None = None
        #: Bytes received since the current request's head began, while it is being read.
        self._head_received = 0
        self._reading_head = True
        self._reading_body = False
        self._header_count = 0
        # A connection that sends nothing at all is closed when this runs out.
        self._arm(self.limits.header_timeout, self._head_too_slow)
        #: Over the connection limit: the request is read, then answered 503.
        self._over_limit = len(self.connections) + self.handed.count > self.limits.max_connections

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._grace is not None:
            self._grace.cancel()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The server is stopping. A connection with a request in flight answers it, then closes. One between
        requests may still bring one (a new connection's first request may be on its way) for
        ``SHUTDOWN_GRACE``: it is answered, with ``Connection: close``; then the connection is dropped (an
        idle TLS connection would otherwise wait for its client to answer the TLS close)."""
        if self.cycle is None or self.cycle.response_complete:
            self._stopping = True
            self._grace = asyncio.get_running_loop().call_later(SHUTDOWN_GRACE, self._end_idle)
        else:
            super().shutdown()

    def _end_idle(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.abort()
        else:
            self.cycle.keep_alive = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # draining: the answer is sent
        if self._reading_head:
            self._head_received += len(data)
        super().data_received(data)
        if self._refused:
            return
        if self._refusal is None and self._reading_head and self._head_received > self.limits.max_head_bytes:
            self._refusal = RequestHeaderFieldsTooLarge(
                f"The request's headers exceed {self.limits.max_head_bytes} bytes in all."
            )
        if self._refusal is not None:
            self._refuse(self._refusal)
        elif self._timer is None and self._reading_body:
            self._arm(self.limits.body_timeout, self._body_too_slow)
        elif self._timer is None and self._head_received:
            self._arm(self.limits.header_timeout, self._head_too_slow)

    # ---- parser callbacks ----

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        if self._refusal is None:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refusal is not None:
            return
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refusal = RequestHeaderFieldsTooLarge(f"The request has more than {self.limits.max_headers} headers.")
        elif len(name) + len(value) + 4 > self.limits.max_header_bytes:
            shown = name.decode("latin-1")[:64]
            self._refusal = RequestHeaderFieldsTooLarge(
                f"The header '{shown}' exceeds {self.limits.max_header_bytes} bytes."
            )
        else:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        if self._refusal is not None:
            return
        if self._over_limit:
            warn_occasionally(log, "connections", f"over {self.limits.max_connections} connections: answering 503")
            limit = self.limits.max_connections
            self._refuse(
                ServiceUnavailable(f"The server is at its limit of {limit} connections; try again shortly.", 1)
            )
            return
        self._reading_head, self._reading_body = False, True
        self.scope["extensions"] = {DETACH: self._detach}  # type: ignore[dict-item]  # an extension of ours
        super().on_headers_complete()
        if self._stopping and self.cycle is not None:  # the last request of a server that is stopping
            self.cycle.keep_alive = False

    def on_body(self, body: bytes) -> None:
        if self._refusal is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refusal is not None:
            return
        self._disarm()
        self._reading_head, self._reading_body = True, False
        self._head_received = 0
        super().on_message_complete()

    # ---- handing the connection over ----

    def _detach(self, owner: Any) -> asyncio.Transport | None:
        """Hand the connection to the response in progress (``api.http.DETACH``): its head and the body so far
        are written, chunked; the application then returns without finishing, the connection leaves uvicorn
        (no task, parser or request state is kept for it) and ``owner.connection_lost`` is called when it goes.
        None, and nothing changes, unless the response is a chunked one in progress on a connection still open.
        """
        cycle = self.cycle
        if (
            cycle is None
            or not cycle.response_started
            or cycle.response_complete
            or cycle.disconnected
            or not cycle.chunked_encoding
            or self.pipeline
            or self.transport.is_closing()
        ):
            return None
        # uvicorn then takes the response for finished: it neither closes the connection nor reuses it.
        cycle.response_complete = True
        self._disarm()
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self._unset_keepalive_if_required()
        self.connections.discard(self)
        transport = self.transport
        transport.set_protocol(_HandedOver(owner, self.handed))
        self.flow.resume_reading()  # so that the client's going is noticed
        # Nothing refers back to this protocol any more: it is freed now, not at the next full collection.
        self.parser = None  # type: ignore[assignment]
        self.cycle = None  # type: ignore[assignment]
        self.scope = None  # type: ignore[assignment]
        self.headers = None  # type: ignore[assignment]
        return transport

    # ---- timers and refusals ----

    def _arm(self, seconds: float, handler: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, handler)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_too_slow(self) -> None:
        self._timer = None
        if self._refused or self.transport.is_closing():
            return
        if self._head_received == 0 and (self.cycle is None or self.cycle.response_complete):
            # A connection that never began a request (or an idle one between requests): just close it.
            self.transport.close()
            return
        warn_occasionally(log, "head-timeout", "a client did not send its request headers in time: answering 408")
        self._refuse(RequestTimeout(f"The request's headers did not arrive within {self.limits.header_timeout} s."))

    def _body_too_slow(self) -> None:
        self._timer = None
        if self._refused or self.transport.is_closing():
            return
        warn_occasionally(log, "body-timeout", "a client did not send its request body in time: answering 408")
        self._refuse(RequestTimeout(f"The request's body did not arrive within {self.limits.body_timeout} s."))

    def _refuse(self, error: PresencedError) -> None:
        """Answer ``error`` in Graph's body, close the writing side, and drain for a moment before closing."""
        self._refused = True
        self._disarm()
        if error.status == 431:
            warn_occasionally(log, "headers", f"refused a request's headers: {error.message}")
        if self.cycle is not None and not self.cycle.response_complete:
            # The application (waiting for a body that will not come) must not answer as well.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        request_id = new_request_id()
        client = next(
            (v.decode("latin-1")[:128] for n, v in (self.headers or ()) if n == b"client-request-id"), request_id
        )
        headers, body = error_parts(error, request_id, client)
        head = [f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        fields = {**headers, "Content-Type": JSON_TYPE, "Content-Length": str(len(body)), "Connection": "close"}
        head += [f"{name}: {value}\r\n".encode("latin-1") for name, value in fields.items()]
        self.transport.write(b"".join(head) + b"\r\n" + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which on SIGTERM or SIGINT also calls ``on_exit`` (in the event loop: it ends the
    live streams) and remembers when, so that the work after it can keep to the shutdown timeout."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self._exiting_since: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._exiting_since is None:
            self._exiting_since = time.monotonic()
            self._loop.call_soon_threadsafe(self._on_exit)
        super().handle_exit(sig, frame)

    def time_left(self, timeout: float) -> float:
        """Seconds left of ``timeout`` since the signal (all of it when there was none)."""
        if self._exiting_since is None:
            return timeout
        return max(timeout - (time.monotonic() - self._exiting_since), 0.0)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn raises the signal again once it has stopped; a handler of our own, in place of the default
        # one, lets the process finish its shutdown (deliveries, connections) and exit normally.
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
        try:
            await super().serve(sockets)
        finally:
            signal.signal(signal.SIGTERM, previous)
