"""Graph presence endpoints: parse the request, call the service, render the answer.

A single presence read's ``$select`` may also name ``lastSeenDateTime``, an extension (docs/graph-api.md,
"Presence history and last seen"): the answer then carries it after the selected Graph properties.
Without it, the body is Graph's, unchanged.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.endpoints import Endpoint, on_user
from presenced.api.http import json_body, json_response, principal_of, select_option
from presenced.auth.operations import Operation, Target
from presenced.auth.principal import Principal
from presenced.wiring import Services, services_of

#: The extension property a single presence read's ``$select`` may name (``services.history.last_seen``).
LAST_SEEN = "lastSeenDateTime"
#: What a single presence read's ``$select`` may name.
SINGLE_SELECT = wire.PRESENCE_PROPERTIES | {LAST_SEEN}
#: getPresencesByUserId stays as Graph has it: its ``$select`` takes Graph's properties only.
_NOT_ON_COLLECTION = {
    LAST_SEEN: f"'{LAST_SEEN}' (an extension of presenced's) can be selected on a single presence read only "
    "(GET /users/{id}/presence), not on getPresencesByUserId."
}


def _metadata(state: Services, version: str) -> str:
    return f"{state.base_url}/{version}/$metadata#"


def _entity(path: str, selected: tuple[str, ...] | None) -> str:
    return f"{path}({','.join(selected)})/$entity" if selected else f"{path}/$entity"


async def presence_body(
    state: Services, version: str, kind: str, ref: str, principal: Principal, selected: tuple[str, ...] | None
) -> bytes:
    """The body of a single presence read; ``kind`` is ``me``, ``users`` or ``communications``.

    Shared by the Starlette routes and the raw-ASGI fast path (``presenced.api.fastpath``), which reads
    without a query string (``selected`` None): ``lastSeenDateTime`` is only ever asked for here by a route.
    """
    service = state.presence
    view = await (service.get_my_presence(principal) if kind == "me" else service.get_presence(principal, ref))
    if kind == "communications":
        context = _metadata(state, version) + _entity("communications/presences", selected)
    else:
        context = _metadata(state, version) + _entity(f"users('{view.user_id}')/presence", selected)
    if selected is None:
        encoded: bytes = state.encoder.one(view, context)
        return encoded
    body = wire.select(wire.presence(view, context), selected)
    if LAST_SEEN in selected:
        # Read as the presence was (the same caller, the same permission), for the user it turned out to be.
        _, seen = await state.history.last_seen(principal, view.user_id)
        body[LAST_SEEN] = None if seen is None else wire.graph_datetime(seen)
    return wire.encode(body)


async def _single(request: Request, kind: str) -> Response:
    selected = select_option(request, SINGLE_SELECT)
    version = request.scope["path"].split("/", 2)[1]
    ref = request.path_params.get("id", "")
    body = await presence_body(services_of(request), version, kind, ref, await principal_of(request), selected)
    return json_response(request, body)


async def get_my_presence(request: Request) -> Response:
    return await _single(request, "me")


async def get_user_presence(request: Request) -> Response:
    return await _single(request, "users")


async def get_communications_presence(request: Request) -> Response:
    return await _single(request, "communications")


async def get_presences_by_user_id(request: Request) -> Response:
    selected = select_option(request, wire.PRESENCE_PROPERTIES, _NOT_ON_COLLECTION)
    principal = await principal_of(request)
    body = await json_body(request, wire.GetPresencesByUserIdRequest)
    views = await services_of(request).presence.get_presences(principal, body.ids)
    version = request.scope["path"].split("/", 2)[1]
    context = _metadata(services_of(request), version) + "Collection(microsoft.graph.presence)"
    if selected is None:
        return json_response(request, services_of(request).encoder.collection(views, context))
    items = [wire.select(wire.presence(view), selected) for view in views]
    return json_response(request, wire.encode({"@odata.context": context, "value": items}))


ENDPOINTS = (
    Endpoint(
        "GET",
        "/me/presence",
        get_my_presence,
        "me.getPresence",
        "Get the signed-in user's presence",
        on_user("/me/presence", Operation.READ_PRESENCE),
        response_body=wire.Presence,
        query=("$select",),
        select_extensions=(LAST_SEEN,),
    ),
    Endpoint(
        "GET",
        "/users/{id}/presence",
        get_user_presence,
        "users.getPresence",
        "Get a user's presence (id = object id or userPrincipalName)",
        on_user("/users/{id}/presence", Operation.READ_PRESENCE),
        response_body=wire.Presence,
        query=("$select",),
        select_extensions=(LAST_SEEN,),
    ),
    Endpoint(
        "GET",
        "/communications/presences/{id}",
        get_communications_presence,
        "communications.getPresence",
        "Get a user's presence (id = object id or userPrincipalName)",
        on_user("/communications/presences/{id}", Operation.READ_PRESENCE),
        response_body=wire.Presence,
        query=("$select",),
        select_extensions=(LAST_SEEN,),
    ),
    Endpoint(
        "POST",
        "/communications/getPresencesByUserId",
        get_presences_by_user_id,
        "communications.getPresencesByUserId",
        "Get the presence of up to 650 users; ids that match no user of the tenant are left out",
        ((Operation.READ_PRESENCES, Target.ANY),),
        request_body=wire.GetPresencesByUserIdRequest,
        response_body=wire.PresenceCollection,
        query=("$select",),
    ),
)
