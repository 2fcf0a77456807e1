"""The Graph management API, continued: delegated permission grants, app role assignments, users, ``/me``."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response

from presenced.api.endpoints import Endpoint
from presenced.api.http import empty_response, json_body, principal_of
from presenced.api.routes import directory_wire as dw
from presenced.api.routes.directory_http import caller, guid, identity, many, not_found, now, object_id, one
from presenced.auth.policy import Operation, Target, authorize, require_delegated
from presenced.errors import BadRequest, Conflict, Forbidden, ResourceNotFound
from presenced.services.entities import Account, Application, PermissionGrant, ServicePrincipal
from presenced.services.identity import IdentityService, Resource

# ---- oauth2PermissionGrants ----


async def _principal_in(service: IdentityService, tenant_id: str, ref: str, field: str) -> ServicePrincipal:
    sp = await service.store.get_service_principal(tenant_id, ref)
    if sp is None:
        raise BadRequest(f"{field}: no service principal '{ref}' exists in this tenant.")
    return sp


async def _client_app(service: IdentityService, sp: ServicePrincipal, field: str) -> Application:
    app = await service.store.find_application(sp.app_id)
    if app is None:
        raise BadRequest(f"{field}: service principal '{sp.id}' is not an application's that can be a client.")
    return app


async def _resource(service: IdentityService, sp: ServicePrincipal) -> Resource:
    resource = await service.resource_by_app_id(sp.tenant_id, sp.app_id)
    if resource is None:
        raise BadRequest(f"resourceId: service principal '{sp.id}' exposes no API.")
    return resource


def _scope_values(resource: Resource, raw: str) -> set[str]:
    values = set(raw.split())
    if not values:
        raise BadRequest("scope must name at least one delegated permission.")
    unknown = sorted(values - set(resource.scopes))
    if unknown:
        raise BadRequest(f"scope: '{resource.display_name}' has no delegated permission '{unknown[0][:64]}'.")
    return values


async def list_grants(request: Request) -> Response:
    principal = await caller(request, Operation.READ_APPLICATIONS)
    grants = await identity(request).store.list_grants(principal.tenant_id)
    return many(
        request,
        [dw.grant(g) for g in grants],
        dw.GrantBody,
        "oauth2PermissionGrants",
        frozenset({"id", "clientId", "consentType", "principalId", "resourceId"}),
    )


async def create_grant(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_PERMISSION_GRANTS)
    body = await json_body(request, dw.GrantInput)
    tenant_id, service = principal.tenant_id, identity(request)
    if body.consentType not in {"AllPrincipals", "Principal"}:
        raise BadRequest("consentType must be AllPrincipals or Principal.")
    if (body.consentType == "Principal") != (body.principalId is not None):
        raise BadRequest("principalId is required when consentType is Principal, and only then.")
    client_sp = await _principal_in(service, tenant_id, str(body.clientId), "clientId")
    resource_sp = await _principal_in(service, tenant_id, str(body.resourceId), "resourceId")
    client = await _client_app(service, client_sp, "clientId")
    resource = await _resource(service, resource_sp)
    scopes = _scope_values(resource, body.scope)
    user_id = None if body.principalId is None else str(body.principalId)
    if user_id is not None and await service.store.find_account(tenant_id, user_id) is None:
        raise BadRequest(f"principalId: no user '{user_id}' exists in this tenant.")
    existing = await service.store.grants_for(client_sp.id, resource_sp.id, user_id)
    if any(g.consent_type == body.consentType and g.principal_id == user_id for g in existing):
        raise Conflict("Permission entry already exists; change its scope with PATCH instead.")
    at = now(request)
    by = principal.user_id
    if user_id is None:
        grant = await service.consent_for_all(tenant_id, client, resource, scopes, at, granted_by=by)
    else:
        grant = await service.consent_for_user(tenant_id, client, resource, user_id, scopes, at, granted_by=by)
    return one(request, dw.grant(grant), "oauth2PermissionGrants/$entity", 201)


async def _grant(request: Request, tenant_id: str) -> PermissionGrant:
    ref: str = request.path_params["id"]
    found = guid(ref)
    grant = None if found is None else await identity(request).store.get_grant(tenant_id, found)
    if grant is None:
        raise not_found(ref)
    return grant


async def get_grant(request: Request) -> Response:
    principal = await caller(request, Operation.READ_APPLICATIONS)
    grant = await _grant(request, principal.tenant_id)
    return one(request, dw.grant(grant), "oauth2PermissionGrants/$entity")


async def update_grant(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_PERMISSION_GRANTS)
    grant = await _grant(request, principal.tenant_id)
    body = await json_body(request, dw.GrantPatch)
    service = identity(request)
    resource_sp = await service.store.get_service_principal(principal.tenant_id, grant.resource_id)
    if resource_sp is None:
        raise not_found(grant.id)
    scopes = _scope_values(await _resource(service, resource_sp), body.scope)
    changed = replace(grant, scopes=tuple(sorted(scopes)), granted_by=principal.user_id, granted_at=now(request))
    await service.store.save_grant(changed)
    return empty_response(request, 204)


async def delete_grant(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_PERMISSION_GRANTS)
    grant = await _grant(request, principal.tenant_id)
    await identity(request).revoke_grant(principal.tenant_id, grant.id)
    return empty_response(request, 204)


# ---- appRoleAssignments ----


async def _owner(request: Request, tenant_id: str) -> ServicePrincipal:
    ref = object_id(request)
    sp = await identity(request).store.get_service_principal(tenant_id, ref)
    if sp is None:
        raise not_found(ref)
    return sp


async def list_assignments(request: Request) -> Response:
    principal = await caller(request, Operation.READ_APPLICATIONS)
    sp = await _owner(request, principal.tenant_id)
    store = identity(request).store
    names = {s.id: s.display_name for s in await store.list_service_principals(principal.tenant_id)}
    items = [
        dw.assignment(a, sp.display_name, names.get(a.resource_id, ""))
        for a in await store.list_assignments(principal.tenant_id, sp.id)
    ]
    path = f"servicePrincipals('{sp.id}')/appRoleAssignments"
    return many(request, items, dw.AssignmentBody, path, frozenset({"id", "resourceId", "appRoleId"}))


async def create_assignment(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_APP_ROLE_ASSIGNMENTS)
    sp = await _owner(request, principal.tenant_id)
    body = await json_body(request, dw.AssignmentInput)
    service = identity(request)
    if str(body.principalId) != sp.id:
        raise BadRequest(f"principalId must be the service principal of the path, '{sp.id}'.")
    resource_sp = await _principal_in(service, principal.tenant_id, str(body.resourceId), "resourceId")
    resource = await _resource(service, resource_sp)
    role = resource.role_by_id(str(body.appRoleId))
    if role is None:
        raise BadRequest(f"appRoleId: '{resource.display_name}' has no application permission '{body.appRoleId}'.")
    client = await _client_app(service, sp, "principalId")
    held = await service.store.list_assignments(principal.tenant_id, sp.id)
    if any(a.resource_id == resource_sp.id and a.app_role_id == role.id for a in held):
        raise BadRequest("appRoleId: Permission being assigned already exists on the object.")
    assignment = await service.assign_role(
        principal.tenant_id, client, resource, role.value, now(request), granted_by=principal.user_id
    )
    body_out = dw.assignment(assignment, sp.display_name, resource_sp.display_name)
    return one(request, body_out, f"servicePrincipals('{sp.id}')/appRoleAssignments/$entity", 201)


async def delete_assignment(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_APP_ROLE_ASSIGNMENTS)
    sp = await _owner(request, principal.tenant_id)
    ref = object_id(request, "assignment_id")
    try:
        await identity(request).revoke_assignment(principal.tenant_id, sp.id, ref)
    except ResourceNotFound:
        raise not_found(ref) from None
    return empty_response(request, 204)


# ---- users ----


async def _account(request: Request, tenant_id: str, ref: str) -> Account:
    found = None
    if guid(ref) is not None or "@" in ref:
        found = await identity(request).store.find_account(tenant_id, ref)
    if found is None:
        raise not_found(ref)
    return found


async def list_users(request: Request) -> Response:
    principal = await caller(request, Operation.READ_USERS)
    accounts = await identity(request).store.list_accounts(principal.tenant_id)
    return many(
        request,
        [dw.user(a) for a in accounts],
        dw.UserBody,
        "users",
        frozenset({"id", "displayName", "userPrincipalName"}),
    )


async def create_user(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_USERS)
    body = await json_body(request, dw.UserInput)
    if not body.accountEnabled:
        raise BadRequest("accountEnabled: disabled accounts are not supported; create the user enabled.")
    if not body.displayName.strip():
        raise BadRequest("displayName must not be empty.")
    account = await identity(request).create_user(
        principal.tenant_id, body.userPrincipalName, body.displayName, body.passwordProfile.password, now(request)
    )
    return one(request, dw.user(account), "users/$entity", 201)


async def get_user(request: Request) -> Response:
    principal = await principal_of(request)
    ref: str = request.path_params["id"]
    try:
        authorize(principal, Operation.READ_USERS, Target.ANY)
    except Forbidden as refusal:
        # A user may read their own profile with User.Read, by id or UPN.
        if not principal.is_delegated:
            raise
        try:
            account = await _account(request, principal.tenant_id, ref)
        except ResourceNotFound:
            raise refusal from None
        if not principal.is_self(account.user.id):
            raise
        authorize(principal, Operation.READ_PROFILE, Target.OWN)
        return one(request, dw.user(account), "users/$entity")
    return one(request, dw.user(await _account(request, principal.tenant_id, ref)), "users/$entity")


async def delete_user(request: Request) -> Response:
    principal = await caller(request, Operation.WRITE_USERS)
    account = await _account(request, principal.tenant_id, request.path_params["id"])
    await identity(request).store.delete_user(principal.tenant_id, account.user.id)
    return empty_response(request, 204)


async def get_me(request: Request) -> Response:
    principal = await principal_of(request)
    user_id = require_delegated(principal)
    authorize(principal, Operation.READ_PROFILE, Target.OWN)
    return one(request, dw.user(await _account(request, principal.tenant_id, user_id)), "users/$entity")


_GRANTS = ((Operation.WRITE_PERMISSION_GRANTS, Target.ANY),)
_ASSIGN = ((Operation.WRITE_APP_ROLE_ASSIGNMENTS, Target.ANY),)
_READ = ((Operation.READ_APPLICATIONS, Target.ANY),)
_USERS_READ = ((Operation.READ_USERS, Target.ANY),)
_USERS_WRITE = ((Operation.WRITE_USERS, Target.ANY),)
_PROFILE = ((Operation.READ_PROFILE, Target.OWN),)
_GRANT_PATH = "/oauth2PermissionGrants/{id}"
_ASSIGN_PATH = "/servicePrincipals/{id}/appRoleAssignments"

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/oauth2PermissionGrants",
        list_grants,
        "oauth2PermissionGrants.list",
        "List the tenant's delegated permission grants",
        _READ,
        response_body=dw.GrantCollection,
        query=("$select", "$filter"),
    ),
    Endpoint(
        "POST",
        "/oauth2PermissionGrants",
        create_grant,
        "oauth2PermissionGrants.create",
        "Grant a client delegated permissions of a resource, for everyone or one user",
        _GRANTS,
        request_body=dw.GrantInput,
        response_body=dw.GrantBody,
        status=201,
    ),
    Endpoint(
        "GET",
        _GRANT_PATH,
        get_grant,
        "oauth2PermissionGrants.get",
        "Get a delegated permission grant",
        _READ,
        response_body=dw.GrantBody,
        query=("$select",),
    ),
    Endpoint(
        "PATCH",
        _GRANT_PATH,
        update_grant,
        "oauth2PermissionGrants.update",
        "Replace the permissions of a grant",
        _GRANTS,
        request_body=dw.GrantPatch,
        status=204,
    ),
    Endpoint(
        "DELETE",
        _GRANT_PATH,
        delete_grant,
        "oauth2PermissionGrants.delete",
        "Revoke a grant (and the refresh tokens issued under it)",
        _GRANTS,
        status=204,
    ),
    Endpoint(
        "GET",
        _ASSIGN_PATH,
        list_assignments,
        "servicePrincipals.listAppRoleAssignments",
        "The application permissions assigned to a service principal",
        _READ,
        response_body=dw.AssignmentCollection,
        query=("$select", "$filter"),
    ),
    Endpoint(
        "POST",
        _ASSIGN_PATH,
        create_assignment,
        "servicePrincipals.createAppRoleAssignment",
        "Assign an application permission to a service principal",
        _ASSIGN,
        request_body=dw.AssignmentInput,
        response_body=dw.AssignmentBody,
        status=201,
    ),
    Endpoint(
        "DELETE",
        _ASSIGN_PATH + "/{assignment_id}",
        delete_assignment,
        "servicePrincipals.deleteAppRoleAssignment",
        "Remove an application permission",
        _ASSIGN,
        status=204,
    ),
    Endpoint(
        "GET",
        "/users",
        list_users,
        "users.list",
        "List the tenant's users",
        _USERS_READ,
        response_body=dw.UserCollection,
        query=("$select", "$filter"),
    ),
    Endpoint(
        "POST",
        "/users",
        create_user,
        "users.create",
        "Create a user with a password",
        _USERS_WRITE,
        request_body=dw.UserInput,
        response_body=dw.UserBody,
        status=201,
    ),
    Endpoint(
        "GET",
        "/users/{id}",
        get_user,
        "users.get",
        "Get a user by object id or userPrincipalName",
        _USERS_READ + _PROFILE,
        response_body=dw.UserBody,
        query=("$select",),
    ),
    Endpoint("DELETE", "/users/{id}", delete_user, "users.delete", "Delete a user", _USERS_WRITE, status=204),
    Endpoint(
        "GET",
        "/me",
        get_me,
        "me.get",
        "Get the signed-in user",
        _PROFILE,
        response_body=dw.UserBody,
        query=("$select",),
    ),
)
