"""The App registrations pages: an administrator registers and configures an app, and it gets tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

import httpx
import pytest

from presenced.auth.permissions import (
    APP_PRESENCE_READ_ALL,
    GRAPH_APP_ID,
    PRESENCE_READ,
    Permission,
)
from presenced.bootstrap import Runtime
from tests.oauth.identity_support import World, claims, post_token, register_app
from tests.support import BASE_URL
from tests.web.portal_support import page_error, portal_sign_in


@pytest.fixture
def database_url() -> None:
    """SQLite only: the pages call services that tests/api and tests/store run on both stores."""
    return


GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
CALLBACK = "https://dashboard.example/callback"


def shown(page: httpx.Response) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page.text, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def choice(permission: Permission) -> str:
    """The "Add a permission" option value of a Graph permission."""
    return f"{permission.kind.graph_type}:{permission.id}"


def new_secret(page: httpx.Response) -> str | None:
    found = re.search(r'id="new-secret-value"[^>]*value="([^"]+)"', page.text) or re.search(
        r'value="([^"]+)"[^>]*id="new-secret-value"', page.text
    )
    return None if found is None else unescape(found.group(1))


async def register(browser: httpx.AsyncClient, csrf: str, name: str = "Presence Dashboard", **fields: str) -> str:
    """Register an app through the New registration form; its application (client) id."""
    form = {"csrf": csrf, "name": name, "audience": "AzureADMyOrg", "platform": "web", "redirect_uri": "", **fields}
    response = await browser.post("/apps/new", data=form)
    assert response.status_code == 303, response.text[:500]
    found = re.fullmatch(r"/apps/([0-9a-f-]{36})\?done=registered", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


async def post(browser: httpx.AsyncClient, path: str, csrf: str, **fields: str) -> httpx.Response:
    return await browser.post(path, data={"csrf": csrf, **fields})


def client_credentials(app_id: str, secret: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret, "scope": GRAPH_DEFAULT}


async def test_an_admin_registers_an_app_that_gets_a_token_with_its_consented_permission(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Register, add Presence.Read.All (application) and a secret, grant admin consent: the app's token carries
    the role and reads presence; revoked on Granted permissions, the next token has no role and reads nothing."""
    csrf = await portal_sign_in(browser, world, "adele", "/apps")
    assert "New registration" in shown(await browser.get("/apps"))
    form = await browser.get("/apps/new")
    assert form.status_code == 200
    app_id = await register(browser, csrf, redirect_uri=CALLBACK)

    app_page = await browser.get(f"/apps/{app_id}?done=registered")
    text = shown(app_page)
    assert "The app is registered." in text
    assert app_id in text
    assert world.tenant_id in text
    assert (
        f"Authority {BASE_URL}/{world.tenant_id} Token endpoint {BASE_URL}/{world.tenant_id}/oauth2/v2.0/token" in text
    )
    assert CALLBACK in text

    added = await post(browser, f"/apps/{app_id}/permissions", csrf, permission=choice(APP_PRESENCE_READ_ALL))
    assert added.status_code == 303
    text = shown(await browser.get(added.headers["location"]))
    assert "Presence.Read.All (Microsoft Graph) Application Read presence information for all users Yes" in text
    assert "Not granted" in text

    created = await post(browser, f"/apps/{app_id}/secrets", csrf, description="dashboard", expires="90")
    assert created.status_code == 200
    assert "Copy it now: you will not see it again." in shown(created)
    secret = new_secret(created)
    assert secret is not None

    granted = await post(browser, f"/apps/{app_id}/consent", csrf)
    assert granted.status_code == 303
    assert "Granted for Contoso (demo)" in shown(await browser.get(granted.headers["location"]))

    token = await post_token(browser, world.tenant_id, client_credentials(app_id, secret))
    assert token.status_code == 200, token.text
    access_token = token.json()["access_token"]
    assert claims(access_token, runtime)["roles"] == ["Presence.Read.All"]
    presence = f"/v1.0/users/{world.user_id('megan')}/presence"
    read = await browser.get(presence, headers={"Authorization": f"Bearer {access_token}"})
    assert read.status_code == 200, read.text

    consents = await browser.get("/consents")
    assignment = re.search(r'id="assignment-([^"]+)"', consents.text.split("Presence Dashboard", 1)[1])
    assert assignment is not None
    revoked = await post(browser, "/consents/assignments/revoke", csrf, assignment_id=assignment.group(1))
    assert revoked.status_code == 303

    again = await post_token(browser, world.tenant_id, client_credentials(app_id, secret))
    assert again.status_code == 200, again.text
    token_after = again.json()["access_token"]
    assert "roles" not in claims(token_after, runtime)
    refused = await browser.get(presence, headers={"Authorization": f"Bearer {token_after}"})
    assert refused.status_code == 403
    assert "Not granted" in shown(await browser.get(f"/apps/{app_id}"))


