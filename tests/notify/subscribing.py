"""Subscribing in process and running the delivery worker, for the notification tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from presenced.bootstrap import Runtime
from tests.notify.conftest import Receiver
from tests.support import T0, bearer


async def subscribe(
    api: httpx.AsyncClient, token: str, receiver: Receiver, resource: str, **extra: Any
) -> httpx.Response:
    """POST /subscriptions for ``resource``, to ``receiver``, expiring 50 minutes after T0."""
    body = {
        "changeType": "updated",
        "notificationUrl": receiver.url,
        "resource": resource,
        "expirationDateTime": (T0 + timedelta(minutes=50)).isoformat().replace("+00:00", "Z"),
        "clientState": "secret-state",
        **extra,
    }
    return await api.post("/v1.0/subscriptions", json=body, headers=bearer(token))


async def deliver(runtime: Runtime) -> None:
    """Send everything due now, and wait until it is sent."""
    await runtime.deliveries.deliver_due()
    await runtime.deliveries.drain()
