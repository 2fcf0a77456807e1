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
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from presenced.api.endpoints import Endpoint
from presenced.api.http import graph_headers, principal_of
from presenced.auth.operations import Operation, Target
from presenced.auth.principal import Principal
from presenced.errors import BadRequest
from presenced.portal_session import current_account, portal_principal
from presenced.services.entities import LoggedChange
from presenced.services.feed import ChangeFeed, Listener
from presenced.services.presence import PresenceView
from presenced.wiring import services_of

MAX_USERS = 650
HEARTBEAT_SECONDS = 15.0
#: How many logged changes a resumption sends at most before going live.
RESUME_LIMIT = 10_000
OVERFLOW = b'event: overflow\ndata: {"message":"The client fell too far behind; reconnect with Last-Event-ID."}\n\n'
#: The last event of every stream when the server shuts down: reconnect (to another process) within a second.
CLOSING = (
    b'retry: 1000\nevent: closing\ndata: {"message":"The server is shutting down; reconnect with Last-Event-ID."}\n\n'
)


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


def _event(request: Request, view: PresenceView) -> bytes:
    context = f"{services_of(request).base_url}/v1.0/$metadata#communications/presences/$entity"
    body: bytes = services_of(request).encoder.one(view, context)
    return b"event: presence\nid: " + f"{view.state.sequence:020d}".encode() + b"\ndata: " + body + b"\n\n"


async def _caller(request: Request) -> Principal:
    """The bearer token's caller; without one, the person signed in to the portal (a browser's EventSource
    cannot send a header). Only this read-only stream takes the cookie, and without CORS no other site can
    read it."""
    if "authorization" not in request.headers:
        account = await current_account(request)
        if account is not None:
            return portal_principal(account)
    return await principal_of(request)


async def stream_presences(request: Request) -> Response:
    principal = await _caller(request)
    ids = _ids(request)
    resume_after = _last_event_id(request)
    presence = services_of(request).presence
    # The same permissions as reading them: this also resolves UPNs and drops unknown users.
    views: list[PresenceView] = (
        [await presence.get_presence(principal, ids[0])]
        if len(ids) == 1
        else await presence.get_presences(principal, ids)
    )
    feed: ChangeFeed = services_of(request).feed
    return StreamingResponse(
        _events(request, principal, views, resume_after, feed),
        media_type="text/event-stream",
        headers={**graph_headers(request), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request, principal: Principal, views: list[PresenceView], resume_after: int | None, feed: ChangeFeed
) -> AsyncIterator[bytes]:
    user_ids = [v.user_id for v in views]
    own = {v.user_id: v.own for v in views}
    async with feed.listen(principal.tenant_id, user_ids) as listener:
        # Listening first, then the starting point: nothing falls between the two.
        yield b"retry: 2000\n\n"
        if resume_after is None:
            for view in views:
                yield _event(request, view)
        else:
            changes = await services_of(request).change_log.changes_since(
                principal.tenant_id, user_ids, resume_after, RESUME_LIMIT
            )
            for change in changes:
                yield _event(request, PresenceView(change.user_id, change.state, own[change.user_id]))
        async for chunk in _live(request, listener, own, feed.closing):
            yield chunk


async def _live(
    request: Request, listener: Listener, own: dict[str, bool], closing: asyncio.Event
) -> AsyncIterator[bytes]:
    """Each change as it comes, a comment every 15 s while none does, until the client goes or falls behind,
    or the server shuts down. Whichever way it ends (the client gone mid-wait included), every wait it
    started is cancelled."""
    overflow = asyncio.ensure_future(listener.overflowed.wait())
    shutdown = asyncio.ensure_future(closing.wait())
    getting: asyncio.Future[LoggedChange] | None = None
    try:
        while True:
            getting = asyncio.ensure_future(listener.queue.get())
            done, _ = await asyncio.wait(
                {getting, overflow, shutdown}, timeout=HEARTBEAT_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            if getting in done:
                change: LoggedChange = getting.result()
                yield _event(request, PresenceView(change.user_id, change.state, own.get(change.user_id, False)))
                continue
            getting.cancel()
            if overflow in done:
                yield OVERFLOW
                return
            if shutdown in done:
                yield CLOSING
                return
            yield b": keep-alive\n\n"
    finally:
        overflow.cancel()
        shutdown.cancel()
        if getting is not None:
            getting.cancel()


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
