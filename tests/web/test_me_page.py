"""My presence: a signed-in person sees and sets their own presence through the portal's forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from presenced.bootstrap import Runtime
from presenced.domain.model import (
    Activity,
    AutoReplyStatus,
    Availability,
    PresenceFacts,
    VisiblePresence,
    WorkLocationType,
)
from presenced.domain.sequence import PresenceState
from presenced.portal_session import PORTAL_APP_ID, portal_principal
from presenced.services.mailbox import LocalTime, RepliesPatch
from presenced.web.me import LEAVE_GRACE
from tests.oauth.identity_support import World, account
from tests.support import T0, FixedClock
from tests.web.portal_support import csrf_of, page_error, portal_sign_in, text_of


@pytest.fixture
def database_url() -> None:
    """SQLite only: the pages call services that tests/api and tests/store run on both stores."""
    return


async def visible(runtime: Runtime, world: World, nickname: str) -> VisiblePresence:
    [found] = await runtime.reader.load(world.tenant_id, [world.user_id(nickname)])
    return found.state.visible


async def test_signed_out_visitor_is_sent_to_sign_in_and_back(world: World, browser: httpx.AsyncClient) -> None:
    """/me without a session redirects to the sign-in page, which returns there after signing in."""
    response = await browser.get("/me")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fme"
    await portal_sign_in(browser, world, "adele")
    page = await browser.get("/me")
    assert page.status_code == 200
    assert "Adele Vance" in page.text


async def test_wrong_password_is_refused_on_the_page(world: World, browser: httpx.AsyncClient) -> None:
    """A wrong password shows an error a person can act on and starts no session."""
    form = await browser.get("/signin?next=/me")
    response = await browser.post(
        "/signin?next=/me", data={"csrf": csrf_of(form), "username": "adele@contoso.example", "password": "nope"}
    )
    assert response.status_code == 400
    assert "Your account or password is incorrect." in response.text
    assert (await browser.get("/me")).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
async def test_sign_in_never_returns_to_another_site(world: World, browser: httpx.AsyncClient, target: str) -> None:
    """A ``next`` that leaves the server is replaced by My presence."""
    form = await browser.get("/signin")
    response = await browser.post(
        f"/signin?next={httpx.QueryParams({'n': target})['n']}",
        data={"csrf": csrf_of(form), "username": "adele@contoso.example", "password": world.password("adele")},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/me"


async def test_page_shows_presence_as_teams_does(world: World, browser: httpx.AsyncClient) -> None:
    """Adele's page shows her presence in words, her status message, work location and local time."""
    await portal_sign_in(browser, world, "adele")
    page = await browser.get("/me")
    assert text_of(page, "presence-words") == "Available"
    assert 'data-availability="Available"' in page.text
    assert text_of(page, "status-shown") == "Working on the quarterly report"
    assert "In the office" in page.text
    assert "building-1" in page.text
    assert text_of(page, "local-time") == T0.strftime("%H:%M")  # her mailbox time zone is UTC


async def test_do_not_disturb_for_an_hour(runtime: Runtime, world: World, browser: httpx.AsyncClient) -> None:
    """Choosing Do not disturb for an hour sets the preferred presence everyone then sees."""
    csrf = await portal_sign_in(browser, world, "adele")
    response = await browser.post(
        "/me/preferred", data={"csrf": csrf, "availability": "DoNotDisturb", "duration": "PT1H"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/me?done=preferred"
    shown = await visible(runtime, world, "adele")
    assert (shown.availability, shown.activity) == (Availability.DO_NOT_DISTURB, Activity.DO_NOT_DISTURB)
    page = await browser.get("/me?done=preferred")
    assert text_of(page, "presence-words") == "Do not disturb"
    assert "Your status is set." in page.text


async def test_appear_offline_then_reset(runtime: Runtime, world: World, browser: httpx.AsyncClient) -> None:
    """Appear offline shows Offline; Reset status returns to what the sessions say."""
    csrf = await portal_sign_in(browser, world, "adele")
    await browser.post("/me/preferred", data={"csrf": csrf, "availability": "Offline", "duration": ""})
    assert (await visible(runtime, world, "adele")).activity is Activity.OFF_WORK
    await browser.post("/me/preferred/reset", data={"csrf": csrf})
    assert (await visible(runtime, world, "adele")).availability is Availability.AVAILABLE


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"availability": "InAMeeting", "duration": ""}, "Choose one of the statuses listed."),
        ({"availability": "Busy", "duration": "PT99H"}, "Choose one of the durations listed."),
        ({"duration": ""}, "Choose one of the statuses listed."),
    ],
)
async def test_bad_status_choice_changes_nothing(
    runtime: Runtime, world: World, browser: httpx.AsyncClient, fields: dict[str, str], reason: str
) -> None:
    """A status or duration not offered is refused with the reason, and the presence stays as it was."""
    csrf = await portal_sign_in(browser, world, "adele")
    before = await visible(runtime, world, "adele")
    response = await browser.post("/me/preferred", data={"csrf": csrf, **fields})
    assert response.status_code == 400
    assert page_error(response) == reason
    assert await visible(runtime, world, "adele") == before


