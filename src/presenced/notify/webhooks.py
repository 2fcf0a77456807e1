"""Webhooks: Graph's change-notification payloads, the validation handshake, and sending.

A presence notification (docs/notifications.md, "Delivery") names the subscription, its
``clientState`` and the user's presence resource; a rich one
(``includeResourceData``) also carries the presence, encrypted for the
subscriber's certificate (``encryption``), with ``validationTokens`` signed by
this server's keys for the subscribing app.
"""

from __future__ import annotations

import json
import secrets
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from presenced.notify.encryption import encrypt_resource, load_encryption_certificate
from presenced.notify.outbound import (
    Connections,
    OutboundPolicy,
    post,
    resolve_target,
    validate_endpoint,
)
from presenced.services.deliveries import Answer
from presenced.services.entities import PendingNotification

#: A 2xx within this counts as delivered (Graph's rule).
DELIVERY_TIMEOUT = 3.0
HANDSHAKE_TIMEOUT = 10.0
#: The app id Graph's change-tracking service signs validation tokens as.
CHANGE_TRACKING_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
_PRESENCE_TYPE = "#microsoft.graph.presence"


class WebhookEndpoints:
    """Implements ``presenced.services.subscriptions.WebhookEndpoints``."""

    def __init__(self, policy: OutboundPolicy, verify: ssl.SSLContext | bool = True) -> None:
        self._policy = policy
        self._verify = verify

    async def check(self, url: str, field: str) -> None:
        target = await resolve_target(url, self._policy, field=field)
        await validate_endpoint(target, secrets.token_urlsafe(24), HANDSHAKE_TIMEOUT, self._policy, verify=self._verify)


class WebhookSender:
    """Implements ``presenced.services.deliveries.NotificationSender`` over HTTPS (httpx)."""

    def __init__(
        self,
        policy: OutboundPolicy,
        validation_token: Callable[[str, str], str],
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._policy = policy
        #: (app id, tenant id) → a JWT for that app, for rich notifications.
        self._validation_token = validation_token
        self._verify = verify
        #: Kept-alive connections to the receivers, a few dozen per receiver however many URLs it has.
        self.connections = Connections()

    async def send(self, url: str, notifications: Sequence[PendingNotification]) -> Answer:
        body = json.dumps(collection(notifications, self._validation_token)).encode()
        started = time.monotonic()
        try:
            target = await resolve_target(url, self._policy)
            response = await post(
                target,
                body,
                {"Content-Type": "application/json; charset=utf-8"},
                DELIVERY_TIMEOUT,
                self._policy,
                verify=self._verify,
                connections=self.connections,
            )
        except Exception as error:  # any failure is a failed attempt, to be retried
            return Answer(None, _ms(started), f"{type(error).__name__}: {str(error)[:200]}")
        return Answer(
            response.status, _ms(started), None if 200 <= response.status < 300 else f"HTTP {response.status}"
        )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def collection(
    notifications: Sequence[PendingNotification], validation_token: Callable[[str, str], str]
) -> dict[str, Any]:
    """A ``changeNotificationCollection`` of ``notifications``."""
    value = [notification(n) for n in notifications]
    body: dict[str, Any] = {"value": value}
    rich = {
        (n.subscription.app_id, n.subscription.tenant_id) for n in notifications if n.subscription.include_resource_data
    }
    if rich:
        body["validationTokens"] = [validation_token(app_id, tenant_id) for app_id, tenant_id in sorted(rich)]
    return body


def notification(n: PendingNotification) -> dict[str, Any]:
    """One ``changeNotification``: Graph's presence shape, with the notification's stable id."""
    s = n.subscription
    if n.lifecycle_event is not None or n.user_id is None:
        # A lifecycle notification names the subscription and the event, no resource
        # (docs/notifications.md, "Lifecycle notifications").
        return {
            "id": n.id,
            "subscriptionId": s.id,
            "clientState": s.client_state,
            "tenantId": s.tenant_id,
            "organizationId": s.tenant_id,
            "subscriptionExpirationDateTime": graph_datetime(s.expires),
            "lifecycleEvent": n.lifecycle_event,
        }
    item: dict[str, Any] = {
        "id": n.id,
        "subscriptionId": s.id,
        "clientState": s.client_state,
        "changeType": "updated",
        "tenantId": s.tenant_id,
        "organizationId": s.tenant_id,
        "resource": f"communications/presences/{n.user_id}",
        "subscriptionExpirationDateTime": graph_datetime(s.expires),
        "resourceData": {
            "@odata.id": f"users/{n.user_id}/presence",
            "@odata.type": _PRESENCE_TYPE,
            "id": n.user_id,
        },
    }
    if s.include_resource_data and s.encryption_certificate and s.encryption_certificate_id:
        certificate = load_encryption_certificate(s.encryption_certificate)
        item["encryptedContent"] = encrypt_resource(resource_data(n), certificate, s.encryption_certificate_id)
    return item


def resource_data(n: PendingNotification) -> bytes:
    """The presence a rich notification carries, as it was after the change."""
    visible = n.visible
    data = {
        "@odata.id": f"users/{n.user_id}/presence",
        "@odata.type": _PRESENCE_TYPE,
        "id": n.user_id,
        "availability": None if visible is None else visible.availability.value,
        "activity": None if visible is None else visible.activity.value,
        "sequenceNumber": f"{n.sequence:020d}",
    }
    return json.dumps(data, separators=(",", ":")).encode()


def graph_datetime(instant: datetime) -> str:
    """Graph's ``DateTimeOffset`` form: UTC, seven fraction digits, ``Z``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
