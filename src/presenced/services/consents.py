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

    @property
    def registered_here(self) -> bool:
        """Whether the app is registered in this tenant (its registration has a page here)."""
        return self.client.app_owner_tenant_id == self.client.tenant_id


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


@dataclass(frozen=True, slots=True)
class HeldPermission:
    """A permission an app holds in the tenant, whether or not its registration still asks for it."""

    resource_name: str
    value: str
    delegated: bool
    #: For a delegated permission: the users who consented to it for themselves (empty for admin consent).
    user_ids: tuple[str, ...] = ()

    @property
    def admin_consent(self) -> bool:
        return not self.delegated or not self.user_ids


@dataclass(frozen=True, slots=True)
class AppPermissions:
    """An app registration's permissions in its tenant: what it asks for, marked granted for everyone or not,
    and what it holds (admin consent, application permissions, users' own consents)."""

    service_principal: ServicePrincipal | None
    requested: tuple[RequestedPermission, ...]
    held: tuple[HeldPermission, ...]


class Consents:
    def __init__(self, identity: IdentityService, store: IdentityStore) -> None:
        self.identity = identity
        self.store = store

    async def overview(self, viewer: Account, *, own: bool = False) -> list[ClientConsents]:
        """The grants ``viewer`` may see (all of the tenant's for an administrator, unless ``own``: then,
        as for anyone else, the consents they gave for themselves), by app.

        Each kind of thing is read once: the grants, the assignments, the people named, the service principals.
        """
        tenant_id = viewer.user.tenant_id
        if viewer.is_admin and not own:
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
            if {g.granted_by for g in grants if g.granted_by is not None} - {viewer.user.id}:
                accounts = {a.user.id: a for a in await self.store.list_accounts(tenant_id)} | accounts
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

    async def revoke_grant(self, viewer: Account, grant_id: str, *, own: bool = False) -> PermissionGrant:
        """Revoke a delegated grant: any of the tenant's for an administrator (unless ``own``), else only the
        viewer's own consent."""
        tenant_id = viewer.user.tenant_id
        grant = await self.store.get_grant(tenant_id, grant_id)
        theirs = grant is not None and grant.consent_type == "Principal" and grant.principal_id == viewer.user.id
        if grant is None or not ((viewer.is_admin and not own) or theirs):
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
        return list((await self.of_app(tenant_id, app)).requested)

    async def of_app(self, tenant_id: str, app: Application) -> AppPermissions:
        """The registration's permissions in ``tenant_id``: its service principal, its grants and its
        application permissions are each read once, whatever the number of permissions."""
        sp = await self.store.find_service_principal(tenant_id, app.app_id)
        grants = [] if sp is None else await self.store.list_grants(tenant_id, client_id=sp.id)
        assignments = [] if sp is None else await self.store.list_assignments(tenant_id, sp.id)
        # Per resource (by its app id): the resource and its service principal's id in the tenant.
        resources: dict[str, tuple[Resource | None, str | None]] = {}
        by_principal: dict[str, Resource | None] = {}

        async def resource_of(resource_app_id: str) -> tuple[Resource | None, str | None]:
            if resource_app_id not in resources:
                resource = await self.identity.resource_by_app_id(tenant_id, resource_app_id)
                principal_id = (
                    None if resource is None else await self.identity.resource_principal_id(tenant_id, resource)
                )
                resources[resource_app_id] = (resource, principal_id)
                if principal_id is not None:
                    by_principal[principal_id] = resource
            return resources[resource_app_id]

        async def resource_at(principal_id: str) -> Resource | None:
            if principal_id not in by_principal:
                found = await self.store.get_service_principal(tenant_id, principal_id)
                by_principal[principal_id] = None if found is None else (await resource_of(found.app_id))[0]
            return by_principal[principal_id]

        listed = []
        for access in app.required_resource_access:
            resource, principal_id = await resource_of(access.resource_app_id)
            delegated = access.type == "Scope"
            found = None
            if resource is not None:
                found = (resource.scope_by_id if delegated else resource.role_by_id)(access.permission_id)
            if resource is None or found is None:
                name = access.resource_app_id if resource is None else resource.display_name
                listed.append(
                    RequestedPermission(access, name, access.permission_id, "Unknown permission", True, False)
                )
                continue
            if delegated:
                granted = any(
                    g.consent_type == "AllPrincipals" and g.resource_id == principal_id and found.value in g.scopes
                    for g in grants
                )
            else:
                granted = any(a.resource_id == principal_id and a.app_role_id == found.id for a in assignments)
            name, required = resource.display_name, found.admin_consent_required
            listed.append(RequestedPermission(access, name, found.value, found.display_name, required, granted))
        held: list[HeldPermission] = []
        users: dict[tuple[str, str], list[str]] = {}
        for grant in grants:
            resource = await resource_at(grant.resource_id)
            name = grant.resource_id if resource is None else resource.display_name
            for scope in grant.scopes:
                if grant.principal_id is None:
                    held.append(HeldPermission(name, scope, True))
                else:
                    users.setdefault((name, scope), []).append(grant.principal_id)
        held.extend(HeldPermission(name, scope, True, tuple(ids)) for (name, scope), ids in users.items())
        for assignment in assignments:
            resource = await resource_at(assignment.resource_id)
            role = None if resource is None else resource.role_by_id(assignment.app_role_id)
            name = assignment.resource_id if resource is None else resource.display_name
            held.append(HeldPermission(name, assignment.app_role_id if role is None else role.value, False))
        return AppPermissions(sp, tuple(listed), tuple(held))
