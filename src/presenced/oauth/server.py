"""The authorization server (docs/identity.md): small collaborators, each with its own rules and
testable alone, wired together here.

- ``clients``: tenants, which app a ``client_id`` is, client authentication;
- ``consent``: resources and scopes, what a token may carry, what the consent screen asks;
- ``minter``: every token issued;
- ``tokens``: the token endpoint, handing each request to its grant (``oauth.grants``);
- ``device``: the device authorization endpoint; ``device_approval``: ``/devicelogin``'s side;
- ``authorize``: the authorize endpoint's requests and codes;
- ``admin_consent`` and ``logout``: the other interactive endpoints.

Protocol mechanics live here; who granted what lives in ``IdentityService``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from presenced.clock import real_now
from presenced.metrics import TOKEN_REQUESTS
from presenced.oauth.admin_consent import AdminConsent
from presenced.oauth.authorize import Authorize
from presenced.oauth.clients import GRANT_DEVICE_CODE, GRANT_JWT_BEARER, Clients
from presenced.oauth.consent import Consent
from presenced.oauth.device import DeviceApproval
from presenced.oauth.errors import OAuthError
from presenced.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    DeviceAuthorization,
    DeviceCodeGrant,
    OnBehalfOfGrant,
    RefreshTokenGrant,
    TokenEndpoint,
)
from presenced.oauth.keys import SigningKeys
from presenced.oauth.logout import Logout
from presenced.oauth.minting import TokenMinter
from presenced.services.identity import IdentityService
from presenced.services.ports import IdentityStore


class AuthorizationServer:
    def __init__(
        self,
        identity: IdentityService,
        store: IdentityStore,
        keys: SigningKeys,
        base_url: str,
        *,
        device_interval: int = 5,
        now: Callable[[], datetime] = real_now,
    ) -> None:
        #: The issuer's time (real time): codes, tokens and secrets are checked by it. The collaborators read
        #: it through the server, so replacing it moves them all at once.
        self.now = now
        self.keys = keys
        now = self._now
        self.clients = clients = Clients(store, now)
        self.consent = consent = Consent(identity, now)
        self.minter = minter = TokenMinter(keys, base_url, store, consent, now)
        self.tokens = TokenEndpoint(
            clients,
            client_credentials=ClientCredentialsGrant(clients, consent, minter, identity, now),
            authorization_code=AuthorizationCodeGrant(clients, minter, store, now),
            refresh_token=RefreshTokenGrant(clients, consent, minter, store, now),
            device_code=DeviceCodeGrant(clients, minter, store, now),
            on_behalf_of=OnBehalfOfGrant(clients, minter, keys, base_url, now),
        )
        self.device = DeviceAuthorization(clients, consent, store, base_url, device_interval, now)
        self.device_approval = DeviceApproval(clients, consent, store, now)
        self.authorize = Authorize(clients, consent, store, now)
        self.admin_consent = AdminConsent(clients, consent, identity, now)
        self.logout = Logout(clients, store, keys)

    def _now(self) -> datetime:
        return self.now()

    async def token(self, tenant_ref: str, form: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, Any]:
        """Answer a token request, or raise ``OAuthError``; counted by grant type and outcome."""
        grant = _GRANT_LABELS.get(form.get("grant_type") or "", "other")
        try:
            answer = await self.tokens.token(tenant_ref, form, headers)
        except OAuthError as error:
            _counted(grant, error.error).inc()
            raise
        except Exception:
            _counted(grant, "failed").inc()
            raise
        _counted(grant, "issued").inc()
        return answer

    async def device_authorization(
        self, tenant_ref: str, form: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return await self.device(tenant_ref, form, headers)


#: The grant_type label of each grant type the token endpoint takes; any other value is "other"
#: (the metric's labels stay few, whatever clients send).
_GRANT_LABELS = {
    "client_credentials": "client_credentials",
    "authorization_code": "authorization_code",
    "refresh_token": "refresh_token",
    GRANT_DEVICE_CODE: "device_code",
    "device_code": "device_code",
    GRANT_JWT_BEARER: "on_behalf_of",
}


#: The token requests' counters by grant and outcome, bound once each (both come from short fixed lists).
_COUNTERS: dict[tuple[str, str], Any] = {}


def _counted(grant: str, outcome: str) -> Any:
    counter = _COUNTERS.get((grant, outcome))
    if counter is None:
        counter = _COUNTERS[(grant, outcome)] = TOKEN_REQUESTS.labels(grant, outcome)
    return counter
