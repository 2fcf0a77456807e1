"""Keyboard and layout: accessible names, the skip link and tab order, a phone's width, text contrast."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from presenced.services.demo import DEMO_DAEMON_APP_ID
from tests.browser.browser_support import Browsers, Portal, artifact_name, contrast, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: The person these tests sign in (they only look, except that My presence starts the portal's session).
WHO = "pradeep"
#: The administrator, for the pages only administrators see.
ADMIN = "adele"
DAEMON_APP = f"/apps/{DEMO_DAEMON_APP_ID}"
#: Every kind of page: the sign-in page, a person's pages, an administrator's, and the public explorer.
PAGES = ["/signin", "/me", "/people", "/apps", "/apps/new", DAEMON_APP, "/consents", "/permissions",
         "/permissions/Presence.Read.All"]  # fmt: skip
#: The pages with fields to fill in (the others have buttons only, whose names are their text).
WITH_FORMS = ["/me", "/people", "/apps/new", DAEMON_APP, "/permissions"]
PHONE = {"width": 375, "height": 667}
#: What WCAG 2 AA asks of normal-size text.
AA = 4.5
#: The kinds of text whose contrast is measured, and the elements that hold them.
TEXT = {
    "body text": "body, h1, h2, label, legend, main p:not(.muted):not(.hint), .person .name, .presence-words",
    "muted text": ".muted, .hint, .brand, .person .upn, dl.facts dt",
    "links": "a:not([aria-current=page])",
    "buttons": "button",
}
#: Which kinds each page must have (so that a selector that stops matching is noticed).
EXPECTED = {
    "/signin": {"body text", "muted text", "buttons"},
    "/me": {"body text", "muted text", "links", "buttons"},
    "/people": {"body text", "muted text", "links", "buttons"},
    "/apps": {"body text", "links", "buttons"},
    "/apps/new": {"body text", "muted text", "links", "buttons"},
    DAEMON_APP: {"body text", "muted text", "links", "buttons"},
    "/consents": {"body text", "muted text", "links", "buttons"},
    "/permissions": {"body text", "muted text", "links", "buttons"},
    "/permissions/Presence.Read.All": {"body text", "muted text", "links", "buttons"},
}


async def open_page(portal: Portal, browsers: Browsers, path: str, **options: object) -> Page:
    """``path`` as a visitor who signed in (or, for /signin, as one who has not)."""
    if path == "/signin":
        page = await (await browsers.new_context(portal, **options)).new_page()
        await page.goto("/signin?next=/me")
        return page
    who = ADMIN if path.startswith(("/apps", "/consents")) else WHO
    return await browsers.sign_in(portal, who, path, **options)


@pytest.mark.parametrize("path", WITH_FORMS)
async def test_every_form_control_has_an_accessible_name(portal: Portal, browsers: Browsers, path: str) -> None:
    """Each input, select and textarea a person can reach has a name a screen reader announces."""
    page = await open_page(portal, browsers, path)
    controls = page.locator("input:not([type=hidden]), select, textarea")
    assert await controls.count() > 0
    for control in await controls.all():
        html = await control.evaluate("(e) => e.outerHTML.slice(0, 160)")
        await expect(control, f"no accessible name: {html}").to_have_accessible_name(re.compile(r"\S"))
    await screenshot(page, f"test_every_form_control_has_an_accessible_name-{artifact_name(path)}")


@pytest.mark.parametrize("path", ["/me", "/people"])
async def test_tab_reaches_the_skip_link_then_the_navigation(portal: Portal, browsers: Browsers, path: str) -> None:
    """From the top of the page, Tab focuses "Skip to content" (shown while focused), then the header's links in
    order; the skip link moves the focus to the content."""
    page = await open_page(portal, browsers, path)
    nav = page.get_by_role("navigation", name="Main")
    nav_links = await nav.get_by_role("link").all_inner_texts()
    assert {"My presence", "People"} <= set(nav_links), nav_links
    skip = page.get_by_role("link", name="Skip to content")

    await page.keyboard.press("Tab")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    await screenshot(page, f"test_tab_reaches_the_skip_link_then_the_navigation-{artifact_name(path)}")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("banner").get_by_role("link", name="presenced", exact=True)).to_be_focused()
    for name in nav_links:
        await page.keyboard.press("Tab")
        await expect(nav.get_by_role("link", name=name, exact=True)).to_be_focused()

    await page.reload()
    await page.keyboard.press("Tab")
    await expect(skip).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("main#content")).to_be_focused()


@pytest.mark.parametrize("path", PAGES)
async def test_no_horizontal_scroll_on_a_phone(portal: Portal, browsers: Browsers, path: str) -> None:
    """At 375 by 667 CSS pixels nothing is wider than the screen."""
    page = await open_page(portal, browsers, path, viewport=PHONE)
    scroll_width, client_width = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    await screenshot(page, f"test_no_horizontal_scroll_on_a_phone-{artifact_name(path)}")
    assert client_width == PHONE["width"]
    assert scroll_width <= client_width, f"{path} scrolls sideways: {scroll_width} px of content in {client_width} px"


@pytest.mark.parametrize("path", PAGES)
async def test_text_contrast_meets_wcag_aa(portal: Portal, browsers: Browsers, path: str) -> None:
    """Body text, muted text, links and buttons (primary ones included) have a contrast of at least 4.5:1
    against what they are drawn on."""
    page = await open_page(portal, browsers, path)
    await screenshot(page, f"test_text_contrast_meets_wcag_aa-{artifact_name(path)}")
    measured = {kind: await contrast(page, selector) for kind, selector in TEXT.items()}
    assert {kind for kind, found in measured.items() if found} >= EXPECTED[path], measured
    if path == "/me":
        assert [m for m in measured["buttons"] if m["element"] == "button.primary"], "no primary button measured"
    low = {kind: [m for m in found if m["ratio"] < AA] for kind, found in measured.items()}
    assert not any(low.values()), {kind: found for kind, found in low.items() if found}


async def test_current_page_link_contrast_meets_wcag_aa(portal: Portal, browsers: Browsers) -> None:
    """The navigation link of the page one is on has a contrast of at least 4.5:1 too."""
    page = await open_page(portal, browsers, "/me")
    (current,) = await contrast(page, "nav a[aria-current=page]")
    await screenshot(page, "test_current_page_link_contrast_meets_wcag_aa")
    assert current["ratio"] >= AA, current
