"""The official Microsoft clients (azure-identity, msgraph-sdk, MSAL) against a real server over HTTPS.

One `presenced serve --demo` process serves the whole module. The sign-in and
consent pages are driven with httpx, as a browser would; the libraries talk to
the server as they would to Entra and Graph. Each test signs in a different
demo user, so consent given in one test does not change another.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import msal
import pytest
import requests
from azure.identity import ClientSecretCredential, DeviceCodeCredential
from msgraph import GraphServiceClient
from msgraph.generated.communications.get_presences_by_user_id.get_presences_by_user_id_post_request_body import (
    GetPresencesByUserIdPostRequestBody,
)
from msgraph.generated.users.item.presence.set_presence.set_presence_post_request_body import (
    SetPresencePostRequestBody,
)

from tests.e2e.server_process import Demo, ServerProcess, running_server

GRAPH = "https://graph.microsoft.com"
REDIRECT_URI = "http://localhost:8400/callback"

pytestmark = [
    # msgraph-sdk's generated request builders warn about themselves.
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    # MSAL recommends form_post; these tests read the code from the query of the redirect.
    pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning"),
]


@dataclass(frozen=True)
class Env:
    server: ServerProcess
    demo: Demo
    #: Trusts the system roots and the server's local CA.
    tls: ssl.SSLContext

    @property
    def authority(self) -> str:
        return self.server.url

    @property
    def bundle(self) -> str:
        return str(self.server.bundle)

    def graph(self, credential: Any, *scopes: str) -> GraphServiceClient:
        """GraphServiceClient as the recipe sets it up: the server's base URL and explicit scopes."""
        client = GraphServiceClient(credentials=credential, scopes=list(scopes))
        client.request_adapter.base_url = f"{self.authority}/v1.0"
        return client

    def browser(self) -> httpx.Client:
        """A fresh "browser": its own cookies, no automatic redirects, trusting the server's CA."""
        return httpx.Client(verify=self.tls, follow_redirects=False, timeout=10, trust_env=False)

    def get(self, path: str, token: str) -> httpx.Response:
        return httpx.get(f"{self.authority}{path}", headers=bearer(token), verify=self.tls, timeout=10)

    def requests_session(self) -> requests.Session:
        """For MSAL: verifies with the bundle; trust_env off, else REQUESTS_CA_BUNDLE would override ``verify``."""
        session = requests.Session()
        session.verify = self.bundle
        session.trust_env = False
        return session

    def public_client(self, session: requests.Session) -> msal.PublicClientApplication:
        return msal.PublicClientApplication(
            self.demo.public_app["clientId"],
            authority=f"{self.authority}/{self.demo.tenant_id}",
            instance_discovery=False,
            http_client=session,
        )

    def daemon_client(self, session: requests.Session, secret: str) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            self.demo.daemon_app["clientId"],
            client_credential=secret,
            authority=f"{self.authority}/{self.demo.tenant_id}",
            instance_discovery=False,
            http_client=session,
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[Env]:
    """One server for the module; the client libraries trust its CA through the environment of this process."""
    data_dir = tmp_path_factory.mktemp("official-clients") / "data"
    # The Graph SDK's connections stay open (closing its httpx client does not close them: msgraph-core's
    # AsyncGraphTransport has no aclose); the server stops anyway, after its 3 s grace for connections.
    with running_server(data_dir, "--device-code-interval", "1", key_folder=key_folder, stop_timeout=2) as server:
        demo = server.demo()
        assert demo.authority == server.url
        with pytest.MonkeyPatch.context() as patch:
            # For what builds its own HTTP client: msgraph-sdk (httpx) and requests-based code.
            patch.setenv("SSL_CERT_FILE", str(server.bundle))
            patch.setenv("REQUESTS_CA_BUNDLE", str(server.bundle))
            yield Env(server, demo, ssl.create_default_context(cafile=str(server.bundle)))


@pytest.fixture(autouse=True)
def server_log(request: pytest.FixtureRequest) -> Iterator[None]:
    """Attach the server's output to the report of each test that uses it; fail the test if the server died."""
    if "env" not in request.fixturenames:
        yield
        return
    env: Env = request.getfixturevalue("env")
    yield
    request.node.add_report_section("teardown", "presenced server log", env.server.log())
    if not env.server.alive:
        pytest.fail(f"the server exited (code {env.server.process.returncode}):\n{env.server.log()}")


