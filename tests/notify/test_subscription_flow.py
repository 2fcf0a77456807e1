"""Subscriptions end to end in process: a real webhook receiver on loopback, real writes, real delivery."""

from __future__ import annotations

from datetime import timedelta

import httpx

from presenced.bootstrap import Runtime
from presenced.services.demo import seed_demo
from tests.notify.conftest import Receiver
from tests.notify.subscribing import deliver, subscribe
from tests.support import T0, Tokens, bearer


async def test_a_change_reaches_the_subscriber_as_graph_shapes_it(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Subscribe (handshake passes), set a presence: the notification arrives with clientState and Graph's fields."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    tokens = Tokens(hooked, demo.tenant.id)
    user = demo.users[0]
    created = await subscribe(api, tokens.app("Presence.Read.All"), receiver, f"/communications/presences/{user.id}")
    assert created.status_code == 201, created.text
    assert receiver.validations == 1
    subscription = created.json()
    assert subscription["expirationDateTime"] == "2026-03-02T09:50:00.0000000Z"
    writer = tokens.app("Presence.ReadWrite.All")
    body = {"sessionId": "11111111-2222-3333-4444-555555555555", "availability": "Busy", "activity": "InACall"}
    assert (
        await api.post(f"/v1.0/users/{user.id}/presence/setPresence", json=body, headers=bearer(writer))
    ).status_code == 200
    await deliver(hooked)
    assert len(receiver.received) == 1
    item = receiver.received[0]
    assert item["subscriptionId"] == subscription["id"]
    assert item["clientState"] == "secret-state"
    assert item["changeType"] == "updated"
    assert item["resource"] == f"communications/presences/{user.id}"
    assert item["resourceData"] == {
        "@odata.id": f"users/{user.id}/presence",
        "@odata.type": "#microsoft.graph.presence",
        "id": user.id,
    }
    assert item["tenantId"] == demo.tenant.id


async def test_a_failing_receiver_gets_the_notification_again(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A 503 is retried: after the backoff the same notification (same id) is delivered once."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    tokens = Tokens(hooked, demo.tenant.id)
    user = demo.users[-1]  # Nestor: nothing set, so any presence is a change
    await subscribe(api, tokens.app("Presence.Read.All"), receiver, f"communications/presences/{user.id}")
    receiver.failures_left = 1
    body = {"sessionId": "11111111-2222-3333-4444-555555555555", "availability": "Away", "activity": "Away"}
    await api.post(
        f"/v1.0/users/{user.id}/presence/setPresence", json=body, headers=bearer(tokens.app("Presence.ReadWrite.All"))
    )
    await deliver(hooked)
    assert receiver.received == []
    async with hooked.engine.begin() as conn:
        await conn.exec_driver_sql("UPDATE notifications SET next_attempt_us = 0")
    await deliver(hooked)
    assert len(receiver.received) == 1
    async with hooked.engine.connect() as conn:
        attempts = (await conn.exec_driver_sql("SELECT status FROM delivery_attempts ORDER BY id")).scalars().all()
    assert list(attempts) == [503, 202]


async def test_a_failed_handshake_creates_nothing(hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver) -> None:
    """An endpoint that does not echo the validation token gets 400 InvalidRequest and no subscription."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    token = Tokens(hooked, demo.tenant.id).app("Presence.Read.All")
    receiver.echo_validation = False
    response = await subscribe(api, token, receiver, f"communications/presences/{demo.users[0].id}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequest"
    assert (await api.get("/v1.0/subscriptions", headers=bearer(token))).json()["value"] == []


async def test_bulk_subscriptions_duplicates_and_bad_input(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A filter of ids (quoted or not) subscribes to each; the same again is 409; bad fields are 400s naming them."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    token = Tokens(hooked, demo.tenant.id).app("Presence.Read.All")
    ids = [u.id for u in demo.users[:3]]
    resource = f"communications/presences?$filter=id in ('{ids[0]}',{ids[1]}, '{ids[2]}')"
    assert (await subscribe(api, token, receiver, resource)).status_code == 201
    duplicate = await subscribe(
        api, token, receiver, f"/communications/presences?$filter=id in ({ids[2]},{ids[1]},{ids[0]})"
    )
    assert duplicate.status_code == 409
    cases = [
        ({"changeType": "created"}, "changeType"),
        ({"expirationDateTime": "tomorrow"}, "expirationDateTime"),
        ({"expirationDateTime": (T0 + timedelta(hours=2)).isoformat()}, "expirationDateTime"),
        ({"clientState": "x" * 256}, "clientState"),
        ({"includeResourceData": True}, "encryptionCertificate"),
        ({"latestSupportedTlsVersion": "v9"}, "latestSupportedTlsVersion"),
        ({"notificationUrl": "ftp://example.com/hook"}, "notificationUrl"),
    ]
    for change, field in cases:
        response = await subscribe(api, token, receiver, f"communications/presences/{demo.users[5].id}", **change)
        assert response.status_code == 400, (change, response.text)
        assert field in response.json()["error"]["message"], (change, response.text)
    for resource in ("users/x/presence", "communications/presences/not-a-guid", f"communications/presences/{'0' * 8}"):
        response = await subscribe(api, token, receiver, resource)
        assert response.status_code == 400, (resource, response.text)
        assert "resource" in response.json()["error"]["message"]
    assert len((await api.get("/v1.0/subscriptions", headers=bearer(token))).json()["value"]) == 1


async def test_renew_and_delete(hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver) -> None:
    """PATCH moves the expiry (never under 45 minutes ahead); DELETE removes the subscription; others see 404."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    tokens = Tokens(hooked, demo.tenant.id)
    token = tokens.app("Presence.Read.All")
    created = (await subscribe(api, token, receiver, f"communications/presences/{demo.users[0].id}")).json()
    soon = (T0 + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    renewed = await api.patch(
        f"/v1.0/subscriptions/{created['id']}", json={"expirationDateTime": soon}, headers=bearer(token)
    )
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"] == "2026-03-02T09:45:00.0000000Z"
    other_app = tokens.app("Presence.Read.All", app_id="99999999-2222-3333-4444-555555555555")
    assert (await api.get(f"/v1.0/subscriptions/{created['id']}", headers=bearer(other_app))).status_code == 404
    assert (
        await api.post(f"/v1.0/subscriptions/{created['id']}/reauthorize", headers=bearer(token))
    ).status_code == 204
    assert (await api.delete(f"/v1.0/subscriptions/{created['id']}", headers=bearer(token))).status_code == 204
    assert (await api.get(f"/v1.0/subscriptions/{created['id']}", headers=bearer(token))).status_code == 404


async def test_presence_read_alone_cannot_subscribe(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Subscribing takes Presence.Read.All; a Presence.Read token gets 403 and the endpoint is never called."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    token = Tokens(hooked, demo.tenant.id).user(demo.users[0].id, "Presence.Read")
    response = await subscribe(api, token, receiver, f"communications/presences/{demo.users[0].id}")
    assert response.status_code == 403
    assert receiver.validations == 0
