"""The authorize endpoint's refusals, cross-tenant sign-in, organization-wide consent, operator tokens, discovery."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest

from presenced.bootstrap import Runtime
from presenced.oauth.errors import OAuthError
from presenced.oauth.tokens import GLOBAL_ADMINISTRATOR
from presenced.services.entities import Account
from tests.oauth.identity_support import (
    CALLBACK,
    GRAPH,
    Flow,
    World,
    assert_oauth_error,
    claims,
    client_for,
    is_error_page,
    page_form,
    post_token,
    redirect_params,
    redirect_target,
    register_app,
    sign_in,
    sign_in_as,
    submit,
    upn,
)
from tests.support import BASE_URL

#: A state a browser must never see as markup.
MARKUP_STATE = '"><script>alert(1)</script>'
OTHER_PASSWORD = "Fabrikam-pass-123"


# ---- refusals sent back to the app ----

#: (changes to the request, error, AADSTS code)
REDIRECTED = {
    "invalid-prompt": ({"prompt": "<i>sometimes</i>"}, "invalid_request", 90023),
    "short-code-challenge": ({"code_challenge": "a" * 42}, "invalid_request", 9002326),
    "code-challenge-method-S512": ({"code_challenge_method": "S512"}, "invalid_request", 9002327),
    "response-type-token": ({"response_type": "token"}, "unsupported_response_type", 700054),
    "unknown-graph-permission": ({"scope": f"{GRAPH}/Nothing.Read.All openid"}, "invalid_scope", 70011),
    "unknown-resource": ({"scope": "api://nothing/x"}, "invalid_resource", 500011),
    "missing-scope": ({"scope": None}, "invalid_request", 900144),
}


@pytest.mark.parametrize("case", list(REDIRECTED))
async def test_a_bad_request_of_a_trusted_client_is_sent_back_to_its_redirect_uri(
    browser: httpx.AsyncClient, world: World, case: str
) -> None:
    """A refusal once client and redirect URI are known good redirects there with error, AADSTS text and state."""
    changes, error, code = REDIRECTED[case]
    flow = Flow(world, **changes)
    response = await browser.get(flow.path())
    back = redirect_params(response)
    assert redirect_target(response) == CALLBACK
    assert (back["error"], back["state"]) == (error, flow.state), back
    assert back["error_description"].startswith(f"AADSTS{code}:"), back["error_description"]
    assert "code" not in back


@pytest.mark.parametrize("case", list(REDIRECTED))
async def test_a_bad_request_with_form_post_comes_back_as_an_escaped_form(
    browser: httpx.AsyncClient, world: World, case: str
) -> None:
    """With response_mode=form_post the refusal is an HTML form posting error, AADSTS text and state, all escaped."""
    changes, error, code = REDIRECTED[case]
    flow = Flow(world, response_mode="form_post", state=MARKUP_STATE, **changes)
    response = await browser.get(flow.path())
    assert response.status_code == 200, response.text[:500]
    assert "location" not in response.headers
    form = page_form(response)
    assert form.action == CALLBACK
    assert (form.fields["error"], form.fields["state"]) == (error, MARKUP_STATE)
    assert form.fields["error_description"].startswith(f"AADSTS{code}:"), form.fields["error_description"]
    assert "code" not in form.fields
    assert "<script>alert(1)" not in response.text
    assert "<i>sometimes" not in response.text


# ---- refusals that must not redirect ----


def _unknown_client(world: World) -> tuple[str, dict[str, str | None], int]:
    return world.tenant_id, {"client_id": str(uuid.uuid4())}, 700016


def _unregistered_redirect(world: World) -> tuple[str, dict[str, str | None], int]:
    return world.tenant_id, {"redirect_uri": "https://evil.example/callback"}, 50011


def _unknown_tenant(world: World) -> tuple[str, dict[str, str | None], int]:
    return str(uuid.uuid4()), {}, 90002


def _bogus_response_mode(world: World) -> tuple[str, dict[str, str | None], int]:
    return world.tenant_id, {"response_mode": "bogus"}, 900144


NOT_REDIRECTED = {
    "unknown-client": _unknown_client,
    "unregistered-redirect-uri": _unregistered_redirect,
    "unknown-tenant": _unknown_tenant,
    "bogus-response-mode": _bogus_response_mode,
}


@pytest.mark.parametrize("case", list(NOT_REDIRECTED))
async def test_a_request_of_an_untrusted_client_or_redirect_is_a_page(
    browser: httpx.AsyncClient, world: World, case: str
) -> None:
    """When the client, its redirect URI, the tenant or the response mode is in doubt, the answer is a 400 page."""
    tenant, changes, code = NOT_REDIRECTED[case](world)
    flow = Flow(world, **changes)
    response = await browser.get(flow.path(tenant))
    assert is_error_page(response), (response.status_code, response.headers, response.text[:500])
    assert f"AADSTS{code}" in response.text
    assert "<form" not in response.text


# ---- users of another tenant ----


async def other_tenant_user(runtime: Runtime) -> Account:
    """A second tenant (Fabrikam) with one user who has a password."""
    now = datetime.now(UTC)
    tenant = await runtime.identity.create_tenant("Fabrikam", now)
    return await runtime.identity.create_user(
        tenant.id, f"bob-{secrets.token_hex(4)}@fabrikam.example", "Bob", OTHER_PASSWORD, now
    )


async def test_another_tenants_user_cannot_use_a_single_tenant_app(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A user of another tenant signing in through /common to a single-tenant app is sent back with AADSTS50020."""
    bob = await other_tenant_user(runtime)
    assert world.public.sign_in_audience == "AzureADMyOrg"
    flow = Flow(world)
    page = await browser.get(flow.path("common"))
    response = await sign_in_as(browser, page, bob.user.user_principal_name, OTHER_PASSWORD)
    back = redirect_params(response)
    assert redirect_target(response) == CALLBACK
    assert back["state"] == flow.state
    assert back["error_description"].startswith("AADSTS50020:"), back
    assert "code" not in back


