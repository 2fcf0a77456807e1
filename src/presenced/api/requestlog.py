"""One log line per request, at INFO on ``presenced.request`` (it replaces uvicorn's access log).

The line's fields: ``request_id`` (the ``request-id`` header of the answer, on Graph's answers),
``client_request_id`` (the client's header, as it was sent), ``method``, ``route`` (the route's
template, ``/v1.0/users/{id}/presence``, never the path with its ids nor the query string), ``status``,
``duration_ms``, and ``tenant_id`` and ``app_id`` of a request whose token was valid (never the token).

The wrapper is on the read path: the logger, its level and its handlers are looked up once
(``presenced.logs.writer``); per request it reads the headers it needs and has the formatter make the line.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from presenced.api.http import ADMITTED, CALLER, ROUTE
from presenced.logs import REQUEST_LOGGER, writer
from presenced.metrics import UNMATCHED

#: ``route`` of a request no route took (an unknown path, or a method no route of the path serves).

_MAX_CLIENT_ID = 128


class RequestLog:
    """Wraps an ASGI app; logs each HTTP request once its answer is sent (or has failed)."""

    def __init__(self, app: Any, log: logging.Logger | None = None) -> None:
        self.app = app
        # Found once: the logger, its level and its handlers are set before the server starts.
        self._emit = writer(log or logging.getLogger(REQUEST_LOGGER))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._emit is None:
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
        route = scope.get(ROUTE, UNMATCHED)
        caller = scope.get(CALLER) or scope.get(ADMITTED)
        method = scope["method"]
        self._emit(  # type: ignore[misc]
            f"{method} {route} {status}",
            {
                "request_id": request_id,
                "client_request_id": client_request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": int(seconds * 1_000_000) / 1000,
                "tenant_id": caller.tenant_id if caller is not None else None,
                "app_id": caller.app_id if caller is not None else None,
            },
        )
