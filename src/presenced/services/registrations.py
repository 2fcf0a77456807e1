"""App registrations: what makes one valid, and single changes to one, as the portal's forms make them.

``validate`` is the whole rule set, checked whenever a registration is saved (the directory API's
create and PATCH, the command line, the portal). Each function after it makes one change to a
registration and refuses what that change cannot be (a redirect URI already there, a permission
Microsoft Graph does not have); the result is validated as a whole when saved.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

from presenced.auth.permissions import CATALOG, GRAPH_APP_ID, GRAPH_AUDIENCES, Permission, PermissionKind
from presenced.errors import BadRequest, ResourceNotFound
from presenced.services.entities import Application, RequiredAccess

SIGN_IN_AUDIENCES = (
    "AzureADMyOrg",
    "AzureADMultipleOrgs",
    "AzureADandPersonalMicrosoftAccount",
    "PersonalMicrosoftAccount",
)
#: The platforms a redirect URI is registered for, by the directory API's names (``web``, ``spa``,
#: ``publicClient``), with the portal's words for them.
PLATFORMS = {
    "web": "Web",
    "spa": "Single-page application",
    "publicClient": "Public client/native (mobile & desktop)",
}
_PLATFORM_FIELDS = {
    "web": "web_redirect_uris",
    "spa": "spa_redirect_uris",
    "publicClient": "public_client_redirect_uris",
}
#: ``requiredResourceAccess`` types, with the kind of permission each names.
ACCESS_TYPES = {"Scope": PermissionKind.DELEGATED, "Role": PermissionKind.APPLICATION}
#: Schemes that would run or read something in the browser instead of reaching an app.
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "about", "blob", "filesystem"})


def validate(app: Application) -> None:
    """Refuse a registration that breaks any rule, with the first broken rule as the reason."""
    if not app.display_name.strip():
        raise BadRequest("displayName must not be empty.")
    if len(app.display_name) > 256:
        raise BadRequest("The name (displayName) may be at most 256 characters long.")
    if app.sign_in_audience not in SIGN_IN_AUDIENCES:
        raise BadRequest(f"signInAudience must be one of {', '.join(SIGN_IN_AUDIENCES)}.")
    for uri in (*app.web_redirect_uris, *app.spa_redirect_uris):
        check_redirect_uri(uri, web=True)
    for uri in app.public_client_redirect_uris:
        check_redirect_uri(uri, web=False)
    for access in app.required_resource_access:
        if access.type not in ACCESS_TYPES:
            raise BadRequest("requiredResourceAccess.resourceAccess.type must be Scope or Role.")
        if access.resource_app_id == GRAPH_APP_ID and graph_permission(access.type, access.permission_id) is None:
            raise BadRequest(
                f"requiredResourceAccess: Microsoft Graph has no {access.type} with id '{access.permission_id}'."
            )
    platforms = (app.web_redirect_uris, app.spa_redirect_uris, app.public_client_redirect_uris)
    everywhere = [uri for uris in platforms for uri in set(uris)]
    if len(everywhere) != len(set(everywhere)):
        raise BadRequest("A redirect URI may be registered for one platform only (web, spa or publicClient).")
    for uri in app.identifier_uris:
        parts = urlsplit(uri)
        if not parts.scheme or not (parts.netloc or parts.path) or any(c.isspace() or c in "#*" for c in uri):
            raise BadRequest(f"identifierUris: '{uri[:64]}' is not a valid absolute URI without a fragment.")
    if {u.rstrip("/").lower() for u in app.identifier_uris} & GRAPH_AUDIENCES:
        raise BadRequest("identifierUris: Microsoft Graph's identifiers cannot be used.")
    values = [s.value for s in app.api_scopes]
    if len(set(values)) != len(values):
        raise BadRequest("api.oauth2PermissionScopes values must be unique.")


def check_redirect_uri(uri: str, *, web: bool) -> None:
    """A web or single-page app's URI is https (http on localhost only); no URI may run script or read files."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in uri):
        shown = uri[:256].encode("unicode_escape").decode("ascii")
        raise BadRequest(f"Redirect URI '{shown}' contains a blank or a control character.")
    parts = urlsplit(uri)
    if not parts.scheme or len(uri) > 256 or "#" in uri:
        raise BadRequest(f"Redirect URI '{uri[:256]}' is not a valid absolute URI without a fragment.")
    if parts.scheme.lower() in _FORBIDDEN_SCHEMES:
        raise BadRequest(f"Redirect URI '{uri}' uses the scheme '{parts.scheme}', which is not allowed.")
    if web and parts.scheme not in {"https", "http"}:
        raise BadRequest(f"Redirect URI '{uri}' must use https (or http for localhost).")
    if web and parts.scheme == "http" and parts.hostname not in {"localhost", "127.0.0.1", "::1"}:
        raise BadRequest(f"Redirect URI '{uri}' must use https unless it points at localhost.")


