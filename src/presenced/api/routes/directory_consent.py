"""The Graph management API, continued: delegated permission grants, app role assignments, users, ``/me``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from presenced.api.endpoints import Endpoint
from presenced.api.http import empty_response, json_body
from presenced.api.routes import directory_wire as dw
from presenced.api.routes.directory_http import actor, directory, many, now, one
from presenced.auth.policy import Operation, Target
from presenced.errors import BadRequest

# ---- oauth2PermissionGrants ----


async def list_grants(request: Request) -> Response:
    grants = await directory(request).list_grants(await actor(request))
    return many(
        request,
        [dw.grant(g) for g in grants],
        dw.GrantBody,
        "oauth2PermissionGrants",
        frozenset({"id", "clientId", "consentType", "principalId", "resourceId"}),
    )


async def create_grant(request: Request) -> Response:
    who = await actor(request)
    body = await json_body(request, dw.GrantInput)
    user_id = None if body.principalId is None else str(body.principalId)
    grant = await directory(request).create_grant(
        who, str(body.clientId), str(body.resourceId), body.consentType, user_id, body.scope, now(request)
    )
    return one(request, dw.grant(grant), "oauth2PermissionGrants/$entity", 201)


async def get_grant(request: Request) -> Response:
    grant = await directory(request).grant(await actor(request), request.path_params["id"])
    return one(request, dw.grant(grant), "oauth2PermissionGrants/$entity")


async def update_grant(request: Request) -> Response:
    who = await actor(request)
    body = await json_body(request, dw.GrantPatch)
    await directory(request).update_grant(who, request.path_params["id"], body.scope, now(request))
    return empty_response(request, 204)


async def delete_grant(request: Request) -> Response:
    await directory(request).delete_grant(await actor(request), request.path_params["id"])
    return empty_response(request, 204)


# ---- appRoleAssignments ----


async def list_assignments(request: Request) -> Response:
    sp, held = await directory(request).list_assignments(await actor(request), request.path_params["id"])
    items = [dw.assignment(a, sp.display_name, resource_name) for a, resource_name in held]
    path = f"servicePrincipals('{sp.id}')/appRoleAssignments"
    return many(request, items, dw.AssignmentBody, path, frozenset({"id", "resourceId", "appRoleId"}))


async def create_assignment(request: Request) -> Response:
    who = await actor(request)
    body = await json_body(request, dw.AssignmentInput)
    sp, resource_sp, assignment = await directory(request).create_assignment(
        who, request.path_params["id"], str(body.principalId), str(body.resourceId), str(body.appRoleId), now(request)
    )
    body_out = dw.assignment(assignment, sp.display_name, resource_sp.display_name)
    return one(request, body_out, f"servicePrincipals('{sp.id}')/appRoleAssignments/$entity", 201)


async def delete_assignment(request: Request) -> Response:
    path = request.path_params
    await directory(request).delete_assignment(await actor(request), path["id"], path["assignment_id"])
    return empty_response(request, 204)


# ---- users ----


async def create_user(request: Request) -> Response:
    who = await actor(request)
    body = await json_body(request, dw.UserInput)
    if not body.accountEnabled:
        raise BadRequest("accountEnabled: disabled accounts are not supported; create the user enabled.")
    account = await directory(request).create_user(
        who,
        body.userPrincipalName,
        body.displayName,
        body.passwordProfile.password,
        now(request),
        given_name=body.givenName,
        surname=body.surname,
        mail=body.mail,
    )
    return one(request, dw.user(account), "users/$entity", 201)


async def get_user(request: Request) -> Response:
    account = await directory(request).user(await actor(request), request.path_params["id"])
    return one(request, dw.user(account), "users/$entity")


async def delete_user(request: Request) -> Response:
    await directory(request).delete_user(await actor(request), request.path_params["id"])
    return empty_response(request, 204)


async def get_me(request: Request) -> Response:
    return one(request, dw.user(await directory(request).me(await actor(request))), "users/$entity")


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
