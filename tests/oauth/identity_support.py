"""Helpers for the identity-platform tests: the demo directory, extra apps, token requests, the sign-in pages."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from presenced.app import create_app
from presenced.auth.permissions import GRAPH_APP_ID, Permission
from presenced.bootstrap import Runtime
from presenced.oauth.tokens import decode_own_token
from presenced.services.demo import (
    DEMO_DAEMON_APP_ID,
    DEMO_PUBLIC_APP_ID,
    DEMO_TENANT_ID,
    demo_password,
    demo_user_id,
    seed_demo,
    seed_demo_identity,
)
from presenced.services.entities import Account, ApiScope, Application, RequiredAccess
from tests.support import BASE_URL

GRAPH = "https://graph.microsoft.com"
GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: The demo public client's redirect URIs.
LOOPBACK = "http://localhost"
CALLBACK = "http://localhost:8400/callback"


def upn(nickname: str) -> str:
    return f"{nickname}@contoso.example"


@dataclass(frozen=True, slots=True)
class World:
    """The demo directory with its sign-in side: the daemon (with its secret) and the public client."""

    tenant_id: str
    daemon: Application
    daemon_secret: str
    public: Application

    def password(self, nickname: str) -> str:
        return demo_password(nickname)

    def user_id(self, nickname: str) -> str:
        return demo_user_id(nickname)


async def seed_world(runtime: Runtime) -> World:
    """The demo tenant, its users' passwords and its two apps; no sign-in failures left from earlier tests.

    (The PostgreSQL tests share one database per process and the shared TRUNCATE does not reach
    ``sign_in_failures``, which references no other table.)
    """
    async with runtime.engine.begin() as conn:
        await conn.exec_driver_sql("DELETE FROM sign_in_failures")
    await seed_demo(runtime.store, runtime.writer, runtime.clock)
    seeded = await seed_demo_identity(runtime.identity, datetime.now(UTC))
    daemon = next(a for a in seeded.apps if a.app.app_id == DEMO_DAEMON_APP_ID)
    public = next(a for a in seeded.apps if a.app.app_id == DEMO_PUBLIC_APP_ID)
    assert daemon.secret is not None
    return World(DEMO_TENANT_ID, daemon.app, daemon.secret, public.app)


def access(*permissions: Permission) -> tuple[RequiredAccess, ...]:
    return tuple(RequiredAccess(GRAPH_APP_ID, p.id, p.kind.graph_type) for p in permissions)


def api_scope(value: str, kind: str = "User") -> ApiScope:
    return ApiScope(str(uuid.uuid4()), value, kind, value, f"Admin: {value}", value, f"User: {value}")


async def register_app(
    runtime: Runtime,
    tenant_id: str,
    name: str,
    *,
    public_redirects: tuple[str, ...] = (),
    web_redirects: tuple[str, ...] = (),
    fallback_public: bool = False,
    required: tuple[RequiredAccess, ...] = (),
    identifier_uris: tuple[str, ...] | None = None,
    api_scopes: tuple[ApiScope, ...] = (),
    audience: str = "AzureADMyOrg",
    app_id: str | None = None,
) -> Application:
    """A new app registration (``identifier_uris`` None: none; ``("api://",)`` expands to ``api://<appId>``)."""
    app_id = app_id or str(uuid.uuid4())
    uris = tuple(f"api://{app_id}" if u == "api://" else u for u in identifier_uris or ())
    app = Application(
        id=str(uuid.uuid4()),
        app_id=app_id,
        tenant_id=tenant_id,
        display_name=name,
        sign_in_audience=audience,
        is_fallback_public_client=fallback_public,
        web_redirect_uris=web_redirects,
        spa_redirect_uris=(),
        public_client_redirect_uris=public_redirects,
        required_resource_access=required,
        identifier_uris=uris,
        api_scopes=api_scopes,
        created=datetime.now(UTC),
    )
    return await runtime.identity.register_application(app, datetime.now(UTC))


async def add_secret(runtime: Runtime, app: Application, lifetime: timedelta = timedelta(days=30)) -> str:
    now = datetime.now(UTC)
    return (await runtime.identity.add_password(app, "test", now, now + lifetime)).text


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def account(runtime: Runtime, tenant_id: str, nickname: str) -> Account:
    found = await runtime.identity_store.find_account(tenant_id, upn(nickname))
    assert found is not None
    return found


async def issue_code(
    runtime: Runtime,
    tenant_id: str,
    app: Application,
    nickname: str,
    scope: str,
    redirect_uri: str,
    *,
    challenge: str | None = None,
    nonce: str | None = None,
    consent: bool = True,
) -> str:
    """An authorization code, as the authorize endpoint issues it after sign-in (and consent, unless told not)."""
    params = {
        "client_id": app.app_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": scope,
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    if nonce is not None:
        params["nonce"] = nonce
    server = runtime.oauth
    request = await server.authorize.request(tenant_id, params)
    user = await account(runtime, tenant_id, nickname)
    if consent:
        await server.consent.record_consent(tenant_id, app, request.scopes, request.resource, user)
    return await server.authorize.issue_code(request, user, datetime.now(UTC))


async def approve_device_code(
    runtime: Runtime, tenant_id: str, user_code: str, nickname: str, *, approve: bool
) -> None:
    """The user enters ``user_code`` and approves (with consent) or declines, as the device page does."""
    code, _app = await runtime.oauth.device_approval.pending(user_code)
    user = await account(runtime, tenant_id, nickname)
    await runtime.oauth.device_approval.finish(code, user, datetime.now(UTC), approved=approve, consented=approve)


def token_path(tenant: str) -> str:
    return f"/{tenant}/oauth2/v2.0/token"


async def post_token(
    client: httpx.AsyncClient,
    tenant: str,
    form: dict[str, str],
    *,
    correlation: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"client-request-id": correlation or str(uuid.uuid4()), **(headers or {})}
    return await client.post(token_path(tenant), data=form, headers=sent)


def assert_oauth_error(
    response: httpx.Response,
    *,
    status: int,
    error: str,
    code: int,
    suberror: str | None = None,
) -> dict[str, Any]:
    """Entra's error body: status, ``error``, one code, AADSTS text with a trace id, the echoed correlation id."""
    body: dict[str, Any] = response.json()
    assert (response.status_code, body["error"], body["error_codes"]) == (status, error, [code]), body
    assert body["error_description"].startswith(f"AADSTS{code}:"), body["error_description"]
    assert "Trace ID:" in body["error_description"]
    assert body["correlation_id"] == response.request.headers["client-request-id"]
    assert body.get("suberror") == suberror
    return body


def claims(token: str, runtime: Runtime) -> dict[str, Any]:
    return decode_own_token(runtime.keys, token)


# ---- the sign-in pages ----


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": values.get("action", ""), "fields": {}, "buttons": []})
        elif tag == "input" and self.forms and values.get("type") == "hidden":
            self.forms[-1]["fields"][values.get("name", "")] = values.get("value", "")
        elif tag == "button" and self.forms and values.get("name"):
            self.forms[-1]["buttons"].append((values["name"], values.get("value", "")))


@dataclass(frozen=True, slots=True)
class Form:
    action: str
    fields: dict[str, str]

    @property
    def step(self) -> str | None:
        return self.fields.get("step")


def page_form(response: httpx.Response) -> Form:
    """The first form of a page: its action and hidden fields (csrf, step, …)."""
    parser = _Forms()
    parser.feed(response.text)
    assert parser.forms, f"no form on the page ({response.status_code}): {response.text[:500]}"
    form = parser.forms[0]
    return Form(form["action"], dict(form["fields"]))


async def submit(client: httpx.AsyncClient, form: Form, **fields: str) -> httpx.Response:
    return await client.post(form.action, data={**form.fields, **fields})


def authorize_path(tenant: str, **params: str) -> str:
    return f"/{tenant}/oauth2/v2.0/authorize?{urlencode(params)}"


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a redirect's Location."""
    assert response.status_code == 302, (response.status_code, response.text[:500])
    query = urlsplit(response.headers["location"]).query
    return {k: v[0] for k, v in parse_qs(query).items()}


def redirect_target(response: httpx.Response) -> str:
    parts = urlsplit(response.headers["location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def client_for(runtime: Runtime, address: str | None = None) -> httpx.AsyncClient:
    """An in-process client of the real app, from its own address (the sign-in throttle counts per address)."""
    host = address or f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


#: What the demo public client asks for in the page tests.
SCOPES = "https://graph.microsoft.com/Presence.Read openid profile offline_access"


class Flow:
    """One authorization request (by default of the demo public client), with its PKCE verifier, state and nonce."""

    def __init__(self, world: World, app: Application | None = None, **changes: str | None) -> None:
        self.world = world
        self.verifier, challenge = pkce()
        params: dict[str, str | None] = {
            "client_id": (app or world.public).app_id,
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "scope": SCOPES,
            "state": secrets.token_urlsafe(12),
            "nonce": secrets.token_hex(32),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "client_info": "1",
        }
        params.update(changes)
        self.state = params["state"] or ""
        self.nonce = params["nonce"] or ""
        self.params = {k: v for k, v in params.items() if v is not None}

    def path(self, tenant: str | None = None) -> str:
        return authorize_path(tenant or self.world.tenant_id, **self.params)

    def token_form(self, code: str) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "client_id": self.params["client_id"],
            "code": code,
            "redirect_uri": self.params["redirect_uri"],
            "code_verifier": self.verifier,
        }


async def sign_in_as(client: httpx.AsyncClient, page: httpx.Response, username: str, password: str) -> httpx.Response:
    """Fill in the sign-in form of ``page``."""
    form = page_form(page)
    assert form.step == "signin", page.text[:500]
    return await submit(client, form, username=username, password=password)


async def sign_in(
    client: httpx.AsyncClient, page: httpx.Response, nickname: str, password: str | None = None
) -> httpx.Response:
    """Sign a demo user in on the form of ``page`` (with their password unless another is given)."""
    return await sign_in_as(client, page, upn(nickname), demo_password(nickname) if password is None else password)


async def accept(client: httpx.AsyncClient, page: httpx.Response, **fields: str) -> httpx.Response:
    """Press Accept on the consent page ``page``."""
    form = page_form(page)
    assert form.step == "consent", page.text[:500]
    return await submit(client, form, decision="accept", **fields)


def is_error_page(response: httpx.Response, status: int = 400) -> bool:
    return response.status_code == status and "location" not in response.headers and "<h1>" in response.text
