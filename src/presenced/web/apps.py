"""App registrations, for the tenant's administrators, as in Entra's portal.

``/apps`` lists the tenant's registrations, ``/apps/new`` registers one, and
``/apps/{appId}`` is one app's page: overview, redirect URIs, client secrets,
API permissions with admin consent, deletion. Every change goes through the
service the directory API uses (``services.directory``, with ``services.registrations`` for
single changes), which validates and authorizes it the same way. A change answers with a
redirect back to the page and a notice, or the page again with the reason and a
4xx; a new client secret is the exception: its value is shown in the answer to
the form that added it (``render`` sends pages with ``Cache-Control: no-store``)
and never again, since only its hash is kept.

The routes of the granted-permissions page (``web.consents``) are listed here too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from presenced.auth.permissions import CATALOG, PermissionKind
from presenced.errors import BadRequest, PresencedError, ResourceNotFound
from presenced.services import registrations
from presenced.services.directory import Actor, DirectoryService
from presenced.services.entities import Account, Application, RequiredAccess
from presenced.services.identity import NewSecret
from presenced.web import consents
from presenced.web.pages import read_form
from presenced.web.portal import page, signed_in
from presenced.wiring import services_of

#: The account types the portal offers (Entra's other two are for personal Microsoft accounts).
AUDIENCES = {
    "AzureADMyOrg": "Accounts in this organizational directory only (single tenant)",
    "AzureADMultipleOrgs": "Accounts in any organizational directory (multitenant)",
}
#: A new client secret's lifetime choices, in days, as Entra's portal offers them.
SECRET_LIFETIMES = {"90": "90 days (3 months)", "180": "180 days (6 months)", "365": "1 year", "730": "2 years"}
DEFAULT_LIFETIME = "180"
DONE = {
    "registered": "The app is registered.",
    "uri-added": "The redirect URI is added.",
    "uri-removed": "The redirect URI is removed.",
    "secret-removed": "The client secret is deleted.",
    "permission-added": "The permission is added. It is not granted until someone consents to it.",
    "permission-removed": "The permission is removed from the app's configuration. Consent already given stays "
    "until it is revoked on Granted permissions.",
    "consented": "Admin consent is granted for everything the app asks for.",
    "consent-revoked": "Admin consent is revoked: the app's grants for all users and its application permissions "
    "are removed.",
    "deleted": "The app registration is deleted.",
}


def _directory(request: Request) -> DirectoryService:
    service: DirectoryService = services_of(request).directory
    return service


def _now(request: Request) -> datetime:
    """The token issuer's time: a secret's expiry is checked by that clock."""
    instant: datetime = services_of(request).oauth.now()
    return instant


def when(instant: datetime | None) -> str:
    return "" if instant is None else instant.strftime("%Y-%m-%d %H:%M UTC")


def _permission_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The "Add a permission" choices: each of Graph's permissions, delegated and application, by value."""
    groups = []
    for kind, heading, access_type in (
        (PermissionKind.DELEGATED, "Delegated permissions", "Scope"),
        (PermissionKind.APPLICATION, "Application permissions", "Role"),
    ):
        # OpenID scopes are delegated only; listed last, as they are sign-in rather than API access.
        listed = sorted((p for p in CATALOG if p.kind is kind), key=lambda p: (p.openid, p.value.lower()))
        words = "Delegated" if kind is PermissionKind.DELEGATED else "Application"
        options = [(f"{access_type}:{p.id}", f"{words}: {p.value} ({p.admin_display_name})") for p in listed]
        groups.append((heading, options))
    return groups


PERMISSION_CHOICES = _permission_choices()


def _access(raw: str) -> tuple[str, str]:
    """A form's ``permission`` value (``Scope:<id>`` or ``Role:<id>``) as (type, permission id)."""
    access_type, _, permission_id = raw.partition(":")
    if access_type not in registrations.ACCESS_TYPES or not permission_id:
        raise BadRequest("Choose one of the Microsoft Graph permissions listed.")
    return access_type, permission_id


async def _registration(request: Request, account: Account) -> Application:
    """The path's app registration, if it is one of the administrator's tenant."""
    app = await _directory(request).application_by_app_id(Actor.signed_in(account), request.path_params["app_id"])
    if app is None:
        raise ResourceNotFound("Your organization has no app registration with this application (client) id.")
    return app


