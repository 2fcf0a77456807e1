"""The identity platform's HTTP face: discovery, token, device code, and the sign-in and consent pages.

Forms carry a CSRF token that must match a cookie (double submit), and every
cookie is HttpOnly, SameSite=Lax, and Secure when the server is on HTTPS.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from presenced.oauth.clients import TENANT_ALIASES
from presenced.oauth.errors import OAuthError
from presenced.oauth.server import AuthorizationServer, AuthorizeRequest, normal_user_code
from presenced.oauth.signin import Session, SignIn, SignInRefused
from presenced.services.ports import Account, Application

SESSION_COOKIE = "presenced_session"
CSRF_COOKIE = "presenced_csrf"
MAX_FORM = 64 * 1024
_FORM_FIELDS = frozenset({"csrf", "step", "username", "password", "decision", "for_all", "user_code"})

templates = Environment(loader=PackageLoader("presenced.web", "templates"), autoescape=select_autoescape())


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page, with a CSRF token for its forms (and the cookie that token must match)."""
    token = request.cookies.get(CSRF_COOKIE)
    fresh = not token or len(token) > 64
    if fresh:
        token = secrets.token_urlsafe(24)
    body = templates.get_template(name).render(csrf=token, **context)
    response = HTMLResponse(body, status, headers=_PAGE_HEADERS)
    if fresh:
        _set_cookie(request, response, CSRF_COOKIE, token or "", max_age=None)
    return response


_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "form-action *; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )


def message(request: Request, heading: str, *lines: str, status: int = 200, code: int | None = None) -> HTMLResponse:
    return render(request, "message.html", status, heading=heading, lines=lines, code=code, error=status >= 400)


def _server(request: Request) -> AuthorizationServer:
    server: AuthorizationServer = request.app.state.oauth
    return server


def _signin(request: Request) -> SignIn:
    signin: SignIn = request.app.state.signin
    return signin


async def _form(request: Request) -> dict[str, str]:
    """The URL-encoded body as a dict (the last value of a repeated field), bounded in size."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM:
        raise OAuthError("invalid_request", 900144, "The request body is too large.")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded.", redirectable=False
        )
    body = await request.body()
    if len(body) > MAX_FORM:
        raise OAuthError("invalid_request", 900144, "The request body is too large.")
    form = await request.form(max_files=0, max_fields=200)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _csrf_ok(request: Request, form: Mapping[str, str]) -> bool:
    cookie, sent = request.cookies.get(CSRF_COOKIE, ""), form.get("csrf", "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def oauth_error_json(request: Request, error: OAuthError) -> JSONResponse:
    """Entra's error body (spec identity-platform §1.4)."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = secrets.token_hex(16)
    trace = f"{trace_id[:8]}-{trace_id[8:12]}-{trace_id[12:16]}-{trace_id[16:20]}-{trace_id[20:]}"
    correlation = (request.headers.get("client-request-id") or trace)[:64]
    body: dict[str, Any] = {
        "error": error.error,
        "error_description": f"AADSTS{error.code}: {error.description}\r\nTrace ID: {trace}\r\n"
        f"Correlation ID: {correlation}\r\nTimestamp: {now}",
        "error_codes": [error.code],
        "timestamp": now,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"{request.app.state.base_url}/error?code={error.code}",
    }
    if error.suberror:
        body["suberror"] = error.suberror
    return JSONResponse(body, error.status, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


# ---- discovery ----


async def openid_configuration(request: Request) -> Response:
    tenant = request.path_params["tenant"]
    base = request.app.state.base_url
    try:
        tenant_id = await _server(request).tenant_of(tenant)
    except OAuthError as error:
        return oauth_error_json(request, error)
    segment = tenant.lower() if tenant_id is None else tenant_id
    document = {
        "token_endpoint": f"{base}/{segment}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": f"{base}/{segment}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{tenant_id or '{tenantid}'}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{base}/{segment}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/{segment}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/{segment}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "oid",
            "email",
        ],
        "grant_types_supported": [
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ],
        "code_challenge_methods_supported": ["S256", "plain"],
        "tenant_region_scope": None,
        "cloud_instance_name": urlsplit(base).hostname,
        "cloud_graph_host_name": urlsplit(base).hostname,
        "msgraph_host": urlsplit(base).netloc,
    }
    return JSONResponse(document, headers={"Cache-Control": "max-age=86400, private"})


async def jwks(request: Request) -> Response:
    return JSONResponse(request.app.state.keys.jwks(), headers={"Cache-Control": "max-age=3600, private"})


