"""``$select=lastSeenDateTime`` on a presence read (an extension), in process on the manual clock, on both
stores: only when named, with the other selected properties, null for a user never seen, the instant a
session faded to Offline, read as presence is (docs/graph-api.md, "Presence history and last seen")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from presenced.app import create_app
from presenced.services.demo import demo_user_id, seed_demo
from tests.api.test_read_api import error_of
from tests.support import APP_ID, BASE_URL, Tokens, bearer, build_on_manual_clock

NESTOR = demo_user_id("nestor")
ADELE = demo_user_id("adele")
START = "2030-01-07T09:00:00Z"
#: The paths that read Nestor's presence, with the context each names (before the selection).
NESTOR_PATHS = [
    (f"/v1.0/users/{NESTOR}/presence", f"{BASE_URL}/v1.0/$metadata#users('{NESTOR}')/presence"),
    ("/beta/users/nestor@contoso.example/presence", f"{BASE_URL}/beta/$metadata#users('{NESTOR}')/presence"),
    (f"/v1.0/communications/presences/{NESTOR}", f"{BASE_URL}/v1.0/$metadata#communications/presences"),
    ("/v1.0/me/presence", f"{BASE_URL}/v1.0/$metadata#users('{NESTOR}')/presence"),
]


class Office:
    """The demo tenant on the manual clock at ``START``, and tokens of it."""

    def __init__(self, client: httpx.AsyncClient, tokens: Tokens) -> None:
        self.client, self.tokens = client, tokens
        self.app = bearer(tokens.app("Presence.ReadWrite.All"))
        #: Nestor himself, reading his own presence (the only token /me takes).
        self.nestor = bearer(tokens.user(NESTOR, "Presence.Read"))

    async def advance(self, duration: str) -> str:
        moved = await self.client.post("/_emulator/clock", json={"advance": duration})
        assert moved.status_code == 200, moved.text
        now: str = moved.json()["now"]
        return now

    async def set_presence(self, availability: str, activity: str, duration: str = "PT1H") -> None:
        body = {"sessionId": APP_ID, "availability": availability, "activity": activity, "expirationDuration": duration}
        response = await self.client.post(f"/v1.0/users/{NESTOR}/presence/setPresence", json=body, headers=self.app)
        assert response.status_code == 200, response.text

    def headers_for(self, path: str) -> dict[str, str]:
        return self.nestor if "/me/" in path else self.app

    async def read(self, path: str, query: str = "", headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.client.get(path + query, headers=headers or self.headers_for(path))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def extension_last_seen(self, user: str) -> str | None:
        """What ``/_ext/users/{id}/presence/lastSeen`` says."""
        seen: str | None = (await self.read(f"/_ext/users/{user}/presence/lastSeen"))["lastSeenDateTime"]
        return seen


@pytest.fixture
async def office(tmp_path: Path, key_folder: Path, database_url: str | None) -> AsyncIterator[Office]:
    runtime = await build_on_manual_clock(tmp_path, key_folder, database_url)
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            assert (await client.post("/_emulator/clock", json={"set": START})).status_code == 200
            demo = await seed_demo(runtime.store, runtime.writer, runtime.clock)
            yield Office(client, Tokens(runtime, demo.tenant.id))
    finally:
        await runtime.close()


@pytest.mark.parametrize(("path", "context"), NESTOR_PATHS)
async def test_without_select_naming_it_the_presence_has_no_last_seen(office: Office, path: str, context: str) -> None:
    """The Graph body is unchanged: no lastSeenDateTime by default, nor when $select names Graph's properties."""
    await office.set_presence("Available", "Available")
    whole = await office.read(path)
    assert "lastSeenDateTime" not in whole
    assert {"availability", "activity", "sequenceNumber"} <= set(whole)
    assert "lastSeenDateTime" not in await office.read(path, "?$select=availability,activity")
    collection = await office.client.post(
        "/v1.0/communications/getPresencesByUserId", json={"ids": [NESTOR]}, headers=office.app
    )
    assert collection.status_code == 200
    assert "lastSeenDateTime" not in collection.json()["value"][0]


