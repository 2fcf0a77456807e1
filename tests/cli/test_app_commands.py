"""The app and consent commands, run as a user runs them (a separate process) on SQLite and on PostgreSQL:
the portal's changes, through the same services, shown as a table or as JSON."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any, TypeVar

import pytest

from presenced.bootstrap import Runtime, build
from presenced.config import Settings
from presenced.services.demo import DEMO_DAEMON_APP_ID, DEMO_PUBLIC_APP_ID, DEMO_TENANT_ID, demo_user_id
from presenced.services.identity import GRAPH

T = TypeVar("T")


@dataclass(frozen=True)
class Store:
    """A data directory, and the PostgreSQL database the commands use instead of its SQLite one (if any)."""

    data_dir: Path
    database_url: str | None

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
        extra = ["--data-dir", str(self.data_dir)]
        if self.database_url is not None:
            extra += ["--database-url", self.database_url]
        return subprocess.run(
            [sys.executable, "-m", "presenced", *args, *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def with_runtime(self, work: Callable[[Runtime], Awaitable[T]]) -> T:
        """Run ``work`` in this process, on the same database as the commands."""

        async def go() -> T:
            settings = Settings(data_dir=self.data_dir)
            if self.database_url is not None:
                settings = replace(settings, database_url=self.database_url)
            runtime = await build(settings)
            try:
                return await work(runtime)
            finally:
                await runtime.close()

        return asyncio.run(go())


def demo_store(tmp_path: Path, key_folder: Path, database_url: str | None) -> Store:
    folder = tmp_path / "data"
    shutil.copytree(key_folder, folder / "keys")
    made = Store(folder, database_url)
    made.ok("demo")
    return made


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Store:
    """The demo tenant in a data directory: on SQLite, or on PostgreSQL (``--database-url``)."""
    url = request.getfixturevalue("clean_postgres_url") if request.param == "postgres" else None
    return demo_store(tmp_path, key_folder, url)


@pytest.fixture
def sqlite_store(tmp_path: Path, key_folder: Path) -> Store:
    return demo_store(tmp_path, key_folder, None)


def requested(body: dict[str, Any], value: str, kind: str) -> dict[str, Any] | None:
    return next((p for p in body["requested"] if (p["permission"], p["type"]) == (value, kind)), None)


def rows(text: str) -> list[list[str]]:
    """A table's lines split into cells (two or more spaces apart)."""
    return [re.split(r" {2,}", line.strip()) for line in text.strip().splitlines()]


async def app_page(runtime: Runtime, app_id: str) -> str:
    """The portal's page of the app, as Adele (an administrator) sees it, as text."""
    from tests.oauth.identity_support import client_for
    from tests.web.portal_support import csrf_of

    async with client_for(runtime) as browser:
        form = await browser.get("/signin?next=/apps")
        signed = await browser.post(
            "/signin?next=/apps",
            data={"csrf": csrf_of(form), "username": "adele@contoso.example", "password": "Adele-presence-demo"},
        )
        assert signed.status_code == 303, signed.text[:300]
        page = await browser.get(f"/apps/{app_id}")
        assert page.status_code == 200
        return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def test_a_permission_added_is_requested_until_admin_consent_grants_it(store: Store) -> None:
    """add-permission makes the demo desktop app ask for Presence.Read.All (delegated); `app permissions` and the
    portal's app page show it requested and not granted; grant-admin-consent grants it; revoke-admin-consent
    takes the grant away and keeps the request."""
    app = DEMO_PUBLIC_APP_ID
    removed = store.json("app", "remove-permission", app, "Presence.Read.All", "--type", "delegated")
    assert requested(removed, "Presence.Read.All", "delegated") is None

    added = store.json("app", "add-permission", app, "Presence.Read.All", "--type", "delegated")
    assert requested(added, "Presence.Read.All", "delegated") == {
        "permission": "Presence.Read.All",
        "type": "delegated",
        "resource": "Microsoft Graph",
        "id": "9c7a330d-35b3-4aa1-963d-cb2b9f927841",
        "adminConsentRequired": False,
        "grantedForTenant": False,
    }
    assert store.json("app", "permissions", app) == added
    assert added["granted"] == []
    table = rows(store.ok("app", "permissions", app))
    assert table[0] == ["Presence Desktop (demo) (264ee657-35db-5acc-9b50-fd83bf79dd0d) asks for:"]
    assert table[1] == ["PERMISSION", "TYPE", "API", "ADMIN CONSENT REQUIRED", "STATUS"]
    assert ["Presence.Read.All", "delegated", "Microsoft Graph", "no", "not granted"] in table
    page = store.with_runtime(lambda rt: app_page(rt, app))
    assert "Presence.Read.All (Microsoft Graph) Delegated Read presence information of all users" in page
    assert "Granted for" not in page

    assert "delegated: Presence.Read Presence.Read.All Presence.ReadWrite" in store.ok(
        "app", "grant-admin-consent", app
    )
    granted = store.json("app", "permissions", app)
    assert all(p["grantedForTenant"] for p in granted["requested"])
    assert {"permission": "Presence.Read.All", "type": "delegated", "resource": "Microsoft Graph",
            "consent": "admin", "users": []} in granted["granted"]  # fmt: skip
    assert ["Presence.Read.All", "delegated", "Microsoft Graph", "no", "granted for the tenant"] in rows(
        store.ok("app", "permissions", app)
    )
    page = store.with_runtime(lambda rt: app_page(rt, app))
    assert page.count("Granted for Contoso (demo)") == 3
    assert "Not granted" not in page

    revoked = store.json("app", "revoke-admin-consent", app)
    assert revoked["removed"] == 1
    assert revoked["granted"] == []
    assert not any(p["grantedForTenant"] for p in revoked["requested"])
    assert "Not granted" in store.with_runtime(lambda rt: app_page(rt, app))


