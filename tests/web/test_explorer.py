"""The permissions explorer: the list, one permission's page, its exports, and the OpenAPI text from the same source."""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from html import unescape
from typing import Any

import httpx
import pytest

from presenced.auth.allowances import allowances
from presenced.auth.operations import Operation, Target
from presenced.auth.permissions import (
    APP_PRESENCE_READ_ALL,
    APP_PRESENCE_READWRITE_ALL,
    CATALOG,
    PRESENCE_READ,
    PRESENCE_READ_ALL,
    PermissionKind,
    find,
)
from presenced.auth.policy import POLICY
from presenced.bootstrap import Runtime
from tests.oauth.identity_support import World, sign_in_as, upn
from tests.support import BASE_URL

VALUES = list(dict.fromkeys(p.value for p in CATALOG))


@pytest.fixture
def database_url() -> None:
    """The explorer stores nothing and reads only who is signed in: SQLite is enough."""
    return None


def text(page: httpx.Response) -> str:
    """The page's text, tags stripped and whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def element(page: httpx.Response, element_id: str) -> str:
    """The HTML of the element with this id, up to the end of the first element of the same tag name."""
    found = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', page.text, re.S)
    assert found, f"no #{element_id} on the page"
    return found.group(0)


def listed(page: httpx.Response) -> dict[str, tuple[str, bool]]:
    """value → (data-search text, hidden) of each item of the list."""
    items = re.findall(r'<li data-search="([^"]*)" data-value="([^"]*)"( hidden)?>', page.text)
    return {unescape(value): (unescape(search), bool(hidden)) for search, value, hidden in items}


async def exported(browser: httpx.AsyncClient, path: str) -> Any:
    response = await browser.get(path)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    return json.loads(response.content)


async def csv_rows(browser: httpx.AsyncClient, path: str) -> list[dict[str, str]]:
    response = await browser.get(path)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"), newline="")))


def method_lines(document: dict[str, Any], kind: str) -> dict[str, dict[str, bool]]:
    """'METHOD /path' → the limits of the methods one variant (delegated or application) allows."""
    return {f"{m['method']} {m['path']}": m[kind] for m in document["methods"] if m[kind] is not None}


# ---- the list ----


async def test_the_list_holds_every_value_of_the_catalog_once_with_a_link_to_its_page(
    browser: httpx.AsyncClient,
) -> None:
    """/permissions lists each permission value of the catalog once and links to its page."""
    page = await browser.get("/permissions")
    assert page.status_code == 200
    assert list(listed(page)) == VALUES
    for value in VALUES:
        assert f'href="/permissions/{value}"' in page.text
    assert "19 of 19 shown" in text(page)


async def test_the_search_box_is_labelled_and_filters_the_list(browser: httpx.AsyncClient) -> None:
    """A labelled search box filters the list's items as you type (portal.js), and the count says how many match."""
    page = await browser.get("/permissions")
    assert re.search(r'<label for="permission-search">Search permissions</label>', page.text)
    search_box = re.search(r'<input id="permission-search"[^>]*>', page.text)
    assert search_box
    assert 'type="search"' in search_box.group(0)
    assert 'data-filter="#permissions"' in search_box.group(0)
    assert 'data-filter-count="#permissions"' in page.text
    assert 'data-filter-empty="#permissions"' in page.text
    assert "Press Escape to clear the search" in text(page)


async def test_searching_presence_shows_the_presence_permissions_and_hides_the_others(
    browser: httpx.AsyncClient,
) -> None:
    """The words the script matches name Presence.* but not User.Read; a search sent without script hides the same."""
    items = listed(await browser.get("/permissions"))
    presence = [v for v in VALUES if v.startswith("Presence.")]
    assert presence == ["Presence.Read", "Presence.Read.All", "Presence.ReadWrite", "Presence.ReadWrite.All"]
    for value, (search, hidden) in items.items():
        assert ("presence" in search.lower()) == (value in presence), value
        assert not hidden

    page = await browser.get("/permissions", params={"q": "presence"})
    shown = [value for value, (_, hidden) in listed(page).items() if not hidden]
    assert shown == presence
    assert "4 of 19 shown" in text(page)


