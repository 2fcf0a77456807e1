"""The line per request (presenced.api.requestlog) around the whole application: the fast path, the
Starlette routes, the sign-in side and paths no route takes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from presenced.api.requestlog import RequestLog
from presenced.app import create_app
from presenced.bootstrap import Runtime
from presenced.logs import JsonFormatter, TextFormatter
from presenced.metrics import UNMATCHED
from presenced.services.demo import DemoTenant, demo_user_id
from tests.support import APP_ID, BASE_URL, REQUEST_LINE_FIELDS, Tokens, bearer

NESTOR = demo_user_id("nestor")
ADELE = demo_user_id("adele")
SESSION = {"sessionId": APP_ID, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"}


class Logged:
    """An in-process client of the application wrapped in ``RequestLog``, and the lines it wrote."""

    def __init__(self, http: httpx.AsyncClient, stream: io.StringIO) -> None:
        self.http, self.stream = http, stream

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def last(self) -> dict[str, Any]:
        return self.lines()[-1]


def _logger(stream: io.StringIO, formatter: logging.Formatter) -> logging.Logger:
    log = logging.getLogger(f"presenced.request.test{id(stream)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log.handlers = [handler]
    return log


@pytest.fixture
async def logged(runtime: Runtime, demo: DemoTenant) -> AsyncIterator[Logged]:
    stream = io.StringIO()
    app = RequestLog(create_app(runtime), _logger(stream, JsonFormatter()))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield Logged(http, stream)


async def test_a_fast_path_read_logs_every_field_with_the_route_not_the_path(logged: Logged, tokens: Tokens) -> None:
    token = tokens.app("Presence.Read.All")
    headers = bearer(token) | {"client-request-id": "my-correlation-id"}
    response = await logged.http.get(f"/v1.0/users/{NESTOR}/presence", headers=headers)
    assert response.status_code == 200
    line = logged.last()
    assert tuple(line) == REQUEST_LINE_FIELDS
    assert line["level"] == "info"
    assert line["logger"].startswith("presenced.request")
    assert line["message"] == "GET /v1.0/users/{id}/presence 200"
    assert line["request_id"] == response.headers["request-id"]
    assert line["client_request_id"] == "my-correlation-id"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/v1.0/users/{id}/presence", 200)
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert (line["tenant_id"], line["app_id"]) == (tokens.tenant_id, APP_ID)
    text = logged.stream.getvalue()
    assert NESTOR not in text
    assert token not in text


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/v1.0/me/presence", "/v1.0/me/presence"),
        (f"/beta/communications/presences/{ADELE}", "/beta/communications/presences/{id}"),
        # A query string takes the Starlette route.
        (f"/v1.0/users/{ADELE}/presence?$select=availability", "/v1.0/users/{id}/presence"),
    ],
)
async def test_reads_on_each_path_name_their_route(logged: Logged, tokens: Tokens, path: str, route: str) -> None:
    response = await logged.http.get(path, headers=bearer(tokens.user(ADELE, "Presence.Read.All")))
    assert response.status_code == 200
    line = logged.last()
    assert (line["route"], line["status"], line["request_id"]) == (route, 200, response.headers["request-id"])
    assert line["client_request_id"] is None
    assert (line["tenant_id"], line["app_id"]) == (tokens.tenant_id, APP_ID)
    assert "$select" not in logged.stream.getvalue()


@pytest.mark.parametrize(
    ("path", "route"),
    [
        (f"/beta/communications/presences/{NESTOR}/setPresence", "/beta/communications/presences/{id}/setPresence"),
        # A query string takes the Starlette route.
        (f"/v1.0/users/{NESTOR}/presence/setPresence?x=1", "/v1.0/users/{id}/presence/setPresence"),
    ],
)
async def test_writes_log_their_action_route_and_caller(logged: Logged, tokens: Tokens, path: str, route: str) -> None:
    response = await logged.http.post(path, json=SESSION, headers=bearer(tokens.app("Presence.ReadWrite.All")))
    assert response.status_code == 200
    line = logged.last()
    assert (line["method"], line["route"], line["status"]) == ("POST", route, 200)
    assert line["request_id"] == response.headers["request-id"]
    assert (line["tenant_id"], line["app_id"]) == (tokens.tenant_id, APP_ID)


async def test_a_refused_token_logs_no_tenant_nor_app_and_not_the_token(logged: Logged) -> None:
    token = "not-a-token-7e1f0c"
    response = await logged.http.get(f"/v1.0/users/{NESTOR}/presence", headers=bearer(token))
    assert response.status_code == 401
    line = logged.last()
    assert (line["route"], line["status"], line["request_id"]) == (
        "/v1.0/users/{id}/presence",
        401,
        response.headers["request-id"],
    )
    assert (line["tenant_id"], line["app_id"]) == (None, None)
    assert token not in logged.stream.getvalue()


async def test_a_write_refused_by_the_fast_path_logs_its_status(logged: Logged, tokens: Tokens) -> None:
    response = await logged.http.post(
        f"/v1.0/users/{NESTOR}/presence/setPresence", json={}, headers=bearer(tokens.app("Presence.ReadWrite.All"))
    )
    assert response.status_code == 400
    line = logged.last()
    assert (line["route"], line["status"]) == ("/v1.0/users/{id}/presence/setPresence", 400)
    assert (line["tenant_id"], line["app_id"]) == (tokens.tenant_id, APP_ID)


async def test_a_path_no_route_takes_is_unmatched_without_its_path(logged: Logged) -> None:
    response = await logged.http.get("/v1.0/secret-path-31c9/presence")
    assert response.status_code == 404
    line = logged.last()
    assert (line["route"], line["status"]) == (UNMATCHED, 404)
    assert "secret-path-31c9" not in logged.stream.getvalue()


async def test_the_sign_in_side_logs_its_route_and_never_the_query_nor_the_form(
    logged: Logged, demo: DemoTenant
) -> None:
    tenant = demo.tenant.id
    await logged.http.get(f"/{tenant}/oauth2/v2.0/authorize?client_id=x&code_challenge=challenge-5d2a&state=st-9b")
    authorize = logged.last()
    await logged.http.post(
        f"/{tenant}/oauth2/v2.0/token",
        data={"grant_type": "authorization_code", "code": "code-44aa", "client_secret": "secret-0f3e"},
    )
    token = logged.last()
    assert (authorize["method"], authorize["route"]) == ("GET", "/{tenant}/oauth2/v2.0/authorize")
    assert (token["method"], token["route"], token["status"]) == ("POST", "/{tenant}/oauth2/v2.0/token", 400)
    assert (token["tenant_id"], token["app_id"]) == (None, None)
    text = logged.stream.getvalue()
    for secret in ("challenge-5d2a", "st-9b", "code-44aa", "secret-0f3e", tenant):
        assert secret not in text


async def test_a_request_line_in_text(runtime: Runtime, demo: DemoTenant, tokens: Tokens) -> None:
    stream = io.StringIO()
    app = RequestLog(create_app(runtime), _logger(stream, TextFormatter()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        response = await http.get("/v1.0/me/presence", headers=bearer(tokens.user(ADELE, "Presence.Read")))
    [line] = stream.getvalue().splitlines()
    _, rest = line.split(" ", 1)
    assert rest.startswith("INFO    presenced.request.test")
    words = rest.split()
    assert words[2:5] == ["GET", "/v1.0/me/presence", "200"]
    assert f"request_id={response.headers['request-id']}" in words
    assert "method=GET" in words
    assert "route=/v1.0/me/presence" in words
    assert "status=200" in words
    assert f"tenant_id={tokens.tenant_id}" in words
    assert f"app_id={APP_ID}" in words
    assert any(word.startswith("duration_ms=") for word in words)
    assert not any(word.startswith("client_request_id=") for word in words)  # none was sent