async def test_a_new_secret_is_shown_once_and_listed_by_its_hint(browser: httpx.AsyncClient, world: World) -> None:
    """The page answering Add client secret shows the value; reloading the app's page shows only its hint."""
    csrf = await portal_sign_in(browser, world, "adele", "/apps")
    app_id = await register(browser, csrf)
    created = await post(browser, f"/apps/{app_id}/secrets", csrf, description="nightly job", expires="730")
    secret = new_secret(created)
    assert secret is not None
    assert created.headers["cache-control"] == "no-store"
    reloaded = await browser.get(f"/apps/{app_id}")
    assert secret not in reloaded.text
    assert new_secret(reloaded) is None
    assert "Copy it now" not in reloaded.text
    listed = shown(reloaded).split("Client secrets", 1)[1]
    assert re.search(rf"nightly job \d{{4}}-\d\d-\d\d \d\d:\d\d UTC {re.escape(secret[:3])}…", listed), listed[:300]


async def test_a_deleted_secret_no_longer_signs_the_app_in(browser: httpx.AsyncClient, world: World) -> None:
    """Delete on a client secret removes it: a token request with it is refused as a wrong secret."""
    csrf = await portal_sign_in(browser, world, "adele", "/apps")
    app_id = await register(browser, csrf)
    created = await post(browser, f"/apps/{app_id}/secrets", csrf, description="old", expires="90")
    secret = new_secret(created)
    assert secret is not None
    key = re.search(r'name="key_id" value="([^"]+)"', created.text)
    assert key is not None
    assert (await post_token(browser, world.tenant_id, client_credentials(app_id, secret))).status_code == 200
    removed = await post(browser, f"/apps/{app_id}/secrets/remove", csrf, key_id=key.group(1))
    assert removed.status_code == 303
    assert "No client secrets." in shown(await browser.get(removed.headers["location"]))
    refused = await post_token(browser, world.tenant_id, client_credentials(app_id, secret))
    assert refused.status_code == 401