async def test_forms_need_the_csrf_token(runtime: Runtime, world: World, browser: httpx.AsyncClient) -> None:
    """A form posted without the page's token (another site's form) changes nothing."""
    await portal_sign_in(browser, world, "adele")
    before = await visible(runtime, world, "adele")
    response = await browser.post("/me/preferred", data={"csrf": "forged", "availability": "Busy", "duration": ""})
    assert response.status_code == 400
    assert await visible(runtime, world, "adele") == before


async def test_forms_need_a_session(runtime: Runtime, world: World, browser: httpx.AsyncClient) -> None:
    """A form posted after signing out is refused."""
    csrf = await portal_sign_in(browser, world, "adele")
    assert (await browser.post("/signout", data={"csrf": csrf})).status_code == 200
    before = await visible(runtime, world, "adele")
    response = await browser.post("/me/preferred", data={"csrf": csrf, "availability": "Busy", "duration": ""})
    assert response.status_code == 401
    assert await visible(runtime, world, "adele") == before


async def test_status_message_clears_after_an_hour(
    runtime: Runtime, world: World, browser: httpx.AsyncClient, clock: FixedClock
) -> None:
    """A status message set to clear after an hour expires an hour from now."""
    csrf = await portal_sign_in(browser, world, "nestor")
    response = await browser.post("/me/status", data={"csrf": csrf, "message": "Lunch", "clear_after": "1h"})
    assert response.status_code == 303
    message = (await visible(runtime, world, "nestor")).status_message
    assert message is not None
    assert message.content == "Lunch"
    assert message.expires_at == T0 + timedelta(hours=1)
    page = await browser.get("/me")
    assert text_of(page, "status-shown") == "Lunch"


async def test_status_message_at_a_chosen_time(runtime: Runtime, world: World, browser: httpx.AsyncClient) -> None:
    """A custom expiry from the date-time field is read in the person's time zone."""
    csrf = await portal_sign_in(browser, world, "nestor")
    await browser.post("/me/timezone", data={"csrf": csrf, "time_zone": "W. Europe Standard Time"})
    response = await browser.post(
        "/me/status",
        data={"csrf": csrf, "message": "Out", "clear_after": "custom", "expires": "2026-03-02T18:30"},
    )
    assert response.status_code == 303
    message = (await visible(runtime, world, "nestor")).status_message
    assert message is not None
    assert message.expires_at == T0.replace(hour=17, minute=30)


async def test_status_message_in_the_past_is_refused(
    runtime: Runtime, world: World, browser: httpx.AsyncClient
) -> None:
    csrf = await portal_sign_in(browser, world, "nestor")
    response = await browser.post(
        "/me/status", data={"csrf": csrf, "message": "Late", "clear_after": "custom", "expires": "2020-01-01T00:00"}
    )
    assert response.status_code == 400
    assert "in the past" in page_error(response)
    assert (await visible(runtime, world, "nestor")).status_message is None


async def test_clear_status_message(runtime: Runtime, world: World, browser: httpx.AsyncClient) -> None:
    csrf = await portal_sign_in(browser, world, "adele")
    assert (await browser.post("/me/status/clear", data={"csrf": csrf})).status_code == 303
    assert (await visible(runtime, world, "adele")).status_message is None


