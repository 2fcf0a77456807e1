"""The authorization server: Entra v2.0's token, device-code and authorize rules.

Protocol mechanics (client authentication, PKCE, codes, rotation of refresh
tokens) live here; who granted what lives in ``IdentityService``. Everything is
checked against the grants as they are now, so revoking consent stops new
tokens at once. Times are real time: tokens never follow the emulator's clock.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from presenced.auth.permissions import GRAPH_AUDIENCES, GRAPH_RESOURCE
from presenced.oauth.errors import OAuthError, consent_required, invalid_scope, missing_parameter
from presenced.oauth.keys import SigningKeys
from presenced.oauth.scopes import ScopeRequest, parse_scopes
from presenced.oauth.tokens import DEFAULT_LIFETIME, decode_own_token, issuer, mint_access_token, mint_id_token
from presenced.services.credentials import digest, new_opaque, new_user_code, pkce_matches, same_digest
from presenced.services.identity import GRAPH, IdentityService, Resource, ResourcePermission
from presenced.services.ports import Account, Application, AuthorizationCode, DeviceCode, RefreshToken

TENANT_ALIASES = frozenset({"common", "organizations"})
CODE_LIFETIME = timedelta(minutes=10)
REFRESH_LIFETIME = timedelta(days=90)
DEVICE_CODE_LIFETIME = timedelta(minutes=15)
GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """A validated request to the authorize endpoint."""

    tenant_ref: str
    #: The tenant named by a GUID; None for ``common`` / ``organizations`` (the user's own).
    tenant_id: str | None
    client: Application
    redirect_uri: str
    response_mode: str
    state: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    scopes: ScopeRequest
    resource: Resource
    prompt: str | None
    login_hint: str | None


@dataclass(frozen=True, slots=True)
class Client:
    app: Application
    #: It proved itself with a secret (``appidacr`` 1).
    authenticated: bool


class AuthorizationServer:
    def __init__(
        self,
        identity: IdentityService,
        keys: SigningKeys,
        base_url: str,
        *,
        device_interval: int = 5,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.identity = identity
        self.store = identity.store
        self.keys = keys
        self.base_url = base_url
        self.device_interval = device_interval
        self.now = now

    # ---- tenants ----

    async def tenant_of(self, tenant_ref: str) -> str | None:
        """The tenant a path segment names: a GUID that exists, or None for common/organizations."""
        lowered = tenant_ref.lower()
        if lowered in TENANT_ALIASES:
            return None
        try:
            tenant_id = str(uuid.UUID(lowered))
        except ValueError:
            tenant_id = ""
        if len(lowered) != 36 or await self.store.get_tenant(tenant_id) is None:
            raise OAuthError(
                "invalid_request",
                90002,
                f"Tenant '{tenant_ref[:64]}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud.",
                redirectable=False,
            )
        return tenant_id

    # ---- clients ----

    async def application(self, client_id: str | None, tenant_id: str | None) -> Application:
        if not client_id:
            raise missing_parameter("client_id")
        app = None
        try:
            app = await self.store.find_application(str(uuid.UUID(client_id))) if len(client_id) == 36 else None
        except ValueError:
            app = None
        # A single-tenant app exists only in its home tenant.
        if app is not None and tenant_id not in {None, app.tenant_id} and app.sign_in_audience == "AzureADMyOrg":
            app = None
        if app is None:
            where = tenant_id or "common"
            raise OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id[:64]}' was not found in the directory '{where}'. This can "
                "happen if the application has not been installed by the administrator of the tenant or consented to "
                "by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                redirectable=False,
            )
        return app

    async def authenticate_client(
        self, form: Mapping[str, str], headers: Mapping[str, str], tenant_id: str | None, *, secret_required: bool
    ) -> Client:
        """The calling client; ``secret_required`` when the grant is for confidential clients only."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = headers.get("authorization", "")
        if basic[:6].lower() == "basic ":
            try:
                client_id, _, secret = base64.b64decode(basic[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", 7000215, "Invalid client secret provided.", status=401) from None
        app = await self.application(client_id, tenant_id)
        if form.get("client_assertion") or form.get("client_assertion_type"):
            raise OAuthError(
                "invalid_client",
                700027,
                "Client assertion contains an invalid signature: certificate credentials are not supported here; "
                "use a client secret.",
                status=401,
            )
        if secret:
            if not app.secrets:
                raise OAuthError(
                    "invalid_client",
                    700025,
                    "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
                    status=401,
                )
            now = self.now()
            matching = [s for s in app.secrets if same_digest(secret, s.secret_hash)]
            if not matching:
                raise OAuthError(
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                    f"secret value, not the client secret ID, for a secret added to app '{app.app_id}'.",
                    status=401,
                )
            if all(s.end <= now for s in matching):
                raise OAuthError(
                    "invalid_client",
                    7000222,
                    f"The provided client secret keys for app '{app.app_id}' are expired. Create new keys for your "
                    "app, or consider using certificate credentials for added security.",
                    status=401,
                )
            return Client(app, True)
        if secret_required:
            raise OAuthError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                status=401,
            )
        return Client(app, False)

    # ---- resources and scopes ----

    async def resource_for(self, scopes: ScopeRequest, tenant_id: str) -> Resource:
        resource = await self.identity.find_resource(tenant_id, scopes.resource or "https://graph.microsoft.com")
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

    async def delegated_scopes(
        self, tenant_id: str, client: Application, scopes: ScopeRequest, resource: Resource, user_id: str
    ) -> list[str]:
        """The permissions a delegated token carries: those requested and granted; anything missing is 65001."""
        granted = await self.identity.granted_scopes(tenant_id, client, resource, user_id, self.now())
        granted -= {"openid", "profile", "email", "offline_access"}
        if scopes.default:
            if not granted and scopes.resource is not None:
                raise consent_required(client.app_id, client.display_name)
            return sorted(granted)
        missing = [p for p in scopes.permissions if p not in granted]
        if missing:
            raise consent_required(client.app_id, client.display_name)
        return list(scopes.permissions)

    # ---- the token endpoint ----

    async def token(self, tenant_ref: str, form: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, Any]:
        """Answer a token request, or raise ``OAuthError``."""
        for name, value in form.items():
            if "\x00" in value or len(value) > 16384:
                raise OAuthError("invalid_request", 900144, f"The parameter '{name[:64]}' is malformed.")
        grant_type = form.get("grant_type")
        if not grant_type:
            raise missing_parameter("grant_type")
        tenant_id = await self.tenant_of(tenant_ref)
        if grant_type == "client_credentials":
            return await self._client_credentials(tenant_id, form, headers)
        if grant_type == "authorization_code":
            return await self._authorization_code(tenant_id, form, headers)
        if grant_type == "refresh_token":
            return await self._refresh_token(tenant_id, form, headers)
        if grant_type == GRANT_DEVICE_CODE:
            return await self._device_code(tenant_id, form, headers)
        if grant_type == GRANT_JWT_BEARER and form.get("requested_token_use") == "on_behalf_of":
            return await self._on_behalf_of(tenant_id, form, headers)
        raise OAuthError(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type[:64]}'.",
        )

    async def _client_credentials(
        self, tenant_id: str | None, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        if tenant_id is None:
            raise OAuthError(
                "invalid_request",
                50059,
                "No tenant-identifying information found in either the request or implied by any provided "
                "credentials. Client credentials need the tenant id in the path, not common or organizations.",
            )
        client = await self.authenticate_client(form, headers, tenant_id, secret_required=True)
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
        resource = await self.resource_for(scopes, tenant_id)
        now = self.now()
        roles = sorted(await self.identity.granted_roles(tenant_id, client.app, resource, now))
        sp = await self.store.find_service_principal(tenant_id, client.app.app_id)
        token = self.app_access_token(
            tenant_id, client.app.app_id, client.app.display_name, sp.id if sp else None, roles, scopes.audience,
            now=now, extra=_cae(form),
        )  # fmt: skip
        return _token_body(token, None)

    async def _authorization_code(
        self, tenant_id: str | None, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        raw_code = form.get("code")
        if not raw_code:
            raise missing_parameter("code")
        redirect_uri = form.get("redirect_uri")
        if not redirect_uri:
            raise missing_parameter("redirect_uri")
        app = await self.application(form.get("client_id") or _basic_client_id(headers), tenant_id)
        public = redirect_uri in app.public_client_redirect_uris or redirect_uri in app.spa_redirect_uris
        client = await self.authenticate_client(
            form, headers, tenant_id, secret_required=not public and bool(app.secrets)
        )
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
        return await self._user_tokens(
            code.tenant_id,
            client,
            code.user_id,
            scopes,
            form,
            auth_time=code.auth_time,
            nonce=code.nonce,
            public=public or not client.authenticated,
        )

    async def _refresh_token(
        self, tenant_id: str | None, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        raw = form.get("refresh_token")
        if not raw:
            raise missing_parameter("refresh_token")
        now = self.now()
        token = await self.store.use_refresh_token(digest(raw), now)
        app = await self.application(form.get("client_id") or _basic_client_id(headers), tenant_id)
        if token is None or token.client_app_id != app.app_id or (tenant_id and token.tenant_id != tenant_id):
            raise OAuthError(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid: the refresh token is not valid.",
            )
        if token.used is not None:
            # A rotated token came back: someone holds a copy. Every token of the family dies.
            await self.store.revoke_refresh_family(token.family_id)
            raise OAuthError(
                "invalid_grant",
                70000,
                "The provided refresh token has already been used. All refresh tokens of this sign-in are revoked; sign in again.",
            )
        if token.expires <= now:
            raise OAuthError(
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            )
        client = await self.authenticate_client(form, headers, tenant_id, secret_required=not token.public_client)
        scopes = parse_scopes(form.get("scope") or " ".join(token.scopes))
        return await self._user_tokens(
            token.tenant_id,
            client,
            token.user_id,
            scopes,
            form,
            auth_time=token.auth_time,
            nonce=None,
            public=token.public_client,
            family_id=token.family_id,
        )

    async def _device_code(
        self, tenant_id: str | None, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        raw = form.get("device_code") or form.get("code")
        if not raw:
            raise missing_parameter("device_code")
        app = await self.application(form.get("client_id"), tenant_id)
        client = await self.authenticate_client(
            form, headers, tenant_id, secret_required=not app.is_fallback_public_client
        )
        now = self.now()
        code = await self.store.find_device_code(device_code_hash=digest(raw))
        if code is None or code.client_app_id != client.app.app_id:
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
        return await self._user_tokens(
            code.tenant_id,
            client,
            code.user_id,
            parse_scopes(" ".join(code.scopes)),
            form,
            auth_time=code.auth_time,
            nonce=None,
            public=not client.authenticated,
        )

    async def _on_behalf_of(
        self, tenant_id: str | None, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        assertion = form.get("assertion")
        if not assertion:
            raise missing_parameter("assertion")
        client = await self.authenticate_client(form, headers, tenant_id, secret_required=True)
        try:
            claims = decode_own_token(self.keys, assertion)
        except ValueError:
            raise OAuthError("invalid_grant", 50013, "Assertion failed signature validation.") from None
        audience = claims.get("aud")
        if audience not in {client.app.app_id, *client.app.identifier_uris}:
            raise OAuthError(
                "invalid_grant",
                500131,
                "Assertion audience does not match the Client app presenting the assertion. The audience in the "
                f"assertion was '{audience}' and the expected audience is '{client.app.app_id}'.",
            )
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= self.now().timestamp():
            raise OAuthError("invalid_grant", 500133, "Assertion is not within its valid time range.")
        user_id, token_tenant = claims.get("oid"), claims.get("tid")
        if "scp" not in claims or not isinstance(user_id, str) or not isinstance(token_tenant, str):
            raise OAuthError(
                "invalid_grant", 50027, "JWT token is invalid: on-behalf-of takes a delegated (user) token."
            )
        if claims.get("iss") != issuer(self.base_url, token_tenant) or (tenant_id and tenant_id != token_tenant):
            raise OAuthError("invalid_grant", 50027, "JWT token is invalid: issued for another tenant.")
        raw = form.get("scope")
        if not raw:
            raise missing_parameter("scope")
        return await self._user_tokens(
            token_tenant,
            client,
            user_id,
            parse_scopes(raw),
            form,
            auth_time=datetime.fromtimestamp(int(claims.get("iat", 0)), UTC),
            nonce=None,
            public=False,
            id_token=False,
        )

    async def _user_tokens(
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
    ) -> dict[str, Any]:
        """The token response of a user flow: access token, and ID token, refresh token, client_info as asked."""
        account = await self.store.find_account(tenant_id, user_id)
        if account is None:
            raise OAuthError("invalid_grant", 50034, "The user account does not exist in the directory. Sign in again.")
        resource = await self.resource_for(scopes, tenant_id)
        granted = await self.delegated_scopes(tenant_id, client.app, scopes, resource, user_id)
        now = self.now()
        access = self.user_access_token(
            account, client.app.app_id, client.app.display_name, granted, scopes.audience,
            now=now, authenticated=client.authenticated, extra=_cae(form),
        )  # fmt: skip
        shown = [scopes.qualified(v) for v in granted] + sorted(scopes.openid - {"offline_access"})
        body = _token_body(access, " ".join(shown))
        if "openid" in scopes.openid and id_token:
            body["id_token"] = mint_id_token(
                self.keys,
                self.base_url,
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
        if "offline_access" in scopes.openid:
            refresh = new_opaque()
            requested = [*(scopes.qualified(p) for p in scopes.permissions), *sorted(scopes.openid)]
            if scopes.default:
                requested.append(f"{scopes.resource or 'https://graph.microsoft.com'}/.default")
            await self.store.save_refresh_token(
                RefreshToken(
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
            )
            body["refresh_token"] = refresh
            body["scope"] = f"{body['scope']} offline_access".strip()
        if form.get("client_info") == "1":
            info = json.dumps({"uid": user_id, "utid": tenant_id}, separators=(",", ":")).encode()
            body["client_info"] = base64.urlsafe_b64encode(info).rstrip(b"=").decode()
        return body

    # ---- access tokens: every way of getting one ends here ----

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
            self.keys, self.base_url, tenant_id, app_id=app_id, now=now, roles=roles, audience=audience,
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
            self.keys, self.base_url, user.tenant_id, app_id=app_id, now=now, user_id=user.id,
            user_principal_name=user.user_principal_name, name=user.display_name, scopes=scopes, audience=audience,
            app_display_name=app_name, directory_admin=account.is_admin and audience in GRAPH_AUDIENCES,
            client_authenticated=authenticated, extra=extra, lifetime=lifetime,
        )  # fmt: skip

    async def operator_token(
        self,
        tenant_id: str,
        app_id: str,
        *,
        user_ref: str | None = None,
        permissions: list[str],
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> str:
        """A token for whoever runs the server (``presenced token``), built as the token endpoint builds them.

        The operator holds the signing keys, so consent does not apply: the permissions are the ones named,
        each checked against the catalog (delegated ones for a user token, application ones otherwise).
        """
        kind = GRAPH.scopes if user_ref is not None else GRAPH.roles
        unknown = [p for p in permissions if p not in kind]
        if unknown:
            what = "delegated" if user_ref is not None else "application"
            raise invalid_scope(f"Microsoft Graph has no {what} permission {', '.join(unknown)}.")
        app = await self.store.find_application(app_id)
        name = app.display_name if app is not None else None
        now = self.now()
        if user_ref is None:
            sp = await self.store.find_service_principal(tenant_id, app_id)
            return self.app_access_token(
                tenant_id, app_id, name, sp.id if sp else None, permissions, now=now, lifetime=lifetime
            )
        account = await self.store.find_account(tenant_id, user_ref)
        if account is None:
            raise OAuthError("invalid_grant", 50034, f"There is no user {user_ref!r} in tenant {tenant_id}.")
        return self.user_access_token(
            account, app_id, name, permissions, now=now, authenticated=False, lifetime=lifetime
        )

    # ---- device authorization ----

    async def device_authorization(self, tenant_ref: str, form: Mapping[str, str]) -> dict[str, Any]:
        tenant_id = await self.tenant_of(tenant_ref)
        app = await self.application(form.get("client_id"), tenant_id)
        raw = form.get("scope")
        if not raw:
            raise missing_parameter("scope")
        scopes = parse_scopes(raw)
        if tenant_id is not None:
            await self.resource_for(scopes, tenant_id)
        device_code, user_code = new_opaque(), new_user_code()
        now = self.now()
        await self.store.save_device_code(
            DeviceCode(
                digest(device_code),
                user_code,
                tenant_ref.lower(),
                app.app_id,
                tuple(raw.split()),
                "pending",
                self.device_interval,
                now + DEVICE_CODE_LIFETIME,
            )
        )
        uri = f"{self.base_url}/devicelogin"
        return {
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": uri,
            "expires_in": int(DEVICE_CODE_LIFETIME.total_seconds()),
            "interval": self.device_interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} to "
            "authenticate.",
        }

    async def pending_device_code(self, user_code: str) -> tuple[DeviceCode, Application]:
        """The device flow waiting for ``user_code``; ``OAuthError`` if there is none (or it expired)."""
        code = await self.store.find_device_code(user_code=user_code.strip().upper().replace("-", ""))
        if code is None or code.status != "pending":
            raise OAuthError("invalid_grant", 70000, "That code was not recognised. Check it and try again.")
        if code.expires <= self.now():
            raise OAuthError("expired_token", 70019, "That code has expired. Start the sign-in again on your device.")
        app = await self.store.find_application(code.client_app_id)
        if app is None:
            raise OAuthError("invalid_grant", 700016, "The application that asked for this code no longer exists.")
        return code, app

    async def device_consent_needed(
        self, code: DeviceCode, app: Application, account: Account
    ) -> list[ResourcePermission]:
        scopes = parse_scopes(" ".join(code.scopes))
        tenant_id = account.user.tenant_id
        self._check_tenant_allows(app, tenant_id, code.tenant_ref)
        resource = await self.resource_for(scopes, tenant_id)
        return await self.consent_needed(tenant_id, app, scopes, resource, account, force=False)

    async def finish_device_code(
        self, code: DeviceCode, account: Account, auth_time: datetime, *, approved: bool, consented: bool
    ) -> None:
        app = await self.store.find_application(code.client_app_id)
        if approved and app is not None and consented:
            scopes = parse_scopes(" ".join(code.scopes))
            resource = await self.resource_for(scopes, account.user.tenant_id)
            await self.record_consent(account.user.tenant_id, app, scopes, resource, account)
        finished = replace(
            code,
            status="approved" if approved else "declined",
            tenant_id=account.user.tenant_id,
            user_id=account.user.id,
            auth_time=auth_time,
        )
        if not await self.store.update_device_code(finished, "pending"):
            raise OAuthError("invalid_grant", 70000, "That code was already used.")

    # ---- authorize ----

    async def authorize_request(self, tenant_ref: str, params: Mapping[str, str]) -> AuthorizeRequest:
        """Validate an authorize request. Errors that name a trusted redirect URI are ``redirectable``."""
        tenant_id = await self.tenant_of(tenant_ref)
        client = await self.application(params.get("client_id"), tenant_id)
        redirect_uri = params.get("redirect_uri", "")
        registered = (*client.web_redirect_uris, *client.spa_redirect_uris, *client.public_client_redirect_uris)
        if redirect_uri not in registered:
            raise OAuthError(
                "invalid_request",
                50011,
                f"The redirect URI '{redirect_uri[:256]}' specified in the request does not match the redirect URIs "
                f"configured for the application '{client.app_id}'. Make sure the redirect URI sent in the request "
                "matches one added to your application in the Azure portal.",
                redirectable=False,
            )
        response_type = params.get("response_type", "")
        response_mode = params.get("response_mode") or "query"
        if response_mode not in {"query", "fragment", "form_post"}:
            raise OAuthError(
                "invalid_request", 900144, "response_mode must be query, fragment or form_post.", redirectable=False
            )
        if response_type != "code":
            raise OAuthError(
                "unsupported_response_type",
                700054,
                f"response_type '{response_type[:32]}' is not supported here: use the authorization code flow.",
            )
        public = redirect_uri not in client.web_redirect_uris or not client.secrets
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method") or ("plain" if challenge else None)
        if challenge is None and public:
            raise OAuthError(
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required for public clients: send code_challenge.",
            )
        if method not in {None, "S256", "plain"}:
            raise OAuthError("invalid_request", 9002327, "code_challenge_method must be S256 or plain.")
        if challenge is not None and not 43 <= len(challenge) <= 128:
            raise OAuthError("invalid_request", 9002326, "code_challenge must be 43 to 128 characters long.")
        raw = params.get("scope")
        if not raw:
            raise missing_parameter("scope")
        scopes = parse_scopes(raw)
        if "openid" not in scopes.openid and not scopes.permissions and not scopes.default:
            raise invalid_scope("The request must ask for at least openid or a permission.")
        resource = await self.resource_for(scopes, tenant_id or client.tenant_id)
        prompt = params.get("prompt")
        if prompt not in {None, "login", "consent", "none", "select_account"}:
            raise OAuthError("invalid_request", 90023, f"The prompt value '{prompt[:32]}' is not supported.")
        return AuthorizeRequest(
            tenant_ref=tenant_ref,
            tenant_id=tenant_id,
            client=client,
            redirect_uri=redirect_uri,
            response_mode=response_mode,
            state=params.get("state"),
            nonce=params.get("nonce"),
            code_challenge=challenge,
            code_challenge_method=method,
            scopes=scopes,
            resource=resource,
            prompt=prompt,
            login_hint=params.get("login_hint"),
        )

    def _check_tenant_allows(self, app: Application, tenant_id: str, tenant_ref: str) -> None:
        if tenant_ref.lower() not in TENANT_ALIASES and tenant_ref.lower() != tenant_id:
            raise OAuthError("invalid_request", 50020, "The user does not belong to the tenant this sign-in is for.")
        if app.sign_in_audience == "AzureADMyOrg" and app.tenant_id != tenant_id:
            raise OAuthError(
                "invalid_request",
                50020,
                f"User account from identity provider does not exist in tenant '{app.tenant_id}' and cannot access "
                f"the application '{app.app_id}' ({app.display_name}) in that tenant.",
            )

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
        granted = await self.identity.granted_scopes(tenant_id, client, resource, account.user.id, self.now())
        wanted = self.static_scopes(client, resource) if scopes.default else set(scopes.permissions)
        if scopes.default and granted and not force:
            return []
        wanted |= set(scopes.openid)
        missing = wanted if force else wanted - granted
        if not missing:
            return []
        # Show everything asked for, as Entra does, once anything is missing.
        listed = [resource.scopes[v] for v in sorted(wanted) if v in resource.scopes]
        return sorted(listed, key=lambda p: (p.value in {"openid", "profile", "email", "offline_access"}, p.value))

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
        wanted = self.static_scopes(client, resource) if scopes.default else set(scopes.permissions)
        wanted |= set(scopes.openid)
        if for_all:
            await self.identity.consent_for_all(tenant_id, client, resource, wanted, self.now())
        else:
            await self.identity.consent_for_user(tenant_id, client, resource, account.user.id, wanted, self.now())

    async def issue_code(self, request: AuthorizeRequest, account: Account, auth_time: datetime) -> str:
        tenant_id = account.user.tenant_id
        self._check_tenant_allows(request.client, tenant_id, request.tenant_ref)
        code = new_opaque()
        scopes = [*(request.scopes.qualified(p) for p in request.scopes.permissions), *sorted(request.scopes.openid)]
        if request.scopes.default:
            scopes.append(f"{request.scopes.resource or 'https://graph.microsoft.com'}/.default")
        await self.store.save_code(
            AuthorizationCode(
                digest(code),
                tenant_id,
                request.client.app_id,
                account.user.id,
                request.redirect_uri,
                tuple(scopes),
                request.nonce,
                request.code_challenge,
                request.code_challenge_method,
                auth_time,
                self.now() + CODE_LIFETIME,
            )
        )
        return code


def _token_body(access_token: str, scope: str | None) -> dict[str, Any]:
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


def _cae(form: Mapping[str, str]) -> dict[str, Any]:
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


def _basic_client_id(headers: Mapping[str, str]) -> str | None:
    basic = headers.get("authorization", "")
    if basic[:6].lower() != "basic ":
        return None
    try:
        return base64.b64decode(basic[6:].strip()).decode().partition(":")[0]
    except (ValueError, UnicodeDecodeError):
        return None
