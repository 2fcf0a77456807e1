"""The authorization server: the token endpoint plus the interactive side — authorize requests,
consent, authorization codes and device-code approval (docs/identity.md).

Protocol mechanics live here; who granted what lives in ``IdentityService``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from presenced.auth.permissions import OPENID_SCOPES
from presenced.clock import real_now
from presenced.oauth.admin_consent import AdminConsent
from presenced.oauth.clients import CODE_LIFETIME, is_public_redirect, registered_redirect
from presenced.oauth.errors import OAuthError, invalid_scope, missing_parameter
from presenced.oauth.grants import TokenEndpoint
from presenced.oauth.keys import SigningKeys
from presenced.oauth.logout import Logout
from presenced.oauth.scopes import ScopeRequest, parse_scopes
from presenced.services.credentials import digest, new_opaque
from presenced.services.entities import Account, Application, AuthorizationCode, DeviceCode
from presenced.services.identity import IdentityService, Resource, ResourcePermission
from presenced.services.ports import IdentityStore


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


def normal_user_code(typed: str) -> str:
    """A user code as typed (any case, spaces or dashes) in the form it was issued."""
    return "".join(typed.split()).upper().replace("-", "")[:32]


class AuthorizationServer(TokenEndpoint):
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
        super().__init__(identity, store, keys, base_url, device_interval=device_interval, now=now)
        #: The interactive steps that are not sign-in itself, each its own collaborator.
        self.admin_consent = AdminConsent(self)
        self.logout = Logout(self)

    async def pending_device_code(self, user_code: str) -> tuple[DeviceCode, Application]:
        """The device flow waiting for ``user_code``; ``OAuthError`` if there is none (or it expired)."""
        code = await self.store.find_device_code(user_code=digest(normal_user_code(user_code)))
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
        self.check_tenant_allows(app, tenant_id, code.tenant_ref)
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
        """Validate an authorize request.

        Refusals before the client and its redirect URI are known good carry no ``redirect_uri`` and
        are shown as a page; later ones carry the checked URI, so the app hears about them.
        """
        tenant_id = await self.tenant_of(tenant_ref)
        client = await self.application(params.get("client_id"), tenant_id)
        redirect_uri = params.get("redirect_uri", "")
        if not registered_redirect(client, redirect_uri):
            raise OAuthError(
                "invalid_request",
                50011,
                f"The redirect URI '{redirect_uri[:256]}' specified in the request does not match the redirect URIs "
                f"configured for the application '{client.app_id}'. Make sure the redirect URI sent in the request "
                "matches one added to your application in the Azure portal.",
            )
        response_mode = params.get("response_mode") or "query"
        if response_mode not in {"query", "fragment", "form_post"}:
            raise OAuthError("invalid_request", 900144, "response_mode must be query, fragment or form_post.")
        try:
            return await self._checked_request(tenant_ref, tenant_id, client, redirect_uri, response_mode, params)
        except OAuthError as error:
            error.redirect_uri, error.response_mode = redirect_uri, response_mode
            raise

    async def _checked_request(
        self,
        tenant_ref: str,
        tenant_id: str | None,
        client: Application,
        redirect_uri: str,
        response_mode: str,
        params: Mapping[str, str],
    ) -> AuthorizeRequest:
        response_type = params.get("response_type", "")
        if response_type != "code":
            raise OAuthError(
                "unsupported_response_type",
                700054,
                f"response_type '{response_type[:32]}' is not supported here: use the authorization code flow.",
            )
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method") or ("plain" if challenge else None)
        if challenge is None and is_public_redirect(client, redirect_uri):
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
        granted = await self.identity.granted_scopes(tenant_id, client, resource, account.user.id)
        wanted = self.static_scopes(client, resource) if scopes.default else set(scopes.permissions)
        # /.default asks again only when nothing but sign-in was ever granted (the token needs more).
        if scopes.default and granted - OPENID_SCOPES and not force:
            return []
        wanted |= set(scopes.openid)
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
        wanted = self.static_scopes(client, resource) if scopes.default else set(scopes.permissions)
        wanted |= set(scopes.openid)
        by = account.user.id
        if for_all:
            await self.identity.consent_for_all(tenant_id, client, resource, wanted, self.now(), granted_by=by)
        else:
            await self.identity.consent_for_user(
                tenant_id, client, resource, account.user.id, wanted, self.now(), granted_by=by
            )

    async def issue_code(self, request: AuthorizeRequest, account: Account, auth_time: datetime) -> str:
        tenant_id = account.user.tenant_id
        self.check_tenant_allows(request.client, tenant_id, request.tenant_ref)
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
