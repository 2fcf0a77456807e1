"""Presence history and last seen (an extension), in process on the manual clock, on both stores: a day
of changes read back and paged, last seen across a session that fades to Offline, the retention purge,
and who may read them (docs/graph-api.md, "Presence history and last seen")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from presenced.app import create_app
from presenced.bootstrap import Runtime
from presenced.services.demo import demo_user_id, seed_demo
from tests.api.test_read_api import error_of
from tests.support import APP_ID, BASE_URL, Tokens, bearer, build_on_manual_clock

NESTOR = demo_user_id("nestor")
ADELE = demo_user_id("adele")
START = "2030-01-07T09:00:00Z"


class Day:
    def __init__(self, runtime: Runtime, client: httpx.AsyncClient, tokens: Tokens) -> None:
        self.runtime, self.client, self.tokens = runtime, client, tokens
        self.headers = bearer(tokens.app("Presence.ReadWrite.All"))

    async def advance(self, duration: str) -> str:
        moved = await self.client.post("/_emulator/clock", json={"advance": duration})
        assert moved.status_code == 200, moved.text
        now: str = moved.json()["now"]
        return now

    async def history(self, query: str = "", user: str = NESTOR) -> dict[str, Any]:
        response = await self.client.get(f"/_ext/users/{user}/presence/history{query}", headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def last_seen(self, user: str = NESTOR) -> str | None:
        response = await self.client.get(f"/_ext/users/{user}/presence/lastSeen", headers=self.headers)
        assert response.status_code == 200, response.text
        seen: str | None = response.json()["lastSeenDateTime"]
        return seen


@pytest.fixture
async def day(tmp_path: Path, key_folder: Path, database_url: str | None) -> AsyncIterator[Day]:
    runtime = await build_on_manual_clock(tmp_path, key_folder, database_url)
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            assert (await client.post("/_emulator/clock", json={"set": START})).status_code == 200
            demo = await seed_demo(runtime.store, runtime.writer, runtime.clock)
            yield Day(runtime, client, Tokens(runtime, demo.tenant.id))
    finally:
        await runtime.close()


async def _work_a_morning(day: Day) -> None:
    """Nestor's app reports him Available for an hour at 09:00; then time alone fades him to Offline."""
    body = {"sessionId": APP_ID, "availability": "Available", "activity": "Available", "expirationDuration": "PT1H"}
    path = f"/v1.0/users/{NESTOR}/presence/setPresence"
    assert (await day.client.post(path, json=body, headers=day.headers)).status_code == 200
    for _ in range(8):
        await day.advance("PT15M")


async def test_a_day_of_changes_reads_back_in_order_with_their_causes(day: Day) -> None:
    await _work_a_morning(day)
    body = await day.history(f"?from={START}&to=2030-01-08T00:00:00Z")
    entries = body["value"]
    assert [e["availability"] for e in entries] == ["Available", "Available", "Away", "Offline"]
    assert [e["activity"] for e in entries] == ["Available", "AvailableInactive", "Away", "Offline"]
    assert [e["cause"] for e in entries] == ["setPresence", "timer", "timer", "timer"]
    assert [e["sequenceNumber"] for e in entries] == sorted(e["sequenceNumber"] for e in entries)
    times = [datetime.fromisoformat(e["dateTime"][:26] + "+00:00") for e in entries]
    assert times == sorted(times)
    assert entries[0]["dateTime"].startswith("2030-01-07T09:00:00")
    assert "@odata.nextLink" not in body
    earlier = await day.history("?to=2030-01-07T09:00:00Z")
    assert all(e["dateTime"] < "2030-01-07T09:00:00" for e in earlier["value"])


async def test_history_pages_with_next_links_and_the_pages_make_the_whole(day: Day) -> None:
    await _work_a_morning(day)
    whole = (await day.history(f"?from={START}"))["value"]
    pages: list[dict[str, Any]] = []
    url: str | None = f"/_ext/users/{NESTOR}/presence/history?from={START}&$top=1"
    while url:
        response = await day.client.get(url, headers=day.headers)
        assert response.status_code == 200, response.text
        pages += response.json()["value"]
        url = response.json().get("@odata.nextLink")
        assert url is None or url.startswith(f"{BASE_URL}/_ext/users/")
    assert pages == whole


async def test_last_seen_is_now_while_not_offline_then_when_the_session_faded_to_offline(day: Day) -> None:
    assert await day.last_seen() is None, "never seen in the history kept"
    body = {"sessionId": APP_ID, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"}
    path = f"/v1.0/users/{NESTOR}/presence/setPresence"
    assert (await day.client.post(path, json=body, headers=day.headers)).status_code == 200
    now = await day.advance("PT20M")
    assert await day.last_seen() == now
    await day.advance("PT2H")
    offline = [e for e in (await day.history())["value"] if e["availability"] == "Offline"]
    assert offline, "the session expired"
    assert await day.last_seen() == offline[-1]["dateTime"]


async def test_history_past_the_retention_period_is_purged(day: Day) -> None:
    await _work_a_morning(day)
    assert (await day.history())["value"]
    await day.advance("P29D")
    assert await day.runtime.history.purge() == 0
    await day.advance("P2D")
    assert await day.runtime.history.purge() > 0
    assert (await day.history())["value"] == []
    assert await day.last_seen() is None


async def test_history_is_read_as_presence_is(day: Day) -> None:
    own_only = bearer(day.tokens.user(ADELE, "Presence.Read"))
    refused = await day.client.get(f"/_ext/users/{NESTOR}/presence/history", headers=own_only)
    assert refused.status_code == 403
    assert (await day.client.get(f"/_ext/users/{ADELE}/presence/history", headers=own_only)).status_code == 200
    assert (await day.client.get(f"/_ext/users/{NESTOR}/presence/lastSeen", headers=own_only)).status_code == 403
    assert (await day.client.get(f"/_ext/users/{NESTOR}/presence/history")).status_code == 401
    missing = await day.client.get("/_ext/users/nobody@contoso.example/presence/history", headers=day.headers)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "query",
    ["?from=yesterday", "?from=2030-01-07T09:00:00", "?from=2030-01-08T00:00:00Z&to=2030-01-07T00:00:00Z",
     "?$top=0", "?$top=1000", "?$skiptoken=%%%", "?$skiptoken=LTE", "?$select=availability", "?colour=red"],
)  # fmt: skip
async def test_bad_history_queries_are_bad_requests(day: Day, query: str) -> None:
    response = await day.client.get(f"/_ext/users/{NESTOR}/presence/history{query}", headers=day.headers)
    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"
