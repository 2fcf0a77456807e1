"""The presence write actions on /me/presence, /users/{id}/presence and /communications/presences/{id}."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.endpoints import Endpoint, on_user
from presenced.api.http import empty_response, json_body, principal_of
from presenced.auth.operations import Operation
from presenced.auth.principal import Principal
from presenced.errors import BadRequest
from presenced.services.actions import PresenceActions
from presenced.wiring import services_of

#: The three paths every action is bound to, with the operation-id prefix of each.
PREFIXES = (
    ("/me/presence", "me"),
    ("/users/{id}/presence", "users"),
    ("/communications/presences/{id}", "communications"),
)

Call = Callable[[PresenceActions, Principal, str | None, object], Awaitable[None]]


def _action(body_type: type, call: Call, status: int, optional: bool) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        principal = await principal_of(request)
        body: object = await json_body(request, body_type, optional=optional)
        await call(services_of(request).actions, principal, request.path_params.get("id"), body)
        return empty_response(request, status)

    return handler


async def _set_presence(actions: PresenceActions, p: Principal, ref: str | None, b: object) -> None:
    assert isinstance(b, wire.SetPresenceRequest)
    await actions.set_presence(p, ref, b.sessionId, b.availability, b.activity, b.expirationDuration)


async def _clear_presence(actions: PresenceActions, p: Principal, ref: str | None, b: object) -> None:
    assert isinstance(b, wire.ClearPresenceRequest)
    await actions.clear_presence(p, ref, b.sessionId)


async def _set_preferred(actions: PresenceActions, p: Principal, ref: str | None, b: object) -> None:
    assert isinstance(b, wire.SetUserPreferredPresenceRequest)
    await actions.set_preferred_presence(p, ref, b.availability, b.activity, b.expirationDuration)


async def _clear_preferred(actions: PresenceActions, p: Principal, ref: str | None, b: object) -> None:
    await actions.clear_preferred_presence(p, ref)


async def _set_status(actions: PresenceActions, p: Principal, ref: str | None, b: object) -> None:
    assert isinstance(b, wire.SetStatusMessageRequest)
    status = b.statusMessage
    if status is None:
        raise BadRequest("'statusMessage' is required.")
    message = status.message
    if message is None:
        raise BadRequest("'statusMessage.message' is required.")
    expiry = status.expiryDateTime
    await actions.set_status_message(
        p,
        ref,
        message.content,
        message.contentType,
        None if expiry is None else expiry.dateTime,
        None if expiry is None else expiry.timeZone,
        has_expiry=expiry is not None,
    )


def _set_location(layer: str) -> Call:
    async def call(actions: PresenceActions, p: Principal, ref: str | None, b: object) -> None:
        assert isinstance(b, wire.WorkLocationRequest)
        await actions.set_location(p, ref, layer, b.workLocationType, b.placeId)

    return call


async def _clear_automatic(actions: PresenceActions, p: Principal, ref: str | None, b: object) -> None:
    await actions.clear_automatic_location(p, ref)


async def _clear_location(actions: PresenceActions, p: Principal, ref: str | None, b: object) -> None:
    await actions.clear_location(p, ref)


_WRITE = Operation.WRITE_PRESENCE
_LOCATION = Operation.WRITE_LOCATION

#: name, body type, service call, success status, body optional, the operation it asks for, summary
ACTIONS: tuple[tuple[str, type, Call, int, bool, Operation, str], ...] = (
    (
        "setPresence",
        wire.SetPresenceRequest,
        _set_presence,
        200,
        False,
        _WRITE,
        "Create or refresh the calling application's presence session",
    ),
    (
        "clearPresence",
        wire.ClearPresenceRequest,
        _clear_presence,
        200,
        False,
        _WRITE,
        "End the calling application's presence session",
    ),
    (
        "setUserPreferredPresence",
        wire.SetUserPreferredPresenceRequest,
        _set_preferred,
        200,
        False,
        _WRITE,
        "Set the user-preferred presence",
    ),
    (
        "clearUserPreferredPresence",
        wire.EmptyRequest,
        _clear_preferred,
        200,
        True,
        _WRITE,
        "Clear the user-preferred presence",
    ),
    (
        "setStatusMessage",
        wire.SetStatusMessageRequest,
        _set_status,
        200,
        False,
        _WRITE,
        "Set (or, with empty content, clear) the status message",
    ),
    (
        "setAutomaticLocation",
        wire.WorkLocationRequest,
        _set_location("automatic"),
        204,
        False,
        _LOCATION,
        "Set the automatically detected work location",
    ),
    (
        "setManualLocation",
        wire.WorkLocationRequest,
        _set_location("manual"),
        204,
        False,
        _LOCATION,
        "Set the manual work location, which overrides the automatic one",
    ),
    (
        "clearAutomaticLocation",
        wire.EmptyRequest,
        _clear_automatic,
        204,
        True,
        _LOCATION,
        "Clear the automatic work location",
    ),
    (
        "clearLocation",
        wire.EmptyRequest,
        _clear_location,
        204,
        True,
        _LOCATION,
        "Clear the manual and the automatic work location",
    ),
)


#: name -> body type, service call, success status, body optional: for the raw-ASGI fast path.
BY_NAME: dict[str, tuple[type, Call, int, bool]] = {
    name: (body, call, status, optional) for name, body, call, status, optional, _, _ in ACTIONS
}

ENDPOINTS = tuple(
    Endpoint(
        "POST",
        f"{prefix}/{name}",
        _action(body, call, status, optional),
        f"{kind}.{name}",
        summary,
        on_user(prefix, operation),
        request_body=body,
        status=status,
    )
    for prefix, kind in PREFIXES
    for name, body, call, status, optional, operation, summary in ACTIONS
)
