"""The portal's common ground: who is signed in, the page layout, sign-in and sign-out, static files.

The portal is a first-party app of presenced (``PORTAL_APP_ID``). A signed-in
person acts through it with the delegated permissions a Teams client has
(``PORTAL_SCOPES``), checked by the same policy as any token; administrators
also manage the directory. Every form posts a CSRF token that must match its
cookie, and every change answers with a redirect (so reloading repeats nothing)
or, when the input is refused, the page again with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from presenced.errors import PresencedError
from presenced.oauth.errors import OAuthError
from presenced.oauth.signin import SignInRefused
from presenced.portal_session import PORTAL_APP_ID, SESSION_COOKIE, current_account, portal_principal
from presenced.services.entities import Account
from presenced.web.pages import (
    client_address,
    csrf_ok,
    read_form,
    render,
    set_cookie,
    sign_in,
)
from presenced.wiring import services_of

Handler = Callable[[Request, Account], Awaitable[Response]]


def page(
    request: Request, name: str, account: Account | None, section: str | None, status: int = 200, **context: Any
) -> HTMLResponse:
    """A portal page: the layout with navigation around template ``name``."""
    return render(request, name, status, account=account, section=section, request_path=request.url.path, **context)


def problem(request: Request, account: Account | None, heading: str, text: str, status: int) -> HTMLResponse:
    return page(request, "problem.html", account, None, status, heading=heading, text=text, back=_back(request))


def _back(request: Request) -> str:
    """Where "Back" leads: the page itself, or for a refused form the page it was posted from; always here."""
    if request.method == "GET":
        return _on_this_server(request.url.path, "/")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc:
        return "/"
    return _on_this_server(referer.path + (f"?{referer.query}" if referer.query else ""), "/")


def _on_this_server(raw: str | None, otherwise: str) -> str:
    """``raw`` if it is a path on this server, never another site (``//host``, ``/\\host``, control characters)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw or any(ord(c) < 32 for c in raw):
        return otherwise
    return raw


def signed_in(handler: Handler, *, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Run ``handler`` for a signed-in person (and, for a form, a good CSRF token); else send them to sign in."""

    async def endpoint(request: Request) -> Response:
        account = await current_account(request)
        if account is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/signin?next={quote(target, safe='')}", 303)
            return problem(request, None, "Signed out", "Your session has ended. Sign in and try again.", 401)
        if admin and not account.is_admin:
            return problem(
                request, account, "Administrators only", "Only an administrator of your organization can do this.", 403
            )
        if request.method == "POST":
            try:
                form = await read_form(request)
            except OAuthError as error:
                return problem(request, account, "Not accepted", error.description, 400)
            if not csrf_ok(request, form):
                return problem(request, account, "The form expired", "Go back, reload the page and try again.", 400)
        try:
            return await handler(request, account)
        except PresencedError as error:
            return problem(request, account, "Not accepted", error.message, error.status)

    return endpoint


def local_target(raw: str | None) -> str:
    """Where to go after signing in: a path on this server, never another site."""
    return _on_this_server(raw, "/me")


async def signin_page(request: Request) -> Response:
    target = local_target(request.query_params.get("next"))
    action = f"/signin?next={quote(target, safe='')}"
    if request.method == "GET":
        if await current_account(request) is not None:
            return RedirectResponse(target, 303)
        return render(request, "signin.html", action=action, app_name=None, error=None, username=None, hidden=[])
    try:
        form = await read_form(request)
    except OAuthError as error:
        return render(request, "signin.html", 400, action=action, app_name=None, error=error.description,
                      username=None, hidden=[])  # fmt: skip
    username = form.get("username", "")
    if not csrf_ok(request, form):
        return render(request, "signin.html", 400, action=action, app_name=None, username=username, hidden=[],
                      error="The form expired. Try again.")  # fmt: skip
    signin = sign_in(request)
    try:
        account = await signin.password(None, username, form.get("password", ""), client_address(request))
    except SignInRefused as refused:
        return render(request, "signin.html", 400, action=action, app_name=None, error=refused.message,
                      username=username, hidden=[])  # fmt: skip
    session_id, _ = await signin.start_session(account)
    response = RedirectResponse(target, 303)
    set_cookie(request, response, SESSION_COOKIE, session_id, max_age=None)
    return response


async def signout(request: Request) -> Response:
    """End the session (a POST with the CSRF token, so no other site can sign anyone out)."""
    try:
        form = await read_form(request)
    except OAuthError:
        form = {}
    if not csrf_ok(request, form):
        return problem(request, None, "The form expired", "Go back, reload the page and try again.", 400)
    account = await current_account(request)
    if account is not None:
        # Signing out of the portal ends its presence session at once (the page's own "leave" does not
        # fire for a form, which stays within the portal).
        with contextlib.suppress(PresencedError):
            await services_of(request).actions.clear_presence(portal_principal(account), None, PORTAL_APP_ID)
    await sign_in(request).end_session(request.cookies.get(SESSION_COOKIE))
    response = render(
        request, "message.html", heading="You signed out", lines=("You can close this window.",),
        code=None, error=False, link=("/signin", "Sign in again"),
    )  # fmt: skip
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---- static files: read once, served from memory ----

_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _load_static() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for item in resources.files("presenced.web").joinpath("static").iterdir():
        suffix = item.name[item.name.rfind(".") :]
        if item.is_file() and suffix in _STATIC_TYPES:
            files[item.name] = (item.read_bytes(), _STATIC_TYPES[suffix])
    return files


_STATIC = _load_static()


async def static_file(request: Request) -> Response:
    found = _STATIC.get(request.path_params["name"])
    if found is None:
        return Response(b"Not found\n", 404, media_type="text/plain")
    body, media_type = found
    # Short caching: a new release may change a file under the same name.
    headers = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
    return Response(body, media_type=media_type, headers=headers)
