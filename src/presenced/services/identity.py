"""The directory and consent: tenants, users, app registrations, grants (docs/identity.md:
"The directory", "Consent").

Grants attach to service principals (an app's instance in one tenant), as in
Entra: a delegated grant (``oAuth2PermissionGrant``) lets a client use some of
a resource's delegated permissions for everyone (``AllPrincipals``, admin
consent) or for one user (``Principal``); an app role assignment gives a client
one application permission. What a token may carry is computed here, from the
grants as they are at that moment, so a revoked grant stops new tokens at once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from presenced.auth.operations import Operation, Target
from presenced.auth.permissions import (
    CATALOG,
    GRAPH_APP_ID,
    GRAPH_DISPLAY_NAME,
    GRAPH_RESOURCE,
    PermissionKind,
    allowing,
)
from presenced.errors import BadRequest, Conflict, ResourceNotFound
from presenced.services import registrations
from presenced.services.credentials import digest, new_client_secret
from presenced.services.entities import (
    Account,
    Application,
    AppRoleAssignment,
    ClientSecret,
    PermissionGrant,
    RequiredAccess,
    ServicePrincipal,
    Subscription,
    Tenant,
    User,
)
from presenced.services.loops import repeat
from presenced.services.ports import IdentityStore, SecretHasher

log = logging.getLogger("presenced.identity")

#: The longest a client secret may live, as Entra allows (two years is its portal's maximum choice).
MAX_SECRET_LIFETIME = timedelta(days=730)
DEFAULT_SECRET_LIFETIME = timedelta(days=180)


@dataclass(frozen=True, slots=True)
class ResourcePermission:
    id: str
    value: str
    admin_consent_required: bool
    display_name: str
    description: str
    user_display_name: str | None
    user_description: str | None


@dataclass(frozen=True, slots=True)
class Resource:
    """An API that tokens can be issued for: Microsoft Graph, or an app registration exposing scopes."""

    app_id: str
    display_name: str
    #: The identifiers a scope may name it by (``https://graph.microsoft.com``, ``api://…``, the app id).
    identifiers: tuple[str, ...]
    scopes: dict[str, ResourcePermission]
    roles: dict[str, ResourcePermission]

    def scope_by_id(self, permission_id: str) -> ResourcePermission | None:
        return next((p for p in self.scopes.values() if p.id == permission_id), None)

    def role_by_id(self, permission_id: str) -> ResourcePermission | None:
        return next((p for p in self.roles.values() if p.id == permission_id), None)


def _graph_permission(kind: PermissionKind) -> dict[str, ResourcePermission]:
    return {
        p.value: ResourcePermission(
            p.id,
            p.value,
            p.admin_consent_required,
            p.admin_display_name,
            p.admin_description,
            p.user_display_name,
            p.user_description,
        )
        for p in CATALOG
        if p.kind is kind
    }


GRAPH = Resource(
    GRAPH_APP_ID,
    GRAPH_DISPLAY_NAME,
    (GRAPH_RESOURCE, GRAPH_APP_ID),
    _graph_permission(PermissionKind.DELEGATED),
    _graph_permission(PermissionKind.APPLICATION),
)


_GRAPH_IDENTIFIERS = frozenset(i.lower() for i in GRAPH.identifiers)


def api_resource(app: Application) -> Resource:
    """The API an app registration exposes (delegated scopes only)."""
    scopes = {
        s.value: ResourcePermission(
            s.id,
            s.value,
            s.type == "Admin",
            s.admin_consent_display_name,
            s.admin_consent_description,
            s.user_consent_display_name,
            s.user_consent_description,
        )
        for s in app.api_scopes
    }
    return Resource(app.app_id, app.display_name, (*app.identifier_uris, app.app_id), scopes, {})


@dataclass(frozen=True, slots=True)
class NewSecret:
    """A client secret just added: ``text`` is shown this once and never stored."""

    secret: ClientSecret
    text: str


class IdentityService:
    def __init__(self, store: IdentityStore, hasher: SecretHasher) -> None:
        self._store = store
        self.hasher = hasher

    async def list_tenants(self) -> list[Tenant]:
        """Every tenant of the server (its operator's view: the command line, the start-up message)."""
        return await self._store.list_tenants()

    # ---- tenants and users ----

    async def create_tenant(self, display_name: str, now: datetime, tenant_id: str | None = None) -> Tenant:
        tenant = Tenant(tenant_id or str(uuid.uuid4()), display_name)
        await self._store.create_tenant(tenant, now)
        await self.graph_principal(tenant.id, now)
        return tenant

    async def require_tenant(self, tenant_id: str) -> Tenant:
        tenant = await self._store.get_tenant(tenant_id)
        if tenant is None:
            raise ResourceNotFound(f"Tenant '{tenant_id}' does not exist.")
        return tenant

    async def create_user(
        self,
        tenant_id: str,
        user_principal_name: str,
        display_name: str,
        password: str | None,
        now: datetime,
        *,
        is_admin: bool = False,
        user_id: str | None = None,
        given_name: str | None = None,
        surname: str | None = None,
        mail: str | None = None,
    ) -> Account:
        await self.require_tenant(tenant_id)
        if "@" not in user_principal_name or user_principal_name.startswith("@"):
            raise BadRequest("userPrincipalName must be of the form alias@domain.")
        if password is not None and len(password) < 8:
            raise BadRequest("passwordProfile.password must be at least 8 characters long.")
        # UPNs are unique across tenants, as in Entra: sign-in on common/organizations finds users by it.
        existing = await self._store.find_account(tenant_id, user_principal_name) or await self._store.find_account(
            None, user_principal_name
        )
        if existing is not None and existing.user.id != user_id:
            raise Conflict("Another object with the same value for property userPrincipalName already exists.")
        user = User(user_id or str(uuid.uuid4()), tenant_id, user_principal_name, display_name)
        password_hash = None if password is None else self.hasher.hash_password(password)
        account = Account(user, password_hash, is_admin, given_name, surname, mail)
        await self._store.create_account(account, now)
        return account

    async def set_profile(self, user_id: str, given_name: str | None, surname: str | None, mail: str | None) -> None:
        await self._store.set_profile(user_id, given_name, surname, mail)

    async def set_password_hash(self, user_id: str, password_hash: str, is_admin: bool) -> None:
        """Give a user a password already hashed (the demo's, hashed once per process)."""
        await self._store.set_password(user_id, password_hash, is_admin)

    async def set_password(self, tenant_id: str, ref: str, password: str, is_admin: bool | None = None) -> Account:
        account = await self._store.find_account(tenant_id, ref)
        if account is None:
            raise ResourceNotFound(f"User '{ref}' does not exist in tenant '{tenant_id}'.")
        if len(password) < 8:
            raise BadRequest("The password must be at least 8 characters long.")
        await self._store.set_password(account.user.id, self.hasher.hash_password(password), is_admin)
        return account

    # ---- applications ----

    async def register_application(self, app: Application, now: datetime) -> Application:
        """Store a new registration and create its service principal in its home tenant."""
        await self.require_tenant(app.tenant_id)
        await self.validate_application(app)
        if await self._store.find_application(app.app_id) is not None:
            raise Conflict(f"An application with appId '{app.app_id}' already exists.")
        await self._store.save_application(app)
        await self._store.ensure_service_principal(
            ServicePrincipal(str(uuid.uuid4()), app.tenant_id, app.app_id, app.display_name, app.tenant_id), now
        )
        return app

    async def update_application(self, app: Application) -> Application:
        await self.validate_application(app)
        await self._store.save_application(app)
        return app

    async def validate_application(self, app: Application) -> None:
        """The registration's own rules, and no identifier URI that another app of the tenant has."""
        registrations.validate(app)
        keys = {u.rstrip("/").lower() for u in app.identifier_uris}
        if not keys:
            return
        for other in await self._store.list_applications(app.tenant_id):
            if other.id != app.id and keys & {u.rstrip("/").lower() for u in other.identifier_uris}:
                raise BadRequest("identifierUris: another application already uses one of these identifier URIs.")

    async def reset_application(self, app: Application, now: datetime) -> Application:
        """Register ``app`` afresh: an earlier registration with its id goes, with its secrets and consents."""
        if await self._store.get_application(app.tenant_id, app.id) is not None:
            await self._store.delete_application(app.tenant_id, app.id)
        return await self.register_application(app, now)

    async def require_application(self, tenant_id: str, object_id: str) -> Application:
        app = await self._store.get_application(tenant_id, object_id)
        if app is None:
            raise ResourceNotFound(
                f"Resource '{object_id}' does not exist or one of its queried "
                "reference-property objects are not present."
            )
        return app

    async def add_password(
        self, app: Application, display_name: str | None, now: datetime, end: datetime | None = None
    ) -> NewSecret:
        end = end or now + DEFAULT_SECRET_LIFETIME
        if end <= now:
            raise BadRequest("endDateTime must be in the future.")
        if end - now > MAX_SECRET_LIFETIME:
            raise BadRequest("endDateTime must be at most two years after startDateTime.")
        text = new_client_secret()
        secret = ClientSecret(str(uuid.uuid4()), display_name, text[:3], digest(text), now, end)
        await self._store.add_secret(app.id, secret)
        return NewSecret(secret, text)

    async def remove_password(self, app: Application, key_id: str) -> None:
        if not await self._store.remove_secret(app.id, key_id):
            raise ResourceNotFound(f"The application has no password credential with keyId '{key_id[:64]}'.")

    async def delete_application(self, tenant_id: str, object_id: str) -> None:
        """Delete the registration with its service principals, their grants and its refresh tokens."""
        if not await self._store.delete_application(tenant_id, object_id):
            raise ResourceNotFound(
                f"Resource '{object_id[:64]}' does not exist or one of its queried "
                "reference-property objects are not present."
            )

    # ---- service principals ----

    async def graph_principal(self, tenant_id: str, now: datetime) -> ServicePrincipal:
        """Graph's service principal in the tenant, created on first use (its id is derived from the tenant's)."""
        return await self._store.ensure_service_principal(
            ServicePrincipal(graph_principal_id(tenant_id), tenant_id, GRAPH_APP_ID, GRAPH_DISPLAY_NAME, None), now
        )

    async def resource_principal_id(self, tenant_id: str, resource: Resource) -> str | None:
        """For reading grants: the resource's service principal id, without creating anything."""
        if resource.app_id == GRAPH_APP_ID:
            return graph_principal_id(tenant_id)
        found = await self._store.find_service_principal(tenant_id, resource.app_id)
        return None if found is None else found.id

    async def client_principal(self, tenant_id: str, app: Application, now: datetime) -> ServicePrincipal:
        """The app's service principal in ``tenant_id``, created on first use (as consent does in Entra)."""
        return await self._store.ensure_service_principal(
            ServicePrincipal(str(uuid.uuid4()), tenant_id, app.app_id, app.display_name, app.tenant_id), now
        )

    async def resource_principal(self, tenant_id: str, resource: Resource, now: datetime) -> ServicePrincipal:
        if resource.app_id == GRAPH_APP_ID:
            return await self.graph_principal(tenant_id, now)
        found = await self._store.find_service_principal(tenant_id, resource.app_id)
        if found is None:
            raise ResourceNotFound(
                f"The resource '{resource.app_id}' has no service principal in tenant '{tenant_id}'."
            )
        return found

    async def find_resource(self, tenant_id: str, identifier: str) -> Resource | None:
        """The resource a scope's prefix names: Graph, or an app of the tenant by identifier URI or app id."""
        lowered = identifier.rstrip("/").lower()
        if lowered in _GRAPH_IDENTIFIERS:
            return GRAPH
        for app in await self._store.list_applications(tenant_id):
            if lowered in {i.rstrip("/").lower() for i in (*app.identifier_uris, app.app_id)}:
                return api_resource(app)
        return None

    async def resource_by_app_id(self, tenant_id: str, app_id: str) -> Resource | None:
        if app_id == GRAPH_APP_ID:
            return GRAPH
        app = await self._store.find_application(app_id)
        return None if app is None else api_resource(app)

    # ---- consent ----

    async def granted_scopes(
        self, tenant_id: str, client: Application, resource: Resource, user_id: str | None
    ) -> set[str]:
        """The delegated permissions of ``resource`` that ``client`` may use for the user."""
        client_sp = await self._store.find_service_principal(tenant_id, client.app_id)
        resource_sp_id = await self.resource_principal_id(tenant_id, resource)
        if client_sp is None or resource_sp_id is None:
            return set()
        grants = await self._store.grants_for(client_sp.id, resource_sp_id, user_id)
        return {scope for grant in grants for scope in grant.scopes}

    async def granted_roles(
        self, tenant_id: str, client: Application, resource: Resource
    ) -> tuple[ServicePrincipal | None, set[str]]:
        """The client's service principal in the tenant, and the application permissions of ``resource``
        assigned to it."""
        client_sp = await self._store.find_service_principal(tenant_id, client.app_id)
        resource_sp_id = await self.resource_principal_id(tenant_id, resource)
        if client_sp is None or resource_sp_id is None:
            return client_sp, set()
        return client_sp, await self._roles(tenant_id, client_sp.id, resource_sp_id, resource)

    async def _roles(self, tenant_id: str, client_sp_id: str, resource_sp_id: str, resource: Resource) -> set[str]:
        roles = set()
        for assignment in await self._store.list_assignments(tenant_id, client_sp_id):
            if assignment.resource_id == resource_sp_id:
                role = resource.role_by_id(assignment.app_role_id)
                if role is not None:
                    roles.add(role.value)
        return roles

    async def tenant_wide_grants(
        self, tenant_id: str, client: Application, resource: Resource
    ) -> tuple[set[str], set[str]]:
        """What ``client`` holds of ``resource`` for the whole tenant: the delegated permissions granted for
        all users, and the application permissions; each service principal is looked up once."""
        client_sp = await self._store.find_service_principal(tenant_id, client.app_id)
        resource_sp_id = await self.resource_principal_id(tenant_id, resource)
        if client_sp is None or resource_sp_id is None:
            return set(), set()
        grants = await self._store.grants_for(client_sp.id, resource_sp_id, None)
        scopes = {scope for grant in grants for scope in grant.scopes}
        return scopes, await self._roles(tenant_id, client_sp.id, resource_sp_id, resource)

    # ``granted_by`` is the signed-in person consenting (the user, or an administrator); None when no
    # person is (the CLI, the demo data, an app calling the directory API as itself).

    async def consent_for_user(
        self,
        tenant_id: str,
        client: Application,
        resource: Resource,
        user_id: str,
        scopes: set[str],
        now: datetime,
        *,
        granted_by: str | None = None,
    ) -> PermissionGrant:
        """Record (or widen) the user's own delegated grant to ``client``."""
        return await self._grant(tenant_id, client, resource, user_id, scopes, now, granted_by)

    async def consent_for_all(
        self,
        tenant_id: str,
        client: Application,
        resource: Resource,
        scopes: set[str],
        now: datetime,
        *,
        granted_by: str | None = None,
    ) -> PermissionGrant:
        return await self._grant(tenant_id, client, resource, None, scopes, now, granted_by)

    async def _grant(
        self,
        tenant_id: str,
        client: Application,
        resource: Resource,
        user_id: str | None,
        scopes: set[str],
        now: datetime,
        granted_by: str | None,
    ) -> PermissionGrant:
        client_sp = await self.client_principal(tenant_id, client, now)
        resource_sp = await self.resource_principal(tenant_id, resource, now)
        consent_type = "AllPrincipals" if user_id is None else "Principal"
        # The same consent twice is one grant (its id is derived), widened in the store's transaction.
        grant = PermissionGrant(
            grant_id(client_sp.id, resource_sp.id, user_id),
            tenant_id,
            client_sp.id,
            consent_type,
            user_id,
            resource_sp.id,
            tuple(sorted(scopes)),
            now,
            granted_by,
            now,
        )
        return await self._store.merge_grant(grant)

    async def assign_role(
        self,
        tenant_id: str,
        client: Application,
        resource: Resource,
        role_value: str,
        now: datetime,
        *,
        granted_by: str | None = None,
    ) -> AppRoleAssignment:
        """Assign the application permission (an existing assignment of it stays as it was)."""
        role = resource.roles.get(role_value)
        if role is None:
            raise BadRequest(f"'{resource.display_name}' has no application permission '{role_value}'.")
        client_sp = await self.client_principal(tenant_id, client, now)
        resource_sp = await self.resource_principal(tenant_id, resource, now)
        assignment = AppRoleAssignment(
            str(uuid.uuid4()), tenant_id, client_sp.id, resource_sp.id, role.id, now, granted_by, now
        )
        return await self._store.add_assignment(assignment)

    async def required_permissions(self, tenant_id: str, client: Application) -> list[ResourcePermission]:
        """Everything the registration's ``requiredResourceAccess`` asks for, delegated and application."""
        listed = []
        for access in client.required_resource_access:
            resource = await self.resource_by_app_id(tenant_id, access.resource_app_id)
            if resource is None:
                continue
            found = resource.scope_by_id(access.permission_id) if access.type == "Scope" else None
            found = found or (resource.role_by_id(access.permission_id) if access.type == "Role" else None)
            if found is not None:
                listed.append(found)
        return listed

    async def grant_admin_consent(
        self, tenant_id: str, client: Application, now: datetime, *, granted_by: str | None = None
    ) -> tuple[list[PermissionGrant], list[AppRoleAssignment]]:
        """Consent, for the whole tenant, to everything the registration's ``requiredResourceAccess`` asks for."""
        by_resource: dict[str, list[RequiredAccess]] = {}
        for access in client.required_resource_access:
            by_resource.setdefault(access.resource_app_id, []).append(access)
        grants, assignments = [], []
        for resource_app_id, wanted in by_resource.items():
            resource = await self.resource_by_app_id(tenant_id, resource_app_id)
            if resource is None:
                raise BadRequest(f"The resource '{resource_app_id}' that the app asks for does not exist.")
            scopes = {p.value for a in wanted if a.type == "Scope" and (p := resource.scope_by_id(a.permission_id))}
            if scopes:
                grants.append(
                    await self.consent_for_all(tenant_id, client, resource, scopes, now, granted_by=granted_by)
                )
            for access in wanted:
                role = resource.role_by_id(access.permission_id) if access.type == "Role" else None
                if role is not None:
                    assignments.append(
                        await self.assign_role(tenant_id, client, resource, role.value, now, granted_by=granted_by)
                    )
        return grants, assignments

    async def purge_forever(self, interval: float, now: Callable[[], datetime]) -> None:
        """Remove expired codes, refresh tokens, device codes and sessions every ``interval`` seconds."""
        await repeat(lambda: self._store.purge_expired(now()), interval, "purging expired sign-in state", log)

    async def kept_subscriptions(self, subscriptions: Sequence[Subscription]) -> list[bool]:
        """For each presence subscription, whether the grant (or user) behind it still stands: one look-up per
        app, and one per app and tenant, however many subscriptions and users share them.

        Apps unknown to the directory hold operator tokens (``presenced token``): nothing to check.
        """
        app_only = allowing((Operation.SUBSCRIBE_PRESENCE, Target.ANY), PermissionKind.APPLICATION)
        delegated = allowing((Operation.SUBSCRIBE_PRESENCE, Target.ANY), PermissionKind.DELEGATED)
        apps: dict[str, Application | None] = {}
        roles: dict[tuple[str, str], set[str]] = {}
        grants: dict[tuple[str, str], list[PermissionGrant]] = {}
        kept = []
        for s in subscriptions:
            if s.app_id not in apps:
                apps[s.app_id] = await self._store.find_application(s.app_id)
            app = apps[s.app_id]
            key = (s.tenant_id, s.app_id)
            if app is None:
                kept.append(True)
            elif not s.delegated:
                if key not in roles:
                    roles[key] = (await self.granted_roles(s.tenant_id, app, GRAPH))[1]
                kept.append(not app_only.isdisjoint(roles[key]))
            elif s.creator_id is None:
                kept.append(False)
            else:
                if key not in grants:
                    grants[key] = await self._graph_grants(s.tenant_id, app)
                scopes = {
                    scope
                    for grant in grants[key]
                    if grant.consent_type == "AllPrincipals" or grant.principal_id == s.creator_id
                    for scope in grant.scopes
                }
                kept.append(not delegated.isdisjoint(scopes))
        return kept

    async def _graph_grants(self, tenant_id: str, client: Application) -> list[PermissionGrant]:
        """Every delegated grant of ``client`` on Graph in the tenant, whoever it is for."""
        client_sp = await self._store.find_service_principal(tenant_id, client.app_id)
        resource_sp_id = await self.resource_principal_id(tenant_id, GRAPH)
        if client_sp is None or resource_sp_id is None:
            return []
        return [g for g in await self._store.list_grants(tenant_id, client_sp.id) if g.resource_id == resource_sp_id]

    async def revoke_grant(self, tenant_id: str, grant_id_: str) -> None:
        # Refresh tokens stay: every refresh checks the grants as they are, so the next one gets
        # consent_required (65001), which tells the app to ask the user again, as Entra does.
        if not await self._store.delete_grant(tenant_id, grant_id_):
            raise ResourceNotFound(f"Permission grant '{grant_id_}' does not exist.")

    async def revoke_assignment(self, tenant_id: str, principal_id: str | None, assignment_id: str) -> None:
        """Remove an application permission (of the service principal ``principal_id``, when given)."""
        found = await self._store.get_assignment(tenant_id, assignment_id)
        if found is None or (principal_id is not None and found.principal_id != principal_id):
            raise ResourceNotFound(f"App role assignment '{assignment_id}' does not exist.")
        await self._store.delete_assignment(tenant_id, assignment_id)


@lru_cache(maxsize=1024)
def graph_principal_id(tenant_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(tenant_id), "graph"))


def grant_id(client_sp_id: str, resource_sp_id: str, user_id: str | None) -> str:
    """Stable ids, so the same consent twice is one grant."""
    return str(uuid.uuid5(uuid.UUID(client_sp_id), f"{resource_sp_id}/{user_id or 'AllPrincipals'}"))