async def test_the_list_links_to_the_exports_of_the_whole_catalog(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/permissions")
    assert re.search(r'<a href="/permissions.json"[^>]*>Export JSON</a>', page.text)
    assert re.search(r'<a href="/permissions.csv"[^>]*>Export CSV</a>', page.text)


# ---- one permission ----


async def test_a_permission_page_shows_both_variants_with_their_ids_and_words(browser: httpx.AsyncClient) -> None:
    """Presence.Read.All: the delegated and the application permission, each with its id, names and descriptions."""
    page = await browser.get("/permissions/Presence.Read.All")
    assert page.status_code == 200
    delegated, application = element(page, "delegated"), element(page, "application")
    assert PRESENCE_READ_ALL.id in delegated
    assert unescape(delegated).count(PRESENCE_READ_ALL.admin_description) == 1
    assert PRESENCE_READ_ALL.user_description
    assert PRESENCE_READ_ALL.user_description in unescape(delegated)
    assert APP_PRESENCE_READ_ALL.id in application
    assert APP_PRESENCE_READ_ALL.admin_description in unescape(application)
    assert "Admin consent required</dt><dd>No" in delegated
    assert "Users can consent</dt><dd>Yes" in delegated
    assert "Admin consent required</dt><dd>Yes" in application
    assert "Users can consent</dt><dd>No" in application


async def test_a_permission_with_one_variant_says_the_other_does_not_exist(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/permissions/Presence.Read")
    assert PRESENCE_READ.id in element(page, "delegated")
    assert PRESENCE_READ.user_display_name
    assert PRESENCE_READ.user_display_name in unescape(page.text)
    assert "Microsoft Graph has no application permission Presence.Read." in text(page)


async def test_presence_read_allows_reading_me_presence_in_both_versions_and_no_write(
    browser: httpx.AsyncClient,
) -> None:
    """Presence.Read's methods: GET /me/presence under v1.0 and beta, other users' presence own only, no writes."""
    page = await browser.get("/permissions/Presence.Read")
    methods = text(page)
    assert "GET /v1.0/me/presence" in methods
    assert "GET /beta/me/presence" in methods
    assert "setPresence" not in element(page, "methods")
    row = re.search(r'<tr data-operation="users.getPresence">.*?</tr>', page.text, re.S)
    assert row
    assert "Own presence only" in row.group(0)

    document = await exported(browser, "/permissions/Presence.Read.json")
    delegated = method_lines(document, "delegated")
    assert delegated["GET /v1.0/me/presence"] == {"ownUserOnly": False, "administratorsOnly": False}
    assert delegated["GET /beta/me/presence"] == {"ownUserOnly": False, "administratorsOnly": False}
    assert delegated["GET /v1.0/users/{id}/presence"]["ownUserOnly"] is True
    assert not [line for line in delegated if "setPresence" in line or line.startswith("POST")]
    assert method_lines(document, "application") == {}


async def test_presence_readwrite_all_lets_an_application_set_other_users_presence(browser: httpx.AsyncClient) -> None:
    """The application permission Presence.ReadWrite.All allows setPresence on any user, never on /me."""
    document = await exported(browser, "/permissions/Presence.ReadWrite.All.json")
    assert document["delegated"] is None
    assert document["application"]["id"] == APP_PRESENCE_READWRITE_ALL.id
    application = method_lines(document, "application")
    for version in ("v1.0", "beta"):
        assert application[f"POST /{version}/users/{{id}}/presence/setPresence"] == {
            "ownUserOnly": False,
            "administratorsOnly": False,
        }
        assert f"POST /{version}/communications/presences/{{id}}/setPresence" in application
    assert not [line for line in application if " /v1.0/me/" in line or " /beta/me/" in line]
    assert not [line for line in application if "Location" in line]


async def test_the_properties_come_from_the_response_types_with_a_description_each(
    browser: httpx.AsyncClient,
) -> None:
    """Presence.Read exposes the presence resource's properties (and the history extension's),
    MailboxSettings.Read the mailbox settings'."""
    presence = await exported(browser, "/permissions/Presence.Read.json")
    assert [(p["resource"], p["name"]) for p in presence["properties"]] == [
        ("presence", name)
        for name in (
            "id",
            "availability",
            "activity",
            "outOfOfficeSettings",
            "statusMessage",
            "sequenceNumber",
            "workLocation",
        )
    ] + [
        ("presenceHistoryEntry", name) for name in ("availability", "activity", "sequenceNumber", "dateTime", "cause")
    ] + [("lastSeen", "id"), ("lastSeen", "lastSeenDateTime")]
    mailbox = await exported(browser, "/permissions/MailboxSettings.Read.json")
    assert [p["name"] for p in mailbox["properties"]] == ["timeZone", "automaticRepliesSetting"]
    page = await browser.get("/permissions/MailboxSettings.Read")
    assert "automaticRepliesSetting" in element(page, "properties")


async def test_every_property_shown_has_a_description(browser: httpx.AsyncClient) -> None:
    """A property added to a response type without a description here shows up as a failure, not a blank."""
    for entry in await exported(browser, "/permissions.json"):
        for prop in entry["properties"]:
            assert prop["description"], f"{entry['value']}: {prop['resource']}.{prop['name']} has no description"


async def test_every_method_shown_is_one_the_policy_allows_with_that_permission(browser: httpx.AsyncClient) -> None:
    """What the explorer says a permission allows is what the policy lets through, kind by kind."""
    for entry in await exported(browser, "/permissions.json"):
        for kind, label in ((PermissionKind.DELEGATED, "delegated"), (PermissionKind.APPLICATION, "application")):
            permission = find(entry["value"], kind)
            for method in entry["methods"]:
                if method[label] is None:
                    continue
                assert permission is not None
                rules = [POLICY[a] for a in permission.allows if a in POLICY]
                allowed_by = [r.delegated if kind is PermissionKind.DELEGATED else r.application for r in rules]
                assert any(permission.value in values for values in allowed_by), (entry["value"], method)


async def test_openid_scopes_allow_no_graph_method_and_say_what_they_are(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/permissions/openid")
    assert page.status_code == 200
    assert "is an OpenID Connect scope" in text(page)
    assert "no Graph method of this server asks for it" in text(page)
    document = await exported(browser, "/permissions/offline_access.json")
    assert document["methods"] == []
    assert document["properties"] == []


async def test_the_page_has_exports_a_copy_button_and_prints_without_its_controls(browser: httpx.AsyncClient) -> None:
    """Export JSON/CSV links and the Copy URL button (shown by portal.js) sit in a no-print block; no inline script."""
    page = await browser.get("/permissions/Presence.Read")
    controls = re.search(r'<div class="no-print perm-actions">.*?</div>', page.text, re.S)
    assert controls
    assert '<a class="button" href="/permissions/Presence.Read.json" download>Export JSON</a>' in controls.group(0)
    assert '<a class="button" href="/permissions/Presence.Read.csv" download>Export CSV</a>' in controls.group(0)
    assert '<button type="button" data-copy-url hidden>Copy URL</button>' in controls.group(0)
    assert re.search(r'<span id="copy-status"[^>]*aria-live="polite"', controls.group(0))
    assert "style=" not in page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)", page.text)


# ---- exports ----


async def test_the_json_export_of_one_permission_holds_both_variants(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/permissions/Presence.Read.All.json")
    assert response.headers["content-disposition"] == 'attachment; filename="Presence.Read.All.json"'
    document = json.loads(response.content)
    assert document["value"] == "Presence.Read.All"
    assert document["delegated"] == {
        "id": PRESENCE_READ_ALL.id,
        "value": "Presence.Read.All",
        "type": "Scope",
        "adminConsentDisplayName": PRESENCE_READ_ALL.admin_display_name,
        "adminConsentDescription": PRESENCE_READ_ALL.admin_description,
        "userConsentDisplayName": PRESENCE_READ_ALL.user_display_name,
        "userConsentDescription": PRESENCE_READ_ALL.user_description,
        "isAdminConsentRequired": False,
        "userConsentAllowed": True,
    }
    assert document["application"] == {
        "id": APP_PRESENCE_READ_ALL.id,
        "value": "Presence.Read.All",
        "type": "Role",
        "displayName": APP_PRESENCE_READ_ALL.admin_display_name,
        "description": APP_PRESENCE_READ_ALL.admin_description,
        "isAdminConsentRequired": True,
    }
    assert "POST /v1.0/communications/getPresencesByUserId" in method_lines(document, "application")


async def test_the_csv_export_of_one_permission_has_a_row_per_variant(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/permissions/Presence.Read.All.csv")
    assert response.headers["content-disposition"] == 'attachment; filename="Presence.Read.All.csv"'
    assert response.content.startswith(b"value,type,id,displayName,description,adminConsentRequired,")
    assert b"\r\n" in response.content
    rows = await csv_rows(browser, "/permissions/Presence.Read.All.csv")
    assert [(r["value"], r["type"], r["id"]) for r in rows] == [
        ("Presence.Read.All", "Delegated", PRESENCE_READ_ALL.id),
        ("Presence.Read.All", "Application", APP_PRESENCE_READ_ALL.id),
    ]
    delegated, application = rows
    assert delegated["description"] == PRESENCE_READ_ALL.admin_description
    assert delegated["userConsentDescription"] == PRESENCE_READ_ALL.user_description
    assert (delegated["adminConsentRequired"], delegated["userConsentAllowed"]) == ("false", "true")
    assert application["description"] == APP_PRESENCE_READ_ALL.admin_description
    assert (application["adminConsentRequired"], application["userConsentDisplayName"]) == ("true", "")


async def test_the_catalog_exports_hold_every_permission(browser: httpx.AsyncClient) -> None:
    """/permissions.json has one entry per value; /permissions.csv one row per permission, ids and descriptions."""
    document = await exported(browser, "/permissions.json")
    assert [entry["value"] for entry in document] == VALUES
    ids = {v["id"] for entry in document for v in (entry["delegated"], entry["application"]) if v is not None}
    assert ids == {p.id for p in CATALOG}

    rows = await csv_rows(browser, "/permissions.csv")
    assert [(r["value"], r["type"], r["id"], r["description"]) for r in rows] == [
        (p.value, p.kind.value.capitalize(), p.id, p.admin_description)
        for value in VALUES
        for p in CATALOG
        if p.value == value
    ]


# ---- addresses ----


async def test_a_value_in_another_case_redirects_to_its_own_spelling(browser: httpx.AsyncClient) -> None:
    for asked, canonical in (
        ("/permissions/presence.read", "/permissions/Presence.Read"),
        ("/permissions/PRESENCE.READWRITE.ALL", "/permissions/Presence.ReadWrite.All"),
        ("/permissions/presence.read.all.JSON", "/permissions/Presence.Read.All.json"),
        ("/permissions/mailboxsettings.read.csv", "/permissions/MailboxSettings.Read.csv"),
    ):
        response = await browser.get(asked)
        assert response.status_code in {301, 308}, asked
        assert response.headers["location"] == canonical


async def test_an_unknown_value_is_a_404_page_suggesting_close_matches(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/permissions/Presence.Reed")
    assert page.status_code == 404
    assert "Did you mean Presence.Read" in text(page)
    assert (await browser.get("/permissions/Nothing.Like.It")).status_code == 404
    assert (await browser.get("/permissions/Nothing.Like.It.json")).status_code == 404


# ---- code samples and steps ----


def samples_of(page: httpx.Response) -> dict[str, str]:
    """The code samples on a page: 'kind-language' → code."""
    found = re.findall(r'<pre id="sample-(\w+-\w+)" data-language="\w+"><code>(.*?)</code></pre>', page.text, re.S)
    return {name: unescape(code) for name, code in found}


async def test_samples_are_set_up_for_this_server_and_a_placeholder_tenant(
    browser: httpx.AsyncClient, runtime: Runtime
) -> None:
    """Signed out, the samples carry the server's base URL and a {tenant-id} to fill in; the Python ones parse."""
    base_url = runtime.settings.base_url
    page = await browser.get("/permissions/Presence.Read.All")
    samples = samples_of(page)
    assert sorted(samples) == [
        f"{kind}-{language}"
        for kind in ("application", "delegated")
        for language in ("csharp", "javascript", "powershell", "python")
    ]
    for name, code in samples.items():
        assert base_url in code, name
        assert "{tenant-id}" in code, name
        assert "getpresencesbyuserid" in code.lower().replace("_", ""), name
    assert "DeviceCodeCredential" in samples["delegated-python"]
    assert "InteractiveBrowserCredential" in samples["delegated-javascript"]
    assert "new InteractiveBrowserCredential(" in samples["delegated-csharp"]
    assert "oauth2/v2.0/devicecode" in samples["delegated-powershell"]
    assert '"https://graph.microsoft.com/Presence.Read.All"' in samples["delegated-python"]
    assert "ClientSecretCredential" in samples["application-python"]
    assert '"https://graph.microsoft.com/.default"' in samples["application-javascript"]
    assert 'grant_type    = "client_credentials"' in samples["application-powershell"]
    assert "allowedHosts: new[] { new Uri(baseUrl).Host }" in samples["application-csharp"]
    for name in ("delegated-python", "application-python"):
        ast.parse(samples[name])


async def test_samples_make_the_call_the_permission_enables(browser: httpx.AsyncClient) -> None:
    """Presence.Read reads /me/presence, Presence.ReadWrite sets one's own presence, the app one anyone's;
    User.ReadWrite.All creates a user."""
    read = samples_of(await browser.get("/permissions/Presence.Read"))
    assert "client.me.presence.get()" in read["delegated-python"]
    assert 'client.api("/me/presence").get()' in read["delegated-javascript"]
    readwrite = samples_of(await browser.get("/permissions/Presence.ReadWrite"))
    assert "client.me.presence.set_presence.post(" in readwrite["delegated-python"]
    assert 'Uri "$base/v1.0/me/presence/setPresence"' in readwrite["delegated-powershell"]
    everyone = samples_of(await browser.get("/permissions/Presence.ReadWrite.All"))
    assert "graph.Users[userId].Presence.SetPresence.PostAsync(" in everyone["application-csharp"]
    assert "client.users.by_user_id(USER_ID).presence.set_presence.post(" in everyone["application-python"]
    users = samples_of(await browser.get("/permissions/User.ReadWrite.All"))
    assert "await client.users.post(" in users["application-python"]
    assert 'client.api("/users").post(' in users["delegated-javascript"]
    for code in (*read.values(), *readwrite.values(), *everyone.values()):
        assert "{tenant-id}" in code


async def test_signed_in_the_samples_carry_the_persons_tenant(browser: httpx.AsyncClient, world: World) -> None:
    """Signed in, the samples and the command line name the person's tenant instead of a placeholder."""
    target = "/permissions/Presence.Read"
    signed_in = await sign_in_as(
        browser, await browser.get(f"/signin?next={target}"), upn("adele"), world.password("adele")
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == target
    page = await browser.get(target)
    samples = samples_of(page)
    assert samples
    for code in samples.values():
        assert world.tenant_id in code
        assert "{tenant-id}" not in code
    assert f"--tenant {world.tenant_id}" in element(page, "cli-delegated")


async def test_the_steps_name_the_commands_that_exist(browser: httpx.AsyncClient) -> None:
    """The command-line steps use `presenced app create --permission` (':application' for an app permission)."""
    page = await browser.get("/permissions/Presence.Read.All")
    delegated, application = unescape(element(page, "cli-delegated")), unescape(element(page, "cli-application"))
    assert (
        'presenced app create "My app" --public-client --redirect-uri public=http://localhost '
        "--permission Presence.Read.All</code>" in delegated
    )
    assert (
        'presenced app create "My daemon" --secret --permission Presence.Read.All:application --grant-admin-consent'
        in application
    )
    assert "presenced app grant-admin-consent {app-id}" in text(page)
    assert "API permissions \u203a Add a permission \u203a Microsoft Graph" in text(page)
    assert "Grant admin consent" in text(page)


def code_of(page: httpx.Response, element_id: str) -> str:
    """The text of a <pre id=...><code> block."""
    return unescape(re.sub(r"<[^>]+>", "", element(page, element_id)))


async def test_the_steps_show_the_portal_the_command_line_and_the_api(browser: httpx.AsyncClient) -> None:
    """Beside the portal's steps: the commands for an app that exists, and the directory API's requests."""
    page = await browser.get("/permissions/Presence.Read.All")
    delegated, application = (
        code_of(page, "cli-add-delegated"),
        code_of(page, "cli-add-application"),
    )
    assert delegated.splitlines() == [
        "presenced app add-permission {app-id} Presence.Read.All --type delegated",
        "presenced app permissions {app-id}",
    ]
    assert application.splitlines() == [
        "presenced app add-permission {app-id} Presence.Read.All --type application",
        "presenced app grant-admin-consent {app-id}",
        "presenced app permissions {app-id}",
    ]
    api_delegated, api_application = (
        code_of(page, "api-delegated"),
        code_of(page, "api-application"),
    )
    assert api_delegated.startswith(f"PATCH {BASE_URL}/v1.0/applications/{{object-id}}")
    assert '"id": "9c7a330d-35b3-4aa1-963d-cb2b9f927841", "type": "Scope"' in api_delegated
    assert f"POST {BASE_URL}/v1.0/oauth2PermissionGrants" in api_delegated
    assert '"id": "a70e0c2d-e793-494c-94c4-118fa0a67f42", "type": "Role"' in api_application
    assert '"appRoleId": "a70e0c2d-e793-494c-94c4-118fa0a67f42"' in api_application
    shown = text(page)
    assert shown.index("In the portal") < shown.index("With the command line") < shown.index("With the directory API")


async def test_samples_are_grouped_by_language_in_collapsible_sections(browser: httpx.AsyncClient) -> None:
    """Each language is a <details> section (closed, opened without script) holding that language's samples of
    both variants; every sample is on the page."""
    page = await browser.get("/permissions/Presence.Read.All")
    sections = re.findall(r'<details class="samples" id="samples-(\w+)">(.*?)</details>', page.text, re.S)
    assert [language for language, _ in sections] == ["csharp", "javascript", "powershell", "python"]
    for language, body in sections:
        assert re.search(rf'<summary><h3 id="samples-{language}-heading">[^<]+</h3></summary>', body)
        assert re.findall(r'<pre id="sample-(\w+)-(\w+)"', body) == [("delegated", language), ("application", language)]
    assert len(samples_of(page)) == 8


# ---- the OpenAPI document ----


async def test_the_openapi_document_words_permissions_from_the_catalog(browser: httpx.AsyncClient) -> None:
    document = (await browser.get("/openapi.json")).json()

    def described(path: str, method: str) -> str:
        description: str = document["paths"][path][method]["description"]
        return description

    assert described("/v1.0/me/presence", "get") == (
        "Permissions: Delegated: Presence.Read, Presence.Read.All, Presence.ReadWrite; "
        "Application: none (/me is the signed-in user: it takes a delegated token)."
    )
    assert described("/beta/users/{id}/presence", "get") == (
        "Permissions: Delegated: Presence.Read (signed-in user only), Presence.Read.All, "
        "Presence.ReadWrite (signed-in user only); Application: Presence.Read.All, Presence.ReadWrite.All."
    )
    assert described("/v1.0/communications/getPresencesByUserId", "post") == (
        "Permissions: Delegated: Presence.Read.All; Application: Presence.Read.All, Presence.ReadWrite.All."
    )
    assert described("/v1.0/users/{id}/presence/setPresence", "post") == (
        "Permissions: Delegated: Presence.ReadWrite (signed-in user only); Application: Presence.ReadWrite.All."
    )
    assert described("/v1.0/users/{id}/presence/setManualLocation", "post") == (
        "Permissions: Delegated: Presence.ReadWrite (signed-in user only); Application: none."
    )
    assert described("/v1.0/users", "get").startswith(
        "Permissions: Delegated: User.ReadBasic.All, User.Read.All, User.ReadWrite.All; "
        "Application: User.Read.All, User.ReadWrite.All."
    )
    assert described("/v1.0/users/{id}/photo/$value", "put") == (
        "Permissions: Delegated: User.ReadWrite (signed-in user only), User.ReadWrite.All (administrators); "
        "Application: User.ReadWrite.All."
    )
    assert described("/v1.0/subscriptions", "post").startswith(
        "Permissions: Delegated: Presence.Read.All; Application: Presence.Read.All. With application permissions"
    )


def test_allowances_are_the_catalogs_permissions_for_an_access() -> None:
    """Reading someone else's presence: Presence.Read.All (both kinds) and Presence.ReadWrite.All, none own-only."""
    found = allowances(((Operation.READ_PRESENCE, Target.OTHER),))
    assert [(a.permission.value, a.permission.kind.value, a.own_only) for a in found] == [
        ("Presence.Read.All", "delegated", False),
        ("Presence.Read.All", "application", False),
        ("Presence.ReadWrite.All", "application", False),
    ]
    assert allowances(((Operation.READ_PRESENCE, Target.OWN),), delegated_only=True)[0].permission is PRESENCE_READ