def test_application_permissions_are_held_as_app_role_assignments(store: Store) -> None:
    """The demo daemon's application permissions show as requested, granted and held as app role assignments;
    removing one from the registration keeps the assignment until admin consent is revoked."""
    app = DEMO_DAEMON_APP_ID
    body = store.json("app", "permissions", app)
    assert [(p["permission"], p["type"], p["grantedForTenant"]) for p in body["requested"]] == [
        ("Presence.Read.All", "application", True),
        ("Presence.ReadWrite.All", "application", True),
    ]
    assert sorted((g["permission"], g["type"], g["consent"]) for g in body["granted"]) == [
        ("Presence.Read.All", "application", "admin"),
        ("Presence.ReadWrite.All", "application", "admin"),
    ]
    after = store.json("app", "remove-permission", app, "Presence.ReadWrite.All", "--type", "application")
    assert [p["permission"] for p in after["requested"]] == ["Presence.Read.All"]
    assert len(after["granted"]) == 2
    text = store.ok("app", "permissions", app)
    assert ["Presence.ReadWrite.All", "application", "Microsoft Graph", "app role assignment"] in rows(text)
    assert store.json("app", "revoke-admin-consent", app)["removed"] == 2


def test_redirect_uris_are_added_and_removed_per_platform(store: Store) -> None:
    """add-redirect-uri and remove-redirect-uri change one platform's URIs and print them all."""
    app = DEMO_DAEMON_APP_ID
    text = store.ok("app", "add-redirect-uri", app, "https://dashboard.example/callback", "--platform", "web")
    assert rows(text) == [["PLATFORM", "REDIRECT URI"], ["web", "https://dashboard.example/callback"]]
    body = store.json("app", "add-redirect-uri", app, "myapp://auth", "--platform", "public")
    assert body["redirectUris"] == [
        {"platform": "web", "uri": "https://dashboard.example/callback"},
        {"platform": "publicClient", "uri": "myapp://auth"},
    ]
    body = store.json("app", "remove-redirect-uri", app, "https://dashboard.example/callback", "--platform", "web")
    assert body["redirectUris"] == [{"platform": "publicClient", "uri": "myapp://auth"}]
    assert store.ok("app", "remove-redirect-uri", app, "myapp://auth", "--platform", "publicClient").strip() == (
        "no redirect URIs"
    )


def test_secrets_are_listed_without_their_values(store: Store) -> None:
    """`app secrets` lists key id, description, hint and expiry of each secret, never the value."""
    app = DEMO_DAEMON_APP_ID
    value, key_line = store.ok("app", "add-secret", app, "--name", "nightly", "--days", "90").splitlines()
    key_id = key_line.split()[2].rstrip(",")
    listed = store.json("app", "secrets", app)
    assert [s["displayName"] for s in listed] == ["nightly", "demo"]
    nightly = listed[0]
    assert nightly["keyId"] == key_id
    assert nightly["hint"] == value[:3]
    assert datetime.fromisoformat(nightly["endDateTime"]) > datetime.now(UTC)
    text = store.ok("app", "secrets", app)
    assert value not in text
    assert rows(text)[0] == ["KEY ID", "DESCRIPTION", "HINT", "EXPIRES"]
    assert rows(text)[1][:3] == [key_id, "nightly", f"{value[:3]}…"]
    assert value not in json.dumps(listed)