# ---- helpers ----


def jwt_payload(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified."""
    middle = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(middle + "=" * (-len(middle) % 4)))
    return decoded


def hidden_field(page: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{re.escape(name)}" value="([^"]*)"', page)
    assert match, f"no hidden field {name!r} in:\n{page}"
    return html.unescape(match.group(1))


def form_action(page: str, base: str) -> str:
    match = re.search(r'<form method="post" action="([^"]*)"', page)
    assert match, f"no form in:\n{page}"
    return urljoin(base, html.unescape(match.group(1)))


def submit(browser: httpx.Client, page: httpx.Response, **fields: str) -> httpx.Response:
    """Post the page's form with its CSRF token, its other hidden fields, and ``fields``."""
    text = page.text
    pairs = re.findall(r'type="hidden" name="([^"]*)" value="([^"]*)"', text)
    hidden = {html.unescape(name): html.unescape(value) for name, value in pairs}
    return browser.post(form_action(text, str(page.url)), data={**hidden, **fields})


def is_signin_page(page: httpx.Response) -> bool:
    return page.status_code == 200 and 'name="step" value="signin"' in page.text


def is_consent_page(page: httpx.Response) -> bool:
    return page.status_code == 200 and 'name="step" value="consent"' in page.text


@dataclass
class Authorization:
    """How a trip through the authorize pages ended."""

    consent_page: str | None
    redirect: str

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.redirect).query))


def authorize(
    browser: httpx.Client, auth_uri: str, user: dict[str, Any] | None, decision: str = "accept"
) -> Authorization:
    """Follow ``auth_uri`` through sign-in (when ``user`` is given) and consent (when shown) to the redirect."""
    page = browser.get(auth_uri)
    if user is not None:
        assert is_signin_page(page), f"expected the sign-in page, got {page.status_code}:\n{page.text}"
        page = submit(browser, page, username=user["userPrincipalName"], password=user["password"])
    consent_page = None
    if is_consent_page(page):
        consent_page = page.text
        page = submit(browser, page, decision=decision)
    assert page.status_code == 302, f"expected a redirect to the app, got {page.status_code}:\n{page.text}"
    location = page.headers["location"]
    assert location.startswith(f"{REDIRECT_URI}?"), location
    return Authorization(consent_page, location)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---- 1. azure-identity + msgraph-sdk, app-only ----


async def test_daemon_reads_and_sets_presence_with_client_secret_credential_and_graph_sdk(env: Env) -> None:
    """ClientSecretCredential and GraphServiceClient read one presence, read several in bulk, and set one."""
    daemon = env.demo.daemon_app
    adele, alex, nestor = env.demo.user("adele"), env.demo.user("alex"), env.demo.user("nestor")
    credential = ClientSecretCredential(
        env.demo.tenant_id,
        daemon["clientId"],
        daemon["clientSecret"],
        authority=env.authority,
        disable_instance_discovery=True,
        connection_verify=env.bundle,
    )
    with credential:
        client = env.graph(credential, f"{GRAPH}/.default")
        one = await client.users.by_user_id(adele["userPrincipalName"]).presence.get()
        assert one is not None
        assert one.id == adele["id"]

        ids = [adele["id"], alex["id"], nestor["id"]]
        body = GetPresencesByUserIdPostRequestBody(ids=ids)
        bulk = await client.communications.get_presences_by_user_id.post(body)
        assert bulk is not None
        assert bulk.value is not None
        assert sorted(p.id for p in bulk.value if p.id) == sorted(ids)

        await client.users.by_user_id(nestor["id"]).presence.set_presence.post(
            SetPresencePostRequestBody(
                session_id=daemon["clientId"],
                availability="Busy",
                activity="InACall",
                expiration_duration=timedelta(minutes=10),
            )
        )
        after = await client.users.by_user_id(nestor["id"]).presence.get()
    assert after is not None
    assert (after.availability, after.activity) == ("Busy", "InACall")


