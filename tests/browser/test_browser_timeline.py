"""A person's day in Chromium: the timeline bar's segments are as wide as the stretches of the day they stand for,
and the pages that show it pass the accessibility checks the other pages pass (names, a phone's width, contrast,
printing).

The server runs on the manual clock: Nestor's portal session is opened at 08:00 on a day to come and left to fade
(Inactive at 08:05, Away at 08:10, Offline when it expires at 09:00), and the clock stands at 12:00 while the pages
are looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.browser_support import Browsers, Portal, artifact_name, contrast, http_server, screenshot
from tests.browser.test_browser_accessibility import AA, PHONE, TEXT

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: The day looked at: two days after the server started, so that the manual clock can be moved to it.
DAY = (datetime.now(UTC) + timedelta(days=2)).date()
#: Each stretch of the day the bar shows, in minutes from midnight, and its colour (availability) up to now.
STRETCHES = [
    ("none", 0, 8 * 60),
    ("Available", 8 * 60, 8 * 60 + 5),
    ("Available", 8 * 60 + 5, 8 * 60 + 10),
    ("Away", 8 * 60 + 10, 9 * 60),
    ("Offline", 9 * 60, 12 * 60),
]
#: The pages that show the day: one's own (My presence) and another person's, as a colleague sees it.
PAGES = {"own": ("nestor", f"/me?day={DAY.isoformat()}"), "colleague": ("megan", None)}


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[Portal]:
    """A demo server of its own, on the manual clock, with Nestor's morning played out on ``DAY``."""
    data_dir = tmp_path_factory.mktemp("timeline") / "data"
    with http_server(data_dir, "--clock", "manual", key_folder=key_folder) as running:
        play_the_morning(running)
        yield running


def play_the_morning(portal: Portal) -> None:
    """Nestor opens My presence at 08:00 on ``DAY`` (what its script does: the portal's session, Available for an
    hour) and leaves it; the clock moves on to 12:00."""
    with httpx.Client(base_url=portal.url) as http:

        def move(**body: str) -> None:
            assert http.post("/_emulator/clock", json=body).status_code == 200

        move(set=f"{DAY.isoformat()}T08:00:00Z")
        form = http.get("/signin?next=/people")
        account = {"username": portal.upn("nestor"), "password": portal.password("nestor")}
        signin = http.post("/signin?next=/people", data={"csrf": csrf(form.text), **account})
        assert signin.status_code == 303, signin.text[:300]
        people = http.get("/people")
        assert http.post("/me/session", data={"csrf": csrf(people.text)}).status_code == 204
        move(advance="PT4H")


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def open_day(portal: Portal, browsers: Browsers, page_kind: str, **options: Any) -> Page:
    who, path = PAGES[page_kind]
    return await browsers.sign_in(
        portal, who, path or f"/people/{portal.user_id('nestor')}?day={DAY.isoformat()}", **options
    )


@pytest.mark.parametrize("page_kind", PAGES)
async def test_segments_are_as_wide_as_their_stretch_of_the_day(
    portal: Portal, browsers: Browsers, page_kind: str
) -> None:
    """Each segment starts where the one before it ends and is as wide as its stretch of the day, within a pixel;
    the bar is empty after now (12:00, half the day), and the table says the same in words."""
    page = await open_day(portal, browsers, page_kind)
    bar = page.get_by_role("img", name=re.compile(r"presence on .* from midnight to now"))
    await expect(bar).to_be_visible()
    box = await bar.bounding_box()
    assert box is not None
    assert box["width"] > 300
    segments = page.locator(".timeline-bar rect.segment")
    await expect(segments).to_have_count(len(STRETCHES))
    for segment, (availability, begins, ends) in zip(await segments.all(), STRETCHES, strict=True):
        assert await segment.get_attribute("data-availability") == availability
        drawn = await segment.bounding_box()
        assert drawn is not None
        assert abs(drawn["x"] - box["x"] - box["width"] * begins / 1440) <= 1.5, (availability, begins, drawn, box)
        assert abs(drawn["width"] - box["width"] * (ends - begins) / 1440) <= 1.5, (availability, ends, drawn, box)
    fills = await segments.evaluate_all("(rects) => rects.map((r) => getComputedStyle(r).fill)")
    colours = dict(zip([s[0] for s in STRETCHES], fills, strict=True))
    assert len({colours["Available"], colours["Away"], colours["Offline"]}) == 3, colours
    assert colours["none"].startswith("url("), "the stretch with no record is hatched"
    table = page.locator("#timeline-changes")
    await expect(table.locator("tbody tr").nth(0)).to_contain_text("08:00")
    await expect(table.locator("tbody tr").nth(3)).to_contain_text("Offline")
    await screenshot(page, f"test_segments_are_as_wide_as_their_stretch_of_the_day-{page_kind}")