def test_a_users_own_consents_are_listed_and_revoked(store: Store) -> None:
    """`consent list --user` lists the consents the user gave for themselves (an administrator's too: their own
    only); `consent revoke` takes one away by the app's id, and the next list is empty."""
    megan = demo_user_id("megan")

    async def consent(runtime: Runtime) -> None:
        public = await runtime.identity_store.find_application(DEMO_PUBLIC_APP_ID)
        assert public is not None
        now = datetime.now(UTC)
        await runtime.identity.consent_for_user(
            DEMO_TENANT_ID, public, GRAPH, megan, {"Presence.Read", "User.Read"}, now, granted_by=megan
        )

    store.with_runtime(consent)
    [mine] = store.json("consent", "list", "--user", "megan@contoso.example")
    assert (mine["appId"], mine["app"], mine["resource"], mine["scopes"]) == (
        DEMO_PUBLIC_APP_ID,
        "Presence Desktop (demo)",
        "Microsoft Graph",
        ["Presence.Read", "User.Read"],
    )
    table = rows(store.ok("consent", "list", "--user", megan))
    assert table[0] == ["GRANT ID", "APP", "APP ID", "API", "PERMISSIONS", "GRANTED"]
    assert table[1][:5] == [mine["id"], "Presence Desktop (demo)", DEMO_PUBLIC_APP_ID, "Microsoft Graph",
                            "Presence.Read User.Read"]  # fmt: skip
    assert store.ok("consent", "list", "--user", "adele@contoso.example").strip() == "no consents"

    refused = store.run("consent", "revoke", "--user", "adele@contoso.example", mine["id"])
    assert refused.returncode == 2
    assert "adele@contoso.example has no consent" in refused.stderr
    revoked = store.json("consent", "revoke", "--user", "megan@contoso.example", DEMO_PUBLIC_APP_ID)
    assert [r["id"] for r in revoked] == [mine["id"]]
    assert store.json("consent", "list", "--user", "megan@contoso.example") == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("app", "add-permission", DEMO_PUBLIC_APP_ID, "Presence.Nope"), "no delegated permission 'Presence.Nope'"),
        (
            ("app", "add-permission", DEMO_PUBLIC_APP_ID, "Presence.ReadWrite.All"),
            "(it has an application one: --type application)",
        ),
        (("app", "add-permission", DEMO_PUBLIC_APP_ID, "Presence.Read", "--type", "role"), "'--type'"),
        (("app", "add-permission", DEMO_PUBLIC_APP_ID, "Presence.Read"), "already asks for Presence.Read (delegated)"),
        (("app", "remove-permission", DEMO_PUBLIC_APP_ID, "User.Read"), "does not ask for that permission"),
        (("app", "permissions", "11111111-1111-1111-1111-111111111111"), "no application '11111111-"),
        (("app", "secrets", "not-an-app"), "no application 'not-an-app'"),
        (("app", "revoke-admin-consent", "11111111-1111-1111-1111-111111111111"), "no application"),
        (("app", "add-redirect-uri", DEMO_DAEMON_APP_ID, "javascript:alert(1)", "--platform", "web"), "scheme"),
        (("app", "add-redirect-uri", DEMO_DAEMON_APP_ID, "https://x.example", "--platform", "ios"), "'--platform'"),
        (("app", "remove-redirect-uri", DEMO_DAEMON_APP_ID, "https://x.example", "--platform", "web"), "is not a"),
        (("consent", "list", "--user", "nobody@contoso.example"), "no user 'nobody@contoso.example'"),
        (("consent", "revoke", "--user", "megan@contoso.example", "nothing"), "has no consent 'nothing'"),
    ],
    ids=[
        "unknown-permission",
        "wrong-kind",
        "bad-type",
        "asked-already",
        "not-asked",
        "unknown-app",
        "not-an-app",
        "revoke-unknown-app",
        "script-uri",
        "bad-platform",
        "not-a-uri-of-the-app",
        "unknown-user",
        "unknown-consent",
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(sqlite_store: Store, args: tuple[str, ...], says: str) -> None:
    """An unknown permission, app, user or consent, a wrong --type or --platform: one line, exit status 2."""
    result = sqlite_store.run(*args)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("presenced: error: ")
    assert says in lines[0]
    assert result.stdout == ""
