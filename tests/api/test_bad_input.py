"""Arbitrary input never breaks the API: every answer is a documented status, never a 500."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presenced.services.demo import demo_user_id
from tests.support import Tokens, bearer

ADELE = demo_user_id("adele")
DOCUMENTED = {200, 400, 401, 403, 404, 405, 413, 415}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: httpx.Request("POST", "/", json=v).content)
    | st.dictionaries(st.just("ids"), json_values).map(lambda v: httpx.Request("POST", "/", json=v).content)
)
path_segments = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#"), min_size=1, max_size=40
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; x=y"]))
async def test_get_presences_by_user_id_survives_any_body(
    client: httpx.AsyncClient, tokens: Tokens, body: bytes, content_type: str
) -> None:
    """Any body and content type gets a documented answer."""
    headers = bearer(tokens.app("Presence.Read.All"))
    if content_type:
        headers["Content-Type"] = content_type
    response = await client.post("/v1.0/communications/getPresencesByUserId", content=body, headers=headers)
    assert response.status_code in DOCUMENTED, response.text
    if response.status_code != 200:
        assert set(response.json()["error"]) == {"code", "message", "innerError"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    segment=path_segments,
    query=st.text(max_size=40),
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
)
async def test_any_path_and_query_gets_a_documented_answer(
    client: httpx.AsyncClient, tokens: Tokens, segment: str, query: str, method: str
) -> None:
    """Odd user ids, query strings and methods get a documented answer."""
    headers = bearer(tokens.app("Presence.Read.All"))
    segment, query = quote(segment, safe=""), quote(query, safe="=&$,")
    for path in (f"/v1.0/users/{segment}/presence", f"/beta/communications/presences/{segment}", f"/v1.0/{segment}"):
        response = await client.request(method, f"{path}?{query}", headers=headers)
        assert response.status_code in DOCUMENTED, (path, query, response.text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(authorization=st.text(max_size=300))
async def test_any_authorization_header_gets_a_documented_answer(
    client: httpx.AsyncClient, tokens: Tokens, authorization: str
) -> None:
    """Any Authorization header value gets a documented answer."""
    value = authorization.encode("latin-1", "ignore").decode("latin-1").strip()
    response = await client.get(f"/v1.0/users/{ADELE}/presence", headers={"Authorization": value.encode("latin-1")})
    assert response.status_code in {200, 401}
