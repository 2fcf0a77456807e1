"""The Graph presence read surface (spec Part A §A.1-§A.4), in process, on both stores."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import RSAKey

from presenced.app import create_app
from presenced.bootstrap import Runtime, build
from presenced.oauth.keys import rotate
from presenced.oauth.tokens import mint_id_token
from presenced.services.demo import DemoTenant, demo_user_id
from presenced.services.entities import Tenant, User
from tests.support import APP_ID, BASE_URL, T0, FixedClock, Tokens, bearer

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ADELE = demo_user_id("adele")
ALEX = demo_user_id("alex")
NESTOR = demo_user_id("nestor")
PROPERTIES = {
    "id",
    "availability",
    "activity",
    "outOfOfficeSettings",
    "statusMessage",
    "sequenceNumber",
    "workLocation",
}


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    assert set(error) == {"code", "message", "innerError"}
    inner = error["innerError"]
    assert isinstance(inner, dict)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", inner["date"])
    assert inner["request-id"] == response.headers["request-id"]
    return error


async def test_own_presence_has_every_property_and_the_status_message_times(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """/me/presence with Presence.Read shows the user's own presence with status-message times."""
    response = await client.get("/v1.0/me/presence", headers=bearer(tokens.user(ADELE, "Presence.Read")))
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == f"{BASE_URL}/v1.0/$metadata#users('{ADELE}')/presence/$entity"
    assert set(body) == PROPERTIES | {"@odata.context"}
    assert (body["id"], body["availability"], body["activity"]) == (ADELE, "Available", "Available")
    assert body["statusMessage"]["message"] == {"content": "Working on the quarterly report", "contentType": "text"}
    assert body["statusMessage"]["publishedDateTime"] == "2026-03-02T09:00:00.0000000Z"
    assert body["workLocation"] == {"workLocationType": "office", "source": "manual", "placeId": "building-1"}


