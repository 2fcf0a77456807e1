"""The Granted permissions page: what each app holds, who granted it and when; revoking stops the next token."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from typing import Any

import httpx
import pytest

from presenced.bootstrap import Runtime
from presenced.oauth.tokens import mint_access_token
from presenced.services.identity import GRAPH
from tests.oauth.identity_support import CALLBACK, World, issue_code, pkce, post_token
from tests.support import BASE_URL, bearer
from tests.web.portal_support import page_error, portal_sign_in


@pytest.fixture
def database_url() -> None:
    """SQLite only: the pages call services that tests/api and tests/store run on both stores."""
    return


SCOPES = "https://graph.microsoft.com/Presence.Read openid profile offline_access"
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"


def shown(page: httpx.Response) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


async def consent_and_tokens(client: httpx.AsyncClient, runtime: Runtime, world: World, nickname: str) -> Any:
    """The user consents to the demo desktop app at sign-in, and the app redeems the code for tokens."""
    verifier, challenge = pkce()
    code = await issue_code(runtime, world.tenant_id, world.public, nickname, SCOPES, CALLBACK, challenge=challenge)
    form = {
        "grant_type": "authorization_code",
        "client_id": world.public.app_id,
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    response = await post_token(client, world.tenant_id, form)
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(client: httpx.AsyncClient, world: World, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "client_id": world.public.app_id, "refresh_token": refresh_token}
    return await post_token(client, world.tenant_id, form)


async def own_grant_id(runtime: Runtime, world: World, nickname: str) -> str:
    [grant] = await runtime.identity_store.list_grants(world.tenant_id, principal_id=world.user_id(nickname))
    return grant.id


def section(page: httpx.Response, app_name: str) -> str:
    """The text of the page from an app's heading to the next app's."""
    text = shown(page)
    assert app_name in text, text[:500]
    return text.split(app_name, 1)[1].split("Application (client) ID", 2)[1]


async def test_an_administrator_sees_every_apps_grants_with_who_gave_them_and_when(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Users' own consents name the user; the demo daemon's application permissions were given by no person."""
    await consent_and_tokens(browser, runtime, world, "megan")
    await portal_sign_in(browser, world, "adele", "/consents")
    page = await browser.get("/consents")
    assert page.status_code == 200
    assert "<h1>Granted permissions</h1>" in page.text
    desktop = section(page, "Presence Desktop (demo)")
    assert re.search(
        rf"Microsoft Graph Presence.Read offline_access openid profile User consent \(Megan Bowen\) "
        rf"User \(Megan Bowen\) {WHEN} Revoke",
        desktop,
    ), desktop
    daemon = section(page, "Presence Daemon (demo)")
    for role in ("Presence.Read.All", "Presence.ReadWrite.All"):
        assert re.search(rf"Microsoft Graph {re.escape(role)} presenced CLI or an app {WHEN} Revoke", daemon), daemon


