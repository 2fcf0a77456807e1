"""Every token presenced issues is built here: access tokens for apps and users, and the whole answer of
a user flow (access token, ID token, refresh token, ``client_info``), for the grants, and for the
operator's ``presenced token``.

Times are real time: tokens never follow the emulator's clock.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from presenced.auth.permissions import GRAPH_AUDIENCES, GRAPH_RESOURCE
from presenced.clock import real_now
from presenced.oauth.clients import REFRESH_LIFETIME, Client
from presenced.oauth.consent import Consent
from presenced.oauth.errors import OAuthError
from presenced.oauth.keys import SigningKeys
from presenced.oauth.operator import operator_token
from presenced.oauth.scopes import ScopeRequest
from presenced.oauth.tokens import DEFAULT_LIFETIME, mint_access_token, mint_id_token
from presenced.services.credentials import digest, new_opaque
from presenced.services.entities import Account, RefreshToken
from presenced.services.identity import Resource
from presenced.services.ports import IdentityStore


class TokenMinter:
    def __init__(
        self,
        keys: SigningKeys,
        base_url: str,
        store: IdentityStore,
        consent: Consent,
        now: Callable[[], datetime] = real_now,
    ) -> None:
        self._keys = keys
        self._base_url = base_url
        self._store = store
        self._consent = consent
        self._now = now

    def app_access_token(
        self,
        tenant_id: str,
        app_id: str,
        app_name: str | None,
        principal_id: str | None,
        roles: list[str],
        audience: str = GRAPH_RESOURCE,
        *,
        now: datetime,
        extra: dict[str, Any] | None = None,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> str:
        return mint_access_token(
            self._keys, self._base_url, tenant_id, app_id=app_id, now=now, roles=roles, audience=audience,
            app_display_name=app_name, client_authenticated=True, object_id=principal_id, extra=extra,
            lifetime=lifetime,
        )  # fmt: skip

    def user_access_token(
        self,
        account: Account,
        app_id: str,
        app_name: str | None,
        scopes: list[str],
        audience: str = GRAPH_RESOURCE,
        *,
        now: datetime,
        authenticated: bool,
        extra: dict[str, Any] | None = None,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> str:
        user = account.user
        return mint_access_token(
            self._keys, self._base_url, user.tenant_id, app_id=app_id, now=now, user_id=user.id,
            user_principal_name=user.user_principal_name, name=user.display_name, scopes=scopes, audience=audience,
            app_display_name=app_name, directory_admin=account.is_admin and audience in GRAPH_AUDIENCES,
            client_authenticated=authenticated, extra=extra, lifetime=lifetime,
        )  # fmt: skip

    async def user_tokens(
        self,
        tenant_id: str,
        client: Client,
        user_id: str,
        scopes: ScopeRequest,
        form: Mapping[str, str],
        *,
        auth_time: datetime,
        nonce: str | None,
        public: bool,
        family_id: str | None = None,
        id_token: bool = True,
        checked: tuple[Resource, list[str]] | None = None,
        save_refresh: Callable[[RefreshToken], Awaitable[None]] | None = None,
    ) -> dict[str, Any]:
        """The token response of a user flow: access token, and ID token, refresh token, client_info as asked.

        ``checked``: the resource and granted scopes, when the caller has resolved them already.
        ``save_refresh``: how the new refresh token is stored (the refresh grant spends the old one with it),
        when not simply saved; it may refuse the request by raising.
        """
        account = await self._store.find_account(tenant_id, user_id)
        if account is None:
            raise OAuthError("invalid_grant", 50034, "The user account does not exist in the directory. Sign in again.")
        if checked is None:
            resource = await self._consent.resource_for(scopes, tenant_id)
            granted = await self._consent.delegated_scopes(tenant_id, client.app, scopes, resource, user_id)
        else:
            resource, granted = checked
        now = self._now()
        refresh: str | None = None
        saving: asyncio.Future[None] | None = None
        if "offline_access" in scopes.openid:
            refresh = new_opaque()
            requested = [*(scopes.qualified(p) for p in scopes.permissions), *sorted(scopes.openid)]
            if scopes.default:
                requested.append(f"{scopes.resource or 'https://graph.microsoft.com'}/.default")
            token = RefreshToken(
                digest(refresh),
                family_id or str(uuid.uuid4()),
                tenant_id,
                client.app.app_id,
                user_id,
                tuple(requested),
                public,
                auth_time,
                now + REFRESH_LIFETIME,
            )
            # Stored while the tokens are signed (the store waits for the disk, signing for the processor); the
            # answer goes out only once it is stored, and not at all if storing it refuses the request.
            saving = asyncio.ensure_future((save_refresh or self._store.save_refresh_token)(token))
            await asyncio.sleep(0)  # it joins the writes on their way now, not after the signing
        try:
            body = self._signed(
                tenant_id, user_id, account, client, scopes, form, granted, resource,
                now=now, auth_time=auth_time, nonce=nonce, id_token=id_token,
            )  # fmt: skip
        except BaseException:
            if saving is not None:
                saving.cancel()
            raise
        if saving is not None:
            await saving
            body["refresh_token"] = refresh
            body["scope"] = f"{body['scope']} offline_access".strip()
        if form.get("client_info") == "1":
            info = json.dumps({"uid": user_id, "utid": tenant_id}, separators=(",", ":")).encode()
            body["client_info"] = base64.urlsafe_b64encode(info).rstrip(b"=").decode()
        return body

    def _signed(
        self, tenant_id: str, user_id: str, account: Account, client: Client, scopes: ScopeRequest,
        form: Mapping[str, str], granted: list[str], resource: Resource, *, now: datetime, auth_time: datetime,
        nonce: str | None, id_token: bool,
    ) -> dict[str, Any]:  # fmt: skip
        """A user flow's answer but its refresh token: the access token, and the ID token when asked for."""
        access = self.user_access_token(
            account, client.app.app_id, client.app.display_name, granted, audience_of(scopes, resource),
            now=now, authenticated=client.authenticated, extra=cae(form),
        )  # fmt: skip
        shown = [scopes.qualified(v) for v in granted] + sorted(scopes.openid - {"offline_access"})
        body = token_body(access, " ".join(shown))
        if "openid" in scopes.openid and id_token:
            body["id_token"] = mint_id_token(
                self._keys,
                self._base_url,
                tenant_id,
                client_id=client.app.app_id,
                user_id=user_id,
                user_principal_name=account.user.user_principal_name,
                name=account.user.display_name,
                now=now,
                auth_time=auth_time,
                nonce=nonce,
                email="email" in scopes.openid,
            )
        return body

    async def operator_token(
        self,
        tenant_id: str,
        app_id: str,
        *,
        user_ref: str | None = None,
        permissions: list[str],
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> str:
        """A token for whoever runs the server (``presenced token``): ``presenced.oauth.operator``."""
        return await operator_token(
            self._store, self._keys, self._base_url, tenant_id, app_id,
            user_ref=user_ref, permissions=permissions, now=self._now(), lifetime=lifetime,
        )  # fmt: skip


def token_body(access_token: str, scope: str | None) -> dict[str, Any]:
    lifetime = int(DEFAULT_LIFETIME.total_seconds())
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }
    if scope is not None:
        body["scope"] = scope
    return body


def audience_of(scopes: ScopeRequest, resource: Resource) -> str:
    """Graph's tokens name Graph as the client did (URL or GUID); an app's API is named by its app id, which,
    unlike an identifier URI, no other tenant can share."""
    return scopes.audience if scopes.is_graph else resource.app_id


def cae(form: Mapping[str, str]) -> dict[str, Any]:
    """``xms_cc`` when the client says it handles claims challenges (CAE), as Kiota does."""
    raw = form.get("claims")
    if not raw:
        return {}
    try:
        claims = json.loads(raw)
        values = claims["access_token"]["xms_cc"]["values"]
    except (ValueError, KeyError, TypeError):
        return {}
    return {"xms_cc": [v for v in values if isinstance(v, str)][:8]} if isinstance(values, list) else {}
