"""Lifecycle notifications: reauthorization ahead of expiry, removal when the grant or user goes away, purging."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from presenced.bootstrap import Runtime
from presenced.errors import BadRequest, ResourceNotFound
from presenced.services.demo import DEMO_DAEMON_APP_ID, seed_demo, seed_demo_identity
from presenced.services.subscriptions import KEEP_EXPIRED
from tests.notify.conftest import Receiver
from tests.support import T0, FixedClock, Tokens, bearer

SESSION = {"sessionId": "11111111-2222-3333-4444-555555555555", "availability": "Busy", "activity": "InACall"}


async def _subscribe(api: httpx.AsyncClient, token: str, receiver: Receiver, user_id: str) -> dict[str, Any]:
    body = {
        "changeType": "updated",
        "notificationUrl": receiver.url,
        "lifecycleNotificationUrl": receiver.url,
        "resource": f"communications/presences/{user_id}",
        "expirationDateTime": (T0 + timedelta(minutes=50)).isoformat(),
        "clientState": "lifecycle-state",
    }
    response = await api.post("/v1.0/subscriptions", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _round(runtime: Runtime) -> None:
    await runtime.lifecycle.run_once()
    await runtime.deliveries.deliver_due()
    await runtime.deliveries.drain()


def _events(receiver: Receiver) -> list[str]:
    return [item["lifecycleEvent"] for item in receiver.received if "lifecycleEvent" in item]


async def test_reauthorization_is_asked_once_ahead_of_expiry(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Ten minutes before expiry one reauthorizationRequired arrives; a renewal makes the next one due again."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    token = Tokens(hooked, demo.tenant.id).app("Presence.Read.All")
    created = await _subscribe(api, token, receiver, demo.users[0].id)
    clock = hooked.clock
    assert isinstance(clock, FixedClock)
    await _round(hooked)
    assert _events(receiver) == []
    clock.set(T0 + timedelta(minutes=41))
    await _round(hooked)
    await _round(hooked)
    assert _events(receiver) == ["reauthorizationRequired"]
    item = next(i for i in receiver.received if "lifecycleEvent" in i)
    assert (item["subscriptionId"], item["clientState"]) == (created["id"], "lifecycle-state")
    assert "resource" not in item
    renewed = (T0 + timedelta(minutes=100)).isoformat()
    patch = await api.patch(
        f"/v1.0/subscriptions/{created['id']}", json={"expirationDateTime": renewed}, headers=bearer(token)
    )
    assert patch.status_code == 200, patch.text
    clock.set(T0 + timedelta(minutes=91))
    await _round(hooked)
    assert _events(receiver) == ["reauthorizationRequired", "reauthorizationRequired"]


async def test_a_revoked_role_removes_the_subscription(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """When the app loses Presence.Read.All, subscriptionRemoved arrives and the subscription stops; the
    removal is logged with its tenant, app and subscription (not its URL nor its client state)."""
    caplog.set_level(logging.INFO, logger="presenced.subscriptions")
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    await seed_demo_identity(hooked.identity, datetime.now(UTC))
    tokens = Tokens(hooked, demo.tenant.id)
    token = tokens.app("Presence.Read.All", app_id=DEMO_DAEMON_APP_ID)
    user = demo.users[-1]
    created = await _subscribe(api, token, receiver, user.id)
    await _round(hooked)
    assert _events(receiver) == []
    sp = await hooked.identity_store.find_service_principal(demo.tenant.id, DEMO_DAEMON_APP_ID)
    assert sp is not None
    for assignment in await hooked.identity_store.list_assignments(demo.tenant.id, sp.id):
        await hooked.identity_store.delete_assignment(demo.tenant.id, assignment.id)
    await _round(hooked)
    assert _events(receiver) == ["subscriptionRemoved"]
    [removal] = [r for r in caplog.records if r.name == "presenced.subscriptions"]
    assert removal.getMessage() == "subscription removed: its app's permission or its user is gone"
    assert removal.__dict__["fields"] == {
        "job": "subscription lifecycle round",
        "tenant_id": demo.tenant.id,
        "app_id": DEMO_DAEMON_APP_ID,
        "subscription_id": created["id"],
    }
    assert (await api.get(f"/v1.0/subscriptions/{created['id']}", headers=bearer(token))).status_code == 404
    writer = tokens.app("Presence.ReadWrite.All")
    await api.post(f"/v1.0/users/{user.id}/presence/setPresence", json=SESSION, headers=bearer(writer))
    await _round(hooked)
    assert [i for i in receiver.received if "lifecycleEvent" not in i] == []


async def test_a_users_revoked_consent_removes_only_their_subscription(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Of two people's delegated subscriptions through one app, the round removes the one whose consent is gone
    (the round looks the app's grants up once for both)."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    identity = await seed_demo_identity(hooked.identity, datetime.now(UTC))
    public = next(a.app for a in identity.apps if a.secret is None)
    from presenced.services.identity import GRAPH

    created = {}
    for user in demo.users[3:5]:
        await hooked.identity.consent_for_user(
            demo.tenant.id, public, GRAPH, user.id, {"Presence.Read.All"}, datetime.now(UTC)
        )
        token = Tokens(hooked, demo.tenant.id).user(user.id, "Presence.Read.All", app_id=public.app_id)
        created[user.id] = await _subscribe(api, token, receiver, demo.users[0].id)
    await _round(hooked)
    assert _events(receiver) == []
    revoked = demo.users[3]
    sp = await hooked.identity_store.find_service_principal(demo.tenant.id, public.app_id)
    assert sp is not None
    for grant in await hooked.identity_store.list_grants(demo.tenant.id, sp.id, revoked.id):
        await hooked.identity.revoke_grant(demo.tenant.id, grant.id)
    await _round(hooked)
    assert _events(receiver) == ["subscriptionRemoved"]
    [removal] = [item for item in receiver.received if "lifecycleEvent" in item]
    assert removal["subscriptionId"] == created[revoked.id]["id"]


async def test_a_deleted_user_removes_their_subscription(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A delegated subscription whose user is deleted ends with subscriptionRemoved."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    identity = await seed_demo_identity(hooked.identity, datetime.now(UTC))
    public = next(a.app for a in identity.apps if a.secret is None)
    user = demo.users[3]
    grant_scopes = {"Presence.Read.All"}
    from presenced.services.identity import GRAPH

    await hooked.identity.consent_for_user(demo.tenant.id, public, GRAPH, user.id, grant_scopes, datetime.now(UTC))
    token = Tokens(hooked, demo.tenant.id).user(user.id, "Presence.Read.All", app_id=public.app_id)
    await _subscribe(api, token, receiver, demo.users[0].id)
    await _round(hooked)
    assert _events(receiver) == []
    assert await hooked.identity_store.delete_user(demo.tenant.id, user.id)
    await _round(hooked)
    assert _events(receiver) == ["subscriptionRemoved"]


async def test_expired_subscriptions_stop_and_are_purged(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """After expiry a subscription gets no notifications and is gone from the list; later it is purged."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    tokens = Tokens(hooked, demo.tenant.id)
    token = tokens.app("Presence.Read.All")
    user = demo.users[-1]
    await _subscribe(api, token, receiver, user.id)
    clock = hooked.clock
    assert isinstance(clock, FixedClock)
    clock.set(T0 + timedelta(minutes=51))
    await api.post(
        f"/v1.0/users/{user.id}/presence/setPresence",
        json=SESSION,
        headers=bearer(tokens.app("Presence.ReadWrite.All")),
    )
    await _round(hooked)
    assert [i for i in receiver.received if "lifecycleEvent" not in i] == []
    assert (await api.get("/v1.0/subscriptions", headers=bearer(token))).json()["value"] == []
    clock.set(T0 + timedelta(minutes=50) + KEEP_EXPIRED + timedelta(seconds=1))
    await hooked.lifecycle.run_once()
    async with hooked.engine.connect() as conn:
        assert (await conn.exec_driver_sql("SELECT count(*) FROM subscriptions")).scalar() == 0