def graph_permission(access_type: str, permission_id: str) -> Permission | None:
    """Microsoft Graph's permission with this id: a delegated one for ``Scope``, an application one for ``Role``."""
    kind = ACCESS_TYPES.get(access_type)
    return next((p for p in CATALOG if p.kind is kind and p.id == permission_id), None)


def new_application(
    tenant_id: str,
    display_name: str,
    sign_in_audience: str,
    now: datetime,
    *,
    platform: str | None = None,
    redirect_uri: str | None = None,
) -> Application:
    """A registration not yet saved: new ids, the name and audience, and at most one redirect URI."""
    app = Application(
        id=str(uuid.uuid4()),
        app_id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        display_name=display_name.strip(),
        sign_in_audience=sign_in_audience,
        is_fallback_public_client=False,
        web_redirect_uris=(),
        spa_redirect_uris=(),
        public_client_redirect_uris=(),
        required_resource_access=(),
        identifier_uris=(),
        api_scopes=(),
        created=now,
    )
    if redirect_uri and redirect_uri.strip():
        app = with_redirect_uri(app, platform or "", redirect_uri)
    return app


def redirect_uris(app: Application, platform: str) -> tuple[str, ...]:
    field = _PLATFORM_FIELDS.get(platform)
    if field is None:
        raise BadRequest(f"The platform must be one of: {', '.join(PLATFORMS.values())}.")
    uris: tuple[str, ...] = getattr(app, field)
    return uris


def with_redirect_uri(app: Application, platform: str, uri: str) -> Application:
    uri = uri.strip()
    current = redirect_uris(app, platform)
    if not uri:
        raise BadRequest("Enter a redirect URI.")
    if uri in current:
        raise BadRequest(f"'{uri[:256]}' is already a redirect URI of this platform.")
    return _with_uris(app, platform, (*current, uri))


def without_redirect_uri(app: Application, platform: str, uri: str) -> Application:
    current = redirect_uris(app, platform)
    if uri not in current:
        raise ResourceNotFound(f"'{uri[:256]}' is not a redirect URI of this platform.")
    return _with_uris(app, platform, tuple(u for u in current if u != uri))


def _with_uris(app: Application, platform: str, uris: tuple[str, ...]) -> Application:
    if platform == "web":
        return replace(app, web_redirect_uris=uris)
    if platform == "spa":
        return replace(app, spa_redirect_uris=uris)
    return replace(app, public_client_redirect_uris=uris)


def with_permission(app: Application, access_type: str, permission_id: str) -> Application:
    """The registration asking also for one of Microsoft Graph's permissions."""
    permission = graph_permission(access_type, permission_id)
    if permission is None:
        raise BadRequest("Choose one of the Microsoft Graph permissions listed.")
    access = RequiredAccess(GRAPH_APP_ID, permission.id, access_type)
    if access in app.required_resource_access:
        raise BadRequest(f"The app already asks for {permission.value} ({permission.kind.value}).")
    return replace(app, required_resource_access=(*app.required_resource_access, access))


def without_permission(app: Application, access: RequiredAccess) -> Application:
    if access not in app.required_resource_access:
        raise ResourceNotFound("The app does not ask for that permission.")
    return replace(app, required_resource_access=tuple(a for a in app.required_resource_access if a != access))
