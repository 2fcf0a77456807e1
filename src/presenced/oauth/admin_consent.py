"""Admin consent (``/{tenant}/adminconsent`` and its v2.0 form): an administrator consents for the whole
organization, to what the registration asks for or to the scopes named (docs/identity.md, "Consent").

The portal's page asks and shows; every rule is here: which app and redirect URI, who may consent
(an administrator of the tenant the request names, for an app available there), and what is granted.
Each refusal is an ``OAuthError`` with Entra's code, which the page sends back to the app's redirect
URI (or shows, when there is no redirect URI to trust).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from presenced.clock import real_now
from presenced.oauth.clients import TENANT_ALIASES, Clients, registered_redirect
from presenced.oauth.consent import Consent
from presenced.oauth.errors import OAuthError
from presenced.oauth.scopes import parse_scopes
from presenced.services.entities import Account, Application
from presenced.services.identity import IdentityService, Resource, ResourcePermission


@dataclass(frozen=True, slots=True)
class AdminConsentRequest:
    """A checked request: the app, where to send the answer, and what is asked."""

    tenant_ref: str
    #: The tenant the path names; None for ``common`` / ``organizations`` (the administrator's own).
    tenant_id: str | None
    app: Application
    redirect_uri: str
    #: The v2.0 endpoint: ``scope`` is required, and names what is granted unless it is ``/.default``.
    v2: bool
    scope: str

    @property
    def dynamic(self) -> bool:
        """Consent to the scopes named, rather than to everything the registration asks for."""
        return self.v2 and ".default" not in self.scope


@dataclass(frozen=True, slots=True)
class AdminConsentOffer:
    """What an administrator is asked, and what accepting grants."""

    request: AdminConsentRequest
    account: Account
    permissions: list[ResourcePermission]
    #: For the scopes named (v2.0 without ``/.default``): their resource and the scopes; else None.
    resource: Resource | None = None
    asked: frozenset[str] = frozenset()


class AdminConsent:
    def __init__(
        self, clients: Clients, consent: Consent, identity: IdentityService, now: Callable[[], datetime] = real_now
    ) -> None:
        self._clients = clients
        self._consent = consent
        self._identity = identity
        self._now = now

    async def request(self, tenant_ref: str, params: Mapping[str, str], *, v2: bool) -> AdminConsentRequest:
        """The request's app (known in the tenant) and redirect URI (one of the app's), and on v2.0 a scope."""
        tenant_id = await self._clients.tenant_of(tenant_ref)
        app = await self._clients.application(params.get("client_id"), tenant_id)
        registered = app.web_redirect_uris or app.public_client_redirect_uris or ("",)
        redirect_uri = params.get("redirect_uri") or registered[0]
        if not registered_redirect(app, redirect_uri):
            raise OAuthError("invalid_request", 50011, "The redirect URI is not registered for this app.")
        if v2 and not params.get("scope"):
            raise OAuthError("invalid_request", 900144, "The request must contain a 'scope' parameter.")
        return AdminConsentRequest(tenant_ref, tenant_id, app, redirect_uri, v2, params.get("scope", ""))

    def check_administrator(self, request: AdminConsentRequest, account: Account) -> None:
        """The signed-in person may consent for their organization: an administrator of the tenant the request
        names (or any, on ``common``), for an app available there."""
        tenant_id, path_tenant = account.user.tenant_id, request.tenant_ref.lower()
        if path_tenant not in TENANT_ALIASES and path_tenant != tenant_id:
            raise OAuthError("access_denied", 50020, "The signed-in administrator belongs to another tenant.")
        if not account.is_admin:
            raise OAuthError("access_denied", 90094, "The grant requires admin permission.")
        if request.app.sign_in_audience == "AzureADMyOrg" and request.app.tenant_id != tenant_id:
            raise OAuthError("access_denied", 50020, "The app is not available in your organization.")

    async def offer(self, request: AdminConsentRequest, account: Account) -> AdminConsentOffer:
        """What ``account`` is asked to consent to, once found to be an administrator who may: exactly what
        accepting grants (the scopes named, or everything the registration asks for)."""
        self.check_administrator(request, account)
        tenant_id = account.user.tenant_id
        if not request.dynamic:
            permissions = await self._identity.required_permissions(tenant_id, request.app)
            return AdminConsentOffer(request, account, permissions)
        scopes = parse_scopes(request.scope)
        resource = await self._consent.resource_for(scopes, tenant_id)
        asked = self._consent.wanted(request.app, scopes, resource)
        permissions = [resource.scopes[v] for v in sorted(asked) if v in resource.scopes]
        return AdminConsentOffer(request, account, permissions, resource, frozenset(asked))

    async def grant(self, offer: AdminConsentOffer) -> None:
        """Record the consent for the whole organization, as given by the offer's administrator."""
        account, app = offer.account, offer.request.app
        tenant_id, now, by = account.user.tenant_id, self._now(), account.user.id
        if offer.resource is not None:
            await self._identity.consent_for_all(tenant_id, app, offer.resource, set(offer.asked), now, granted_by=by)
        else:
            await self._identity.grant_admin_consent(tenant_id, app, now, granted_by=by)
