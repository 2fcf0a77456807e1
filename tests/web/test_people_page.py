"""People: the organization's users with their presence, searchable, live from the presence stream."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from presenced.services.demo import demo_users
from tests.oauth.identity_support import World
from tests.web.portal_support import csrf_of, portal_sign_in


@pytest.fixture
def database_url() -> None:
    """SQLite only: the pages call services that tests/api and tests/store run on both stores."""
    return


def cards(page: httpx.Response) -> dict[str, str]:
    """Each person's card on the page: user id → the presence words shown."""
    found = re.findall(r'data-user-id="([0-9a-f-]{36})".*?data-field="words">([^<]*)<', page.text, flags=re.S)
    return dict(found)


async def test_everyone_in_the_organization_with_their_presence(world: World, browser: httpx.AsyncClient) -> None:
    """The grid holds every user of the tenant, with their presence in words."""
    await portal_sign_in(browser, world, "adele", "/people")
    page = await browser.get("/people")
    shown = cards(page)
    assert set(shown) == {u.id for u in demo_users()}
    assert shown[world.user_id("alex")] == "Busy · In a call"
    assert shown[world.user_id("megan")] == "Do not disturb · Presenting"
    assert shown[world.user_id("isaiah")] == "Available · Out of office"
    assert shown[world.user_id("nestor")] == "Offline"
    assert "On calls until lunch" in page.text


async def test_search_by_name_or_user_name(world: World, browser: httpx.AsyncClient) -> None:
    """Without script, the search form narrows the grid by name or UPN, case-insensitively."""
    await portal_sign_in(browser, world, "adele", "/people")
    assert set(cards(await browser.get("/people?q=MEG"))) == {world.user_id("megan")}
    assert set(cards(await browser.get("/people?q=pradeep%40"))) == {world.user_id("pradeep")}
    nobody = await browser.get("/people?q=zzz")
    assert cards(nobody) == {}
    assert "Nobody matches." in nobody.text


async def test_grid_watches_everyone_shown_on_the_stream(world: World, browser: httpx.AsyncClient) -> None:
    """The grid's stream URL names exactly the people shown, and the page carries the words to describe changes."""
    await portal_sign_in(browser, world, "adele", "/people")
    page = await browser.get("/people")
    stream = re.search(r'data-stream="/_stream/presences\?ids=([^"]+)"', page.text)
    assert stream
    assert set(stream.group(1).split(",")) == set(cards(page))
    vocabulary = json.loads(re.search(r'id="vocabulary">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    assert vocabulary["activity"]["InACall"] == "In a call"


async def test_stream_takes_the_portal_session(world: World, browser: httpx.AsyncClient) -> None:
    """A signed-in page's EventSource (cookies, no token) is let in; a forged session is not.

    (The in-process transport buffers whole responses, so this asks for a stream it refuses after
    authentication: a 400 about the ids, not a 401. The browser tests watch the live stream.)
    """
    await portal_sign_in(browser, world, "adele", "/people")
    signed_in = await browser.get("/_stream/presences?ids=")
    assert signed_in.status_code == 400
    assert "ids must list the users" in signed_in.json()["error"]["message"]
    browser.cookies.set("presenced_session", "forged")
    assert (await browser.get("/_stream/presences?ids=")).status_code == 401


async def test_people_needs_sign_in(world: World, browser: httpx.AsyncClient) -> None:
    response = await browser.get("/people?q=meg")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fpeople%3Fq%3Dmeg"


async def test_sign_out_ends_the_session(world: World, browser: httpx.AsyncClient) -> None:
    """Sign out (a form with the page's token) ends the session: pages ask to sign in again."""
    await portal_sign_in(browser, world, "adele", "/people")
    page = await browser.get("/people")
    response = await browser.post("/signout", data={"csrf": csrf_of(page)})
    assert response.status_code == 200
    assert "You signed out" in response.text
    assert (await browser.get("/people")).status_code == 303


async def test_sign_out_needs_the_page_token(world: World, browser: httpx.AsyncClient) -> None:
    """Another site cannot sign anyone out."""
    await portal_sign_in(browser, world, "adele", "/people")
    assert (await browser.post("/signout", data={"csrf": "forged"})).status_code == 400
    assert (await browser.get("/people")).status_code == 200
