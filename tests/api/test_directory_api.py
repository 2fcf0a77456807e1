"""The Graph management API (applications, service principals, consent, users), in process, on both stores."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from presenced.auth.permissions import GRAPH_APP_ID
from presenced.bootstrap import Runtime
from presenced.oauth.tokens import mint_access_token
from presenced.services.demo import DemoTenant, demo_user_id
from tests.support import APP_ID, BASE_URL, Tokens, bearer

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ADELE = demo_user_id("adele")
PRESENCE_READ_ALL_ROLE = "a70e0c2d-e793-494c-94c4-118fa0a67f42"
ADMIN_ROLES = (
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "User.ReadWrite.All",
)
SCOPE = {
    "id": "6f1c8f1e-0d59-4c1f-9a2e-1d1f0a9e6b01",
    "value": "Widgets.Read",
    "type": "User",
    "adminConsentDisplayName": "Read widgets",
    "adminConsentDescription": "Allows the app to read widgets.",
    "userConsentDisplayName": "Read your widgets",
    "userConsentDescription": "Allows the app to read your widgets.",
    "isEnabled": True,
}


@pytest.fixture
async def tenant(runtime: Runtime, demo: DemoTenant) -> str:
    """The demo tenant, with Microsoft Graph's service principal."""
    await runtime.identity.graph_principal(demo.tenant.id, datetime.now(UTC))
    return demo.tenant.id


@pytest.fixture
def admin(tokens: Tokens, tenant: str) -> dict[str, str]:
    """Headers of an app-only token holding every directory permission."""
    return bearer(tokens.app(*ADMIN_ROLES))


def delegated(runtime: Runtime, tenant_id: str, *scopes: str, is_admin: bool) -> dict[str, str]:
    token = mint_access_token(
        runtime.keys,
        BASE_URL,
        tenant_id,
        app_id=APP_ID,
        now=datetime.now(UTC),
        user_id=ADELE,
        scopes=scopes,
        directory_admin=is_admin,
    )
    return bearer(token)


