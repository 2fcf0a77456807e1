"""The authorize endpoint's rules: which requests are valid (client, redirect URI, response type, PKCE,
scopes, prompt), and the authorization code a signed-in user's approval yields (docs/identity.md,
"Endpoints"). The pages that sign the user in and ask for consent are ``web.signin``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from presenced.oauth.clients import CODE_LIFETIME, Clients, is_public_redirect, registered_redirect
from presenced.oauth.consent import Consent
from presenced.oauth.errors import OAuthError, invalid_scope, missing_parameter
from presenced.oauth.scopes import ScopeRequest, parse_scopes
from presenced.services.credentials import digest, new_opaque
from presenced.services.entities import Account, Application, AuthorizationCode
from presenced.services.identity import Resource
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


@dataclass(frozen=True, slots=True)
class Authorize:
    _clients: Clients
    _consent: Consent
    _store: IdentityStore
    _now: Callable[[], datetime]

    async def request(self, tenant_ref: str, params: Mapping[str, str]) -> AuthorizeRequest:
        """Validate an authorize request.

        Refusals before the client and its redirect URI are known good carry no ``redirect_uri`` and
        are shown as a page; later ones carry the checked URI, so the app hears about them.
        """
        tenant_id = await self._clients.tenant_of(tenant_ref)
        client = await self._clients.application(params.get("client_id"), tenant_id)
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
        resource = await self._consent.resource_for(scopes, tenant_id or client.tenant_id)
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

    async def issue_code(self, request: AuthorizeRequest, account: Account, auth_time: datetime) -> str:
        tenant_id = account.user.tenant_id
        self._clients.check_tenant_allows(request.client, tenant_id, request.tenant_ref)
        code = new_opaque()
        scopes = [*(request.scopes.qualified(p) for p in request.scopes.permissions), *sorted(request.scopes.openid)]
        if request.scopes.default:
            scopes.append(f"{request.scopes.resource or 'https://graph.microsoft.com'}/.default")
        await self._store.save_code(
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
                self._now() + CODE_LIFETIME,
            )
        )
        return code