async def test_the_emulator_sends_each_lifecycle_event_on_demand(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """missed and reauthorizationRequired arrive each time they are asked for and leave the subscription
    live; subscriptionRemoved arrives and ends it; an unknown event or subscription changes nothing."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    token = Tokens(hooked, demo.tenant.id).app("Presence.Read.All")
    created = await _subscribe(api, token, receiver, demo.users[0].id)
    service = hooked.subscriptions
    for event in ("missed", "missed", "reauthorizationRequired", "reauthorizationRequired"):
        await service.fire_lifecycle(created["id"], event)
    await _round(hooked)
    # Queued at one instant, they may come in any order.
    assert sorted(_events(receiver)) == ["missed", "missed", "reauthorizationRequired", "reauthorizationRequired"]
    assert (await api.get(f"/v1.0/subscriptions/{created['id']}", headers=bearer(token))).status_code == 200
    with pytest.raises(BadRequest, match="event must be one of"):
        await service.fire_lifecycle(created["id"], "expired")
    with pytest.raises(ResourceNotFound):
        await service.fire_lifecycle("00000000-0000-0000-0000-000000000009", "missed")
    await service.fire_lifecycle(created["id"].upper(), "subscriptionRemoved")
    await _round(hooked)
    assert _events(receiver)[-1] == "subscriptionRemoved"
    assert (await api.get(f"/v1.0/subscriptions/{created['id']}", headers=bearer(token))).status_code == 404
