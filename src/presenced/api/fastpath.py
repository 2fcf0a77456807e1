"""A raw-ASGI fast path for the hottest request: a single presence read.

Starlette's request, routing, response and middleware objects cost about as
much as the read itself. This wrapper recognises ``GET`` of
``/{version}/me/presence``, ``/{version}/users/{id}/presence`` and
``/{version}/communications/presences/{id}`` without a query string, computes
the body with the same function the Starlette routes use
(``presenced.api.routes.graph.presence_body``) and sends it. Anything else,
and any read that fails, goes to the Starlette application, which renders
errors: a read has no side effects, so doing a failed one twice changes nothing.
"""

from __future__ import annotations

from typing import Any

from presenced.api.http import JSON_TYPE, new_request_id
from presenced.api.routes.graph import presence_body

_VERSIONS = frozenset({"v1.0", "beta"})
_JSON_TYPE = JSON_TYPE.encode()


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


class PresenceReadFastPath:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            match = _match(scope["path"])
            if match is not None:
                authorization = client_id = None
                for name, value in scope["headers"]:
                    if name == b"authorization":
                        authorization = value.decode("latin-1")
                    elif name == b"client-request-id":
                        client_id = value[:128]
                try:
                    body = await presence_body(self.app.state, *match, authorization, None)
                except Exception:
                    pass
                else:
                    request_id = new_request_id().encode()
                    headers = [
                        (b"content-type", _JSON_TYPE),
                        (b"content-length", str(len(body)).encode()),
                        (b"request-id", request_id),
                        (b"client-request-id", client_id or request_id),
                        (b"odata-version", b"4.0"),
                    ]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)
