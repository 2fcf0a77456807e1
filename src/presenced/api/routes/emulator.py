"""Emulator controls: read and move the manual clock (served only with ``--clock manual``), and play a
scenario on it (``/_emulator/scenarios``, always routed: off the emulator it answers 404 saying why)."""

from __future__ import annotations

from msgspec import Struct
from starlette.requests import Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.endpoints import Endpoint
from presenced.api.http import json_body, json_response, read_body
from presenced.errors import BadRequest, ResourceNotFound
from presenced.services.emulator import EmulatorClock
from presenced.services.inputs import duration_value
from presenced.services.scenarios import Played, Scenario, Scenarios, parse_scenario
from presenced.wiring import services_of


def _emulator(request: Request) -> EmulatorClock:
    """The manual clock's controls (these routes are only served with one)."""
    emulator = services_of(request).emulator
    if emulator is None:
        raise ResourceNotFound("The emulator's clock is not running: start the server with --clock manual.")
    return emulator


async def get_clock(request: Request) -> Response:
    now = await _emulator(request).now()
    return json_response(request, wire.encode(wire.ClockReading(now=wire.graph_datetime(now))))


async def move_clock(request: Request) -> Response:
    body = await json_body(request, wire.ClockMove)
    if body.to is not None and body.to.tzinfo is None:
        raise BadRequest("'set' must be an instant with an offset, e.g. 2026-03-02T09:00:00Z.")
    now = await _emulator(request).move(advance=body.advance, to=body.to)
    return json_response(request, wire.encode(wire.ClockReading(now=wire.graph_datetime(now))))


class PlayedStep(Struct, kw_only=True, omit_defaults=True):
    number: int
    at: str
    clock: str
    did: str
    ok: bool
    note: str | None = None


class PlayedScenario(Struct, kw_only=True):
    name: str
    start: str
    passed: bool
    steps: list[PlayedStep]


def played_body(played: Played) -> PlayedScenario:
    return PlayedScenario(
        name=played.name,
        start=wire.graph_datetime(played.start),
        passed=played.passed,
        steps=[
            PlayedStep(number=s.number, at=s.at, clock=wire.graph_datetime(s.clock), did=s.did, ok=s.ok, note=s.note)
            for s in played.steps
        ],
    )


def _scenarios(request: Request) -> Scenarios:
    scenarios = services_of(request).scenarios
    if scenarios is None:
        raise ResourceNotFound(
            "Scenarios are played on the emulator's manual clock: start the server with --clock manual."
        )
    return scenarios


async def play_scenario(request: Request) -> Response:
    scenarios = _scenarios(request)
    through = duration_value(request.query_params.get("through"), "through")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    yaml = content_type in {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
    if not yaml and content_type not in {"application/json", ""}:
        raise BadRequest("A scenario is JSON (application/json) or YAML (application/yaml).")
    scenario = parse_scenario(await read_body(request.headers.get("content-length"), request.stream()), yaml)
    played = await scenarios.play(scenario, through)
    return json_response(request, wire.encode(played_body(played)))


_NOTE = "No token needed: served only by an emulator started with --clock manual."

ENDPOINTS = (
    Endpoint(
        "GET",
        "/_emulator/clock",
        get_clock,
        "emulator.getClock",
        "Read the manual clock",
        (),
        response_body=wire.ClockReading,
        versioned=False,
        note=_NOTE,
    ),
    Endpoint(
        "POST",
        "/_emulator/clock",
        move_clock,
        "emulator.moveClock",
        "Move the manual clock forward ('advance': ISO 8601 duration, or 'set': instant); "
        "the transitions that fall due are stored before the answer",
        (),
        request_body=wire.ClockMove,
        response_body=wire.ClockReading,
        versioned=False,
        note=_NOTE,
    ),
)

#: Routed on every server: off the emulator, the answer says how to start one.
SCENARIO_ENDPOINTS = (
    Endpoint(
        "POST",
        "/_emulator/scenarios",
        play_scenario,
        "emulator.playScenario",
        "Play a scenario (JSON or YAML): steps at offsets of the manual clock, each a write, a fault rule or an "
        "expectation; '?through=PT1H' plays the steps up to that offset only",
        (),
        request_body=Scenario,
        response_body=PlayedScenario,
        query=("through",),
        versioned=False,
        note=_NOTE,
    ),
)