async def create_app(client: httpx.AsyncClient, headers: dict[str, str], **properties: Any) -> dict[str, Any]:
    response = await client.post("/v1.0/applications", json={"displayName": "Widgets", **properties}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def sp_of(client: httpx.AsyncClient, headers: dict[str, str], app_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1.0/servicePrincipals(appId='{app_id}')", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def client_token(client: httpx.AsyncClient, tenant_id: str, app_id: str, secret: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": app_id,
        "client_secret": secret,
        "scope": "https://graph.microsoft.com/.default",
    }
    return await client.post(f"/{tenant_id}/oauth2/v2.0/token", data=form)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


async def app_count(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return len((await client.get("/v1.0/applications", headers=headers)).json()["value"])


# ---- applications ----


@pytest.mark.parametrize("version", ["v1.0", "beta"])
async def test_creating_an_application_returns_it_with_server_chosen_ids(
    client: httpx.AsyncClient, admin: dict[str, str], version: str
) -> None:
    """POST /applications answers 201 with the registration, its object id and appId chosen by the server."""
    body = {
        "displayName": "Widgets",
        "web": {"redirectUris": ["https://widgets.example/cb"]},
        "requiredResourceAccess": [
            {"resourceAppId": GRAPH_APP_ID, "resourceAccess": [{"id": PRESENCE_READ_ALL_ROLE, "type": "Role"}]}
        ],
        "identifierUris": ["api://widgets"],
        "api": {"oauth2PermissionScopes": [SCOPE]},
    }
    response = await client.post(f"/{version}/applications", json=body, headers=admin)
    assert response.status_code == 201, response.text
    app = response.json()
    assert app["@odata.context"] == f"{BASE_URL}/{version}/$metadata#applications/$entity"
    assert GUID.match(app["id"])
    assert GUID.match(app["appId"])
    assert app["id"] != app["appId"]
    assert (app["displayName"], app["signInAudience"]) == ("Widgets", "AzureADMyOrg")
    assert app["web"] == {"redirectUris": ["https://widgets.example/cb"]}
    assert app["spa"] == app["publicClient"] == {"redirectUris": []}
    assert app["requiredResourceAccess"] == body["requiredResourceAccess"]
    assert app["api"]["oauth2PermissionScopes"] == [SCOPE]
    assert app["identifierUris"] == ["api://widgets"]
    assert app["passwordCredentials"] == []


async def test_applications_are_listed_and_fetched_by_object_id(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """A created application appears in the tenant's list and at /applications/{id}."""
    app = await create_app(client, admin)
    listed = (await client.get("/v1.0/applications", headers=admin)).json()
    assert listed["@odata.context"] == f"{BASE_URL}/v1.0/$metadata#applications"
    assert [a["id"] for a in listed["value"]] == [app["id"]]
    fetched = (await client.get(f"/v1.0/applications/{app['id']}", headers=admin)).json()
    assert fetched == app


@pytest.mark.parametrize("path", ["/v1.0/applications", "/v1.0/users", "/v1.0/servicePrincipals"])
async def test_a_select_that_names_nothing_is_a_bad_request(
    client: httpx.AsyncClient, admin: dict[str, str], path: str
) -> None:
    """The directory's $select, too, must name a property: an empty one is a 400, not the whole entity."""
    response = await client.get(f"{path}?$select=%20,", headers=admin)
    assert response.status_code == 400
    assert "at least one property" in response.json()["error"]["message"]


async def test_a_nul_in_a_public_clients_redirect_uri_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """A redirect URI with a NUL is a 400 on create and on PATCH, and the app keeps its URIs."""
    body = {"displayName": "Nul", "publicClient": {"redirectUris": ["http://localhost\u0000/cb"]}}
    response = await client.post("/v1.0/applications", json=body, headers=admin)
    assert response.status_code == 400
    assert "control character" in response.json()["error"]["message"]
    app = await create_app(client, admin, publicClient={"redirectUris": ["http://localhost/cb"]})
    patch = {"publicClient": {"redirectUris": ["http://localhost/cb\u0000"]}}
    assert (await client.patch(f"/v1.0/applications/{app['id']}", json=patch, headers=admin)).status_code == 400
    fetched = (await client.get(f"/v1.0/applications/{app['id']}", headers=admin)).json()
    assert fetched["publicClient"]["redirectUris"] == ["http://localhost/cb"]


async def test_patch_changes_only_the_properties_given(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """PATCH /applications/{id} answers 204 and leaves the properties it does not name as they were."""
    app = await create_app(client, admin, spa={"redirectUris": ["https://spa.example/"]})
    patch = {"displayName": "Gadgets", "web": {"redirectUris": ["https://gadgets.example/cb"]}}
    response = await client.patch(f"/v1.0/applications/{app['id']}", json=patch, headers=admin)
    assert response.status_code == 204
    fetched = (await client.get(f"/v1.0/applications/{app['id']}", headers=admin)).json()
    assert fetched["displayName"] == "Gadgets"
    assert fetched["web"] == {"redirectUris": ["https://gadgets.example/cb"]}
    assert fetched["spa"] == {"redirectUris": ["https://spa.example/"]}
    assert fetched["appId"] == app["appId"]


async def test_deleting_an_application_removes_it_and_its_service_principal(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """DELETE answers 204; the application and its service principal are gone, and a second DELETE is a 404."""
    app = await create_app(client, admin)
    assert (await client.delete(f"/v1.0/applications/{app['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"/v1.0/applications/{app['id']}", headers=admin)).status_code == 404
    assert (await client.get(f"/v1.0/servicePrincipals(appId='{app['appId']}')", headers=admin)).status_code == 404
    assert (await client.delete(f"/v1.0/applications/{app['id']}", headers=admin)).status_code == 404


async def test_add_password_shows_the_secret_only_once(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """addPassword returns secretText; the application's passwordCredentials never show it."""
    app = await create_app(client, admin)
    end = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    response = await client.post(
        f"/v1.0/applications/{app['id']}/addPassword",
        json={"passwordCredential": {"displayName": "ci", "endDateTime": end}},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    credential = response.json()
    assert len(credential["secretText"]) >= 32
    assert credential["hint"] == credential["secretText"][:3]
    assert (credential["displayName"], credential["endDateTime"]) == ("ci", end)
    assert GUID.match(credential["keyId"])
    fetched = (await client.get(f"/v1.0/applications/{app['id']}", headers=admin)).json()
    listed = (await client.get("/v1.0/applications", headers=admin)).json()["value"][0]
    for shown in (fetched["passwordCredentials"], listed["passwordCredentials"]):
        assert [(c["keyId"], c["secretText"], c["hint"]) for c in shown] == [
            (credential["keyId"], None, credential["hint"])
        ]
    assert credential["secretText"] not in json.dumps([fetched, listed])


async def test_remove_password_deletes_the_secret(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """removePassword answers 204 and the credential disappears; removing it again is a 404."""
    app = await create_app(client, admin)
    added = (await client.post(f"/v1.0/applications/{app['id']}/addPassword", headers=admin)).json()
    path = f"/v1.0/applications/{app['id']}/removePassword"
    assert (await client.post(path, json={"keyId": added["keyId"]}, headers=admin)).status_code == 204
    fetched = (await client.get(f"/v1.0/applications/{app['id']}", headers=admin)).json()
    assert fetched["passwordCredentials"] == []
    assert (await client.post(path, json={"keyId": added["keyId"]}, headers=admin)).status_code == 404


async def test_a_created_secret_gets_tokens_at_the_token_endpoint(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str
) -> None:
    """The secret from addPassword is accepted by the client-credentials grant."""
    app = await create_app(client, admin)
    secret = (await client.post(f"/v1.0/applications/{app['id']}/addPassword", headers=admin)).json()["secretText"]
    response = await client_token(client, tenant, app["appId"], secret)
    assert response.status_code == 200, response.text
    claims = claims_of(response.json()["access_token"])
    assert (claims["appid"], claims["tid"]) == (app["appId"], tenant)
    assert "roles" not in claims  # no role granted: Entra leaves the claim out


async def test_an_app_role_assignment_puts_the_role_into_new_tokens(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str
) -> None:
    """After assigning Graph's Presence.Read.All role, a new token carries it and can read presence."""
    app = await create_app(client, admin)
    secret = (await client.post(f"/v1.0/applications/{app['id']}/addPassword", headers=admin)).json()["secretText"]
    sp, graph = await sp_of(client, admin, app["appId"]), await sp_of(client, admin, GRAPH_APP_ID)
    assignment = {"principalId": sp["id"], "resourceId": graph["id"], "appRoleId": PRESENCE_READ_ALL_ROLE}
    response = await client.post(
        f"/v1.0/servicePrincipals/{sp['id']}/appRoleAssignments", json=assignment, headers=admin
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["principalType"] == "ServicePrincipal"
    assert (created["principalDisplayName"], created["resourceDisplayName"]) == ("Widgets", "Microsoft Graph")
    token = (await client_token(client, tenant, app["appId"], secret)).json()["access_token"]
    assert claims_of(token)["roles"] == ["Presence.Read.All"]
    assert (await client.get(f"/v1.0/users/{ADELE}/presence", headers=bearer(token))).status_code == 200


async def test_app_role_assignments_are_listed_and_deleted(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """The assignments of a service principal are listed under it; DELETE removes one (204), then 404."""
    app = await create_app(client, admin)
    sp, graph = await sp_of(client, admin, app["appId"]), await sp_of(client, admin, GRAPH_APP_ID)
    path = f"/v1.0/servicePrincipals/{sp['id']}/appRoleAssignments"
    body = {"principalId": sp["id"], "resourceId": graph["id"], "appRoleId": PRESENCE_READ_ALL_ROLE}
    created = (await client.post(path, json=body, headers=admin)).json()
    assert [a["id"] for a in (await client.get(path, headers=admin)).json()["value"]] == [created["id"]]
    assert (await client.post(path, json=body, headers=admin)).status_code == 400
    assert (await client.delete(f"{path}/{created['id']}", headers=admin)).status_code == 204
    assert (await client.get(path, headers=admin)).json()["value"] == []
    assert (await client.delete(f"{path}/{created['id']}", headers=admin)).status_code == 404


async def test_an_assignment_of_a_role_graph_lacks_is_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """appRoleId must be an application permission of the resource; a delegated scope's id is a 400."""
    app = await create_app(client, admin)
    sp, graph = await sp_of(client, admin, app["appId"]), await sp_of(client, admin, GRAPH_APP_ID)
    scope_id = next(s["id"] for s in graph["oauth2PermissionScopes"] if s["value"] == "Presence.Read")
    body = {"principalId": sp["id"], "resourceId": graph["id"], "appRoleId": scope_id}
    response = await client.post(f"/v1.0/servicePrincipals/{sp['id']}/appRoleAssignments", json=body, headers=admin)
    assert response.status_code == 400
    assert "appRoleId" in response.json()["error"]["message"]


# ---- service principals ----


async def test_graph_service_principal_lists_its_scopes_and_roles(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """Graph's service principal shows the catalog's delegated scopes and application roles in Graph's shapes."""
    graph = await sp_of(client, admin, GRAPH_APP_ID)
    assert (graph["displayName"], graph["servicePrincipalType"]) == ("Microsoft Graph", "Application")
    scope = next(s for s in graph["oauth2PermissionScopes"] if s["value"] == "Presence.Read")
    assert (scope["id"], scope["type"], scope["isEnabled"]) == ("76bc735e-aecd-4a1d-8b4c-2b915deabb79", "User", True)
    assert scope["userConsentDisplayName"] == "Read your presence information"
    role = next(r for r in graph["appRoles"] if r["id"] == PRESENCE_READ_ALL_ROLE)
    assert (role["value"], role["allowedMemberTypes"]) == ("Presence.Read.All", ["Application"])
    listed = (await client.get("/v1.0/servicePrincipals", headers=admin)).json()["value"]
    assert graph["id"] in [s["id"] for s in listed]


async def test_service_principals_can_be_filtered_by_app_id(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str
) -> None:
    """$filter=appId eq '…' narrows the list to that application's service principal."""
    app = await create_app(client, admin, api={"oauth2PermissionScopes": [SCOPE]})
    response = await client.get(f"/v1.0/servicePrincipals?$filter=appId eq '{app['appId']}'", headers=admin)
    [sp] = response.json()["value"]
    assert (sp["appId"], sp["appOwnerOrganizationId"]) == (app["appId"], tenant)
    assert [s["value"] for s in sp["oauth2PermissionScopes"]] == ["Widgets.Read"]


async def test_a_multi_tenant_app_gets_a_service_principal_in_another_tenant(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens, admin: dict[str, str], tenant: str
) -> None:
    """POST /servicePrincipals in a second tenant creates the app's principal once (201, then 409)."""
    app = await create_app(client, admin, signInAudience="AzureADMultipleOrgs")
    other = await runtime.identity.create_tenant("Fabrikam", datetime.now(UTC))
    headers = bearer(tokens.app(*ADMIN_ROLES, tenant_id=other.id))
    response = await client.post("/v1.0/servicePrincipals", json={"appId": app["appId"]}, headers=headers)
    assert response.status_code == 201, response.text
    assert (response.json()["appId"], response.json()["appOwnerOrganizationId"]) == (app["appId"], tenant)
    again = await client.post("/v1.0/servicePrincipals", json={"appId": app["appId"]}, headers=headers)
    assert again.status_code == 409


async def test_a_single_tenant_app_gets_no_service_principal_elsewhere(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens, admin: dict[str, str]
) -> None:
    """An AzureADMyOrg application cannot be instantiated in another tenant (400 naming appId)."""
    app = await create_app(client, admin)
    other = await runtime.identity.create_tenant("Fabrikam", datetime.now(UTC))
    headers = bearer(tokens.app(*ADMIN_ROLES, tenant_id=other.id))
    response = await client.post("/v1.0/servicePrincipals", json={"appId": app["appId"]}, headers=headers)
    assert response.status_code == 400
    assert "appId" in response.json()["error"]["message"]


async def test_deleting_a_service_principal_removes_it(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """DELETE /servicePrincipals/{id} answers 204, and the principal is then a 404."""
    app = await create_app(client, admin)
    sp = await sp_of(client, admin, app["appId"])
    assert (await client.delete(f"/v1.0/servicePrincipals/{sp['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"/v1.0/servicePrincipals/{sp['id']}", headers=admin)).status_code == 404


# ---- oauth2PermissionGrants ----


async def test_permission_grants_are_created_listed_changed_and_deleted(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """A grant is created (201), listed by clientId, narrowed by PATCH (204) and deleted (204)."""
    app = await create_app(client, admin)
    sp, graph = await sp_of(client, admin, app["appId"]), await sp_of(client, admin, GRAPH_APP_ID)
    body = {
        "clientId": sp["id"],
        "consentType": "AllPrincipals",
        "resourceId": graph["id"],
        "scope": "Presence.Read User.Read",
    }
    response = await client.post("/v1.0/oauth2PermissionGrants", json=body, headers=admin)
    assert response.status_code == 201, response.text
    grant = response.json()
    assert (grant["principalId"], sorted(grant["scope"].split())) == (None, ["Presence.Read", "User.Read"])
    listed = await client.get(f"/v1.0/oauth2PermissionGrants?$filter=clientId eq '{sp['id']}'", headers=admin)
    assert [g["id"] for g in listed.json()["value"]] == [grant["id"]]
    path = f"/v1.0/oauth2PermissionGrants/{grant['id']}"
    assert (await client.patch(path, json={"scope": "User.Read"}, headers=admin)).status_code == 204
    assert (await client.get(path, headers=admin)).json()["scope"] == "User.Read"
    assert (await client.post("/v1.0/oauth2PermissionGrants", json=body, headers=admin)).status_code == 409
    assert (await client.delete(path, headers=admin)).status_code == 204
    assert (await client.get(path, headers=admin)).status_code == 404
    assert (await client.get("/v1.0/oauth2PermissionGrants", headers=admin)).json()["value"] == []


async def test_a_principal_grant_needs_an_existing_user(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """consentType Principal takes a principalId of the tenant's users; without one it is a 400."""
    app = await create_app(client, admin)
    sp, graph = await sp_of(client, admin, app["appId"]), await sp_of(client, admin, GRAPH_APP_ID)
    body = {"clientId": sp["id"], "consentType": "Principal", "resourceId": graph["id"], "scope": "Presence.Read"}
    missing = await client.post("/v1.0/oauth2PermissionGrants", json=body, headers=admin)
    assert missing.status_code == 400
    assert "principalId" in missing.json()["error"]["message"]
    created = await client.post("/v1.0/oauth2PermissionGrants", json={**body, "principalId": ADELE}, headers=admin)
    assert created.status_code == 201
    assert created.json()["principalId"] == ADELE


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"consentType": "Everyone"}, "consentType"),
        ({"scope": "Presence.Read Nonsense.All"}, "scope"),
        ({"scope": "Presence.Read.All", "resourceId": "0b7a1a43-5a9e-4a4d-8f40-3f7e6b2d9c13"}, "resourceId"),
        ({"clientId": "not-a-guid"}, "clientId"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_bad_grants_are_refused_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], change: dict[str, Any], field: str
) -> None:
    """A grant with a bad property is a 400 naming it, and nothing is granted."""
    app = await create_app(client, admin)
    sp, graph = await sp_of(client, admin, app["appId"]), await sp_of(client, admin, GRAPH_APP_ID)
    body = {"clientId": sp["id"], "consentType": "AllPrincipals", "resourceId": graph["id"], "scope": "Presence.Read"}
    response = await client.post("/v1.0/oauth2PermissionGrants", json={**body, **change}, headers=admin)
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]
    assert (await client.get("/v1.0/oauth2PermissionGrants", headers=admin)).json()["value"] == []


# ---- users ----


async def test_users_are_created_listed_fetched_and_deleted(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """POST /users (201), then the user is listed, found by id and UPN, and deleted (204, then 404)."""
    body = {
        "accountEnabled": True,
        "displayName": "Nina Newhire",
        "userPrincipalName": "nina@contoso.example",
        "mailNickname": "nina",
        "passwordProfile": {"password": "correct horse battery", "forceChangePasswordNextSignIn": False},
    }
    response = await client.post("/v1.0/users", json=body, headers=admin)
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["@odata.context"] == f"{BASE_URL}/v1.0/$metadata#users/$entity"
    assert GUID.match(user["id"])
    assert user["displayName"] == "Nina Newhire"
    listed = (await client.get("/v1.0/users", headers=admin)).json()["value"]
    assert user["id"] in [u["id"] for u in listed]
    assert ADELE in [u["id"] for u in listed]
    for ref in (user["id"], "NINA@contoso.example"):
        assert (await client.get(f"/v1.0/users/{ref}", headers=admin)).json()["id"] == user["id"]
    assert (await client.post("/v1.0/users", json=body, headers=admin)).status_code == 409
    assert (await client.delete(f"/v1.0/users/{user['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"/v1.0/users/{user['id']}", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"passwordProfile": None}, "passwordProfile"),
        ({"passwordProfile": {"password": "short"}}, "password"),
        ({"userPrincipalName": "no-domain"}, "userPrincipalName"),
        ({"accountEnabled": "yes"}, "accountEnabled"),
        ({"nickname": "x"}, "nickname"),
    ],
)
async def test_bad_users_are_refused_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], change: dict[str, Any], field: str
) -> None:
    """A user with a bad property is a 400 naming it, and no user is created."""
    before = len((await client.get("/v1.0/users", headers=admin)).json()["value"])
    body = {
        "accountEnabled": True,
        "displayName": "Nina Newhire",
        "userPrincipalName": "nina@contoso.example",
        "passwordProfile": {"password": "correct horse battery"},
    }
    body = {k: v for k, v in {**body, **change}.items() if v is not None}
    response = await client.post("/v1.0/users", json=body, headers=admin)
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]
    assert len((await client.get("/v1.0/users", headers=admin)).json()["value"]) == before


async def test_me_returns_the_signed_in_user(client: httpx.AsyncClient, runtime: Runtime, tenant: str) -> None:
    """GET /me with User.Read returns the signed-in user."""
    response = await client.get("/v1.0/me", headers=delegated(runtime, tenant, "User.Read", is_admin=False))
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["userPrincipalName"]) == (ADELE, "adele@contoso.example")


# ---- permissions and bad input ----


async def test_an_app_token_without_roles_is_forbidden(client: httpx.AsyncClient, tokens: Tokens, tenant: str) -> None:
    """An app-only token without directory roles gets 403 on reads and writes."""
    headers = bearer(tokens.app())
    assert (await client.get("/v1.0/applications", headers=headers)).status_code == 403
    response = await client.post("/v1.0/applications", json={"displayName": "x"}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Forbidden"
    assert (await client.get("/v1.0/users", headers=headers)).status_code == 403


async def test_a_delegated_caller_must_be_an_administrator(
    client: httpx.AsyncClient, runtime: Runtime, tenant: str, admin: dict[str, str]
) -> None:
    """Application.ReadWrite.All from a non-administrator is a 403; from an administrator it creates the app."""
    plain = delegated(runtime, tenant, "Application.ReadWrite.All", is_admin=False)
    refused = await client.post("/v1.0/applications", json={"displayName": "x"}, headers=plain)
    assert refused.status_code == 403
    assert await app_count(client, admin) == 0
    boss = delegated(runtime, tenant, "Application.ReadWrite.All", is_admin=True)
    assert (await client.post("/v1.0/applications", json={"displayName": "x"}, headers=boss)).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "displayName"),
        ({"displayName": 5}, "displayName"),
        ({"displayName": "x", "colour": "red"}, "colour"),
        ({"displayName": "x", "signInAudience": "Everyone"}, "signInAudience"),
        ({"displayName": "x", "web": {"redirectUris": "https://a.example"}}, "redirectUris"),
        (
            {"displayName": "x", "requiredResourceAccess": [{"resourceAppId": "nope", "resourceAccess": []}]},
            "resourceAppId",
        ),
        (
            {
                "displayName": "x",
                "requiredResourceAccess": [
                    {
                        "resourceAppId": GRAPH_APP_ID,
                        "resourceAccess": [{"id": "0b7a1a43-5a9e-4a4d-8f40-3f7e6b2d9c14", "type": "Role"}],
                    }
                ],
            },
            "requiredResourceAccess",
        ),
        ({"displayName": "x", "api": {"oauth2PermissionScopes": [{**SCOPE, "value": "a b"}]}}, "value"),
        ({"displayName": "x", "api": {"oauth2PermissionScopes": [{**SCOPE, "type": "Everyone"}]}}, "type"),
        ({"displayName": "x", "identifierUris": ["not a uri"]}, "identifierUris"),
    ],
)
async def test_bad_applications_are_refused_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    """A bad application body is a 400 naming the field, and nothing is created."""
    response = await client.post("/v1.0/applications", json=body, headers=admin)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["message"]
    assert await app_count(client, admin) == 0


async def test_a_bad_patch_changes_nothing(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """A PATCH with one bad property is a 400 and leaves every property as it was."""
    app = await create_app(client, admin)
    patch = {"displayName": "Gadgets", "signInAudience": "Everyone"}
    response = await client.patch(f"/v1.0/applications/{app['id']}", json=patch, headers=admin)
    assert response.status_code == 400
    assert "signInAudience" in response.json()["error"]["message"]
    assert (await client.get(f"/v1.0/applications/{app['id']}", headers=admin)).json() == app


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1.0/applications/not-a-guid", 400),
        ("/v1.0/applications/0b7a1a43-5a9e-4a4d-8f40-3f7e6b2d9c11", 404),
        ("/v1.0/servicePrincipals/not-a-guid", 400),
        ("/v1.0/users/nobody", 404),
        ("/v1.0/users/0b7a1a43-5a9e-4a4d-8f40-3f7e6b2d9c12", 404),
        ("/v1.0/oauth2PermissionGrants/not-a-guid", 404),
        ("/v1.0/applications?$top=5", 400),
        ("/v1.0/servicePrincipals?$filter=startswith(displayName,'a')", 400),
    ],
)
async def test_unknown_ids_and_query_options_get_graph_errors(
    client: httpx.AsyncClient, admin: dict[str, str], path: str, status: int
) -> None:
    """Ids that are not GUIDs, unknown ids and unsupported query options get Graph's 400 or 404."""
    response = await client.get(path, headers=admin)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "innerError"}
