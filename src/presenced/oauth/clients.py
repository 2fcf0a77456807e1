"""Tenants and clients: which tenant a path names, which app a ``client_id`` is, and how a client proves
itself (a secret, by HTTP Basic or in the form), with Entra's errors (docs/identity.md, "Endpoints").

Times are real time: secrets never follow the emulator's clock.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from presenced.clock import real_now
from presenced.oauth.errors import OAuthError, missing_parameter
from presenced.services.credentials import same_digest
from presenced.services.entities import Application
from presenced.services.ports import IdentityStore

TENANT_ALIASES = frozenset({"common", "organizations"})
CODE_LIFETIME = timedelta(minutes=10)
REFRESH_LIFETIME = timedelta(days=90)
DEVICE_CODE_LIFETIME = timedelta(minutes=15)
GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True, slots=True)
class Client:
    app: Application
    #: It proved itself with a secret (``appidacr`` 1).
    authenticated: bool


class Clients:
    def __init__(self, store: IdentityStore, now: Callable[[], datetime] = real_now) -> None:
        self._store = store
        self._now = now

    # ---- tenants ----

    async def tenant_of(self, tenant_ref: str) -> str | None:
        """The tenant a path segment names: a GUID that exists, or None for common/organizations."""
        lowered = tenant_ref.lower()
        if lowered in TENANT_ALIASES:
            return None
        tenant_id = _guid(lowered) if len(lowered) == 36 else ""
        if not tenant_id or await self._store.get_tenant(tenant_id) is None:
            raise OAuthError(
                "invalid_request",
                90002,
                f"Tenant '{tenant_ref[:64]}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud.",
            )
        return tenant_id

    # ---- clients ----

    async def application(self, client_id: str | None, tenant_id: str | None) -> Application:
        if not client_id:
            raise missing_parameter("client_id")
        guid = _guid(client_id) if len(client_id) == 36 else ""
        app = await self._store.find_application(guid) if guid else None
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
            )
        return app

    async def authenticate_client(
        self,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        tenant_id: str | None,
        *,
        secret_required: bool,
        app: Application | None = None,
    ) -> Client:
        """The calling client (``app``, if the caller already looked it up); ``secret_required`` when the grant
        is for confidential clients only."""
        client_id, secret = client_credentials(form, headers)
        if app is None:
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
            now = self._now()
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

    def check_tenant_allows(self, app: Application, tenant_id: str, tenant_ref: str) -> None:
        """A user of ``tenant_id`` may sign in to ``app`` on the path's tenant: theirs (or common), and an app
        available there."""
        if tenant_ref.lower() not in TENANT_ALIASES and tenant_ref.lower() != tenant_id:
            raise OAuthError("invalid_request", 50020, "The user does not belong to the tenant this sign-in is for.")
        if app.sign_in_audience == "AzureADMyOrg" and app.tenant_id != tenant_id:
            raise OAuthError(
                "invalid_request",
                50020,
                f"User account from identity provider does not exist in tenant '{app.tenant_id}' and cannot access "
                f"the application '{app.app_id}' ({app.display_name}) in that tenant.",
            )


@lru_cache(maxsize=1024)
def _guid(text: str) -> str:
    """``text`` as a GUID in its canonical form, or "" if it is not one."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return ""


def client_credentials(form: Mapping[str, str], headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The client a token request is from and its secret: HTTP Basic's, else the form's
    ``client_id`` and ``client_secret``. A Basic header that does not decode, or that names another
    client than the form, is refused."""
    basic = headers.get("authorization", "")
    from_form = form.get("client_id")
    if basic[:6].lower() != "basic ":
        return from_form, form.get("client_secret")
    try:
        from_header, _, secret = base64.b64decode(basic[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise OAuthError("invalid_client", 7000215, "Invalid client secret provided.", status=401) from None
    if from_header and from_form and from_header.lower() != from_form.lower():
        raise OAuthError(
            "invalid_client",
            700016,
            "The client_id of the request body and of the Authorization header differ.",
            status=401,
        )
    return from_header or from_form, secret


def requested_client_id(form: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The client a token request is from (``client_credentials``'s first half)."""
    return client_credentials(form, headers)[0]


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def registered_redirect(app: Application, uri: str) -> bool:
    """Whether ``uri`` is one of the app's redirect URIs.

    Exact, except that a public client's ``http`` loopback URI matches on any port, as Entra's
    does: desktop apps listen on whatever port is free.
    """
    if uri in (*app.web_redirect_uris, *app.spa_redirect_uris, *app.public_client_redirect_uris):
        return True
    wanted = urlsplit(uri)
    if wanted.scheme != "http" or wanted.hostname not in _LOOPBACK:
        return False
    return any(
        (known.scheme, known.hostname, known.path or "/", known.query)
        == (wanted.scheme, wanted.hostname, wanted.path or "/", wanted.query)
        for known in map(urlsplit, app.public_client_redirect_uris)
    )


def is_public_redirect(app: Application, uri: str) -> bool:
    """A code for this redirect URI goes to a public client (PKCE, no secret): any but a web URI of an app
    that has a secret."""
    return uri not in app.web_redirect_uris or not app.secrets
