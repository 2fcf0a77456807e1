"""Tokens for whoever runs the server (``presenced token``), with the claims the token endpoint gives.

The operator holds the signing keys, so consent does not apply: the permissions are the ones
named (at least one), each checked against the catalog (delegated ones for a user token,
application ones for an app token). An app-only token is the app's own, so that app must exist
in the tenant (registered there, or with a service principal there); a delegated token's client
id is the operator's choice (the emulator's sessions are keyed by it).

This module loads only what signing needs, and reads the directory through ``OperatorDirectory``,
so that the command line can answer it on the bare database driver and start at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from presenced.auth.permissions import PermissionKind, find
from presenced.oauth.errors import OAuthError, invalid_scope
from presenced.oauth.keys import SigningKeys
from presenced.oauth.tokens import DEFAULT_LIFETIME, mint_access_token
from presenced.services.entities import Account, Application, ServicePrincipal


class OperatorDirectory(Protocol):
    async def find_account(self, tenant_id: str | None, ref: str) -> Account | None: ...

    async def find_application(self, app_id: str) -> Application | None: ...

    async def find_service_principal(self, tenant_id: str, app_id: str) -> ServicePrincipal | None: ...


async def operator_token(
    directory: OperatorDirectory,
    keys: SigningKeys,
    base_url: str,
    tenant_id: str,
    app_id: str,
    *,
    user_ref: str | None = None,
    permissions: list[str],
    now: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> str:
    """A signed Graph token for ``user_ref`` (delegated) or for the app itself; OAuthError if refused."""
    kind = PermissionKind.DELEGATED if user_ref is not None else PermissionKind.APPLICATION
    what = "delegated" if user_ref is not None else "application"
    if not permissions:
        raise invalid_scope(f"Name at least one {what} permission for the token to carry.")
    unknown = [p for p in permissions if find(p, kind) is None]
    if unknown:
        raise invalid_scope(f"Microsoft Graph has no {what} permission {', '.join(unknown)}.")
    app = await directory.find_application(app_id)
    name = app.display_name if app is not None else None
    if user_ref is None:
        sp = await directory.find_service_principal(tenant_id, app_id)
        if sp is None and (app is None or app.tenant_id != tenant_id):
            raise OAuthError("unauthorized_client", 700016, f"There is no application {app_id} in tenant {tenant_id}.")
        return mint_access_token(
            keys, base_url, tenant_id, app_id=app_id, now=now, roles=permissions, app_display_name=name,
            client_authenticated=True, object_id=sp.id if sp else None, lifetime=lifetime,
        )  # fmt: skip
    account = await directory.find_account(tenant_id, user_ref)
    if account is None:
        raise OAuthError("invalid_grant", 50034, f"There is no user {user_ref!r} in tenant {tenant_id}.")
    user = account.user
    return mint_access_token(
        keys, base_url, user.tenant_id, app_id=app_id, now=now, user_id=user.id,
        user_principal_name=user.user_principal_name, name=user.display_name, scopes=permissions,
        app_display_name=name, directory_admin=account.is_admin, lifetime=lifetime,
    )  # fmt: skip
