"""Resources, scopes and consent on the sign-in side: which API a scope names, what a token may carry
of it, and what the consent screen must ask (docs/identity.md, "Consent").

Grants are read from ``IdentityService`` as they are at each request, so a revocation stops the next
token at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from presenced.auth.permissions import OPENID_SCOPES
from presenced.clock import real_now
from presenced.oauth.errors import OAuthError, consent_required, invalid_scope
from presenced.oauth.scopes import ScopeRequest
from presenced.services.entities import Account, Application
from presenced.services.identity import IdentityService, Resource, ResourcePermission


class Consent:
    def __init__(self, identity: IdentityService, now: Callable[[], datetime] = real_now) -> None:
        self._identity = identity
        self._now = now

    async def resource_for(self, scopes: ScopeRequest, tenant_id: str) -> Resource:
        resource = await self._identity.find_resource(tenant_id, scopes.resource or "https://graph.microsoft.com")
        if resource is None:
            raise OAuthError(
                "invalid_resource",
                500011,
                f"The resource principal named {scopes.resource} was not found in the tenant named {tenant_id}. This "
                "can happen if the application has not been installed by the administrator of the tenant or consented "
                "to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
            )
        for value in scopes.permissions:
            if value not in resource.scopes:
                raise invalid_scope(
                    f"The provided value for the input parameter 'scope' is not valid. The scope "
                    f"'{scopes.qualified(value)}' does not exist on the resource '{resource.display_name}'."
                )
        return resource

    def static_scopes(self, client: Application, resource: Resource) -> set[str]:
        """The delegated permissions the registration lists for ``resource`` (what ``/.default`` asks for)."""
        return {
            p.value
            for a in client.required_resource_access
            if a.resource_app_id == resource.app_id
            and a.type == "Scope"
            and (p := resource.scope_by_id(a.permission_id))
        }

    def wanted(self, client: Application, scopes: ScopeRequest, resource: Resource) -> set[str]:
        """What a request asks of ``resource``: the registration's permissions for ``/.default``, else the
        ones named; with the OpenID scopes named."""
        named = self.static_scopes(client, resource) if scopes.default else set(scopes.permissions)
        return named | set(scopes.openid)

    async def delegated_scopes(
        self, tenant_id: str, client: Application, scopes: ScopeRequest, resource: Resource, user_id: str
    ) -> list[str]:
        """The permissions a delegated token carries: those requested and granted; anything missing is 65001."""
        granted = await self._identity.granted_scopes(tenant_id, client, resource, user_id)
        granted -= OPENID_SCOPES
        if scopes.default:
            if not granted and scopes.resource is not None:
                raise consent_required(client.app_id, client.display_name)
            return sorted(granted)
        missing = [p for p in scopes.permissions if p not in granted]
        if missing:
            raise consent_required(client.app_id, client.display_name)
        return list(scopes.permissions)

    async def consent_needed(
        self,
        tenant_id: str,
        client: Application,
        scopes: ScopeRequest,
        resource: Resource,
        account: Account,
        *,
        force: bool,
    ) -> list[ResourcePermission]:
        """The permissions to show on the consent screen (none: no screen needed)."""
        granted = await self._identity.granted_scopes(tenant_id, client, resource, account.user.id)
        # /.default asks again only when nothing but sign-in was ever granted (the token needs more).
        if scopes.default and granted - OPENID_SCOPES and not force:
            return []
        wanted = self.wanted(client, scopes, resource)
        missing = wanted if force else wanted - granted
        if not missing:
            return []
        # Show everything asked for, as Entra does, once anything is missing.
        listed = [resource.scopes[v] for v in sorted(wanted) if v in resource.scopes]
        return sorted(listed, key=lambda p: (p.value in OPENID_SCOPES, p.value))

    def admin_needed(self, permissions: list[ResourcePermission], account: Account) -> list[ResourcePermission]:
        """Permissions only an administrator may consent to, when the user is not one."""
        return [] if account.is_admin else [p for p in permissions if p.admin_consent_required]

    async def record_consent(
        self,
        tenant_id: str,
        client: Application,
        scopes: ScopeRequest,
        resource: Resource,
        account: Account,
        *,
        for_all: bool = False,
    ) -> None:
        wanted = self.wanted(client, scopes, resource)
        by = account.user.id
        if for_all:
            await self._identity.consent_for_all(tenant_id, client, resource, wanted, self._now(), granted_by=by)
        else:
            await self._identity.consent_for_user(
                tenant_id, client, resource, account.user.id, wanted, self._now(), granted_by=by
            )
