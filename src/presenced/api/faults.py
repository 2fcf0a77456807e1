"""The emulator's fault injection at the door: a matching Graph request is answered late, or with the
status its rule names and Graph's error body, and then does nothing (docs/emulator.md, "Faults");
and the ``/_emulator/faults`` routes that set the rules."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from msgspec import Struct
from starlette.requests import Request
from starlette.responses import Response

from presenced.api.endpoints import VERSIONS, Endpoint
from presenced.api.http import (
    bearer_token,
    empty_response,
    error_parts,
    json_body,
    json_response,
    new_request_id,
    send_answer,
)
from presenced.errors import PresencedError, ResourceNotFound
from presenced.services.entities import FaultRule
from presenced.services.faults import FaultFields, Faults, rule_from_fields
from presenced.wiring import Services, services_of

#: Graph's code for each status a rule may answer with.
_CODES = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
_MESSAGES = {
    429: "Too many requests.",
    500: "An internal server error occurred.",
    502: "Bad gateway.",
    503: "The service is temporarily unavailable.",
    504: "The gateway timed out.",
}
_USER_SEGMENTS = frozenset({"users", "presences"})


class FaultBody(Struct, kw_only=True, omit_defaults=True):
    id: str
    path: str | None = None
    method: str | None = None
    appId: str | None = None
    userId: str | None = None
    status: int | None = None
    retryAfter: int | None = None
    latencyMs: int | None = None
    #: What is left of ``count``.
    remaining: int | None = None
    probability: float | None = None
    seed: int | None = None
    action: str | None = None
    subscriptionId: str | None = None
    notificationUrl: str | None = None
    delayMs: int | None = None
    windowMs: int | None = None
    fired: int


class FaultList(Struct):
    value: list[FaultBody]


class LifecycleInput(Struct, kw_only=True, forbid_unknown_fields=True):
    event: str


class LifecycleQueued(Struct, kw_only=True):
    subscriptionId: str
    event: str


def fault_body(rule: FaultRule) -> FaultBody:
    return FaultBody(
        id=rule.id,
        path=rule.path,
        method=rule.method,
        appId=rule.app_id,
        userId=rule.user_id,
        status=rule.status,
        retryAfter=rule.retry_after,
        latencyMs=rule.latency_ms,
        remaining=rule.count,
        probability=rule.probability,
        seed=rule.seed,
        action=rule.action,
        subscriptionId=rule.subscription_id,
        notificationUrl=rule.notification_url,
        delayMs=rule.delay_ms,
        windowMs=rule.window_ms,
        fired=rule.fired,
    )


class _Injected(PresencedError):
    def __init__(self, status: int) -> None:
        super().__init__(_MESSAGES[status], status=status, code=_CODES[status])


class FaultInjection:
    """ASGI: applies the rules to Graph requests (``/v1.0``, ``/beta``) before anything else sees them."""

    def __init__(self, app: Any, state: Services, faults: Faults) -> None:
        self.app = app
        self._state = state
        self._faults = faults

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self._faults.active:
            await self.app(scope, receive, send)
            return
        version, _, rest = scope["path"].lstrip("/").partition("/")
        if version not in VERSIONS:
            await self.app(scope, receive, send)
            return
        app_id, user_ids = await self._caller(scope)
        parts = rest.split("/")
        user_ids |= {parts[i + 1].lower() for i, p in enumerate(parts[:-1]) if p in _USER_SEGMENTS and parts[i + 1]}
        rule = await self._faults.meet(scope["method"], "/" + rest, app_id, frozenset(user_ids))
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        if rule.status is None:
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        client = next((bytes(v) for k, v in scope["headers"] if k == b"client-request-id"), None)
        headers, body = error_parts(
            _Injected(rule.status), request_id, client[:128].decode("latin-1") if client else request_id
        )
        if rule.retry_after is not None:
            headers["Retry-After"] = str(rule.retry_after)
        await send_answer(send, rule.status, headers, body)

    async def _caller(self, scope: Any) -> tuple[str | None, set[str]]:
        """The token's application and signed-in user, if it carries a good token; no request is refused here."""
        header = next((bytes(v) for k, v in scope["headers"] if k == b"authorization"), None)
        if header is None:
            return None, set()
        try:
            principal = await self._state.verifier.verify(bearer_token(header.decode("latin-1")))
        except Exception:
            return None, set()
        return principal.app_id, {principal.user_id} if principal.user_id else set()


def _faults(request: Request) -> Faults:
    faults: Faults | None = services_of(request).faults
    if faults is None:
        raise ResourceNotFound(
            "Fault injection is for the emulator: start the server with --emulator (or --clock manual) "
            "to set fault rules."
        )
    return faults


async def add_fault(request: Request) -> Response:
    faults = _faults(request)
    body = await json_body(request, FaultFields)
    rule = rule_from_fields(body)
    await faults.add(rule)
    return json_response(request, msgspec.json.encode(fault_body(rule)), 201)


async def list_faults(request: Request) -> Response:
    rules = await _faults(request).rules()
    return json_response(request, msgspec.json.encode(FaultList([fault_body(r) for r in rules])))


async def remove_fault(request: Request) -> Response:
    await _faults(request).remove(request.path_params["id"])
    return empty_response(request, 204)


async def clear_faults(request: Request) -> Response:
    await _faults(request).clear()
    return empty_response(request, 204)


async def fire_lifecycle(request: Request) -> Response:
    _faults(request)
    body = await json_body(request, LifecycleInput)
    fired = await services_of(request).subscriptions.fire_lifecycle(request.path_params["id"], body.event)
    answer = LifecycleQueued(subscriptionId=fired.id, event=body.event)
    return json_response(request, msgspec.json.encode(answer), 202)


_NOTE = "No token needed: fault rules are set only on an emulator (serve --emulator or --clock manual)."

ENDPOINTS = (
    Endpoint(
        "POST",
        "/_emulator/faults",
        add_fault,
        "emulator.addFault",
        "Add a fault rule: matching Graph requests fail or answer late, or a subscription's notifications come "
        "late, twice, out of order or not at all",
        (),
        request_body=FaultFields,
        response_body=FaultBody,
        status=201,
        versioned=False,
        note=_NOTE,
    ),
    Endpoint(
        "GET",
        "/_emulator/faults",
        list_faults,
        "emulator.listFaults",
        "List the fault rules, with how often each fired",
        (),
        response_body=FaultList,
        versioned=False,
        note=_NOTE,
    ),
    Endpoint(
        "DELETE", "/_emulator/faults", clear_faults, "emulator.clearFaults", "Remove every fault rule", (),
        status=204, versioned=False, note=_NOTE,
    ),
    Endpoint(
        "DELETE", "/_emulator/faults/{id}", remove_fault, "emulator.removeFault", "Remove one fault rule", (),
        status=204, versioned=False, note=_NOTE,
    ),
    Endpoint(
        "POST", "/_emulator/subscriptions/{id}/lifecycle", fire_lifecycle, "emulator.fireLifecycle",
        "Send a lifecycle notification now: missed, reauthorizationRequired or subscriptionRemoved", (),
        request_body=LifecycleInput, response_body=LifecycleQueued, status=202, versioned=False, note=_NOTE,
    ),
)  # fmt: skip