# ---- 2. azure-identity device code + msgraph-sdk, delegated ----


async def test_device_code_credential_signs_a_user_in_and_reads_me_presence(env: Env) -> None:
    """DeviceCodeCredential, approved through the /devicelogin pages, lets GraphServiceClient read /me/presence."""
    alex = env.demo.user("alex")
    seen: dict[str, Any] = {}

    def browse(verification_uri: str, user_code: str) -> None:
        try:
            with env.browser() as browser:
                page = browser.get(verification_uri)
                assert page.status_code == 200, page.text
                page = submit(browser, page, user_code=user_code)
                assert is_signin_page(page), page.text
                page = submit(browser, page, username=alex["userPrincipalName"], password=alex["password"])
                assert is_consent_page(page), page.text
                seen["consent_page"] = page.text
                page = submit(browser, page, decision="accept")
                seen["final_page"] = page
        except BaseException as exc:  # reported by the test, not lost in the thread
            seen["error"] = exc

    def approve(verification_uri: str, user_code: str, expires_on: Any) -> None:
        seen["verification_uri"] = verification_uri
        thread = threading.Thread(target=browse, args=(verification_uri, user_code), daemon=True)
        seen["thread"] = thread
        thread.start()

    credential = DeviceCodeCredential(
        env.demo.public_app["clientId"],
        tenant_id="organizations",
        authority=env.authority,
        disable_instance_discovery=True,
        connection_verify=env.bundle,
        prompt_callback=approve,
        timeout=30,
    )
    try:
        with credential:
            presence = await env.graph(credential, f"{GRAPH}/Presence.Read").me.presence.get()
    finally:
        if "thread" in seen:
            seen["thread"].join(timeout=15)
    assert "error" not in seen, f"the browser failed: {seen.get('error')!r}"
    assert seen["verification_uri"] == f"{env.authority}/devicelogin"
    assert "Read your presence information" in seen["consent_page"]
    assert seen["final_page"].status_code == 200
    assert "signed in" in seen["final_page"].text
    assert presence is not None
    assert presence.id == alex["id"]


# ---- 3. MSAL public client, authorization code with PKCE ----


def test_msal_auth_code_flow_gets_tokens_and_refreshes_them(env: Env) -> None:
    """MSAL's auth-code flow through the sign-in and consent pages yields tokens, and the refresh token renews them."""
    megan = env.demo.user("megan")
    scopes = [f"{GRAPH}/Presence.Read"]
    with env.requests_session() as session, env.browser() as browser:
        app = env.public_client(session)
        flow = app.initiate_auth_code_flow(scopes, redirect_uri=REDIRECT_URI)
        done = authorize(browser, flow["auth_uri"], megan)
        result = app.acquire_token_by_auth_code_flow(flow, done.params)
        accounts = app.get_accounts()
        renewed = app.acquire_token_silent(scopes, account=accounts[0], force_refresh=True) if accounts else None
    assert done.consent_page is not None
    assert "Read your presence information" in done.consent_page
    assert done.params["state"] == flow["state"]

    assert "access_token" in result, result
    claims = result["id_token_claims"]
    assert claims["preferred_username"] == megan["userPrincipalName"]
    assert claims["oid"] == megan["id"]
    assert claims["nonce"] == hashlib.sha256(flow["nonce"].encode("ascii")).hexdigest()
    assert result.get("refresh_token")
    assert jwt_payload(result["access_token"])["scp"] == "Presence.Read"

    assert [a["username"] for a in accounts] == [megan["userPrincipalName"]]
    assert renewed is not None
    assert "access_token" in renewed, renewed
    assert renewed["access_token"] != result["access_token"]
    assert jwt_payload(renewed["access_token"])["oid"] == megan["id"]
    response = env.get("/v1.0/me/presence", renewed["access_token"])
    assert response.status_code == 200, response.text
    assert response.json()["id"] == megan["id"]


# ---- 4. the delegated permission model ----


