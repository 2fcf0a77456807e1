"""What every sign-in page and endpoint shares: templates, cookies, CSRF, forms, Entra's error body.

Forms carry a CSRF token that must match a cookie (double submit), and every
cookie is HttpOnly, SameSite=Lax, and Secure when the server is on HTTPS.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import unquote_plus

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from presenced.clock import real_now
from presenced.oauth.errors import OAuthError
from presenced.oauth.server import AuthorizationServer
from presenced.oauth.signin import SignIn
from presenced.wiring import services_of

CSRF_COOKIE = "presenced_csrf"
MAX_FORM = 64 * 1024
MAX_FIELDS = 200
FORM_TYPE = "application/x-www-form-urlencoded"
FORM_FIELDS = frozenset({"csrf", "step", "username", "password", "decision", "for_all", "user_code"})

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
        set_cookie(request, response, CSRF_COOKIE, token or "", max_age=None)
    return response


_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # Scripts and styles come from this server's files only. form-action stays open: a sign-in
    # form's answer redirects to the app, and browsers apply form-action to that redirect.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action *; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
}


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )


def message(request: Request, heading: str, *lines: str, status: int = 200, code: int | None = None) -> HTMLResponse:
    return render(request, "message.html", status, heading=heading, lines=lines, code=code, error=status >= 400)


def oauth_server(request: Request) -> AuthorizationServer:
    server: AuthorizationServer = services_of(request).oauth
    return server


def sign_in(request: Request) -> SignIn:
    signin: SignIn = services_of(request).signin
    return signin


async def read_form(request: Request) -> dict[str, str]:
    """The URL-encoded body as a dict (the last value of a repeated field), bounded in size."""
    content_type = form_type(request.headers)
    try:
        body = await request.body()
        if len(body) > MAX_FORM:
            raise OAuthError("invalid_request", 900144, "The request body is too large.")
        if content_type.lower() == FORM_TYPE:  # what clients send: no parameters
            fields = urlencoded_fields(body)
        else:
            form = await request.form(max_files=0, max_fields=MAX_FIELDS)
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
    except ClientDisconnect:
        raise _disconnected() from None
    except HTTPException as exc:  # Starlette's answer to a malformed form (too many fields, say)
        raise OAuthError("invalid_request", 900144, f"The form is not valid: {exc.detail}") from None
    return _without_nul(fields)


def form_type(headers: Mapping[str, str]) -> str:
    """The Content-Type of a form's request, once its declared size and its media type are found good."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM:
        raise OAuthError("invalid_request", 900144, "The request body is too large.")
    content_type = headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise OAuthError("invalid_request", 900144, "The request body must be application/x-www-form-urlencoded.")
    return content_type


async def read_plain_form(headers: Mapping[str, str], chunks: AsyncIterator[bytes]) -> dict[str, str]:
    """``read_form`` for a request straight from ASGI (``chunks``: its body as it comes) whose Content-Type is
    exactly ``FORM_TYPE``, as clients send it: the same checks, the same fields, the same errors."""
    form_type(headers)
    try:
        body = b"".join([chunk async for chunk in chunks])
        if len(body) > MAX_FORM:
            raise OAuthError("invalid_request", 900144, "The request body is too large.")
        fields = urlencoded_fields(body)
    except ClientDisconnect:
        raise _disconnected() from None
    except HTTPException as exc:
        raise OAuthError("invalid_request", 900144, f"The form is not valid: {exc.detail}") from None
    return _without_nul(fields)


def _disconnected() -> OAuthError:
    # The client left before sending it all: nothing to do, and nobody to tell.
    return OAuthError("invalid_request", 900144, "The request body did not arrive in full.")


def _without_nul(fields: dict[str, str]) -> dict[str, str]:
    # No form of these pages takes a NUL: refused here once, rather than by each store that cannot hold it.
    if any("\x00" in k or "\x00" in v for k, v in fields.items()):
        raise OAuthError("invalid_request", 900144, "The form holds a character that is not allowed (NUL).")
    return fields


def urlencoded_fields(body: bytes) -> dict[str, str]:
    """The fields of a URL-encoded body as Starlette's form parser reads them, at a fraction of its cost.

    The same rules (python-multipart's ``QuerystringParser``, Starlette's ``FormParser``): fields are
    separated by ``&`` (empty ones skipped), a field's name ends at its first ``=`` (a field without one
    has the empty value), both are read as latin-1 and then percent- and plus-decoded (``unquote_plus``,
    UTF-8), a repeated name keeps its last value, and more than ``MAX_FIELDS`` fields is an error.
    """
    chunks = [chunk for chunk in body.split(b"&") if chunk]
    if len(chunks) > MAX_FIELDS:
        raise HTTPException(400, f"Too many fields. Maximum number of fields is {MAX_FIELDS}.")
    fields: dict[str, str] = {}
    for chunk in chunks:
        name, _, value = chunk.partition(b"=")
        fields[unquote_plus(name.decode("latin-1"))] = unquote_plus(value.decode("latin-1"))
    return fields


def csrf_ok(request: Request, form: Mapping[str, str]) -> bool:
    cookie, sent = request.cookies.get(CSRF_COOKIE, ""), form.get("csrf", "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def oauth_error_json(request: Request, error: OAuthError) -> JSONResponse:
    """Entra's error body (docs/identity.md)."""
    now = real_now().strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = secrets.token_hex(16)
    trace = f"{trace_id[:8]}-{trace_id[8:12]}-{trace_id[12:16]}-{trace_id[16:20]}-{trace_id[20:]}"
    correlation = (request.headers.get("client-request-id") or trace)[:64]
    body: dict[str, Any] = {
        "error": error.error,
        "error_description": f"AADSTS{error.aadsts}: {error.description}\r\nTrace ID: {trace}\r\n"
        f"Correlation ID: {correlation}\r\nTimestamp: {now}",
        "error_codes": [error.aadsts],
        "timestamp": now,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"{services_of(request).base_url}/error?code={error.aadsts}",
    }
    if error.suberror:
        body["suberror"] = error.suberror
    return JSONResponse(body, error.status, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


# ---- discovery ----
