"""The permissions explorer: every permission of the catalog, what it allows here, and how to use it.

``/permissions`` lists the catalog's permission values; ``/permissions/{value}`` shows one (its
delegated and application variants, the methods they allow, the properties those methods expose,
code samples and the steps to add it to an app); ``.json`` and ``.csv`` after either export it.

The permissions are the catalog's (``auth.permissions``). What each allows is derived from the API's
route table, which the application's services carry (``wiring.Services.endpoints``): each endpoint names the accesses
it asks the policy for, and a permission allows the endpoint when it allows one of them
(``auth.allowances``, which the OpenAPI document words its permissions with too, so the two cannot
disagree). The properties come from the endpoints' response types (``web.resource_properties``) and
the exports are shaped by ``web.permission_exports``. The web layer sits below the API, so the table
is read through ``GraphEndpoint``, the little of an endpoint used here.

Methods of this server's own (a path without a version, as ``/_ext/…``), and the properties only they
answer with, are labelled "Extension — not in Microsoft Graph" (``permission_entries.EXTENSION_LABEL``);
the list tags the permissions that allow any. ``/openapi.json`` marks the same operations
(``x-presenced-extension``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from presenced.auth.allowances import Allowance, allowances
from presenced.auth.permissions import CATALOG, GRAPH_APP_ID, Permission, PermissionKind, find
from presenced.portal_session import current_account
from presenced.web import samples as code_samples
from presenced.web.permission_entries import EXTENSION_LABEL, Entry, Method, Variant
from presenced.web.permission_exports import csv_text, export, json_bytes
from presenced.web.portal import page, problem
from presenced.web.resource_properties import Property, resource_properties
from presenced.wiring import GraphEndpoint, services_of

_DELEGATED, _APPLICATION = PermissionKind.DELEGATED, PermissionKind.APPLICATION


# ---- the index: each permission value with what it allows ----


def _allowance(found: Iterable[Allowance], permission: Permission | None) -> Allowance | None:
    return None if permission is None else next((a for a in found if a.permission is permission), None)


def _variant(permission: Permission | None, methods: Sequence[Method], base_url: str) -> Variant | None:
    """The variant with its samples, which make the first call of ``samples.CALLS`` it allows for anyone."""
    if permission is None:
        return None
    usable = set()
    for m in methods:
        allowed = m.delegated if permission.kind is _DELEGATED else m.application
        if allowed is not None and not allowed.own_only:
            usable.add(m.operation_id)
    call_id = next((op for op in code_samples.CALLS if op in usable), None)
    if call_id is None:
        return Variant(permission, None, ())
    return Variant(permission, call_id, code_samples.samples(permission, code_samples.CALLS[call_id], base_url))


def _entry(value: str, endpoints: Sequence[GraphEndpoint], base_url: str) -> Entry:
    delegated, application = find(value, _DELEGATED), find(value, _APPLICATION)
    methods: list[Method] = []
    properties: dict[tuple[str, str], Property] = {}
    #: The properties that some Graph method answers with; the others come only from extensions.
    graph_properties: set[tuple[str, str]] = set()
    for endpoint in endpoints:
        found = allowances(endpoint.access, endpoint.delegated_only)
        d, a = _allowance(found, delegated), _allowance(found, application)
        if d is None and a is None:
            continue
        paths = tuple(endpoint.paths())
        method = Method(endpoint.method, paths, endpoint.versioned, endpoint.summary, endpoint.operation_id, d, a)
        methods.append(method)
        if endpoint.response_body is not None:
            for prop in resource_properties(endpoint.response_body):
                properties.setdefault((prop.resource, prop.name), prop)
                if not method.extension:
                    graph_properties.add((prop.resource, prop.name))
    present = [p for p in (delegated, application) if p is not None]
    names = dict.fromkeys(n for p in present for n in (p.admin_display_name, p.user_display_name) if n)
    # "extensions" finds the permissions that allow some of this server's own methods.
    extensions = ["extensions"] if any(m.extension for m in methods) else []
    entry = Entry(
        value,
        _variant(delegated, methods, base_url),
        _variant(application, methods, base_url),
        tuple(methods),
        tuple(properties.values()),
        " ".join([value, *names, *(p.kind.value for p in present), *extensions]),
        b"",
        "",
        frozenset(properties.keys() - graph_properties),
    )
    return replace(entry, json=json_bytes(export(entry)), csv=csv_text([entry]))


@dataclass(frozen=True, slots=True)
class Index:
    """Every permission value of the catalog, with its exports: built once per route table."""

    entries: dict[str, Entry]
    #: Lower-cased value → value, for case-insensitive addresses.
    folded: dict[str, str]
    json: bytes
    csv: str


def build_index(endpoints: Sequence[GraphEndpoint], base_url: str) -> Index:
    values = dict.fromkeys(p.value for p in CATALOG)
    entries = {value: _entry(value, endpoints, base_url) for value in values}
    return Index(
        entries,
        {value.lower(): value for value in entries},
        json_bytes([export(e) for e in entries.values()]),
        csv_text(entries.values()),
    )


_INDEXES: dict[tuple[int, str], tuple[object, Index]] = {}


def index_of(request: Request) -> Index:
    """The index of this application's route table (``wiring.Services.endpoints``), built on first use."""
    endpoints: Sequence[GraphEndpoint] = services_of(request).endpoints
    base_url: str = services_of(request).base_url
    key = (id(endpoints), base_url)
    cached = _INDEXES.get(key)
    if cached is None or cached[0] is not endpoints:
        if len(_INDEXES) >= 8:  # a process serves one application; tests build many
            _INDEXES.clear()
        cached = (endpoints, build_index(endpoints, base_url))
        _INDEXES[key] = cached
    return cached[1]


