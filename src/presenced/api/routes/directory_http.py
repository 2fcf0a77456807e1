"""What the directory routes share: the acting caller, ``$select``/``$filter``, and rendering."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.http import json_response, principal_of
from presenced.errors import BadRequest
from presenced.services.directory import Actor, DirectoryService
from presenced.wiring import services_of

_CLAUSE = re.compile(r"\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*(?:and\s+(.*))?", re.IGNORECASE | re.DOTALL)


async def actor(request: Request) -> Actor:
    """The verified caller, acting on the directory of its tenant (the service decides what it may do)."""
    return Actor.calling(await principal_of(request))


def directory(request: Request) -> DirectoryService:
    service: DirectoryService = services_of(request).directory
    return service


def now(request: Request) -> datetime:
    """The token issuer's time: secrets must be valid by the clock that checks them."""
    instant: datetime = services_of(request).oauth.now()
    return instant


def context(request: Request, path: str) -> str:
    version = request.scope["path"].split("/", 2)[1]
    return f"{services_of(request).base_url}/{version}/$metadata#{path}"


def _properties(kind: type) -> frozenset[str]:
    return frozenset(f.encode_name for f in msgspec.structs.fields(kind) if f.encode_name != "@odata.context")


def _options(request: Request, kind: type, filterable: frozenset[str]) -> tuple[set[str] | None, list[tuple[str, str]]]:
    """The ``$select`` properties and ``$filter`` clauses; any other system query option is a 400."""
    properties = _properties(kind)
    selected: set[str] | None = None
    clauses: list[tuple[str, str]] = []
    for name, value in request.query_params.multi_items():
        if not name.startswith("$"):
            continue
        option = name.lower()
        if option == "$select":
            named = [p.strip() for p in value.split(",") if p.strip()]
            if not named:
                raise BadRequest("$select must name at least one property.")
            for prop in named:
                if prop not in properties:
                    raise BadRequest(f"$select: could not find a property named '{prop[:64]}'.")
                selected = (selected or set()) | {prop}
        elif option == "$filter" and filterable:
            clauses += _filter(value, filterable)
        else:
            raise BadRequest(f"Query option '{name[:64]}' is not supported on this resource.")
    return selected, clauses


def _filter(expression: str, filterable: frozenset[str]) -> list[tuple[str, str]]:
    """``prop eq 'value' [and …]``: the only filters supported."""
    clauses: list[tuple[str, str]] = []
    rest: str | None = expression
    while rest is not None:
        match = _CLAUSE.fullmatch(rest)
        if match is None:
            raise BadRequest("$filter: only \"property eq 'value'\" clauses joined by 'and' are supported.")
        prop, value, rest = match.group(1), match.group(2).replace("''", "'"), match.group(3)
        if prop not in filterable:
            raise BadRequest(
                f"$filter: property '{prop[:64]}' cannot be filtered on; use {', '.join(sorted(filterable))}."
            )
        clauses.append((prop, value))
    return clauses


def _select(item: dict[str, Any], selected: set[str] | None) -> dict[str, Any]:
    if selected is None:
        return item
    keep = selected | {"@odata.context", "id"}
    return {k: v for k, v in item.items() if k in keep}


def one(request: Request, body: Any, path: str, status: int = 200) -> Response:
    """A single entity (a msgspec struct with ``odata_context``); ``$select`` applied to reads."""
    selected = _options(request, type(body), frozenset())[0] if request.method == "GET" else None
    body.odata_context = context(request, path)
    return json_response(request, wire.encode(_select(msgspec.to_builtins(body), selected)), status)


def many(request: Request, items: list[Any], kind: type, path: str, filterable: frozenset[str]) -> Response:
    """A collection of ``kind`` entities, ``$filter`` and ``$select`` applied."""
    selected, clauses = _options(request, kind, filterable)
    values: list[dict[str, Any]] = [msgspec.to_builtins(item) for item in items]
    for prop, wanted in clauses:
        values = [v for v in values if isinstance(v.get(prop), str) and v[prop].lower() == wanted.lower()]
    body = {"@odata.context": context(request, path), "value": [_select(v, selected) for v in values]}
    return json_response(request, wire.encode(body))
