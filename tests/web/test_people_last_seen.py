"""Last seen on People and a person's day on the portal, on the manual clock: a session that fades to Offline
shows as "Last seen …" once it is Offline, and the day's timeline lists its changes in order, with their times."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import httpx
import pytest

from presenced.bootstrap import Runtime
from tests.oauth.identity_support import World, client_for
from tests.support import build_on_manual_clock
from tests.web.portal_support import csrf_of, portal_sign_in, text_of

#: The demo is seeded the evening before the day the tests look at.
SEEDED = datetime(2030, 1, 6, 20, 0, tzinfo=UTC)
MORNING = "2030-01-07T09:00:00Z"
DAY = "2030-01-07"


@pytest.fixture
def database_url() -> None:
    """SQLite only: the pages call services that tests/api and tests/services run on both stores."""
    return


@pytest.fixture
async def runtime(tmp_path: Path, key_folder: Path, database_url: str | None) -> AsyncIterator[Runtime]:
    """A runtime on the manual clock, set to ``SEEDED`` (the ``world`` fixture seeds the demo at that time)."""
    built = await build_on_manual_clock(tmp_path, key_folder, database_url)
    try:
        assert built.emulator is not None
        await built.emulator.move(to=SEEDED)
        yield built
    finally:
        await built.close()


@pytest.fixture
async def nestor(runtime: Runtime, world: World) -> AsyncIterator[httpx.AsyncClient]:
    """Nestor's browser, signed in to the portal (no app reports his presence: he is Offline)."""
    async with client_for(runtime) as http:
        await portal_sign_in(http, world, "nestor")
        yield http


async def move_clock(client: httpx.AsyncClient, **body: str) -> None:
    moved = await client.post("/_emulator/clock", json=body)
    assert moved.status_code == 200, moved.text


async def open_my_presence(browser: httpx.AsyncClient) -> None:
    """What My presence's script does when the page opens: the portal's session, Available for an hour."""
    page = await browser.get("/me")
    assert (await browser.post("/me/session", data={"csrf": csrf_of(page)})).status_code == 204


def card(page: httpx.Response, user_id: str) -> str:
    found = re.search(rf'<li class="person"[^>]*data-user-id="{user_id}".*?</li>', page.text, re.S)
    assert found, f"no card for {user_id}"
    return found.group(0)


def seen_of(html: str) -> tuple[str, str | None] | None:
    """The "last seen" a card or page shows: its words and the instant of its <time>; None when it shows none."""
    found = re.search(r'<(?:div|p) class="[^"]*" data-field="seen"[^>]*?( hidden)?>(.*?)</(?:div|p)>', html, re.S)
    assert found, "no last-seen field"
    if found.group(1):
        return None
    instant = re.search(r'<time datetime="([^"]+)"', found.group(2))
    return plain(found.group(2)), instant.group(1) if instant else None


def changes(page: httpx.Response) -> list[tuple[str, str, str]]:
    """The timeline's table: (time, presence, how long it lasted) a row, in the order shown."""
    table = re.search(r'<table class="changes" id="timeline-changes">.*?<tbody>(.*?)</tbody>', page.text, re.S)
    assert table, "no table of changes"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.S)
    found = []
    for row in rows:
        time_, presence, lasted = (plain(cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S))
        found.append((time_, presence, lasted))
    return found


