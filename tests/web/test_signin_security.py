"""The sign-in pages, driven as a browser would: authorize, sign in, consent, device code, logout, admin consent."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from presenced.auth.permissions import APP_PRESENCE_READ_ALL
from presenced.bootstrap import Runtime
from presenced.services.demo import demo_password
from presenced.services.entities import Application
from tests.oauth.identity_support import (
    CALLBACK,
    GRANT_DEVICE_CODE,
    GRAPH,
    SCOPES,
    Flow,
    World,
    accept,
    access,
    add_secret,
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
    submit,
    upn,
)

LOCKED = "Your account is locked"
WRONG = "Your account or password is incorrect."


async def code_through_pages(browser: httpx.AsyncClient, flow: Flow, nickname: str = "alex") -> dict[str, str]:
    """Authorize, sign in and consent: the parameters the browser is redirected back with."""
    page = await browser.get(flow.path())
    assert page.status_code == 200, page.text[:500]
    consent = await sign_in(browser, page, nickname)
    assert consent.status_code == 200, consent.text[:500]
    return redirect_params(await accept(browser, consent))


async def tokens_through_pages(
    browser: httpx.AsyncClient, world: World, nickname: str = "alex"
) -> tuple[Flow, dict[str, Any]]:
    flow = Flow(world)
    back = await code_through_pages(browser, flow, nickname)
    response = await post_token(browser, world.tenant_id, flow.token_form(back["code"]))
    assert response.status_code == 200, response.text
    return flow, response.json()


# ---- the authorize request ----


async def test_the_pages_give_a_code_that_redeems_for_the_users_tokens(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Sign-in and consent on the pages redirect to the client with a code that gives the user's tokens."""
    _flow, body = await tokens_through_pages(browser, world, "megan")
    token = claims(body["access_token"], runtime)
    assert (token["oid"], token["scp"]) == (world.user_id("megan"), "Presence.Read")
    assert body["refresh_token"]


async def test_a_public_client_without_pkce_gets_no_code(browser: httpx.AsyncClient, world: World) -> None:
    """A public client's authorize request without code_challenge is refused (AADSTS9002325) and no code is issued."""
    response = await browser.get(Flow(world, code_challenge=None, code_challenge_method=None).path())
    back = redirect_params(response)
    assert "code" not in back
    assert back["error_description"].startswith("AADSTS9002325")


async def test_a_refusal_after_the_redirect_uri_is_trusted_goes_back_to_it(
    browser: httpx.AsyncClient, world: World
) -> None:
    """A redirectable refusal (PKCE missing) is sent to the registered redirect URI with error and state."""
    flow = Flow(world, code_challenge=None, code_challenge_method=None)
    response = await browser.get(flow.path())
    back = redirect_params(response)
    assert redirect_target(response) == CALLBACK
    assert (back["error"], back["state"]) == ("invalid_request", flow.state)
    assert back["error_description"].startswith("AADSTS9002325")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        f"{CALLBACK}/",
        "http://localhost:8400/Callback",
        "http://localhost:8400/callback?x=1",
        "http://127.0.0.1:8400/callback",
    ],
)
async def test_a_redirect_uri_must_match_exactly(browser: httpx.AsyncClient, world: World, redirect_uri: str) -> None:
    """A redirect URI differing from the registered one in any way is refused with a page (50011), not a redirect."""
    response = await browser.get(Flow(world, redirect_uri=redirect_uri).path())
    assert is_error_page(response)
    assert "AADSTS50011" in response.text


