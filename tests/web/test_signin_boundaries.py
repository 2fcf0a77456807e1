"""Refusals that keep a sign-in where it belongs: redirect targets, tenants, loopback ports, /.default."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest

from presenced.auth.permissions import APP_PRESENCE_READ_ALL
from presenced.bootstrap import Runtime
from presenced.errors import BadRequest, Conflict
from presenced.services.demo import demo_password
from tests.oauth.identity_support import (
    CALLBACK,
    World,
    access,
    add_secret,
    assert_oauth_error,
    authorize_path,
    page_form,
    pkce,
    post_token,
    redirect_params,
    redirect_target,
    register_app,
    submit,
    upn,
)


def _authorize(world: World, **changes: str) -> str:
    _, challenge = pkce()
    params = {
        "client_id": world.public.app_id,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "Presence.Read openid",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **changes,
    }
    return authorize_path(world.tenant_id, **{k: v for k, v in params.items() if v})


async def test_an_authorize_request_without_client_id_never_redirects(browser: httpx.AsyncClient, world: World) -> None:
    """With no client_id, the redirect URI is unchecked: the refusal is a page, never a redirect to it."""
    for mode in ("query", "form_post"):
        response = await browser.get(
            _authorize(world, client_id="", redirect_uri="https://evil.example/", response_mode=mode)
        )
        assert response.status_code == 400
        assert "location" not in response.headers
        assert "evil.example" not in response.text
        assert "AADSTS900144" in response.text


async def test_a_script_redirect_uri_cannot_be_registered(runtime: Runtime, world: World) -> None:
    """javascript:, data: and file: redirect URIs are refused when an app is registered."""
    for uri in ("javascript:alert(1)//", "data:text/html,hi", "file:///etc/passwd"):
        with pytest.raises(BadRequest, match="not allowed"):
            await register_app(runtime, world.tenant_id, "Bad", public_redirects=(uri,))


async def test_one_redirect_uri_belongs_to_one_platform(runtime: Runtime, world: World) -> None:
    """The same URI as both a web and a public-client redirect is refused, so PKCE rules cannot be dodged."""
    with pytest.raises(BadRequest, match="one platform"):
        await register_app(runtime, world.tenant_id, "Both", public_redirects=(CALLBACK,), web_redirects=(CALLBACK,))


async def test_form_post_may_only_post_to_the_app(browser: httpx.AsyncClient, world: World) -> None:
    """A form_post answer carries a policy allowing forms to the redirect URI's origin only."""
    response = await browser.get(_authorize(world, response_type="token", response_mode="form_post"))
    policy = response.headers["content-security-policy"]
    assert "form-action http://localhost:8400" in policy
    assert "default-src 'none'" in policy


async def test_a_loopback_redirect_uri_matches_on_any_port(browser: httpx.AsyncClient, world: World) -> None:
    """A public client's http://localhost redirect URI takes any port, as desktop apps need; the code is
    redeemed only with the exact URI it was sent to."""
    verifier, challenge = pkce()
    redirect = "http://localhost:53117"
    page = await browser.get(_authorize(world, redirect_uri=redirect, code_challenge=challenge))
    consent = await submit(browser, page_form(page), username=upn("alex"), password=demo_password("alex"))
    back = await submit(browser, page_form(consent), decision="accept")
    assert redirect_target(back) == redirect
    code = redirect_params(back)["code"]
    form = {"grant_type": "authorization_code", "client_id": world.public.app_id, "code": code,
            "code_verifier": verifier}  # fmt: skip
    wrong = await post_token(browser, world.tenant_id, {**form, "redirect_uri": "http://localhost:9"})
    assert_oauth_error(wrong, status=400, error="invalid_grant", code=50148)


async def test_a_user_principal_name_is_unique_across_tenants(runtime: Runtime, world: World) -> None:
    """Another tenant cannot create a user with a UPN that already signs in elsewhere."""
    other = await runtime.identity.create_tenant("Fabrikam", datetime.now(UTC))
    with pytest.raises(Conflict):
        await runtime.identity.create_user(other.id, upn("alex"), "Alex", "Another-pass-1", datetime.now(UTC))


