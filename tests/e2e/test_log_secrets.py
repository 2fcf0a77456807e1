"""A real server with ``--log-format json``: every request is one JSON line with its fields, and no secret
that the clients sent or received (password, client secret, codes, tokens, a status message) is in its log.

The sign-in flows are driven as in test_official_clients: MSAL for the client credentials, the
authorization code (PKCE) with its refresh token and the device code; the sign-in and consent pages with
httpx, as a browser would.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
from pathlib import Path
from typing import Any

import httpx
import msal
import requests

from tests.e2e.server_process import running_server
from tests.e2e.test_official_clients import GRAPH, REDIRECT_URI, authorize, is_consent_page, is_signin_page, submit
from tests.support import REQUEST_LINE_FIELDS


def _session(bundle: Path) -> requests.Session:
    session = requests.Session()
    session.verify = str(bundle)
    session.trust_env = False
    return session


def _device_code(app: msal.PublicClientApplication, tls: ssl.SSLContext, user: dict[str, Any]) -> dict[str, Any]:
    """MSAL's device-code flow, approved by ``user`` through the /devicelogin pages in a thread."""
    flow = app.initiate_device_flow(scopes=[f"{GRAPH}/Presence.Read"])
    assert "user_code" in flow, flow
    seen: dict[str, Any] = {}

    def browse() -> None:
        try:
            with httpx.Client(verify=tls, follow_redirects=False, timeout=10, trust_env=False) as browser:
                page = browser.get(flow["verification_uri"])
                page = submit(browser, page, user_code=flow["user_code"])
                assert is_signin_page(page), page.text
                page = submit(browser, page, username=user["userPrincipalName"], password=user["password"])
                assert is_consent_page(page), page.text
                submit(browser, page, decision="accept")
        except BaseException as exc:  # reported by the test, not lost in the thread
            seen["error"] = exc

    thread = threading.Thread(target=browse, daemon=True)
    thread.start()
    result = app.acquire_token_by_device_flow(
        flow, exit_condition=lambda flow: not thread.is_alive() and "error" in seen
    )
    thread.join(timeout=15)
    assert "error" not in seen, f"the browser failed: {seen.get('error')!r}"
    assert "access_token" in result, result
    return {**result, "device_code": flow["device_code"], "user_code": flow["user_code"]}


