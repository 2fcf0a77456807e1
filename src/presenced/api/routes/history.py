"""Presence history and last seen, an extension under ``/_ext`` (docs/graph-api.md, "Presence history and
last seen"): who may read a user's presence may read its history."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from urllib.parse import quote, urlencode

import msgspec
from msgspec import Struct
from starlette.requests import Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.endpoints import Endpoint, on_user
from presenced.api.http import json_response, principal_of
from presenced.auth.operations import Operation
from presenced.domain.sequence import format_sequence
from presenced.errors import BadRequest, ResourceNotFound
from presenced.services.history import PresenceHistory
from presenced.wiring import services_of

DEFAULT_PAGE = 100
MAX_PAGE = 999
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


def _history(request: Request) -> PresenceHistory:
    history = services_of(request).history
    if history is None:
        raise ResourceNotFound("Presence history is not kept by this server.")
    return history


def _instant(value: str, name: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"'{name}' must be an instant such as 2026-03-02T09:00:00Z.") from None
    if instant.tzinfo is None:
        raise BadRequest(f"'{name}' must say its offset, e.g. 2026-03-02T09:00:00Z.")
    return instant


def _after(token: str) -> int:
    try:
        after = int(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        after = -1
    if after < 0:
        raise BadRequest("$skiptoken is not valid: follow @odata.nextLink as it is.")
    return after


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
    top = options.get("$top", str(DEFAULT_PAGE))
    if not top.isdigit() or not 1 <= int(top) <= MAX_PAGE:
        raise BadRequest(f"Invalid page size specified: '{top[:16]}'. Must be between 1 and {MAX_PAGE} inclusive.")
    after = _after(options["$skiptoken"]) if "$skiptoken" in options else 0
    principal = await principal_of(request)
    page = await _history(request).page(principal, request.path_params["id"], start, end, after, int(top))
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
    next_link = None
    if page.next_after is not None:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "$skiptoken"]
        params.append(("$skiptoken", base64.urlsafe_b64encode(str(page.next_after).encode()).decode().rstrip("=")))
        encoded = urlencode(params, quote_via=quote, safe="$:")
        next_link = f"{services_of(request).base_url}{request.url.path}?{encoded}"
    return json_response(request, msgspec.json.encode(HistoryPage(value=entries, nextLink=next_link)))


async def get_last_seen(request: Request) -> Response:
    for name, _ in request.query_params.multi_items():
        raise BadRequest(f"Query option '{name[:64]}' is not supported here.")
    user_id, seen = await _history(request).last_seen(await principal_of(request), request.path_params["id"])
    body = LastSeen(id=user_id, lastSeenDateTime=None if seen is None else wire.graph_datetime(seen))
    return json_response(request, msgspec.json.encode(body))


_NOTE = "An extension of presenced's: Graph has no presence history."
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
        note=_NOTE,
    ),
)
