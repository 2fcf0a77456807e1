"""The token endpoint: every refusal Entra's clients key on, and the grants that succeed (spec identity §1.2-1.4)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from presenced.bootstrap import Runtime
from presenced.oauth.tokens import issuer, mint_access_token
from presenced.services.entities import Application
from presenced.services.identity import GRAPH as GRAPH_RESOURCE
from tests.oauth.identity_support import (
    CALLBACK,
    GRANT_DEVICE_CODE,
    GRANT_JWT_BEARER,
    GRAPH,
    LOOPBACK,
    World,
    add_secret,
    api_scope,
    approve_device_code,
    assert_oauth_error,
    claims,
    issue_code,
    pkce,
    post_token,
    register_app,
    seed_world,
)

USER_SCOPES = "https://graph.microsoft.com/Presence.Read openid profile offline_access"


@pytest.fixture
async def world(runtime: Runtime) -> World:
    return await seed_world(runtime)


def shift_time(runtime: Runtime, by: timedelta) -> None:
    """Move the authorization server's clock (it runs on real time) ``by`` ahead."""
    runtime.oauth.now = lambda: datetime.now(UTC) + by


def cc_form(world: World, **changes: str) -> dict[str, str]:
    """A good client-credentials request of the demo daemon, with ``changes``."""
    form = {
        "grant_type": "client_credentials",
        "client_id": world.daemon.app_id,
        "client_secret": world.daemon_secret,
        "scope": f"{GRAPH}/.default",
    }
    return {k: v for k, v in {**form, **changes}.items() if v != ""}


async def code_for(runtime: Runtime, world: World, nickname: str = "alex", **kwargs: object) -> tuple[str, str]:
    """A code of the demo public client for ``nickname`` (consented), and its PKCE verifier."""
    verifier, challenge = pkce()
    code = await issue_code(
        runtime, world.tenant_id, world.public, nickname, USER_SCOPES, CALLBACK, challenge=challenge, **kwargs
    )
    return code, verifier


def code_form(world: World, code: str, verifier: str, **changes: str) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "client_id": world.public.app_id,
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
        "client_info": "1",
    }
    return {k: v for k, v in {**form, **changes}.items() if v != ""}


async def user_tokens(client: httpx.AsyncClient, runtime: Runtime, world: World, nickname: str = "alex") -> dict:
    code, verifier = await code_for(runtime, world, nickname)
    response = await post_token(client, world.tenant_id, code_form(world, code, verifier))
    assert response.status_code == 200, response.text
    return response.json()


def refresh_form(world: World, refresh_token: str, **changes: str) -> dict[str, str]:
    form = {"grant_type": "refresh_token", "client_id": world.public.app_id, "refresh_token": refresh_token}
    return {**form, **changes}


async def start_device_flow(client: httpx.AsyncClient, world: World, client_id: str | None = None) -> dict:
    response = await client.post(
        f"/{world.tenant_id}/oauth2/v2.0/devicecode",
        data={"client_id": client_id or world.public.app_id, "scope": USER_SCOPES},
    )
    assert response.status_code == 200, response.text
    return response.json()


def device_form(world: World, device_code: str, client_id: str | None = None) -> dict[str, str]:
    return {
        "grant_type": GRANT_DEVICE_CODE,
        "client_id": client_id or world.public.app_id,
        "device_code": device_code,
        "code": device_code,
    }


# ---- malformed requests ----


@pytest.mark.parametrize(
    ("grant_type", "missing"),
    [
        ("client_credentials", "grant_type"),
        ("client_credentials", "client_id"),
        ("client_credentials", "scope"),
        ("authorization_code", "code"),
        ("authorization_code", "redirect_uri"),
        ("authorization_code", "code_verifier"),
        ("refresh_token", "refresh_token"),
        (GRANT_DEVICE_CODE, "device_code"),
        (GRANT_JWT_BEARER, "assertion"),
    ],
)
async def test_a_missing_parameter_is_named_in_a_900144(
    client: httpx.AsyncClient, runtime: Runtime, world: World, grant_type: str, missing: str
) -> None:
    """A request without a parameter its grant needs is refused with 900144 naming that parameter."""
    if grant_type == "authorization_code":
        code, verifier = await code_for(runtime, world)
        form = code_form(world, code, verifier)
    elif grant_type == GRANT_JWT_BEARER:
        form = {
            "grant_type": grant_type,
            "requested_token_use": "on_behalf_of",
            "client_id": world.daemon.app_id,
            "client_secret": world.daemon_secret,
            "scope": f"{GRAPH}/Presence.Read",
        }
    elif grant_type in {GRANT_DEVICE_CODE, "refresh_token"}:
        form = {"grant_type": grant_type, "client_id": world.public.app_id}
    else:
        form = cc_form(world)
    form.pop(missing, None)
    response = await post_token(client, world.tenant_id, form)
    body = assert_oauth_error(response, status=400, error="invalid_request", code=900144)
    assert f"'{missing}'" in body["error_description"]


