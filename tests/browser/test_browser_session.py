"""My presence keeps the portal's presence session alive while used; left alone it fades, and closing it ends it.

A server of its own on the emulator's manual clock (``--clock manual``): presence time moves only when
the test posts to ``/_emulator/clock``. The page's own timers run on Playwright's clock, which the test
moves with it, so the page sees the same minutes pass as the server, and nobody touches the page.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, Request, expect

from tests.browser.browser_support import Browsers, Portal, http_server, screenshot, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEST = "test_presence_session_fades_when_idle"
#: Nestor has no presence session in the demo: what he shows comes from the portal's alone.
WHO = "nestor"
WATCHER = "adele"


@pytest.fixture(scope="module")
def clock_portal(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[Portal]:
    """A server whose presence clock moves only when told."""
    with http_server(
        tmp_path_factory.mktemp("browser-clock") / "data", "--clock", "manual", key_folder=key_folder
    ) as p:
        yield p


async def graph_presence(http: httpx.AsyncClient, portal: Portal, token: str) -> tuple[str, str]:
    """Nestor's (availability, activity) as the Graph API has it."""
    response = await http.get(
        f"/v1.0/users/{portal.user_id(WHO)}/presence", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["availability"], body["activity"]


async def minutes_pass(http: httpx.AsyncClient, page: Page, minutes: int) -> None:
    """``minutes`` go by a minute at a time, on the page's timers and on the server's presence clock."""
    for _ in range(minutes):
        await page.clock.run_for("01:00")
        response = await http.post("/_emulator/clock", json={"advance": "PT1M"})
        assert response.status_code == 200, response.text


async def test_presence_session_fades_when_idle(clock_portal: Portal, browsers: Browsers) -> None:
    """Opening My presence makes Nestor Available; untouched for 6 minutes he is Available, Inactive, for 11
    Away; leaving the page makes him Offline (15 seconds later, the grace for a reload). Adele's People page
    shows each step as it happens."""
    portal = clock_portal
    async with httpx.AsyncClient(base_url=portal.url, timeout=10, trust_env=False) as http:
        # A delegated token of Adele's that may read anyone's presence, minted while the browser works.
        minting = asyncio.create_task(
            asyncio.to_thread(
                portal.server.cli, "token", "--user", portal.upn(WATCHER), "--scopes", "Presence.Read.All"
            )
        )
        watcher = await browsers.sign_in(portal, WATCHER, "/people")
        card = watcher.locator(f'#people li[data-user-id="{portal.user_id(WHO)}"] [data-field=words]')
        await expect(watcher.locator("#live-state")).to_have_text(re.compile(r"^Live"))
        await expect(card).to_have_text("Offline")
        token = (await minting).strip()
        assert await graph_presence(http, portal, token) == ("Offline", "Offline")

        context = await browsers.new_context(portal)
        # The page's clock stands still from the start: its timers fire only in minutes_pass.
        await context.clock.install(time=datetime.now(UTC))
        await context.clock.pause_at(datetime.now(UTC))
        keep_alives: list[Request] = []
        context.on("request", lambda r: keep_alives.append(r) if r.url == f"{portal.url}/me/session" else None)
        async with context.expect_event("requestfinished", lambda r: r.url == f"{portal.url}/me/session"):
            page = await sign_in(context, portal, WHO, "/me")
        assert await graph_presence(http, portal, token) == ("Available", "Available")
        await expect(card).to_have_text("Available")
        await expect(page.locator("#presence-words")).to_have_text("Available")
        await screenshot(watcher, f"{TEST}-1-available")

        await minutes_pass(http, page, 6)
        assert await graph_presence(http, portal, token) == ("Available", "AvailableInactive")
        await expect(card).to_have_text("Available · Inactive")
        await expect(page.locator("#presence-words")).to_have_text("Available · Inactive")
        await screenshot(page, f"{TEST}-2-me-inactive")

        await minutes_pass(http, page, 5)
        assert await graph_presence(http, portal, token) == ("Away", "Away")
        await expect(card).to_have_text("Away")
        await expect(page.locator("#presence-words")).to_have_text("Away")
        await screenshot(watcher, f"{TEST}-3-away")
        assert len(keep_alives) == 1, "the page refreshed the session of someone who did not use it"

        # Leaving the page (here for another site) ends the session once the grace for a reload has passed.
        await page.goto("about:blank")
        assert await graph_presence(http, portal, token) == ("Away", "Away")
        # The page's beacon is not visible to the browser's tools once it has left, and the server's answer
        # changes nothing visible: move the clock past the grace until the session is gone (the beacon took
        # effect), at most 100 times: 33 minutes, well before the session's own hour runs out.
        for _ in range(100):
            response = await http.post("/_emulator/clock", json={"advance": "PT20S"})
            assert response.status_code == 200, response.text
            if await graph_presence(http, portal, token) == ("Offline", "Offline"):
                break
        await expect(card).to_have_text("Offline")
        assert await graph_presence(http, portal, token) == ("Offline", "Offline")
        await context.close()
        await screenshot(watcher, f"{TEST}-4-offline")


async def _token(portal: Portal) -> str:
    """A delegated token of Adele's that may read anyone's presence."""
    import asyncio

    return await asyncio.to_thread(
        portal.server.cli, "token", "--user", portal.upn(WATCHER), "--scopes", "Presence.Read.All"
    )
