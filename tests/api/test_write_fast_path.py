"""The raw-ASGI fast path of the write actions answers exactly as the Starlette routes do.

The fast path takes POSTs without a query string; the same request with a query string (which
the actions ignore) goes to the Starlette route. Each case is sent both ways, to the same state,
and the two answers must match: status, body (but for the request ids and date it names) and
headers (but for the request ids).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from presenced.services.demo import DemoTenant, demo_user_id
from tests.support import Tokens, bearer

NESTOR = demo_user_id("nestor")
ADELE = demo_user_id("adele")
APP = "11111111-2222-3333-4444-555555555555"  # the tests' tokens' application id
SESSION = {"sessionId": APP, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"}
LOCATION = {"workLocationType": "office", "placeId": "b-1"}

#: name, path, body (a dict, raw bytes, or None for none), content type, token: "write" | "read" | "none"
CASES: list[tuple[str, str, Any, str, str]] = [
    ("setPresence", f"/v1.0/users/{NESTOR}/presence/setPresence", SESSION, "application/json", "write"),
    (
        "setPresence on /beta",
        f"/beta/communications/presences/{NESTOR}/setPresence",
        SESSION,
        "application/json",
        "write",
    ),
    ("a 204 action", f"/v1.0/users/{NESTOR}/presence/setManualLocation", LOCATION, "application/json", "delegated"),
    ("no body needed", f"/v1.0/users/{NESTOR}/presence/clearUserPreferredPresence", None, "", "write"),
    (
        "a bad pair",
        f"/v1.0/users/{NESTOR}/presence/setPresence",
        {**SESSION, "activity": "Away"},
        "application/json",
        "write",
    ),
    ("not JSON", f"/v1.0/users/{NESTOR}/presence/setPresence", b"{nope", "application/json", "write"),
    (
        "a wrong type",
        f"/v1.0/users/{NESTOR}/presence/setPresence",
        {**SESSION, "sessionId": 7},
        "application/json",
        "write",
    ),
    ("no content type", f"/v1.0/users/{NESTOR}/presence/setPresence", SESSION, "text/plain", "write"),
    ("no body", f"/v1.0/users/{NESTOR}/presence/setPresence", None, "", "write"),
    ("too large", f"/v1.0/users/{NESTOR}/presence/setPresence", b" " * (1 << 20 + 1), "application/json", "write"),
    ("no token", f"/v1.0/users/{NESTOR}/presence/setPresence", SESSION, "application/json", "none"),
    ("read-only token", f"/v1.0/users/{NESTOR}/presence/setPresence", SESSION, "application/json", "read"),
    ("unknown user", "/v1.0/users/nobody@contoso.example/presence/setPresence", SESSION, "application/json", "write"),
    (
        "nothing to clear",
        f"/v1.0/users/{NESTOR}/presence/clearPresence",
        {"sessionId": APP},
        "application/json",
        "write",
    ),
    ("/me without a user", "/v1.0/me/presence/setPresence", SESSION, "application/json", "write"),
]


def _token(tokens: Tokens, kind: str) -> dict[str, str]:
    if kind == "write":
        return bearer(tokens.app("Presence.ReadWrite.All"))
    if kind == "read":
        return bearer(tokens.app("Presence.Read.All"))
    if kind == "delegated":
        return bearer(tokens.user(NESTOR, "Presence.ReadWrite"))
    return {}


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """Status, headers and body without what differs between any two answers (ids, the date)."""
    headers = {k: v for k, v in response.headers.items() if k not in {"request-id", "client-request-id", "date"}}
    body: Any = response.content
    if body:
        body = json.loads(body)
        inner = body["error"].pop("innerError")
        assert set(inner) == {"date", "request-id", "client-request-id"}
        assert inner["request-id"] == response.headers["request-id"]
        assert inner["client-request-id"] == response.headers["client-request-id"]
    assert response.headers["client-request-id"] == "sent-by-the-test"
    return response.status_code, headers, body


@pytest.mark.parametrize(("name", "path", "body", "content_type", "token"), CASES, ids=[c[0] for c in CASES])
async def test_the_fast_path_answers_as_the_starlette_route(
    client: httpx.AsyncClient,
    tokens: Tokens,
    demo: DemoTenant,
    name: str,
    path: str,
    body: Any,
    content_type: str,
    token: str,
) -> None:
    """A write answers the same through the fast path and through its Starlette route."""
    headers = _token(tokens, token) | {"client-request-id": "sent-by-the-test"}
    if content_type:
        headers["Content-Type"] = content_type
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    fast = await client.post(path, content=content, headers=headers)
    routed = await client.post(path + "?via=starlette", content=content, headers=headers)
    assert _comparable(fast) == _comparable(routed), name