async def test_a_grant_made_through_the_directory_api_names_the_administrator(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """An admin consent created with POST /oauth2PermissionGrants by a signed-in administrator shows who gave it."""
    token = mint_access_token(
        runtime.keys, BASE_URL, world.tenant_id, app_id=world.public.app_id, now=datetime.now(UTC),
        user_id=world.user_id("adele"), scopes=("DelegatedPermissionGrant.ReadWrite.All",), directory_admin=True,
    )  # fmt: skip
    client_sp = await runtime.identity.client_principal(world.tenant_id, world.public, datetime.now(UTC))
    body = {
        "clientId": client_sp.id,
        "consentType": "AllPrincipals",
        "resourceId": (await runtime.identity.graph_principal(world.tenant_id, datetime.now(UTC))).id,
        "scope": "Presence.Read.All",
    }
    created = await browser.post("/v1.0/oauth2PermissionGrants", json=body, headers=bearer(token))
    assert created.status_code == 201, created.text
    await portal_sign_in(browser, world, "adele", "/consents")
    desktop = section(await browser.get("/consents"), "Presence Desktop (demo)")
    assert re.search(rf"Presence.Read.All Admin consent for all users Admin \(Adele Vance\) {WHEN}", desktop), desktop


async def test_a_person_sees_and_revokes_only_their_own_consents(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Megan sees her consent, not Alex's nor any app's own permissions; revoking it makes her refresh token
    need consent again (65001), and leaves Alex's consent alone."""
    megan = await consent_and_tokens(browser, runtime, world, "megan")
    alex = await consent_and_tokens(browser, runtime, world, "alex")
    csrf = await portal_sign_in(browser, world, "megan", "/consents")
    page = await browser.get("/consents")
    text = shown(page)
    assert "<h1>My consents</h1>" in page.text
    assert "User consent (Megan Bowen)" in text
    for hidden in ("Alex Wilber", "Presence Daemon (demo)", "Presence.ReadWrite.All"):
        assert hidden not in text

    revoked = await browser.post(
        "/consents/grants/revoke", data={"csrf": csrf, "grant_id": await own_grant_id(runtime, world, "megan")}
    )
    assert (revoked.status_code, revoked.headers["location"]) == (303, "/consents?done=grant-revoked")
    after = shown(await browser.get(revoked.headers["location"]))
    assert "The consent is revoked." in after
    assert "You have not consented to any app." in after

    refused = await refresh(browser, world, megan["refresh_token"])
    body = refused.json()
    assert (refused.status_code, body["error"], body["error_codes"], body.get("suberror")) == (
        400,
        "invalid_grant",
        [65001],
        "consent_required",
    )
    assert (await refresh(browser, world, alex["refresh_token"])).status_code == 200


async def test_a_forged_revocation_of_someone_elses_grant_is_refused_and_changes_nothing(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Megan posting another user's grant, the organization's admin consent or an app's application permission
    gets a 404 or 403 with the reason, and every grant stays."""
    await consent_and_tokens(browser, runtime, world, "alex")
    everyone = await runtime.identity.consent_for_all(
        world.tenant_id, world.public, GRAPH, {"User.Read"}, datetime.now(UTC), granted_by=world.user_id("adele")
    )
    store = runtime.identity_store
    grants, assignments = await store.list_grants(world.tenant_id), await store.list_assignments(world.tenant_id)
    csrf = await portal_sign_in(browser, world, "megan", "/consents")
    for grant_id in (await own_grant_id(runtime, world, "alex"), everyone.id, "no-such-grant"):
        response = await browser.post("/consents/grants/revoke", data={"csrf": csrf, "grant_id": grant_id})
        assert response.status_code == 404
        assert page_error(response) == "That permission grant does not exist, or is not yours to revoke."
    response = await browser.post(
        "/consents/assignments/revoke", data={"csrf": csrf, "assignment_id": assignments[0].id}
    )
    assert response.status_code == 403
    assert page_error(response) == "Only an administrator can revoke an app's application permissions."
    assert await store.list_grants(world.tenant_id) == grants
    assert await store.list_assignments(world.tenant_id) == assignments


async def test_an_administrator_revokes_a_users_consent(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Revoke on a user's consent removes it: the row goes and the user's next refresh needs consent again."""
    megan = await consent_and_tokens(browser, runtime, world, "megan")
    grant_id = await own_grant_id(runtime, world, "megan")
    csrf = await portal_sign_in(browser, world, "adele", "/consents")
    assert f'id="grant-{grant_id}"' in (await browser.get("/consents")).text
    revoked = await browser.post("/consents/grants/revoke", data={"csrf": csrf, "grant_id": grant_id})
    assert revoked.status_code == 303
    page = await browser.get(revoked.headers["location"])
    assert "The consent is revoked." in shown(page)
    assert f'id="grant-{grant_id}"' not in page.text
    assert (await refresh(browser, world, megan["refresh_token"])).status_code == 400


async def test_a_stale_form_revokes_nothing(browser: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """A revocation whose CSRF token does not match the browser's is refused and the grant stays."""
    await consent_and_tokens(browser, runtime, world, "megan")
    grant_id = await own_grant_id(runtime, world, "megan")
    await portal_sign_in(browser, world, "megan", "/consents")
    response = await browser.post("/consents/grants/revoke", data={"csrf": "forged", "grant_id": grant_id})
    assert response.status_code == 400
    assert "The form expired" in shown(response)
    assert await runtime.identity_store.get_grant(world.tenant_id, grant_id) is not None


async def test_signed_out_visitors_are_sent_to_sign_in(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Signed out, the page leads to sign-in and a revocation is refused without changing anything."""
    await consent_and_tokens(browser, runtime, world, "megan")
    grant_id = await own_grant_id(runtime, world, "megan")
    page = await browser.get("/consents")
    assert (page.status_code, page.headers["location"]) == (303, "/signin?next=%2Fconsents")
    response = await browser.post("/consents/grants/revoke", data={"csrf": "x", "grant_id": grant_id})
    assert response.status_code == 401
    assert await runtime.identity_store.get_grant(world.tenant_id, grant_id) is not None
