"""The print stylesheet: a printed portal page is its content, without the header and navigation."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.browser_support import ARTIFACTS, Browsers, Portal, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_print_stylesheet_hides_navigation(portal: Portal, browsers: Browsers) -> None:
    """In print media the header, navigation and skip link are gone and the page's content stays; the PDF prints."""
    page = await browsers.sign_in(portal, "johanna", "/me")
    header, nav = page.locator("header.site"), page.get_by_role("navigation", name="Main")
    main = page.locator("main#content")
    await expect(header).to_be_visible()
    await expect(nav).to_be_visible()

    await page.emulate_media(media="print")
    await expect(header).to_be_hidden()
    await expect(nav).to_be_hidden()
    await expect(page.get_by_role("link", name="Skip to content")).to_be_hidden()
    await expect(main).to_be_visible()
    await expect(main.get_by_role("heading", name="My presence", level=1)).to_be_visible()
    await expect(main.locator("#presence-words")).to_be_visible()
    await screenshot(page, "test_print_stylesheet_hides_navigation")

    pdf = ARTIFACTS / "pdf" / "test_print_stylesheet_hides_navigation.pdf"
    pdf.parent.mkdir(parents=True, exist_ok=True)
    data = await page.pdf(path=str(pdf), format="A4", print_background=True)
    assert data.startswith(b"%PDF-"), data[:16]
    assert pdf.stat().st_size == len(data) > 1000