# ---- sending the exports ----


_EXPORT_HEADERS = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}


def _json_response(body: bytes, name: str) -> Response:
    headers = {**_EXPORT_HEADERS, "Content-Disposition": f'attachment; filename="{name}.json"'}
    return Response(body, media_type="application/json", headers=headers)


def _csv_response(text: str, name: str) -> Response:
    headers = {**_EXPORT_HEADERS, "Content-Disposition": f'attachment; filename="{name}.csv"'}
    return Response(text.encode(), media_type="text/csv; charset=utf-8", headers=headers)


# ---- pages ----


def cli_command(permission: Permission, tenant_id: str | None) -> str:
    """The ``presenced app create`` line that registers an app asking for ``permission``."""
    tenant = f" --tenant {tenant_id}" if tenant_id else ""
    if permission.kind is _DELEGATED:
        line = (
            f'presenced app create "My app"{tenant} --public-client --redirect-uri public=http://localhost '
            f"--permission {permission.value}"
        )
    else:
        line = f'presenced app create "My daemon"{tenant} --secret --permission {permission.value}:application'
    return line + (" --grant-admin-consent" if permission.admin_consent_required else "")


def cli_add_command(permission: Permission, tenant_id: str | None) -> str:
    """The ``presenced app add-permission`` line (and the admin consent it needs) for an app that exists."""
    tenant = f" --tenant {tenant_id}" if tenant_id else ""
    line = f"presenced app add-permission {{app-id}} {permission.value} --type {permission.kind.value}{tenant}"
    if permission.admin_consent_required:
        line += f"\npresenced app grant-admin-consent {{app-id}}{tenant}"
    return line + f"\npresenced app permissions {{app-id}}{tenant}"


def api_steps(permission: Permission, base_url: str) -> str:
    """The directory API's requests that make an app ask for ``permission`` and grant it for the tenant."""
    access = (
        f'{{"requiredResourceAccess": [{{"resourceAppId": "{GRAPH_APP_ID}",\n'
        f'  "resourceAccess": [{{"id": "{permission.id}", "type": "{permission.kind.graph_type}"}}]}}]}}'
    )
    steps = f"PATCH {base_url}/v1.0/applications/{{object-id}}\n{access}"
    if permission.kind is _DELEGATED:
        grant = (
            f"POST {base_url}/v1.0/oauth2PermissionGrants\n"
            f'{{"clientId": "{{service-principal-id}}", "consentType": "AllPrincipals",\n'
            f' "resourceId": "{{graph-service-principal-id}}", "scope": "{permission.value}"}}'
        )
    else:
        grant = (
            f"POST {base_url}/v1.0/servicePrincipals/{{service-principal-id}}/appRoleAssignments\n"
            f'{{"principalId": "{{service-principal-id}}", "resourceId": "{{graph-service-principal-id}}",\n'
            f' "appRoleId": "{permission.id}"}}'
        )
    return f"{steps}\n\n{grant}"


def _matches(entry: Entry, words: Sequence[str]) -> bool:
    text = entry.search.lower()
    return all(w in text for w in words)


