"""The permissions explorer in a real browser: the list filters as you type, a permission's page shows its variants,
exports them as JSON and CSV downloads, and copies its own address."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from presenced.auth.permissions import Permission, PermissionKind, find
from tests.browser.browser_support import ARTIFACTS, Browsers, Portal, artifact_name, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEST = "test_explorer_finds_presence_read_and_exports_both_types"
DOWNLOADS = ARTIFACTS / "downloads"


def catalog(value: str) -> dict[PermissionKind, Permission]:
    """The catalog's variants of ``value``, by kind."""
    found = {kind: find(value, kind) for kind in PermissionKind}
    return {kind: permission for kind, permission in found.items() if permission is not None}


async def download(page: Page, link: str, file_name: str) -> Path:
    """Click the link called ``link``, wait for the file it downloads (which the server names ``file_name``) and
    keep it as ``test-artifacts/downloads/TEST-FILE_NAME``."""
    async with page.expect_download() as started:
        await page.get_by_role("link", name=link, exact=True).click()
    downloaded = await started.value
    assert await downloaded.failure() is None
    assert downloaded.suggested_filename == file_name
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    path = DOWNLOADS / artifact_name(f"{TEST}-{file_name}")
    await downloaded.save_as(path)
    return path


async def exports(page: Page, value: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The permission page's JSON and CSV exports, downloaded through its links and parsed."""
    json_file = await download(page, "Export JSON", f"{value}.json")
    csv_file = await download(page, "Export CSV", f"{value}.csv")
    document: dict[str, Any] = json.loads(json_file.read_text(encoding="utf-8"))
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text(encoding="utf-8"), newline="")))
    return document, rows


def check_exports(value: str, document: dict[str, Any], rows: list[dict[str, str]]) -> None:
    """Each of the catalog's variants of ``value`` is in both exports, with its id and descriptions as the catalog
    has them; a kind the catalog lacks is absent from both."""
    variants = catalog(value)
    assert document["value"] == value
    assert len(rows) == len(variants), rows
    by_type = {row["type"]: row for row in rows}
    delegated = variants.get(PermissionKind.DELEGATED)
    if delegated is None:
        assert document["delegated"] is None
        assert "Delegated" not in by_type
    else:
        exported = document["delegated"]
        assert (exported["id"], exported["value"], exported["type"]) == (delegated.id, value, "Scope")
        assert exported["adminConsentDisplayName"] == delegated.admin_display_name
        assert exported["adminConsentDescription"] == delegated.admin_description
        assert exported["userConsentDisplayName"] == delegated.user_display_name
        assert exported["userConsentDescription"] == delegated.user_description
        row = by_type["Delegated"]
        assert (row["value"], row["id"]) == (value, delegated.id)
        assert (row["displayName"], row["description"]) == (delegated.admin_display_name, delegated.admin_description)
        assert row["userConsentDescription"] == delegated.user_description
    application = variants.get(PermissionKind.APPLICATION)
    if application is None:
        assert document["application"] is None
        assert "Application" not in by_type
    else:
        exported = document["application"]
        assert (exported["id"], exported["value"], exported["type"]) == (application.id, value, "Role")
        assert exported["displayName"] == application.admin_display_name
        assert exported["description"] == application.admin_description
        row = by_type["Application"]
        assert (row["value"], row["id"]) == (value, application.id)
        assert (row["displayName"], row["description"]) == (
            application.admin_display_name,
            application.admin_description,
        )


async def check_variants(page: Page, value: str) -> None:
    """The page of ``value`` shows the id and description of each variant the catalog has, and says which it lacks."""
    await expect(page.get_by_role("heading", name=value, level=1)).to_be_visible()
    variants = catalog(value)
    for kind in PermissionKind:
        section = page.locator(f"section#{kind.value}")
        permission = variants.get(kind)
        if permission is None:
            await expect(section).to_contain_text(f"Microsoft Graph has no {kind.value} permission {value}.")
        else:
            await expect(section.locator(".id")).to_have_text(permission.id)
            await expect(section).to_contain_text(permission.admin_description)


async def test_explorer_finds_presence_read_and_exports_both_types(portal: Portal, browsers: Browsers) -> None:
    """Typing "presence" leaves the presence permissions listed and Escape brings the rest back; Presence.Read's page
    (delegated only) and Presence.Read.All's (delegated and application) export each variant's id and descriptions
    as the catalog has them, in JSON and CSV; Copy URL puts the page's address on the clipboard."""
    assert set(catalog("Presence.Read")) == {PermissionKind.DELEGATED}
    assert set(catalog("Presence.Read.All")) == set(PermissionKind)
    context = await browsers.new_context(portal, permissions=["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    await page.goto("/permissions")

    listed = page.get_by_role("list", name="Permissions")
    presence_read = listed.get_by_role("link", name="Presence.Read", exact=True)
    others = [listed.get_by_role("link", name=value, exact=True) for value in ("User.Read", "MailboxSettings.Read")]
    count = page.locator("#permission-count")
    await expect(count).to_have_text(re.compile(r"^(\d+) of \1 shown$"))
    total = int((await count.inner_text()).split()[0])
    search = page.get_by_label("Search permissions")
    await search.press_sequentially("presence")
    await expect(presence_read).to_be_visible()
    await expect(listed.get_by_role("link", name="Presence.Read.All", exact=True)).to_be_visible()
    for other in others:
        await expect(other).to_be_hidden()
    await expect(count).to_have_text(re.compile(rf"^\d+ of {total} shown$"))
    shown = int((await count.inner_text()).split()[0])
    assert 2 <= shown < total, (shown, total)
    await expect(listed.locator("li:not([hidden])")).to_have_count(shown)
    await screenshot(page, f"{TEST}-1-search")

    await search.press("Escape")
    await expect(search).to_have_value("")
    for other in others:
        await expect(other).to_be_visible()
    await expect(count).to_have_text(f"{total} of {total} shown")
    await expect(page).to_have_url(f"{portal.url}/permissions")

    await search.press_sequentially("presence")
    await expect(others[0]).to_be_hidden()
    await presence_read.click()
    await expect(page).to_have_url(f"{portal.url}/permissions/Presence.Read")
    await check_variants(page, "Presence.Read")
    await expect(page.locator("section#delegated .id")).to_have_text("76bc735e-aecd-4a1d-8b4c-2b915deabb79")
    check_exports("Presence.Read", *await exports(page, "Presence.Read"))

    copy = page.get_by_role("button", name="Copy URL")
    await copy.click()
    await expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert await page.evaluate("() => navigator.clipboard.readText()") == page.url
    assert page.url == f"{portal.url}/permissions/Presence.Read"
    await screenshot(page, f"{TEST}-2-presence-read")

    await page.goto("/permissions/Presence.Read.All")
    await check_variants(page, "Presence.Read.All")
    await expect(page.locator("section#delegated .id")).to_have_text("9c7a330d-35b3-4aa1-963d-cb2b9f927841")
    await expect(page.locator("section#application .id")).to_have_text("a70e0c2d-e793-494c-94c4-118fa0a67f42")
    check_exports("Presence.Read.All", *await exports(page, "Presence.Read.All"))
    await screenshot(page, f"{TEST}-3-presence-read-all")
