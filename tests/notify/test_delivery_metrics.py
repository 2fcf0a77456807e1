"""Webhook deliveries in the metrics: a real receiver on loopback answering 202, then 503."""

from __future__ import annotations

import httpx

from presenced.bootstrap import Runtime
from presenced.services.demo import seed_demo
from tests.e2e.webhook_receiver import WebhookReceiver
from tests.metrics_support import Scrape
from tests.notify.subscribing import deliver
from tests.support import T0, Tokens, bearer

SESSION = {"sessionId": "11111111-2222-3333-4444-555555555555", "availability": "Busy", "activity": "InACall"}
AWAY = {**SESSION, "availability": "Away", "activity": "Away"}


async def _scrape(api: httpx.AsyncClient) -> Scrape:
    response = await api.get("/metrics")
    assert response.status_code == 200
    return Scrape(response.text)


async def test_deliveries_move_the_delivery_counters(hooked: Runtime, api: httpx.AsyncClient) -> None:
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    tokens = Tokens(hooked, demo.tenant.id)
    user = demo.users[-1]  # nothing set: any presence is a change
    writer = bearer(tokens.app("Presence.ReadWrite.All"))
    with WebhookReceiver() as receiver:
        created = await api.post(
            "/v1.0/subscriptions",
            json={
                "changeType": "updated",
                "notificationUrl": receiver.url,
                "resource": f"/communications/presences/{user.id}",
                "expirationDateTime": (T0.replace(minute=50)).isoformat().replace("+00:00", "Z"),
                "clientState": "metrics-client-state",
            },
            headers=bearer(tokens.app("Presence.Read.All")),
        )
        assert created.status_code == 201, created.text
        before = await _scrape(api)

        path = f"/v1.0/users/{user.id}/presence/setPresence"
        assert (await api.post(path, json=SESSION, headers=writer)).status_code == 200
        pending = await _scrape(api)
        assert pending.value("presenced_outbox_pending_notifications") == 1
        await deliver(hooked)
        assert len(receiver.arrivals) == 1
        delivered = await _scrape(api)

        receiver.status = 503
        assert (await api.post(path, json=AWAY, headers=writer)).status_code == 200
        await deliver(hooked)
        after = await _scrape(api)

    def moved(scrape: Scrape, name: str, **labels: str) -> float:
        return scrape.value(name, **labels) - before.value(name, **labels)

    deliveries = "presenced_webhook_deliveries_total"
    assert moved(delivered, deliveries, outcome="delivered") == 1
    assert moved(delivered, "presenced_webhook_delivery_latency_seconds_count") == 1
    assert moved(delivered, "presenced_webhook_request_duration_seconds_count") == 1
    assert delivered.value("presenced_outbox_pending_notifications") == 0
    assert moved(after, deliveries, outcome="delivered") == 1
    assert moved(after, deliveries, outcome="retry") == 1
    assert moved(after, "presenced_webhook_delivery_latency_seconds_count") == 1
    assert moved(after, "presenced_webhook_request_duration_seconds_count") == 2
    assert after.value("presenced_outbox_pending_notifications") == 1
    # Neither the receiver's URL nor the subscription's secret is shown.
    assert receiver.url not in after.text
    assert "metrics-client-state" not in after.text