# ---- the list and a new registration ----


async def _list(request: Request, account: Account) -> Response:
    apps = await _directory(request).list_applications(Actor.signed_in(account))
    return page(
        request, "apps.html", account, "apps",
        notice=DONE.get(request.query_params.get("done", "")), apps=apps, audiences=AUDIENCES, when=when,
    )  # fmt: skip


async def _new(request: Request, account: Account) -> Response:
    tenant = await _directory(request).tenant(Actor.signed_in(account))
    form = await read_form(request) if request.method == "POST" else {}
    if request.method == "POST":
        try:
            app = await _register(request, account, form)
        except PresencedError as error:
            return page(
                request, "app_new.html", account, "apps", error.status, page_error=error.message, form=form,
                tenant=tenant, audiences=AUDIENCES, platforms=registrations.PLATFORMS,
            )  # fmt: skip
        return RedirectResponse(f"/apps/{app.app_id}?done=registered", 303)
    return page(request, "app_new.html", account, "apps", form=form, tenant=tenant, audiences=AUDIENCES,
                platforms=registrations.PLATFORMS)  # fmt: skip


async def _register(request: Request, account: Account, form: dict[str, str]) -> Application:
    name = form.get("name", "").strip()
    if not name:
        raise BadRequest("Enter a name for the app.")
    audience = form.get("audience", "")
    if audience not in AUDIENCES:
        raise BadRequest("Choose who may use the app (supported account types).")
    now = _now(request)
    tenant_id, platform, uri = account.user.tenant_id, form.get("platform"), form.get("redirect_uri")
    app = registrations.new_application(tenant_id, name, audience, now, platform=platform, redirect_uri=uri)
    return await _directory(request).register_application(Actor.signed_in(account), app, now)


# ---- one app's page ----


async def _show(
    request: Request,
    account: Account,
    app: Application,
    status: int = 200,
    error: str | None = None,
    new_secret: NewSecret | None = None,
) -> Response:
    # One read per section: the tenant; the service principal, its grants and its assignments (``of_app``).
    tenant = await _directory(request).tenant(Actor.signed_in(account))
    base_url: str = services_of(request).base_url
    permissions = await services_of(request).consents.of_app(app.tenant_id, app)
    return page(
        request,
        "app.html",
        account,
        "apps",
        status,
        notice=None if error or new_secret else DONE.get(request.query_params.get("done", "")),
        page_error=error,
        app=app,
        tenant=tenant,
        service_principal=permissions.service_principal,
        audience=AUDIENCES.get(app.sign_in_audience, app.sign_in_audience),
        authority=f"{base_url}/{app.tenant_id}",
        token_endpoint=f"{base_url}/{app.tenant_id}/oauth2/v2.0/token",
        platforms=registrations.PLATFORMS,
        uris={p: registrations.redirect_uris(app, p) for p in registrations.PLATFORMS},
        secrets=sorted(app.secrets, key=lambda s: s.end),
        lifetimes=SECRET_LIFETIMES,
        default_lifetime=DEFAULT_LIFETIME,
        new_secret=new_secret,
        requested=permissions.requested,
        permission_choices=PERMISSION_CHOICES,
        when=when,
    )


async def _app_page(request: Request, account: Account) -> Response:
    return await _show(request, account, await _registration(request, account))


Change = Callable[[Request, Account, Application, dict[str, str]], Awaitable[Any]]


def _change(done: str, anchor: str) -> Callable[[Change], Callable[[Request], Awaitable[Response]]]:
    """A form that changes the app: back to its page with a notice, else the page again with the reason."""

    def wrap(handler: Change) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request, account: Account) -> Response:
            app = await _registration(request, account)
            form = await read_form(request)
            try:
                await handler(request, account, app, form)
            except PresencedError as error:
                return await _show(request, account, app, error.status, error.message)
            return RedirectResponse(f"/apps/{app.app_id}?done={done}#{anchor}", 303)

        return signed_in(endpoint, admin=True)

    return wrap


@_change("uri-added", "redirect-uris")
async def add_redirect_uri(request: Request, account: Account, app: Application, form: dict[str, str]) -> None:
    changed = registrations.with_redirect_uri(app, form.get("platform", ""), form.get("uri", ""))
    await _directory(request).update_application(Actor.signed_in(account), changed)


