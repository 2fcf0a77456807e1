"""Emulator controls (only with ``--clock manual``): read and move the manual clock."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.endpoints import Endpoint
from presenced.api.http import json_body, json_response
from presenced.errors import BadRequest, ResourceNotFound
from presenced.services.emulator import EmulatorClock
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