async def test_state_and_nonce_round_trip(browser: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """The state comes back on the redirect and the nonce in the ID token."""
    flow = Flow(world)
    back = await code_through_pages(browser, flow)
    assert back["state"] == flow.state
    response = await post_token(browser, world.tenant_id, flow.token_form(back["code"]))
    assert claims(response.json()["id_token"], runtime)["nonce"] == flow.nonce


async def test_form_post_returns_an_auto_submitting_form(browser: httpx.AsyncClient, world: World) -> None:
    """With response_mode=form_post the code and state come in a form that posts itself to the redirect URI."""
    flow = Flow(world, response_mode="form_post")
    page = await browser.get(flow.path())
    response = await accept(browser, await sign_in(browser, page, "alex"))
    assert response.status_code == 200
    form = page_form(response)
    assert form.action == CALLBACK
    assert form.fields["state"] == flow.state
    assert form.fields["code"]
    assert "document.forms[0].submit()" in response.text


async def test_prompt_none_without_a_session_is_login_required(browser: httpx.AsyncClient, world: World) -> None:
    """A silent request with nobody signed in redirects back with error=login_required and the state."""
    flow = Flow(world, prompt="none")
    response = await browser.get(flow.path())
    back = redirect_params(response)
    assert redirect_target(response) == CALLBACK
    assert (back["error"], back["state"]) == ("login_required", flow.state)
    assert "code" not in back


async def test_prompt_none_with_a_session_and_consent_gives_a_code(browser: httpx.AsyncClient, world: World) -> None:
    """A silent request of a signed-in user who already consented gets a code without any page."""
    await code_through_pages(browser, Flow(world))
    flow = Flow(world, prompt="none")
    back = redirect_params(await browser.get(flow.path()))
    assert back["code"]
    assert back["state"] == flow.state


async def test_prompt_consent_shows_the_consent_page_again(browser: httpx.AsyncClient, world: World) -> None:
    """A user who already consented sees the consent page again when the request says prompt=consent."""
    await code_through_pages(browser, Flow(world))
    response = await browser.get(Flow(world, prompt="consent").path())
    assert response.status_code == 200
    assert page_form(response).step == "consent"


async def test_declining_consent_is_access_denied(browser: httpx.AsyncClient, world: World) -> None:
    """Cancel on the consent page redirects back with error=access_denied and no code."""
    flow = Flow(world)
    consent = await sign_in(browser, await browser.get(flow.path()), "alex")
    back = redirect_params(await submit(browser, page_form(consent), decision="cancel"))
    assert (back["error"], back["state"]) == ("access_denied", flow.state)
    assert "code" not in back


async def test_prompt_login_asks_for_the_password_again(browser: httpx.AsyncClient, world: World) -> None:
    """A signed-in user is shown the sign-in form again when the request says prompt=login."""
    await code_through_pages(browser, Flow(world))
    response = await browser.get(Flow(world, prompt="login").path())
    assert page_form(response).step == "signin"


async def test_a_permission_only_an_admin_may_grant_stops_a_user(browser: httpx.AsyncClient, world: World) -> None:
    """A user asked for an admin-only permission (User.Read.All) gets the "need admin approval" page and no code."""
    flow = Flow(world, scope=f"{GRAPH}/User.Read.All openid")
    response = await sign_in(browser, await browser.get(flow.path()), "alex")
    assert is_error_page(response, 403)
    assert "AADSTS90094" in response.text


async def test_form_post_escapes_the_state(browser: httpx.AsyncClient, world: World) -> None:
    """A state holding markup comes back intact in the form_post page but never as markup."""
    state = '"><script>alert(1)</script>'
    flow = Flow(world, response_mode="form_post", state=state)
    response = await accept(browser, await sign_in(browser, await browser.get(flow.path()), "alex"))
    assert page_form(response).fields["state"] == state
    assert "<script>alert(1)" not in response.text


async def test_the_session_cookie_is_http_only_and_same_site(browser: httpx.AsyncClient, world: World) -> None:
    """The session cookie set at sign-in is HttpOnly and SameSite=Lax."""
    flow = Flow(world)
    response = await sign_in(browser, await browser.get(flow.path()), "alex")
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("presenced_session="))
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()