# ---- token and device code ----


async def token(request: Request) -> Response:
    try:
        form = await _form(request)
        body = await _server(request).token(request.path_params["tenant"], form, request.headers)
    except OAuthError as error:
        return oauth_error_json(request, error)
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def devicecode(request: Request) -> Response:
    try:
        form = await _form(request)
        body = await _server(request).device_authorization(request.path_params["tenant"], form)
    except OAuthError as error:
        return oauth_error_json(request, error)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


# ---- authorize ----


async def authorize(request: Request) -> Response:
    tenant = request.path_params["tenant"]
    form: dict[str, str] = {}
    if request.method == "POST":
        try:
            form = await _form(request)
        except OAuthError as error:
            return message(request, "Sign-in failed", error.description, status=400, code=error.code)
    params = {**dict(request.query_params), **{k: v for k, v in form.items() if k not in _FORM_FIELDS}}
    server = _server(request)
    try:
        auth = await server.authorize_request(tenant, params)
    except OAuthError as error:
        if error.redirectable and params.get("redirect_uri"):
            # Raised only once the client and its redirect URI are known good: the app hears about it.
            mode = params.get("response_mode") if params.get("response_mode") in _RESPONSE_MODES else "query"
            return _send(params["redirect_uri"], mode or "query", _error_values(error, params.get("state")))
        return message(request, "Sign-in failed", error.description, status=400, code=error.code)
    action = f"{request.url.path}?{urlencode(params)}"
    step = form.get("step")
    if step is not None and not _csrf_ok(request, form):
        return message(request, "Sign-in failed", "The form expired. Go back and try again.", status=400)
    signin = _signin(request)
    session = await signin.session(request.cookies.get(SESSION_COOKIE))
    new_session_id: str | None = None
    if step == "signin":
        try:
            account = await signin.password(
                auth.tenant_id, form.get("username", ""), form.get("password", ""), _client_address(request)
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
        _set_cookie(request, response, SESSION_COOKIE, new_session_id, max_age=None)
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
        server.check_tenant_allows(auth.client, tenant_id, auth.tenant_ref)
        resource = auth.resource
        if resource.app_id != auth.client.app_id:
            resource = await server.resource_for(auth.scopes, tenant_id)
        if step == "consent":
            if form.get("decision") != "accept":
                return _redirect_error(
                    auth, "access_denied", 65004, "User declined to consent to access the app.", subcode="cancel"
                )
            needed = await server.consent_needed(tenant_id, auth.client, auth.scopes, resource, account, force=True)
            if server.admin_needed(needed, account):
                return _admin_needed(request, auth.client, needed)
            for_all = form.get("for_all") == "1" and account.is_admin
            await server.record_consent(tenant_id, auth.client, auth.scopes, resource, account, for_all=for_all)
        else:
            needed = await server.consent_needed(
                tenant_id, auth.client, auth.scopes, resource, account, force=auth.prompt == "consent"
            )
            if needed:
                if auth.prompt == "none":
                    return _redirect_error(auth, "consent_required", 65001, "The user has not consented to the app.")
                if server.admin_needed(needed, account):
                    return _admin_needed(request, auth.client, needed)
                return _consent_page(request, action, auth.client, needed, account, [])
        code = await server.issue_code(auth, account, session.auth_time)
    except OAuthError as error:
        return _redirect_error(auth, error.error, error.code, error.description, suberror=error.suberror)
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


_RESPONSE_MODES = frozenset({"query", "fragment", "form_post"})


def _send(redirect_uri: str, response_mode: str, values: Mapping[str, str | None]) -> Response:
    """Answer the app at its redirect URI, the way ``response_mode`` asks."""
    fields = [(k, v) for k, v in values.items() if v is not None]
    if response_mode == "form_post":
        body = templates.get_template("form_post.html").render(action=redirect_uri, fields=fields)
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})
    separator = "#" if response_mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(fields)}", 302)


def _error_values(error: OAuthError, state: str | None) -> dict[str, str | None]:
    return {
        "error": error.error,
        "error_description": f"AADSTS{error.code}: {error.description}",
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
        form = await _form(request)
    except OAuthError as error:
        return message(request, "Sign-in failed", error.description, status=400)
    if not _csrf_ok(request, form):
        return message(request, "Sign-in failed", "The form expired. Go back and try again.", status=400)
    server, signin = _server(request), _signin(request)
    user_code = form.get("user_code", "")
    try:
        code, app = await server.pending_device_code(user_code)
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
                tenant_id, form.get("username", ""), form.get("password", ""), _client_address(request)
            )
        except SignInRefused as refused:
            return _signin_page(request, action, app, refused.message, form.get("username"), status=400, hidden=hidden)
        new_session_id, session = await signin.start_session(account)
    elif session is None:
        return _signin_page(request, action, app, None, None, hidden=hidden)
    response = await _device_decision(request, server, code, app, session, form, step, hidden)
    if new_session_id is not None:
        _set_cookie(request, response, SESSION_COOKIE, new_session_id, max_age=None)
    return response


