"""The ASGI application: the Graph API and the sign-in side with the portal, side by side, with
their services and the translation of errors.

The two adapters (``presenced.api``, ``presenced.web``) do not know each other; this module, above
both, puts them in one application and decides, per request, whether an error is answered as
Graph's JSON body or as a page for a person.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.app import API_PREFIXES, graph_endpoints, graph_routes
from presenced.api.fastpath import PresenceFastPath
from presenced.api.faults import FaultInjection
from presenced.api.http import ROUTE, error_response
from presenced.api.metrics import RequestMetrics, metrics_route, templated
from presenced.bootstrap import Runtime
from presenced.errors import MethodNotAllowed, PresencedError, ResourceNotFound, ServiceUnavailable
from presenced.metrics import HttpMetrics
from presenced.oauth.errors import OAuthError
from presenced.web import routes as web_routes
from presenced.web.endpoints import token, token_answer_headers, token_json
from presenced.web.pages import FORM_TYPE, message, oauth_error_json, read_plain_form
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
    rest = TokenFastPath(app, RequestMetrics(app, metrics) if metrics is not None else app, metrics)
    fast = PresenceFastPath(app, metrics, rest)
    if runtime.faults is None:
        return fast
    return FaultInjection(fast, installed(app), runtime.faults)


#: The token endpoint's route (``web.routes``): its template, as the request log and the metrics name it.
TOKEN_ROUTE = "/{tenant}/oauth2/v2.0/token"


class TokenFastPath:
    """``POST /{tenant}/oauth2/v2.0/token`` past the router, which costs a token request about as much as what it
    does besides signing.

    A form sent as clients send it (``Content-Type: application/x-www-form-urlencoded``, no parameters) is read
    straight from ASGI by ``web.pages.read_plain_form`` (``read_form``'s checks, fields and errors), handed to the
    authorization server, and answered with the bytes and headers of the route's answer (``web.endpoints``);
    any other goes to the route's own handler (``web.endpoints.token``), given the request the route would give
    it. Refusals are Entra's error body, as the handler renders them, and other errors are answered by the
    application's own handlers, as the application would (a crash is answered with a 500 and raised on, as
    Starlette's ``ServerErrorMiddleware`` does). Anything else goes to ``rest``. The request is logged and, with
    ``metrics``, recorded under the route's template.
    """

    def __init__(self, app: Starlette, rest: Any, metrics: HttpMetrics | None) -> None:
        self.app = app
        self.rest = rest
        self.metrics = metrics
        self.oauth = installed(app).oauth

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            parts = scope["path"].split("/")
            if len(parts) == 5 and parts[1] and parts[2] == "oauth2" and parts[3] == "v2.0" and parts[4] == "token":
                await self._token(scope, receive, send, parts[1])
                return
        await self.rest(scope, receive, send)

    async def _token(self, scope: Any, receive: Any, send: Any, tenant: str) -> None:
        started = time.perf_counter()
        # What the router and the route would have left in the scope.
        scope["app"] = self.app
        scope["path_params"] = {"tenant": tenant}
        scope[ROUTE] = TOKEN_ROUTE
        headers = Headers(scope=scope)
        status = 500
        payload: bytes | None = None
        try:
            try:
                if headers.get("content-type", "").lower() == FORM_TYPE:
                    form = await read_plain_form(headers, _chunks(receive))
                    payload = token_json(await self.oauth.token(tenant, form, headers))
                else:
                    response = await token(Request(scope, receive))
            except OAuthError as error:
                response = oauth_error_json(Request(scope, receive), error)
            except PresencedError as exc:
                response = await _presenced_error(Request(scope, receive), exc)
            except Exception as exc:
                # As Starlette's ServerErrorMiddleware: answered, then raised on for the server to log.
                await (await _crash(Request(scope, receive), exc))(scope, receive, send)
                raise
            if payload is None:
                status = response.status_code
                await response(scope, receive, send)
            else:
                status = 200
                headers_out = token_answer_headers(len(payload))
                await send({"type": "http.response.start", "status": 200, "headers": headers_out})
                await send({"type": "http.response.body", "body": payload})
        finally:
            if self.metrics is not None:
                self.metrics.record(TOKEN_ROUTE, "POST", status, time.perf_counter() - started)


async def _chunks(receive: Any) -> AsyncIterator[bytes]:
    """A request's body as ASGI delivers it; a client that leaves first is a ``ClientDisconnect``."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


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