async def test_redirect_uris_are_added_and_removed_per_platform(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Add URI puts a URI under its platform, Remove takes it away; one URI cannot serve two platforms."""
    csrf = await portal_sign_in(browser, world, "adele", "/apps")
    app_id = await register(browser, csrf, platform="spa", redirect_uri="http://localhost:3000")
    path = f"/apps/{app_id}/redirect-uris"
    assert (await post(browser, path, csrf, platform="publicClient", uri="myapp://auth")).status_code == 303
    twice = await post(browser, path, csrf, platform="web", uri="http://localhost:3000")
    assert twice.status_code == 400
    assert "one platform only" in page_error(twice)
    app = await runtime.identity_store.find_application(app_id)
    assert app is not None
    assert (app.spa_redirect_uris, app.public_client_redirect_uris, app.web_redirect_uris) == (
        ("http://localhost:3000",),
        ("myapp://auth",),
        (),
    )
    removed = await post(browser, f"{path}/remove", csrf, platform="spa", uri="http://localhost:3000")
    assert removed.status_code == 303
    assert "The redirect URI is removed." in shown(await browser.get(removed.headers["location"]))
    app = await runtime.identity_store.find_application(app_id)
    assert app is not None
    assert (app.spa_redirect_uris, app.public_client_redirect_uris) == ((), ("myapp://auth",))


async def test_refused_input_says_why_and_changes_nothing(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """An empty name, a script redirect URI, an unknown permission and a stale form are refused with a reason."""
    csrf = await portal_sign_in(browser, world, "adele", "/apps")
    before = await runtime.identity_store.list_applications(world.tenant_id)

    empty = await post(browser, "/apps/new", csrf, name="  ", audience="AzureADMyOrg", platform="web")
    assert (empty.status_code, page_error(empty)) == (400, "Enter a name for the app.")
    script = await post(
        browser,
        "/apps/new",
        csrf,
        name="Evil",
        audience="AzureADMyOrg",
        platform="web",
        redirect_uri="javascript:alert(1)",
    )
    assert script.status_code == 400
    assert "scheme 'javascript', which is not allowed" in page_error(script)
    assert 'value="Evil"' in script.text  # what was typed is kept
    assert await runtime.identity_store.list_applications(world.tenant_id) == before

    app_id = await register(browser, csrf)
    registered = await runtime.identity_store.find_application(app_id)
    bad_uri = await post(browser, f"/apps/{app_id}/redirect-uris", csrf, platform="spa", uri="javascript:alert(1)")
    assert bad_uri.status_code == 400
    assert "not allowed" in page_error(bad_uri)
    unknown = await post(
        browser, f"/apps/{app_id}/permissions", csrf, permission="Role:00000000-0000-0000-0000-000000000001"
    )
    assert (unknown.status_code, page_error(unknown)) == (400, "Choose one of the Microsoft Graph permissions listed.")
    # A delegated permission's id offered as an application permission is no permission at all.
    swapped = await post(browser, f"/apps/{app_id}/permissions", csrf, permission=f"Role:{PRESENCE_READ.id}")
    assert swapped.status_code == 400
    stale = await post(browser, f"/apps/{app_id}/permissions", "not-the-token", permission=choice(PRESENCE_READ))
    assert stale.status_code == 400
    assert "The form expired" in shown(stale)
    no_box = await post(browser, f"/apps/{app_id}/delete", csrf)
    assert (no_box.status_code, page_error(no_box)) == (
        400,
        "Tick the box to confirm that the app registration goes.",
    )
    bad_expiry = await post(browser, f"/apps/{app_id}/secrets", csrf, description="x", expires="9999")
    assert (bad_expiry.status_code, page_error(bad_expiry)) == (400, "Choose when the secret expires.")
    assert new_secret(bad_expiry) is None
    assert await runtime.identity_store.find_application(app_id) == registered


async def test_only_administrators_reach_app_registrations(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """A signed-in non-administrator gets 403 on every App registrations page and form, and nothing changes."""
    csrf = await portal_sign_in(browser, world, "megan", "/me")
    daemon = world.daemon.app_id
    for path in ("/apps", "/apps/new", f"/apps/{daemon}"):
        response = await browser.get(path)
        assert response.status_code == 403, path
        assert "Only an administrator of your organization can do this." in shown(response)
    assert "App registrations" not in shown(await browser.get("/me"))
    forged = (
        (f"/apps/{daemon}/consent/revoke", {}),
        (f"/apps/{daemon}/secrets", {"description": "mine", "expires": "90"}),
        (f"/apps/{daemon}/delete", {"confirm": "yes"}),
        ("/apps/new", {"name": "Sneaky", "audience": "AzureADMyOrg", "platform": "web"}),
    )
    before = await runtime.identity_store.list_applications(world.tenant_id)
    assignments = await runtime.identity_store.list_assignments(world.tenant_id)
    for path, fields in forged:
        response = await post(browser, path, csrf, **fields)
        assert response.status_code == 403, path
        assert new_secret(response) is None
    assert await runtime.identity_store.list_applications(world.tenant_id) == before
    assert await runtime.identity_store.list_assignments(world.tenant_id) == assignments


async def test_signing_in_leads_back_to_app_registrations(browser: httpx.AsyncClient, world: World) -> None:
    """Signed out, /apps sends the browser to sign in and back."""
    response = await browser.get("/apps")
    assert (response.status_code, response.headers["location"]) == (303, "/signin?next=%2Fapps")


async def test_an_app_of_another_tenant_or_none_is_not_found(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """An application id that is no registration of the administrator's organization is a 404."""
    other = await runtime.identity.create_tenant("Fabrikam", datetime.now(UTC))
    foreign = await register_app(runtime, other.id, "Fabrikam app")
    await portal_sign_in(browser, world, "adele", "/apps")
    for app_id in (foreign.app_id, "00000000-0000-0000-0000-000000000000", "x" * 100):
        response = await browser.get(f"/apps/{app_id}")
        assert response.status_code == 404, app_id
    assert "Fabrikam app" not in shown(await browser.get("/apps"))


async def test_delegated_admin_consent_is_listed_as_given_by_the_administrator(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Granting admin consent for a delegated permission records a grant for all users given by the administrator,
    and Revoke admin consent removes it."""
    csrf = await portal_sign_in(browser, world, "adele", "/apps")
    app_id = await register(browser, csrf, platform="publicClient", redirect_uri="http://localhost")
    assert (
        await post(browser, f"/apps/{app_id}/permissions", csrf, permission=choice(PRESENCE_READ))
    ).status_code == 303
    assert (await post(browser, f"/apps/{app_id}/consent", csrf)).status_code == 303
    [grant] = [
        g
        for g in await runtime.identity_store.list_grants(world.tenant_id)
        if g.consent_type == "AllPrincipals"
        and (sp := await runtime.identity_store.get_service_principal(world.tenant_id, g.client_id))
        and sp.app_id == app_id
    ]
    assert grant.scopes == ("Presence.Read",)
    assert grant.granted_by == world.user_id("adele")
    section = shown(await browser.get("/consents")).split("Presence Dashboard", 1)[1]
    assert "Microsoft Graph Presence.Read Admin consent for all users Admin (Adele Vance)" in section

    revoked = await post(browser, f"/apps/{app_id}/consent/revoke", csrf)
    assert revoked.status_code == 303
    text = shown(await browser.get(revoked.headers["location"]))
    assert "Admin consent is revoked" in text
    assert "Not granted" in text
    assert await runtime.identity_store.get_grant(world.tenant_id, grant.id) is None


async def test_deleting_an_app_needs_the_box_ticked_and_then_it_is_gone(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """Delete app registration with the box ticked removes the app: it leaves the list and can no longer sign in."""
    csrf = await portal_sign_in(browser, world, "adele", "/apps")
    app_id = await register(browser, csrf, name="Short-lived")
    secret = new_secret(await post(browser, f"/apps/{app_id}/secrets", csrf, description="x", expires="90"))
    assert secret is not None
    deleted = await post(browser, f"/apps/{app_id}/delete", csrf, confirm="yes")
    assert (deleted.status_code, deleted.headers["location"]) == (303, "/apps?done=deleted")
    listing = shown(await browser.get("/apps?done=deleted"))
    assert "The app registration is deleted." in listing
    assert "Short-lived" not in listing
    assert (await browser.get(f"/apps/{app_id}")).status_code == 404
    refused = await post_token(browser, world.tenant_id, client_credentials(app_id, secret))
    assert refused.status_code in {400, 401}
    assert await runtime.identity_store.find_application(app_id) is None


async def test_the_permission_choices_name_each_permission_and_its_kind(
    browser: httpx.AsyncClient, world: World
) -> None:
    """Add a permission offers Graph's delegated and application permissions, each named by value and words."""
    csrf = await portal_sign_in(browser, world, "adele", "/apps")
    app_id = await register(browser, csrf)
    page = await browser.get(f"/apps/{app_id}")
    options = dict(re.findall(r'<option value="((?:Scope|Role):[^"]+)">([^<]+)</option>', page.text))
    assert unescape(options[choice(APP_PRESENCE_READ_ALL)]) == (
        "Application: Presence.Read.All (Read presence information for all users)"
    )
    assert unescape(options[choice(PRESENCE_READ)]) == "Delegated: Presence.Read (Read user's presence information)"
    assert not any(v.startswith("Role:") and "openid" in w for v, w in options.items())
    assert all(GRAPH_APP_ID not in v for v in options)