async def test_automatic_replies_on_show_out_of_office(
    runtime: Runtime, world: World, browser: httpx.AsyncClient
) -> None:
    """Turning automatic replies on puts the person out of office, with the internal reply as the message."""
    csrf = await portal_sign_in(browser, world, "adele")
    response = await browser.post(
        "/me/replies", data={"csrf": csrf, "replies": "on", "internal": "Back Monday", "external": "", "time_zone": ""}
    )
    assert response.status_code == 303
    shown = await visible(runtime, world, "adele")
    assert shown.out_of_office.is_out_of_office
    assert shown.out_of_office.message == "Back Monday"
    assert shown.activity is Activity.OUT_OF_OFFICE
    page = await browser.get("/me")
    assert text_of(page, "ooo-state") == "On"
    await browser.post("/me/replies", data={"csrf": csrf, "replies": "off", "internal": "", "external": ""})
    assert not (await visible(runtime, world, "adele")).out_of_office.is_out_of_office


async def test_scheduled_replies_follow_their_window_and_zone(
    runtime: Runtime, world: World, browser: httpx.AsyncClient
) -> None:
    """Scheduled replies are stored with the chosen time zone; out of office starts only in the window."""
    csrf = await portal_sign_in(browser, world, "nestor")
    response = await browser.post(
        "/me/replies",
        data={
            "csrf": csrf,
            "replies": "scheduled",
            "start": "2026-03-03T09:00",
            "end": "2026-03-10T17:00",
            "time_zone": "Pacific Standard Time",
            "internal": "Away this week",
            "external": "",
        },
    )
    assert response.status_code == 303, page_error(response)
    settings = await runtime.store.mailbox_settings(world.user_id("nestor"))
    replies = settings.automatic_replies
    assert replies.status is AutoReplyStatus.SCHEDULED
    assert replies.scheduled_start == T0.replace(day=3, hour=17)  # 09:00 in Los Angeles
    assert not (await visible(runtime, world, "nestor")).out_of_office.is_out_of_office


async def test_scheduled_replies_need_a_window(runtime: Runtime, world: World, browser: httpx.AsyncClient) -> None:
    csrf = await portal_sign_in(browser, world, "nestor")
    response = await browser.post("/me/replies", data={"csrf": csrf, "replies": "scheduled", "start": "", "end": ""})
    assert response.status_code == 400
    assert page_error(response) == "Scheduled replies need a start and an end."
    settings = await runtime.store.mailbox_settings(world.user_id("nestor"))
    assert settings.automatic_replies.status is AutoReplyStatus.DISABLED


async def test_work_location_set_and_cleared(runtime: Runtime, world: World, browser: httpx.AsyncClient) -> None:
    csrf = await portal_sign_in(browser, world, "adele")
    await browser.post("/me/location", data={"csrf": csrf, "location": "remote", "place": "home office"})
    location = (await visible(runtime, world, "adele")).work_location
    assert (location.work_location_type, location.place_id) == (WorkLocationType.REMOTE, "home office")
    await browser.post("/me/location/clear", data={"csrf": csrf})
    assert (await visible(runtime, world, "adele")).work_location.work_location_type is WorkLocationType.UNSPECIFIED


