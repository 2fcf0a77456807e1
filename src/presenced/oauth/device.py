"""Device-code approval: the user at ``/devicelogin`` types the code a device shows, signs in, consents,
and approves or declines; the device's polling (``grants.DeviceCodeGrant``) then gets its tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from presenced.oauth.clients import Clients
from presenced.oauth.consent import Consent
from presenced.oauth.errors import OAuthError
from presenced.oauth.scopes import parse_scopes
from presenced.services.credentials import digest
from presenced.services.entities import Account, Application, DeviceCode
from presenced.services.identity import ResourcePermission
from presenced.services.ports import IdentityStore


def normal_user_code(typed: str) -> str:
    """A user code as typed (any case, spaces or dashes) in the form it was issued."""
    return "".join(typed.split()).upper().replace("-", "")[:32]


@dataclass(frozen=True, slots=True)
class DeviceApproval:
    _clients: Clients
    _consent: Consent
    _store: IdentityStore
    _now: Callable[[], datetime]

    async def pending(self, user_code: str) -> tuple[DeviceCode, Application]:
        """The device flow waiting for ``user_code``; ``OAuthError`` if there is none (or it expired)."""
        code = await self._store.find_device_code(user_code=digest(normal_user_code(user_code)))
        if code is None or code.status != "pending":
            raise OAuthError("invalid_grant", 70000, "That code was not recognised. Check it and try again.")
        if code.expires <= self._now():
            raise OAuthError("expired_token", 70019, "That code has expired. Start the sign-in again on your device.")
        app = await self._store.find_application(code.client_app_id)
        if app is None:
            raise OAuthError("invalid_grant", 700016, "The application that asked for this code no longer exists.")
        return code, app

    async def consent_needed(self, code: DeviceCode, app: Application, account: Account) -> list[ResourcePermission]:
        scopes = parse_scopes(" ".join(code.scopes))
        tenant_id = account.user.tenant_id
        self._clients.check_tenant_allows(app, tenant_id, code.tenant_ref)
        resource = await self._consent.resource_for(scopes, tenant_id)
        return await self._consent.consent_needed(tenant_id, app, scopes, resource, account, force=False)

    async def finish(
        self, code: DeviceCode, account: Account, auth_time: datetime, *, approved: bool, consented: bool
    ) -> None:
        app = await self._store.find_application(code.client_app_id)
        if approved and app is not None and consented:
            scopes = parse_scopes(" ".join(code.scopes))
            resource = await self._consent.resource_for(scopes, account.user.tenant_id)
            await self._consent.record_consent(account.user.tenant_id, app, scopes, resource, account)
        finished = replace(
            code,
            status="approved" if approved else "declined",
            tenant_id=account.user.tenant_id,
            user_id=account.user.id,
            auth_time=auth_time,
        )
        if not await self._store.update_device_code(finished, "pending"):
            raise OAuthError("invalid_grant", 70000, "That code was already used.")
