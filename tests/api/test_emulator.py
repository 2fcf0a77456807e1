"""The manual clock's endpoints (spec §A.11): only in manual mode, forward only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from presenced.app import create_app
from tests.support import BASE_URL, build_on_manual_clock

START = "2030-01-07T09:00:00.0000000Z"


@pytest.fixture
async def manual(tmp_path: Path, key_folder: Path, database_url: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app on the manual clock, set to START."""
    runtime = await build_on_manual_clock(tmp_path, key_folder, database_url)
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            assert (await client.post("/_emulator/clock", json={"set": START})).status_code == 200
            yield client
    finally:
        await runtime.close()


async def test_the_clock_reads_where_it_was_set(manual: httpx.AsyncClient) -> None:
    """GET /_emulator/clock answers the manual time."""
    assert (await manual.get("/_emulator/clock")).json() == {"now": START}


@pytest.mark.parametrize(
    ("move", "now"),
    [
        ({"advance": "PT5M"}, "2030-01-07T09:05:00.0000000Z"),
        ({"advance": "P1DT1H"}, "2030-01-08T10:00:00.0000000Z"),
        ({"advance": "PT0S"}, START),
        ({"set": "2030-01-07T10:00:00+01:00"}, START),
        ({"set": "2030-02-01T00:00:00Z"}, "2030-02-01T00:00:00.0000000Z"),
    ],
)
async def test_the_clock_moves_forward(manual: httpx.AsyncClient, move: dict[str, str], now: str) -> None:
    """Advancing by a duration or setting a later (or the same) instant answers the new time."""
    response = await manual.post("/_emulator/clock", json=move)
    assert response.status_code == 200
    assert response.json() == {"now": now}
    assert (await manual.get("/_emulator/clock")).json() == {"now": now}


@pytest.mark.parametrize(
    "move",
    [
        {"set": "2030-01-07T08:59:59Z"},
        {"set": "2030-01-07T09:00:00"},
        {"advance": "-PT5M"},
        {"advance": "soon"},
        {"advance": "PT5M", "set": "2031-01-01T00:00:00Z"},
        {},
        {"jump": "PT5M"},
    ],
    ids=["back", "no-offset", "negative", "not-a-duration", "both", "neither", "unknown-field"],
)
async def test_bad_moves_are_refused_and_change_nothing(manual: httpx.AsyncClient, move: dict[str, str]) -> None:
    """Moving back, a malformed move or an unknown field is a 400 and the clock stays put."""
    response = await manual.post("/_emulator/clock", json=move)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert (await manual.get("/_emulator/clock")).json() == {"now": START}


async def test_the_endpoints_exist_only_on_the_manual_clock(client: httpx.AsyncClient) -> None:
    """On real time there is no /_emulator/clock."""
    assert (await client.get("/_emulator/clock")).status_code == 404
    assert (await client.post("/_emulator/clock", json={"advance": "PT5M"})).status_code == 404
