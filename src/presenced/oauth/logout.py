"""Sign-out (``/{tenant}/oauth2/v2.0/logout``): where the browser may be sent afterwards (docs/identity.md).

A ``post_logout_redirect_uri`` must be a redirect URI of the app signing out, named by ``client_id``
or by the ``id_token_hint``'s audience; without either, of any app of the tenant (the path's, or the
signed-in user's). Anything else would make the sign-out page an open redirector.
"""

from __future__ import annotations

from collections.abc import Mapping

from presenced.oauth.clients import Clients, registered_redirect
from presenced.oauth.errors import OAuthError
from presenced.oauth.keys import SigningKeys
from presenced.oauth.tokens import decode_own_token
from presenced.services.ports import IdentityStore


class Logout:
    def __init__(self, clients: Clients, store: IdentityStore, keys: SigningKeys) -> None:
        self._clients = clients
        self._store = store
        self._keys = keys

    async def may_return_to(
        self, uri: str, params: Mapping[str, str], tenant_ref: str, session_tenant_id: str | None
    ) -> bool:
        client_id = params.get("client_id") or self._hinted_client(params.get("id_token_hint"))
        if client_id:
            app = await self._store.find_application(client_id) if len(client_id) == 36 else None
            apps = [app] if app else []
        else:
            try:
                tenant_id = await self._clients.tenant_of(tenant_ref)
            except OAuthError:
                return False
            tenant_id = tenant_id or session_tenant_id
            apps = await self._store.list_applications(tenant_id) if tenant_id else []
        return any(registered_redirect(app, uri) for app in apps)

    def _hinted_client(self, hint: str | None) -> str | None:
        if not hint:
            return None
        try:
            audience = decode_own_token(self._keys, hint).get("aud")
        except ValueError:
            return None
        return audience if isinstance(audience, str) else None
