"""/openapi.json tells Microsoft Graph's operations from presenced's own: the extensions (``/_ext/…``,
``/_stream/…``) and the emulator's controls (``/_emulator/…``) are tagged and marked as not in Graph, and
the presence reads' ``$select`` names the extension property it takes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from presenced.api.app import graph_endpoints
from presenced.api.endpoints import Surface
from presenced.app import create_app
from presenced.bootstrap import Runtime
from tests.support import BASE_URL, build_on_manual_clock

NOT_IN_GRAPH = "not in Microsoft Graph"


@pytest.fixture
def database_url() -> None:
    """The document depends on the route table only: SQLite is enough."""
    return None


async def _document(runtime: Runtime) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture
async def served(runtime: Runtime) -> dict[str, Any]:
    """The document of a server on the system clock (no manual clock: fault rules' routes only)."""
    return await _document(runtime)


@pytest.fixture
async def emulator(tmp_path: Path, key_folder: Path) -> AsyncIterator[dict[str, Any]]:
    """The document of an emulator (the manual clock's routes too)."""
    (tmp_path / "emulator").mkdir()
    runtime = await build_on_manual_clock(tmp_path / "emulator", key_folder, None)
    try:
        yield await _document(runtime)
    finally:
        await runtime.close()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


async def test_extension_operations_are_marked_and_tagged_extensions(emulator: dict[str, Any]) -> None:
    extensions = {
        (path, method): operation
        for path, method, operation in operations(emulator)
        if path.startswith(("/_ext/", "/_stream/"))
    }
    assert {("/_ext/users/{id}/presence/history", "get"), ("/_ext/users/{id}/presence/lastSeen", "get")} <= set(
        extensions
    )
    assert ("/_stream/presences", "get") in extensions
    for operation in extensions.values():
        assert operation["x-presenced-extension"] is True
        assert "x-presenced-emulator" not in operation
        assert operation["tags"] == ["Extensions"]
        assert operation["description"].startswith(f"Extension — {NOT_IN_GRAPH}. Permissions: Delegated: ")
    assert extensions[("/_ext/users/{id}/presence/lastSeen", "get")]["operationId"] == "ext.lastSeen"


async def test_emulator_controls_are_marked_and_tagged_emulator(emulator: dict[str, Any]) -> None:
    controls = {
        (path, method): operation for path, method, operation in operations(emulator) if path.startswith("/_emulator/")
    }
    assert {("/_emulator/clock", "get"), ("/_emulator/clock", "post"), ("/_emulator/faults", "post")} <= set(controls)
    for operation in controls.values():
        assert operation["x-presenced-extension"] is True
        assert operation["x-presenced-emulator"] is True
        assert operation["tags"] == ["Emulator"]
        assert operation["description"].startswith(f"Emulator control — {NOT_IN_GRAPH}.")
    assert controls[("/_emulator/clock", "get")]["operationId"] == "emulator.getClock"


async def test_graph_operations_carry_no_mark_and_are_tagged_with_their_version(served: dict[str, Any]) -> None:
    graph = [(p, m, o) for p, m, o in operations(served) if p.startswith(("/v1.0/", "/beta/"))]
    assert graph
    for path, _, operation in graph:
        version = path.split("/")[1]
        assert operation["tags"] == [version]
        assert operation["operationId"].startswith(f"{version}.")
        assert not [key for key in operation if key.startswith("x-presenced")], path
        assert NOT_IN_GRAPH not in operation["description"]
    assert [
        p
        for p, _, _ in operations(served)
        if not p.startswith(("/v1.0/", "/beta/", "/_ext/", "/_stream/", "/_emulator/"))
    ] == []


async def test_the_tags_are_listed_with_what_they_stand_for(served: dict[str, Any], emulator: dict[str, Any]) -> None:
    for document in (served, emulator):
        listed = {tag["name"]: tag["description"] for tag in document["tags"]}
        assert list(listed) == ["v1.0", "beta", "Extensions", "Emulator"]
        assert NOT_IN_GRAPH in listed["Extensions"]
        assert NOT_IN_GRAPH in listed["Emulator"]
        used = {tag for _, _, operation in operations(document) for tag in operation["tags"]}
        assert used == set(listed)


async def test_operation_ids_stay_unique(emulator: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(emulator)]
    assert len(ids) == len(set(ids))


async def test_a_presence_reads_select_names_last_seen_as_an_extension(served: dict[str, Any]) -> None:
    for path in ("/v1.0/me/presence", "/beta/users/{id}/presence", "/v1.0/communications/presences/{id}"):
        (select,) = [p for p in served["paths"][path]["get"]["parameters"] if p["name"] == "$select"]
        assert select["x-presenced-extension-properties"] == ["lastSeenDateTime"]
        assert "lastSeenDateTime" in select["description"]
        assert NOT_IN_GRAPH in select["description"]
    by_user_id = served["paths"]["/v1.0/communications/getPresencesByUserId"]["post"]["parameters"]
    assert not [p for p in by_user_id if "x-presenced-extension-properties" in p]
    assert "lastSeenDateTime" not in str(by_user_id)


def test_every_endpoint_is_graphs_exactly_when_it_is_served_under_a_version() -> None:
    """The explorer labels a method an extension when its path has no version: the same as /openapi.json."""
    for endpoint in graph_endpoints(with_emulator=True):
        assert (endpoint.surface is Surface.GRAPH) == endpoint.versioned, endpoint.path
