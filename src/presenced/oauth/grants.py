"""The token endpoint and its grants, each a collaborator of its own: Entra v2.0's grants and their
errors (docs/identity.md, "Endpoints").

Every grant checks the consent as it is now, so revoking a grant stops new tokens at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from presenced.oauth.clients import (
    DEVICE_CODE_LIFETIME,
    GRANT_DEVICE_CODE,
    GRANT_JWT_BEARER,
    TENANT_ALIASES,
    Clients,
    is_public_redirect,
    requested_client_id,
)
from presenced.oauth.consent import Consent
from presenced.oauth.errors import OAuthError, missing_parameter
from presenced.oauth.keys import SigningKeys
from presenced.oauth.minting import TokenMinter, audience_of, cae, token_body
from presenced.oauth.scopes import ScopeRequest, parse_scopes
from presenced.oauth.tokens import LEEWAY, decode_own_token, issuer
from presenced.services.credentials import digest, new_opaque, new_user_code, pkce_matches
from presenced.services.entities import DeviceCode, RefreshToken
from presenced.services.identity import IdentityService
from presenced.services.ports import IdentityStore


@lru_cache(maxsize=512)
def with_offline_access(scopes: ScopeRequest) -> ScopeRequest:
    """``scopes`` asking for a refresh token too (kept once made: a ``ScopeRequest`` cannot change)."""
    return replace(scopes, openid=scopes.openid | {"offline_access"})


class Grant(Protocol):
    async def __call__(
        self, tenant_id: str | None, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class TokenEndpoint:
    """``/{tenant}/oauth2/v2.0/token``: checks what every request shares, then hands it to its grant."""

    clients: Clients
    client_credentials: Grant
    authorization_code: Grant
    refresh_token: Grant
    device_code: Grant
    on_behalf_of: Grant

    async def token(self, tenant_ref: str, form: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, Any]:
        """Answer a token request, or raise ``OAuthError``."""
        for name, value in form.items():
            if "\x00" in value or len(value) > 16384:
                raise OAuthError("invalid_request", 900144, f"The parameter '{name[:64]}' is malformed.")
        grant_type = form.get("grant_type")
        if not grant_type:
            raise missing_parameter("grant_type")
        tenant_id = await self.clients.tenant_of(tenant_ref)
        if grant_type == "client_credentials":
            return await self.client_credentials(tenant_id, form, headers)
        if grant_type == "authorization_code":
            return await self.authorization_code(tenant_id, form, headers)
        if grant_type == "refresh_token":
            return await self.refresh_token(tenant_id, form, headers)
        # MSAL for Node and MSAL.NET send the short name, which Entra accepts too.
        if grant_type in {GRANT_DEVICE_CODE, "device_code"}:
            return await self.device_code(tenant_id, form, headers)
        if grant_type == GRANT_JWT_BEARER and form.get("requested_token_use") == "on_behalf_of":
            return await self.on_behalf_of(tenant_id, form, headers)
        raise OAuthError(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type[:64]}'.",
        )


@dataclass(frozen=True, slots=True)
class ClientCredentialsGrant:
    """``client_credentials``: an app's own token, with the application permissions assigned to it."""

    clients: Clients
    consent: Consent
    minter: TokenMinter
    identity: IdentityService
    now: Callable[[], datetime]

    async def __call__(
        self, tenant_id: str | None, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        if tenant_id is None:
            raise OAuthError(
                "invalid_request",
                50059,
                "No tenant-identifying information found in either the request or implied by any provided "
                "credentials. Client credentials need the tenant id in the path, not common or organizations.",
            )
        client = await self.clients.authenticate_client(form, headers, tenant_id, secret_required=True)
        raw = form.get("scope")
        if not raw:
            raise missing_parameter("scope")
        scopes = parse_scopes(raw)
        if not scopes.default or scopes.openid or scopes.resource is None:
            raise OAuthError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {raw[:256]} is not valid. Client credential flows must have a scope "
                "value with /.default suffixed to the resource identifier (application ID URI).",
            )
        resource = await self.consent.resource_for(scopes, tenant_id)
        now = self.now()
        sp, granted = await self.identity.granted_roles(tenant_id, client.app, resource)
        if sp is None:
            # A multi-tenant app nobody in this tenant consented to is not in its directory.
            raise OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client.app.app_id}' was not found in the directory '{tenant_id}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
            )
        roles = sorted(granted)
        token = self.minter.app_access_token(
            tenant_id, client.app.app_id, client.app.display_name, sp.id, roles, audience_of(scopes, resource),
            now=now, extra=cae(form),
        )  # fmt: skip
        return token_body(token, None)


