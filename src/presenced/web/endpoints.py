"""The identity platform's machine endpoints: discovery, keys, token, device code; and the home page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from presenced.oauth.errors import OAuthError
from presenced.portal_session import current_account
from presenced.web.pages import (
    message,
    oauth_error_json,
    oauth_server,
    read_form,
)
from presenced.web.portal import page
from presenced.wiring import services_of


async def openid_configuration(request: Request) -> Response:
    tenant = request.path_params["tenant"]
    base = services_of(request).base_url
    try:
        tenant_id = await oauth_server(request).clients.tenant_of(tenant)
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
    return JSONResponse(services_of(request).keys.jwks(), headers={"Cache-Control": "max-age=3600, private"})


# ---- token and device code ----


_TOKEN_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def token(request: Request) -> Response:
    try:
        form = await read_form(request)
        body = await oauth_server(request).token(request.path_params["tenant"], form, request.headers)
    except OAuthError as error:
        return oauth_error_json(request, error)
    return Response(token_json(body), headers=_TOKEN_HEADERS, media_type="application/json")


def token_json(body: dict[str, Any]) -> bytes:
    """A token answer's bytes: what JSONResponse would send (compact, UTF-8), encoded by msgspec (its values are
    strings and numbers only)."""
    return msgspec.json.encode(body)


def token_answer_headers(length: int) -> list[tuple[bytes, bytes]]:
    """The headers ``token``'s answer of ``length`` bytes has, in their order, for a sender without Starlette."""
    return [
        (b"cache-control", b"no-store"),
        (b"pragma", b"no-cache"),
        (b"content-length", str(length).encode()),
        (b"content-type", b"application/json"),
    ]


async def devicecode(request: Request) -> Response:
    try:
        form = await read_form(request)
        body = await oauth_server(request).device_authorization(request.path_params["tenant"], form, request.headers)
    except OAuthError as error:
        return oauth_error_json(request, error)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


# ---- authorize ----


async def home(request: Request) -> Response:
    base = services_of(request).base_url
    ca_url = f"{base}/tls/ca.pem" if services_of(request).ca_certificate else None
    return page(request, "home.html", await current_account(request), None, base=base, ca_url=ca_url)


async def ca_certificate(request: Request) -> Response:
    path = services_of(request).ca_certificate
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
