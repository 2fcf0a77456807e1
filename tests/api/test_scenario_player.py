"""Scenarios played through `POST /_emulator/scenarios`, in process, on both stores: steps at offsets of the
manual clock, what each did, expectations that stop the play, and scenarios refused whole (docs/emulator.md,
"Scenarios")."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from presenced.app import create_app
from presenced.services.demo import demo_user_id, seed_demo
from tests.api.test_read_api import error_of
from tests.support import BASE_URL, Tokens, bearer, build_on_manual_clock

ADELE = "adele@contoso.example"
TEAMS = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"


@pytest.fixture
async def emulator(tmp_path: Path, key_folder: Path, database_url: str | None) -> AsyncIterator[httpx.AsyncClient]:
    runtime = await build_on_manual_clock(tmp_path, key_folder, database_url)
    demo = await seed_demo(runtime.store, runtime.writer, runtime.clock)
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    reader = bearer(Tokens(runtime, demo.tenant.id).app("Presence.Read.All"))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=reader) as client:
            yield client
    finally:
        await runtime.close()


def day(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"name": "a test", "apps": {"teams": TEAMS}, "steps": list(steps)}


async def play(client: httpx.AsyncClient, scenario: dict[str, Any], **params: str) -> httpx.Response:
    return await client.post("/_emulator/scenarios", json=scenario, params=params)


async def clock(client: httpx.AsyncClient) -> str:
    return str((await client.get("/_emulator/clock")).json()["now"])


SET_BUSY = {"user": ADELE, "app": "teams", "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"}


async def test_steps_move_the_clock_to_their_offsets_and_say_what_they_did(emulator: httpx.AsyncClient) -> None:
    before = await clock(emulator)
    answer = await play(
        emulator,
        day(
            {"at": "PT0S", "note": "a call", "setPresence": SET_BUSY},
            {"at": "PT10M", "expect": {"user": ADELE, "availability": "Busy", "activity": "InACall"}},
            {"at": "PT2H", "expect": {"user": ADELE, "availability": "Away"}},
        ),
    )
    assert answer.status_code == 200, answer.text
    played = answer.json()
    assert played["passed"] is True, played
    assert played["start"][:19] == before[:19]
    assert [(s["number"], s["at"], s["ok"]) for s in played["steps"]] == [(1, "PT0S", True), (2, "PT10M", True),
                                                                          (3, "PT2H", True)]  # fmt: skip
    assert played["steps"][0]["did"] == f"{ADELE}: setPresence Busy/InACall for PT1H through teams"
    assert played["steps"][0]["note"] == "a call"
    assert played["steps"][1]["clock"][11:16] != played["steps"][0]["clock"][11:16]
    assert (await clock(emulator))[:19] == played["steps"][2]["clock"][:19]
    # The call's hour is over, and the demo's own session has faded: Graph reads what the scenario expected.
    read = await emulator.get(f"/v1.0/users/{demo_user_id('adele')}/presence")
    assert (read.json()["availability"], read.json()["activity"]) == ("Away", "Away")


async def test_an_unmet_expectation_stops_the_play_and_says_what_was_read(emulator: httpx.AsyncClient) -> None:
    answer = await play(
        emulator,
        day(
            {"at": "PT0S", "setPresence": SET_BUSY},
            {"at": "PT1M", "expect": {"user": ADELE, "availability": "Away"}},
            {"at": "PT5H", "clearPresence": {"user": ADELE, "app": "teams"}},
        ),
    )
    played = answer.json()
    assert played["passed"] is False
    assert [s["ok"] for s in played["steps"]] == [True, False]
    assert played["steps"][1]["did"] == f"{ADELE}: expected Away, read Busy/InACall"


async def test_through_plays_the_steps_up_to_an_offset(emulator: httpx.AsyncClient) -> None:
    answer = await play(
        emulator, day({"at": "PT0S", "setPresence": SET_BUSY}, {"at": "PT3H", "clearFaults": True}), through="PT1H"
    )
    assert [s["number"] for s in answer.json()["steps"]] == [1]


async def test_a_scenario_may_be_yaml_and_add_fault_rules(emulator: httpx.AsyncClient) -> None:
    text = """
name: faults
steps:
  - at: PT0S
    fault: {method: GET, path: /users/*/presence, status: 503, count: 1}
"""
    answer = await emulator.post(
        "/_emulator/scenarios", content=text.encode(), headers={"Content-Type": "application/yaml"}
    )
    assert answer.status_code == 200, answer.text
    assert "503 on GET /users/*/presence, the next 1" in answer.json()["steps"][0]["did"]
    user = demo_user_id("adele")
    assert [(await emulator.get(f"/v1.0/users/{user}/presence")).status_code for _ in range(2)] == [503, 200]


@pytest.mark.parametrize(
    ("scenario", "says"),
    [
        ({"name": "x", "steps": []}, "at least one step"),
        ({"steps": [{"at": "PT0S"}]}, "name"),
        (day({"at": "soon"}), "step 1 (at soon)"),
        (day({"at": "PT1H"}, {"at": "PT0S", "setPresence": SET_BUSY}), "comes before the step ahead of it"),
        (day({"at": "PT0S", "setPresence": SET_BUSY, "clearFaults": True}), "a step does one thing"),
        (day({"at": "PT0S", "setPresence": {**SET_BUSY, "app": "zoom"}}), "a name from 'apps' or a client id"),
        (day({"at": "PT0S", "setPresence": {**SET_BUSY, "expirationDuration": "long"}}), "expirationDuration"),
        (day({"at": "PT0S", "fault": {"path": "/x", "status": 404, "count": 1}}), "step 1 (at PT0S): fault: status"),
        (day({"at": "PT0S", "expect": {"user": ADELE}}), "expect names an availability"),
        (day({"at": "PT0S", "dance": {}}), "dance"),
        (day({"at": "PT0S", "setPresence": {**SET_BUSY, "user": "nobody@contoso.example"}}), "nobody@contoso.example"),
        ({**day({"at": "PT0S"}), "tenant": "00000000-0000-0000-0000-000000000000"}, "no tenant"),
    ],
)
async def test_a_scenario_that_cannot_mean_anything_is_refused_and_changes_nothing(
    emulator: httpx.AsyncClient, scenario: dict[str, Any], says: str
) -> None:
    before = await clock(emulator)
    answer = await emulator.post("/_emulator/scenarios", content=json.dumps(scenario).encode())
    assert answer.status_code in (400, 404), answer.text
    assert says in str(error_of(answer)["message"])
    assert await clock(emulator) == before
    assert (await emulator.get("/_emulator/faults")).json()["value"] == []


async def test_bad_yaml_is_a_400(emulator: httpx.AsyncClient) -> None:
    answer = await emulator.post(
        "/_emulator/scenarios", content=b"name: [unclosed", headers={"Content-Type": "application/yaml"}
    )
    assert answer.status_code == 400
    assert "not valid YAML" in str(error_of(answer)["message"])


async def test_no_scenario_is_played_off_the_manual_clock(client: httpx.AsyncClient) -> None:
    answer = await client.post("/_emulator/scenarios", json=day({"at": "PT0S"}))
    assert answer.status_code == 404
    assert "--clock manual" in str(error_of(answer)["message"])
