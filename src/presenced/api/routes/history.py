"""Presence history and last seen, an extension under ``/_ext`` (docs/graph-api.md, "Presence history and
last seen"): who may read a user's presence may read its history.

A presence read's ``$select`` names ``lastSeenDateTime`` for the same instant (``routes.graph``)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from msgspec import Struct
from starlette.requests import Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.endpoints import Endpoint, on_user
from presenced.api.http import json_response, next_link, page_size, principal_of, skiptoken, skiptoken_position
from presenced.auth.operations import Operation
from presenced.domain.sequence import format_sequence
from presenced.errors import BadRequest
from presenced.wiring import services_of

_OPTIONS = frozenset({"from", "to", "$top", "$skiptoken"})


class HistoryEntry(Struct, kw_only=True):
    availability: str
    activity: str
    sequenceNumber: str
    dateTime: str
    #: What made the change: the write's action (setPresence, …) or ``timer`` (time alone).
    cause: str


class HistoryPage(Struct, kw_only=True, omit_defaults=True):
    value: list[HistoryEntry]
    nextLink: str | None = msgspec.field(default=None, name="@odata.nextLink")


class LastSeen(Struct, kw_only=True):
    id: str
    lastSeenDateTime: str | None


def _instant(value: str, name: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"'{name}' must be an instant such as 2026-03-02T09:00:00Z.") from None
    if instant.tzinfo is None:
        raise BadRequest(f"'{name}' must say its offset, e.g. 2026-03-02T09:00:00Z.")
    return instant


async def get_history(request: Request) -> Response:
    options: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in _OPTIONS:
            raise BadRequest(f"Query option '{name[:64]}' is not supported here; use from, to and $top.")
        options[name] = value
    start = _instant(options["from"], "from") if "from" in options else None
    end = _instant(options["to"], "to") if "to" in options else None
    if start is not None and end is not None and end <= start:
        raise BadRequest("'to' must be later than 'from'.")
    top = page_size(options.get("$top"))
    after = skiptoken_position(options["$skiptoken"], int) if "$skiptoken" in options else 0
    if after < 0:
        raise BadRequest("$skiptoken is not valid for this query: follow @odata.nextLink as it is.")
    principal = await principal_of(request)
    page = await services_of(request).history.page(principal, request.path_params["id"], start, end, after, top)
    entries = [
        HistoryEntry(
            availability=c.state.visible.availability.value,
            activity=c.state.visible.activity.value,
            sequenceNumber=format_sequence(c.state.sequence),
            dateTime=wire.graph_datetime(c.state.changed_at),
            cause=c.cause,
        )
        for c in page.changes
    ]
    link = (
        None
        if page.next_after is None
        else next_link(request, services_of(request).base_url, skiptoken(page.next_after))
    )
    return json_response(request, msgspec.json.encode(HistoryPage(value=entries, nextLink=link)))


async def get_last_seen(request: Request) -> Response:
    for name, _ in request.query_params.multi_items():
        raise BadRequest(f"Query option '{name[:64]}' is not supported here.")
    user_id, seen = await services_of(request).history.last_seen(await principal_of(request), request.path_params["id"])
    body = LastSeen(id=user_id, lastSeenDateTime=None if seen is None else wire.graph_datetime(seen))
    return json_response(request, msgspec.json.encode(body))


_NOTE = "Graph has no presence history."
_READ = on_user("/users/{id}/presence", Operation.READ_PRESENCE)

ENDPOINTS = (
    Endpoint(
        "GET",
        "/_ext/users/{id}/presence/history",
        get_history,
        "ext.presenceHistory",
        "A user's presence changes, oldest first, a page at a time (extension)",
        _READ,
        response_body=HistoryPage,
        query=("from", "to", "$top", "$skiptoken"),
        versioned=False,
        note=_NOTE,
    ),
    Endpoint(
        "GET",
        "/_ext/users/{id}/presence/lastSeen",
        get_last_seen,
        "ext.lastSeen",
        "The last time a user's presence was not Offline (extension)",
        _READ,
        response_body=LastSeen,
        versioned=False,
        note=f"{_NOTE} A presence read gives it too with $select=...,lastSeenDateTime.",
    ),
)
