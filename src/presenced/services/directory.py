"""The directory as its administrators use it: tenants, users, app registrations, service principals,
delegated permission grants and app role assignments (docs/identity.md: "The directory", "Consent").

Every method takes the ``Actor``, checks that it may do this, and acts in the actor's tenant only. The
Graph API, the portal and the command line translate HTTP, forms and flags into these calls and nothing
more, so each rule and each refusal is the same whichever way it is reached.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from presenced.auth.operations import Operation, Target
from presenced.auth.permissions import GRAPH_APP_ID
from presenced.auth.policy import authorize, target_of
from presenced.auth.principal import Principal
from presenced.errors import BadRequest, Conflict, Forbidden, ImageNotFound, ResourceNotFound
from presenced.services.entities import (
    Account,
    Application,
    AppRoleAssignment,
    PermissionGrant,
    Photo,
    ServicePrincipal,
    Tenant,
    UserPage,
    UserQuery,
)
from presenced.services.identity import IdentityService, NewSecret, Resource
from presenced.services.photos import photo_from_bytes
from presenced.services.ports import IdentityStore

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: What a person signed in to the portal may do without being an administrator: see who is in the
#: organization (the people page), as any member of an Entra directory may.
_ANYONE_SIGNED_IN = frozenset({Operation.READ_USERS_BASIC, Operation.READ_USERS})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts on the directory, in which tenant: a caller with a token (the Graph API), a person signed
    in to the portal, or the operator of the server (the command line), who may do anything."""

    tenant_id: str
    principal: Principal | None = None
    person: Account | None = None

    @classmethod
    def calling(cls, principal: Principal) -> Actor:
        return cls(principal.tenant_id, principal=principal)

    @classmethod
    def signed_in(cls, account: Account) -> Actor:
        return cls(account.user.tenant_id, person=account)

    @classmethod
    def operator(cls, tenant_id: str) -> Actor:
        return cls(tenant_id)

    @property
    def user_id(self) -> str | None:
        """The person acting (recorded as who granted a consent); None for an app or the operator."""
        if self.principal is not None:
            return self.principal.user_id
        return None if self.person is None else self.person.user.id

    def may(self, operation: Operation) -> bool:
        try:
            self.require(operation)
        except Forbidden:
            return False
        return True

    def require(self, operation: Operation) -> None:
        """Raise ``Forbidden`` unless the actor may do ``operation`` on its tenant's directory."""
        if self.principal is not None:
            authorize(self.principal, operation, Target.ANY)
        elif self.person is not None and not self.person.is_admin and operation not in _ANYONE_SIGNED_IN:
            raise Forbidden(f"Only an administrator of the organization may {operation.value}.")


def guid(value: str) -> str | None:
    """``value`` as a lower-case GUID, or None if it is not one."""
    return value.lower() if _GUID.fullmatch(value) else None


def object_id(value: str) -> str:
    """An object id; anything but a GUID is a bad request, as Graph answers."""
    found = guid(value)
    if found is None:
        raise BadRequest(f"Invalid object identifier '{value[:64]}'.")
    return found


def not_found(ref: str) -> ResourceNotFound:
    return ResourceNotFound(
        f"Resource '{ref[:64]}' does not exist or one of its queried reference-property objects are not present."
    )


