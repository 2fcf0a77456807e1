"""The live presence stream (an extension): Server-Sent Events of presence changes.

``GET /_stream/presences?ids={id},{id}`` (up to 650 users, the permissions of
reading them; a signed-in portal session may call it without a token) first
sends each user's current presence, then every change as it is stored. Each
event is ``event: presence``, ``id:`` the presence's
``sequenceNumber``, and ``data:`` the Graph presence object. With
``Last-Event-ID`` (a browser's EventSource sends it on reconnecting) the stream
starts with the watched users' changes after that sequence number instead.
Sequence numbers rise per user, so a client keeps the highest it has seen for
each user and ignores anything not above it: after a reconnect, changes of the
last moments may come twice, never not at all.

A stream lives as long as what opened it: it ends with ``event: closing`` (its data says why)
when the token expires, when the portal session signs out or expires, or when the server shuts
down (docs/notifications.md, "The live stream (extension)").

What an idle stream holds (docs/notifications.md, "What a stream costs"): once its first events
are sent, presenced's HTTP server hands the stream its connection (``api.http.DETACH``) and
the request's task, parser and ASGI state go. What is left is the connection (the event loop's
transport) and one ``LiveStream``: no task, no queue, no timer. A change is encoded once for every
stream watching its user and the same bytes are written to each connection. Where the server
cannot hand the connection over (another ASGI server), a task relays the stream instead.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from presenced.api.endpoints import Endpoint
from presenced.api.http import DETACH, graph_headers, principal_of
from presenced.auth.operations import Operation, Target
from presenced.auth.principal import Principal
from presenced.domain.sequence import PresenceState
from presenced.errors import BadRequest
from presenced.portal_session import current_session, portal_principal
from presenced.services.entities import LoggedChange
from presenced.services.feed import ChangeFeed, Ending
from presenced.services.ports import ChangeLog
from presenced.services.presence import PresenceView
from presenced.wiring import PresenceEncoding, services_of

MAX_USERS = 650
#: How many logged changes a resumption sends at most before going live.
RESUME_LIMIT = 10_000
#: Bytes a client may leave unread on its connection (beyond what the system's socket buffers hold) before
#: it is cut off with ``event: overflow``, rather than growing without end.
MAX_BEHIND = 512 * 1024
#: The same bound for a relayed stream, in events.
QUEUE_SIZE = 1000
#: How long a stream cut off for falling behind may take to read its last bytes before it is dropped.
ABORT_AFTER = 30.0
RETRY = b"retry: 2000\n\n"
OVERFLOW = b'event: overflow\ndata: {"message":"The client fell too far behind; reconnect with Last-Event-ID."}\n\n'
#: The last event of a stream the server ends, by why: the shutdown's tells a browser to reconnect (to another
#: process) within a second; the others, that the credential it was opened with is no longer good.
CLOSING = {
    Ending.SHUTDOWN: b"retry: 1000\nevent: closing\n"
    b'data: {"reason":"serverShutdown","message":"The server is shutting down; reconnect with Last-Event-ID."}\n\n',
    Ending.TOKEN_EXPIRED: b"event: closing\n"
    b'data: {"reason":"tokenExpired","message":"The access token expired; reconnect with a new token and '
    b'Last-Event-ID."}\n\n',
    Ending.SESSION_EXPIRED: b"event: closing\n"
    b'data: {"reason":"sessionExpired","message":"The portal session expired; sign in again."}\n\n',
    Ending.SIGNED_OUT: b"event: closing\n"
    b'data: {"reason":"signedOut","message":"The portal session was signed out; sign in again."}\n\n',
}
KEEP_ALIVE = b": keep-alive\n\n"
#: The last chunk of a chunked HTTP/1.1 body.
END_OF_BODY = b"0\r\n\r\n"


class Event:
    """One event's bytes, made once for every stream it goes to, and framed once as an HTTP/1.1 chunk."""

    __slots__ = ("_chunk", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._chunk: bytes | None = None

    @property
    def chunk(self) -> bytes:
        if self._chunk is None:
            self._chunk = b"%x\r\n" % len(self.data) + self.data + b"\r\n"
        return self._chunk


_OVERFLOW, _KEEP_ALIVE = Event(OVERFLOW), Event(KEEP_ALIVE)
_CLOSING = {why: Event(data) for why, data in CLOSING.items()}


@cache
def _context(base_url: str) -> str:
    return f"{base_url}/v1.0/$metadata#communications/presences/$entity"


def _event(encoder: PresenceEncoding, context: str, view: PresenceView) -> bytes:
    body = encoder.one(view, context)
    return b"event: presence\nid: " + b"%020d" % view.state.sequence + b"\ndata: " + body + b"\n\n"


class LiveStream:
    """One client's stream, and the feed's listener for it.

    It is first *starting*: the first events are being sent through ASGI, and changes wait in
    ``_pending``. Then either *handed* its connection (each change is written to the transport as it
    comes), or *relayed* (``relay``: a task sends what ``_queue`` holds). Once ended it sends nothing more.
    """

    __slots__ = (
        "_context",
        "_encoder",
        "_ended",
        "_feed",
        "_own",
        "_pending",
        "_queue",
        "_ready",
        "_transport",
        "expires",
        "session",
        "tenant_id",
        "user_ids",
    )

    def __init__(
        self,
        feed: ChangeFeed,
        tenant_id: str,
        user_ids: tuple[str, ...],
        own: str | None,
        expires: datetime | None,
        session: str | None,
        encoder: PresenceEncoding,
        context: str,
    ) -> None:
        self.tenant_id = tenant_id
        self.user_ids = user_ids
        self.expires = expires
        self.session = session
        self._feed = feed
        #: The watched user who is the caller (who sees their own presence's details), if any.
        self._own = own
        self._encoder = encoder
        self._context = context
        self._pending: list[Event] | None = []
        self._transport: asyncio.Transport | None = None
        self._queue: deque[bytes | None] | None = None
        self._ready: asyncio.Event | None = None
        self._ended = False

    def encode(self, user_id: str, state: PresenceState) -> bytes:
        """The event of one user's presence, as this stream's caller sees it."""
        return _event(self._encoder, self._context, PresenceView(user_id, state, user_id == self._own))

    # ---- the feed's listener ----

    def push(self, change: LoggedChange, memo: dict[Any, Any]) -> None:
        own = change.user_id == self._own
        key = (own, self._context)
        event = memo.get(key)
        if event is None:
            view = PresenceView(change.user_id, change.state, own)
            event = memo[key] = Event(_event(self._encoder, self._context, view))
        self._send(event)

    def keep_alive(self) -> None:
        self._send(_KEEP_ALIVE)

    def end(self, why: Ending) -> None:
        self._finish(_CLOSING[why])

    # ---- writing ----

    def _send(self, event: Event) -> None:
        if self._ended:
            return
        transport = self._transport
        if transport is not None:
            if transport.get_write_buffer_size() > MAX_BEHIND:
                self._overflow()
            else:
                transport.write(event.chunk)
        elif self._queue is not None:
            if len(self._queue) >= QUEUE_SIZE:
                self._overflow()
            else:
                self._queue.append(event.data)
                assert self._ready is not None
                self._ready.set()
        elif self._pending is not None:
            if len(self._pending) >= QUEUE_SIZE:
                self._overflow()
            else:
                self._pending.append(event)

    def _overflow(self) -> None:
        self._feed.detach(self)
        transport = self._transport
        self._finish(_OVERFLOW)
        if transport is not None:  # a client that reads nothing more must not keep its connection for ever
            asyncio.get_running_loop().call_later(ABORT_AFTER, transport.abort)

    def _finish(self, last: Event) -> None:
        """Send ``last`` and end the stream."""
        if self._ended:
            return
        self._ended = True
        if self._transport is not None:
            self._transport.write(last.chunk + END_OF_BODY)
            self._transport.close()
        elif self._queue is not None:
            assert self._ready is not None
            self._queue.extend((last.data, None))
            self._ready.set()
        elif self._pending is not None:
            self._pending.append(last)

    # ---- the connection ----

    def take(self, transport: asyncio.Transport) -> None:
        """The server has handed over the connection: write what waited, then each change as it comes."""
        pending, self._pending = self._pending or [], None
        waiting = b"".join(event.chunk for event in pending)
        if self._ended:
            transport.write(waiting + END_OF_BODY)
            transport.close()
            return
        self._transport = transport
        if waiting:
            transport.write(waiting)

    def connection_lost(self, exc: Exception | None) -> None:
        """The client went (or the stream ended and its connection closed)."""
        self._ended = True
        self._transport = None
        self._feed.detach(self)

    async def relay(self, receive: Any, send: Any) -> None:
        """Without the connection: send what comes through ASGI until the stream ends or the client goes."""
        pending, self._pending = self._pending or [], None
        self._queue = deque(event.data for event in pending)
        if self._ended:
            self._queue.append(None)
        self._ready = asyncio.Event()
        gone = asyncio.ensure_future(_disconnected(receive))
        ready: asyncio.Future[Any] | None = None
        finished = False
        try:
            while True:
                while self._queue:
                    data = self._queue.popleft()
                    if data is None:
                        finished = True
                        return
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                ready = asyncio.ensure_future(self._ready.wait())
                await asyncio.wait({ready, gone}, return_when=asyncio.FIRST_COMPLETED)
                if gone.done():
                    return
                self._ready.clear()
        finally:
            self._ended = True
            self._feed.detach(self)
            gone.cancel()
            if ready is not None:
                ready.cancel()
            if finished:
                await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class StreamResponse(Response):
    """The stream's answer: 200 and the first events through ASGI, then the connection handed to the stream (or
    the stream relayed)."""

    def __init__(
        self,
        request: Request,
        stream: LiveStream,
        views: list[PresenceView],
        resume_after: int | None,
        change_log: ChangeLog,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.media_type = "text/event-stream"
        self.init_headers({**graph_headers(request), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._stream = stream
        self._views = views
        self._resume_after = resume_after
        self._change_log = change_log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        stream, feed = self._stream, self._stream._feed
        # Listening first, then the starting point: nothing falls between the two.
        await feed.attach(stream)
        try:
            first = [RETRY]
            if self._resume_after is None:
                first += [stream.encode(view.user_id, view.state) for view in self._views]
            else:
                changes = await self._change_log.changes_since(
                    stream.tenant_id, list(stream.user_ids), self._resume_after, RESUME_LIMIT
                )
                first += [stream.encode(change.user_id, change.state) for change in changes]
            self._views = []
            await send({"type": "http.response.body", "body": b"".join(first), "more_body": True})
        except BaseException:
            feed.detach(stream)
            raise
        detach = scope.get("extensions", {}).get(DETACH)
        transport = detach(stream) if detach is not None else None
        if transport is not None:
            stream.take(transport)
            return
        await stream.relay(receive, send)


async def _caller(request: Request) -> tuple[Principal, datetime | None, str | None]:
    """The bearer token's caller and when the token expires; without one, the person signed in to the portal
    (a browser's EventSource cannot send a header), when their session expires, and the session's key. Only
    this read-only stream takes the cookie, and without CORS no other site can read it."""
    if "authorization" not in request.headers:
        session = await current_session(request)
        if session is not None:
            return portal_principal(session.account), session.expires, session.key
    principal = await principal_of(request)
    return principal, principal.expires_at, None


def _ids(request: Request) -> list[str]:
    raw = request.query_params.get("ids", "")
    ids = list(dict.fromkeys(i.strip() for i in raw.split(",") if i.strip()))
    if not ids:
        raise BadRequest("ids must list the users to watch, comma-separated (object ids or UPNs).")
    if len(ids) > MAX_USERS:
        raise BadRequest(f"ids may name at most {MAX_USERS} users, not {len(ids)}.")
    return ids


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id")
    if raw is None or not raw.strip():
        return None
    if not raw.strip().isdigit() or len(raw.strip()) > 20:
        raise BadRequest("Last-Event-ID must be a sequenceNumber sent by this stream.")
    return int(raw.strip())


async def stream_presences(request: Request) -> Response:
    principal, expires, session = await _caller(request)
    ids = _ids(request)
    resume_after = _last_event_id(request)
    services = services_of(request)
    # The same permissions as reading them: this also resolves UPNs and drops unknown users.
    views: list[PresenceView] = (
        [await services.presence.get_presence(principal, ids[0])]
        if len(ids) == 1
        else await services.presence.get_presences(principal, ids)
    )
    stream = LiveStream(
        services.feed,
        principal.tenant_id,
        tuple(v.user_id for v in views),
        next((v.user_id for v in views if v.own), None),
        expires,
        session,
        services.encoder,
        _context(services.base_url),
    )
    return StreamResponse(request, stream, views, resume_after, services.change_log)


#: As reading the users' presence: one user (perhaps the caller), or many.
_PERMISSION = (
    (Operation.READ_PRESENCE, Target.OWN),
    (Operation.READ_PRESENCE, Target.OTHER),
    (Operation.READ_PRESENCES, Target.ANY),
)
_NOTE = "Without a token, the person signed in to the portal (its session cookie) may call it."

ENDPOINTS = (
    Endpoint(
        "GET",
        "/_stream/presences",
        stream_presences,
        "stream.presences",
        "Server-Sent Events of the users' presence changes (an extension); resumable with Last-Event-ID",
        _PERMISSION,
        query=("ids",),
        versioned=False,
        note=_NOTE,
    ),
)
