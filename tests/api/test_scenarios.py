"""What Microsoft documents about presence over time, walked through the HTTP API on the manual clock.

Every step checks what GET shows, that the sequence number rose exactly when the
visible presence changed, and the change-log entries (spec §A.6, §A.7, §A.8, §A.11).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from presenced.bootstrap import Runtime
from tests.api.scenario_support import (
    ANN,
    APP_A,
    APP_B,
    BEN,
    STORES,
    Env,
    Timeline,
    build_manual,
    env_on,
    later,
    store_url_of,
    wipe,
)
from tests.support import bearer

# The tests share one runtime per store (see ``shared``), so they run in the module's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

OUT_OF_OFFICE_OFF = {"message": None, "isOutOfOffice": False}
NO_LOCATION = {"workLocationType": "unspecified", "source": "none", "placeId": None}


@pytest.fixture(scope="module", params=STORES)
def store_url(request: pytest.FixtureRequest) -> str | None:
    return store_url_of(request)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(
    tmp_path_factory: pytest.TempPathFactory, key_folder: Path, store_url: str | None
) -> AsyncIterator[Runtime]:
    """One runtime per store for the module: building one per test would double the run time."""
    runtime = await build_manual(tmp_path_factory.mktemp("scenarios"), key_folder, store_url)
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest_asyncio.fixture(loop_scope="module")
async def env(shared: Runtime) -> AsyncIterator[Env]:
    """An empty store (the manual clock's row included), a fresh application, the clock set to START, seeded."""
    await wipe(shared)
    async with env_on(shared) as env:
        yield env


# --- a. fading ------------------------------------------------------------------------------------


async def test_an_available_session_fades_at_five_and_ten_minutes(env: Env) -> None:
    """An Available session shows Available/AvailableInactive 5 minutes after its refresh and Away/Away at 10."""
    line = await Timeline.of(env)
    await line.shows("Offline", "Offline")
    await env.set_presence("Available", "Available", "PT1H")
    await line.shows("Available", "Available", "setPresence")
    await env.advance("PT4M59S")
    await line.shows("Available", "Available")
    await env.advance("PT1S")
    (inactive,) = await line.logged("timer")  # stored by the clock move, before anyone reads
    assert (inactive.pair, inactive.at) == (("Available", "AvailableInactive"), later(5))
    await line.shows("Available", "AvailableInactive")
    await env.advance("PT4M59S")
    await line.shows("Available", "AvailableInactive")
    await env.advance("PT1S")
    (away,) = await line.logged("timer")
    assert (away.pair, away.at) == (("Away", "Away"), later(10))
    await line.shows("Away", "Away")


async def test_a_jump_over_both_fades_logs_each_at_its_own_instant(env: Env) -> None:
    """Moving the clock 11 minutes at once stores both fades, each at the instant it happened."""
    line = await Timeline.of(env)
    await env.set_presence("Available", "Available", "PT1H")
    await line.shows("Available", "Available", "setPresence")
    await env.advance("PT11M")
    inactive, away = await line.logged("timer", "timer")
    assert (inactive.pair, inactive.at) == (("Available", "AvailableInactive"), later(5))
    assert (away.pair, away.at) == (("Away", "Away"), later(10))
    await line.shows("Away", "Away")


@pytest.mark.parametrize(
    ("availability", "activity"),
    [("Busy", "InACall"), ("Busy", "InAConferenceCall"), ("Away", "Away"), ("DoNotDisturb", "Presenting")],
)
async def test_sessions_that_are_not_available_do_not_fade(env: Env, availability: str, activity: str) -> None:
    """Only Available sessions fade: other sessions show their pair until they expire."""
    line = await Timeline.of(env)
    await env.set_presence(availability, activity, "PT1H")
    await line.shows(availability, activity, "setPresence")
    await env.advance("PT30M")
    await line.shows(availability, activity)


# --- b. expiry ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("availability", "activity"), [("Busy", "InACall"), ("Available", "Available")])
async def test_a_session_expires_after_five_minutes_by_default(env: Env, availability: str, activity: str) -> None:
    """Without expirationDuration a session lasts PT5M, then the user is Offline/Offline."""
    line = await Timeline.of(env)
    await env.set_presence(availability, activity)
    await line.shows(availability, activity, "setPresence")
    await env.advance("PT4M59S")
    await line.shows(availability, activity)
    await env.advance("PT1S")
    (expiry,) = await line.logged("timer")
    assert expiry.at == later(5)
    await line.shows("Offline", "Offline")


async def test_a_four_hour_session_lasts_four_hours_and_not_a_minute_more(env: Env) -> None:
    """A PT4H session still shows at 3:59 and is gone at 4:00."""
    line = await Timeline.of(env)
    await env.set_presence("Busy", "InAConferenceCall", "PT4H")
    await line.shows("Busy", "InAConferenceCall", "setPresence")
    await env.set_clock(later(hours=4, minutes=-1))
    await line.shows("Busy", "InAConferenceCall")
    await env.advance("PT1M")
    (expiry,) = await line.logged("timer")
    assert expiry.at == later(hours=4)
    await line.shows("Offline", "Offline")


@pytest.mark.parametrize("duration", ["PT4H1M", "PT4M"])
async def test_a_session_duration_out_of_range_is_rejected_and_the_session_stays(env: Env, duration: str) -> None:
    """expirationDuration above PT4H or below PT5M is a 400 and leaves the existing session as it was."""
    line = await Timeline.of(env)
    await env.set_presence("Busy", "InACall", "PT1H")
    await line.shows("Busy", "InACall", "setPresence")
    body = {"sessionId": APP_A, "availability": "Available", "activity": "Available", "expirationDuration": duration}
    response = await env.act("setPresence", body)
    assert response.status_code == 400
    assert "expirationDuration" in response.json()["error"]["message"]
    await line.shows("Busy", "InACall")
    await env.set_clock(later(59))
    await line.shows("Busy", "InACall")
    await env.advance("PT1M")
    await line.shows("Offline", "Offline", "timer")


# --- c. clearPresence -----------------------------------------------------------------------------


async def test_clearing_the_only_session_shows_offline(env: Env) -> None:
    """clearPresence of the user's only session gives Offline/Offline at once."""
    line = await Timeline.of(env)
    await env.set_presence("Busy", "InACall", "PT1H")
    await line.shows("Busy", "InACall", "setPresence")
    await env.advance("PT1M")
    response = await env.act("clearPresence", {"sessionId": APP_A})
    assert (response.status_code, response.content) == (200, b"")
    (cleared,) = await line.logged("clearPresence")
    assert cleared.at == later(1)
    await line.shows("Offline", "Offline")


async def test_clearing_one_of_two_sessions_shows_the_other(env: Env) -> None:
    """clearPresence ends only the calling app's session; the other app's session shows."""
    line = await Timeline.of(env)
    await env.set_presence("Away", "Away", "PT1H", app_id=APP_A)
    await env.set_presence("Busy", "InACall", "PT1H", app_id=APP_B)
    await line.shows("Busy", "InACall", "setPresence", "setPresence")
    response = await env.act("clearPresence", {"sessionId": APP_B}, headers=env.app(app_id=APP_B))
    assert response.status_code == 200
    await line.shows("Away", "Away", "clearPresence")


@pytest.mark.parametrize("situation", ["no session", "another app's session", "an expired session"])
async def test_clearing_a_missing_session_is_404_and_changes_nothing(env: Env, situation: str) -> None:
    """clearPresence without a live session of the calling app is a 404 ResourceNotFound; nothing changes."""
    line = await Timeline.of(env)
    expected, causes = ("Offline", "Offline"), []
    if situation == "another app's session":
        await env.set_presence("Busy", "InACall", "PT1H", app_id=APP_B)
        expected, causes = ("Busy", "InACall"), ["setPresence"]
    elif situation == "an expired session":
        await env.set_presence("Busy", "InACall")
        await env.advance("PT5M")
        causes = ["setPresence", "timer"]
    await line.shows(*expected, *causes)
    before = await env.read_own()
    response = await env.act("clearPresence", {"sessionId": APP_A})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ResourceNotFound"
    await line.shows(*expected)
    assert await env.read_own() == before


# --- d. precedence across sessions ----------------------------------------------------------------

PRECEDENCE = [
    (("DoNotDisturb", "Presenting"), ("Busy", "InACall")),
    (("DoNotDisturb", "Presenting"), ("Available", "Available")),
    (("Busy", "InACall"), ("Available", "Available")),
    (("Busy", "InAConferenceCall"), ("Busy", "InACall")),
    (("Busy", "InACall"), ("Away", "Away")),
    (("Available", "Available"), ("Away", "Away")),
]


@pytest.mark.parametrize("stronger_first", [True, False], ids=["stronger first", "weaker first"])
@pytest.mark.parametrize(("stronger", "weaker"), PRECEDENCE, ids=[f"{s[1]} over {w[1]}" for s, w in PRECEDENCE])
async def test_the_strongest_session_wins_whatever_the_order(
    env: Env, stronger: tuple[str, str], weaker: tuple[str, str], stronger_first: bool
) -> None:
    """DoNotDisturb > Busy > Available > Away across two apps' sessions; a hidden write logs nothing."""
    line = await Timeline.of(env)
    if stronger_first:
        await env.set_presence(*stronger, "PT1H", app_id=APP_A)
        await line.shows(*stronger, "setPresence")
        await env.set_presence(*weaker, "PT1H", app_id=APP_B)
        await line.shows(*stronger)
    else:
        await env.set_presence(*weaker, "PT1H", app_id=APP_B)
        await line.shows(*weaker, "setPresence")
        await env.set_presence(*stronger, "PT1H", app_id=APP_A)
        await line.shows(*stronger, "setPresence")


async def test_two_apps_walk_through_the_precedence(env: Env) -> None:
    """Two apps' sessions for one user: the strongest shows as each changes and ends."""
    line = await Timeline.of(env)
    await env.set_presence("Available", "Available", "PT1H", app_id=APP_A)
    await line.shows("Available", "Available", "setPresence")
    await env.set_presence("Away", "Away", "PT1H", app_id=APP_B)
    await line.shows("Available", "Available")
    await env.set_presence("Busy", "InACall", "PT1H", app_id=APP_B)
    await line.shows("Busy", "InACall", "setPresence")
    await env.set_presence("DoNotDisturb", "Presenting", "PT1H", app_id=APP_A)
    await line.shows("DoNotDisturb", "Presenting", "setPresence")
    assert (await env.act("clearPresence", {"sessionId": APP_A})).status_code == 200
    await line.shows("Busy", "InACall", "clearPresence")
    assert (await env.act("clearPresence", {"sessionId": APP_B}, headers=env.app(app_id=APP_B))).status_code == 200
    await line.shows("Offline", "Offline", "clearPresence")


async def test_a_faded_session_loses_to_a_fresh_one(env: Env) -> None:
    """An Available session faded to Away/Away loses to another app's fresh Available session."""
    line = await Timeline.of(env)
    await env.set_presence("Available", "Available", "PT1H", app_id=APP_A)
    await env.advance("PT10M")
    await line.shows("Away", "Away", "setPresence", "timer", "timer")
    await env.set_presence("Available", "Available", "PT1H", app_id=APP_B)
    await line.shows("Available", "Available", "setPresence")


# --- e. preferred presence ------------------------------------------------------------------------


async def test_a_preferred_presence_shows_only_while_a_session_lives(env: Env) -> None:
    """The preferred presence wins over sessions, but without a live session the user is Offline."""
    line = await Timeline.of(env)
    response = await env.act("setUserPreferredPresence", {"availability": "DoNotDisturb", "activity": "DoNotDisturb"})
    assert (response.status_code, response.content) == (200, b"")
    await line.shows("Offline", "Offline")
    await env.set_presence("Available", "Available", "PT10M")
    await line.shows("DoNotDisturb", "DoNotDisturb", "setPresence")
    await env.advance("PT9M")  # the fades are hidden by the preferred presence: nothing to log
    await line.shows("DoNotDisturb", "DoNotDisturb")
    await env.advance("PT1M")
    (expiry,) = await line.logged("timer")
    assert expiry.at == later(10)
    await line.shows("Offline", "Offline")
    await env.set_presence("Busy", "InACall", "PT1H")
    await line.shows("DoNotDisturb", "DoNotDisturb", "setPresence")
    assert (await env.act("clearUserPreferredPresence")).status_code == 200
    await line.shows("Busy", "InACall", "clearUserPreferredPresence")


PREFERRED_DEFAULTS = [
    (("Busy", "Busy"), 1),
    (("DoNotDisturb", "DoNotDisturb"), 1),
    (("Available", "Available"), 7),
    (("BeRightBack", "BeRightBack"), 7),
    (("Away", "Away"), 7),
    (("Offline", "OffWork"), 7),
]


@pytest.mark.parametrize(("pair", "days"), PREFERRED_DEFAULTS, ids=[p[0][1] for p in PREFERRED_DEFAULTS])
async def test_a_preferred_presence_expires_after_its_default(env: Env, pair: tuple[str, str], days: int) -> None:
    """Without expirationDuration the preferred presence lasts 1 day (Busy, DoNotDisturb), else 7 days."""
    line = await Timeline.of(env)
    await env.set_presence("Busy", "InAConferenceCall", "PT4H")
    await line.shows("Busy", "InAConferenceCall", "setPresence")
    assert (
        await env.act("setUserPreferredPresence", {"availability": pair[0], "activity": pair[1]})
    ).status_code == 200
    await line.shows(*pair, "setUserPreferredPresence")
    await env.set_clock(later(days=days, minutes=-1))
    await line.shows("Offline", "Offline", "timer")  # the session ended after 4 hours
    await env.set_presence("Busy", "InAConferenceCall", "PT4H")
    await line.shows(*pair, "setPresence")
    await env.advance("PT1M")
    (expiry,) = await line.logged("timer")
    assert expiry.at == later(days=days)
    await line.shows("Busy", "InAConferenceCall")


async def test_a_preferred_presence_with_a_duration_expires_then(env: Env) -> None:
    """An expirationDuration of PT8H makes the preferred presence end after 8 hours, not the default day."""
    line = await Timeline.of(env)
    await env.set_presence("Away", "Away", "PT4H")
    body = {"availability": "Busy", "activity": "Busy", "expirationDuration": "PT8H"}
    assert (await env.act("setUserPreferredPresence", body)).status_code == 200
    await line.shows("Busy", "Busy", "setPresence", "setUserPreferredPresence")
    await env.set_clock(later(hours=7, minutes=59))
    await env.set_presence("Away", "Away", "PT4H")
    await line.shows("Busy", "Busy", "timer", "setPresence")
    await env.advance("PT1M")
    await line.shows("Away", "Away", "timer")


# --- f. appear offline ----------------------------------------------------------------------------


async def test_appear_offline_hides_a_live_session(env: Env) -> None:
    """Preferred Offline/OffWork shows over a live session, hides later session changes, and clears back."""
    line = await Timeline.of(env)
    await env.set_presence("Available", "Available", "PT1H")
    await line.shows("Available", "Available", "setPresence")
    assert (
        await env.act("setUserPreferredPresence", {"availability": "Offline", "activity": "OffWork"})
    ).status_code == 200
    await line.shows("Offline", "OffWork", "setUserPreferredPresence")
    await env.set_presence("DoNotDisturb", "Presenting", "PT1H", app_id=APP_B)
    await line.shows("Offline", "OffWork")
    assert (await env.act("clearUserPreferredPresence", {})).status_code == 200
    await line.shows("DoNotDisturb", "Presenting", "clearUserPreferredPresence")


# --- g. status message ----------------------------------------------------------------------------


async def test_a_status_message_expires_at_its_time_in_its_zone(env: Env) -> None:
    """A status message with an expiry in Pacific time shows until then; its times only to the user."""
    line = await Timeline.of(env)
    await env.set_presence("Busy", "InACall", "PT4H")
    await line.shows("Busy", "InACall", "setPresence")
    message = {"content": "In a workshop", "contentType": "text"}
    expiry = {"dateTime": "2030-01-07T03:00:00", "timeZone": "Pacific Standard Time"}  # 11:00 UTC
    response = await env.act("setStatusMessage", {"statusMessage": {"message": message, "expiryDateTime": expiry}})
    assert (response.status_code, response.content) == (200, b"")
    body = await line.shows("Busy", "InACall", "setStatusMessage")
    assert body["statusMessage"] == {"message": message}
    own = await env.read_own()
    assert own["sequenceNumber"] == body["sequenceNumber"]
    assert own["statusMessage"] == {
        "message": message,
        "expiryDateTime": {"dateTime": "2030-01-07T03:00:00.0000000", "timeZone": "Pacific Standard Time"},
        "publishedDateTime": "2030-01-07T09:00:00.0000000Z",
    }
    colleague = await env.read(ANN, headers=env.me(BEN, "Presence.Read.All"))
    assert colleague["statusMessage"] == {"message": message}
    await env.set_clock(later(hours=2, seconds=-1))
    await line.shows("Busy", "InACall")
    await env.advance("PT1S")
    (expired,) = await line.logged("timer")
    assert expired.at == later(hours=2)
    body = await line.shows("Busy", "InACall")
    assert body["statusMessage"] is None
    assert (await env.read_own())["statusMessage"] is None


async def test_empty_content_clears_the_status_message(env: Env) -> None:
    """setStatusMessage with empty content clears the message; clearing again changes nothing."""
    line = await Timeline.of(env)
    response = await env.act("setStatusMessage", {"statusMessage": {"message": {"content": "Lunch"}}})
    assert response.status_code == 200
    await line.shows("Offline", "Offline", "setStatusMessage")
    own = await env.read_own()
    assert own["statusMessage"] == {
        "message": {"content": "Lunch", "contentType": "text"},
        "publishedDateTime": "2030-01-07T09:00:00.0000000Z",
    }
    await env.advance("PT1M")
    empty = {"statusMessage": {"message": {"content": "", "contentType": "text"}}}
    assert (await env.act("setStatusMessage", empty)).status_code == 200
    body = await line.shows("Offline", "Offline", "setStatusMessage")
    assert body["statusMessage"] is None
    assert (await env.act("setStatusMessage", empty)).status_code == 200
    await line.shows("Offline", "Offline")


# --- h. out of office -----------------------------------------------------------------------------


async def test_a_scheduled_out_of_office_window_opens_and_closes(env: Env) -> None:
    """A scheduled automatic-replies window turns out of office on and off as the clock passes its ends."""
    line = await Timeline.of(env)
    await env.set_presence("Available", "Available", "PT1H")
    await line.shows("Available", "Available", "setPresence")
    window = {
        "status": "scheduled",
        "internalReplyMessage": "Back at 10:04",
        "scheduledStartDateTime": {"dateTime": "2030-01-07T10:02:00", "timeZone": "Europe/Berlin"},
        "scheduledEndDateTime": {"dateTime": "2030-01-07T10:04:00", "timeZone": "Europe/Berlin"},
    }
    response = await env.patch_mailbox({"automaticRepliesSetting": window})
    assert response.status_code == 200, response.text
    replies = response.json()["automaticRepliesSetting"]
    assert replies["status"] == "scheduled"
    assert replies["scheduledStartDateTime"] == {"dateTime": "2030-01-07T10:02:00.0000000", "timeZone": "Europe/Berlin"}
    assert replies["scheduledEndDateTime"] == {"dateTime": "2030-01-07T10:04:00.0000000", "timeZone": "Europe/Berlin"}
    body = await line.shows("Available", "Available")
    assert body["outOfOfficeSettings"] == OUT_OF_OFFICE_OFF
    await env.advance("PT2M")
    (opened,) = await line.logged("timer")
    assert opened.at == later(2)
    body = await line.shows("Available", "OutOfOffice")
    assert body["outOfOfficeSettings"] == {"message": "Back at 10:04", "isOutOfOffice": True}
    await env.advance("PT2M")
    (closed,) = await line.logged("timer")
    assert closed.at == later(4)
    body = await line.shows("Available", "Available")
    assert body["outOfOfficeSettings"] == OUT_OF_OFFICE_OFF
    await env.advance("PT1M")
    await line.shows("Available", "AvailableInactive", "timer")


OUT_OF_OFFICE_ACTIVITY = [
    (("Available", "Available"), "OutOfOffice"),
    (("Away", "Away"), "OutOfOffice"),
    (None, "OutOfOffice"),
    (("Busy", "InACall"), "InACall"),
    (("Busy", "InAConferenceCall"), "InAConferenceCall"),
    (("DoNotDisturb", "Presenting"), "Presenting"),
]


@pytest.mark.parametrize(
    ("session", "shown"),
    OUT_OF_OFFICE_ACTIVITY,
    ids=["Available", "Away", "no session", "InACall", "InAConferenceCall", "Presenting"],
)
async def test_always_enabled_replies_show_out_of_office_until_disabled(
    env: Env, session: tuple[str, str] | None, shown: str
) -> None:
    """alwaysEnabled turns out of office on at once (OutOfOffice over Available, Away, Offline); disabled, off."""
    line = await Timeline.of(env)
    pair = session or ("Offline", "Offline")
    if session is not None:
        await env.set_presence(*session, "PT1H")
        await line.shows(*pair, "setPresence")
    replies = {"status": "alwaysEnabled", "internalReplyMessage": "On leave"}
    assert (await env.patch_mailbox({"automaticRepliesSetting": replies})).status_code == 200
    body = await line.shows(pair[0], shown, "mailboxSettings")
    assert body["outOfOfficeSettings"] == {"message": "On leave", "isOutOfOffice": True}
    assert (await env.patch_mailbox({"automaticRepliesSetting": {"status": "disabled"}})).status_code == 200
    body = await line.shows(*pair, "mailboxSettings")
    assert body["outOfOfficeSettings"] == OUT_OF_OFFICE_OFF


async def test_the_reply_message_is_a_change_only_while_out_of_office(env: Env) -> None:
    """Changing the internal reply message changes the presence while out of office is on, not while it is off."""
    line = await Timeline.of(env)
    patch = {"automaticRepliesSetting": {"status": "alwaysEnabled", "internalReplyMessage": "Away today"}}
    assert (await env.patch_mailbox(patch)).status_code == 200
    await line.shows("Offline", "OutOfOffice", "mailboxSettings")
    patch = {"automaticRepliesSetting": {"internalReplyMessage": "Away all week"}}
    assert (await env.patch_mailbox(patch)).status_code == 200
    body = await line.shows("Offline", "OutOfOffice", "mailboxSettings")
    assert body["outOfOfficeSettings"] == {"message": "Away all week", "isOutOfOffice": True}
    assert (await env.patch_mailbox({"automaticRepliesSetting": {"status": "disabled"}})).status_code == 200
    await line.shows("Offline", "Offline", "mailboxSettings")
    patch = {"automaticRepliesSetting": {"internalReplyMessage": "Back"}, "timeZone": "Pacific Standard Time"}
    assert (await env.patch_mailbox(patch)).status_code == 200
    await line.shows("Offline", "Offline")


# --- i. work location -----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/v1.0/me/presence", f"/beta/users/{ANN}/presence"])
async def test_manual_location_wins_over_automatic_until_cleared(env: Env, prefix: str) -> None:
    """Manual over automatic; clearAutomaticLocation keeps the manual one; clearLocation removes both; all 204."""
    line = await Timeline.of(env)
    me = env.me(ANN, "Presence.ReadWrite")

    async def act(action: str, body: object = None) -> None:
        response = await env.act(action, body, headers=me, path=prefix)
        assert (response.status_code, response.content) == (204, b""), response.text

    await act("setAutomaticLocation", {"workLocationType": "remote"})
    body = await line.shows("Offline", "Offline", "setAutomaticLocation")
    assert body["workLocation"] == {"workLocationType": "remote", "source": "automatic", "placeId": None}
    await act("setManualLocation", {"workLocationType": "office", "placeId": "building-7"})
    body = await line.shows("Offline", "Offline", "setManualLocation")
    manual = {"workLocationType": "office", "source": "manual", "placeId": "building-7"}
    assert body["workLocation"] == manual
    await act("setAutomaticLocation", {"workLocationType": "timeOff"})
    assert (await line.shows("Offline", "Offline"))["workLocation"] == manual
    await act("clearAutomaticLocation")
    assert (await line.shows("Offline", "Offline"))["workLocation"] == manual
    await act("setAutomaticLocation", {"workLocationType": "remote", "placeId": "home"})
    assert (await line.shows("Offline", "Offline"))["workLocation"] == manual
    await act("clearLocation")
    assert (await line.shows("Offline", "Offline", "clearLocation"))["workLocation"] == NO_LOCATION
    await act("clearLocation")
    await line.shows("Offline", "Offline")


async def test_clear_automatic_location_shows_no_location_when_there_is_no_manual_one(env: Env) -> None:
    """clearAutomaticLocation of the only location leaves unspecified/none."""
    line = await Timeline.of(env)
    me = env.me(ANN, "Presence.ReadWrite")
    response = await env.act(
        "setAutomaticLocation", {"workLocationType": "office"}, headers=me, path="/v1.0/me/presence"
    )
    assert response.status_code == 204
    await line.shows("Offline", "Offline", "setAutomaticLocation")
    response = await env.act("clearAutomaticLocation", headers=me, path="/v1.0/me/presence")
    assert response.status_code == 204
    assert (await line.shows("Offline", "Offline", "clearAutomaticLocation"))["workLocation"] == NO_LOCATION


# --- j. writes that change nothing visible --------------------------------------------------------


async def test_a_refresh_that_changes_nothing_is_not_logged_but_delays_the_fade(env: Env) -> None:
    """Refreshing the same session at 4 minutes logs nothing, keeps the sequence number and moves the fade to 9."""
    line = await Timeline.of(env)
    await env.set_presence("Available", "Available", "PT1H")
    await line.shows("Available", "Available", "setPresence")
    await env.advance("PT4M")
    await env.set_presence("Available", "Available", "PT1H")
    await line.shows("Available", "Available")
    await env.advance("PT4M")
    await line.shows("Available", "Available")
    await env.advance("PT1M")
    (inactive,) = await line.logged("timer")
    assert inactive.at == later(9)
    await line.shows("Available", "AvailableInactive")
    await env.advance("PT5M")
    (away,) = await line.logged("timer")
    assert away.at == later(14)
    await line.shows("Away", "Away")


async def test_a_refresh_after_the_fade_is_logged(env: Env) -> None:
    """Refreshing a faded session brings it back to Available/Available, which is a change."""
    line = await Timeline.of(env)
    await env.set_presence("Available", "Available", "PT1H")
    await env.advance("PT6M")
    await line.shows("Available", "AvailableInactive", "setPresence", "timer")
    await env.set_presence("Available", "Available", "PT1H")
    await line.shows("Available", "Available", "setPresence")


async def test_reads_do_not_change_the_sequence_number_or_the_log(env: Env) -> None:
    """Reading the presence over and over, on every path, neither logs nor moves the sequence number."""
    line = await Timeline.of(env)
    await env.set_presence("Busy", "InACall", "PT1H")
    first = await line.shows("Busy", "InACall", "setPresence")
    for path in (f"/v1.0/users/{ANN}/presence", f"/beta/communications/presences/{ANN}", f"/v1.0/users/{ANN}/presence"):
        response = await env.client.get(path, headers=env.reader)
        assert response.json()["sequenceNumber"] == first["sequenceNumber"]
    await line.shows("Busy", "InACall")


async def test_the_clock_reads_back_and_only_moves_forward(env: Env) -> None:
    """GET /_emulator/clock reads the clock (no token needed); setting it back is a 400 that leaves it as it was."""
    assert await env.now() == later(0)
    assert await env.advance("PT90M") == later(90)
    response = await env.move_clock({"set": "2030-01-07T09:30:00Z"})
    assert response.status_code == 400
    assert await env.now() == later(90)
    assert (await env.client.get("/_emulator/clock", headers=bearer("x"))).json() == {
        "now": "2030-01-07T10:30:00.0000000Z"
    }


async def test_an_advance_past_the_end_of_the_calendar_is_a_bad_request(env: Env) -> None:
    """Advancing the clock beyond what it can hold is a 400 naming 'advance', and the clock stays."""
    response = await env.move_clock({"advance": "P999999W"})
    assert response.status_code == 400, response.text
    assert "advance" in response.json()["error"]["message"]
    assert await env.now() == later(0)


async def test_the_clock_stops_where_every_expiry_can_still_be_written(env: Env) -> None:
    """The clock refuses to go past 9000-01-01, and at that instant the longest expiries are still written."""
    moved = await env.move_clock({"set": "9999-12-31T23:00:00Z"})
    assert moved.status_code == 400
    assert "set" in moved.json()["error"]["message"]
    assert (await env.move_clock({"set": "9000-01-01T00:00:00Z"})).status_code == 200
    body = {"sessionId": APP_A, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT4H"}
    assert (await env.act("setPresence", body)).status_code == 200
    preferred = {"availability": "Busy", "activity": "Busy", "expirationDuration": "P30D"}
    assert (await env.act("setUserPreferredPresence", preferred)).status_code == 200