@_change("uri-removed", "redirect-uris")
async def remove_redirect_uri(request: Request, account: Account, app: Application, form: dict[str, str]) -> None:
    changed = registrations.without_redirect_uri(app, form.get("platform", ""), form.get("uri", ""))
    await _directory(request).update_application(Actor.signed_in(account), changed)


@_change("secret-removed", "secrets")
async def remove_secret(request: Request, account: Account, app: Application, form: dict[str, str]) -> None:
    key_id = form.get("key_id", "")
    if not any(s.key_id == key_id for s in app.secrets):
        raise ResourceNotFound("The app has no such client secret (any more).")
    await _directory(request).remove_password(Actor.signed_in(account), app, key_id)


@_change("permission-added", "permissions")
async def add_permission(request: Request, account: Account, app: Application, form: dict[str, str]) -> None:
    changed = registrations.with_permission(app, *_access(form.get("permission", "")))
    await _directory(request).update_application(Actor.signed_in(account), changed)


@_change("permission-removed", "permissions")
async def remove_permission(request: Request, account: Account, app: Application, form: dict[str, str]) -> None:
    access_type, permission_id = _access(form.get("permission", ""))
    resource_app_id = form.get("resource", "")
    changed = registrations.without_permission(app, RequiredAccess(resource_app_id, permission_id, access_type))
    await _directory(request).update_application(Actor.signed_in(account), changed)


@_change("consented", "permissions")
async def grant_consent(request: Request, account: Account, app: Application, form: dict[str, str]) -> None:
    if not app.required_resource_access:
        raise BadRequest("The app asks for no permissions yet: add them first.")
    await _directory(request).grant_admin_consent(Actor.signed_in(account), app, _now(request))


@_change("consent-revoked", "permissions")
async def revoke_consent(request: Request, account: Account, app: Application, form: dict[str, str]) -> None:
    await _directory(request).revoke_admin_consent(Actor.signed_in(account), app)


async def _add_secret(request: Request, account: Account) -> Response:
    """Add a client secret and show its value, this once, in this answer."""
    app = await _registration(request, account)
    form = await read_form(request)
    description = form.get("description", "").strip()
    days = form.get("expires", "")
    try:
        if days not in SECRET_LIFETIMES:
            raise BadRequest("Choose when the secret expires.")
        now = _now(request)
        end = now + timedelta(days=int(days))
        added = await _directory(request).add_password(Actor.signed_in(account), app, description or None, now, end)
    except PresencedError as error:
        return await _show(request, account, app, error.status, error.message)
    return await _show(request, account, await _registration(request, account), new_secret=added)


async def _delete(request: Request, account: Account) -> Response:
    app = await _registration(request, account)
    form = await read_form(request)
    if form.get("confirm") != "yes":
        return await _show(request, account, app, 400, "Tick the box to confirm that the app registration goes.")
    await _directory(request).delete_application(Actor.signed_in(account), app.id)
    return RedirectResponse("/apps?done=deleted", 303)


_ONE = "/apps/{app_id}"

ROUTES = [
    Route("/apps", signed_in(_list, admin=True), methods=["GET"]),
    Route("/apps/new", signed_in(_new, admin=True), methods=["GET", "POST"]),
    Route(_ONE, signed_in(_app_page, admin=True), methods=["GET"]),
    Route(_ONE + "/redirect-uris", add_redirect_uri, methods=["POST"]),
    Route(_ONE + "/redirect-uris/remove", remove_redirect_uri, methods=["POST"]),
    Route(_ONE + "/secrets", signed_in(_add_secret, admin=True), methods=["POST"]),
    Route(_ONE + "/secrets/remove", remove_secret, methods=["POST"]),
    Route(_ONE + "/permissions", add_permission, methods=["POST"]),
    Route(_ONE + "/permissions/remove", remove_permission, methods=["POST"]),
    Route(_ONE + "/consent", grant_consent, methods=["POST"]),
    Route(_ONE + "/consent/revoke", revoke_consent, methods=["POST"]),
    Route(_ONE + "/delete", signed_in(_delete, admin=True), methods=["POST"]),
    *consents.ROUTES,
]