def test_the_json_log_has_a_line_per_request_and_no_secret(tmp_path: Path, key_folder: Path) -> None:
    status_text = f"In the lab until noon {secrets.token_hex(6)}"
    password = f"Pw-{secrets.token_urlsafe(12)}"
    used: dict[str, str] = {"status message": status_text, "password": password}
    with running_server(
        tmp_path / "data", "--log-format", "json", "--device-code-interval", "1", key_folder=key_folder
    ) as server:
        demo = server.demo()  # a new client secret, printed only here
        megan, alex = demo.user("megan"), demo.user("alex")
        server.cli("user", "set-password", megan["userPrincipalName"], "--password", password)
        megan = {**megan, "password": password}
        daemon, public = demo.daemon_app, demo.public_app
        used["client secret"] = daemon["clientSecret"]
        used["demo password"] = alex["password"]
        tls = ssl.create_default_context(cafile=str(server.bundle))
        authority = f"{server.url}/{demo.tenant_id}"

        with _session(server.bundle) as session:
            confidential = msal.ConfidentialClientApplication(
                daemon["clientId"],
                client_credential=daemon["clientSecret"],
                authority=authority,
                instance_discovery=False,
                http_client=session,
            )
            app_token = confidential.acquire_token_for_client([f"{GRAPH}/.default"])
            assert "access_token" in app_token, app_token
            used["app-only access token"] = app_token["access_token"]

            client = msal.PublicClientApplication(
                public["clientId"], authority=authority, instance_discovery=False, http_client=session
            )
            scopes = [f"{GRAPH}/Presence.ReadWrite"]
            flow = client.initiate_auth_code_flow(scopes, redirect_uri=REDIRECT_URI)
            with httpx.Client(verify=tls, follow_redirects=False, timeout=10, trust_env=False) as browser:
                done = authorize(browser, flow["auth_uri"], megan)
            used["authorization code"] = done.params["code"]
            signed_in = client.acquire_token_by_auth_code_flow(flow, done.params)
            assert "access_token" in signed_in, signed_in
            used["access token"] = signed_in["access_token"]
            used["refresh token"] = signed_in["refresh_token"]
            used["id token"] = signed_in["id_token"]
            renewed = client.acquire_token_silent(scopes, account=client.get_accounts()[0], force_refresh=True)
            assert renewed is not None
            assert "access_token" in renewed, renewed
            used["renewed access token"] = renewed["access_token"]
            used["renewed refresh token"] = renewed["refresh_token"]

            device = _device_code(client, tls, alex)
            used["device code"] = device["device_code"]
            used["user code"] = device["user_code"]
            used["device-code access token"] = device["access_token"]

        delegated = {"Authorization": f"Bearer {renewed['access_token']}"}
        app_only = {"Authorization": f"Bearer {app_token['access_token']}"}
        with httpx.Client(base_url=server.url, verify=tls, timeout=10, trust_env=False) as graph:
            message = {"statusMessage": {"message": {"content": status_text, "contentType": "text"}}}
            wrote = graph.post("/v1.0/me/presence/setStatusMessage", json=message, headers=delegated)
            assert wrote.status_code == 200, wrote.text
            read = graph.get("/v1.0/me/presence", headers=delegated | {"client-request-id": "e2e-read-1"})
            assert read.status_code == 200
            assert read.json()["statusMessage"]["message"]["content"] == status_text
            session_id = daemon["clientId"]
            body = {
                "sessionId": session_id,
                "availability": "Busy",
                "activity": "InACall",
                "expirationDuration": "PT5M",
            }
            assert graph.post(f"/v1.0/users/{alex['id']}/presence/setPresence", json=body, headers=app_only).is_success
            many = graph.post(
                "/v1.0/communications/getPresencesByUserId", json={"ids": [megan["id"], alex["id"]]}, headers=app_only
            )
            assert status_text in many.text
            selected = graph.get(f"/beta/users/{megan['id']}/presence?$select=statusMessage", headers=app_only)
            assert status_text in selected.text
            # Secrets where a careless log would take them: a query string, a bad token.
            leaked = f"query-secret-{secrets.token_hex(6)}"
            used["a query string's value"] = leaked
            graph.get(f"/v1.0/me/presence?access_token={leaked}", headers=delegated)
            bad = f"bad-token-{secrets.token_hex(6)}"
            used["a refused token"] = bad
            assert graph.get("/v1.0/me/presence", headers={"Authorization": f"Bearer {bad}"}).status_code == 401
        server.stop()
        log = server.log()

    for what, value in used.items():
        assert value not in log, f"the {what} is in the server's log"

    startup, lines = [], []
    for line in log.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))  # every JSON line parses
        else:
            startup.append(line)
    assert startup[0].startswith("presenced ")
    assert all(line.startswith(("presenced ", "  ")) for line in startup), startup  # only serve's own lines
    requests_logged = [line for line in lines if line["logger"] == "presenced.request"]
    for line in requests_logged:
        assert tuple(line) == REQUEST_LINE_FIELDS, line
        assert line["level"] == "info"
        assert isinstance(line["status"], int)
        assert isinstance(line["duration_ms"], float)
    routes = {(line["method"], line["route"], line["status"]) for line in requests_logged}
    assert {
        ("POST", "/{tenant}/oauth2/v2.0/token", 200),
        ("GET", "/{tenant}/oauth2/v2.0/authorize", 200),
        ("POST", "/{tenant}/oauth2/v2.0/devicecode", 200),
        ("POST", "/v1.0/me/presence/setStatusMessage", 200),
        ("GET", "/v1.0/me/presence", 200),
        ("GET", "/v1.0/me/presence", 401),
        ("POST", "/v1.0/users/{id}/presence/setPresence", 200),
        ("POST", "/v1.0/communications/getPresencesByUserId", 200),
        ("GET", "/beta/users/{id}/presence", 200),
    } <= routes
    [read_line] = [line for line in requests_logged if line["client_request_id"] == "e2e-read-1"]
    assert read_line["request_id"] == read.headers["request-id"]
    assert (read_line["tenant_id"], read_line["app_id"]) == (demo.tenant_id, public["clientId"])
    write_line = next(line for line in requests_logged if line["route"] == "/v1.0/users/{id}/presence/setPresence")
    assert (write_line["tenant_id"], write_line["app_id"]) == (demo.tenant_id, daemon["clientId"])