async def test_another_tenants_user_signs_in_to_a_multi_tenant_app_in_their_own_tenant(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A multi-tenant app lets a user of another tenant in through /common, and the token's tid is their tenant."""
    bob = await other_tenant_user(runtime)
    app = await register_app(
        runtime, world.tenant_id, "Multi-tenant", public_redirects=(CALLBACK,), audience="AzureADMultipleOrgs"
    )
    flow = Flow(world, app)
    page = await browser.get(flow.path("common"))
    consent = await sign_in_as(browser, page, bob.user.user_principal_name, OTHER_PASSWORD)
    assert page_form(consent).step == "consent", consent.text[:500]
    back = redirect_params(await submit(browser, page_form(consent), decision="accept"))
    assert back["state"] == flow.state
    response = await post_token(browser, "common", flow.token_form(back["code"]))
    assert response.status_code == 200, response.text
    token = claims(response.json()["access_token"], runtime)
    assert (token["tid"], token["oid"]) == (bob.user.tenant_id, bob.user.id)
    assert token["tid"] != world.tenant_id


# ---- permissions only an administrator may grant ----

ADMIN_ONLY = f"{GRAPH}/User.Read.All openid"


async def test_a_user_asking_for_an_admin_only_permission_needs_admin_approval(
    browser: httpx.AsyncClient, world: World
) -> None:
    """A non-admin asked for User.Read.All gets the 403 "Need admin approval" page (AADSTS90094) and no code."""
    flow = Flow(world, scope=ADMIN_ONLY)
    response = await sign_in(browser, await browser.get(flow.path()), "alex")
    assert is_error_page(response, 403)
    assert "Need admin approval" in response.text
    assert "AADSTS90094" in response.text


async def test_an_admin_sees_the_consent_page_with_the_organization_checkbox(
    browser: httpx.AsyncClient, world: World
) -> None:
    """An administrator asked for User.Read.All sees the consent page offering consent for the organization."""
    flow = Flow(world, scope=ADMIN_ONLY)
    response = await sign_in(browser, await browser.get(flow.path()), "adele")
    assert response.status_code == 200
    assert page_form(response).step == "consent"
    assert "Consent on behalf of your organization" in response.text
    assert 'name="for_all"' in response.text


async def test_an_admins_consent_for_the_organization_lets_other_users_in_without_consent(
    runtime: Runtime, world: World
) -> None:
    """Accepting with the organization box checked records an AllPrincipals grant; another user then gets a code."""
    async with client_for(runtime) as admin:
        flow = Flow(world, scope=ADMIN_ONLY)
        consent = await sign_in(admin, await admin.get(flow.path()), "adele")
        back = redirect_params(await submit(admin, page_form(consent), decision="accept", for_all="1"))
        assert back["code"]
    grants = await runtime.identity_store.list_grants(world.tenant_id)
    for_all = [g for g in grants if g.consent_type == "AllPrincipals" and "User.Read.All" in g.scopes]
    assert len(for_all) == 1
    assert for_all[0].principal_id is None
    async with client_for(runtime) as user:
        flow = Flow(world, scope=ADMIN_ONLY)
        response = await sign_in(user, await user.get(flow.path()), "megan")
        back = redirect_params(response)
    assert back["code"]
    assert back["state"] == flow.state


# ---- operator tokens (presenced token) ----


async def test_an_operator_token_for_an_admin_names_the_role_and_the_app(runtime: Runtime, world: World) -> None:
    """A delegated operator token for an administrator carries the Global Administrator wids and the app's name."""
    app = await register_app(runtime, world.tenant_id, "Operator Script")
    token = await runtime.oauth.minter.operator_token(
        world.tenant_id, app.app_id, user_ref=upn("adele"), permissions=["Presence.Read"]
    )
    found = claims(token, runtime)
    assert found["wids"] == [GLOBAL_ADMINISTRATOR] == ["62e90394-69f5-4237-9190-012177145e10"]
    assert found["app_displayname"] == "Operator Script"
    assert (found["oid"], found["scp"]) == (world.user_id("adele"), "Presence.Read")


async def test_an_operator_token_with_an_unknown_permission_is_refused(runtime: Runtime, world: World) -> None:
    """An operator token naming a permission Graph does not have is refused with an OAuthError (70011)."""
    with pytest.raises(OAuthError) as refused:
        await runtime.oauth.minter.operator_token(
            world.tenant_id, world.public.app_id, user_ref=upn("adele"), permissions=["Presence.Nothing"]
        )
    assert refused.value.aadsts == 70011


async def test_an_app_only_operator_token_has_the_apps_service_principal_as_oid(runtime: Runtime, world: World) -> None:
    """An app-only operator token for a registered app has the app's service principal id as oid."""
    app = await register_app(runtime, world.tenant_id, "Operator Daemon")
    sp = await runtime.identity_store.find_service_principal(world.tenant_id, app.app_id)
    assert sp is not None
    token = await runtime.oauth.minter.operator_token(world.tenant_id, app.app_id, permissions=["Presence.Read.All"])
    found = claims(token, runtime)
    assert (found["oid"], found["roles"], found["idtyp"]) == (sp.id, ["Presence.Read.All"], "app")
    assert found["oid"] != app.app_id


# ---- discovery ----


def discovery_path(tenant: str) -> str:
    return f"/{tenant}/v2.0/.well-known/openid-configuration"


async def test_the_common_discovery_document_keeps_common_and_a_template_issuer(
    browser: httpx.AsyncClient, world: World
) -> None:
    """/common's document names /common endpoints and the issuer template .../{tenantid}/v2.0."""
    response = await browser.get(discovery_path("common"))
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == f"{BASE_URL}/{{tenantid}}/v2.0"
    for name in ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint", "end_session_endpoint"):
        assert urlsplit(document[name]).path.startswith("/common/"), (name, document[name])


async def test_every_endpoint_the_discovery_document_names_is_served(browser: httpx.AsyncClient, world: World) -> None:
    """No URL in the document leads nowhere: each answers something other than 404 or 405 to the method
    a client would use (the userinfo endpoint, which presenced does not serve, is not named)."""
    document = (await browser.get(discovery_path(world.tenant_id))).json()
    endpoints = {name: url for name, url in document.items() if name.endswith(("_endpoint", "_uri"))}
    assert "userinfo_endpoint" not in endpoints
    posted = {"token_endpoint", "device_authorization_endpoint"}
    for name, url in endpoints.items():
        path = urlsplit(url).path
        answer = await (browser.post(path, data={}) if name in posted else browser.get(path))
        assert answer.status_code not in {404, 405}, (name, url, answer.status_code)


async def test_a_tenants_discovery_issuer_is_the_iss_of_its_tokens(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A tenant GUID's document has the concrete issuer that the tenant's tokens carry as iss."""
    response = await browser.get(discovery_path(world.tenant_id))
    assert response.status_code == 200
    document = response.json()
    form = {
        "grant_type": "client_credentials",
        "client_id": world.daemon.app_id,
        "client_secret": world.daemon_secret,
        "scope": f"{GRAPH}/.default",
    }
    issued = await post_token(browser, world.tenant_id, form)
    assert issued.status_code == 200, issued.text
    iss = claims(issued.json()["access_token"], runtime)["iss"]
    assert document["issuer"] == iss == f"{BASE_URL}/{world.tenant_id}/v2.0"
    assert urlsplit(document["token_endpoint"]).path == f"/{world.tenant_id}/oauth2/v2.0/token"


async def test_an_unknown_tenants_discovery_is_a_90002(browser: httpx.AsyncClient, world: World) -> None:
    """The discovery document of a tenant that does not exist is a JSON error with AADSTS90002."""
    response = await browser.get(discovery_path(str(uuid.uuid4())), headers={"client-request-id": str(uuid.uuid4())})
    assert response.headers["content-type"].startswith("application/json")
    assert_oauth_error(response, status=400, error="invalid_request", code=90002)


async def test_an_app_only_operator_token_needs_an_app_of_the_tenant(runtime: Runtime, world: World) -> None:
    """The operator chooses an app token's roles, but not an app that does not exist in the tenant (700016)."""
    with pytest.raises(OAuthError) as refused:
        await runtime.oauth.minter.operator_token(
            world.tenant_id, "0f9b2b84-1d2c-4c47-a8f1-3f5b9f3c2f10", permissions=["Presence.Read.All"]
        )
    assert refused.value.aadsts == 700016
    assert "no application 0f9b2b84-1d2c-4c47-a8f1-3f5b9f3c2f10" in refused.value.description


async def test_an_operator_token_without_permissions_is_refused(runtime: Runtime, world: World) -> None:
    """A token that would carry no permission at all is refused, for a user and for an app."""
    for user in (upn("adele"), None):
        with pytest.raises(OAuthError) as refused:
            await runtime.oauth.minter.operator_token(
                world.tenant_id, world.public.app_id, user_ref=user, permissions=[]
            )
        assert refused.value.aadsts == 70011