async def test_a_user_with_nothing_set_reads_as_offline_with_defaults(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """Every property is present with its documented default when nothing is set."""
    response = await client.get(f"/v1.0/users/{NESTOR}/presence", headers=bearer(tokens.app("Presence.Read.All")))
    body = response.json()
    assert body["availability"] == body["activity"] == "Offline"
    assert body["outOfOfficeSettings"] == {"message": None, "isOutOfOffice": False}
    assert body["statusMessage"] is None
    assert body["workLocation"] == {"workLocationType": "unspecified", "source": "none", "placeId": None}
    assert re.fullmatch(r"\d{20}", body["sequenceNumber"])


@pytest.mark.parametrize("version", ["v1.0", "beta"])
@pytest.mark.parametrize("ref", [ADELE, ADELE.upper(), "adele@contoso.example", "ADELE@Contoso.Example"])
async def test_users_path_takes_a_guid_or_upn_in_any_case(
    client: httpx.AsyncClient, tokens: Tokens, version: str, ref: str
) -> None:
    """/users/{id}/presence finds a user by object id or UPN, case-insensitively; the id is the GUID."""
    token = tokens.user(ALEX, "Presence.Read.All")
    response = await client.get(f"/{version}/users/{ref}/presence", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["id"] == ADELE
    assert response.json()["@odata.context"].startswith(f"{BASE_URL}/{version}/$metadata#users('{ADELE}')")


async def test_communications_path_has_its_own_context(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """/communications/presences/{id} answers with the communications entity context."""
    token = tokens.app("Presence.Read.All")
    response = await client.get(f"/beta/communications/presences/{ADELE}", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["@odata.context"] == f"{BASE_URL}/beta/$metadata#communications/presences/$entity"


async def test_headers_follow_graph(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """Responses carry request-id, the echoed client-request-id, OData-Version and Graph's content type."""
    headers = bearer(tokens.user(ADELE, "Presence.Read")) | {"client-request-id": "my-correlation-id"}
    response = await client.get("/v1.0/me/presence", headers=headers)
    assert GUID.match(response.headers["request-id"])
    assert response.headers["client-request-id"] == "my-correlation-id"
    assert response.headers["odata-version"] == "4.0"
    assert response.headers["content-type"] == (
        "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
    )
    plain = await client.get("/v1.0/me/presence", headers=bearer(tokens.user(ADELE, "Presence.Read")))
    assert plain.headers["client-request-id"] == plain.headers["request-id"]


@pytest.mark.parametrize("who", ["another user", "an application"])
async def test_other_readers_do_not_see_status_message_times(
    client: httpx.AsyncClient, tokens: Tokens, who: str
) -> None:
    """Reading someone else's presence shows the status message without its times."""
    token = tokens.user(ADELE, "Presence.Read.All") if who == "another user" else tokens.app("Presence.Read.All")
    response = await client.get(f"/v1.0/users/{ALEX}/presence", headers=bearer(token))
    assert response.json()["statusMessage"] == {"message": {"content": "On calls until lunch", "contentType": "text"}}
    own = await client.get("/v1.0/me/presence", headers=bearer(tokens.user(ALEX, "Presence.Read")))
    assert own.json()["statusMessage"]["expiryDateTime"] == {
        "dateTime": "2026-03-02T12:00:00.0000000",
        "timeZone": "UTC",
    }


async def test_select_keeps_the_id_and_the_named_properties(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """$select returns only the named properties plus id, with a narrowed context."""
    response = await client.get(
        "/v1.0/me/presence?$select=availability,activity", headers=bearer(tokens.user(ADELE, "Presence.Read"))
    )
    assert response.json() == {
        "@odata.context": f"{BASE_URL}/v1.0/$metadata#users('{ADELE}')/presence(availability,activity)/$entity",
        "id": ADELE,
        "availability": "Available",
        "activity": "Available",
    }


@pytest.mark.parametrize(
    ("query", "named"), [("$select=availability,colour", "colour"), ("$expand=x", "$expand"), ("$top=1", "$top")]
)
async def test_unknown_select_property_or_query_option_is_a_bad_request(
    client: httpx.AsyncClient, tokens: Tokens, query: str, named: str
) -> None:
    """An unknown $select property or an unsupported query option is a 400 naming it."""
    response = await client.get(f"/v1.0/me/presence?{query}", headers=bearer(tokens.user(ADELE, "Presence.Read")))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "BadRequest"
    assert named in str(error["message"])


@pytest.mark.parametrize("value", ["", ",", "%20,%0b", "%0b"])
@pytest.mark.parametrize(
    "path", ["/v1.0/me/presence", "/v1.0/users/{ADELE}/presence", "/v1.0/communications/presences/{ADELE}"]
)
async def test_a_select_that_names_nothing_is_a_bad_request(
    client: httpx.AsyncClient, tokens: Tokens, path: str, value: str
) -> None:
    """An empty $select (nothing, or only commas, blanks and control characters) is a 400 saying so, not a
    presence of only its id."""
    url = path.format(ADELE=ADELE) + f"?$select={value}"
    response = await client.get(url, headers=bearer(tokens.user(ADELE, "Presence.Read.All")))
    assert response.status_code == 400
    assert "at least one property" in str(error_of(response)["message"])


async def test_a_batch_read_with_an_empty_select_is_a_bad_request(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post(
        "/v1.0/communications/getPresencesByUserId?$select=",
        json={"ids": [ADELE]},
        headers=bearer(tokens.app("Presence.Read.All")),
    )
    assert response.status_code == 400
    assert "at least one property" in str(error_of(response)["message"])


async def test_sequence_number_is_stable_across_reads(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """Reading does not change the sequence number."""
    headers = bearer(tokens.user(ADELE, "Presence.Read"))
    first = (await client.get("/v1.0/me/presence", headers=headers)).json()
    second = (await client.get("/beta/me/presence", headers=headers)).json()
    assert first["sequenceNumber"] == second["sequenceNumber"]


async def test_a_fade_shows_once_the_worker_stores_it(
    client: httpx.AsyncClient, tokens: Tokens, clock: FixedClock, runtime: Runtime
) -> None:
    """Reads show the stored presence: a due fade appears, with a higher sequence number, once it is stored."""
    lynne = demo_user_id("lynne")  # idle 7 minutes at T0: Away at T0 + 3 minutes
    headers = bearer(tokens.app("Presence.Read.All"))
    before = (await client.get(f"/v1.0/users/{lynne}/presence", headers=headers)).json()
    assert (before["availability"], before["activity"]) == ("Available", "AvailableInactive")
    clock.set(T0 + timedelta(minutes=3))
    assert (await client.get(f"/v1.0/users/{lynne}/presence", headers=headers)).json() == before
    await runtime.sweeper.run_due()
    after = (await client.get(f"/v1.0/users/{lynne}/presence", headers=headers)).json()
    assert (after["availability"], after["activity"]) == ("Away", "Away")
    assert after["sequenceNumber"] > before["sequenceNumber"]


async def test_get_presences_by_user_id_keeps_request_order_and_drops_unknown_ids(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """getPresencesByUserId answers in request order, once per user, leaving out ids that match nobody."""
    ids = [ALEX, str(uuid.uuid4()), "adele@contoso.example", ALEX.upper(), "not a user"]
    response = await client.post(
        "/v1.0/communications/getPresencesByUserId",
        json={"ids": ids},
        headers=bearer(tokens.user(NESTOR, "Presence.Read.All")),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == f"{BASE_URL}/v1.0/$metadata#Collection(microsoft.graph.presence)"
    assert [p["id"] for p in body["value"]] == [ALEX, ADELE]
    assert all(set(p) == PROPERTIES for p in body["value"])


async def test_get_presences_by_user_id_takes_650_ids(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """650 ids is the documented maximum and is accepted."""
    ids = [ADELE] + [str(uuid.uuid4()) for _ in range(649)]
    response = await client.post(
        "/v1.0/communications/getPresencesByUserId", json={"ids": ids}, headers=bearer(tokens.app("Presence.Read.All"))
    )
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["value"]] == [ADELE]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "named"),
    [
        ('{"ids": []}', "application/json", 400, "ids"),
        ('{"ids": [' + ",".join(['"x"'] * 651) + "]}", "application/json", 400, "ids"),
        ('{"ids": "abc"}', "application/json", 400, "$.ids"),
        ('{"ids": [1, 2]}', "application/json", 400, "$.ids[0]"),
        ('{"ids": ["a"], "extra": 1}', "application/json", 400, "extra"),
        ("{}", "application/json", 400, "ids"),
        ("[1]", "application/json", 400, "object"),
        ('{"ids": ["a"', "application/json", 400, "JSON"),
        ("", "application/json", 400, "body"),
        ('{"ids": ["a"]}', "text/plain", 415, "application/json"),
    ],
    ids=["none", "651", "string", "numbers", "unknown-field", "missing", "array", "truncated", "empty", "text"],
)
async def test_bad_get_presences_bodies_are_rejected_with_the_field_named(
    client: httpx.AsyncClient, tokens: Tokens, content: str, content_type: str, status: int, named: str
) -> None:
    """A malformed or invalid getPresencesByUserId body is a 400 (or 415) naming what is wrong."""
    response = await client.post(
        "/v1.0/communications/getPresencesByUserId",
        content=content,
        headers=bearer(tokens.app("Presence.Read.All")) | {"Content-Type": content_type},
    )
    assert response.status_code == status
    assert named in str(error_of(response)["message"])


async def test_an_oversized_body_is_refused(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """A body over 1 MiB is refused with 413 without being read in full."""
    response = await client.post(
        "/v1.0/communications/getPresencesByUserId",
        content=b'{"ids": ["' + b"a" * (1 << 20) + b'"]}',
        headers=bearer(tokens.app("Presence.Read.All")) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 413


# --- tokens ----------------------------------------------------------------------------------------


async def test_no_token_is_unauthorized_with_a_bearer_challenge(client: httpx.AsyncClient, demo: DemoTenant) -> None:
    """A request without a token is a 401 InvalidAuthenticationToken with WWW-Authenticate: Bearer."""
    response = await client.get("/v1.0/me/presence")
    assert response.status_code == 401
    assert error_of(response)["code"] == "InvalidAuthenticationToken"
    assert response.headers["www-authenticate"].startswith("Bearer")


def _bad_tokens(tokens: Tokens) -> dict[str, str]:
    other_key = RSAKey.generate_key(2048, private=True)
    current = tokens.runtime.keys.current
    assert current.kid is not None
    return {
        "not a jwt": "abc",
        "three junk segments": "a.b.c",
        "expired": tokens.sign(tokens.claims(ADELE, exp=int(T0.timestamp()), iat=0, nbf=0)),
        "expired beyond leeway": tokens.sign(tokens.claims(ADELE, exp=int(__import__("time").time()) - 61)),
        "not yet valid": tokens.sign(tokens.claims(ADELE, nbf=int(__import__("time").time()) + 600)),
        "no exp": tokens.sign(tokens.claims(ADELE, exp=None)),
        "wrong audience": tokens.sign(tokens.claims(ADELE, aud="api://something-else")),
        "wrong issuer": tokens.sign(tokens.claims(ADELE, iss="https://login.microsoftonline.com/x/v2.0")),
        "issuer of another tenant": tokens.sign(tokens.claims(ADELE, iss=f"{BASE_URL}/{uuid.uuid4()}/v2.0")),
        "bad signature": tokens.sign(tokens.claims(ADELE), key=other_key, kid=current.kid),
        "unknown key": tokens.sign(tokens.claims(ADELE), key=other_key),
        "tenant that does not exist": tokens.user(ADELE, "Presence.Read", tenant_id=str(uuid.uuid4())),
        "tid not a guid": tokens.sign(tokens.claims(ADELE, tid="contoso")),
        "scp not a string": tokens.sign(tokens.claims(ADELE, scp=["Presence.Read"])),
        "audience list without graph": tokens.sign(tokens.claims(ADELE, aud=["api://a", "api://b"])),
        "audience object": tokens.sign(tokens.claims(ADELE, aud={"x": 1})),
        "expiry at the end of time": tokens.sign(tokens.claims(ADELE, exp=253402300799)),
        "alg none": "eyJhbGciOiJub25lIn0." + "eyJhIjoxfQ.",
        "alg none with good claims": _unsigned({"alg": "none", "typ": "JWT"}, tokens.claims(ADELE)),
        "HS256 keyed with the public key": _hs256_with_public_key(tokens, current),
        "tampered claims": _tampered(tokens.sign(tokens.claims(ADELE)), scp="Presence.ReadWrite.All"),
        "an ID token": mint_id_token(
            tokens.runtime.keys,
            BASE_URL,
            tokens.tenant_id,
            client_id=APP_ID,
            user_id=ADELE,
            user_principal_name="adele@contoso.example",
            name="Adele",
            now=datetime.now(UTC),
            auth_time=datetime.now(UTC),
            nonce=None,
        ),
        "a token for another API": tokens.sign(tokens.claims(ADELE, aud=APP_ID)),
    }


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def _hs256_with_public_key(tokens: Tokens, key: Any) -> str:
    """Key confusion: the server's public key (PEM), used as an HMAC secret."""
    public = key.public_key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = (
        f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid}).encode())}."
        f"{_b64(json.dumps(tokens.claims(ADELE)).encode())}"
    )
    return f"{signing_input}.{_b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def _tampered(token: str, **changes: Any) -> str:
    """The token with claims changed and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_b64(json.dumps({**claims, **changes}).encode())}.{signature}"


BAD_TOKEN_CASES = [
    "not a jwt",
    "three junk segments",
    "expired",
    "expired beyond leeway",
    "not yet valid",
    "no exp",
    "wrong audience",
    "wrong issuer",
    "issuer of another tenant",
    "bad signature",
    "unknown key",
    "tenant that does not exist",
    "tid not a guid",
    "scp not a string",
    "audience list without graph",
    "audience object",
    "expiry at the end of time",
    "alg none",
    "alg none with good claims",
    "HS256 keyed with the public key",
    "tampered claims",
    "an ID token",
    "a token for another API",
]


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
async def test_unacceptable_tokens_are_401(client: httpx.AsyncClient, tokens: Tokens, case: str) -> None:
    """Every kind of unacceptable token is a 401 InvalidAuthenticationToken, never a 500."""
    response = await client.get(f"/v1.0/users/{ADELE}/presence", headers=bearer(_bad_tokens(tokens)[case]))
    assert response.status_code == 401, response.text
    assert error_of(response)["code"] == "InvalidAuthenticationToken"


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer   ", "token"])
async def test_a_malformed_authorization_header_is_401(
    client: httpx.AsyncClient, demo: DemoTenant, header: str
) -> None:
    """An Authorization header that is not 'Bearer <token>' is a 401."""
    response = await client.get("/v1.0/me/presence", headers={"Authorization": header})
    assert response.status_code == 401


async def test_an_audience_list_naming_graph_is_accepted(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """An ``aud`` array (RFC 7519) is accepted when it names Microsoft Graph."""
    token = tokens.sign(tokens.claims(ADELE, aud=["api://other", "00000003-0000-0000-c000-000000000000"]))
    assert (await client.get(f"/v1.0/users/{ADELE}/presence", headers=bearer(token))).status_code == 200


async def test_a_failure_inside_a_read_is_a_graph_error(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    """Even an unexpected failure answers with the Graph error body and headers, on the fast path too."""
    headers = bearer(tokens.app("Presence.Read.All"))
    await runtime.reader.close()  # every read now fails inside the store
    response = await client.get(f"/v1.0/users/{ADELE}/presence", headers=headers | {"client-request-id": "abc"})
    assert response.status_code == 500
    assert error_of(response)["code"] == "InternalServerError"
    assert response.headers["client-request-id"] == "abc"


async def test_a_token_within_the_leeway_is_accepted(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """A token that expired less than 60 seconds ago is still accepted."""
    now = int(__import__("time").time())
    token = tokens.sign(tokens.claims(ADELE, exp=now - 30))
    assert (await client.get(f"/v1.0/users/{ADELE}/presence", headers=bearer(token))).status_code == 200


async def test_a_rotation_keeps_old_tokens_valid_until_their_key_is_retired(tokens: Tokens, runtime: Runtime) -> None:
    """After one rotation tokens of the old key still verify; two rotations later the key is unpublished and refused."""
    old = tokens.user(ADELE, "Presence.Read")
    old_kid = runtime.keys.current.kid
    rotate(runtime.settings.data_dir)
    restarted = await build(runtime.settings, clock=runtime.clock)
    try:
        assert len(restarted.keys.keys) == 3
        assert restarted.keys.current.kid != old_kid
        new = Tokens(restarted, tokens.tenant_id).user(ADELE, "Presence.Read")
        transport = httpx.ASGITransport(app=create_app(restarted), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            for token in (old, new):
                assert (await client.get("/v1.0/me/presence", headers=bearer(token))).status_code == 200
            jwks = (await client.get(f"/{tokens.tenant_id}/discovery/v2.0/keys")).json()
            assert {k["kid"] for k in jwks["keys"]} == {k.kid for k in restarted.keys.keys}
            assert old_kid in {k["kid"] for k in jwks["keys"]}
            assert all("d" not in k for k in jwks["keys"])
            rotate(runtime.settings.data_dir)
            rotate(runtime.settings.data_dir)
            restarted.keys.refresh(force=True)
            jwks = (await client.get(f"/{tokens.tenant_id}/discovery/v2.0/keys")).json()
            assert old_kid not in {k["kid"] for k in jwks["keys"]}
            refused = await client.get("/v1.0/me/presence", headers=bearer(old))
            assert refused.status_code == 401
            assert "unknown key" in refused.json()["error"]["message"]
    finally:
        await restarted.close()


# --- permissions and tenants --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "scopes", "allowed_by"),
    [
        ("/v1.0/me/presence", ("User.Read",), "Presence.Read"),
        (f"/v1.0/users/{ALEX}/presence", ("Presence.Read",), "Presence.Read.All"),
        (f"/v1.0/users/{ALEX}/presence", ("Presence.ReadWrite",), "Presence.Read.All"),
        (f"/v1.0/users/{uuid.UUID(int=7)}/presence", ("Presence.Read",), "Presence.Read.All"),
    ],
    ids=["no presence scope", "own-only scope on another", "write scope on another", "own-only on unknown"],
)
async def test_missing_permission_is_403_naming_what_would_allow_it(
    client: httpx.AsyncClient, tokens: Tokens, path: str, scopes: tuple[str, ...], allowed_by: str
) -> None:
    """A valid token without the permission is a 403 whose message names the permission that would allow it."""
    response = await client.get(path, headers=bearer(tokens.user(ADELE, *scopes)))
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "Forbidden"
    assert allowed_by in str(error["message"])


async def test_app_token_without_roles_is_403(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """An app-only token without a presence role is a 403 naming the application permissions."""
    response = await client.get(f"/v1.0/users/{ALEX}/presence", headers=bearer(tokens.app()))
    assert response.status_code == 403
    assert "Presence.Read.All" in str(error_of(response)["message"])


async def test_get_presences_needs_read_all(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """getPresencesByUserId with only Presence.Read is a 403."""
    response = await client.post(
        "/v1.0/communications/getPresencesByUserId",
        json={"ids": [ADELE]},
        headers=bearer(tokens.user(ADELE, "Presence.Read")),
    )
    assert response.status_code == 403
    assert "Presence.Read.All" in str(error_of(response)["message"])


async def test_app_only_token_on_me_is_a_bad_request(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """/me with an app-only token is a 400: /me needs a delegated token."""
    response = await client.get("/v1.0/me/presence", headers=bearer(tokens.app("Presence.Read.All")))
    assert response.status_code == 400
    assert "delegated" in str(error_of(response)["message"])


@pytest.mark.parametrize("ref", [str(uuid.UUID(int=404)), "nobody@contoso.example", "x" * 400])
async def test_unknown_user_is_404(client: httpx.AsyncClient, tokens: Tokens, ref: str) -> None:
    """A user that does not exist is a 404 ResourceNotFound naming the id."""
    response = await client.get(f"/v1.0/users/{ref}/presence", headers=bearer(tokens.app("Presence.Read.All")))
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "ResourceNotFound"
    assert ref[:128] in str(error["message"])


async def test_other_tenants_are_invisible(client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime) -> None:
    """A token of tenant B gets 404 for tenant A's users and leaves them out of getPresencesByUserId."""
    tenant_b, user_b = str(uuid.uuid4()), str(uuid.uuid4())
    async with runtime.store.begin() as tx:
        await tx.put_tenant(Tenant(tenant_b, "Fabrikam"), T0)
        await tx.put_user(User(user_b, tenant_b, "bob@fabrikam.example", "Bob"), T0)
    token = tokens.app("Presence.Read.All", tenant_id=tenant_b)
    assert (await client.get(f"/v1.0/users/{ADELE}/presence", headers=bearer(token))).status_code == 404
    assert (await client.get("/v1.0/users/adele@contoso.example/presence", headers=bearer(token))).status_code == 404
    response = await client.post(
        "/v1.0/communications/getPresencesByUserId", json={"ids": [ADELE, user_b]}, headers=bearer(token)
    )
    assert [p["id"] for p in response.json()["value"]] == [user_b]
    own = tokens.user(user_b, "Presence.Read", tenant_id=tenant_b)
    assert (await client.get("/v1.0/me/presence", headers=bearer(own))).json()["id"] == user_b


async def test_wrong_method_and_unknown_path_use_the_graph_error_body(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A wrong method is a 405 and an unknown path a 404, both with the Graph error body."""
    headers = bearer(tokens.app("Presence.Read.All"))
    wrong = await client.delete(f"/v1.0/users/{ADELE}/presence", headers=headers)
    assert wrong.status_code == 405
    assert error_of(wrong)["code"] == "MethodNotAllowed"
    missing = await client.get("/v1.0/nothing/here", headers=headers)
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "ResourceNotFound"


# --- cost ------------------------------------------------------------------------------------------


class QueryCounter:
    """Counts statements sent to the database by the read path and by SQLAlchemy."""

    def __init__(self, runtime: Runtime) -> None:
        self.count = 0
        from sqlalchemy import event

        event.listen(runtime.engine.sync_engine, "before_cursor_execute", self._on_sqlalchemy)
        reader = runtime.reader
        if hasattr(reader, "_conn"):
            reader._conn.set_trace_callback(self._on_sqlite)
            reader._batch_conn.set_trace_callback(self._on_sqlite)
        else:
            reader._pool = _CountingPool(reader._pool, self)

    def _on_sqlalchemy(self, *args: object) -> None:
        self.count += 1

    def _on_sqlite(self, statement: str) -> None:
        self.count += 1


class _CountingPool:
    """Wraps the asyncpg pool of the PostgreSQL reader to count the statements it runs."""

    def __init__(self, pool: object, counter: QueryCounter) -> None:
        self._pool, self._counter = pool, counter

    def acquire(self) -> object:
        counter, inner = self._counter, self._pool.acquire()  # type: ignore[attr-defined]

        class Acquired:
            async def __aenter__(self) -> object:
                conn = await inner.__aenter__()

                class Counting:
                    async def fetch(self, *args: object) -> object:
                        counter.count += 1
                        return await conn.fetch(*args)

                return Counting()

            async def __aexit__(self, *exc: object) -> None:
                await inner.__aexit__(*exc)

        return Acquired()

    async def close(self) -> None:
        await self._pool.close()  # type: ignore[attr-defined]


async def test_a_single_read_makes_one_query(client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime) -> None:
    """A presence read costs one database query once the token is verified (and cached); a read by object id
    of a user this process read less than a second ago costs none (docs/architecture.md, "The read hot path")."""
    headers = bearer(tokens.app("Presence.Read.All"))
    await client.get(f"/v1.0/users/{ADELE}/presence", headers=headers)  # verifies and caches the token
    counter = QueryCounter(runtime)
    for ref in ("alex@contoso.example", demo_user_id("lynne")):
        response = await client.get(f"/v1.0/users/{ref}/presence", headers=headers)
        assert response.status_code == 200
    assert counter.count == 2
    for ref in (ADELE, demo_user_id("lynne"), ADELE.upper()):
        response = await client.get(f"/v1.0/users/{ref}/presence", headers=headers)
        assert response.status_code == 200
    assert counter.count == 2


async def test_get_presences_for_650_ids_makes_at_most_two_queries(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime, demo: DemoTenant
) -> None:
    """getPresencesByUserId with 650 ids (GUIDs and UPNs) costs at most two queries."""
    users = [User(str(uuid.uuid4()), demo.tenant.id, f"user{i}@contoso.example", f"User {i}") for i in range(640)]
    async with runtime.store.begin() as tx:
        for user in users:
            await tx.put_user(user, T0)
    ids = [u.id for u in users[:320]] + [u.user_principal_name for u in users[320:]] + [u.id for u in demo.users]
    headers = bearer(tokens.app("Presence.Read.All"))
    await client.get(f"/v1.0/users/{ADELE}/presence", headers=headers)
    counter = QueryCounter(runtime)
    response = await client.post("/v1.0/communications/getPresencesByUserId", json={"ids": ids}, headers=headers)
    assert len(response.json()["value"]) == 650
    assert 1 <= counter.count <= 2