def plain(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def links(page: httpx.Response) -> dict[str, str]:
    """The day navigation's links: their text → where they go."""
    nav = re.search(r'<nav class="day-nav" aria-label="Days">(.*?)</nav>', page.text, re.S)
    assert nav, "no day navigation"
    found = re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', nav.group(1), re.S)
    return {" ".join(unescape(re.sub(r"<[^>]+>", "", text)).split()).strip("←→ "): href for href, text in found}


async def test_last_seen_follows_a_session_fading_to_offline(
    world: World, browser: httpx.AsyncClient, nestor: httpx.AsyncClient
) -> None:
    """Adele's People page: Nestor never seen at first; nothing while his portal session keeps him online, fading
    or not; once the session expires, the instant he went Offline, said as how long ago, then as the day and time."""
    await portal_sign_in(browser, world, "adele", "/people")
    nestor_id = world.user_id("nestor")

    async def shown() -> tuple[str, str | None] | None:
        page = await browser.get("/people")
        assert page.status_code == 200
        return seen_of(card(page, nestor_id))

    assert await shown() == ("Not seen in the last 30 days", None)
    await move_clock(browser, set=MORNING)
    await open_my_presence(nestor)
    assert await shown() is None, "online: his presence says it"
    await move_clock(browser, advance="PT20M")
    page = await browser.get("/people")
    assert "Away" in card(page, nestor_id), "the idle session faded to Away"
    assert seen_of(card(page, nestor_id)) is None, "Away is not Offline"

    await move_clock(browser, advance="PT45M")  # 10:05: the session ended at 10:00
    assert await shown() == ("Last seen 5 minutes ago", "2030-01-07T10:00:00Z")
    await move_clock(browser, advance="PT3H")
    assert await shown() == ("Last seen 3 hours ago", "2030-01-07T10:00:00Z")
    await move_clock(browser, advance="P1D")
    assert await shown() == ("Last seen yesterday at 10:00", "2030-01-07T10:00:00Z")
    await move_clock(browser, advance="P3D")
    assert await shown() == ("Last seen on 7 Jan at 10:00", "2030-01-07T10:00:00Z")

    person = await browser.get(f"/people/{nestor_id}")
    assert person.status_code == 200
    assert seen_of(person.text) == ("Last seen on 7 Jan at 10:00", "2030-01-07T10:00:00Z")


async def test_people_page_reads_last_seen_for_everyone_shown(world: World, browser: httpx.AsyncClient) -> None:
    """Each card says when an Offline person was last seen, and nothing for anyone online."""
    await portal_sign_in(browser, world, "adele", "/people")
    page = await browser.get("/people")
    cards = [card(page, user_id) for user_id in re.findall(r'<li class="person"[^>]*data-user-id="([^"]+)"', page.text)]
    assert len(cards) >= 10
    offline = [html for html in cards if 'class="badge" data-availability="Offline"' in html]
    assert offline, "somebody is Offline in the demo"
    for html in cards:
        assert (seen_of(html) is not None) == (html in offline), html


async def test_my_day_lists_its_changes_in_order_with_their_times(
    world: World, nestor: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    """My presence shows the day's timeline: the presence the day began with, then each change at its time, with
    how long it lasted; the bar has a segment for each, coloured by availability. The day before shows what was
    recorded that evening, after a stretch with no record."""
    await open_my_presence(nestor)  # the evening before, 20:00
    await move_clock(nestor, set=MORNING)
    await open_my_presence(nestor)
    await move_clock(nestor, advance="PT4H")  # 13:00
    page = await nestor.get("/me")
    assert page.status_code == 200
    assert text_of(page, "timeline-heading") == "Your presence today, Monday 7 January 2030"
    rows = changes(page)
    assert rows == [
        ("00:00 (from the day before)", "Offline", "9 h"),
        ("09:00", "Available", "5 min"),
        ("09:05", "Available · Inactive", "5 min"),
        ("09:10", "Away", "50 min"),
        ("10:00", "Offline", "3 h so far"),
    ]
    assert 'datetime="2030-01-07T09:05:00Z"' in page.text
    segments = re.findall(r'<rect class="segment" data-availability="(\w+)"', page.text)
    assert segments == ["Offline", "Available", "Available", "Away", "Offline"]
    assert "Times are in UTC" in page.text

    await portal_sign_in(browser, world, "adele", "/people")
    theirs = await browser.get(f"/people/{world.user_id('nestor')}?day={DAY}")
    assert theirs.status_code == 200, "whoever may read his presence on People may read his day"
    assert changes(theirs) == rows
    assert text_of(theirs, "timeline-heading") == "Nestor Wilke's presence today, Monday 7 January 2030"

    evening = await nestor.get("/me?day=2030-01-06")
    assert changes(evening) == [
        ("20:00", "Available", "5 min"),
        ("20:05", "Available · Inactive", "5 min"),
        ("20:10", "Away", "50 min"),
        ("21:00", "Offline", "3 h, to the end of the day"),
    ]
    segments = re.findall(r'<rect class="segment" data-availability="(\w+)"', evening.text)
    assert segments == ["none", "Available", "Available", "Away", "Offline"]
    assert "No record" in evening.text, "the legend names the stretch with no record"


async def test_days_link_to_the_day_before_and_after(world: World, nestor: httpx.AsyncClient) -> None:
    """Today links to the day before, not to a day to come; an earlier day links both ways and back to today."""
    await move_clock(nestor, set=MORNING)
    today = await nestor.get("/me")
    assert links(today) == {"Previous day": "/me?day=2030-01-06#timeline"}
    before = await nestor.get("/me?day=2030-01-06")
    assert before.status_code == 200
    assert text_of(before, "timeline-heading") == "Your presence on Sunday 6 January 2030"
    assert links(before) == {
        "Previous day": "/me?day=2030-01-05#timeline",
        "Today": "/me#timeline",
        "Next day": "/me?day=2030-01-07#timeline",
    }
    quiet = await nestor.get("/me?day=2030-01-05")
    assert text_of(quiet, "timeline-empty") == "No presence is recorded for this day."
    oldest = await nestor.get("/me?day=2029-12-08")
    assert oldest.status_code == 200
    assert "Previous day" not in links(oldest), "the history kept begins that day"


@pytest.mark.parametrize(
    ("day", "says"),
    [
        ("yesterday", "'yesterday' is not a day: give one as YYYY-MM-DD, such as 2030-01-07."),
        ("2030-02-30", "'2030-02-30' is not a day"),
        ("20300107", "'20300107' is not a day"),
        ("2030-01-08", "Presence history is kept from 2029-12-08 to today (2030-01-07): choose a day in between."),
        ("2029-11-30", "Presence history is kept from 2029-12-08 to today (2030-01-07)"),
    ],
)
async def test_a_day_that_cannot_be_shown_gets_the_error_page(
    world: World, nestor: httpx.AsyncClient, day: str, says: str
) -> None:
    """A day that is not one, or one outside the history kept, is refused with the reason, not a server error."""
    await move_clock(nestor, set=MORNING)
    for path in ("/me", f"/people/{world.user_id('alex')}"):
        page = await nestor.get(path, params={"day": day})
        assert page.status_code == 400, (path, page.text[:300])
        assert "<h1>Not accepted</h1>" in page.text
        assert says in text_of(page, "problem")


async def test_a_person_who_does_not_exist_is_not_found(world: World, nestor: httpx.AsyncClient) -> None:
    page = await nestor.get("/people/00000000-0000-0000-0000-000000000bad")
    assert page.status_code == 404
    assert "does not exist" in text_of(page, "problem")
