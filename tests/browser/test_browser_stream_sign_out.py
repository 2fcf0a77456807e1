"""Signing out ends the live updates of the portal's other pages at once: their stream closes, and they say so
rather than trying to reconnect."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.browser_support import Browsers, Portal, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")

WHO = "lynne"


async def test_signing_out_ends_the_live_updates_of_open_pages(portal: Portal, browsers: Browsers) -> None:
    people = await browsers.sign_in(portal, WHO, "/people")
    # The session ends here: later tests of this process must sign in again rather than reuse its cookies.
    browsers.signed_in.pop((portal.url, WHO), None)
    await expect(people.locator("#live-state")).to_have_text(re.compile(r"^Live"))
    other = await people.context.new_page()
    await other.goto("/me")
    await other.get_by_role("button", name="Sign out").click()
    await expect(other.get_by_role("heading", name="You signed out")).to_be_visible()
    await expect(people.locator("#live-state")).to_have_text("Signed out: sign in again to see changes live.")
    await screenshot(people, "test_signing_out_ends_the_live_updates_of_open_pages")
