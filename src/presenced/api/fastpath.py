"""A raw-ASGI fast path for the hottest requests: single presence reads and the write actions.

Starlette's request, routing, response and middleware objects cost about as
much as a read itself, and a third of a write. This wrapper recognises

- ``GET`` of ``/{version}/me/presence``, ``/{version}/users/{id}/presence`` and
  ``/{version}/communications/presences/{id}`` without a query string, and
  computes the body with the same function the Starlette routes use
  (``presenced.api.routes.graph.presence_body``). A read that fails goes to the
  Starlette application, which renders errors: a read has no side effects, so
  doing a failed one twice changes nothing.
- ``POST`` of the nine actions (``setPresence`` …) on the same three paths
  without a query string, calling the same service call as the Starlette route
  (``presenced.api.routes.actions.BY_NAME``) in the same order (token, body,
  action). A write is not done twice: the fast path answers its errors itself,
  with the same error body (``presenced.api.http.error_parts``).

Anything else goes to the Starlette application.

With metrics on, each request the fast path answers is recorded under its route template
(``/v1.0/users/{id}/presence``, ``/beta/me/presence/setPresence``) with children bound once per
template, method and status (``presenced.metrics.HttpMetrics``), as ``api.metrics.RequestMetrics``
records the Starlette application's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect

from presenced.api.http import (
    ADMITTED,
    CALLER,
    JSON_TYPE_BYTES,
    ROUTE,
    admit,
    decode_body,
    error_parts,
    new_request_id,
    read_body,
    send_answer,
)
from presenced.api.routes.actions import BY_NAME, PREFIXES
from presenced.api.routes.graph import presence_body
from presenced.errors import PresencedError
from presenced.metrics import HttpMetrics
from presenced.wiring import installed

log = logging.getLogger("presenced.api")

_VERSIONS = frozenset({"v1.0", "beta"})
#: The route templates of the paths the fast path answers, by (version, kind) and (version, kind, action),
#: as the Starlette routes have them (the request log names the route, not the path).
_READ_ROUTES = {(v, kind): f"/{v}{prefix}" for v in _VERSIONS for prefix, kind in PREFIXES}
_ACTION_ROUTES = {(v, kind, a): f"/{v}{prefix}/{a}" for v in _VERSIONS for prefix, kind in PREFIXES for a in BY_NAME}


def _match(path: str) -> tuple[str, str, str] | None:
    """(version, kind, id) of a single-presence path, else None."""
    parts = path.split("/")
    if len(parts) == 4 and parts[2] == "me" and parts[3] == "presence" and parts[1] in _VERSIONS:
        return parts[1], "me", ""
    if len(parts) != 5 or parts[1] not in _VERSIONS or not parts[3] or not parts[4]:
        return None
    if parts[2] == "users" and parts[4] == "presence":
        return parts[1], "users", parts[3]
    if parts[2] == "communications" and parts[3] == "presences":
        return parts[1], "communications", parts[4]
    return None


def _match_action(path: str) -> tuple[str | None, str, str] | None:
    """(id or None for /me, action, route template) of an action's path, else None."""
    parts = path.split("/")
    if len(parts) < 5 or parts[1] not in _VERSIONS or parts[-1] not in BY_NAME:
        return None
    if len(parts) == 5 and parts[2] == "me" and parts[3] == "presence":
        return None, parts[4], _ACTION_ROUTES[(parts[1], "me", parts[4])]
    if len(parts) != 6 or not parts[3]:
        return None
    if (parts[2] == "users" and parts[4] == "presence") or (parts[2] == "communications" and parts[3] == "presences"):
        return (parts[3] if parts[2] == "users" else parts[4]), parts[5], _ACTION_ROUTES[(parts[1], parts[2], parts[5])]
    return None


def _header(scope: Any, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


async def _chunks(receive: Any) -> AsyncIterator[bytes]:
    """The request body as ASGI delivers it; a client that leaves first is a ``ClientDisconnect``."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


class PresenceFastPath:
    """The fast path in front of ``app`` (the Starlette application); ``rest`` answers what it does not
    (``app`` itself unless given, e.g. ``app`` with its requests recorded); ``metrics`` records what it answers."""

    def __init__(self, app: Any, metrics: HttpMetrics | None = None, rest: Any = None) -> None:
        self.app = app if rest is None else rest
        self.state = installed(app)
        self.metrics = metrics
        #: The read's children, bound once per template: a read records with no lookup of labels.
        self._reads = {key: metrics.bound(route, "GET", 200) for key, route in _READ_ROUTES.items()} if metrics else {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["query_string"]:
            method = scope["method"]
            if method == "GET":
                match = _match(scope["path"])
                if match is not None:
                    started = time.perf_counter()
                    if await self._read(scope, send, *match):
                        if self.metrics is not None:
                            count, duration = self._reads[match[0], match[1]]
                            count.inc()
                            duration.observe(time.perf_counter() - started)
                        return
            elif method == "POST":
                action = _match_action(scope["path"])
                if action is not None:
                    started = time.perf_counter()
                    status = await self._write(scope, receive, send, *action)
                    if self.metrics is not None:
                        self.metrics.record(action[2], "POST", status, time.perf_counter() - started)
                    return
        await self.app(scope, receive, send)

    async def _read(self, scope: Any, send: Any, version: str, kind: str, ref: str) -> bool:
        """Answer a read that succeeds; False (nothing sent) for one that does not."""
        authorization = client_id = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"client-request-id":
                client_id = value[:128]
        try:
            principal = await admit(self.state, authorization)
        except Exception:
            return False
        # A read that fails from here is answered by the route, as the same caller, admitted once.
        scope[ADMITTED] = principal
        try:
            body = await presence_body(self.state, version, kind, ref, principal, None)
        except Exception:
            return False
        request_id = new_request_id().encode()
        headers = [
            (b"content-type", JSON_TYPE_BYTES),
            (b"content-length", str(len(body)).encode()),
            (b"request-id", request_id),
            (b"client-request-id", client_id or request_id),
            (b"odata-version", b"4.0"),
        ]
        scope[ROUTE] = _READ_ROUTES[version, kind]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    async def _write(self, scope: Any, receive: Any, send: Any, ref: str | None, action: str, route: str) -> int:
        """Do the action and answer; the status answered."""
        body_type, call, status, optional = BY_NAME[action]
        scope[ROUTE] = route
        request_id = new_request_id()
        client = _header(scope, b"client-request-id")
        client_request_id = client[:128].decode("latin-1") if client else request_id
        try:
            authorization = _header(scope, b"authorization")
            principal = await admit(self.state, None if authorization is None else authorization.decode("latin-1"))
            scope[CALLER] = principal
            length = _header(scope, b"content-length")
            raw = await read_body(None if length is None else length.decode("latin-1"), _chunks(receive))
            content_type = (_header(scope, b"content-type") or b"").decode("latin-1")
            body: object = decode_body(raw, content_type, body_type, optional)
            await call(self.state.actions, principal, ref, body)
        except PresencedError as error:
            headers, payload = error_parts(error, request_id, client_request_id)
            await send_answer(send, error.status, headers, payload)
            return error.status
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            headers, payload = error_parts(PresencedError("An internal error occurred."), request_id, client_request_id)
            await send_answer(send, 500, headers, payload)
            return 500
        headers = {"request-id": request_id, "client-request-id": client_request_id, "OData-Version": "4.0"}
        await send_answer(send, status, headers, b"")
        return status
