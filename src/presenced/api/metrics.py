"""``GET /metrics`` and the recording of every request by its route template (docs/deployment.md, "Metrics").

A request is labelled with the template of the route that answered it (``/v1.0/users/{id}/presence``),
never its raw path: ``TemplatedRoute`` leaves the template in the request's scope when it matches, and
``RequestMetrics``, around the Starlette application, records it when the answer ends. A request no
route matched is labelled ``unmatched``. The fast path (``api.fastpath``) records the requests it
answers itself, with the same templates.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from presenced.api.http import ROUTE
from presenced.metrics import UNMATCHED, HttpMetrics, exposition
from presenced.services.observe import Observer


class TemplatedRoute(Route):
    """A route that leaves its path template in the scope of the requests it matches (405s included)."""

    def matches(self, scope: Any) -> tuple[Match, Any]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child[ROUTE] = self.path
        return match, child


def templated(route: Route) -> TemplatedRoute:
    """The same route (path, endpoint, methods, name), leaving its template in the scope."""
    methods = sorted(route.methods - {"HEAD"}) if route.methods else None
    return TemplatedRoute(route.path, route.endpoint, methods=methods, name=route.name)


class RequestMetrics:
    """Records each HTTP request an application answers: its route template, method, status and duration."""

    def __init__(self, app: Any, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get(ROUTE, UNMATCHED)
            self.metrics.record(route, scope["method"], status, time.perf_counter() - started)


def metrics_route(observer: Observer) -> TemplatedRoute:
    """``GET /metrics``: the Prometheus text format, the backlogs measured now. It needs no token: it shows
    counts and durations, never a name, an id, a token or a URL."""

    async def metrics(request: Request) -> Response:
        await observer.refresh()
        body, content_type = exposition()
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    return TemplatedRoute("/metrics", metrics, methods=["GET"])
