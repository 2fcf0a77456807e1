"""The Graph management API for automation: applications and service principals (consent and users are in
``directory_consent``); ``ENDPOINTS`` lists the whole directory surface.

Everything happens in the caller's tenant (its token's ``tid``); the policy
decides who may read or change what (directory permissions, and for delegated
callers a directory administrator).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from msgspec import UnsetType
from starlette.requests import Request
from starlette.responses import Response

from presenced.api.endpoints import Endpoint
from presenced.api.http import empty_response, json_body
from presenced.api.routes import directory_consent
from presenced.api.routes import directory_wire as dw
from presenced.api.routes.directory_http import caller, guid, identity, many, not_found, now, object_id, one
from presenced.auth.permissions import GRAPH_APP_ID, GRAPH_AUDIENCES
from presenced.auth.policy import Operation, Target
from presenced.errors import BadRequest, Conflict, ResourceNotFound
from presenced.services.entities import ApiScope, Application, RequiredAccess, ServicePrincipal

_SKEW = timedelta(minutes=5)

# ---- applications ----


def _scopes(inputs: list[dw.PermissionScopeInput]) -> tuple[ApiScope, ...]:
    ids = [str(s.id) for s in inputs]
    if len(set(ids)) != len(ids):
        raise BadRequest("api.oauth2PermissionScopes: ids must be unique.")
    for s in inputs:
        if s.type not in {"User", "Admin"}:
            raise BadRequest(f"api.oauth2PermissionScopes.type must be User or Admin, not '{s.type[:32]}'.")
    return tuple(
        ApiScope(
            str(s.id),
            s.value,
            s.type,
            s.adminConsentDisplayName,
            s.adminConsentDescription,
            s.userConsentDisplayName or s.adminConsentDisplayName,
            s.userConsentDescription or s.adminConsentDescription,
        )
        for s in inputs
        if s.isEnabled
    )


def _required(inputs: list[dw.RequiredResourceAccessInput]) -> tuple[RequiredAccess, ...]:
    found: dict[tuple[str, str, str], RequiredAccess] = {}
    for entry in inputs:
        for access in entry.resourceAccess:
            if access.type not in {"Scope", "Role"}:
                raise BadRequest("requiredResourceAccess.resourceAccess.type must be Scope or Role.")
            item = RequiredAccess(str(entry.resourceAppId), str(access.id), access.type)
            found[(item.resource_app_id, item.permission_id, item.type)] = item
    return tuple(found.values())


async def _identifier_uris(request: Request, app: Application, uris: list[str]) -> tuple[str, ...]:
    for uri in uris:
        parts = urlsplit(uri)
        if not parts.scheme or not (parts.netloc or parts.path) or any(c.isspace() or c in "#*" for c in uri):
            raise BadRequest(f"identifierUris: '{uri[:64]}' is not a valid absolute URI without a fragment.")
    keys = {u.rstrip("/").lower() for u in uris}
    if keys & GRAPH_AUDIENCES:
        raise BadRequest("identifierUris: Microsoft Graph's identifiers cannot be used.")
    for other in await identity(request).store.list_applications(app.tenant_id):
        if other.id != app.id and keys & {u.rstrip("/").lower() for u in other.identifier_uris}:
            raise BadRequest("identifierUris: another application already uses one of these identifier URIs.")
    return tuple(dict.fromkeys(uris))


async def _patched(request: Request, app: Application, body: dw.ApplicationInput) -> Application:
    """``app`` with the properties ``body`` sets (the others as they were)."""
    changes: dict[str, Any] = {}
    if not isinstance(body.displayName, UnsetType):
        changes["display_name"] = body.displayName
    if not isinstance(body.signInAudience, UnsetType):
        changes["sign_in_audience"] = body.signInAudience
    if not isinstance(body.isFallbackPublicClient, UnsetType):
        changes["is_fallback_public_client"] = bool(body.isFallbackPublicClient)
    for name, field in (("web", body.web), ("spa", body.spa), ("public_client", body.publicClient)):
        if not isinstance(field, UnsetType) and not isinstance(field.redirectUris, UnsetType):
            changes[f"{name}_redirect_uris"] = tuple(dict.fromkeys(field.redirectUris))
    if not isinstance(body.requiredResourceAccess, UnsetType):
        changes["required_resource_access"] = _required(body.requiredResourceAccess)
    if not isinstance(body.identifierUris, UnsetType):
        changes["identifier_uris"] = await _identifier_uris(request, app, body.identifierUris)
    if not isinstance(body.api, UnsetType) and not isinstance(body.api.oauth2PermissionScopes, UnsetType):
        changes["api_scopes"] = _scopes(body.api.oauth2PermissionScopes)
    return replace(app, **changes)


async def _application(request: Request, tenant_id: str) -> Application:
    return await identity(request).require_application(tenant_id, object_id(request))


async def list_applications(request: Request) -> Response:
    principal = await caller(request, Operation.READ_APPLICATIONS)
    apps = await identity(request).store.list_applications(principal.tenant_id)
    return many(
        request,
        [dw.application(a) for a in apps],
        dw.ApplicationBody,
        "applications",
        frozenset({"id", "appId", "displayName", "signInAudience"}),
    )


async def create_application(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_APPLICATIONS)
    body = await json_body(request, dw.ApplicationInput)
    if isinstance(body.displayName, UnsetType):
        raise BadRequest("displayName is required.")
    at = now(request)
    blank = Application(
        str(uuid.uuid4()), str(uuid.uuid4()), principal.tenant_id, "", "AzureADMyOrg", False, (), (), (), (), (), (), at
    )
    app = await identity(request).register_application(await _patched(request, blank, body), at)
    return one(request, dw.application(app), "applications/$entity", 201)


async def get_application(request: Request) -> Response:
    principal = await caller(request, Operation.READ_APPLICATIONS)
    app = await _application(request, principal.tenant_id)
    return one(request, dw.application(app), "applications/$entity")


async def update_application(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_APPLICATIONS)
    app = await _application(request, principal.tenant_id)
    body = await json_body(request, dw.ApplicationInput)
    await identity(request).update_application(await _patched(request, app, body))
    return empty_response(request, 204)


async def delete_application(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_APPLICATIONS)
    ref = object_id(request)
    try:
        await identity(request).delete_application(principal.tenant_id, ref)
    except ResourceNotFound:
        raise not_found(ref) from None
    return empty_response(request, 204)


def _instant(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"passwordCredential.{name} is not a valid date and time: '{value[:64]}'.") from None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


async def add_password(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_APPLICATIONS)
    app = await _application(request, principal.tenant_id)
    body = await json_body(request, dw.AddPasswordInput, optional=True)
    wanted = body.passwordCredential or dw.PasswordCredentialInput()
    at = now(request)
    end = _instant(wanted.endDateTime, "endDateTime")
    start = _instant(wanted.startDateTime, "startDateTime")
    if start is not None and start > at + _SKEW:
        raise BadRequest("passwordCredential.startDateTime: a secret starts when it is added; it cannot be later.")
    added = await identity(request).add_password(app, wanted.displayName, at, end)
    return one(request, dw.password_credential(added.secret, added.text), "microsoft.graph.passwordCredential")


async def remove_password(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_APPLICATIONS)
    app = await _application(request, principal.tenant_id)
    body = await json_body(request, dw.RemovePasswordInput)
    await identity(request).remove_password(app, str(body.keyId))
    return empty_response(request, 204)


# ---- service principals ----


async def _sp_body(request: Request, sp: ServicePrincipal) -> dw.ServicePrincipalBody:
    return dw.service_principal(sp, await identity(request).resource_by_app_id(sp.tenant_id, sp.app_id))


async def list_service_principals(request: Request) -> Response:
    principal = await caller(request, Operation.READ_APPLICATIONS)
    service = identity(request)
    await service.graph_principal(principal.tenant_id, now(request))
    sps = await service.store.list_service_principals(principal.tenant_id)
    return many(
        request,
        [await _sp_body(request, sp) for sp in sps],
        dw.ServicePrincipalBody,
        "servicePrincipals",
        frozenset({"id", "appId", "displayName", "servicePrincipalType"}),
    )


async def get_service_principal(request: Request) -> Response:
    principal = await caller(request, Operation.READ_APPLICATIONS)
    ref = object_id(request)
    sp = await identity(request).store.get_service_principal(principal.tenant_id, ref)
    if sp is None:
        raise not_found(ref)
    return one(request, await _sp_body(request, sp), "servicePrincipals/$entity")


async def get_service_principal_by_app_id(request: Request) -> Response:
    principal = await caller(request, Operation.READ_APPLICATIONS)
    raw: str = request.path_params["app_id"]
    app_id = guid(raw)
    service = identity(request)
    sp = None
    if app_id == GRAPH_APP_ID:
        sp = await service.graph_principal(principal.tenant_id, now(request))
    elif app_id is not None:
        sp = await service.store.find_service_principal(principal.tenant_id, app_id)
    if sp is None:
        raise not_found(f"appId='{raw}'")
    return one(request, await _sp_body(request, sp), "servicePrincipals/$entity")


async def create_service_principal(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_APPLICATIONS)
    body = await json_body(request, dw.ServicePrincipalInput)
    app_id, tenant_id, service = str(body.appId), principal.tenant_id, identity(request)
    if app_id == GRAPH_APP_ID or await service.store.find_service_principal(tenant_id, app_id) is not None:
        raise Conflict(f"A service principal for appId '{app_id}' already exists in this tenant.")
    app = await service.store.find_application(app_id)
    if app is None:
        raise BadRequest(f"appId: no application has appId '{app_id}'.")
    if app.tenant_id != tenant_id and app.sign_in_audience == "AzureADMyOrg":
        raise BadRequest(f"appId: application '{app_id}' is single-tenant (AzureADMyOrg); it exists only at home.")
    sp = await service.client_principal(tenant_id, app, now(request))
    return one(request, await _sp_body(request, sp), "servicePrincipals/$entity", 201)


async def delete_service_principal(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_APPLICATIONS)
    ref = object_id(request)
    store = identity(request).store
    sp = await store.get_service_principal(principal.tenant_id, ref)
    if sp is None:
        raise not_found(ref)
    if sp.app_id == GRAPH_APP_ID:
        raise BadRequest("Microsoft Graph's service principal cannot be deleted.")
    await store.delete_service_principal(principal.tenant_id, ref)
    return empty_response(request, 204)


_APPS_READ = ((Operation.READ_APPLICATIONS, Target.ANY),)
_APPS_WRITE = ((Operation.WRITE_APPLICATIONS, Target.ANY),)


def _e(method: str, path: str, handler: Any, op: str, summary: str, **more: Any) -> Endpoint:
    read = method == "GET"
    return Endpoint(method, path, handler, op, summary, _APPS_READ if read else _APPS_WRITE, **more)


ENDPOINTS: tuple[Endpoint, ...] = (
    _e(
        "GET",
        "/applications",
        list_applications,
        "applications.list",
        "List the tenant's app registrations",
        response_body=dw.ApplicationCollection,
        query=("$select", "$filter"),
    ),
    _e(
        "POST",
        "/applications",
        create_application,
        "applications.create",
        "Register an application",
        request_body=dw.ApplicationInput,
        response_body=dw.ApplicationBody,
        status=201,
    ),
    _e(
        "GET",
        "/applications/{id}",
        get_application,
        "applications.get",
        "Get an application by object id",
        response_body=dw.ApplicationBody,
        query=("$select",),
    ),
    _e(
        "PATCH",
        "/applications/{id}",
        update_application,
        "applications.update",
        "Change some of an application's properties",
        request_body=dw.ApplicationInput,
        status=204,
    ),
    _e(
        "DELETE",
        "/applications/{id}",
        delete_application,
        "applications.delete",
        "Delete an application and its service principals",
        status=204,
    ),
    _e(
        "POST",
        "/applications/{id}/addPassword",
        add_password,
        "applications.addPassword",
        "Add a client secret; its text is shown only in this answer",
        request_body=dw.AddPasswordInput,
        response_body=dw.PasswordCredential,
    ),
    _e(
        "POST",
        "/applications/{id}/removePassword",
        remove_password,
        "applications.removePassword",
        "Remove a client secret",
        request_body=dw.RemovePasswordInput,
        status=204,
    ),
    _e(
        "GET",
        "/servicePrincipals",
        list_service_principals,
        "servicePrincipals.list",
        "List the tenant's service principals",
        response_body=dw.ServicePrincipalCollection,
        query=("$select", "$filter"),
    ),
    _e(
        "POST",
        "/servicePrincipals",
        create_service_principal,
        "servicePrincipals.create",
        "Create an application's service principal in this tenant",
        request_body=dw.ServicePrincipalInput,
        response_body=dw.ServicePrincipalBody,
        status=201,
    ),
    _e(
        "GET",
        "/servicePrincipals/{id}",
        get_service_principal,
        "servicePrincipals.get",
        "Get a service principal by object id",
        response_body=dw.ServicePrincipalBody,
        query=("$select",),
    ),
    _e(
        "GET",
        "/servicePrincipals(appId='{app_id}')",
        get_service_principal_by_app_id,
        "servicePrincipals.getByAppId",
        "Get the service principal of an application id",
        response_body=dw.ServicePrincipalBody,
        query=("$select",),
    ),
    _e(
        "DELETE",
        "/servicePrincipals/{id}",
        delete_service_principal,
        "servicePrincipals.delete",
        "Delete a service principal (and its grants and assignments)",
        status=204,
    ),
    *directory_consent.ENDPOINTS,
)
