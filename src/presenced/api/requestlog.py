"""One log line per request, at INFO on ``presenced.request`` (it replaces uvicorn's access log).

The line's fields: ``request_id`` (the ``request-id`` header of the answer, on Graph's answers),
``client_request_id`` (the client's header, as it was sent), ``method``, ``route`` (the route's
template, ``/v1.0/users/{id}/presence``, never the path with its ids nor the query string), ``status``,
``duration_ms``, and ``tenant_id`` and ``app_id`` of a request whose token was valid (never the token).

The wrapper is on the read path: it looks nothing up per request but the headers, and leaves the line's
text to the formatter.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from presenced.api.http import ADMITTED, CALLER, ROUTE
from presenced.logs import REQUEST_LOGGER

#: ``route`` of a request no route took (an unknown path, or a method no route of the path serves).
UNMATCHED = "(unmatched)"

_MAX_CLIENT_ID = 128


class RequestLog:
    """Wraps an ASGI app; logs each HTTP request once its answer is sent (or has failed)."""

    def __init__(self, app: Any, log: logging.Logger | None = None) -> None:
        self.app = app
        self._log = log or logging.getLogger(REQUEST_LOGGER)
        self._name = self._log.name

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer: list[Any] = [500, None]  # status, request id: an application that fails sends nothing

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                answer[0] = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"request-id":
                        answer[1] = value.decode("latin-1")
                        break
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._write(scope, answer[0], answer[1], time.perf_counter() - started)

    def _write(self, scope: Any, status: int, request_id: str | None, seconds: float) -> None:
        client_request_id = None
        for name, value in scope["headers"]:
            if name == b"client-request-id":
                client_request_id = value[:_MAX_CLIENT_ID].decode("latin-1")
                break
        route = scope.get(ROUTE)
        if route is None:
            matched = scope.get("route")
            route = getattr(matched, "path", None) or UNMATCHED
        caller = scope.get(CALLER) or scope.get(ADMITTED)
        method = scope["method"]
        record = self._log.makeRecord(self._name, logging.INFO, "", 0, "%s %s %d", (method, route, status), None)
        record.fields = {
            "request_id": request_id,
            "client_request_id": client_request_id,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "tenant_id": caller.tenant_id if caller is not None else None,
            "app_id": caller.app_id if caller is not None else None,
        }
        self._log.handle(record)
