"""Who granted what: a tenant's consents as people see and revoke them, and what an app registration asks for.

An administrator sees and revokes every grant of the tenant: delegated grants (for everyone or
for one user) and application permissions. Anyone else sees and revokes only the consents they
gave for themselves; asking to revoke anything else is answered as if it did not exist. Revoking
deletes the grant, and grants are read at every token request, so the next token or refresh
that needed it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from presenced.errors import Forbidden, ResourceNotFound
from presenced.services.entities import (
    Account,
    Application,
    AppRoleAssignment,
    PermissionGrant,
    RequiredAccess,
    ServicePrincipal,
)
from presenced.services.identity import IdentityService, Resource
from presenced.services.ports import IdentityStore


@dataclass(frozen=True, slots=True)
class DelegatedConsent:
    grant: PermissionGrant
    resource_name: str
    #: The user a ``Principal`` grant is for; None for admin consent for all users.
    user: Account | None
    #: Who consented, when known and still in the directory (see ``grant.granted_by``).
    granted_by: Account | None


@dataclass(frozen=True, slots=True)
class ApplicationConsent:
    assignment: AppRoleAssignment
    resource_name: str
    #: The permission's value (``Presence.Read.All``), or its id if the resource no longer has it.
    permission: str
    granted_by: Account | None


@dataclass(frozen=True, slots=True)
class ClientConsents:
    """Everything one app (its service principal in the tenant) has been granted."""

    client: ServicePrincipal
    delegated: tuple[DelegatedConsent, ...]
    application: tuple[ApplicationConsent, ...]


@dataclass(frozen=True, slots=True)
class RequestedPermission:
    """A permission a registration asks for, and whether the tenant has granted it for everyone."""

    access: RequiredAccess
    resource_name: str
    #: The permission's value, or its id when the resource does not have it (any more).
    value: str
    display_name: str
    admin_consent_required: bool
    granted: bool

    @property
    def delegated(self) -> bool:
        return self.access.type == "Scope"


class Consents:
    def __init__(self, identity: IdentityService, store: IdentityStore) -> None:
        self.identity = identity
        self.store = store

    async def overview(self, viewer: Account) -> list[ClientConsents]:
        """The grants ``viewer`` may see (all of the tenant's for an administrator), by app."""
        tenant_id = viewer.user.tenant_id
        if viewer.is_admin:
            grants = await self.store.list_grants(tenant_id)
            assignments = await self.store.list_assignments(tenant_id)
            accounts = {a.user.id: a for a in await self.store.list_accounts(tenant_id)}
        else:
            grants = [
                g
                for g in await self.store.list_grants(tenant_id, principal_id=viewer.user.id)
                if g.consent_type == "Principal"
            ]
            assignments = []
            accounts = {viewer.user.id: viewer}
            for granter_id in {g.granted_by for g in grants if g.granted_by is not None} - {viewer.user.id}:
                found = await self.store.find_account(tenant_id, granter_id)
                if found is not None:
                    accounts[granter_id] = found
        principals = {sp.id: sp for sp in await self.store.list_service_principals(tenant_id)}
        resources: dict[str, Resource | None] = {}

        async def role_value(assignment: AppRoleAssignment) -> tuple[str, str]:
            sp = principals.get(assignment.resource_id)
            if sp is None:
                return "", assignment.app_role_id
            if sp.id not in resources:
                resources[sp.id] = await self.identity.resource_by_app_id(tenant_id, sp.app_id)
            resource = resources[sp.id]
            role = None if resource is None else resource.role_by_id(assignment.app_role_id)
            return sp.display_name, assignment.app_role_id if role is None else role.value

        delegated: dict[str, list[DelegatedConsent]] = {}
        for g in grants:
            resource_name = principals[g.resource_id].display_name if g.resource_id in principals else ""
            user = None if g.principal_id is None else accounts.get(g.principal_id)
            granter = None if g.granted_by is None else accounts.get(g.granted_by)
            delegated.setdefault(g.client_id, []).append(DelegatedConsent(g, resource_name, user, granter))
        application: dict[str, list[ApplicationConsent]] = {}
        for a in assignments:
            resource_name, value = await role_value(a)
            granter = None if a.granted_by is None else accounts.get(a.granted_by)
            application.setdefault(a.principal_id, []).append(ApplicationConsent(a, resource_name, value, granter))
        clients = [principals[i] for i in {*delegated, *application} if i in principals]
        return [
            ClientConsents(sp, tuple(delegated.get(sp.id, ())), tuple(application.get(sp.id, ())))
            for sp in sorted(clients, key=lambda sp: (sp.display_name.lower(), sp.id))
        ]

    async def revoke_grant(self, viewer: Account, grant_id: str) -> PermissionGrant:
        """Revoke a delegated grant: any of the tenant's for an administrator, else only the viewer's own."""
        tenant_id = viewer.user.tenant_id
        grant = await self.store.get_grant(tenant_id, grant_id)
        own = grant is not None and grant.consent_type == "Principal" and grant.principal_id == viewer.user.id
        if grant is None or not (viewer.is_admin or own):
            raise ResourceNotFound("That permission grant does not exist, or is not yours to revoke.")
        await self.identity.revoke_grant(tenant_id, grant.id)
        return grant

    async def revoke_assignment(self, viewer: Account, assignment_id: str) -> AppRoleAssignment:
        """Remove an application permission (administrators only)."""
        if not viewer.is_admin:
            raise Forbidden("Only an administrator can revoke an app's application permissions.")
        tenant_id = viewer.user.tenant_id
        assignment = await self.store.get_assignment(tenant_id, assignment_id)
        if assignment is None:
            raise ResourceNotFound("That application permission does not exist (any more).")
        await self.identity.revoke_assignment(tenant_id, None, assignment.id)
        return assignment

    # ---- an app registration's admin consent ----

    async def requested(self, tenant_id: str, app: Application) -> list[RequestedPermission]:
        """What the registration asks for, each marked granted or not for the tenant as a whole."""
        listed = []
        # Per resource: the resource, and its delegated and application permissions granted to the app.
        seen: dict[str, tuple[Resource | None, set[str], set[str]]] = {}
        for access in app.required_resource_access:
            if access.resource_app_id not in seen:
                resource = await self.identity.resource_by_app_id(tenant_id, access.resource_app_id)
                scopes: set[str] = set()
                roles: set[str] = set()
                if resource is not None:
                    scopes, roles = await self.identity.tenant_wide_grants(tenant_id, app, resource)
                seen[access.resource_app_id] = (resource, scopes, roles)
            resource, scopes, roles = seen[access.resource_app_id]
            delegated = access.type == "Scope"
            found = None
            if resource is not None:
                found = (resource.scope_by_id if delegated else resource.role_by_id)(access.permission_id)
            if resource is None or found is None:
                name = access.resource_app_id if resource is None else resource.display_name
                unknown = RequestedPermission(access, name, access.permission_id, "Unknown permission", True, False)
                listed.append(unknown)
                continue
            granted = found.value in (scopes if delegated else roles)
            name, required = resource.display_name, found.admin_consent_required
            listed.append(RequestedPermission(access, name, found.value, found.display_name, required, granted))
        return listed