async def permissions_page(request: Request) -> Response:
    index = index_of(request)
    query = request.query_params.get("q", "").strip()[:200]
    words = query.lower().split()
    listed = [(entry, _matches(entry, words)) for entry in index.entries.values()]
    return page(
        request,
        "permissions.html",
        await current_account(request),
        "permissions",
        listed=listed,
        query=query,
        shown=sum(1 for _, match in listed if match),
        extension_label=EXTENSION_LABEL,
    )


_DELEGATED_FLOW = "a user signs in (with a device code in Python and PowerShell, in a browser in C# and JavaScript)"


def _sample_views(entry: Entry, tenant_id: str | None, base_url: str) -> list[dict[str, Any]]:
    views = []
    for variant in entry.variants:
        p = variant.permission
        delegated = p.kind is _DELEGATED
        method = next((m for m in entry.methods if m.operation_id == variant.sample_call), None)
        views.append(
            {
                "kind": p.kind.value,
                "label": "Delegated" if delegated else "Application",
                "flow": _DELEGATED_FLOW if delegated else "the app signs in with a client secret",
                "scope": code_samples.scope_of(p),
                "call": None if method is None else f"{method.method} {method.paths[0]}",
                "samples": [(s.language, s.label, s.code(tenant_id)) for s in variant.samples],
                "cli": cli_command(p, tenant_id),
                "cli_add": cli_add_command(p, tenant_id),
                "api": api_steps(p, base_url),
            }
        )
    return views


async def _permission_page(request: Request, entry: Entry) -> Response:
    account = await current_account(request)
    tenant_id = None if account is None else account.user.tenant_id
    base_url: str = services_of(request).base_url
    views = _sample_views(entry, tenant_id, base_url)
    return page(
        request,
        "permission.html",
        account,
        "permissions",
        entry=entry,
        address=quote(entry.value, safe="."),
        views=views,
        languages=[
            (language, label)
            for language, label in code_samples.LANGUAGES
            if any(language == s[0] for view in views for s in view["samples"])
        ],
        tenant_id=tenant_id or code_samples.TENANT_PLACEHOLDER,
        plain_http=base_url.startswith("http://"),
        base_url=base_url,
        extension_label=EXTENSION_LABEL,
    )


def _not_found(request: Request, raw: str, index: Index, account: Any) -> Response:
    wanted = raw[:100]
    close = difflib.get_close_matches(wanted.lower(), list(index.folded), n=3, cutoff=0.6)
    suggestion = f" Did you mean {', '.join(index.folded[c] for c in close)}?" if close else ""
    text = f"No permission is called '{wanted}'.{suggestion} The list of every permission is at /permissions."
    return problem(request, account, "No such permission", text, 404)


async def permission_resource(request: Request) -> Response:
    """``/permissions/{value}``, ``{value}.json`` or ``{value}.csv`` (Starlette's ``{value}`` takes the suffix
    too); a value spelled in another case is sent to its own spelling."""
    raw: str = request.path_params["value"]
    index = index_of(request)
    entry = index.entries.get(raw)
    if entry is not None:
        return await _permission_page(request, entry)
    stem, dot, suffix = raw.rpartition(".")
    if dot and suffix in {"json", "csv"} and stem in index.entries:
        found = index.entries[stem]
        return _json_response(found.json, stem) if suffix == "json" else _csv_response(found.csv, stem)
    canonical = index.folded.get(raw.lower())
    if canonical is not None:
        return RedirectResponse(f"/permissions/{quote(canonical, safe='.')}", 308)
    canonical = index.folded.get(stem.lower()) if dot and suffix.lower() in {"json", "csv"} else None
    if canonical is not None:
        return RedirectResponse(f"/permissions/{quote(canonical, safe='.')}.{suffix.lower()}", 308)
    return _not_found(request, raw, index, await current_account(request))


async def catalog_json(request: Request) -> Response:
    return _json_response(index_of(request).json, "permissions")


async def catalog_csv(request: Request) -> Response:
    return _csv_response(index_of(request).csv, "permissions")


ROUTES: list[Route] = [
    Route("/permissions.json", catalog_json, methods=["GET"]),
    Route("/permissions.csv", catalog_csv, methods=["GET"]),
    Route("/permissions", permissions_page, methods=["GET"]),
    Route("/permissions/{value}", permission_resource, methods=["GET"]),
]