async def test_a_parameter_with_a_nul_character_is_malformed(client: httpx.AsyncClient, world: World) -> None:
    """A form value holding a NUL character is refused with 900144 before anything else is looked at."""
    response = await post_token(client, world.tenant_id, cc_form(world, scope=f"{GRAPH}/.default\x00"))
    assert_oauth_error(response, status=400, error="invalid_request", code=900144)


async def test_a_json_body_is_refused(client: httpx.AsyncClient, world: World) -> None:
    """The token endpoint takes only a form body; JSON is refused with 900144."""
    response = await client.post(
        f"/{world.tenant_id}/oauth2/v2.0/token", json=cc_form(world), headers={"client-request-id": "json-body"}
    )
    assert_oauth_error(response, status=400, error="invalid_request", code=900144)


@pytest.mark.parametrize("tenant", ["contoso", str(uuid.UUID(int=7))])
async def test_an_unknown_tenant_is_a_90002(client: httpx.AsyncClient, world: World, tenant: str) -> None:
    """A tenant segment that is neither an existing tenant's GUID nor common/organizations is refused with 90002."""
    response = await post_token(client, tenant, cc_form(world))
    assert_oauth_error(response, status=400, error="invalid_request", code=90002)


async def test_an_unsupported_grant_type_is_a_70003(client: httpx.AsyncClient, world: World) -> None:
    """The password grant (ROPC) is not offered: 70003 unsupported_grant_type."""
    form = {
        "grant_type": "password",
        "client_id": world.public.app_id,
        "username": "alex@contoso.example",
        "password": world.password("alex"),
        "scope": USER_SCOPES,
    }
    response = await post_token(client, world.tenant_id, form)
    assert_oauth_error(response, status=400, error="unsupported_grant_type", code=70003)


async def test_jwt_bearer_without_on_behalf_of_is_an_unsupported_grant(client: httpx.AsyncClient, world: World) -> None:
    """The jwt-bearer grant is only on-behalf-of; without requested_token_use it is a 70003."""
    form = cc_form(world, grant_type=GRANT_JWT_BEARER, assertion="x.y.z")
    response = await post_token(client, world.tenant_id, form)
    assert_oauth_error(response, status=400, error="unsupported_grant_type", code=70003)


# ---- client authentication ----


async def test_an_unknown_client_is_a_700016(client: httpx.AsyncClient, world: World) -> None:
    """A client id that no app registration has is refused with 700016 unauthorized_client."""
    response = await post_token(client, world.tenant_id, cc_form(world, client_id=str(uuid.uuid4())))
    assert_oauth_error(response, status=400, error="unauthorized_client", code=700016)