@dataclass(frozen=True, slots=True)
class AuthorizationCodeGrant:
    """``authorization_code``: a code from the authorize endpoint, redeemed once, with PKCE or a secret."""

    clients: Clients
    minter: TokenMinter
    store: IdentityStore
    now: Callable[[], datetime]

    async def __call__(
        self, tenant_id: str | None, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        raw_code = form.get("code")
        if not raw_code:
            raise missing_parameter("code")
        redirect_uri = form.get("redirect_uri")
        if not redirect_uri:
            raise missing_parameter("redirect_uri")
        app = await self.clients.application(requested_client_id(form, headers), tenant_id)
        public = is_public_redirect(app, redirect_uri)
        client = await self.clients.authenticate_client(form, headers, tenant_id, secret_required=not public, app=app)
        code = await self.store.redeem_code(digest(raw_code), self.now())
        if code is None or code.client_app_id != client.app.app_id or (tenant_id and code.tenant_id != tenant_id):
            raise OAuthError(
                "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid: the code is not valid."
            )
        if code.redeemed is not None:
            raise OAuthError(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            )
        if code.expires <= self.now():
            raise OAuthError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            )
        if code.redirect_uri != redirect_uri:
            raise OAuthError(
                "invalid_grant", 50148, "The redirect_uri does not match the one of the authorization request."
            )
        if code.code_challenge is None and not client.authenticated:
            # Neither PKCE nor a secret: nothing proves the caller is the app the code was issued to.
            raise OAuthError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                status=401,
            )
        if code.code_challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                raise missing_parameter("code_verifier")
            if not pkce_matches(verifier, code.code_challenge, code.code_challenge_method or "plain"):
                raise OAuthError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                )
        scopes = parse_scopes(" ".join(code.scopes))
        return await self.minter.user_tokens(
            code.tenant_id,
            client,
            code.user_id,
            scopes,
            form,
            auth_time=code.auth_time,
            nonce=code.nonce,
            public=public or not client.authenticated,
        )


