"""Fault rules of the emulator, in process, on both stores: what each kind of rule does to the requests it
matches, and what is refused (docs/emulator.md, "Faults")."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from presenced.app import create_app
from presenced.services.demo import demo_user_id, seed_demo
from tests.api.test_read_api import error_of
from tests.support import APP_ID, BASE_URL, Tokens, bearer, build_on_manual_clock

ADELE = demo_user_id("adele")
ALEX = demo_user_id("alex")
OTHER_APP = "99999999-2222-3333-4444-555555555555"


@dataclasses.dataclass
class Emulator:
    client: httpx.AsyncClient
    tokens: Tokens

    def app(self, app_id: str = APP_ID) -> dict[str, str]:
        return bearer(self.tokens.app("Presence.ReadWrite.All", app_id=app_id))

    async def rule(self, **rule: Any) -> dict[str, Any]:
        response = await self.client.post("/_emulator/faults", json=rule)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def read(self, user: str = ADELE, app_id: str = APP_ID) -> httpx.Response:
        return await self.client.get(f"/v1.0/users/{user}/presence", headers=self.app(app_id))


@pytest.fixture
async def emulator(tmp_path: Path, key_folder: Path, database_url: str | None) -> AsyncIterator[Emulator]:
    runtime = await build_on_manual_clock(tmp_path, key_folder, database_url)
    demo = await seed_demo(runtime.store, runtime.writer, runtime.clock)
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Emulator(client, Tokens(runtime, demo.tenant.id))
    finally:
        await runtime.close()


async def test_a_count_rule_fails_the_next_requests_with_graphs_answer_then_lets_them_pass(emulator: Emulator) -> None:
    rule = await emulator.rule(method="GET", path="/users/*/presence", status=503, retryAfter=7, count=2)
    assert (rule["remaining"], rule["fired"]) == (2, 0)
    first, second, third = [await emulator.read() for _ in range(3)]
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.headers["Retry-After"] == "7"
    error = error_of(first)
    assert error["code"] == "ServiceUnavailable"
    listed = (await emulator.client.get("/_emulator/faults")).json()["value"]
    assert [(r["id"], r["remaining"], r["fired"]) for r in listed] == [(rule["id"], 0, 2)]


@pytest.mark.parametrize("status", [429, 500, 502, 504])
async def test_each_status_comes_with_graphs_code_and_retry_after_only_when_given(
    emulator: Emulator, status: int
) -> None:
    await emulator.rule(path="/users/*/presence", status=status, count=1)
    response = await emulator.read()
    assert response.status_code == status
    assert "Retry-After" not in response.headers
    assert error_of(response)["code"] in {"TooManyRequests", "InternalServerError", "BadGateway", "GatewayTimeout"}


async def test_a_faulted_write_does_nothing(emulator: Emulator) -> None:
    await emulator.rule(method="POST", path="/users/*/presence/setPresence", status=500, count=1)
    before = (await emulator.read(ALEX)).json()
    body = {"sessionId": APP_ID, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"}
    path = f"/v1.0/users/{ALEX}/presence/setPresence"
    refused = await emulator.client.post(path, json=body, headers=emulator.app())
    assert refused.status_code == 500
    assert (await emulator.read(ALEX)).json() == before
    assert (await emulator.client.post(path, json=body, headers=emulator.app())).status_code == 200
    assert (await emulator.read(ALEX)).json()["activity"] == "InACall"


async def test_a_seeded_probability_rule_fires_on_the_same_requests_every_run(emulator: Emulator) -> None:
    runs = []
    for _ in range(2):
        await emulator.rule(path="/users/*/presence", status=503, probability=0.5, seed=42)
        runs.append([(await emulator.read()).status_code for _ in range(24)])
        assert (await emulator.client.delete("/_emulator/faults")).status_code == 204
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}


async def test_rules_match_only_their_app_user_and_method(emulator: Emulator) -> None:
    await emulator.rule(path="/users/*/presence", appId=OTHER_APP.upper(), userId=ALEX, status=503, count=5)
    assert (await emulator.read(ALEX)).status_code == 200, "another app"
    assert (await emulator.read(ADELE, OTHER_APP)).status_code == 200, "another user"
    assert (await emulator.read(ALEX, OTHER_APP)).status_code == 503
    await emulator.rule(method="POST", path="/communications/*", status=429, count=5)
    assert (await emulator.read(ADELE)).status_code == 200, "another method and path"


async def test_a_latency_rule_alone_serves_the_request(emulator: Emulator) -> None:
    rule = await emulator.rule(path="/users/*/presence", latencyMs=50, count=1)
    assert (await emulator.read()).status_code == 200
    listed = (await emulator.client.get("/_emulator/faults")).json()["value"]
    assert [(r["id"], r["fired"]) for r in listed] == [(rule["id"], 1)]


async def test_rules_are_removed_one_by_one_or_all(emulator: Emulator) -> None:
    first = await emulator.rule(path="/users/*/presence", status=503, count=100)
    await emulator.rule(path="/me/*", status=503, count=100)
    assert (await emulator.client.delete(f"/_emulator/faults/{first['id']}")).status_code == 204
    assert (await emulator.read()).status_code == 200
    assert len((await emulator.client.get("/_emulator/faults")).json()["value"]) == 1
    assert (await emulator.client.delete(f"/_emulator/faults/{first['id']}")).status_code == 404
    assert (await emulator.client.delete("/_emulator/faults")).status_code == 204
    assert (await emulator.client.get("/_emulator/faults")).json()["value"] == []


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"path": "users/*", "status": 503, "count": 1}, "path"),
        ({"path": "/users/*", "status": 404, "count": 1}, "status"),
        ({"path": "/users/*", "count": 1}, "status, a latencyMs"),
        ({"path": "/users/*", "status": 503}, "exactly one of count"),
        ({"path": "/users/*", "status": 503, "count": 1, "probability": 0.5}, "exactly one of count"),
        ({"path": "/users/*", "status": 503, "probability": 1.5}, "probability"),
        ({"path": "/users/*", "status": 503, "count": 0}, "count"),
        ({"path": "/users/*", "status": 503, "count": 1, "seed": 3}, "seed"),
        ({"path": "/users/*", "latencyMs": 999_999, "count": 1}, "latencyMs"),
        ({"path": "/users/*", "latencyMs": 5, "retryAfter": 3, "count": 1}, "retryAfter"),
        ({"path": "/users/*", "method": "TRACE", "status": 503, "count": 1}, "method"),
        ({"path": "/users/*", "status": 503, "count": 1, "colour": "red"}, "colour"),
        ({"status": 503, "count": 1}, "needs a path (a request rule) or an action"),
        ({"action": "explode", "subscriptionId": "s"}, "action must be one of"),
        ({"action": "drop", "count": 1}, "needs a subscriptionId, a notificationUrl"),
        ({"action": "delay", "subscriptionId": "s"}, "delayMs goes with the delay action"),
        ({"action": "drop", "subscriptionId": "s", "delayMs": 100}, "delayMs goes with the delay action"),
        ({"action": "delay", "subscriptionId": "s", "delayMs": 600_001}, "delayMs must be 1 to"),
        ({"action": "reorder", "subscriptionId": "s"}, "windowMs goes with the reorder action"),
        ({"action": "drop", "subscriptionId": "s", "count": 0}, "count"),
        ({"action": "drop", "subscriptionId": "s", "status": 503}, "takes no status"),
        ({"action": "duplicate", "path": "/users/*", "subscriptionId": "s"}, "takes no path"),
        ({"path": "/users/*", "status": 503, "count": 1, "windowMs": 10}, "windowMs belongs to a notification rule"),
    ],
)
async def test_a_rule_that_cannot_mean_anything_is_refused_and_nothing_is_added(
    emulator: Emulator, rule: dict[str, Any], says: str
) -> None:
    response = await emulator.client.post("/_emulator/faults", json=rule)
    assert response.status_code == 400
    assert says in str(error_of(response)["message"])
    assert (await emulator.client.get("/_emulator/faults")).json()["value"] == []


async def test_no_fault_rule_is_taken_outside_the_emulator(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post("/_emulator/faults", json={"path": "/users/*", "status": 503, "count": 1})
    assert response.status_code == 404
    assert "--emulator" in str(error_of(response)["message"])
    assert (await client.get("/_emulator/faults")).status_code == 404
