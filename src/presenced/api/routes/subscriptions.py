"""/subscriptions for presence (docs/notifications.md): create, list, get, renew, delete, reauthorize."""

from __future__ import annotations

from datetime import datetime

from msgspec import Struct
from starlette.requests import Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.endpoints import Endpoint
from presenced.api.http import empty_response, json_body, json_response, principal_of
from presenced.auth.operations import Operation, Target
from presenced.errors import BadRequest
from presenced.services.entities import Subscription
from presenced.services.subscriptions import NewSubscription, SubscriptionService
from presenced.wiring import services_of


class SubscriptionRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    changeType: str
    notificationUrl: str
    resource: str
    expirationDateTime: str
    lifecycleNotificationUrl: str | None = None
    clientState: str | None = None
    includeResourceData: bool = False
    encryptionCertificate: str | None = None
    encryptionCertificateId: str | None = None
    latestSupportedTlsVersion: str | None = None
    notificationQueryOptions: str | None = None
    notificationUrlAppId: str | None = None


class SubscriptionPatch(Struct, kw_only=True, forbid_unknown_fields=True):
    expirationDateTime: str


class SubscriptionBody(Struct, kw_only=True, omit_defaults=False):
    id: str
    resource: str
    applicationId: str
    changeType: str
    clientState: str | None
    notificationUrl: str
    notificationQueryOptions: str | None
    lifecycleNotificationUrl: str | None
    expirationDateTime: str
    creatorId: str
    includeResourceData: bool
    latestSupportedTlsVersion: str
    encryptionCertificate: str | None
    encryptionCertificateId: str | None
    notificationUrlAppId: str | None


class SubscriptionEntity(SubscriptionBody, kw_only=True, rename={"odata_context": "@odata.context"}):
    odata_context: str


class SubscriptionCollection(Struct, kw_only=True, rename={"odata_context": "@odata.context"}):
    odata_context: str
    value: list[SubscriptionBody]


def _service(request: Request) -> SubscriptionService:
    service: SubscriptionService = services_of(request).subscriptions
    return service


def _instant(value: str, name: str = "expirationDateTime") -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date and time, not {value[:40]!r}.") from None
    return parsed


def _fields(s: Subscription) -> dict[str, object]:
    return {
        "id": s.id,
        "resource": s.resource,
        "applicationId": s.app_id,
        "changeType": s.change_type,
        "clientState": s.client_state,
        "notificationUrl": s.notification_url,
        "notificationQueryOptions": None,
        "lifecycleNotificationUrl": s.lifecycle_url,
        "expirationDateTime": wire.graph_datetime(s.expires),
        "creatorId": s.creator_id or s.app_id,
        "includeResourceData": s.include_resource_data,
        "latestSupportedTlsVersion": s.latest_tls,
        "encryptionCertificate": s.encryption_certificate,
        "encryptionCertificateId": s.encryption_certificate_id,
        "notificationUrlAppId": None,
    }


def _context(request: Request, suffix: str) -> str:
    version = request.scope["path"].split("/", 2)[1]
    return f"{services_of(request).base_url}/{version}/$metadata#subscriptions{suffix}"


def _one(request: Request, s: Subscription, status: int = 200) -> Response:
    body = SubscriptionEntity(odata_context=_context(request, "/$entity"), **_fields(s))  # type: ignore[arg-type]
    return json_response(request, wire.encode(body), status)


async def create_subscription(request: Request) -> Response:
    principal = await principal_of(request)
    body = await json_body(request, SubscriptionRequest)
    if body.notificationQueryOptions is not None or body.notificationUrlAppId is not None:
        raise BadRequest("notificationQueryOptions and notificationUrlAppId are not supported for presence.")
    created = await _service(request).create(
        principal,
        NewSubscription(
            change_type=body.changeType,
            notification_url=body.notificationUrl,
            resource=body.resource,
            expiration=_instant(body.expirationDateTime),
            lifecycle_url=body.lifecycleNotificationUrl,
            client_state=body.clientState,
            include_resource_data=body.includeResourceData,
            encryption_certificate=body.encryptionCertificate,
            encryption_certificate_id=body.encryptionCertificateId,
            latest_tls=body.latestSupportedTlsVersion,
        ),
    )
    return _one(request, created, 201)


async def list_subscriptions(request: Request) -> Response:
    principal = await principal_of(request)
    found = await _service(request).list(principal)
    body = SubscriptionCollection(
        odata_context=_context(request, ""),
        value=[SubscriptionBody(**_fields(s)) for s in found],  # type: ignore[arg-type]
    )
    return json_response(request, wire.encode(body))


async def get_subscription(request: Request) -> Response:
    principal = await principal_of(request)
    return _one(request, await _service(request).get(principal, request.path_params["id"]))


async def renew_subscription(request: Request) -> Response:
    principal = await principal_of(request)
    body = await json_body(request, SubscriptionPatch)
    renewed = await _service(request).renew(principal, request.path_params["id"], _instant(body.expirationDateTime))
    return _one(request, renewed)


async def delete_subscription(request: Request) -> Response:
    principal = await principal_of(request)
    await _service(request).delete(principal, request.path_params["id"])
    return empty_response(request, 204)


async def reauthorize_subscription(request: Request) -> Response:
    principal = await principal_of(request)
    await _service(request).reauthorize(principal, request.path_params["id"])
    return empty_response(request, 204)


_PERMISSION = ((Operation.SUBSCRIBE_PRESENCE, Target.ANY),)
_NOTE = "With application permissions, presence subscriptions are an extension: Graph refuses them."

ENDPOINTS = (
    Endpoint("POST", "/subscriptions", create_subscription, "subscriptions.create",
             "Subscribe to presence changes (the notification URL must pass the validation handshake)",
             _PERMISSION, request_body=SubscriptionRequest, response_body=SubscriptionEntity, status=201, note=_NOTE),
    Endpoint("GET", "/subscriptions", list_subscriptions, "subscriptions.list",
             "The caller's own subscriptions", _PERMISSION, response_body=SubscriptionCollection, note=_NOTE),
    Endpoint("GET", "/subscriptions/{id}", get_subscription, "subscriptions.get",
             "One of the caller's subscriptions", _PERMISSION, response_body=SubscriptionEntity, note=_NOTE),
    Endpoint("PATCH", "/subscriptions/{id}", renew_subscription, "subscriptions.update",
             "Renew: a new expirationDateTime", _PERMISSION, request_body=SubscriptionPatch,
             response_body=SubscriptionEntity, note=_NOTE),
    Endpoint("DELETE", "/subscriptions/{id}", delete_subscription, "subscriptions.delete",
             "Delete a subscription", _PERMISSION, status=204, note=_NOTE),
    Endpoint("POST", "/subscriptions/{id}/reauthorize", reauthorize_subscription, "subscriptions.reauthorize",
             "Reauthorize a subscription", _PERMISSION, status=204, note=_NOTE),
)  # fmt: skip