@dataclass(frozen=True, slots=True)
class RefreshTokenGrant:
    """``refresh_token``: a new token set for a refresh token, which is spent (rotation; reuse kills its family)."""

    clients: Clients
    consent: Consent
    minter: TokenMinter
    store: IdentityStore
    now: Callable[[], datetime]

    async def __call__(
        self, tenant_id: str | None, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        raw = form.get("refresh_token")
        if not raw:
            raise missing_parameter("refresh_token")
        now = self.now()
        app = await self.clients.application(requested_client_id(form, headers), tenant_id)
        token = await self.store.find_refresh_token(digest(raw))
        if token is None or token.client_app_id != app.app_id or (tenant_id and token.tenant_id != tenant_id):
            raise OAuthError(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid: the refresh token is not valid.",
            )
        if token.used is not None:
            raise await self._reused(token.family_id)
        if token.expires <= now:
            raise OAuthError(
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            )
        client = await self.clients.authenticate_client(
            form, headers, tenant_id, secret_required=not token.public_client, app=app
        )
        # A refresh always returns a new refresh token (the presented one is spent), as Entra's does.
        scopes = with_offline_access(parse_scopes(form.get("scope") or " ".join(token.scopes)))
        # Everything that can refuse the request is checked before the token is spent, so a refusal
        # (say, a scope nobody consented to) leaves the client its refresh token.
        resource = await self.consent.resource_for(scopes, token.tenant_id)
        granted = await self.consent.delegated_scopes(token.tenant_id, client.app, scopes, resource, token.user_id)

        async def rotate(successor: RefreshToken) -> None:
            # Spent, and its successor stored, in one transaction: of two requests with copies, one wins.
            if not await self.store.rotate_refresh_token(token.token_hash, successor, now):
                raise await self._reused(token.family_id)

        return await self.minter.user_tokens(
            token.tenant_id,
            client,
            token.user_id,
            scopes,
            form,
            auth_time=token.auth_time,
            nonce=None,
            public=token.public_client,
            family_id=token.family_id,
            checked=(resource, granted),
            save_refresh=rotate,
        )

    async def _reused(self, family_id: str) -> OAuthError:
        """A spent refresh token came back: someone holds a copy. Every token of its sign-in dies."""
        await self.store.revoke_refresh_family(family_id)
        return OAuthError(
            "invalid_grant",
            70000,
            "The provided refresh token has already been used. All refresh tokens of this sign-in are revoked; sign in again.",
        )


@dataclass(frozen=True, slots=True)
class DeviceCodeGrant:
    """The device code grant: polled until the user approves or declines on ``/devicelogin``."""

    clients: Clients
    minter: TokenMinter
    store: IdentityStore
    now: Callable[[], datetime]

    async def __call__(
        self, tenant_id: str | None, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        raw = form.get("device_code") or form.get("code")
        if not raw:
            raise missing_parameter("device_code")
        app = await self.clients.application(requested_client_id(form, headers), tenant_id)
        client = await self.clients.authenticate_client(
            form, headers, tenant_id, secret_required=not app.is_fallback_public_client, app=app
        )
        now = self.now()
        code = await self.store.find_device_code(device_code_hash=digest(raw))
        # Polled on the tenant segment it was started on (or the user's own tenant, once known).
        on_its_tenant = code is not None and (
            tenant_id is None
            or (code.tenant_ref in {tenant_id, *TENANT_ALIASES} and code.tenant_id in {None, tenant_id})
        )
        if code is None or code.client_app_id != client.app.app_id or not on_its_tenant:
            raise OAuthError("invalid_grant", 70000, "The provided value for the 'device_code' is not valid.")
        if code.expires <= now:
            raise OAuthError("expired_token", 70019, "Verification code expired.")
        if code.status == "pending":
            polled = replace(code, last_poll=now)
            too_soon = code.last_poll is not None and now - code.last_poll < timedelta(seconds=code.interval / 2)
            await self.store.update_device_code(polled, "pending")
            if too_soon:
                raise OAuthError("slow_down", 70016, "OAuth 2.0 device flow error: polling too fast; slow down.")
            raise OAuthError(
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        if code.status == "declined":
            raise OAuthError("authorization_declined", 70020, "The user declined the authorization request.")
        if code.status != "approved" or not await self.store.update_device_code(
            replace(code, status="redeemed"), "approved"
        ):
            raise OAuthError("invalid_grant", 70000, "The provided value for the 'device_code' was already redeemed.")
        if code.tenant_id is None or code.user_id is None or code.auth_time is None:
            raise OAuthError("invalid_grant", 70000, "The provided value for the 'device_code' is not valid.")
        return await self.minter.user_tokens(
            code.tenant_id,
            client,
            code.user_id,
            parse_scopes(" ".join(code.scopes)),
            form,
            auth_time=code.auth_time,
            nonce=None,
            public=not client.authenticated,
        )


@dataclass(frozen=True, slots=True)
class OnBehalfOfGrant:
    """On-behalf-of (``jwt-bearer``): an API trades the user's token it received for one to call another."""

    clients: Clients
    minter: TokenMinter
    keys: SigningKeys
    base_url: str
    now: Callable[[], datetime]

    async def __call__(
        self, tenant_id: str | None, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        assertion = form.get("assertion")
        if not assertion:
            raise missing_parameter("assertion")
        client = await self.clients.authenticate_client(form, headers, tenant_id, secret_required=True)
        try:
            claims = decode_own_token(self.keys, assertion)
        except ValueError:
            raise OAuthError("invalid_grant", 50013, "Assertion failed signature validation.") from None
        audience = claims.get("aud")
        # Tokens for an app's API carry its app id as audience: an identifier URI could be another tenant's.
        if audience != client.app.app_id:
            raise OAuthError(
                "invalid_grant",
                500131,
                "Assertion audience does not match the Client app presenting the assertion. The audience in the "
                f"assertion was '{audience}' and the expected audience is '{client.app.app_id}'.",
            )
        now = self.now().timestamp()
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        leeway = LEEWAY.total_seconds()
        if (
            not all(isinstance(v, int | float) for v in (exp, iat))
            or exp <= now - leeway  # type: ignore[operator]
            or (isinstance(nbf, int | float) and nbf > now + leeway)
        ):
            raise OAuthError("invalid_grant", 500133, "Assertion is not within its valid time range.")
        user_id, token_tenant = claims.get("oid"), claims.get("tid")
        if "scp" not in claims or not isinstance(user_id, str) or not isinstance(token_tenant, str):
            raise OAuthError(
                "invalid_grant", 50027, "JWT token is invalid: on-behalf-of takes a delegated (user) token."
            )
        if claims.get("iss") != issuer(self.base_url, token_tenant) or (tenant_id and tenant_id != token_tenant):
            raise OAuthError("invalid_grant", 50027, "JWT token is invalid: issued for another tenant.")
        self.clients.check_tenant_allows(client.app, token_tenant, tenant_id or "common")
        raw = form.get("scope")
        if not raw:
            raise missing_parameter("scope")
        return await self.minter.user_tokens(
            token_tenant,
            client,
            user_id,
            parse_scopes(raw),
            form,
            auth_time=datetime.fromtimestamp(int(iat), UTC),  # type: ignore[arg-type]
            nonce=None,
            public=False,
            id_token=False,
        )


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """The device authorization endpoint: a device code and a user code for a device flow."""

    clients: Clients
    consent: Consent
    store: IdentityStore
    base_url: str
    interval: int
    now: Callable[[], datetime]

    async def __call__(
        self, tenant_ref: str, form: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        tenant_id = await self.clients.tenant_of(tenant_ref)
        app = await self.clients.application(requested_client_id(form, headers or {}), tenant_id)
        raw = form.get("scope")
        if not raw:
            raise missing_parameter("scope")
        scopes = parse_scopes(raw)
        if tenant_id is not None:
            await self.consent.resource_for(scopes, tenant_id)
        device_code, user_code = new_opaque(), new_user_code()
        now = self.now()
        await self.store.save_device_code(
            DeviceCode(
                digest(device_code),
                digest(user_code),
                tenant_ref.lower(),
                app.app_id,
                tuple(raw.split()),
                "pending",
                self.interval,
                now + DEVICE_CODE_LIFETIME,
            )
        )
        uri = f"{self.base_url}/devicelogin"
        return {
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": uri,
            "expires_in": int(DEVICE_CODE_LIFETIME.total_seconds()),
            "interval": self.interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} to "
            "authenticate.",
        }