class DirectoryService:
    def __init__(self, identity: IdentityService, store: IdentityStore) -> None:
        self._identity = identity
        self._store = store
        #: Called with the id of each user deleted, once deleted.
        self.user_removed: list[Callable[[str], None]] = []

    # ---- the tenant ----

    async def tenant(self, actor: Actor) -> Tenant:
        return await self._identity.require_tenant(actor.tenant_id)

    # ---- users ----

    async def list_users(self, actor: Actor) -> list[Account]:
        actor.require(Operation.READ_USERS_BASIC)
        return await self._store.list_accounts(actor.tenant_id)

    async def page_users(self, actor: Actor, query: UserQuery) -> tuple[UserPage, bool]:
        """One page of the tenant's users, and whether the actor may see their full profiles (else the
        basic ones: id, names, mail, user principal name)."""
        actor.require(Operation.READ_USERS_BASIC)
        return await self._store.page_accounts(actor.tenant_id, query), actor.may(Operation.READ_USERS)

    async def count_users(self, actor: Actor, query: UserQuery) -> int:
        actor.require(Operation.READ_USERS_BASIC)
        return await self._store.count_accounts(actor.tenant_id, query)

    async def photo(self, actor: Actor, ref: str | None) -> Photo:
        """The photo of a user (None: the signed-in user); ``ImageNotFound`` when they have none."""
        account = await self._readable(actor, ref)
        photo = await self._store.photo(account.user.id)
        if photo is None:
            raise ImageNotFound("The photo wasn't found.")
        return photo

    async def photo_tags(self, actor: Actor, user_ids: list[str]) -> dict[str, str]:
        """Which of these users of the actor's tenant have a photo, with its etag (the portal's people list)."""
        actor.require(Operation.READ_USERS_BASIC)
        return await self._store.photo_tags(actor.tenant_id, user_ids)

    async def set_photo(self, actor: Actor, ref: str | None, data: bytes, now: datetime) -> Photo:
        """Set the photo of a user (None: the signed-in user): their own, or anyone's for an administrator."""
        account = await self._photo_owner(actor, ref)
        photo = photo_from_bytes(data)
        if not await self._store.put_photo(account.user.id, photo, now):
            raise not_found(ref or account.user.id)
        return photo

    async def delete_photo(self, actor: Actor, ref: str | None) -> None:
        account = await self._photo_owner(actor, ref)
        if not await self._store.delete_photo(account.user.id):
            raise ImageNotFound("The photo wasn't found.")

    async def _photo_owner(self, actor: Actor, ref: str | None) -> Account:
        """The user whose photo the actor would change, once it is clear that it may."""
        principal = actor.principal
        account = await (self.me(actor) if ref is None else self._account(actor, ref))
        if principal is not None:
            authorize(principal, Operation.WRITE_PHOTO, target_of(principal, account.user.id))
        else:
            actor.require(Operation.WRITE_USERS)
        return account

    async def _readable(self, actor: Actor, ref: str | None) -> Account:
        """A user whose profile the actor may read: their own (User.Read), or anyone's (User.ReadBasic.All)."""
        if ref is None:
            return await self.me(actor)
        if actor.may(Operation.READ_USERS_BASIC):
            return await self._account(actor, ref)
        return await self.user(actor, ref)

    async def _account(self, actor: Actor, ref: str) -> Account:
        found = None
        if guid(ref) is not None or "@" in ref:
            found = await self._store.find_account(actor.tenant_id, ref)
        if found is None:
            raise not_found(ref)
        return found

    async def user(self, actor: Actor, ref: str) -> Account:
        """A user by id or user principal name; a signed-in user may read their own profile with User.Read."""
        try:
            actor.require(Operation.READ_USERS_BASIC)
        except Forbidden as refusal:
            principal = actor.principal
            if principal is None or not principal.is_delegated:
                raise
            try:
                account = await self._account(actor, ref)
            except ResourceNotFound:
                raise refusal from None
            if not principal.is_self(account.user.id):
                raise
            authorize(principal, Operation.READ_PROFILE, Target.OWN)
            return account
        return await self._account(actor, ref)

    async def me(self, actor: Actor) -> Account:
        """The signed-in user of a delegated token (``/me``), with User.Read."""
        principal = actor.principal
        if principal is None or principal.user_id is None:
            raise BadRequest("/me request is only valid with delegated authentication flow.")
        authorize(principal, Operation.READ_PROFILE, Target.OWN)
        return await self._account(actor, principal.user_id)

    async def create_user(
        self,
        actor: Actor,
        user_principal_name: str,
        display_name: str,
        password: str | None,
        now: datetime,
        *,
        is_admin: bool = False,
        given_name: str | None = None,
        surname: str | None = None,
        mail: str | None = None,
    ) -> Account:
        actor.require(Operation.WRITE_USERS)
        if not display_name.strip():
            raise BadRequest("displayName must not be empty.")
        if mail is not None and ("@" not in mail or mail.startswith("@") or any(c.isspace() for c in mail)):
            raise BadRequest("mail must be an email address of the form alias@domain.")
        return await self._identity.create_user(
            actor.tenant_id,
            user_principal_name,
            display_name,
            password,
            now,
            is_admin=is_admin,
            given_name=given_name,
            surname=surname,
            mail=mail,
        )

    async def set_password(self, actor: Actor, ref: str, password: str) -> Account:
        actor.require(Operation.WRITE_USERS)
        return await self._identity.set_password(actor.tenant_id, ref, password)

    async def delete_user(self, actor: Actor, ref: str) -> Account:
        """Delete a user by id or user principal name, with their sign-in state."""
        actor.require(Operation.WRITE_USERS)
        account = await self._account(actor, ref)
        await self._store.delete_user(actor.tenant_id, account.user.id)
        for removed in self.user_removed:
            removed(account.user.id)
        return account

    # ---- applications ----

    async def list_applications(self, actor: Actor) -> list[Application]:
        actor.require(Operation.READ_APPLICATIONS)
        return await self._store.list_applications(actor.tenant_id)

    async def application(self, actor: Actor, ref: str) -> Application:
        """A registration of the tenant by object id."""
        actor.require(Operation.READ_APPLICATIONS)
        return await self._identity.require_application(actor.tenant_id, object_id(ref))

    async def application_by_app_id(self, actor: Actor, app_id: str) -> Application | None:
        """A registration of the tenant by application (client) id, or None."""
        actor.require(Operation.READ_APPLICATIONS)
        found = guid(app_id)
        app = None if found is None else await self._store.find_application(found)
        return app if app is not None and app.tenant_id == actor.tenant_id else None

    async def find_application(self, actor: Actor, ref: str) -> Application:
        """A registration of the tenant by application id or object id."""
        found = await self.application_by_app_id(actor, ref)
        if found is None and guid(ref) is not None:
            found = await self._store.get_application(actor.tenant_id, ref.lower())
        if found is None:
            raise ResourceNotFound(f"No application '{ref[:64]}' in tenant {actor.tenant_id}.")
        return found

    async def register_application(self, actor: Actor, app: Application, now: datetime) -> Application:
        actor.require(Operation.WRITE_APPLICATIONS)
        self._own(actor, app)
        return await self._identity.register_application(app, now)

    async def update_application(self, actor: Actor, app: Application) -> Application:
        actor.require(Operation.WRITE_APPLICATIONS)
        self._own(actor, app)
        return await self._identity.update_application(app)

    async def delete_application(self, actor: Actor, ref: str) -> None:
        """Delete the registration with its service principals, their grants and its refresh tokens."""
        actor.require(Operation.WRITE_APPLICATIONS)
        key = object_id(ref)
        try:
            await self._identity.delete_application(actor.tenant_id, key)
        except ResourceNotFound:
            raise not_found(key) from None

    async def add_password(
        self, actor: Actor, app: Application, display_name: str | None, now: datetime, end: datetime | None = None
    ) -> NewSecret:
        actor.require(Operation.WRITE_APPLICATIONS)
        self._own(actor, app)
        if display_name is not None and len(display_name) > 256:
            raise BadRequest("The description may be at most 256 characters long.")
        return await self._identity.add_password(app, display_name, now, end)

    async def remove_password(self, actor: Actor, app: Application, key_id: str) -> None:
        actor.require(Operation.WRITE_APPLICATIONS)
        self._own(actor, app)
        await self._identity.remove_password(app, key_id)

    @staticmethod
    def _own(actor: Actor, app: Application) -> None:
        if app.tenant_id != actor.tenant_id:
            raise not_found(app.id)

    # ---- admin consent to a registration ----

    async def grant_admin_consent(
        self, actor: Actor, app: Application, now: datetime
    ) -> tuple[list[PermissionGrant], list[AppRoleAssignment]]:
        """Consent, for the whole tenant, to everything the registration asks for."""
        actor.require(Operation.WRITE_PERMISSION_GRANTS)
        actor.require(Operation.WRITE_APP_ROLE_ASSIGNMENTS)
        self._own(actor, app)
        return await self._identity.grant_admin_consent(actor.tenant_id, app, now, granted_by=actor.user_id)

    async def revoke_admin_consent(self, actor: Actor, app: Application) -> int:
        """Remove the tenant-wide consent to the app: its grants for all users and its application
        permissions (users' own consents stay). How many grants and permissions were removed."""
        actor.require(Operation.WRITE_PERMISSION_GRANTS)
        actor.require(Operation.WRITE_APP_ROLE_ASSIGNMENTS)
        sp = await self._store.find_service_principal(actor.tenant_id, app.app_id)
        if sp is None:
            return 0
        removed = 0
        for grant in await self._store.list_grants(actor.tenant_id, client_id=sp.id):
            if grant.consent_type == "AllPrincipals" and await self._store.delete_grant(actor.tenant_id, grant.id):
                removed += 1
        for assignment in await self._store.list_assignments(actor.tenant_id, sp.id):
            if await self._store.delete_assignment(actor.tenant_id, assignment.id):
                removed += 1
        return removed

    # ---- service principals ----

    async def list_service_principals(self, actor: Actor, now: datetime) -> list[ServicePrincipal]:
        actor.require(Operation.READ_APPLICATIONS)
        await self._identity.graph_principal(actor.tenant_id, now)
        return await self._store.list_service_principals(actor.tenant_id)

    async def service_principal(self, actor: Actor, ref: str) -> ServicePrincipal:
        actor.require(Operation.READ_APPLICATIONS)
        return await self._owner(actor, ref)

    async def service_principal_of(self, actor: Actor, app_id: str, now: datetime) -> ServicePrincipal | None:
        """The service principal of an application id in the tenant (Graph's is made on first use), or None."""
        actor.require(Operation.READ_APPLICATIONS)
        found = guid(app_id)
        if found == GRAPH_APP_ID:
            return await self._identity.graph_principal(actor.tenant_id, now)
        return None if found is None else await self._store.find_service_principal(actor.tenant_id, found)

    async def create_service_principal(self, actor: Actor, app_id: str, now: datetime) -> ServicePrincipal:
        """An application's instance in this tenant: once per tenant, and never for a single-tenant app
        of another tenant."""
        actor.require(Operation.WRITE_APPLICATIONS)
        tenant_id = actor.tenant_id
        if app_id == GRAPH_APP_ID or await self._store.find_service_principal(tenant_id, app_id) is not None:
            raise Conflict(f"A service principal for appId '{app_id}' already exists in this tenant.")
        app = await self._store.find_application(app_id)
        if app is None:
            raise BadRequest(f"appId: no application has appId '{app_id}'.")
        if app.tenant_id != tenant_id and app.sign_in_audience == "AzureADMyOrg":
            raise BadRequest(f"appId: application '{app_id}' is single-tenant (AzureADMyOrg); it exists only at home.")
        return await self._identity.client_principal(tenant_id, app, now)

    async def delete_service_principal(self, actor: Actor, ref: str) -> None:
        """Delete a service principal with its grants and assignments; Graph's stays."""
        actor.require(Operation.WRITE_APPLICATIONS)
        sp = await self._owner(actor, ref)
        if sp.app_id == GRAPH_APP_ID:
            raise BadRequest("Microsoft Graph's service principal cannot be deleted.")
        await self._store.delete_service_principal(actor.tenant_id, sp.id)

    async def exposed_api(self, sp: ServicePrincipal) -> Resource | None:
        """The API a service principal's application exposes (its scopes and roles), if any."""
        return await self._identity.resource_by_app_id(sp.tenant_id, sp.app_id)

    # ---- delegated permission grants ----

    async def list_grants(self, actor: Actor) -> list[PermissionGrant]:
        actor.require(Operation.READ_APPLICATIONS)
        return await self._store.list_grants(actor.tenant_id)

    async def grant(self, actor: Actor, ref: str) -> PermissionGrant:
        actor.require(Operation.READ_APPLICATIONS)
        return await self._grant(actor, ref)

    async def _grant(self, actor: Actor, ref: str) -> PermissionGrant:
        found = guid(ref)
        grant = None if found is None else await self._store.get_grant(actor.tenant_id, found)
        if grant is None:
            raise not_found(ref)
        return grant

    async def create_grant(
        self,
        actor: Actor,
        client_id: str,
        resource_id: str,
        consent_type: str,
        user_id: str | None,
        scope: str,
        now: datetime,
    ) -> PermissionGrant:
        """A delegated grant: for all users (``AllPrincipals``) or for one (``Principal``); one per
        client, resource and user, whose scopes a later change replaces."""
        actor.require(Operation.WRITE_PERMISSION_GRANTS)
        tenant_id = actor.tenant_id
        if consent_type not in {"AllPrincipals", "Principal"}:
            raise BadRequest("consentType must be AllPrincipals or Principal.")
        if (consent_type == "Principal") != (user_id is not None):
            raise BadRequest("principalId is required when consentType is Principal, and only then.")
        client_sp = await self._principal_in(tenant_id, client_id, "clientId")
        resource_sp = await self._principal_in(tenant_id, resource_id, "resourceId")
        client = await self._client_app(client_sp, "clientId")
        resource = await self._resource(resource_sp)
        scopes = _scope_values(resource, scope)
        if user_id is not None and await self._store.find_account(tenant_id, user_id) is None:
            raise BadRequest(f"principalId: no user '{user_id}' exists in this tenant.")
        existing = await self._store.grants_for(client_sp.id, resource_sp.id, user_id)
        if any(g.consent_type == consent_type and g.principal_id == user_id for g in existing):
            raise Conflict("Permission entry already exists; change its scope with PATCH instead.")
        by = actor.user_id
        if user_id is None:
            return await self._identity.consent_for_all(tenant_id, client, resource, scopes, now, granted_by=by)
        return await self._identity.consent_for_user(tenant_id, client, resource, user_id, scopes, now, granted_by=by)

    async def update_grant(self, actor: Actor, ref: str, scope: str, now: datetime) -> PermissionGrant:
        """Replace a grant's delegated permissions."""
        actor.require(Operation.WRITE_PERMISSION_GRANTS)
        grant = await self._grant(actor, ref)
        resource_sp = await self._store.get_service_principal(actor.tenant_id, grant.resource_id)
        if resource_sp is None:
            raise not_found(grant.id)
        scopes = _scope_values(await self._resource(resource_sp), scope)
        changed = replace(grant, scopes=tuple(sorted(scopes)), granted_by=actor.user_id, granted_at=now)
        await self._store.save_grant(changed)
        return changed

    async def delete_grant(self, actor: Actor, ref: str) -> None:
        actor.require(Operation.WRITE_PERMISSION_GRANTS)
        grant = await self._grant(actor, ref)
        await self._identity.revoke_grant(actor.tenant_id, grant.id)

    # ---- app role assignments (application permissions) ----

    async def list_assignments(
        self, actor: Actor, sp_ref: str
    ) -> tuple[ServicePrincipal, list[tuple[AppRoleAssignment, str]]]:
        """A service principal and its application permissions, each with its resource's name."""
        sp = await self.service_principal(actor, sp_ref)
        names = {s.id: s.display_name for s in await self._store.list_service_principals(actor.tenant_id)}
        held = await self._store.list_assignments(actor.tenant_id, sp.id)
        return sp, [(a, names.get(a.resource_id, "")) for a in held]

    async def create_assignment(
        self, actor: Actor, sp_ref: str, principal_id: str, resource_id: str, app_role_id: str, now: datetime
    ) -> tuple[ServicePrincipal, ServicePrincipal, AppRoleAssignment]:
        """Give the service principal one application permission of a resource: the principal, the
        resource's principal and the assignment."""
        actor.require(Operation.WRITE_APP_ROLE_ASSIGNMENTS)
        sp = await self._owner(actor, sp_ref)
        if principal_id != sp.id:
            raise BadRequest(f"principalId must be the service principal of the path, '{sp.id}'.")
        resource_sp = await self._principal_in(actor.tenant_id, resource_id, "resourceId")
        resource = await self._resource(resource_sp)
        role = resource.role_by_id(app_role_id)
        if role is None:
            raise BadRequest(f"appRoleId: '{resource.display_name}' has no application permission '{app_role_id}'.")
        client = await self._client_app(sp, "principalId")
        held = await self._store.list_assignments(actor.tenant_id, sp.id)
        if any(a.resource_id == resource_sp.id and a.app_role_id == role.id for a in held):
            raise BadRequest("appRoleId: Permission being assigned already exists on the object.")
        assignment = await self._identity.assign_role(
            actor.tenant_id, client, resource, role.value, now, granted_by=actor.user_id
        )
        return sp, resource_sp, assignment

    async def delete_assignment(self, actor: Actor, sp_ref: str, assignment_ref: str) -> None:
        actor.require(Operation.WRITE_APP_ROLE_ASSIGNMENTS)
        sp = await self._owner(actor, sp_ref)
        key = object_id(assignment_ref)
        try:
            await self._identity.revoke_assignment(actor.tenant_id, sp.id, key)
        except ResourceNotFound:
            raise not_found(key) from None

    async def _owner(self, actor: Actor, ref: str) -> ServicePrincipal:
        key = object_id(ref)
        sp = await self._store.get_service_principal(actor.tenant_id, key)
        if sp is None:
            raise not_found(key)
        return sp

    async def _principal_in(self, tenant_id: str, ref: str, field: str) -> ServicePrincipal:
        sp = await self._store.get_service_principal(tenant_id, ref)
        if sp is None:
            raise BadRequest(f"{field}: no service principal '{ref}' exists in this tenant.")
        return sp

    async def _client_app(self, sp: ServicePrincipal, field: str) -> Application:
        app = await self._store.find_application(sp.app_id)
        if app is None:
            raise BadRequest(f"{field}: service principal '{sp.id}' is not an application's that can be a client.")
        return app

    async def _resource(self, sp: ServicePrincipal) -> Resource:
        resource = await self.exposed_api(sp)
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