def test_presence_read_reaches_only_your_own_presence_until_read_all_is_consented(env: Env) -> None:
    """Consent to Presence.Read reads /me but not others (403); consenting to Presence.Read.All then reads anyone."""
    diego, adele = env.demo.user("diego"), env.demo.user("adele")
    other_user = f"/v1.0/users/{adele['id']}/presence"
    with env.requests_session() as session, env.browser() as browser:
        app = env.public_client(session)
        flow = app.initiate_auth_code_flow([f"{GRAPH}/Presence.Read"], redirect_uri=REDIRECT_URI)
        first = authorize(browser, flow["auth_uri"], diego)
        result = app.acquire_token_by_auth_code_flow(flow, first.params)
        assert "access_token" in result, result
        token = result["access_token"]
        assert jwt_payload(token)["scp"] == "Presence.Read"

        me = env.get("/v1.0/me/presence", token)
        assert me.status_code == 200, me.text
        assert me.json()["id"] == diego["id"]
        refused = env.get(other_user, token)
        assert refused.status_code == 403, refused.text

        # Same browser: Diego is signed in, so only the consent page for the new permission comes up.
        flow = app.initiate_auth_code_flow([f"{GRAPH}/Presence.Read.All"], redirect_uri=REDIRECT_URI)
        second = authorize(browser, flow["auth_uri"], None)
        result = app.acquire_token_by_auth_code_flow(flow, second.params)
    assert second.consent_page is not None
    assert "Read presence information of all users in your organization" in second.consent_page
    assert "access_token" in result, result
    token = result["access_token"]
    assert jwt_payload(token)["scp"] == "Presence.Read.All"
    other = env.get(other_user, token)
    assert other.status_code == 200, other.text
    assert other.json()["id"] == adele["id"]


def test_declining_consent_redirects_with_access_denied(env: Env) -> None:
    """Cancel on the consent page sends the browser back to the app with error=access_denied (AADSTS65004)."""
    lynne = env.demo.user("lynne")
    with env.requests_session() as session, env.browser() as browser:
        app = env.public_client(session)
        flow = app.initiate_auth_code_flow([f"{GRAPH}/Presence.Read"], redirect_uri=REDIRECT_URI)
        done = authorize(browser, flow["auth_uri"], lynne, decision="cancel")
        result = app.acquire_token_by_auth_code_flow(flow, done.params)
    assert done.consent_page is not None
    params = done.params
    assert "code" not in params
    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS65004")
    assert params["state"] == flow["state"]
    assert result.get("error") == "access_denied"


# ---- 5. MSAL confidential client, client credentials ----


def test_msal_client_credentials_token_carries_the_consented_roles(env: Env) -> None:
    """A client-credentials token from MSAL has the daemon's roles, Graph's audience and the tenant id."""
    with env.requests_session() as session:
        app = env.daemon_client(session, env.demo.daemon_app["clientSecret"])
        result = app.acquire_token_for_client([f"{GRAPH}/.default"])
    assert "access_token" in result, result
    claims = jwt_payload(result["access_token"])
    assert {"Presence.Read.All", "Presence.ReadWrite.All"} <= set(claims["roles"])
    assert claims["aud"] == GRAPH
    assert claims["tid"] == env.demo.tenant_id
    assert "scp" not in claims


def test_msal_client_credentials_with_a_wrong_secret_is_invalid_client(env: Env) -> None:
    """A wrong client secret gets MSAL an invalid_client error with code 7000215."""
    with env.requests_session() as session:
        app = env.daemon_client(session, "not-the-secret")
        result = app.acquire_token_for_client([f"{GRAPH}/.default"])
    assert "access_token" not in result
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]


# ---- the server process itself ----


def test_server_stops_promptly_on_sigterm_while_a_client_keeps_a_connection_open(
    tmp_path: Path, key_folder: Path
) -> None:
    """SIGTERM stops an HTTPS server within 5 s even while a client holds an idle keep-alive connection."""
    with running_server(tmp_path / "data", key_folder=key_folder) as server, requests.Session() as client:
        client.verify, client.trust_env = str(server.bundle), False
        assert client.get(f"{server.url}/openapi.json", timeout=10).status_code == 200
        started = time.monotonic()
        server.process.terminate()
        try:
            server.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.process.kill()
            pytest.fail(f"still running {time.monotonic() - started:.1f} s after SIGTERM:\n{server.log()}")