@pytest.mark.parametrize("page_kind", PAGES)
async def test_day_form_and_links_are_named_and_work(portal: Portal, browsers: Browsers, page_kind: str) -> None:
    """The day's form control has an accessible name; "Previous day" shows the day before, "Today" comes back."""
    page = await open_day(portal, browsers, page_kind)
    controls = page.locator("main input:not([type=hidden]), main select, main textarea")
    for control in await controls.all():
        html = await control.evaluate("(e) => e.outerHTML.slice(0, 160)")
        await expect(control, f"no accessible name: {html}").to_have_accessible_name(re.compile(r"\S"))
    await expect(page.get_by_label("Show another day")).to_have_value(DAY.isoformat())
    days = page.get_by_role("navigation", name="Days")
    await days.get_by_role("link", name="Previous day").click()
    before = (DAY - timedelta(days=1)).isoformat()
    await expect(page).to_have_url(re.compile(rf"day={before}#timeline$"))
    await expect(page.locator("#timeline-heading")).to_contain_text(f"on {DAY - timedelta(days=1):%A}")
    await days.get_by_role("link", name="Today").click()
    await expect(page.locator("#timeline-heading")).to_contain_text("today")


@pytest.mark.parametrize("page_kind", PAGES)
async def test_no_horizontal_scroll_on_a_phone(portal: Portal, browsers: Browsers, page_kind: str) -> None:
    """At 375 by 667 CSS pixels the bar, its legend and the table fit the screen."""
    page = await open_day(portal, browsers, page_kind, viewport=PHONE)
    await expect(page.locator(".timeline-bar rect.segment")).to_have_count(len(STRETCHES))
    scroll_width, client_width = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    await screenshot(page, f"test_timeline_no_horizontal_scroll_on_a_phone-{artifact_name(page_kind)}")
    assert scroll_width <= client_width == PHONE["width"], (scroll_width, client_width)


@pytest.mark.parametrize("page_kind", PAGES)
async def test_text_contrast_meets_wcag_aa(portal: Portal, browsers: Browsers, page_kind: str) -> None:
    """The timeline's text (heading, caption, legend, table, links and button) has a contrast of at least 4.5:1."""
    page = await open_day(portal, browsers, page_kind)
    selectors = {**TEXT, "timeline": "#timeline figcaption, #timeline .legend li, #timeline td, #timeline th"}
    measured = {kind: await contrast(page, selector) for kind, selector in selectors.items()}
    assert measured["timeline"], "no timeline text measured"
    low = {kind: [m for m in found if m["ratio"] < AA] for kind, found in measured.items()}
    assert not any(low.values()), {kind: found for kind, found in low.items() if found}


async def test_printed_day_keeps_the_bar_and_the_table(portal: Portal, browsers: Browsers) -> None:
    """In print media the bar, its legend and the table stay; the day's links and form, like the navigation, go."""
    page = await open_day(portal, browsers, "colleague")
    await page.emulate_media(media="print")
    timeline = page.locator("#timeline")
    for kept in (timeline.locator(".timeline-bar"), timeline.locator(".legend"), timeline.locator("#timeline-changes")):
        await expect(kept).to_be_visible()
    for gone in (page.get_by_role("navigation", name="Days"), page.get_by_label("Show another day")):
        await expect(gone).to_be_hidden()
    await expect(timeline.locator(".timeline-bar rect.segment")).to_have_count(len(STRETCHES))
    await screenshot(page, "test_printed_day_keeps_the_bar_and_the_table")


async def test_last_seen_on_people_follows_the_stream(portal: Portal, browsers: Browsers) -> None:
    """On Megan's People page, Grady's card says nothing of when he was last seen while he is online, "Last seen
    just now" the moment he appears offline, and nothing again once he is back, from the stream, without a reload;
    his day then lists both changes, though the clock stood still."""
    megan = await browsers.sign_in(portal, "megan", "/people")
    await expect(megan.locator("#live-state")).to_have_text(re.compile(r"^Live"))
    card = megan.locator(f'#people li[data-user-id="{portal.user_id("grady")}"]')
    seen = card.locator("[data-field=seen]")
    grady = await browsers.sign_in(portal, "grady", "/me")  # the page's session: Available
    await expect(card.locator("[data-field=words]")).to_have_text(re.compile(r"^Available"))
    await expect(seen).to_be_hidden()

    await grady.get_by_role("radio", name="Appear offline").check()
    await grady.get_by_role("button", name="Set status", exact=True).click()
    await expect(grady.get_by_role("status")).to_have_text("Your status is set.")
    await expect(card.locator("[data-field=words]")).to_have_text(re.compile(r"^Offline"))
    await expect(seen).to_have_text("Last seen just now")
    await screenshot(megan, "test_last_seen_on_people_follows_the_stream-people")

    await grady.get_by_role("button", name="Reset status").click()
    await expect(card.locator("[data-field=words]")).to_have_text(re.compile(r"^Available"))
    await expect(seen).to_be_hidden()
    await card.get_by_role("link", name="Grady Archie").click()
    await expect(megan.get_by_role("heading", level=1)).to_have_text("Grady Archie")
    rows = megan.locator("#timeline-changes tbody tr")
    await expect(rows.nth(-2)).to_contain_text("Offline")
    await expect(rows.nth(-1)).to_contain_text("Available")
    await expect(rows.nth(-1)).to_contain_text("so far")
