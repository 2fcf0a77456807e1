"""Presence set on My presence shows on another person's People page at once, from the stream, without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.browser_support import Browsers, Portal, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_do_not_disturb_shows_live_on_people(portal: Portal, browsers: Browsers) -> None:
    """Nestor (whom no other app reports) sets Do not disturb in one browser; Megan's People page, open in
    another, shows it in place, and never shows him Offline on the way."""
    alex = await browsers.sign_in(portal, "nestor", "/me")
    megan = await browsers.sign_in(portal, "megan", "/people")
    card = megan.locator(f'#people li[data-user-id="{portal.user_id("nestor")}"]')
    await expect(megan.locator("#live-state")).to_have_text(re.compile(r"^Live"))
    await expect(card.locator("[data-field=words]")).not_to_have_text("Do not disturb")
    await megan.evaluate("() => { window.__marker = 1; }")
    # Every wording the card goes through, to see that saving the status does not flicker through Offline.
    await megan.evaluate(
        """(selector) => {
            const words = document.querySelector(selector);
            window.__shown = [];
            new MutationObserver(() => window.__shown.push(words.textContent)).observe(
                words, {childList: true, characterData: true, subtree: true});
        }""",
        f'#people li[data-user-id="{portal.user_id("nestor")}"] [data-field=words]',
    )
    navigations: list[str] = []
    megan.on("framenavigated", lambda frame: navigations.append(frame.url))

    await alex.get_by_role("radio", name="Do not disturb").check()
    await alex.get_by_role("button", name="Set status", exact=True).click()
    await expect(alex.get_by_role("status")).to_have_text("Your status is set.")
    await expect(alex.locator("#presence-words")).to_have_text("Do not disturb")

    await expect(card.locator("[data-field=words]")).to_have_text("Do not disturb")
    await expect(card.locator(".badge")).to_have_attribute("data-availability", "DoNotDisturb")
    assert await megan.evaluate("() => window.__marker") == 1, "the People page was reloaded"
    assert navigations == [], navigations
    # The status form leaves My presence and comes back to it: its session must not end on the way.
    await alex.reload()
    await expect(alex.locator("#presence-words")).to_have_text("Do not disturb")
    assert "Offline" not in await megan.evaluate("() => window.__shown"), "Nestor flickered Offline"
    await screenshot(alex, "test_do_not_disturb_shows_live_on_people-1-me")
    await screenshot(megan, "test_do_not_disturb_shows_live_on_people-2-people")
