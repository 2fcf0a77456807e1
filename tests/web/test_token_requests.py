"""The token endpoint's own way in: its form parser reads what Starlette's does, and its fast path
(``app.TokenFastPath``, past the router) answers what the route answers."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser

from presenced.app import TokenFastPath, create_app
from presenced.bootstrap import Runtime
from presenced.web.pages import MAX_FIELDS, urlencoded_fields
from tests.oauth.identity_support import World, seed_world
from tests.support import BASE_URL

FORM = "application/x-www-form-urlencoded"


def starlette_fields(body: bytes) -> dict[str, str] | str:
    """What ``read_form`` got from Starlette's parser before: the fields, or the error's text."""

    async def stream() -> Any:
        yield body

    parser = FormParser(Headers({"content-type": "application/x-www-form-urlencoded"}), stream(), max_fields=MAX_FIELDS)
    try:
        form = asyncio.run(parser.parse())
    except Exception as exc:  # MultiPartException
        return str(getattr(exc, "message", exc))
    return {k: v for k, v in form.items() if isinstance(v, str)}


def fields_or_error(body: bytes) -> dict[str, str] | str:
    try:
        return urlencoded_fields(body)
    except HTTPException as exc:
        return str(exc.detail)


#: Bodies made of the characters that matter to the parsers, and some that do not.
_PIECES = st.sampled_from([b"&", b"=", b"+", b"%", b"%2", b"%26", b"%3D", b"%zz", b"%C3%A9", b"\xe9", b"a", b"b", b" "])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=40).map(b"".join))
def test_the_form_parser_reads_what_starlettes_does(body: bytes) -> None:
    assert fields_or_error(body) == starlette_fields(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"&&&",
        b"a=1&a=2",
        b"=x&y",
        b"grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        b"a=b=c&&d",
        b"&".join(b"f%d=1" % n for n in range(MAX_FIELDS)),
        b"&".join(b"f%d=1" % n for n in range(MAX_FIELDS + 1)),
    ],
)
def test_the_form_parser_reads_these_as_starlettes_does(body: bytes) -> None:
    assert fields_or_error(body) == starlette_fields(body)


@pytest.fixture
async def world(runtime: Runtime) -> World:
    return await seed_world(runtime)


#: What differs from one answer to the next: ids, times, tokens.
_VARYING = frozenset({"timestamp", "trace_id", "correlation_id", "access_token", "request-id", "date"})


def _steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: "<varies>" if key in _VARYING else _steady(item) for key, item in value.items()}
    if isinstance(value, str):
        return re.sub(r"(Trace ID|Correlation ID|Timestamp): [^\r\n]*", r"\1", value)
    return value


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    """Status, headers in their order, and the body but for what differs from one answer to the next."""
    names = [
        (name, "<varies>" if name in _VARYING or name == "content-length" else value)
        for name, value in response.headers.items()
        if name not in {"server"}
    ]
    try:
        return response.status_code, names, _steady(response.json())
    except ValueError:
        return response.status_code, names, response.text


async def test_the_fast_path_answers_what_the_route_answers(runtime: Runtime, world: World) -> None:
    fast = create_app(runtime)
    token_path = fast.app
    assert isinstance(token_path, TokenFastPath)
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=BASE_URL)
        for app in (fast, token_path.app)  # with the fast path; the Starlette application alone
    ]
    good = {
        "grant_type": "client_credentials",
        "client_id": world.daemon.app_id,
        "client_secret": world.daemon_secret,
        "scope": "https://graph.microsoft.com/.default",
    }
    tenant = world.tenant_id
    form = {"content-type": FORM}
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"/{tenant}/oauth2/v2.0/token", {"data": good}),
        ("POST", f"/{tenant}/oauth2/v2.0/token?x=1", {"data": good}),
        ("POST", f"/{tenant}/oauth2/v2.0/token", {"data": {**good, "client_secret": "wrong"}}),
        ("POST", f"/{tenant}/oauth2/v2.0/token", {"data": {}}),
        ("POST", f"/{tenant}/oauth2/v2.0/token", {"json": good}),
        ("POST", f"/{tenant}/oauth2/v2.0/token", {"content": b"a=1", "headers": {"content-type": "text/plain"}}),
        ("POST", f"/{tenant}/oauth2/v2.0/token", {"data": {"grant_type": "password"}}),
        ("POST", "/not-a-tenant/oauth2/v2.0/token", {"data": good}),
        ("POST", "/common/oauth2/v2.0/token", {"data": good}),
        ("POST", f"/{tenant}/oauth2/v2.0/token/", {"data": good}),
        ("GET", f"/{tenant}/oauth2/v2.0/token", {}),
        ("POST", f"/{tenant}/oauth2/v2.0/token", {"content": "&".join(f"f{n}=1" for n in range(300)), "headers": form}),
        (
            "POST",
            f"/{tenant}/oauth2/v2.0/token",
            {"content": "grant_type=x", "headers": {"content-type": f"{FORM}; a=b"}},
        ),
    ]
    try:
        for method, path, extra in cases:
            headers = {"client-request-id": "same-for-both", **extra.pop("headers", {})}
            answers = [await http.request(method, path, headers=headers, **extra) for http in clients]
            assert _comparable(answers[0]) == _comparable(answers[1]), (method, path)
    finally:
        for http in clients:
            await http.aclose()