async def test_the_consent_page_cannot_be_framed(browser: httpx.AsyncClient, world: World) -> None:
    """The consent page forbids framing and caching (no clickjacking of the Accept button)."""
    response = await sign_in(browser, await browser.get(Flow(world).path()), "alex")
    assert page_form(response).step == "consent"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


# ---- codes and refresh tokens from the pages ----


async def test_a_code_from_the_pages_is_single_use(browser: httpx.AsyncClient, world: World) -> None:
    """The code the pages hand out is redeemed once; again is a 54005."""
    flow = Flow(world)
    back = await code_through_pages(browser, flow)
    first = await post_token(browser, world.tenant_id, flow.token_form(back["code"]))
    assert first.status_code == 200, first.text
    second = await post_token(browser, world.tenant_id, flow.token_form(back["code"]))
    assert_oauth_error(second, status=400, error="invalid_grant", code=54005)


async def test_a_code_from_the_pages_expires_after_ten_minutes(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """The code the pages hand out is refused with 70008 once ten minutes have passed."""
    flow = Flow(world)
    back = await code_through_pages(browser, flow)
    runtime.oauth.now = lambda: datetime.now(UTC) + timedelta(minutes=10, seconds=1)
    response = await post_token(browser, world.tenant_id, flow.token_form(back["code"]))
    assert_oauth_error(response, status=400, error="invalid_grant", code=70008)


async def test_a_refresh_token_from_the_pages_is_rotated(browser: httpx.AsyncClient, world: World) -> None:
    """Each refresh gives a new refresh token."""
    _flow, body = await tokens_through_pages(browser, world)
    form = {"grant_type": "refresh_token", "client_id": world.public.app_id, "refresh_token": body["refresh_token"]}
    response = await post_token(browser, world.tenant_id, form)
    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"] not in {body["refresh_token"], ""}


async def test_reusing_a_refresh_token_revokes_its_family(browser: httpx.AsyncClient, world: World) -> None:
    """A replayed refresh token is a 70000 and the token it was rotated into stops working as well."""
    _flow, body = await tokens_through_pages(browser, world)
    form = {"grant_type": "refresh_token", "client_id": world.public.app_id, "refresh_token": body["refresh_token"]}
    rotated = (await post_token(browser, world.tenant_id, form)).json()["refresh_token"]
    replay = await post_token(browser, world.tenant_id, form)
    assert_oauth_error(replay, status=400, error="invalid_grant", code=70000)
    after = await post_token(browser, world.tenant_id, {**form, "refresh_token": rotated})
    assert (after.status_code, after.json()["error"]) == (400, "invalid_grant")


# ---- CSRF ----


@pytest.mark.parametrize("csrf", [None, "not-the-cookie"])
async def test_a_sign_in_without_the_csrf_token_signs_nobody_in(
    browser: httpx.AsyncClient, world: World, csrf: str | None
) -> None:
    """A sign-in post without the CSRF field, or with a wrong one, is an error page and starts no session."""
    flow = Flow(world)
    form = page_form(await browser.get(flow.path()))
    fields = {**form.fields, "username": upn("alex"), "password": demo_password("alex")}
    if csrf is None:
        del fields["csrf"]
    else:
        fields["csrf"] = csrf
    response = await browser.post(form.action, data=fields)
    assert is_error_page(response)
    assert "presenced_session" not in browser.cookies
    assert page_form(await browser.get(flow.path())).step == "signin"


@pytest.mark.parametrize("csrf", [None, "not-the-cookie"])
async def test_a_consent_without_the_csrf_token_records_nothing(
    browser: httpx.AsyncClient, runtime: Runtime, world: World, csrf: str | None
) -> None:
    """A consent post without the CSRF field, or with a wrong one, is an error page and grants nothing."""
    flow = Flow(world)
    consent = page_form(await sign_in(browser, await browser.get(flow.path()), "alex"))
    fields = {**consent.fields, "decision": "accept"}
    if csrf is None:
        del fields["csrf"]
    else:
        fields["csrf"] = csrf
    response = await browser.post(consent.action, data=fields)
    assert is_error_page(response)
    assert await runtime.identity_store.list_grants(world.tenant_id, principal_id=world.user_id("alex")) == []
    assert page_form(await browser.get(flow.path())).step == "consent"


async def test_a_device_code_post_without_the_csrf_token_is_refused(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A device-code page post with a wrong CSRF field is an error page and leaves the code pending."""
    started = await start_device_flow(browser, world)
    page = page_form(await browser.get("/devicelogin"))
    response = await browser.post(
        "/devicelogin", data={**page.fields, "csrf": "forged", "user_code": started["user_code"]}
    )
    assert is_error_page(response)
    code, _app = await runtime.oauth.device_approval.pending(started["user_code"])
    assert code.status == "pending"


async def test_an_admin_consent_without_the_csrf_token_grants_nothing(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """An admin-consent post with a wrong CSRF field is an error page and assigns no role."""
    app, secret = await reporting_app(runtime, world)
    page = await browser.get(f"/{world.tenant_id}/adminconsent?{urlencode({'client_id': app.app_id})}")
    consent = page_form(await sign_in(browser, page, "adele"))
    response = await browser.post(consent.action, data={**consent.fields, "decision": "accept", "csrf": "forged"})
    assert is_error_page(response)
    assert await app_roles(browser, runtime, world, app, secret) == []


# ---- sign-in throttling ----


async def wrong_passwords(browser: httpx.AsyncClient, flow: Flow, username: str, times: int) -> None:
    for _ in range(times):
        form = page_form(await browser.get(flow.path()))
        response = await submit(browser, form, username=username, password="not-the-password")
        assert response.status_code == 400


async def test_ten_failures_lock_the_account(browser: httpx.AsyncClient, world: World) -> None:
    """After ten wrong passwords the eleventh attempt, with the right password, is refused with the lockout message."""
    flow = Flow(world)
    await wrong_passwords(browser, flow, upn("alex"), 10)
    response = await sign_in(browser, await browser.get(flow.path()), "alex")
    assert response.status_code == 400
    assert LOCKED in response.text
    assert "presenced_session" not in browser.cookies


async def test_nine_failures_do_not_lock_the_account(browser: httpx.AsyncClient, world: World) -> None:
    """Nine wrong passwords still let the right one in."""
    flow = Flow(world)
    await wrong_passwords(browser, flow, upn("alex"), 9)
    response = await sign_in(browser, await browser.get(flow.path()), "alex")
    assert response.status_code == 200
    assert page_form(response).step == "consent"


async def test_the_account_lock_lasts_a_minute(browser: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """A locked account lets the right password in again after a minute."""
    flow = Flow(world)
    await wrong_passwords(browser, flow, upn("alex"), 10)
    runtime.signin.now = lambda: datetime.now(UTC) + timedelta(minutes=1, seconds=1)
    response = await sign_in(browser, await browser.get(flow.path()), "alex")
    assert page_form(response).step == "consent"


async def test_the_account_lock_does_not_stop_other_accounts(browser: httpx.AsyncClient, world: World) -> None:
    """Locking one account leaves other accounts (from the same address) able to sign in."""
    flow = Flow(world)
    await wrong_passwords(browser, flow, upn("alex"), 10)
    response = await sign_in(browser, await browser.get(flow.path()), "megan")
    assert page_form(response).step == "consent"


@pytest.mark.parametrize("alias", ["tenant-path", "object-id"])
async def test_the_account_lock_holds_whatever_the_account_is_called(
    runtime: Runtime, world: World, alias: str
) -> None:
    """A locked account stays locked when the same account is named another way."""
    flow = Flow(world)
    async with client_for(runtime) as first:
        await wrong_passwords(first, flow, upn("alex"), 10)
    async with client_for(runtime) as second:
        if alias == "tenant-path":
            page = await second.get(flow.path("common"))
            response = await sign_in(second, page, "alex")
        else:
            form = page_form(await second.get(flow.path()))
            response = await submit(second, form, username=world.user_id("alex"), password=demo_password("alex"))
    assert LOCKED in response.text


async def test_thirty_failures_lock_the_address(browser: httpx.AsyncClient, world: World) -> None:
    """Thirty failures from one address, over many names, lock that address out even for a right password."""
    flow = Flow(world)
    for n in range(30):
        await wrong_passwords(browser, flow, f"nobody{n}@contoso.example", 1)
    response = await sign_in(browser, await browser.get(flow.path()), "nestor")
    assert response.status_code == 400
    assert LOCKED in response.text


async def test_the_address_lock_leaves_other_addresses_alone(runtime: Runtime, world: World) -> None:
    """An address locked out does not stop the same user signing in from another address."""
    flow = Flow(world)
    async with client_for(runtime) as attacker:
        for n in range(30):
            await wrong_passwords(attacker, flow, f"nobody{n}@contoso.example", 1)
    async with client_for(runtime) as user:
        response = await sign_in(user, await user.get(flow.path()), "nestor")
    assert page_form(response).step == "consent"


async def test_a_wrong_password_does_not_tell_whether_the_account_exists(
    browser: httpx.AsyncClient, world: World
) -> None:
    """A wrong password for a real account and any password for an unknown one get the same answer."""
    flow = Flow(world)
    form = page_form(await browser.get(flow.path()))
    real = await submit(browser, form, username=upn("grady"), password="not-the-password")
    form = page_form(await browser.get(flow.path()))
    unknown = await submit(browser, form, username="nobody@contoso.example", password="not-the-password")
    assert real.status_code == unknown.status_code == 400
    assert WRONG in real.text
    assert WRONG in unknown.text
    assert real.text.replace(upn("grady"), "USER") == unknown.text.replace("nobody@contoso.example", "USER")


# ---- device code pages ----


async def start_device_flow(browser: httpx.AsyncClient, world: World) -> dict[str, Any]:
    response = await browser.post(
        f"/{world.tenant_id}/oauth2/v2.0/devicecode", data={"client_id": world.public.app_id, "scope": SCOPES}
    )
    assert response.status_code == 200, response.text
    return response.json()


def device_form(world: World, device_code: str) -> dict[str, str]:
    return {"grant_type": GRANT_DEVICE_CODE, "client_id": world.public.app_id, "device_code": device_code}


async def device_decision(browser: httpx.AsyncClient, user_code: str, nickname: str, decision: str) -> httpx.Response:
    """Enter the code on /devicelogin, sign in, and answer the consent page with ``decision``."""
    page = page_form(await browser.get("/devicelogin"))
    entered = await submit(browser, page, user_code=user_code)
    consent = await sign_in(browser, entered, nickname) if page_form(entered).step == "signin" else entered
    return await submit(browser, page_form(consent), decision=decision)


async def test_an_unknown_device_code_shows_an_error(browser: httpx.AsyncClient, world: World) -> None:
    """A code nobody issued is refused on the device page, which asks again."""
    page = page_form(await browser.get("/devicelogin"))
    response = await submit(browser, page, user_code="ZZZZZZZZZ")
    assert response.status_code == 400
    assert "not recognised" in response.text
    assert page_form(response).fields["step"] == "code"


async def test_an_approved_device_code_gives_tokens(browser: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """Approving on the device page lets the device's next poll get the user's tokens."""
    started = await start_device_flow(browser, world)
    done = await device_decision(browser, started["user_code"], "isaiah", "accept")
    assert done.status_code == 200
    assert "signed in" in done.text
    response = await post_token(browser, world.tenant_id, device_form(world, started["device_code"]))
    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"], runtime)["oid"] == world.user_id("isaiah")


async def test_a_declined_device_code_is_a_70020(browser: httpx.AsyncClient, world: World) -> None:
    """Declining on the device page makes the device's next poll a 70020."""
    started = await start_device_flow(browser, world)
    done = await device_decision(browser, started["user_code"], "isaiah", "cancel")
    assert "declined" in done.text
    response = await post_token(browser, world.tenant_id, device_form(world, started["device_code"]))
    assert_oauth_error(response, status=400, error="authorization_declined", code=70020)


async def test_a_device_code_is_entered_once(browser: httpx.AsyncClient, world: World) -> None:
    """Once approved, the same user code is not recognised again."""
    started = await start_device_flow(browser, world)
    await device_decision(browser, started["user_code"], "isaiah", "accept")
    page = page_form(await browser.get("/devicelogin"))
    response = await submit(browser, page, user_code=started["user_code"])
    assert response.status_code == 400
    assert "not recognised" in response.text


# ---- logout ----


async def test_logout_ends_the_session(browser: httpx.AsyncClient, world: World) -> None:
    """After logout, the next authorize request shows the sign-in form again."""
    flow = Flow(world)
    await code_through_pages(browser, flow)
    assert redirect_params(await browser.get(Flow(world).path()))["code"]
    response = await browser.get(f"/{world.tenant_id}/oauth2/v2.0/logout")
    assert response.status_code == 200
    assert page_form(await browser.get(Flow(world).path())).step == "signin"


async def test_an_old_session_cookie_is_dead_after_logout(runtime: Runtime, world: World) -> None:
    """A copy of the session cookie taken before logout no longer signs anyone in."""
    async with client_for(runtime) as browser:
        await code_through_pages(browser, Flow(world))
        stolen = browser.cookies["presenced_session"]
        await browser.get(f"/{world.tenant_id}/oauth2/v2.0/logout")
    async with client_for(runtime) as other:
        other.cookies.set("presenced_session", stolen)
        assert page_form(await other.get(Flow(world).path())).step == "signin"


async def test_logout_redirects_only_to_a_registered_uri(browser: httpx.AsyncClient, world: World) -> None:
    """post_logout_redirect_uri is followed when registered for the app and ignored otherwise."""
    base = f"/{world.tenant_id}/oauth2/v2.0/logout"
    good = await browser.get(f"{base}?{urlencode({'post_logout_redirect_uri': CALLBACK, 'state': 's1'})}")
    assert (good.status_code, good.headers["location"]) == (302, f"{CALLBACK}?state=s1")
    evil = await browser.get(f"{base}?{urlencode({'post_logout_redirect_uri': 'https://evil.example/'})}")
    assert evil.status_code == 200
    assert "location" not in evil.headers


# ---- admin consent ----


async def reporting_app(runtime: Runtime, world: World) -> tuple[Application, str]:
    """A confidential app asking for Presence.Read.All (application), not consented yet, and its secret."""
    app = await register_app(
        runtime,
        world.tenant_id,
        "Reporting",
        web_redirects=("https://reports.example/consent",),
        required=access(APP_PRESENCE_READ_ALL),
    )
    return app, await add_secret(runtime, app)


async def app_roles(
    browser: httpx.AsyncClient, runtime: Runtime, world: World, app: Application, secret: str
) -> list[str]:
    """The roles in the app's client-credentials token."""
    form = {
        "grant_type": "client_credentials",
        "client_id": app.app_id,
        "client_secret": secret,
        "scope": f"{GRAPH}/.default",
    }
    response = await post_token(browser, world.tenant_id, form)
    assert response.status_code == 200, response.text
    roles: list[str] = claims(response.json()["access_token"], runtime).get("roles", [])
    return roles


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_an_admin_consents_for_the_tenant(
    browser: httpx.AsyncClient, runtime: Runtime, world: World, version: str
) -> None:
    """An administrator's admin consent redirects with admin_consent=True and the tenant, and the app gets its roles."""
    app, secret = await reporting_app(runtime, world)
    params = {"client_id": app.app_id, "state": "st-1", "redirect_uri": "https://reports.example/consent"}
    path = f"/{world.tenant_id}/adminconsent"
    if version == "v2":
        params["scope"] = f"{GRAPH}/.default"
        path = f"/{world.tenant_id}/v2.0/adminconsent"
    consent = await sign_in(browser, await browser.get(f"{path}?{urlencode(params)}"), "adele")
    response = await accept(browser, consent)
    back = redirect_params(response)
    assert redirect_target(response) == "https://reports.example/consent"
    assert (back["admin_consent"], back["tenant"], back["state"]) == ("True", world.tenant_id, "st-1")
    assert await app_roles(browser, runtime, world, app, secret) == ["Presence.Read.All"]


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_a_non_admin_cannot_consent_for_the_tenant(
    browser: httpx.AsyncClient, runtime: Runtime, world: World, version: str
) -> None:
    """A user who is not an administrator is sent back with error=access_denied and the app gets nothing."""
    app, secret = await reporting_app(runtime, world)
    params = {"client_id": app.app_id, "state": "st-2"}
    path = f"/{world.tenant_id}/adminconsent"
    if version == "v2":
        params["scope"] = f"{GRAPH}/.default"
        path = f"/{world.tenant_id}/v2.0/adminconsent"
    response = await sign_in(browser, await browser.get(f"{path}?{urlencode(params)}"), "alex")
    back = redirect_params(response)
    assert (back["error"], back["state"]) == ("access_denied", "st-2")
    assert "admin_consent" not in back
    assert await app_roles(browser, runtime, world, app, secret) == []


# ---- logging ----


async def test_no_credential_reaches_the_logs(
    browser: httpx.AsyncClient, runtime: Runtime, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Across sign-in, consent, code, refresh, device code and client credentials, no credential is logged."""
    caplog.set_level(logging.DEBUG)
    for name in ("presenced", "presenced.api", "presenced.web", "presenced.oauth"):
        caplog.set_level(logging.DEBUG, logger=name)
    flow = Flow(world)
    back = await code_through_pages(browser, flow, "pradeep")
    tokens = (await post_token(browser, world.tenant_id, flow.token_form(back["code"]))).json()
    refresh = {
        "grant_type": "refresh_token",
        "client_id": world.public.app_id,
        "refresh_token": tokens["refresh_token"],
    }
    refreshed = (await post_token(browser, world.tenant_id, refresh)).json()
    await post_token(browser, world.tenant_id, refresh)  # a replay, refused
    daemon = {
        "grant_type": "client_credentials",
        "client_id": world.daemon.app_id,
        "client_secret": world.daemon_secret,
        "scope": f"{GRAPH}/.default",
    }
    app_token = (await post_token(browser, world.tenant_id, daemon)).json()["access_token"]
    await post_token(browser, world.tenant_id, {**daemon, "client_secret": "Wrong-secret-value-123"})
    started = await start_device_flow(browser, world)
    await device_decision(browser, started["user_code"], "pradeep", "accept")
    device = (await post_token(browser, world.tenant_id, device_form(world, started["device_code"]))).json()
    await wrong_passwords(browser, Flow(world, prompt="login"), upn("johanna"), 1)
    secrets_seen = [
        demo_password("pradeep"),
        world.daemon_secret,
        "Wrong-secret-value-123",
        back["code"],
        flow.verifier,
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        refreshed["refresh_token"],
        app_token,
        started["user_code"],
        started["device_code"],
        device["access_token"],
        device["refresh_token"],
        browser.cookies["presenced_session"],
    ]
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in ours)
    leaked = [s for s in secrets_seen if s in logged]
    assert leaked == []
    assert "not-the-password" not in logged
