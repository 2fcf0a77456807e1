"""An administrator registers a daemon app in the portal, gives it a secret and an application permission, consents,
and the app's client-credentials tokens carry the role until the grant is revoked on Granted permissions."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import jwt
import pytest
from playwright.async_api import expect

from presenced.auth.permissions import APP_PRESENCE_READ_ALL
from tests.browser.browser_support import Browsers, Portal, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEST = "test_admin_registers_app_and_grants_application_permission"
TENANT_NAME = "Contoso (demo)"
ROLE = APP_PRESENCE_READ_ALL.value


async def app_token_claims(http: httpx.AsyncClient, portal: Portal, client_id: str, secret: str) -> dict[str, Any]:
    """A client-credentials token for the app, checked against the server's published keys; its claims."""
    tenant = portal.tenant_id
    response = await http.post(
        f"/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    published = await http.get(f"/{tenant}/discovery/v2.0/keys")
    assert published.status_code == 200, published.text
    signing_key = jwt.PyJWKSet.from_dict(published.json())[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],
        audience="https://graph.microsoft.com",
        issuer=f"{portal.url}/{tenant}/v2.0",
    )
    assert claims["appid"] == client_id
    assert "scp" not in claims, claims
    claims["token"] = token
    return claims


async def read_presence(http: httpx.AsyncClient, portal: Portal, token: str) -> httpx.Response:
    """Megan's presence, read with ``token``."""
    return await http.get(
        f"/v1.0/users/{portal.user_id('megan')}/presence", headers={"Authorization": f"Bearer {token}"}
    )


async def test_admin_registers_app_and_grants_application_permission(portal: Portal, browsers: Browsers) -> None:
    """Adele registers an app, adds a client secret (shown once) and application Presence.Read.All, grants admin
    consent; the app's token carries the role and reads presence. Revoked on Granted permissions, the next token has
    no roles and the read is refused. The registration is deleted afterwards."""
    name = f"Presence reader {secrets.token_hex(4)}"
    page = await browsers.sign_in(portal, "adele", "/me")

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="App registrations").click()
    await expect(page).to_have_url(f"{portal.url}/apps")
    await page.get_by_role("link", name="New registration").click()
    await expect(page.get_by_role("heading", name="Register an application", level=1)).to_be_visible()
    await page.get_by_label("Name", exact=True).fill(name)
    single_tenant = page.get_by_role("radio", name="Accounts in this organizational directory only (single tenant)")
    await expect(single_tenant).to_be_checked()
    await screenshot(page, f"{TEST}-1-new")
    await page.get_by_role("button", name="Register").click()

    await expect(page).to_have_url(re.compile(r"/apps/[0-9a-f-]{36}\?done=registered$"))
    await expect(page.locator("#app-name")).to_have_text(name)
    await expect(page.get_by_role("status")).to_have_text("The app is registered.")
    client_id = (await page.locator("#client-id").inner_text()).strip()
    assert page.url.startswith(f"{portal.url}/apps/{client_id}?"), (page.url, client_id)

    await page.get_by_label("Description").fill("daemon")
    await page.get_by_role("button", name="Add client secret").click()
    await expect(page.get_by_role("status")).to_have_text("Copy it now: you will not see it again.")
    secret_field = page.locator("#new-secret-value")
    await expect(secret_field).to_have_attribute("readonly", "")
    await expect(secret_field).to_have_value(re.compile(r"\S{16,}"))
    secret = await secret_field.input_value()
    await expect(page.locator("#client-secrets tbody tr")).to_have_count(1)
    await expect(page.locator("#client-secrets")).to_contain_text("daemon")
    await screenshot(page, f"{TEST}-2-secret")

    choice = page.get_by_label("Microsoft Graph permission")
    option = choice.locator("option").filter(has_text=re.compile(rf"^Application: {re.escape(ROLE)} \("))
    await expect(option).to_have_count(1)
    assert await option.get_attribute("value") == f"Role:{APP_PRESENCE_READ_ALL.id}"
    await choice.select_option(label=(await option.inner_text()).strip())
    await page.get_by_role("button", name="Add permission").click()
    await expect(page.get_by_role("status")).to_contain_text("The permission is added.")
    await expect(secret_field).to_have_count(0)
    rows = page.locator("#api-permissions tbody tr")
    await expect(rows).to_have_count(1)
    row = rows.filter(has_text=ROLE)
    await expect(row.get_by_role("cell").nth(0)).to_have_text("Application")
    await expect(row).to_contain_text(APP_PRESENCE_READ_ALL.admin_display_name)
    await expect(row).to_contain_text("Not granted")

    await page.get_by_role("button", name=f"Grant admin consent for {TENANT_NAME}").click()
    await expect(page.get_by_role("status")).to_have_text("Admin consent is granted for everything the app asks for.")
    await expect(row).to_contain_text(f"Granted for {TENANT_NAME}")
    await expect(row).not_to_contain_text("Not granted")
    await screenshot(page, f"{TEST}-3-granted")

    async with httpx.AsyncClient(base_url=portal.url, timeout=10, trust_env=False) as http:
        claims = await app_token_claims(http, portal, client_id, secret)
        assert claims["roles"] == [ROLE], claims
        read = await read_presence(http, portal, claims["token"])
        assert read.status_code == 200, read.text
        assert read.json()["id"] == portal.user_id("megan")

        # The secret was in the answer to the form that added it, and in no page since.
        await page.reload()
        await expect(page.locator("#app-name")).to_have_text(name)
        await expect(page.locator("#new-secret-value")).to_have_count(0)
        await expect(page.locator("#client-secrets tbody tr")).to_have_count(1)
        assert secret not in await page.content()

        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Granted permissions").click()
        await expect(page).to_have_url(f"{portal.url}/consents")
        section = page.get_by_role("region", name=name, exact=True)
        grant = section.get_by_role("row").filter(has_text=ROLE)
        await expect(grant).to_have_count(1)
        await expect(grant).to_contain_text("Admin (Adele Vance)")
        await expect(section).to_contain_text(client_id)
        await screenshot(page, f"{TEST}-4-consents")
        await grant.get_by_role("button", name=f"Revoke {ROLE} of {name}", exact=True).click()
        await expect(page.get_by_role("status")).to_have_text(
            "The application permission is revoked. The app's next token will not carry it."
        )
        await expect(grant).to_have_count(0)
        await screenshot(page, f"{TEST}-5-revoked")

        claims = await app_token_claims(http, portal, client_id, secret)
        assert "roles" not in claims, claims
        read = await read_presence(http, portal, claims["token"])
        assert read.status_code == 403, read.text

    # Leave the test process's server with the demo's registrations only.
    await page.goto(f"/apps/{client_id}")
    await page.get_by_label("Yes, delete this app registration and everything granted to it").check()
    await page.get_by_role("button", name="Delete app registration").click()
    await expect(page.get_by_role("status")).to_have_text("The app registration is deleted.")
    await expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
