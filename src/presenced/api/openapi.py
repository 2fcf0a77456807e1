"""The OpenAPI 3.1 document, generated from the route table and the wire structs.

Each operation's description names the permissions that allow it, worded from the permission catalog
by the same function as the permissions explorer's pages (``auth.allowances``).

Graph's operations are tagged with their version (``v1.0``, ``beta``). Those that are not Microsoft
Graph's are marked (``Endpoint.surface``): presenced's extensions carry ``x-presenced-extension: true``
and the tag ``Extensions``; the emulator's controls ``x-presenced-extension: true``,
``x-presenced-emulator: true`` and the tag ``Emulator``. A ``$select`` that may name extension
properties lists them in ``x-presenced-extension-properties``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from presenced import __version__
from presenced.api import wire
from presenced.api.endpoints import VERSIONS, Endpoint, Surface
from presenced.auth.allowances import Allowance, allowances
from presenced.auth.permissions import PermissionKind

_REF = "#/components/schemas/{name}"
#: How the description of an operation that is not Graph's starts, and its tag with what the tag stands for.
NOT_GRAPH = {
    Surface.EXTENSION: (
        "Extension — not in Microsoft Graph.",
        "Extensions",
        "presenced's own endpoints, beyond Microsoft Graph: not in Microsoft Graph.",
    ),
    Surface.EMULATOR: (
        "Emulator control — not in Microsoft Graph.",
        "Emulator",
        "Controls of the emulator (its manual clock, fault rules, lifecycle notifications on demand), which act "
        "only on a server started with --clock manual: not in Microsoft Graph.",
    ),
}


def openapi_document(endpoints: Iterable[Endpoint]) -> dict[str, Any]:
    endpoints = list(endpoints)
    types: list[type] = [wire.ErrorResponse]
    types += [e.request_body for e in endpoints if e.request_body is not None]
    types += [e.response_body for e in endpoints if e.response_body is not None]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = dict(zip(types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        for path in endpoint.paths():
            version = path.split("/")[1] if endpoint.versioned else None
            paths.setdefault(path, {})[endpoint.method.lower()] = _operation(version, endpoint, schema_of)
    surfaces = {e.surface for e in endpoints}
    tags = [{"name": v, "description": f"Microsoft Graph {v}"} for v in VERSIONS if Surface.GRAPH in surfaces]
    tags += [{"name": tag, "description": text} for s, (_, tag, text) in NOT_GRAPH.items() if s in surfaces]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "presenced",
            "version": __version__,
            "description": "The Microsoft Graph presence API, self-hosted.",
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(version: str | None, endpoint: Endpoint, schema_of: dict[type, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", endpoint.path)
    ]
    parameters += [_query(name, endpoint) for name in endpoint.query]
    success: dict[str, Any] = {"description": "Success"}
    if endpoint.response_body is not None:
        success["content"] = {"application/json": {"schema": schema_of[endpoint.response_body]}}
    elif endpoint.response_media:
        success["content"] = {m: {"schema": _raw(m)} for m in endpoint.response_media}
    surface = endpoint.surface
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id if version is None else f"{version}.{endpoint.operation_id}",
        "summary": endpoint.summary,
        "description": description(endpoint),
        "tags": [NOT_GRAPH[surface][1]] if surface in NOT_GRAPH else [version or "graph"],
        "parameters": parameters,
        "responses": {
            str(endpoint.status): success,
            "default": {
                "description": "Graph error",
                "content": {"application/json": {"schema": schema_of[wire.ErrorResponse]}},
            },
        },
    }
    if surface is not Surface.GRAPH:
        operation["x-presenced-extension"] = True
    if surface is Surface.EMULATOR:
        operation["x-presenced-emulator"] = True
    if endpoint.request_body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema_of[endpoint.request_body]}},
        }
    elif endpoint.request_media:
        operation["requestBody"] = {
            "required": True,
            "content": {m: {"schema": _raw(m)} for m in endpoint.request_media},
        }
    return operation


def _query(name: str, endpoint: Endpoint) -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Comma-separated property names",
    }
    if name == "$select" and endpoint.select_extensions:
        names = ", ".join(endpoint.select_extensions)
        parameter["description"] += f". Also {names}: an extension, not in Microsoft Graph, answered only when named"
        parameter["x-presenced-extension-properties"] = list(endpoint.select_extensions)
    return parameter


def _raw(media_type: str) -> dict[str, str]:
    """The schema of a body that is not JSON: text, or bytes."""
    return {"type": "string"} if media_type.startswith("text/") else {"type": "string", "format": "binary"}


def _named(allowed: Allowance) -> str:
    if allowed.own_only:
        return f"{allowed.permission.value} (signed-in user only)"
    return f"{allowed.permission.value} (administrators)" if allowed.administrators else allowed.permission.value


def permissions_text(endpoint: Endpoint) -> str:
    """E.g. "Delegated: Presence.Read (signed-in user only), Presence.Read.All; Application: Presence.Read.All"."""
    if not endpoint.access:
        return "none"
    found = allowances(endpoint.access, endpoint.delegated_only)
    parts = []
    for kind, label in ((PermissionKind.DELEGATED, "Delegated"), (PermissionKind.APPLICATION, "Application")):
        names = [_named(a) for a in found if a.permission.kind is kind]
        if names:
            parts.append(f"{label}: {', '.join(names)}")
        elif kind is PermissionKind.APPLICATION and endpoint.delegated_only:
            parts.append(f"{label}: none (/me is the signed-in user: it takes a delegated token)")
        else:
            parts.append(f"{label}: none")
    return "; ".join(parts)


def description(endpoint: Endpoint) -> str:
    note = f" {endpoint.note}" if endpoint.note else ""
    text = f"Permissions: {permissions_text(endpoint)}.{note}"
    marked = NOT_GRAPH.get(endpoint.surface)
    return text if marked is None else f"{marked[0]} {text}"