async def test_a_single_tenant_app_is_unknown_in_another_tenant(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A single-tenant (AzureADMyOrg) app does not exist outside its home tenant: 700016."""
    other = await runtime.identity.create_tenant("Fabrikam", datetime.now(UTC))
    response = await post_token(client, other.id, cc_form(world))
    assert_oauth_error(response, status=400, error="unauthorized_client", code=700016)


async def test_a_wrong_client_secret_is_a_7000215(client: httpx.AsyncClient, world: World) -> None:
    """A client secret that is not one of the app's is refused with 401 invalid_client 7000215."""
    response = await post_token(client, world.tenant_id, cc_form(world, client_secret="not-the-secret"))
    assert_oauth_error(response, status=401, error="invalid_client", code=7000215)


async def test_a_malformed_basic_authorization_is_a_7000215(client: httpx.AsyncClient, world: World) -> None:
    """An Authorization: Basic header that is not base64 of id:secret is refused with 7000215."""
    form = cc_form(world, client_id="", client_secret="")
    response = await post_token(client, world.tenant_id, form, headers={"Authorization": "Basic %%%not-base64"})
    assert_oauth_error(response, status=401, error="invalid_client", code=7000215)


async def test_an_expired_client_secret_is_a_7000222(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """A secret past its end date is refused with 7000222, not taken as merely wrong."""
    short = await add_secret(runtime, world.daemon, timedelta(days=1))
    shift_time(runtime, timedelta(days=2))
    response = await post_token(client, world.tenant_id, cc_form(world, client_secret=short))
    assert_oauth_error(response, status=401, error="invalid_client", code=7000222)


async def test_client_credentials_without_a_secret_is_a_7000218(client: httpx.AsyncClient, world: World) -> None:
    """A confidential grant without client_secret or client_assertion is refused with 7000218."""
    response = await post_token(client, world.tenant_id, cc_form(world, client_secret=""))
    assert_oauth_error(response, status=401, error="invalid_client", code=7000218)


async def test_device_code_polling_by_an_app_without_public_client_flows_needs_a_secret(
    client: httpx.AsyncClient, world: World
) -> None:
    """Without "Allow public client flows", polling for a device code with no secret is a 7000218, as in Entra."""
    started = await start_device_flow(client, world, client_id=world.daemon.app_id)
    form = device_form(world, started["device_code"], client_id=world.daemon.app_id)
    response = await post_token(client, world.tenant_id, form)
    assert_oauth_error(response, status=401, error="invalid_client", code=7000218)


async def test_a_public_client_sending_a_secret_is_a_700025(client: httpx.AsyncClient, world: World) -> None:
    """A secret from an app that has none (a public client) is refused with 700025."""
    form = cc_form(world, client_id=world.public.app_id, client_secret="anything-at-all")
    response = await post_token(client, world.tenant_id, form)
    assert_oauth_error(response, status=401, error="invalid_client", code=700025)


async def test_a_client_assertion_is_a_700027(client: httpx.AsyncClient, world: World) -> None:
    """Certificate credentials (client_assertion) are not supported: 700027."""
    form = cc_form(
        world,
        client_secret="",
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion="eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
    )
    response = await post_token(client, world.tenant_id, form)
    assert_oauth_error(response, status=401, error="invalid_client", code=700027)


# ---- client credentials ----


async def test_client_credentials_gives_the_consented_roles(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """The daemon's app-only token carries exactly its admin-consented application permissions, and no refresh token."""
    response = await post_token(client, world.tenant_id, cc_form(world))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["token_type"], "refresh_token" in body, "id_token" in body) == ("Bearer", False, False)
    token = claims(body["access_token"], runtime)
    assert sorted(token["roles"]) == ["Presence.Read.All", "Presence.ReadWrite.All"]
    assert (token["aud"], token["tid"], token["appid"], token["idtyp"]) == (
        GRAPH,
        world.tenant_id,
        world.daemon.app_id,
        "app",
    )
    assert "scp" not in token


async def test_client_credentials_takes_a_basic_authorization(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """client_secret_basic works as client_secret_post does."""
    basic = base64.b64encode(f"{world.daemon.app_id}:{world.daemon_secret}".encode()).decode()
    form = cc_form(world, client_id="", client_secret="")
    response = await post_token(client, world.tenant_id, form, headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"], runtime)["appid"] == world.daemon.app_id


@pytest.mark.parametrize("alias", ["common", "organizations"])
async def test_client_credentials_on_a_tenant_alias_is_a_50059(
    client: httpx.AsyncClient, world: World, alias: str
) -> None:
    """Client credentials need the tenant in the path; common and organizations are refused with 50059."""
    response = await post_token(client, alias, cc_form(world))
    assert_oauth_error(response, status=400, error="invalid_request", code=50059)


@pytest.mark.parametrize("scope", [f"{GRAPH}/Presence.Read.All", f"openid {GRAPH}/.default", "openid"])
async def test_client_credentials_without_a_default_scope_is_a_1002012(
    client: httpx.AsyncClient, world: World, scope: str
) -> None:
    """Client credentials must ask for exactly {resource}/.default: anything else is a 1002012."""
    response = await post_token(client, world.tenant_id, cc_form(world, scope=scope))
    assert_oauth_error(response, status=400, error="invalid_scope", code=1002012)


async def test_default_mixed_with_a_permission_is_a_70011(client: httpx.AsyncClient, world: World) -> None:
    """/.default cannot be combined with a named permission of the same resource: 70011."""
    response = await post_token(client, world.tenant_id, cc_form(world, scope=f"{GRAPH}/.default {GRAPH}/User.Read"))
    assert_oauth_error(response, status=400, error="invalid_scope", code=70011)


async def test_a_scope_with_no_permission_name_is_a_70011(client: httpx.AsyncClient, world: World) -> None:
    """A scope that is a resource with an empty permission ("https://graph.microsoft.com/") is a 70011."""
    response = await post_token(client, world.tenant_id, cc_form(world, scope=f"{GRAPH}/"))
    assert_oauth_error(response, status=400, error="invalid_scope", code=70011)


async def test_scopes_of_two_resources_are_a_28000(client: httpx.AsyncClient, world: World) -> None:
    """One token request targets one resource: scopes of two are refused with 28000."""
    scope = f"{GRAPH}/.default api://{uuid.uuid4()}/.default"
    response = await post_token(client, world.tenant_id, cc_form(world, scope=scope))
    assert_oauth_error(response, status=400, error="invalid_scope", code=28000)


async def test_an_unknown_resource_is_a_500011(client: httpx.AsyncClient, world: World) -> None:
    """A resource no app of the tenant exposes is refused with 500011 invalid_resource."""
    scope = f"api://{uuid.uuid4()}/.default"
    response = await post_token(client, world.tenant_id, cc_form(world, scope=scope))
    assert_oauth_error(response, status=400, error="invalid_resource", code=500011)


# ---- authorization code ----


async def test_a_code_gives_access_id_and_refresh_tokens(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A good code of a public client gives the consented scope, an ID token, a refresh token and client_info."""
    body = await user_tokens(client, runtime, world)
    token = claims(body["access_token"], runtime)
    assert (token["scp"], token["oid"], token["appidacr"]) == ("Presence.Read", world.user_id("alex"), "0")
    assert set(body["scope"].split()) == {"Presence.Read", "openid", "profile", "offline_access"}
    assert claims(body["id_token"], runtime)["aud"] == world.public.app_id
    assert body["refresh_token"]
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info == {"uid": world.user_id("alex"), "utid": world.tenant_id}


async def test_an_unknown_code_is_a_9002313(client: httpx.AsyncClient, world: World) -> None:
    """A code this server never issued is refused with 9002313 invalid_grant."""
    response = await post_token(client, world.tenant_id, code_form(world, "not-a-code", "v" * 43))
    assert_oauth_error(response, status=400, error="invalid_grant", code=9002313)


async def test_a_code_of_another_client_is_a_9002313(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """A code redeemed by a client other than the one it was issued to is refused with 9002313."""
    other = await register_app(runtime, world.tenant_id, "Other", public_redirects=(CALLBACK,), fallback_public=True)
    code, verifier = await code_for(runtime, world)
    response = await post_token(client, world.tenant_id, code_form(world, code, verifier, client_id=other.app_id))
    assert_oauth_error(response, status=400, error="invalid_grant", code=9002313)


async def test_a_code_redeemed_twice_is_a_54005(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """Codes are single-use: the second redemption is refused with 54005."""
    code, verifier = await code_for(runtime, world)
    first = await post_token(client, world.tenant_id, code_form(world, code, verifier))
    assert first.status_code == 200, first.text
    second = await post_token(client, world.tenant_id, code_form(world, code, verifier))
    assert_oauth_error(second, status=400, error="invalid_grant", code=54005)


async def test_a_code_older_than_ten_minutes_is_a_70008(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A code redeemed ten minutes after it was issued is refused with 70008."""
    code, verifier = await code_for(runtime, world)
    shift_time(runtime, timedelta(minutes=10, seconds=1))
    response = await post_token(client, world.tenant_id, code_form(world, code, verifier))
    assert_oauth_error(response, status=400, error="invalid_grant", code=70008)


async def test_a_code_with_another_redirect_uri_is_a_50148(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """The redirect_uri at the token endpoint must be the one the code was issued for: else 50148."""
    code, verifier = await code_for(runtime, world)
    response = await post_token(client, world.tenant_id, code_form(world, code, verifier, redirect_uri=LOOPBACK))
    assert_oauth_error(response, status=400, error="invalid_grant", code=50148)


async def test_a_wrong_code_verifier_is_a_501481(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """A PKCE verifier that does not hash to the code's challenge is refused with 501481."""
    code, _ = await code_for(runtime, world)
    response = await post_token(client, world.tenant_id, code_form(world, code, pkce()[0]))
    assert_oauth_error(response, status=400, error="invalid_grant", code=501481)


async def test_a_code_without_consent_is_a_65001(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """A code for permissions the user has not consented to gives 65001 with suberror consent_required."""
    code, verifier = await code_for(runtime, world, consent=False)
    response = await post_token(client, world.tenant_id, code_form(world, code, verifier))
    assert_oauth_error(response, status=400, error="invalid_grant", code=65001, suberror="consent_required")


async def test_a_code_of_a_deleted_user_is_refused(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """A code whose user was deleted since gives no token (the code goes with the user)."""
    code, verifier = await code_for(runtime, world)
    assert await runtime.identity_store.delete_user(world.tenant_id, world.user_id("alex"))
    response = await post_token(client, world.tenant_id, code_form(world, code, verifier))
    assert_oauth_error(response, status=400, error="invalid_grant", code=9002313)


async def test_default_scope_gives_everything_granted(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A delegated /.default request gets exactly the permissions granted to the app for the user."""
    user = world.user_id("megan")
    now = datetime.now(UTC)
    await runtime.identity.consent_for_user(
        world.tenant_id, world.public, GRAPH_RESOURCE, user, {"Presence.Read", "Presence.ReadWrite", "openid"}, now
    )
    verifier, challenge = pkce()
    code = await issue_code(
        runtime,
        world.tenant_id,
        world.public,
        "megan",
        f"{GRAPH}/.default openid offline_access",
        CALLBACK,
        challenge=challenge,
        consent=False,
    )
    response = await post_token(client, world.tenant_id, code_form(world, code, verifier))
    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"], runtime)["scp"] == "Presence.Read Presence.ReadWrite"


# ---- refresh tokens ----


async def test_a_refresh_token_is_rotated(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """Redeeming a refresh token gives a new access token and a different refresh token."""
    first = await user_tokens(client, runtime, world)
    response = await post_token(client, world.tenant_id, refresh_form(world, first["refresh_token"]))
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims(second["access_token"], runtime)["scp"] == "Presence.Read"


async def test_a_reused_refresh_token_is_a_70000_and_revokes_its_family(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A rotated refresh token coming back is refused with 70000 and kills the token that replaced it too."""
    first = await user_tokens(client, runtime, world)
    rotated = (await post_token(client, world.tenant_id, refresh_form(world, first["refresh_token"]))).json()
    reused = await post_token(client, world.tenant_id, refresh_form(world, first["refresh_token"]))
    assert_oauth_error(reused, status=400, error="invalid_grant", code=70000)
    newest = await post_token(client, world.tenant_id, refresh_form(world, rotated["refresh_token"]))
    assert_oauth_error(newest, status=400, error="invalid_grant", code=9002313)


async def test_of_two_refreshes_racing_with_one_token_one_gets_tokens_and_the_family_dies(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Two requests with copies of one refresh token at the same moment: one is answered, the other is the reuse
    it is (70000), which revokes the family, the winner's new refresh token with it."""
    first = await user_tokens(client, runtime, world)
    answers = await asyncio.gather(
        *(post_token(client, world.tenant_id, refresh_form(world, first["refresh_token"])) for _ in range(2))
    )
    assert sorted(a.status_code for a in answers) == [200, 400]
    won = next(a for a in answers if a.status_code == 200).json()
    assert_oauth_error(next(a for a in answers if a.status_code == 400), status=400, error="invalid_grant", code=70000)
    newest = await post_token(client, world.tenant_id, refresh_form(world, won["refresh_token"]))
    assert_oauth_error(newest, status=400, error="invalid_grant", code=9002313)


async def test_an_unknown_refresh_token_is_a_9002313(client: httpx.AsyncClient, world: World) -> None:
    """A refresh token this server never issued is refused with 9002313."""
    response = await post_token(client, world.tenant_id, refresh_form(world, "not-a-refresh-token"))
    assert_oauth_error(response, status=400, error="invalid_grant", code=9002313)


async def test_a_refresh_token_of_another_client_is_a_9002313(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A refresh token presented by another client than its own is refused with 9002313."""
    tokens = await user_tokens(client, runtime, world)
    form = refresh_form(world, tokens["refresh_token"], client_id=world.daemon.app_id)
    response = await post_token(client, world.tenant_id, form)
    assert_oauth_error(response, status=400, error="invalid_grant", code=9002313)


async def test_an_expired_refresh_token_is_a_700082(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """A refresh token unused for more than 90 days is refused with 700082."""
    tokens = await user_tokens(client, runtime, world)
    shift_time(runtime, timedelta(days=91))
    response = await post_token(client, world.tenant_id, refresh_form(world, tokens["refresh_token"]))
    assert_oauth_error(response, status=400, error="invalid_grant", code=700082)


async def test_refreshing_for_a_permission_not_consented_is_a_65001(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A refresh asking for a permission the user never consented to gives 65001 consent_required."""
    tokens = await user_tokens(client, runtime, world)
    form = refresh_form(world, tokens["refresh_token"], scope=f"{GRAPH}/Presence.ReadWrite offline_access")
    response = await post_token(client, world.tenant_id, form)
    assert_oauth_error(response, status=400, error="invalid_grant", code=65001, suberror="consent_required")


async def test_refreshing_for_an_unknown_permission_is_a_70011(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A refresh asking for a permission Graph does not have is refused with 70011."""
    tokens = await user_tokens(client, runtime, world)
    form = refresh_form(world, tokens["refresh_token"], scope=f"{GRAPH}/Presence.Teleport offline_access")
    response = await post_token(client, world.tenant_id, form)
    assert_oauth_error(response, status=400, error="invalid_scope", code=70011)


async def test_revoking_consent_makes_the_next_refresh_a_65001(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """After the user's grant is revoked, the next refresh is refused with 65001 consent_required."""
    tokens = await user_tokens(client, runtime, world)
    grants = await runtime.identity_store.list_grants(world.tenant_id, principal_id=world.user_id("alex"))
    assert grants
    for grant in grants:
        await runtime.identity.revoke_grant(world.tenant_id, grant.id)
    response = await post_token(client, world.tenant_id, refresh_form(world, tokens["refresh_token"]))
    assert_oauth_error(response, status=400, error="invalid_grant", code=65001, suberror="consent_required")


async def test_revoking_consent_stops_the_next_refresh(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """After the user's grant is revoked, the refresh token no longer gives tokens."""
    tokens = await user_tokens(client, runtime, world)
    for grant in await runtime.identity_store.list_grants(world.tenant_id, principal_id=world.user_id("alex")):
        await runtime.identity.revoke_grant(world.tenant_id, grant.id)
    response = await post_token(client, world.tenant_id, refresh_form(world, tokens["refresh_token"]))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


# ---- device code ----


async def test_a_pending_device_code_is_authorization_pending(client: httpx.AsyncClient, world: World) -> None:
    """Polling before the user has answered gives 70016 authorization_pending."""
    started = await start_device_flow(client, world)
    response = await post_token(client, world.tenant_id, device_form(world, started["device_code"]))
    assert_oauth_error(response, status=400, error="authorization_pending", code=70016)


async def test_polling_too_fast_is_slow_down(client: httpx.AsyncClient, world: World) -> None:
    """A second poll within half the interval gives 70016 slow_down."""
    started = await start_device_flow(client, world)
    await post_token(client, world.tenant_id, device_form(world, started["device_code"]))
    response = await post_token(client, world.tenant_id, device_form(world, started["device_code"]))
    assert_oauth_error(response, status=400, error="slow_down", code=70016)


async def test_an_approved_device_code_gives_tokens(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """Once the user approves, the device gets the user's tokens."""
    started = await start_device_flow(client, world)
    await approve_device_code(runtime, world.tenant_id, started["user_code"], "diego", approve=True)
    response = await post_token(client, world.tenant_id, device_form(world, started["device_code"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert claims(body["access_token"], runtime)["oid"] == world.user_id("diego")
    assert body["refresh_token"]


async def test_device_code_grant_by_its_short_name(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """MSAL for Node and MSAL.NET poll with grant_type=device_code, which Entra accepts as well as the URN."""
    started = await start_device_flow(client, world)
    await approve_device_code(runtime, world.tenant_id, started["user_code"], "diego", approve=True)
    form = {**device_form(world, started["device_code"]), "grant_type": "device_code"}
    response = await post_token(client, world.tenant_id, form)
    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"], runtime)["oid"] == world.user_id("diego")


async def test_a_redeemed_device_code_is_a_70000(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """A device code gives tokens once; the next poll is refused with 70000."""
    started = await start_device_flow(client, world)
    await approve_device_code(runtime, world.tenant_id, started["user_code"], "diego", approve=True)
    first = await post_token(client, world.tenant_id, device_form(world, started["device_code"]))
    assert first.status_code == 200, first.text
    second = await post_token(client, world.tenant_id, device_form(world, started["device_code"]))
    assert_oauth_error(second, status=400, error="invalid_grant", code=70000)


async def test_an_unknown_device_code_is_a_70000(client: httpx.AsyncClient, world: World) -> None:
    """A device code this server never issued is refused with 70000."""
    response = await post_token(client, world.tenant_id, device_form(world, "not-a-device-code"))
    assert_oauth_error(response, status=400, error="invalid_grant", code=70000)


async def test_an_expired_device_code_is_a_70019(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """A device code polled after its 15 minutes is refused with 70019 expired_token."""
    started = await start_device_flow(client, world)
    shift_time(runtime, timedelta(minutes=15, seconds=1))
    response = await post_token(client, world.tenant_id, device_form(world, started["device_code"]))
    assert_oauth_error(response, status=400, error="expired_token", code=70019)


async def test_a_declined_device_code_is_a_70020(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """When the user declines, the device's next poll is refused with 70020 authorization_declined."""
    started = await start_device_flow(client, world)
    await approve_device_code(runtime, world.tenant_id, started["user_code"], "diego", approve=False)
    response = await post_token(client, world.tenant_id, device_form(world, started["device_code"]))
    assert_oauth_error(response, status=400, error="authorization_declined", code=70020)


# ---- on-behalf-of ----


@dataclass(frozen=True, slots=True)
class Api:
    """A web API (``api://<appId>/access_as_user``) allowed Graph's Presence.Read for its users, and its client."""

    app: Application
    secret: str
    client: Application


@pytest.fixture
async def api(runtime: Runtime, world: World) -> Api:
    app = await register_app(
        runtime, world.tenant_id, "Presence API", identifier_uris=("api://",), api_scopes=(api_scope("access_as_user"),)
    )
    secret = await add_secret(runtime, app)
    await runtime.identity.consent_for_all(world.tenant_id, app, GRAPH_RESOURCE, {"Presence.Read"}, datetime.now(UTC))
    cli = await register_app(
        runtime, world.tenant_id, "Presence CLI", public_redirects=(CALLBACK,), fallback_public=True
    )
    return Api(app, secret, cli)


def obo_form(api: Api, assertion: str, scope: str = f"{GRAPH}/Presence.Read") -> dict[str, str]:
    return {
        "grant_type": GRANT_JWT_BEARER,
        "requested_token_use": "on_behalf_of",
        "client_id": api.app.app_id,
        "client_secret": api.secret,
        "assertion": assertion,
        "scope": scope,
    }


def assertion_for(
    runtime: Runtime, tenant_id: str, audience: str, *, user_id: str | None, now: datetime | None = None
) -> str:
    """A token this server signed, as if issued to the API's client (delegated when ``user_id``)."""
    return mint_access_token(
        runtime.keys,
        runtime.settings.base_url,
        tenant_id,
        app_id=str(uuid.uuid4()),
        now=now or datetime.now(UTC),
        user_id=user_id,
        scopes=["access_as_user"] if user_id else (),
        audience=audience,
    )


async def test_on_behalf_of_exchanges_a_user_token_for_a_graph_token(
    client: httpx.AsyncClient, runtime: Runtime, world: World, api: Api
) -> None:
    """An API's user token, got through the code flow, is exchanged for a Graph token of the same user."""
    verifier, challenge = pkce()
    scope = f"api://{api.app.app_id}/access_as_user openid offline_access"
    code = await issue_code(runtime, world.tenant_id, api.client, "lynne", scope, CALLBACK, challenge=challenge)
    form = code_form(world, code, verifier, client_id=api.client.app_id)
    user_token = await post_token(client, world.tenant_id, form)
    assert user_token.status_code == 200, user_token.text
    incoming = claims(user_token.json()["access_token"], runtime)
    # An API's tokens name it by app id: an identifier URI could also be another tenant's.
    assert (incoming["aud"], incoming["scp"]) == (api.app.app_id, "access_as_user")
    response = await post_token(client, world.tenant_id, obo_form(api, user_token.json()["access_token"]))
    assert response.status_code == 200, response.text
    body = response.json()
    graph = claims(body["access_token"], runtime)
    assert (graph["aud"], graph["oid"], graph["scp"], graph["appid"]) == (
        GRAPH,
        world.user_id("lynne"),
        "Presence.Read",
        api.app.app_id,
    )
    assert "id_token" not in body


async def test_an_assertion_not_signed_by_this_server_is_a_50013(
    client: httpx.AsyncClient, runtime: Runtime, world: World, api: Api
) -> None:
    """An assertion signed with a key this server does not hold is refused with 50013."""
    now = int(datetime.now(UTC).timestamp())
    forged = {
        "aud": api.app.app_id,
        "iss": issuer(runtime.settings.base_url, world.tenant_id),
        "tid": world.tenant_id,
        "oid": world.user_id("alex"),
        "scp": "access_as_user",
        "iat": now,
        "exp": now + 3600,
    }
    key = RSAKey.generate_key(2048)
    token = jwt.encode({"alg": "RS256", "typ": "JWT", "kid": "forged"}, forged, key)
    response = await post_token(client, world.tenant_id, obo_form(api, token))
    assert_oauth_error(response, status=400, error="invalid_grant", code=50013)


async def test_an_assertion_for_another_audience_is_a_500131(
    client: httpx.AsyncClient, runtime: Runtime, world: World, api: Api
) -> None:
    """An assertion whose audience is not the calling app (here: a Graph token) is refused with 500131."""
    token = assertion_for(runtime, world.tenant_id, GRAPH, user_id=world.user_id("alex"))
    response = await post_token(client, world.tenant_id, obo_form(api, token))
    assert_oauth_error(response, status=400, error="invalid_grant", code=500131)


async def test_an_expired_assertion_is_a_500133(
    client: httpx.AsyncClient, runtime: Runtime, world: World, api: Api
) -> None:
    """An assertion past its expiry is refused with 500133."""
    then = datetime.now(UTC) - timedelta(hours=2)
    token = assertion_for(runtime, world.tenant_id, api.app.app_id, user_id=world.user_id("alex"), now=then)
    response = await post_token(client, world.tenant_id, obo_form(api, token))
    assert_oauth_error(response, status=400, error="invalid_grant", code=500133)


async def test_an_app_only_assertion_is_a_50027(
    client: httpx.AsyncClient, runtime: Runtime, world: World, api: Api
) -> None:
    """On-behalf-of needs a user's token; an app-only token is refused with 50027."""
    token = assertion_for(runtime, world.tenant_id, api.app.app_id, user_id=None)
    response = await post_token(client, world.tenant_id, obo_form(api, token))
    assert_oauth_error(response, status=400, error="invalid_grant", code=50027)


async def test_an_assertion_of_another_tenant_is_a_50027(
    client: httpx.AsyncClient, runtime: Runtime, world: World, api: Api
) -> None:
    """An assertion issued for another tenant than the request's is refused with 50027."""
    other = await runtime.identity.create_tenant("Fabrikam", datetime.now(UTC))
    token = assertion_for(runtime, other.id, api.app.app_id, user_id=world.user_id("alex"))
    response = await post_token(client, world.tenant_id, obo_form(api, token))
    assert_oauth_error(response, status=400, error="invalid_grant", code=50027)


async def test_an_assertion_for_a_user_who_is_gone_is_a_50034(
    client: httpx.AsyncClient, runtime: Runtime, world: World, api: Api
) -> None:
    """An assertion for a user no longer in the directory is refused with 50034."""
    token = assertion_for(runtime, world.tenant_id, api.app.app_id, user_id=world.user_id("alex"))
    assert await runtime.identity_store.delete_user(world.tenant_id, world.user_id("alex"))
    response = await post_token(client, world.tenant_id, obo_form(api, token))
    assert_oauth_error(response, status=400, error="invalid_grant", code=50034)


async def test_on_behalf_of_without_consent_is_a_65001(
    client: httpx.AsyncClient, runtime: Runtime, world: World, api: Api
) -> None:
    """On-behalf-of for a Graph permission the API was not granted gives 65001 consent_required."""
    token = assertion_for(runtime, world.tenant_id, api.app.app_id, user_id=world.user_id("alex"))
    response = await post_token(client, world.tenant_id, obo_form(api, token, scope=f"{GRAPH}/Presence.ReadWrite"))
    assert_oauth_error(response, status=400, error="invalid_grant", code=65001, suberror="consent_required")


# ---- the error body ----


async def test_the_correlation_id_defaults_to_the_trace_id(client: httpx.AsyncClient, world: World) -> None:
    """Without a client-request-id header the error's correlation id is its trace id."""
    response = await client.post(f"/{world.tenant_id}/oauth2/v2.0/token", data=cc_form(world, client_secret="bad"))
    body = response.json()
    assert body["correlation_id"] == body["trace_id"]
    assert response.headers["cache-control"] == "no-store"


async def test_a_refused_refresh_leaves_the_refresh_token_usable(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """After a refresh is refused for want of consent, the same refresh token still works for what was granted."""
    tokens = await user_tokens(client, runtime, world)
    wider = refresh_form(world, tokens["refresh_token"], scope=f"{GRAPH}/Presence.ReadWrite offline_access")
    assert (await post_token(client, world.tenant_id, wider)).status_code == 400
    response = await post_token(client, world.tenant_id, refresh_form(world, tokens["refresh_token"]))
    assert response.status_code == 200, response.text


async def test_a_refresh_token_is_redeemed_only_by_its_own_client(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A refresh token of one client, sent with another client's Basic credentials, gives no token to the other."""
    tokens = await user_tokens(client, runtime, world)
    other = await register_app(runtime, world.tenant_id, "Other web app", web_redirects=("https://other.example/cb",))
    secret = await add_secret(runtime, other)
    await runtime.identity.consent_for_all(
        world.tenant_id,
        other,
        GRAPH_RESOURCE,
        {"Presence.Read", "openid", "profile", "offline_access"},
        datetime.now(UTC),
    )
    basic = base64.b64encode(f"{other.app_id}:{secret}".encode()).decode()
    response = await post_token(
        client,
        world.tenant_id,
        refresh_form(world, tokens["refresh_token"]),
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code >= 400, claims(response.json()["access_token"], runtime)["appid"]


async def test_a_refresh_without_offline_access_still_rotates(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A refresh whose scope leaves out offline_access still hands back a new refresh token for the used one."""
    tokens = await user_tokens(client, runtime, world)
    form = refresh_form(world, tokens["refresh_token"], scope=f"{GRAPH}/Presence.Read")
    response = await post_token(client, world.tenant_id, form)
    assert response.status_code == 200, response.text
    assert response.json().get("refresh_token")
