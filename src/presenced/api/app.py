"""The Graph API's routes: every endpoint's table, ``/openapi.json`` and the health checks (``/health``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from presenced.api import faults, health, wire
from presenced.api.endpoints import Endpoint
from presenced.api.openapi import openapi_document
from presenced.api.routes import (
    actions,
    batch,
    directory,
    emulator,
    graph,
    history,
    mailbox,
    stream,
    subscriptions,
    users,
)

#: Paths of the APIs: their errors are Graph's JSON body whoever asks.
API_PREFIXES = ("/v1.0/", "/beta/", "/_", "/openapi.json", "/health")


def graph_endpoints(with_emulator: bool) -> tuple[Endpoint, ...]:
    """The API's endpoints (the emulator's clock only when the manual clock runs)."""
    endpoints: tuple[Endpoint, ...] = (
        graph.ENDPOINTS
        + actions.ENDPOINTS
        + mailbox.ENDPOINTS
        + users.ENDPOINTS
        + directory.ENDPOINTS
        + subscriptions.ENDPOINTS
        + stream.ENDPOINTS
        + batch.ENDPOINTS
        + history.ENDPOINTS
    )
    # The fault rules' routes are always there: off the emulator they say why they take no rule.
    endpoints += faults.ENDPOINTS + emulator.SCENARIO_ENDPOINTS
    return endpoints + emulator.ENDPOINTS if with_emulator else endpoints


def graph_routes(endpoints: tuple[Endpoint, ...]) -> list[Route]:
    """The endpoints' routes, with the OpenAPI document that describes them and the health checks."""
    openapi = wire.encode(openapi_document(endpoints))

    async def openapi_json(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    routes = [Route(path, e.handler, methods=[e.method]) for e in endpoints for path in e.paths()]
    routes.append(Route("/openapi.json", openapi_json, methods=["GET"]))
    routes += health.ROUTES
    return routes