async def test_unknown_time_zone_is_refused(runtime: Runtime, world: World, browser: httpx.AsyncClient) -> None:
    csrf = await portal_sign_in(browser, world, "nestor")
    response = await browser.post("/me/timezone", data={"csrf": csrf, "time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "not a known time zone" in page_error(response)
    assert (await runtime.store.mailbox_settings(world.user_id("nestor"))).time_zone == "UTC"


async def test_open_page_keeps_a_portal_session(
    runtime: Runtime, world: World, browser: httpx.AsyncClient, clock: FixedClock
) -> None:
    """The page's heartbeat makes an offline person Available through the portal's session; leaving ends it."""
    csrf = await portal_sign_in(browser, world, "nestor")
    assert (await visible(runtime, world, "nestor")).availability is Availability.OFFLINE
    assert (await browser.post("/me/session", data={"csrf": csrf})).status_code == 204
    assert (await visible(runtime, world, "nestor")).availability is Availability.AVAILABLE
    facts, _ = await _facts(runtime, world, "nestor")
    assert [s.app_id for s in facts.sessions] == [PORTAL_APP_ID]
    assert (await browser.post("/me/session/end", data={"csrf": csrf})).status_code == 204
    clock.advance(LEAVE_GRACE)
    await runtime.sweeper.run_due()
    assert (await visible(runtime, world, "nestor")).availability is Availability.OFFLINE
    # Leaving again with no session left is harmless (two tabs closing).
    assert (await browser.post("/me/session/end", data={"csrf": csrf})).status_code == 204


async def test_reloading_the_page_never_shows_offline(
    runtime: Runtime, world: World, browser: httpx.AsyncClient, clock: FixedClock
) -> None:
    """Leaving and coming straight back (a reload, a form that returns to the page) keeps the session."""
    csrf = await portal_sign_in(browser, world, "nestor")
    await browser.post("/me/session", data={"csrf": csrf})
    before = (await _facts(runtime, world, "nestor"))[1].sequence
    await browser.post("/me/session/end", data={"csrf": csrf})
    clock.advance(timedelta(seconds=1))
    await browser.post("/me/session", data={"csrf": csrf})  # the reloaded page
    clock.advance(LEAVE_GRACE * 2)
    await runtime.sweeper.run_due()
    assert (await visible(runtime, world, "nestor")).availability is Availability.AVAILABLE
    # Nobody was told of any change in between.
    assert (await _facts(runtime, world, "nestor"))[1].sequence == before


async def test_idle_page_fades(runtime: Runtime, world: World, browser: httpx.AsyncClient, clock: FixedClock) -> None:
    """Without heartbeats the portal's session fades like any other: Inactive after 5 minutes, Away after 10."""
    csrf = await portal_sign_in(browser, world, "nestor")
    await browser.post("/me/session", data={"csrf": csrf})
    clock.advance(timedelta(minutes=6))
    await runtime.sweeper.run_due()
    assert (await visible(runtime, world, "nestor")).activity is Activity.AVAILABLE_INACTIVE
    clock.advance(timedelta(minutes=5))
    await runtime.sweeper.run_due()
    assert (await visible(runtime, world, "nestor")).availability is Availability.AWAY
    await browser.post("/me/session", data={"csrf": csrf})  # the person is back
    assert (await visible(runtime, world, "nestor")).availability is Availability.AVAILABLE


async def _facts(runtime: Runtime, world: World, nickname: str) -> tuple[PresenceFacts, PresenceState]:
    stored = await runtime.store.stored_presence(world.user_id(nickname))
    assert stored is not None
    return stored.facts, stored.state


async def test_signing_out_ends_the_portal_session(runtime: Runtime, world: World, browser: httpx.AsyncClient) -> None:
    """Sign out ends the page's presence session at once: the person shows Offline, not a fading Available."""
    csrf = await portal_sign_in(browser, world, "nestor")
    await browser.post("/me/session", data={"csrf": csrf})
    assert (await browser.post("/signout", data={"csrf": csrf})).status_code == 200
    assert (await visible(runtime, world, "nestor")).availability is Availability.OFFLINE


async def test_local_time_offset_is_right_on_a_clock_change_day(
    world: World, browser: httpx.AsyncClient, clock: FixedClock
) -> None:
    """At 05:30 UTC on 1 November 2026 New York is still on daylight time (UTC-4) for half an hour."""
    csrf = await portal_sign_in(browser, world, "nestor")
    await browser.post("/me/timezone", data={"csrf": csrf, "time_zone": "Eastern Standard Time"})
    clock.set(datetime(2026, 11, 1, 5, 30, tzinfo=UTC))
    page = await browser.get("/me")
    assert text_of(page, "local-time") == "01:30"
    assert 'data-offset-minutes="-240"' in page.text


async def test_scheduled_replies_show_both_ends_in_one_zone(
    runtime: Runtime, world: World, browser: httpx.AsyncClient
) -> None:
    """Replies set through the API with the end in another zone show both ends in the form's one zone, so
    saving the form unchanged keeps both instants."""
    csrf = await portal_sign_in(browser, world, "nestor")
    principal = portal_principal(await account(runtime, world.tenant_id, "nestor"))
    patch = RepliesPatch(
        status="scheduled",
        scheduled_start=LocalTime("2026-12-01T09:00:00", "UTC"),
        scheduled_end=LocalTime("2026-12-05T09:00:00", "Tokyo Standard Time"),
    )
    await runtime.mailbox.update(principal, None, None, patch)
    page = await browser.get("/me")
    assert 'id="replies-end" name="end" type="datetime-local" value="2026-12-05T00:00"' in page.text
    response = await browser.post(
        "/me/replies",
        data={
            "csrf": csrf,
            "replies": "scheduled",
            "start": "2026-12-01T09:00",
            "end": "2026-12-05T00:00",
            "time_zone": "UTC",
            "internal": "",
            "external": "",
        },
    )
    assert response.status_code == 303
    replies = (await runtime.store.mailbox_settings(world.user_id("nestor"))).automatic_replies
    assert replies.scheduled_end == datetime(2026, 12, 5, 0, 0, tzinfo=UTC)
