"""The OpenAPI 3.1 document, generated from the route table and the wire structs.

Each operation's description names the permissions that allow it, worded from the permission catalog
by the same function as the permissions explorer's pages (``auth.allowances``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from presenced import __version__
from presenced.api import wire
from presenced.api.endpoints import Endpoint
from presenced.auth.allowances import Allowance, allowances
from presenced.auth.permissions import PermissionKind

_REF = "#/components/schemas/{name}"


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
            version = path.split("/")[1] if endpoint.versioned else "emulator"
            paths.setdefault(path, {})[endpoint.method.lower()] = _operation(version, endpoint, schema_of)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "presenced",
            "version": __version__,
            "description": "The Microsoft Graph presence API, self-hosted.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(version: str, endpoint: Endpoint, schema_of: dict[type, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", endpoint.path)
    ]
    parameters += [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "Comma-separated property names",
        }
        for name in endpoint.query
    ]
    success: dict[str, Any] = {"description": "Success"}
    if endpoint.response_body is not None:
        success["content"] = {"application/json": {"schema": schema_of[endpoint.response_body]}}
    elif endpoint.response_media:
        success["content"] = {m: {"schema": _raw(m)} for m in endpoint.response_media}
    operation: dict[str, Any] = {
        "operationId": f"{version}.{endpoint.operation_id}",
        "summary": endpoint.summary,
        "description": description(endpoint),
        "tags": [version],
        "parameters": parameters,
        "responses": {
            str(endpoint.status): success,
            "default": {
                "description": "Graph error",
                "content": {"application/json": {"schema": schema_of[wire.ErrorResponse]}},
            },
        },
    }
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
    return f"Permissions: {permissions_text(endpoint)}.{note}"
