"""What a person's browser gets when something goes wrong: a page in words, never JSON or a stack trace."""

from __future__ import annotations

import re

import httpx
import pytest

from presenced.app import create_app
from presenced.bootstrap import Runtime
from tests.oauth.identity_support import World
from tests.support import Tokens
from tests.web.portal_support import portal_sign_in

PAGE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def database_url() -> None:
    """SQLite only: the crash test breaks its database on purpose."""
    return


async def test_unknown_page_is_a_page(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/no/such/page", headers=PAGE)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text


async def test_api_errors_stay_json_for_browsers(browser: httpx.AsyncClient) -> None:
    """Graph's paths answer Graph's error body even to a browser."""
    response = await browser.get("/v1.0/no/such/thing", headers=PAGE)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ResourceNotFound"


async def test_a_crash_shows_a_page_without_internals(
    runtime: Runtime, world: World, browser: httpx.AsyncClient
) -> None:
    """An unexpected failure behind a page answers 500 with a page that says so, and no traceback."""
    await portal_sign_in(browser, world, "adele", "/people")
    async with runtime.engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE presence_changes")
        await conn.exec_driver_sql("ALTER TABLE presences RENAME TO presences_gone")
    response = await browser.get("/people", headers=PAGE)
    assert response.status_code == 500
    assert "Something went wrong" in response.text
    assert "Traceback" not in response.text
    assert "presences" not in response.text


async def _disconnected_post(
    runtime: Runtime, path: str, content_type: str, credentials: list[tuple[bytes, bytes]]
) -> list[dict[str, object]]:
    """POST ``path`` from a client that leaves before sending its body; what the app sent back."""
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", content_type.encode()),
            (b"content-length", b"40"),
            *credentials,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await create_app(runtime)(scope, receive, send)
    return sent


async def test_a_client_leaving_mid_form_is_no_crash(
    runtime: Runtime, world: World, browser: httpx.AsyncClient
) -> None:
    """A signed-in form whose body never arrives gets a 400 (if anyone still listens), not a server error."""
    await portal_sign_in(browser, world, "adele")
    cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    sent = await _disconnected_post(
        runtime, "/me/preferred", "application/x-www-form-urlencoded", [(b"cookie", cookie.encode())]
    )
    assert next(m for m in sent if m["type"] == "http.response.start")["status"] == 400


async def test_a_client_leaving_mid_json_is_no_crash(runtime: Runtime, world: World) -> None:
    """The same for a Graph action with a valid token: a 400, not a 500."""
    token = Tokens(runtime, world.tenant_id).user(world.user_id("adele"), "Presence.ReadWrite")
    sent = await _disconnected_post(
        runtime,
        "/v1.0/me/presence/setPresence",
        "application/json",
        [(b"authorization", f"Bearer {token}".encode())],
    )
    assert next(m for m in sent if m["type"] == "http.response.start")["status"] == 400


async def test_a_refused_form_leads_back_to_its_page(world: World, browser: httpx.AsyncClient) -> None:
    """An expired form's page offers a way back to the page the form was on, not to the form's address."""
    await portal_sign_in(browser, world, "adele")
    response = await browser.post(
        "/me/preferred",
        data={"csrf": "expired", "availability": "Busy", "duration": ""},
        headers={"Referer": "http://127.0.0.1:8000/me?done=status"},
    )
    assert response.status_code == 400
    assert '<a href="/me?done=status">Back</a>' in response.text
    elsewhere = await browser.post(
        "/me/preferred", data={"csrf": "expired"}, headers={"Referer": "https://elsewhere.example/me"}
    )
    assert '<a href="/">Back</a>' in elsewhere.text


async def test_a_nul_in_any_form_is_refused(runtime: Runtime, world: World, browser: httpx.AsyncClient) -> None:
    """No store can keep a NUL: a form holding one is a 400 page, and nothing changes."""
    await portal_sign_in(browser, world, "adele", "/apps/new")
    page = await browser.get("/apps/new")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = await browser.post("/apps/new", data={"csrf": csrf, "name": "a\x00b", "audience": "AzureADMyOrg"})
    assert response.status_code == 400
    assert "not allowed" in response.text
    names = [a.display_name for a in await runtime.identity_store.list_applications(world.tenant_id)]
    assert not any("\x00" in n for n in names)


async def test_a_malformed_app_id_is_not_found(world: World, browser: httpx.AsyncClient) -> None:
    await portal_sign_in(browser, world, "adele", "/apps")
    for raw in ("not-a-guid", "%00", "f47b7786-691d-50a0-b13b-25196094575f%00"):
        response = await browser.get(f"/apps/{raw}")
        assert response.status_code == 404, raw


async def test_too_many_fields_is_a_page(world: World, browser: httpx.AsyncClient) -> None:
    """A form with hundreds of fields is refused with a page, not the API's JSON."""
    csrf = await portal_sign_in(browser, world, "adele")
    fields = {f"f{i}": "x" for i in range(300)}
    response = await browser.post("/me/preferred", data={"csrf": csrf, **fields})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")


async def test_back_never_leads_to_another_site(world: World, browser: httpx.AsyncClient) -> None:
    """A referrer on this host whose path names another site (``//host``) is not offered as the way back."""
    await portal_sign_in(browser, world, "adele")
    response = await browser.post(
        "/me/preferred", data={"csrf": "expired"}, headers={"Referer": "http://127.0.0.1:8000//evil.example/x"}
    )
    assert '<a href="/">Back</a>' in response.text