async def _device_decision(
    request: Request, server: AuthorizationServer, code: Any, app: Application, session: Session,
    form: Mapping[str, str], step: str | None, hidden: list[tuple[str, str]],
) -> Response:  # fmt: skip
    account = session.account
    try:
        needed = await server.device_consent_needed(code, app, account)
        if step != "consent":
            if server.admin_needed(needed, account):
                return _admin_needed(request, app, needed)
            return _consent_page(request, "/devicelogin", app, needed, account, hidden, device=True)
        if form.get("decision") != "accept":
            await server.finish_device_code(code, account, session.auth_time, approved=False, consented=False)
            return message(
                request, "Sign-in declined", f"You declined to sign in to {app.display_name} on your device."
            )
        if server.admin_needed(needed, account):
            return _admin_needed(request, app, needed)
        await server.finish_device_code(code, account, session.auth_time, approved=True, consented=bool(needed))
    except OAuthError as error:
        return message(request, "Sign-in failed", error.description, status=400, code=error.code)
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
            params.update(await _form(request))
    await _signin(request).end_session(request.cookies.get(SESSION_COOKIE))
    target = params.get("post_logout_redirect_uri")
    response: Response
    if target and await _registered_anywhere(request, target, params.get("client_id")):
        response = RedirectResponse(
            target + (f"{'&' if '?' in target else '?'}state={params['state']}" if params.get("state") else ""), 302
        )
    else:
        response = message(request, "You signed out of your account", "It's a good idea to close all browser windows.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def _registered_anywhere(request: Request, uri: str, client_id: str | None) -> bool:
    """A post-logout redirect must be a redirect URI the app (or, without client_id, some app) registered."""
    server = _server(request)
    if client_id:
        app = await server.store.find_application(client_id) if len(client_id) == 36 else None
        apps = [app] if app else []
    else:
        apps = [a for t in await server.store.list_tenants() for a in await server.store.list_applications(t.id)]
    return any(uri in (*a.web_redirect_uris, *a.spa_redirect_uris, *a.public_client_redirect_uris) for a in apps)


async def admin_consent(request: Request) -> Response:
    """``/{tenant}/adminconsent`` and ``/{tenant}/v2.0/adminconsent``: an administrator consents for the tenant."""
    v2 = "/v2.0/" in request.url.path
    tenant = request.path_params["tenant"]
    form: dict[str, str] = {}
    if request.method == "POST":
        try:
            form = await _form(request)
        except OAuthError as error:
            return message(request, "Admin consent failed", error.description, status=400)
    params = {**dict(request.query_params), **{k: v for k, v in form.items() if k not in _FORM_FIELDS}}
    server, signin = _server(request), _signin(request)
    try:
        tenant_id = await server.tenant_of(tenant)
        app = await server.application(params.get("client_id"), tenant_id)
    except OAuthError as error:
        return message(request, "Admin consent failed", error.description, status=400, code=error.code)
    redirect_uri = params.get("redirect_uri") or (app.web_redirect_uris or app.public_client_redirect_uris or ("",))[0]
    if redirect_uri not in (*app.web_redirect_uris, *app.spa_redirect_uris, *app.public_client_redirect_uris):
        return message(
            request, "Admin consent failed", "The redirect URI is not registered for this app.", status=400, code=50011
        )
    if v2 and not params.get("scope"):
        return message(
            request, "Admin consent failed", "The request must contain a 'scope' parameter.", status=400, code=900144
        )
    action = f"{request.url.path}?{urlencode(params)}"
    step = form.get("step")
    if step is not None and not _csrf_ok(request, form):
        return message(request, "Admin consent failed", "The form expired. Go back and try again.", status=400)
    session = await signin.session(request.cookies.get(SESSION_COOKIE))
    new_session_id = None
    if step == "signin":
        try:
            account = await signin.password(
                tenant_id, form.get("username", ""), form.get("password", ""), _client_address(request)
            )
        except SignInRefused as refused:
            return _signin_page(request, action, app, refused.message, form.get("username"), status=400)
        new_session_id, session = await signin.start_session(account)
    elif session is None:
        return _signin_page(request, action, app, None, None)
    response = await _admin_decision(request, server, app, session, params, form, action, redirect_uri, v2)
    if new_session_id is not None:
        _set_cookie(request, response, SESSION_COOKIE, new_session_id, max_age=None)
    return response


async def _admin_decision(
    request: Request, server: AuthorizationServer, app: Application, session: Session, params: Mapping[str, str],
    form: Mapping[str, str], action: str, redirect_uri: str, v2: bool,
) -> Response:  # fmt: skip
    account = session.account
    tenant_id = account.user.tenant_id
    state = params.get("state")

    def back(values: dict[str, str | None]) -> Response:
        fields = [(k, v) for k, v in {**values, "state": state}.items() if v is not None]
        return RedirectResponse(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(fields)}", 302)

    if not account.is_admin:
        return back(
            {"error": "access_denied", "error_description": "AADSTS90094: The grant requires admin permission."}
        )
    if app.sign_in_audience == "AzureADMyOrg" and app.tenant_id != tenant_id:
        return back(
            {
                "error": "access_denied",
                "error_description": "AADSTS50020: The app is not available in your organization.",
            }
        )
    if form.get("step") != "consent":
        permissions = _required_permissions(server, app)
        return _consent_page(request, action, app, permissions, account, [])
    if form.get("decision") != "accept":
        return back(
            {
                "error": "access_denied",
                "error_subcode": "cancel",
                "error_description": "AADSTS65004: The admin declined to consent to access the app.",
            }
        )
    now = datetime.now(UTC)
    scope = params.get("scope", "")
    try:
        if not v2 or ".default" in scope:
            await server.identity.grant_admin_consent(tenant_id, app, now)
        else:
            from presenced.oauth.scopes import parse_scopes

            scopes = parse_scopes(scope)
            resource = await server.resource_for(scopes, tenant_id)
            await server.identity.consent_for_all(
                tenant_id, app, resource, set(scopes.permissions) | set(scopes.openid), now
            )
    except OAuthError as error:
        return back({"error": error.error, "error_description": f"AADSTS{error.code}: {error.description}"})
    values: dict[str, str | None] = {"admin_consent": "True", "tenant": tenant_id}
    if v2:
        values["scope"] = scope
    return back(values)


def _required_permissions(server: AuthorizationServer, app: Application) -> list[Any]:
    from presenced.services.identity import GRAPH

    listed = []
    for access in app.required_resource_access:
        if access.resource_app_id == GRAPH.app_id:
            found = (
                GRAPH.scope_by_id(access.permission_id)
                if access.type == "Scope"
                else GRAPH.role_by_id(access.permission_id)
            )
            if found is not None:
                listed.append(found)
    return listed


async def home(request: Request) -> Response:
    base = request.app.state.base_url
    ca_url = f"{base}/tls/ca.pem" if request.app.state.ca_certificate else None
    return render(request, "home.html", base=base, ca_url=ca_url)


async def ca_certificate(request: Request) -> Response:
    path = request.app.state.ca_certificate
    if path is None:
        return Response(b"This server does not use a local certificate authority.\n", 404, media_type="text/plain")
    return Response(
        path.read_bytes(),
        media_type="application/x-pem-file",
        headers={"Content-Disposition": 'attachment; filename="presenced-ca.pem"'},
    )


async def error_page(request: Request) -> Response:
    code = request.query_params.get("code", "")[:16]
    return message(request, f"Error AADSTS{code}", "See the error_description of the response for what went wrong.")


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/tls/ca.pem", ca_certificate, methods=["GET"]),
    Route("/error", error_page, methods=["GET"]),
    Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    Route("/{tenant}/discovery/v2.0/keys", jwks, methods=["GET"]),
    Route("/{tenant}/discovery/keys", jwks, methods=["GET"]),
    Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    Route("/{tenant}/oauth2/v2.0/devicecode", devicecode, methods=["POST"]),
    Route("/{tenant}/oauth2/v2.0/authorize", authorize, methods=["GET", "POST"]),
    Route("/{tenant}/oauth2/v2.0/logout", logout, methods=["GET", "POST"]),
    Route("/{tenant}/adminconsent", admin_consent, methods=["GET", "POST"]),
    Route("/{tenant}/v2.0/adminconsent", admin_consent, methods=["GET", "POST"]),
    Route("/devicelogin", devicelogin, methods=["GET", "POST"]),
]
