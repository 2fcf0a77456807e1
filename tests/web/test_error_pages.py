"""What a person's browser gets when something goes wrong: a page in words, never JSON or a stack trace."""

from __future__ import annotations

import httpx
import pytest

from presenced.bootstrap import Runtime
from tests.oauth.identity_support import World
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