@pytest.mark.parametrize(("path", "context"), NESTOR_PATHS)
async def test_select_with_last_seen_answers_it_beside_the_named_properties_only(
    office: Office, path: str, context: str
) -> None:
    """While Nestor is not Offline, last seen is now (on the presence clock), as the lastSeen extension says."""
    await office.set_presence("Busy", "InACall")
    now = await office.advance("PT20M")
    body = await office.read(path, "?$select=availability,lastSeenDateTime")
    assert body == {
        "@odata.context": f"{context}(availability,lastSeenDateTime)/$entity",
        "id": NESTOR,
        "availability": "Busy",
        "lastSeenDateTime": now,
    }
    assert body["lastSeenDateTime"] == await office.extension_last_seen(NESTOR)
    alone = await office.read(path, "?$select=lastSeenDateTime")
    assert set(alone) == {"@odata.context", "id", "lastSeenDateTime"}


async def test_last_seen_is_null_for_a_user_never_seen(office: Office) -> None:
    """The demo's Nestor has never had a session: Offline, and never seen in the history kept."""
    body = await office.read(f"/v1.0/users/{NESTOR}/presence", "?$select=availability,lastSeenDateTime")
    assert body["availability"] == "Offline"
    assert body["lastSeenDateTime"] is None
    assert (await office.read("/beta/me/presence", "?$select=lastSeenDateTime"))["lastSeenDateTime"] is None


async def test_after_the_session_fades_to_offline_last_seen_is_when_it_did(office: Office) -> None:
    """An hour's Available session from 09:00 fades to Away, then expires at 10:00: last seen stays 10:00."""
    await office.set_presence("Available", "Available")
    for _ in range(8):
        await office.advance("PT15M")
    path = f"/v1.0/users/{NESTOR}/presence"
    body = await office.read(path, "?$select=availability,activity,lastSeenDateTime")
    assert (body["availability"], body["activity"]) == ("Offline", "Offline")
    assert body["lastSeenDateTime"] == "2030-01-07T10:00:00.0000000Z"
    await office.advance("PT3H")
    assert (await office.read(path, "?$select=lastSeenDateTime"))["lastSeenDateTime"] == "2030-01-07T10:00:00.0000000Z"
    assert await office.extension_last_seen(NESTOR) == "2030-01-07T10:00:00.0000000Z"


async def test_last_seen_takes_the_permission_that_reads_that_presence(office: Office) -> None:
    """Presence.Read reads one's own last seen but not another user's (403), as it reads presence."""
    await office.set_presence("Available", "Available")
    own_only = bearer(office.tokens.user(ADELE, "Presence.Read"))
    refused = await office.client.get(f"/v1.0/users/{NESTOR}/presence?$select=lastSeenDateTime", headers=own_only)
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "Forbidden"
    assert "lastSeenDateTime" not in refused.text
    for path in ("/v1.0/me/presence", f"/v1.0/users/{ADELE}/presence"):
        assert (await office.read(path, "?$select=lastSeenDateTime", own_only))["id"] == ADELE
    anonymous = await office.client.get(f"/v1.0/users/{NESTOR}/presence?$select=lastSeenDateTime")
    assert anonymous.status_code == 401
    all_users = bearer(office.tokens.user(ADELE, "Presence.Read.All"))
    assert (await office.read(f"/v1.0/users/{NESTOR}/presence", "?$select=lastSeenDateTime", all_users))[
        "lastSeenDateTime"
    ]


@pytest.mark.parametrize("named", ["lastSeen", "LastSeenDateTime", "colour"])
async def test_an_unknown_property_is_still_a_bad_request(office: Office, named: str) -> None:
    response = await office.client.get(
        f"/v1.0/users/{NESTOR}/presence?$select=availability,lastSeenDateTime,{named}", headers=office.app
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "BadRequest"
    assert f"'{named}'" in str(error["message"])


async def test_get_presences_by_user_id_does_not_select_last_seen(office: Office) -> None:
    """Graph's collection action keeps Graph's properties: naming the extension there is a 400 saying where it is."""
    response = await office.client.post(
        "/v1.0/communications/getPresencesByUserId?$select=availability,lastSeenDateTime",
        json={"ids": [NESTOR]},
        headers=office.app,
    )
    assert response.status_code == 400
    message = str(error_of(response)["message"])
    assert "'lastSeenDateTime'" in message
    assert "single presence read" in message


async def test_a_batched_read_selects_last_seen_too(office: Office) -> None:
    await office.set_presence("Available", "Available")
    now = await office.advance("PT1M")
    requests = [{"id": "1", "method": "GET", "url": f"/users/{NESTOR}/presence?$select=lastSeenDateTime"}]
    response = await office.client.post("/v1.0/$batch", json={"requests": requests}, headers=office.app)
    assert response.status_code == 200, response.text
    (answer,) = response.json()["responses"]
    assert answer["status"] == 200
    assert answer["body"]["lastSeenDateTime"] == now
