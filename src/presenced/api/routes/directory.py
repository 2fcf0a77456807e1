"""The Graph management API for automation: applications and service principals (consent and users are in
``directory_consent``); ``ENDPOINTS`` lists the whole directory surface.

Each handler translates HTTP into one call of ``services.directory``, which acts in the caller's
tenant (its token's ``tid``) and decides who may read or change what (directory permissions, and
for delegated callers a directory administrator).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from msgspec import UnsetType
from starlette.requests import Request
from starlette.responses import Response

from presenced.api.endpoints import Endpoint
from presenced.api.http import empty_response, json_body
from presenced.api.routes import directory_consent
from presenced.api.routes import directory_wire as dw
from presenced.api.routes.directory_http import actor, directory, many, now, one
from presenced.auth.policy import Operation, Target
from presenced.errors import BadRequest
from presenced.services.directory import not_found
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


def _patched(app: Application, body: dw.ApplicationInput) -> Application:
    """``app`` with the properties ``body`` sets (the others as they were); the service checks the result."""
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
        changes["identifier_uris"] = tuple(dict.fromkeys(body.identifierUris))
    if not isinstance(body.api, UnsetType) and not isinstance(body.api.oauth2PermissionScopes, UnsetType):
        changes["api_scopes"] = _scopes(body.api.oauth2PermissionScopes)
    return replace(app, **changes)


async def list_applications(request: Request) -> Response:
    apps = await directory(request).list_applications(await actor(request))
    return many(
        request,
        [dw.application(a) for a in apps],
        dw.ApplicationBody,
        "applications",
        frozenset({"id", "appId", "displayName", "signInAudience"}),
    )


async def create_application(request: Request) -> Response:
    who = await actor(request)
    body = await json_body(request, dw.ApplicationInput)
    if isinstance(body.displayName, UnsetType):
        raise BadRequest("displayName is required.")
    at = now(request)
    blank = Application(
        str(uuid.uuid4()), str(uuid.uuid4()), who.tenant_id, "", "AzureADMyOrg", False, (), (), (), (), (), (), at
    )
    app = await directory(request).register_application(who, _patched(blank, body), at)
    return one(request, dw.application(app), "applications/$entity", 201)


async def get_application(request: Request) -> Response:
    app = await directory(request).application(await actor(request), request.path_params["id"])
    return one(request, dw.application(app), "applications/$entity")


async def update_application(request: Request) -> Response:
    who, service = await actor(request), directory(request)
    app = await service.application(who, request.path_params["id"])
    body = await json_body(request, dw.ApplicationInput)
    await service.update_application(who, _patched(app, body))
    return empty_response(request, 204)


async def delete_application(request: Request) -> Response:
    await directory(request).delete_application(await actor(request), request.path_params["id"])
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
    who, service = await actor(request), directory(request)
    app = await service.application(who, request.path_params["id"])
    body = await json_body(request, dw.AddPasswordInput, optional=True)
    wanted = body.passwordCredential or dw.PasswordCredentialInput()
    at = now(request)
    end = _instant(wanted.endDateTime, "endDateTime")
    start = _instant(wanted.startDateTime, "startDateTime")
    if start is not None and start > at + _SKEW:
        raise BadRequest("passwordCredential.startDateTime: a secret starts when it is added; it cannot be later.")
    added = await service.add_password(who, app, wanted.displayName, at, end)
    return one(request, dw.password_credential(added.secret, added.text), "microsoft.graph.passwordCredential")


async def remove_password(request: Request) -> Response:
    who, service = await actor(request), directory(request)
    app = await service.application(who, request.path_params["id"])
    body = await json_body(request, dw.RemovePasswordInput)
    await service.remove_password(who, app, str(body.keyId))
    return empty_response(request, 204)


# ---- service principals ----


async def _sp_body(request: Request, sp: ServicePrincipal) -> dw.ServicePrincipalBody:
    return dw.service_principal(sp, await directory(request).exposed_api(sp))


async def list_service_principals(request: Request) -> Response:
    sps = await directory(request).list_service_principals(await actor(request), now(request))
    return many(
        request,
        [await _sp_body(request, sp) for sp in sps],
        dw.ServicePrincipalBody,
        "servicePrincipals",
        frozenset({"id", "appId", "displayName", "servicePrincipalType"}),
    )


async def get_service_principal(request: Request) -> Response:
    sp = await directory(request).service_principal(await actor(request), request.path_params["id"])
    return one(request, await _sp_body(request, sp), "servicePrincipals/$entity")


async def get_service_principal_by_app_id(request: Request) -> Response:
    raw: str = request.path_params["app_id"]
    sp = await directory(request).service_principal_of(await actor(request), raw, now(request))
    if sp is None:
        raise not_found(f"appId='{raw}'")
    return one(request, await _sp_body(request, sp), "servicePrincipals/$entity")


async def create_service_principal(request: Request) -> Response:
    who = await actor(request)
    body = await json_body(request, dw.ServicePrincipalInput)
    sp = await directory(request).create_service_principal(who, str(body.appId), now(request))
    return one(request, await _sp_body(request, sp), "servicePrincipals/$entity", 201)


async def delete_service_principal(request: Request) -> Response:
    await directory(request).delete_service_principal(await actor(request), request.path_params["id"])
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
