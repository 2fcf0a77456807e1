"""``GET /metrics`` in process (SQLite and PostgreSQL): the Prometheus text format, counters that move by
exactly the requests made, under route templates, with no token and no secret in it."""

from __future__ import annotations

import httpx

from presenced.services.demo import DemoTenant, demo_user_id
from tests.metrics_support import Scrape, dashboard_metrics
from tests.support import Tokens, bearer

NESTOR = demo_user_id("nestor")
ADELE = demo_user_id("adele")
APP = "11111111-2222-3333-4444-555555555555"  # the tests' tokens' application id
SESSION = {"sessionId": APP, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"}
REQUESTS = "presenced_http_requests_total"
DURATIONS = "presenced_http_request_duration_seconds_count"


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


async def test_requests_are_counted_by_route_template_method_and_status(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    reader = bearer(tokens.app("Presence.Read.All"))
    writer = bearer(tokens.app("Presence.ReadWrite.All"))
    before = await scrape(client)

    for _ in range(3):  # the fast path
        assert (await client.get(f"/v1.0/users/{ADELE}/presence", headers=reader)).status_code == 200
    # With a query string: the Starlette route, under the same template.
    assert (await client.get(f"/v1.0/users/{ADELE}/presence?$select=availability", headers=reader)).status_code == 200
    assert (await client.get(f"/beta/communications/presences/{NESTOR}", headers=reader)).status_code == 200
    assert (await client.get(f"/v1.0/users/{ADELE}/presence")).status_code == 401
    for _ in range(2):
        path = f"/v1.0/users/{NESTOR}/presence/setPresence"
        assert (await client.post(path, json=SESSION, headers=writer)).status_code == 200
    bad = {**SESSION, "activity": "Away"}
    assert (
        await client.post(f"/v1.0/users/{NESTOR}/presence/setPresence", json=bad, headers=writer)
    ).status_code == 400
    assert (await client.get("/v1.0/no/such/thing", headers=reader)).status_code == 404

    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    read = {"route": "/v1.0/users/{id}/presence", "method": "GET"}
    assert moved(REQUESTS, **read, status="200") == 4
    assert moved(REQUESTS, **read, status="401") == 1
    assert moved(DURATIONS, **read) == 5
    assert moved(REQUESTS, route="/beta/communications/presences/{id}", method="GET", status="200") == 1
    write = {"route": "/v1.0/users/{id}/presence/setPresence", "method": "POST"}
    assert moved(REQUESTS, **write, status="200") == 2
    assert moved(REQUESTS, **write, status="400") == 1
    assert moved(DURATIONS, **write) == 3
    assert moved(REQUESTS, route="unmatched", method="GET", status="404") == 1
    # The first scrape itself is counted by the second.
    assert moved(REQUESTS, route="/metrics", method="GET", status="200") == 1
    assert moved("presenced_presence_writes_total", action="setPresence", outcome="ok") == 2
    assert moved("presenced_presence_writes_total", action="setPresence", outcome="refused") == 1
    # Raw paths never become labels.
    assert ADELE not in after.text
    assert NESTOR not in after.text


async def test_token_requests_are_counted_by_grant_type_and_outcome(
    client: httpx.AsyncClient, demo: DemoTenant
) -> None:
    before = await scrape(client)
    token_url = f"/{demo.tenant.id}/oauth2/v2.0/token"
    form = {"grant_type": "client_credentials", "client_id": APP, "client_secret": "not-the-secret", "scope": "x"}
    assert (await client.post(token_url, data=form)).status_code in {400, 401}
    assert (await client.post(token_url, data={"grant_type": "password-of-my-own"})).status_code == 400
    after = await scrape(client)
    moved = {
        (dict(labels)["grant_type"], dict(labels)["outcome"]): value - before.value(name, **dict(labels))
        for (name, labels), value in after.samples.items()
        if name == "presenced_token_requests_total"
    }
    counted = {key: n for key, n in moved.items() if n}
    assert counted.pop(("other", "unsupported_grant_type")) == 1
    # A wrong secret: one refusal of client_credentials, whatever OAuth error code it is.
    assert list(counted.values()) == [1]
    ((grant, outcome),) = counted
    assert grant == "client_credentials"
    assert outcome != "issued"
    assert "not-the-secret" not in after.text


async def test_metrics_need_no_token_and_show_the_gauges(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    token = tokens.app("Presence.Read.All")
    await client.get(f"/v1.0/users/{ADELE}/presence", headers=bearer(token))
    response = await client.get("/metrics")  # no Authorization header
    assert response.status_code == 200
    found = Scrape(response.text)
    for gauge in (
        "presenced_outbox_pending_notifications",
        "presenced_outbox_oldest_pending_age_seconds",
        "presenced_change_log_unread_changes",
        "presenced_live_streams",
        "presenced_sweeper_lag_seconds",
    ):
        assert gauge in found.names
    assert found.value("presenced_outbox_pending_notifications") == 0
    assert found.value("presenced_live_streams") == 0
    assert "process_cpu_seconds_total" in found.names or "python_info" in found.names
    assert token not in response.text
    assert demo.tenant.id not in response.text


async def test_every_metric_the_dashboard_queries_is_exposed(client: httpx.AsyncClient) -> None:
    found = await scrape(client)
    queried = dashboard_metrics()
    assert queried, "the dashboard queries no presenced_* metric"
    assert queried <= found.names, f"not in /metrics: {sorted(queried - found.names)}"
