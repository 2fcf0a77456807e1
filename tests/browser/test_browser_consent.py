"""An app's sign-in through the authorize pages in a real browser: sign in, consent, the code back at the app."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import expect

from tests.browser.browser_support import Browsers, Portal, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Receiver:
    """The app's end of the redirect: a loopback HTTP server that keeps the query of each request to /callback."""

    port: int
    queries: list[dict[str, list[str]]] = field(default_factory=list)

    @property
    def redirect_uri(self) -> str:
        # The demo public client's loopback redirect URI, on this receiver's port.
        return f"http://localhost:{self.port}/callback"


@contextmanager
def app_receiver() -> Iterator[Receiver]:
    """Serve the app's redirect URI on 127.0.0.1 (which ``localhost`` reaches) in a thread."""
    queries: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            target = urlsplit(self.path)
            if target.path == "/callback":  # not the browser's /favicon.ico
                queries.append(parse_qs(target.query))
            body = b"<!doctype html><title>Presence Desktop</title><h1>Signed in</h1><p>You can close this window.</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="app-receiver", daemon=True)
    thread.start()
    try:
        yield Receiver(server.server_address[1], queries)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (the e2e tests check signatures)."""
    middle = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(middle + "=" * (-len(middle) % 4)))
    return claims


async def test_sign_in_and_consent_returns_code(portal: Portal, browsers: Browsers) -> None:
    """A user who has not consented signs in, sees the app and "Read your presence information", accepts, and the
    app gets a code and its state at its redirect URI; the code with the PKCE verifier buys a Presence.Read token."""
    tenant = portal.tenant_id
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(16)
    with app_receiver() as receiver:
        query = urlencode(
            {
                "client_id": portal.public_app_id,
                "response_type": "code",
                "redirect_uri": receiver.redirect_uri,
                "scope": "Presence.Read",
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        page = await (await browsers.new_context(portal)).new_page()
        await page.goto(f"/{tenant}/oauth2/v2.0/authorize?{query}")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await expect(page.locator("main")).to_contain_text(f"to continue to {portal.public_app_name}")
        await page.get_by_label("Email or user name").fill(portal.upn("grady"))
        await page.get_by_label("Password").fill(portal.password("grady"))
        await screenshot(page, "test_sign_in_and_consent_returns_code-1-sign-in")
        await page.get_by_role("button", name="Sign in").click()

        await expect(page.locator("#app-name")).to_have_text(portal.public_app_name)
        await expect(page.locator("#permissions")).to_contain_text("Read your presence information")
        await screenshot(page, "test_sign_in_and_consent_returns_code-2-consent")
        await page.get_by_role("button", name="Accept").click()

        await expect(page).to_have_url(re.compile(rf"^{re.escape(receiver.redirect_uri)}\?"))
        await expect(page.get_by_role("heading", name="Signed in")).to_be_visible()
        await screenshot(page, "test_sign_in_and_consent_returns_code-3-app")
        assert len(receiver.queries) == 1, receiver.queries
        returned = receiver.queries[0]
        assert returned.get("state") == [state]
        assert "error" not in returned, returned
        (code,) = returned["code"]

    async with httpx.AsyncClient(base_url=portal.url, timeout=10, trust_env=False) as http:
        response = await http.post(
            f"/{tenant}/oauth2/v2.0/token",
            data={
                "client_id": portal.public_app_id,
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": receiver.redirect_uri,
                "code_verifier": verifier,
                "scope": "Presence.Read",
            },
        )
    assert response.status_code == 200, response.text
    claims = jwt_claims(response.json()["access_token"])
    assert "Presence.Read" in claims["scp"].split(), claims
    assert claims["appid"] == portal.public_app_id
    assert claims["oid"] == portal.user_id("grady")
