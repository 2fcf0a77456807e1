"""Graph's throttling in process, on both stores: an app over its limit in a tenant gets 429 with
Retry-After and Graph's body, everywhere a token is taken, inside a batch too; other apps are not
counted with it; and a refused request changes nothing (docs/graph-api.md, "Throttling")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from presenced.app import create_app
from presenced.bootstrap import Runtime, build
from presenced.services.demo import DemoTenant, demo_user_id, seed_demo
from tests.api.test_read_api import error_of
from tests.support import APP_ID, BASE_URL, T0, FixedClock, Tokens, bearer, make_settings

ADELE = demo_user_id("adele")
OTHER_APP = "99999999-2222-3333-4444-555555555555"


@pytest.fixture
async def throttled(tmp_path: Path, key_folder: Path, database_url: str | None) -> AsyncIterator[Runtime]:
    """A runtime that lets an app make 3 requests in 30 seconds in a tenant."""
    settings = replace(make_settings(tmp_path, key_folder, database_url), throttle="3/30")
    runtime = await build(settings, clock=FixedClock(T0))
    if database_url is not None:
        async with runtime.engine.begin() as conn:
            await conn.exec_driver_sql("TRUNCATE throttle_counts, users, tenants CASCADE")
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
async def setting(throttled: Runtime) -> tuple[httpx.AsyncClient, Tokens, DemoTenant]:
    demo = await seed_demo(throttled.store, throttled.writer, throttled.clock)
    transport = httpx.ASGITransport(app=create_app(throttled), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL), Tokens(throttled, demo.tenant.id), demo


async def test_the_fourth_request_is_a_429_with_retry_after_and_graphs_body(
    setting: tuple[httpx.AsyncClient, Tokens, DemoTenant],
) -> None:
    client, tokens, _ = setting
    headers = bearer(tokens.app("Presence.ReadWrite.All"))
    statuses = [(await client.get(f"/v1.0/users/{ADELE}/presence", headers=headers)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = await client.get(f"/v1.0/users/{ADELE}/presence", headers=headers)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    error = error_of(refused)
    assert error["code"] == "TooManyRequests"
    # The Starlette routes, the write fast path and the directory count alike.
    for path in (f"/v1.0/users/{ADELE}/presence?$select=availability", "/v1.0/users", "/v1.0/subscriptions"):
        assert (await client.get(path, headers=headers)).status_code == 429, path


async def test_a_refused_write_changes_nothing(setting: tuple[httpx.AsyncClient, Tokens, DemoTenant]) -> None:
    client, tokens, _ = setting
    headers = bearer(tokens.app("Presence.ReadWrite.All"))
    before = (await client.get(f"/v1.0/users/{ADELE}/presence", headers=headers)).json()
    body = {"sessionId": APP_ID, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"}
    path = f"/v1.0/users/{ADELE}/presence/setStatusMessage"
    message = {"statusMessage": {"message": {"content": "throttled", "contentType": "text"}}}
    assert (await client.post(path, json=message, headers=headers)).status_code == 200
    assert (await client.get(f"/v1.0/users/{ADELE}/presence", headers=headers)).status_code == 200
    refused = await client.post(f"/v1.0/users/{ADELE}/presence/setPresence", json=body, headers=headers)
    assert refused.status_code == 429
    other = bearer(tokens.app("Presence.ReadWrite.All", app_id=OTHER_APP))
    after = (await client.get(f"/v1.0/users/{ADELE}/presence", headers=other)).json()
    assert (after["availability"], after["activity"]) == (before["availability"], before["activity"])


async def test_each_app_has_its_own_count_and_inner_batch_requests_count_one_by_one(
    setting: tuple[httpx.AsyncClient, Tokens, DemoTenant],
) -> None:
    client, tokens, _ = setting
    first = bearer(tokens.app("Presence.Read.All"))
    second = bearer(tokens.app("Presence.Read.All", app_id=OTHER_APP))
    requests = [{"id": str(n), "method": "GET", "url": f"/users/{ADELE}/presence"} for n in range(5)]
    batch = await client.post("/v1.0/$batch", json={"requests": requests}, headers=first)
    answers = batch.json()["responses"]
    assert sorted(a["status"] for a in answers) == [200, 200, 200, 429, 429]
    refused = next(a for a in answers if a["status"] == 429)
    assert int(refused["headers"]["Retry-After"]) >= 1
    assert refused["body"]["error"]["code"] == "TooManyRequests"
    assert (await client.get(f"/v1.0/users/{ADELE}/presence", headers=second)).status_code == 200


async def test_requests_without_a_good_token_are_not_counted(
    setting: tuple[httpx.AsyncClient, Tokens, DemoTenant],
) -> None:
    client, tokens, _ = setting
    for _ in range(5):
        assert (await client.get(f"/v1.0/users/{ADELE}/presence")).status_code == 401
    headers = bearer(tokens.app("Presence.Read.All"))
    assert (await client.get(f"/v1.0/users/{ADELE}/presence", headers=headers)).status_code == 200