async def test_client_credentials_need_the_app_in_the_tenant(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A multi-tenant app that nobody in a tenant consented to gets 700016 there, not a token without roles."""
    app = await register_app(
        runtime, world.tenant_id, "Multi", audience="AzureADMultipleOrgs", required=access(APP_PRESENCE_READ_ALL)
    )
    secret = await add_secret(runtime, app)
    other = await runtime.identity.create_tenant("Fabrikam", datetime.now(UTC))
    form = {
        "grant_type": "client_credentials",
        "client_id": app.app_id,
        "client_secret": secret,
        "scope": "https://graph.microsoft.com/.default",
    }
    assert_oauth_error(await post_token(client, other.id, form), status=400, error="unauthorized_client", code=700016)
    assert (await post_token(client, world.tenant_id, form)).status_code == 200


async def test_logout_returns_only_to_this_tenants_apps(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """post_logout_redirect_uri must belong to an app of the tenant; state is encoded, not pasted."""
    other = await runtime.identity.create_tenant("Fabrikam", datetime.now(UTC))
    await register_app(runtime, other.id, "Theirs", web_redirects=("https://theirs.example/bye",))
    base = f"/{world.tenant_id}/oauth2/v2.0/logout"
    theirs = await browser.get(f"{base}?{urlencode({'post_logout_redirect_uri': 'https://theirs.example/bye'})}")
    assert "location" not in theirs.headers
    ours = await browser.get(f"{base}?{urlencode({'post_logout_redirect_uri': CALLBACK, 'state': 'a&b=c#d'})}")
    assert ours.headers["location"] == f"{CALLBACK}?{urlencode({'state': 'a&b=c#d'})}"


async def test_an_admin_of_another_tenant_cannot_consent_here(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Admin consent on a tenant's path, signed in as another tenant's admin, is access_denied (50020)."""
    other = await runtime.identity.create_tenant("Fabrikam", datetime.now(UTC))
    await runtime.identity.create_user(
        other.id, "root@fabrikam.example", "Root", "Fabrikam-pass-1", datetime.now(UTC), is_admin=True
    )
    app = await register_app(
        runtime, world.tenant_id, "Daemon2", web_redirects=(CALLBACK,), audience="AzureADMultipleOrgs"
    )
    params = urlencode({"client_id": app.app_id, "redirect_uri": CALLBACK, "state": "x"})
    # Signed in through common (where Fabrikam's admin may consent for Fabrikam)...
    page = await browser.get(f"/common/adminconsent?{params}")
    consent = await submit(browser, page_form(page), username="root@fabrikam.example", password="Fabrikam-pass-1")
    assert page_form(consent).step == "consent"
    # ... the same session cannot consent on Contoso's path.
    back = await browser.get(f"/{world.tenant_id}/adminconsent?{params}")
    assert redirect_params(back)["error"] == "access_denied"
    assert redirect_params(back)["error_description"].startswith("AADSTS50020")


async def test_default_after_a_sign_in_only_consent_asks_for_consent(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A user who consented only to sign-in is shown the consent page for /.default, not sent round in circles."""
    _, challenge = pkce()
    first = await browser.get(_authorize(world, scope="openid profile", code_challenge=challenge))
    consent = await submit(browser, page_form(first), username=upn("megan"), password=demo_password("megan"))
    await submit(browser, page_form(consent), decision="accept")
    again = await browser.get(_authorize(world, scope="https://graph.microsoft.com/.default openid"))
    assert page_form(again).step == "consent"
    assert "Read your presence information" in again.text


async def test_a_device_code_is_polled_on_its_own_tenant(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A device code started on one tenant is not recognised when polled on another tenant's endpoint."""
    other = await runtime.identity.create_tenant("Fabrikam", datetime.now(UTC))
    started = await client.post(
        f"/{world.tenant_id}/oauth2/v2.0/devicecode",
        data={"client_id": world.public.app_id, "scope": "Presence.Read"},
    )
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": world.public.app_id,
        "device_code": started.json()["device_code"],
    }
    on_own = await post_token(client, world.tenant_id, form)
    assert on_own.json()["error"] == "authorization_pending"
    elsewhere = await post_token(client, other.id, form)
    assert elsewhere.json()["error_codes"] in ([70000], [700016])
    assert uuid.UUID(other.id)
