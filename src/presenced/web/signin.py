"""The interactive side: authorize (sign-in and consent), device-code sign-in, sign-out, admin consent."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from presenced.errors import PresencedError
from presenced.oauth.admin_consent import AdminConsentRequest
from presenced.oauth.authorize import AuthorizeRequest
from presenced.oauth.clients import TENANT_ALIASES
from presenced.oauth.device import normal_user_code
from presenced.oauth.errors import OAuthError
from presenced.oauth.server import AuthorizationServer
from presenced.oauth.signin import Session, SignInRefused
from presenced.portal_session import SESSION_COOKIE
from presenced.services.entities import Account, Application
from presenced.web.pages import (
    FORM_FIELDS,
    client_address,
    csrf_ok,
    message,
    oauth_server,
    read_form,
    render,
    set_cookie,
    sign_in,
    templates,
)


async def authorize(request: Request) -> Response:
    tenant = request.path_params["tenant"]
    form: dict[str, str] = {}
    if request.method == "POST":
        try:
            form = await read_form(request)
        except OAuthError as error:
            return message(request, "Sign-in failed", error.description, status=400, code=error.aadsts)
    params = {**dict(request.query_params), **{k: v for k, v in form.items() if k not in FORM_FIELDS}}
    server = oauth_server(request)
    try:
        auth = await server.authorize.request(tenant, params)
    except OAuthError as error:
        if error.redirect_uri is not None:
            # Raised once the client and its redirect URI were found good: the app hears about it.
            return _send(error.redirect_uri, error.response_mode, _error_values(error, params.get("state")))
        return message(request, "Sign-in failed", error.description, status=400, code=error.aadsts)
    action = f"{request.url.path}?{urlencode(params)}"
    step = form.get("step")
    if step is not None and not csrf_ok(request, form):
        return message(request, "Sign-in failed", "The form expired. Go back and try again.", status=400)
    signin = sign_in(request)
    session = await signin.session(request.cookies.get(SESSION_COOKIE))
    new_session_id: str | None = None
    if step == "signin":
        try:
            account = await signin.password(
                auth.tenant_id, form.get("username", ""), form.get("password", ""), client_address(request)
            )
        except SignInRefused as refused:
            return _signin_page(request, action, auth.client, refused.message, form.get("username"), status=400)
        new_session_id, session = await signin.start_session(account)
    elif session is None or auth.prompt == "login":
        if auth.prompt == "none":
            return _redirect_error(
                auth, "login_required", 50058, "A silent sign-in request was sent but no user is signed in."
            )
        return _signin_page(request, action, auth.client, None, auth.login_hint)
    response = await _after_signin(request, server, auth, session, form, action)
    if new_session_id is not None:
        set_cookie(request, response, SESSION_COOKIE, new_session_id, max_age=None)
    return response


async def _after_signin(
    request: Request,
    server: AuthorizationServer,
    auth: AuthorizeRequest,
    session: Session,
    form: Mapping[str, str],
    action: str,
) -> Response:
    account = session.account
    tenant_id = account.user.tenant_id
    step = form.get("step")
    try:
        server.clients.check_tenant_allows(auth.client, tenant_id, auth.tenant_ref)
        resource = auth.resource
        if resource.app_id != auth.client.app_id:
            resource = await server.consent.resource_for(auth.scopes, tenant_id)
        if step == "consent":
            if form.get("decision") != "accept":
                return _redirect_error(
                    auth, "access_denied", 65004, "User declined to consent to access the app.", subcode="cancel"
                )
            needed = await server.consent.consent_needed(
                tenant_id, auth.client, auth.scopes, resource, account, force=True
            )
            if server.consent.admin_needed(needed, account):
                return _admin_needed(request, auth.client, needed)
            for_all = form.get("for_all") == "1" and account.is_admin
            await server.consent.record_consent(tenant_id, auth.client, auth.scopes, resource, account, for_all=for_all)
        else:
            needed = await server.consent.consent_needed(
                tenant_id, auth.client, auth.scopes, resource, account, force=auth.prompt == "consent"
            )
            if needed:
                if auth.prompt == "none":
                    return _redirect_error(auth, "consent_required", 65001, "The user has not consented to the app.")
                if server.consent.admin_needed(needed, account):
                    return _admin_needed(request, auth.client, needed)
                return _consent_page(request, action, auth.client, needed, account, [])
        code = await server.authorize.issue_code(auth, account, session.auth_time)
    except OAuthError as error:
        return _redirect_error(auth, error.error, error.aadsts, error.description, suberror=error.suberror)
    return _respond(auth, {"code": code, "state": auth.state, "session_state": account.user.id})


def _signin_page(
    request: Request, action: str, app: Application | None, error: str | None, username: str | None, *, status: int = 200,
    hidden: list[tuple[str, str]] | None = None,
) -> HTMLResponse:  # fmt: skip
    return render(
        request,
        "signin.html",
        status,
        action=action,
        app_name=app.display_name if app else None,
        error=error,
        username=username,
        hidden=hidden or [],
    )


def _consent_page(
    request: Request, action: str, app: Application, needed: list[Any], account: Account, hidden: list[tuple[str, str]],
    *, device: bool = False,
) -> HTMLResponse:  # fmt: skip
    return render(
        request,
        "consent.html",
        action=action,
        app_name=app.display_name,
        publisher=f"App id {app.app_id}",
        permissions=needed,
        user=account.user.user_principal_name,
        hidden=hidden,
        offer_org_consent=account.is_admin and not device,
        device=device,
    )


def _admin_needed(request: Request, app: Application, needed: list[Any]) -> HTMLResponse:
    names = ", ".join(p.value for p in needed if p.admin_consent_required)
    return message(
        request,
        "Need admin approval",
        f"{app.display_name} needs permission to access resources in your organization that only an admin can "
        f"grant ({names}). Ask an admin to grant permission to this app before you can use it.",
        status=403,
        code=90094,
    )


def _respond(auth: AuthorizeRequest, values: Mapping[str, str | None]) -> Response:
    return _send(auth.redirect_uri, auth.response_mode, values)


def _send(redirect_uri: str, response_mode: str, values: Mapping[str, str | None]) -> Response:
    """Answer the app at its redirect URI, the way ``response_mode`` asks."""
    fields = [(k, v) for k, v in values.items() if v is not None]
    if response_mode == "form_post":
        body = templates.get_template("form_post.html").render(action=redirect_uri, fields=fields)
        target = urlsplit(redirect_uri)
        # The page may only post to the app, and run nothing but its own one-line submit.
        headers = {
            "Cache-Control": "no-store",
            "Content-Security-Policy": f"default-src 'none'; script-src 'unsafe-inline'; "
            f"form-action {target.scheme}://{target.netloc}; frame-ancestors 'none'",
        }
        return HTMLResponse(body, headers=headers)
    separator = "#" if response_mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(fields)}", 302)


def _error_values(error: OAuthError, state: str | None) -> dict[str, str | None]:
    return {
        "error": error.error,
        "error_description": f"AADSTS{error.aadsts}: {error.description}",
        "suberror": error.suberror,
        "state": state,
    }


def _redirect_error(
    auth: AuthorizeRequest, error: str, code: int, text: str, *, subcode: str | None = None, suberror: str | None = None
) -> Response:
    values = {
        "error": error,
        "error_description": f"AADSTS{code}: {text}",
        "error_subcode": subcode,
        "suberror": suberror,
        "state": auth.state,
    }
    return _respond(auth, values)


# ---- device code sign-in ----


async def devicelogin(request: Request) -> Response:
    action = "/devicelogin"
    if request.method == "GET":
        return render(request, "device.html", action=action, error=None, user_code=request.query_params.get("code"))
    try:
        form = await read_form(request)
    except OAuthError as error:
        return message(request, "Sign-in failed", error.description, status=400)
    if not csrf_ok(request, form):
        return message(request, "Sign-in failed", "The form expired. Go back and try again.", status=400)
    server, signin = oauth_server(request), sign_in(request)
    user_code = form.get("user_code", "")
    try:
        code, app = await server.device_approval.pending(user_code)
    except OAuthError as error:
        return render(request, "device.html", 400, action=action, error=error.description, user_code=user_code)
    hidden = [("user_code", normal_user_code(user_code))]
    session = await signin.session(request.cookies.get(SESSION_COOKIE))
    new_session_id = None
    step = form.get("step")
    if step == "signin":
        tenant_id = None if code.tenant_ref in TENANT_ALIASES else code.tenant_ref
        try:
            account = await signin.password(
                tenant_id, form.get("username", ""), form.get("password", ""), client_address(request)
            )
        except SignInRefused as refused:
            return _signin_page(request, action, app, refused.message, form.get("username"), status=400, hidden=hidden)
        new_session_id, session = await signin.start_session(account)
    elif session is None:
        return _signin_page(request, action, app, None, None, hidden=hidden)
    response = await _device_decision(request, server, code, app, session, form, step, hidden)
    if new_session_id is not None:
        set_cookie(request, response, SESSION_COOKIE, new_session_id, max_age=None)
    return response


async def _device_decision(
    request: Request, server: AuthorizationServer, code: Any, app: Application, session: Session,
    form: Mapping[str, str], step: str | None, hidden: list[tuple[str, str]],
) -> Response:  # fmt: skip
    account = session.account
    try:
        needed = await server.device_approval.consent_needed(code, app, account)
        if step != "consent":
            if server.consent.admin_needed(needed, account):
                return _admin_needed(request, app, needed)
            return _consent_page(request, "/devicelogin", app, needed, account, hidden, device=True)
        if form.get("decision") != "accept":
            await server.device_approval.finish(code, account, session.auth_time, approved=False, consented=False)
            return message(
                request, "Sign-in declined", f"You declined to sign in to {app.display_name} on your device."
            )
        if server.consent.admin_needed(needed, account):
            return _admin_needed(request, app, needed)
        await server.device_approval.finish(code, account, session.auth_time, approved=True, consented=bool(needed))
    except OAuthError as error:
        return message(request, "Sign-in failed", error.description, status=400, code=error.aadsts)
    return message(
        request,
        "You're signed in",
        f"You have signed in to the {app.display_name} application on your device. You may now close this window.",
    )


# ---- sign-out and admin consent ----


async def logout(request: Request) -> Response:
    params = dict(request.query_params)
    if request.method == "POST":
        with contextlib.suppress(OAuthError):
            params.update(await read_form(request))
    signin = sign_in(request)
    session = await signin.session(request.cookies.get(SESSION_COOKIE))
    await signin.end_session(request.cookies.get(SESSION_COOKIE))
    target = params.get("post_logout_redirect_uri")
    response: Response
    session_tenant = session.account.user.tenant_id if session else None
    if target and await oauth_server(request).logout.may_return_to(
        target, params, request.path_params["tenant"], session_tenant
    ):
        state = params.get("state")
        query = f"{'&' if '?' in target else '?'}{urlencode({'state': state})}" if state else ""
        response = RedirectResponse(target + query, 302)
    else:
        response = message(request, "You signed out of your account", "It's a good idea to close all browser windows.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def admin_consent(request: Request) -> Response:
    """``/{tenant}/adminconsent`` and ``/{tenant}/v2.0/adminconsent``: an administrator consents for the tenant."""
    v2 = "/v2.0/" in request.url.path
    tenant = request.path_params["tenant"]
    form: dict[str, str] = {}
    if request.method == "POST":
        try:
            form = await read_form(request)
        except OAuthError as error:
            return message(request, "Admin consent failed", error.description, status=400)
    params = {**dict(request.query_params), **{k: v for k, v in form.items() if k not in FORM_FIELDS}}
    server, signin = oauth_server(request), sign_in(request)
    try:
        consent = await server.admin_consent.request(tenant, params, v2=v2)
    except OAuthError as error:
        return message(request, "Admin consent failed", error.description, status=400, code=error.aadsts)
    app, tenant_id = consent.app, consent.tenant_id
    action = f"{request.url.path}?{urlencode(params)}"
    step = form.get("step")
    if step is not None and not csrf_ok(request, form):
        return message(request, "Admin consent failed", "The form expired. Go back and try again.", status=400)
    session = await signin.session(request.cookies.get(SESSION_COOKIE))
    new_session_id = None
    if step == "signin":
        try:
            account = await signin.password(
                tenant_id, form.get("username", ""), form.get("password", ""), client_address(request)
            )
        except SignInRefused as refused:
            return _signin_page(request, action, app, refused.message, form.get("username"), status=400)
        new_session_id, session = await signin.start_session(account)
    elif session is None:
        return _signin_page(request, action, app, None, None)
    response = await _admin_decision(request, server, consent, session, form, action, params.get("state"))
    if new_session_id is not None:
        set_cookie(request, response, SESSION_COOKIE, new_session_id, max_age=None)
    return response


async def _admin_decision(
    request: Request, server: AuthorizationServer, consent: AdminConsentRequest, session: Session,
    form: Mapping[str, str], action: str, state: str | None,
) -> Response:  # fmt: skip
    """The consent page, then the answer to the app's redirect URI: consent given, declined, or refused."""
    account, redirect_uri = session.account, consent.redirect_uri

    def back(values: dict[str, str | None]) -> Response:
        fields = [(k, v) for k, v in {**values, "state": state}.items() if v is not None]
        return RedirectResponse(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(fields)}", 302)

    try:
        offer = await server.admin_consent.offer(consent, account)
        if form.get("step") != "consent":
            return _consent_page(request, action, consent.app, offer.permissions, account, [])
        if form.get("decision") != "accept":
            return back(
                {
                    "error": "access_denied",
                    "error_subcode": "cancel",
                    "error_description": "AADSTS65004: The admin declined to consent to access the app.",
                }
            )
        await server.admin_consent.grant(offer)
    except OAuthError as error:
        return back({"error": error.error, "error_description": f"AADSTS{error.aadsts}: {error.description}"})
    except PresencedError as error:
        return back({"error": "invalid_request", "error_description": f"AADSTS650056: {error.message}"})
    values: dict[str, str | None] = {"admin_consent": "True", "tenant": account.user.tenant_id}
    if consent.v2:
        values["scope"] = consent.scope
    return back(values)
