"""The print stylesheet: a printed portal page is its content, without the header, navigation and page controls."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from presenced.auth.permissions import PRESENCE_READ
from tests.browser.browser_support import ARTIFACTS, Browsers, Portal, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def print_to_pdf(page: Page, name: str) -> None:
    """Print ``page`` (already in print media) to ``test-artifacts/pdf/NAME.pdf``; the PDF is not empty."""
    pdf = ARTIFACTS / "pdf" / f"{name}.pdf"
    pdf.parent.mkdir(parents=True, exist_ok=True)
    data = await page.pdf(path=str(pdf), format="A4", print_background=True)
    assert data.startswith(b"%PDF-"), data[:16]
    assert pdf.stat().st_size == len(data) > 1000


async def test_print_stylesheet_hides_navigation(portal: Portal, browsers: Browsers) -> None:
    """A permission's page in print media: the header, navigation, skip link, Copy URL button and export links are
    gone; the permission's heading, its delegated id and the note that it has no application variant stay."""
    # Signed in, so that the header has all its links and the Sign out form (the page itself is public).
    page = await browsers.sign_in(portal, "johanna", "/me")
    await page.goto(f"/permissions/{PRESENCE_READ.value}")
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    header, nav = page.locator("header.site"), page.get_by_role("navigation", name="Main")
    main = page.locator("main#content")
    controls = [
        page.get_by_role("button", name="Copy URL"),
        page.get_by_role("link", name="Export JSON"),
        page.get_by_role("link", name="Export CSV"),
        page.get_by_role("link", name="All permissions"),
    ]
    for shown in (header, nav, *controls):
        await expect(shown).to_be_visible()

    await page.emulate_media(media="print")
    for hidden in (header, nav, page.get_by_role("link", name="Skip to content"), *controls):
        await expect(hidden).to_be_hidden()
    await expect(main).to_be_visible()
    await expect(main.get_by_role("heading", name=PRESENCE_READ.value, level=1)).to_be_visible()
    await expect(main.get_by_role("heading", name="Delegated permission", level=2)).to_be_visible()
    delegated_id = main.locator("section#delegated .id")
    await expect(delegated_id).to_be_visible()
    await expect(delegated_id).to_have_text(PRESENCE_READ.id)
    await expect(main.locator("section#application")).to_contain_text(
        "Microsoft Graph has no application permission Presence.Read."
    )
    await expect(main.locator("#methods")).to_be_visible()
    await screenshot(page, "test_print_stylesheet_hides_navigation")
    await print_to_pdf(page, "test_print_stylesheet_hides_navigation")


async def test_every_code_sample_prints_though_its_language_is_closed(portal: Portal, browsers: Browsers) -> None:
    """On screen each language's samples sit in a closed <details> that opens without script; in print media every
    sample of every language is shown, opened or not, and the Copy buttons are not."""
    page = await (await browsers.new_context(portal)).new_page()
    await page.goto("/permissions/Presence.Read.All")
    samples = page.locator("pre[id^='sample-']")
    await expect(samples).to_have_count(8)
    for index in range(8):
        await expect(samples.nth(index)).to_be_hidden()
    python = page.locator("details#samples-python")
    await python.locator("summary").click()
    await expect(python).to_have_attribute("open", "")
    await expect(page.locator("#sample-delegated-python")).to_be_visible()
    await expect(page.locator("#sample-application-python")).to_be_visible()
    await expect(page.locator("#sample-delegated-csharp")).to_be_hidden()

    await page.emulate_media(media="print")
    for index in range(8):
        await expect(samples.nth(index)).to_be_visible()
    await expect(page.get_by_role("button", name="Copy the delegated Python sample")).to_be_hidden()
    await screenshot(page, "test_every_code_sample_prints_though_its_language_is_closed")
    await print_to_pdf(page, "test_every_code_sample_prints_though_its_language_is_closed")


async def test_print_stylesheet_keeps_my_presence(portal: Portal, browsers: Browsers) -> None:
    """My presence in print media: the header, navigation and skip link are gone; the heading and the presence
    stay, and the status form is not printed."""
    page = await browsers.sign_in(portal, "johanna", "/me")
    header, nav = page.locator("header.site"), page.get_by_role("navigation", name="Main")
    main = page.locator("main#content")
    set_status = page.get_by_role("button", name="Set status", exact=True)
    await expect(header).to_be_visible()
    await expect(set_status).to_be_visible()

    await page.emulate_media(media="print")
    for hidden in (header, nav, page.get_by_role("link", name="Skip to content"), set_status):
        await expect(hidden).to_be_hidden()
    await expect(main).to_be_visible()
    await expect(main.get_by_role("heading", name="My presence", level=1)).to_be_visible()
    await expect(main.locator("#presence-words")).to_be_visible()
    await screenshot(page, "test_print_stylesheet_keeps_my_presence")
    await print_to_pdf(page, "test_print_stylesheet_keeps_my_presence")
