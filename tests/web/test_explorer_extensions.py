"""The permissions explorer labels presenced's own methods (``/_ext/…``, ``/_stream/…``) "Extension — not in
Microsoft Graph" on a permission's page, with the properties only they answer with, and tags the permissions
that allow any in the list; what it labels is what /openapi.json marks."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest

LABEL = "Extension — not in Microsoft Graph"
LIST_TAG = "Also allows extensions — not in Microsoft Graph"
PRESENCE_READERS = ["Presence.Read", "Presence.Read.All", "Presence.ReadWrite", "Presence.ReadWrite.All"]


@pytest.fixture
def database_url() -> None:
    """The explorer stores nothing: SQLite is enough."""
    return None


def rows(page: httpx.Response, table: str) -> list[str]:
    """The body rows of the table with this id, as HTML."""
    found = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', page.text, re.S)
    assert found, f"no #{table} table"
    return re.findall(r"<tr\b.*?</tr>", found.group(1), re.S)


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def operation_of(row: str) -> str:
    found = re.search(r'data-operation="([^"]+)"', row)
    assert found
    return found.group(1)


def list_items(page: httpx.Response) -> dict[str, str]:
    """value → the HTML of its item in the list."""
    items = re.findall(r'<li data-search="[^"]*" data-value="([^"]*)"[^>]*>(.*?)</li>', page.text, re.S)
    return {unescape(value): html for value, html in items}


async def test_a_permissions_page_labels_its_extension_methods_and_only_those(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/permissions/Presence.Read.All")
    assert page.status_code == 200
    labelled = {operation_of(r): text(r) for r in rows(page, "methods") if LABEL in text(r)}
    assert set(labelled) == {"ext.presenceHistory", "ext.lastSeen", "stream.presences"}
    assert "GET /_ext/users/{id}/presence/lastSeen" in labelled["ext.lastSeen"]
    for row in rows(page, "methods"):
        if operation_of(row) not in labelled:
            assert LABEL not in text(row)
            assert re.search(r"<code>\w+ /(v1\.0|beta)/", row), row
    assert f"A method marked {LABEL} is this server's own" in text(page.text)


async def test_the_properties_only_extensions_answer_with_are_labelled(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/permissions/Presence.Read")
    by_property = {tuple(text(r).split()[:2]): text(r) for r in rows(page, "properties")}
    for key, shown in by_property.items():
        assert (LABEL in shown) == (key[0] in {"presenceHistoryEntry", "lastSeen"}), shown
    assert ("lastSeen", "lastSeenDateTime") in by_property
    assert ("presence", "availability") in by_property


async def test_a_permission_without_extension_methods_shows_no_label(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/permissions/MailboxSettings.Read")
    assert page.status_code == 200
    assert LABEL not in text(page.text)
    assert rows(page, "methods")


async def test_the_list_tags_the_permissions_that_allow_extensions(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/permissions")
    items = list_items(page)
    tagged = [value for value, html in items.items() if LIST_TAG in text(html)]
    assert tagged == PRESENCE_READERS
    assert "User.Read" in items
    assert LABEL in text(page.text), "the list says how extensions are marked"


async def test_searching_extensions_finds_the_permissions_that_allow_some(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/permissions", params={"q": "extensions"})
    shown = re.findall(r'<li data-search="[^"]*" data-value="([^"]*)">', page.text)
    assert shown == PRESENCE_READERS
    assert f"{len(PRESENCE_READERS)} of " in text(page.text)


async def test_what_the_explorer_labels_is_what_openapi_marks(browser: httpx.AsyncClient) -> None:
    document = (await browser.get("/openapi.json")).json()
    by_id = {o["operationId"]: o for methods in document["paths"].values() for o in methods.values()}
    for value in [*PRESENCE_READERS, "User.Read.All", "MailboxSettings.ReadWrite"]:
        for row in rows(await browser.get(f"/permissions/{value}"), "methods"):
            operation = operation_of(row)
            if LABEL in text(row):
                assert by_id[operation]["x-presenced-extension"] is True, operation
                assert by_id[operation]["tags"] == ["Extensions"]
            else:
                assert "x-presenced-extension" not in by_id[f"v1.0.{operation}"], operation
