"""The ASGI application: the Graph API and the sign-in side with the portal, side by side, with
their services and the translation of errors.

The two adapters (``presenced.api``, ``presenced.web``) do not know each other; this module, above
both, puts them in one application and decides, per request, whether an error is answered as
Graph's JSON body or as a page for a person.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.app import API_PREFIXES, graph_endpoints, graph_routes
from presenced.api.fastpath import PresenceFastPath
from presenced.api.faults import FaultInjection
from presenced.api.http import error_response
from presenced.api.metrics import RequestMetrics, metrics_route, templated
from presenced.bootstrap import Runtime
from presenced.errors import MethodNotAllowed, PresencedError, ResourceNotFound, ServiceUnavailable
from presenced.metrics import HttpMetrics
from presenced.web import routes as web_routes
from presenced.web.pages import message
from presenced.wiring import Services, install, installed

log = logging.getLogger("presenced.api")


def create_app(runtime: Runtime, ca_certificate: Path | None = None) -> PresenceFastPath | FaultInjection:
    """The application serving ``runtime``'s services (``ca_certificate``: the local CA, offered to browsers)."""
    endpoints = graph_endpoints(runtime.emulator is not None)
    settings = runtime.settings
    # Each route leaves its template for the request metrics; /metrics is here unless on its own port or off.
    routes = [templated(route) for route in graph_routes(endpoints) + web_routes.ROUTES]
    if settings.metrics and settings.metrics_port is None:
        routes.append(metrics_route(runtime.observer))
    app = Starlette(
        routes=routes,
        exception_handlers={PresencedError: _presenced_error, HTTPException: _http_error, Exception: _crash},
    )
    install(
        app,
        Services(
            base_url=runtime.settings.base_url,
            presence=runtime.presence,
            actions=runtime.actions,
            mailbox=runtime.mailbox,
            emulator=runtime.emulator,
            verifier=runtime.verifier,
            keys=runtime.keys,
            oauth=runtime.oauth,
            signin=runtime.signin,
            identity=runtime.identity,
            directory=runtime.directory,
            consents=runtime.consents,
            subscriptions=runtime.subscriptions,
            feed=runtime.feed,
            change_log=runtime.change_log,
            ca_certificate=ca_certificate,
            encoder=wire.PresenceEncoder(),
            endpoints=endpoints,
            health=runtime.health,
            throttle=runtime.throttle,
            faults=runtime.faults,
            history=runtime.history,
            scenarios=runtime.scenarios,
        ),
    )
    metrics = HttpMetrics() if settings.metrics else None
    fast = PresenceFastPath(app, metrics, RequestMetrics(app, metrics) if metrics is not None else None)
    if runtime.faults is None:
        return fast
    return FaultInjection(fast, installed(app), runtime.faults)


def create_metrics_app(runtime: Runtime) -> Starlette:
    """The application of ``--metrics-port``: ``GET /metrics`` alone."""
    return Starlette(routes=[metrics_route(runtime.observer)])


async def _presenced_error(request: Request, exc: Any) -> Response:
    if isinstance(exc, ServiceUnavailable):  # logged where it was found, once in a while; try again later
        if _for_a_person(request):
            return message(request, "Try again in a moment", exc.message, status=503)
        return error_response(request, exc)
    if exc.status >= 500:  # not a refusal but a failure: its message is for the log, not the client
        return await _crash(request, exc)
    return error_response(request, exc)


def _for_a_person(request: Request) -> bool:
    """Whether the request is a browser's navigation to a page, which should get a page back, not JSON."""
    return not request.url.path.startswith(API_PREFIXES) and "text/html" in request.headers.get("accept", "")


async def _http_error(request: Request, exc: Any) -> Response:
    if _for_a_person(request) and exc.status_code in {404, 405}:
        return message(request, "Page not found", "There is no page at this address.", status=exc.status_code)
    if exc.status_code == 405:
        return error_response(request, MethodNotAllowed(f"The method {request.method} is not allowed here."))
    if exc.status_code == 404:
        return error_response(request, ResourceNotFound(f"Resource not found for the segment '{request.url.path}'."))
    return error_response(request, PresencedError(str(exc.detail), status=exc.status_code, code="BadRequest"))


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    if _for_a_person(request):
        return message(
            request, "Something went wrong", "The server could not complete this. Try again in a moment.", status=500
        )
    return error_response(request, PresencedError("An internal error occurred."))
