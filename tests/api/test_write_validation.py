"""Validation and permissions of the write actions and the mailbox PATCH (spec §A.3, §A.4, §A.5, §A.7).

Every rejected request is shown to change nothing: both views of the presence
(sequence number included), the mailbox settings and the change log are the same
before and after.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from presenced.bootstrap import Runtime
from tests.api.scenario_support import (
    ANN,
    APP_A,
    APP_B,
    BEN,
    START,
    STORES,
    ZOE,
    Env,
    Rows,
    build_manual,
    client_env,
    env_on,
    restore_rows,
    save_rows,
    store_url_of,
)
from tests.support import bearer

# The tests share one runtime per store (see ``baseline``), so they run in the module's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

ACTIONS = [
    ("setPresence", {"sessionId": APP_A, "availability": "Busy", "activity": "InACall"}),
    ("clearPresence", {"sessionId": APP_A}),
    ("setUserPreferredPresence", {"availability": "Busy", "activity": "Busy"}),
    ("clearUserPreferredPresence", {}),
    ("setStatusMessage", {"statusMessage": {"message": {"content": "Hello", "contentType": "text"}}}),
]
LOCATION_ACTIONS = [
    ("setAutomaticLocation", {"workLocationType": "remote"}),
    ("setManualLocation", {"workLocationType": "remote"}),
    ("clearAutomaticLocation", None),
    ("clearLocation", None),
]


@pytest.fixture(scope="module", params=STORES)
def store_url(request: pytest.FixtureRequest) -> str | None:
    return store_url_of(request)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def baseline(
    tmp_path_factory: pytest.TempPathFactory, key_folder: Path, store_url: str | None
) -> AsyncIterator[tuple[Runtime, Rows]]:
    """One runtime per store for the module, and the rows of the starting state every test begins from.

    Ann has a session under a preferred presence, a status message, a manual location and an OOF
    window. Seeding it through the API for each of the ~200 tests would double the run time, so it
    is seeded once and the tables are put back before each test.
    """
    runtime = await build_manual(tmp_path_factory.mktemp("validation"), key_folder, store_url)
    try:
        async with env_on(runtime) as env:
            await env.set_presence("Available", "Available", "PT1H")
            preferred = {"availability": "BeRightBack", "activity": "BeRightBack", "expirationDuration": "PT2H"}
            expiry = {"dateTime": "2030-01-07T12:00:00", "timeZone": "W. Europe Standard Time"}
            status = {"statusMessage": {"message": {"content": "Focus time"}, "expiryDateTime": expiry}}
            for action, body in (("setUserPreferredPresence", preferred), ("setStatusMessage", status)):
                assert (await env.act(action, body)).status_code == 200
            location = {"workLocationType": "office", "placeId": "building-1"}
            response = await env.act("setManualLocation", location, headers=env.me(), path="/v1.0/me/presence")
            assert response.status_code == 204
            replies = {
                "status": "scheduled",
                "internalReplyMessage": "Away next week",
                "scheduledStartDateTime": {"dateTime": "2030-01-14T08:00:00", "timeZone": "Europe/Berlin"},
                "scheduledEndDateTime": {"dateTime": "2030-01-18T18:00:00", "timeZone": "Europe/Berlin"},
            }
            response = await env.patch_mailbox({"timeZone": "Europe/Berlin", "automaticRepliesSetting": replies})
            assert response.status_code == 200, response.text
        yield runtime, await save_rows(runtime)
    finally:
        await runtime.close()


@pytest_asyncio.fixture(loop_scope="module")
async def env(baseline: tuple[Runtime, Rows]) -> AsyncIterator[Env]:
    """The starting state, restored; the clock is back at START."""
    runtime, rows = baseline
    await restore_rows(runtime, rows)
    async with client_env(runtime) as env:
        assert await env.now() == START
        yield env


@asynccontextmanager
async def nothing_changes(env: Env, user_id: str = ANN) -> AsyncIterator[None]:
    """Both views of the presence, the mailbox settings and the change log are the same afterwards."""
    before = await env.snapshot(user_id)
    yield
    assert await env.snapshot(user_id) == before


def error_of(response: httpx.Response, status: int, code: str, *named: str) -> str:
    """The error message of a Graph error answer with ``status`` and ``code``; it must contain ``named``."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "innerError"}
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert error["code"] == code
    message: str = error["message"]
    for text in named:
        assert text in message, message
    return message


async def shows(env: Env, user_id: str, availability: str, activity: str) -> dict[str, Any]:
    body = await env.read(user_id)
    assert (body["availability"], body["activity"]) == (availability, activity)
    return body


def presence_body(availability: str = "Busy", activity: str = "InACall", **extra: object) -> dict[str, object]:
    return {"sessionId": APP_A, "availability": availability, "activity": activity, **extra}


# --- setPresence: sessionId -----------------------------------------------------------------------

SESSION_IDS = [
    (None, "sessionId"),
    ("", "sessionId"),
    ("not-a-guid", "sessionId"),
    ("11111111-2222-3333-4444-55555555555", "sessionId"),
    (APP_B, APP_A),
]


@pytest.mark.parametrize("action", ["setPresence", "clearPresence"])
@pytest.mark.parametrize(
    ("session_id", "named"), SESSION_IDS, ids=["missing", "empty", "not a guid", "short guid", "another app's id"]
)
async def test_a_session_id_that_is_not_the_callers_app_id_is_rejected(
    env: Env, action: str, session_id: str | None, named: str
) -> None:
    """sessionId is required, a GUID, and the calling app's id (the message then names it); else 400."""
    body: dict[str, object] = presence_body() if action == "setPresence" else {}
    body.pop("sessionId", None)
    if session_id is not None:
        body["sessionId"] = session_id
    async with nothing_changes(env):
        response = await env.act(action, body)
    error_of(response, 400, "BadRequest", named)


async def test_the_session_id_is_matched_as_a_guid_in_any_case(env: Env) -> None:
    """The calling app's id in upper case is the same session id."""
    response = await env.act("setPresence", presence_body(sessionId=APP_A.upper()), user_id=BEN)
    assert response.status_code == 200
    await shows(env, BEN, "Busy", "InACall")
    assert (await env.act("clearPresence", {"sessionId": APP_A.upper()}, user_id=BEN)).status_code == 200
    await shows(env, BEN, "Offline", "Offline")


async def test_a_delegated_caller_uses_its_own_app_id_as_session_id(env: Env) -> None:
    """With a delegated token the session id is the token's app id too: another app's id is a 400."""
    me = env.me(ANN, "Presence.ReadWrite", app_id=APP_B)
    async with nothing_changes(env):
        response = await env.act("setPresence", presence_body(), headers=me, path="/v1.0/me/presence")
    error_of(response, 400, "BadRequest", "sessionId", APP_B)
    response = await env.act("setPresence", presence_body(sessionId=APP_B), headers=me, path="/v1.0/me/presence")
    assert response.status_code == 200
    await shows(env, ANN, "BeRightBack", "BeRightBack")
    assert [e.cause for e in await env.log()][-1] == "setManualLocation"


# --- setPresence: availability and activity -------------------------------------------------------

SESSION_PAIRS = [
    ("Available", "Available"),
    ("Busy", "InACall"),
    ("Busy", "InAConferenceCall"),
    ("Away", "Away"),
    ("DoNotDisturb", "Presenting"),
]
UNSUPPORTED_SESSION_PAIRS = [
    ("Busy", "Busy"),
    ("Available", "Away"),
    ("DoNotDisturb", "DoNotDisturb"),
    ("Busy", "InAMeeting"),
    ("Available", "OutOfOffice"),
    ("Offline", "Offline"),
    ("BeRightBack", "BeRightBack"),
]


@pytest.mark.parametrize(("availability", "activity"), UNSUPPORTED_SESSION_PAIRS)
async def test_an_unsupported_session_pair_is_rejected_listing_the_allowed_pairs(
    env: Env, availability: str, activity: str
) -> None:
    """setPresence takes only the five documented pairs; the 400 lists them."""
    async with nothing_changes(env):
        response = await env.act("setPresence", presence_body(availability, activity))
    message = error_of(response, 400, "BadRequest", availability, activity)
    for pair in SESSION_PAIRS:
        assert "/".join(pair) in message


@pytest.mark.parametrize(
    ("availability", "activity", "named"),
    [
        ("Sleeping", "Available", "availability"),
        ("Available", "Napping", "activity"),
        (None, "Available", "availability"),
        ("Available", None, "activity"),
        ("Available ", "Available", "availability"),
    ],
    ids=["unknown availability", "unknown activity", "no availability", "no activity", "trailing space"],
)
async def test_an_unknown_or_missing_enum_value_is_rejected(
    env: Env, availability: str | None, activity: str | None, named: str
) -> None:
    """An availability or activity that is missing or not a known value is a 400 naming the field."""
    body = {k: v for k, v in presence_body(availability, activity).items() if v is not None}  # type: ignore[arg-type]
    async with nothing_changes(env):
        response = await env.act("setPresence", body)
    error_of(response, 400, "BadRequest", named)


@pytest.mark.parametrize(
    ("availability", "activity", "shown"),
    [
        ("available", "available", ("Available", "Available")),
        ("BUSY", "inaconferencecall", ("Busy", "InAConferenceCall")),
        ("doNotDisturb", "PRESENTING", ("DoNotDisturb", "Presenting")),
    ],
)
async def test_enum_values_are_accepted_in_any_case_and_shown_in_pascal_case(
    env: Env, availability: str, activity: str, shown: tuple[str, str]
) -> None:
    """availability and activity are matched case-insensitively and normalised."""
    response = await env.act("setPresence", presence_body(availability, activity), user_id=BEN)
    assert (response.status_code, response.content) == (200, b"")
    await shows(env, BEN, *shown)
    assert [e.pair for e in await env.log(BEN)] == [shown]


# --- setPresence: expirationDuration --------------------------------------------------------------


@pytest.mark.parametrize(
    "duration", ["PT1H", "1:00:00", "01:00:00", "0.01:00:00", "PT60M", "pt1h"], ids=lambda d: d or "empty"
)
async def test_a_session_duration_is_accepted_in_the_sdks_forms(env: Env, duration: str) -> None:
    """ISO 8601, the Python SDK's str(timedelta) and the .NET SDK's TimeSpan all mean one hour."""
    response = await env.act("setPresence", presence_body(expirationDuration=duration), user_id=BEN)
    assert response.status_code == 200, response.text
    await env.advance("PT59M")
    await shows(env, BEN, "Busy", "InACall")
    await env.advance("PT1M")
    await shows(env, BEN, "Offline", "Offline")


@pytest.mark.parametrize("duration", ["PT5M", "0:05:00", "00:05:00", "PT4H", "4:00:00", "0.04:00:00"])
async def test_the_session_duration_bounds_are_inclusive(env: Env, duration: str) -> None:
    """PT5M and PT4H, in any accepted form, are within the allowed range."""
    response = await env.act("setPresence", presence_body(expirationDuration=duration), user_id=BEN)
    assert response.status_code == 200, response.text
    await shows(env, BEN, "Busy", "InACall")


@pytest.mark.parametrize(
    "duration", ["1h", "PT10H", "PT1M", "-PT5M", "PT4H0M1S", "PT4M59S", "P1D", "", "PT", "five minutes", "0:04:59"]
)
async def test_a_session_duration_out_of_range_or_malformed_is_rejected(env: Env, duration: str) -> None:
    """Anything but a duration from PT5M to PT4H is a 400 naming expirationDuration."""
    async with nothing_changes(env):
        response = await env.act("setPresence", presence_body(expirationDuration=duration))
    error_of(response, 400, "BadRequest", "expirationDuration")


# --- setUserPreferredPresence ---------------------------------------------------------------------

PREFERRED_PAIRS = [
    ("Available", "Available"),
    ("Busy", "Busy"),
    ("DoNotDisturb", "DoNotDisturb"),
    ("BeRightBack", "BeRightBack"),
    ("Away", "Away"),
    ("Offline", "OffWork"),
]


@pytest.mark.parametrize(("availability", "activity"), PREFERRED_PAIRS)
async def test_the_six_preferred_pairs_are_accepted(env: Env, availability: str, activity: str) -> None:
    """setUserPreferredPresence takes each of the six documented pairs."""
    await env.set_presence("Busy", "InAConferenceCall", "PT1H", user_id=BEN)
    body = {"availability": availability.lower(), "activity": activity.upper()}
    response = await env.act("setUserPreferredPresence", body, user_id=BEN)
    assert (response.status_code, response.content) == (200, b"")
    await shows(env, BEN, availability, activity)


@pytest.mark.parametrize(
    ("availability", "activity"),
    [("Busy", "InACall"), ("DoNotDisturb", "Presenting"), ("Offline", "Offline"), ("Available", "AvailableInactive")],
)
async def test_an_unsupported_preferred_pair_is_rejected_listing_the_allowed_pairs(
    env: Env, availability: str, activity: str
) -> None:
    """Pairs outside the six documented ones are a 400 that lists the allowed pairs."""
    async with nothing_changes(env):
        response = await env.act("setUserPreferredPresence", {"availability": availability, "activity": activity})
    message = error_of(response, 400, "BadRequest", "setUserPreferredPresence")
    for pair in PREFERRED_PAIRS:
        assert "/".join(pair) in message


@pytest.mark.parametrize(
    ("duration", "length"),
    [
        ("PT1M", timedelta(minutes=1)),
        ("P30D", timedelta(days=30)),
        ("1 day, 0:00:00", timedelta(days=1)),
        ("2.00:00:00", timedelta(days=2)),
    ],
)
async def test_a_preferred_duration_is_accepted_up_to_thirty_days(env: Env, duration: str, length: timedelta) -> None:
    """expirationDuration above zero and at most P30D sets when the preferred presence ends."""
    body = {"availability": "Away", "activity": "Away", "expirationDuration": duration}
    assert (await env.act("setUserPreferredPresence", body, user_id=BEN)).status_code == 200
    start = await env.now()
    await env.set_clock(start + length - timedelta(seconds=1))
    await env.set_presence("Busy", "InACall", "PT1H", user_id=BEN)
    await shows(env, BEN, "Away", "Away")
    await env.advance("PT1S")
    await shows(env, BEN, "Busy", "InACall")


@pytest.mark.parametrize("duration", ["PT0S", "P30DT1S", "P31D", "-P1D", "soon", "0:00:00"])
async def test_a_preferred_duration_of_zero_or_beyond_thirty_days_is_rejected(env: Env, duration: str) -> None:
    """expirationDuration of zero, over P30D or malformed is a 400 naming it."""
    body = {"availability": "Away", "activity": "Away", "expirationDuration": duration}
    async with nothing_changes(env):
        response = await env.act("setUserPreferredPresence", body)
    error_of(response, 400, "BadRequest", "expirationDuration")


@pytest.mark.parametrize("body", [None, {}], ids=["no body", "empty object"])
async def test_clearing_the_preferred_presence_takes_no_body_or_an_empty_object(env: Env, body: object) -> None:
    """clearUserPreferredPresence answers 200 with or without {}, and again when nothing is set."""
    response = await env.act("clearUserPreferredPresence", body)
    assert (response.status_code, response.content) == (200, b"")
    await shows(env, ANN, "Available", "Available")
    assert [e.cause for e in await env.log()][-1] == "clearUserPreferredPresence"
    async with nothing_changes(env):
        response = await env.act("clearUserPreferredPresence", body)
    assert (response.status_code, response.content) == (200, b"")


async def test_clearing_a_preferred_presence_never_set_is_200(env: Env) -> None:
    """clearUserPreferredPresence for a user who never set one is a 200 that logs nothing."""
    assert (await env.act("clearUserPreferredPresence", user_id=BEN)).status_code == 200
    assert await env.log(BEN) == []


# --- setStatusMessage -----------------------------------------------------------------------------


def status_body(content: str = "Hi", content_type: str | None = "text", **expiry: str) -> dict[str, object]:
    message: dict[str, object] = {"content": content}
    if content_type is not None:
        message["contentType"] = content_type
    status: dict[str, object] = {"message": message}
    if expiry:
        status["expiryDateTime"] = expiry
    return {"statusMessage": status}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (status_body(content_type="html"), "contentType"),
        (status_body(content_type="HTML"), "contentType"),
        (status_body("x" * 281), "280"),
        (status_body(dateTime="2030-01-07T12:00:00Z", timeZone="UTC"), "offset"),
        (status_body(dateTime="2030-01-07T12:00:00+01:00", timeZone="Europe/Paris"), "offset"),
        (status_body(dateTime="2030-01-07T12:00:00-0800", timeZone="Pacific Standard Time"), "offset"),
        (status_body(dateTime="2030-01-07T12:00:00", timeZone="Mars Standard Time"), "timeZone"),
        (status_body(dateTime="2030-01-07T12:00:00", timeZone="Europe/Atlantis"), "timeZone"),
        (status_body(dateTime="2030-01-07T08:59:00", timeZone="UTC"), "past"),
        (status_body(dateTime="2030-01-07T01:00:00", timeZone="Pacific Standard Time"), "past"),
        (status_body(dateTime="tomorrow", timeZone="UTC"), "dateTime"),
        (status_body(timeZone="UTC"), "dateTime"),
        ({}, "statusMessage"),
    ],
    ids=[
        "html",
        "HTML",
        "281 characters",
        "Z",
        "+01:00",
        "-0800",
        "unknown windows zone",
        "unknown iana zone",
        "past",
        "now in Pacific time",
        "not a date",
        "no dateTime",
        "no statusMessage",
    ],
)
async def test_an_invalid_status_message_is_rejected(env: Env, body: dict[str, object], named: str) -> None:
    """contentType other than text, over 280 characters, a bad or past expiry: 400 naming the problem."""
    async with nothing_changes(env):
        response = await env.act("setStatusMessage", body)
    error_of(response, 400, "BadRequest", named)


@pytest.mark.parametrize(
    ("body", "content"),
    [
        (status_body("y" * 280), "y" * 280),
        (status_body("Hi", "TEXT"), "Hi"),
        (status_body("Hi", None), "Hi"),
        (status_body("Hi", dateTime="2030-01-07T01:02:00", timeZone="pacific standard time"), "Hi"),
        (status_body("Hi", dateTime="2030-01-07T10:01:00.1234567", timeZone="Europe/Berlin"), "Hi"),
    ],
    ids=["280 characters", "TEXT", "no contentType", "zone in lower case", "seven fraction digits"],
)
async def test_a_valid_status_message_is_accepted(env: Env, body: dict[str, object], content: str) -> None:
    """280 characters, contentType text in any case (or none) and a future expiry are accepted."""
    response = await env.act("setStatusMessage", body, user_id=BEN)
    assert (response.status_code, response.content) == (200, b"")
    status = (await env.read(BEN))["statusMessage"]
    assert status == {"message": {"content": content, "contentType": "text"}}


async def test_a_client_published_time_is_ignored(env: Env) -> None:
    """publishedDateTime is set by the server, whatever the client sends."""
    body = {"statusMessage": {"message": {"content": "Hi"}, "publishedDateTime": "2001-01-01T00:00:00Z"}}
    assert (await env.act("setStatusMessage", body, user_id=BEN)).status_code == 200
    own = await env.read_own(BEN)
    assert own["statusMessage"]["publishedDateTime"] == "2030-01-07T09:00:00.0000000Z"


# --- work location --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "body", "named"),
    [
        ("setManualLocation", {}, "workLocationType"),
        ("setAutomaticLocation", {"workLocationType": None}, "workLocationType"),
        ("setManualLocation", {"placeId": "building-1"}, "workLocationType"),
        ("setAutomaticLocation", {"workLocationType": "home"}, "workLocationType"),
        ("setManualLocation", {"workLocationType": "unknownFutureValue"}, "workLocationType"),
        ("setAutomaticLocation", {"workLocationType": "office", "placeId": "p" * 257}, "placeId"),
        ("setManualLocation", {"workLocationType": "office", "placeId": "p" * 257}, "placeId"),
        ("setAutomaticLocation", {"workLocationType": "office", "placeId": 7}, "placeId"),
    ],
    ids=[
        "empty",
        "null type",
        "no type",
        "unknown type",
        "unknownFutureValue",
        "257-character automatic placeId",
        "257-character manual placeId",
        "int placeId",
    ],
)
async def test_an_invalid_work_location_is_rejected(env: Env, action: str, body: dict[str, object], named: str) -> None:
    """workLocationType is required and one of the four values; placeId is a string of at most 256 characters."""
    async with nothing_changes(env):
        response = await env.act(action, body, headers=env.me(ANN, "Presence.ReadWrite"), path="/v1.0/me/presence")
    error_of(response, 400, "BadRequest", named)


@pytest.mark.parametrize("kind", ["unspecified", "office", "remote", "timeOff", "TIMEOFF"])
async def test_every_work_location_type_is_accepted_with_a_256_character_place(env: Env, kind: str) -> None:
    """The four workLocationType values (any case) and a placeId of 256 characters are accepted."""
    body = {"workLocationType": kind, "placeId": "p" * 256}
    response = await env.act("setManualLocation", body, headers=env.me(BEN), path="/v1.0/me/presence")
    assert (response.status_code, response.content) == (204, b"")
    location = (await env.read(BEN))["workLocation"]
    assert location == {
        "workLocationType": kind.replace("TIMEOFF", "timeOff"),
        "source": "manual",
        "placeId": "p" * 256,
    }


# --- text the database may not hold ---------------------------------------------------------------

NUL_TEXT = [
    ("setStatusMessage", {"statusMessage": {"message": {"content": "a\u0000b"}}}, "content"),
    ("setManualLocation", {"workLocationType": "office", "placeId": "a\u0000b"}, "placeId"),
    ("mailboxSettings", {"automaticRepliesSetting": {"internalReplyMessage": "a\u0000b"}}, "internalReplyMessage"),
    ("mailboxSettings", {"automaticRepliesSetting": {"externalReplyMessage": "a\u0000b"}}, "externalReplyMessage"),
]


@pytest.mark.parametrize(("target", "body", "field"), NUL_TEXT, ids=[f for _, _, f in NUL_TEXT])
async def test_a_nul_character_in_free_text_is_refused(env: Env, target: str, body: dict[str, Any], field: str) -> None:
    """A NUL character in free text is a 400 naming the field on both stores, and nothing changes."""
    before = await env.snapshot(BEN)
    if target == "mailboxSettings":
        response = await env.patch_mailbox(body, user_id=BEN)
    else:
        response = await env.act(target, body, user_id=BEN, headers=env.me(BEN), path="/v1.0/me/presence")
    error_of(response, 400, "BadRequest", field)
    assert await env.snapshot(BEN) == before


# --- the body itself ------------------------------------------------------------------------------

MALFORMED = [
    ("setPresence", '{"sessionId": "' + APP_A + '"', "application/json", 400, "JSON"),
    ("setPresence", "[1, 2]", "application/json", 400, "object"),
    ("setPresence", "null", "application/json", 400, "object"),
    ("setPresence", '"setPresence"', "application/json", 400, "object"),
    ("setPresence", "", "application/json", 400, "body"),
    ("setPresence", '{"sessionId": 5}', "application/json", 400, "$.sessionId"),
    ("setPresence", '{"availability": ["Busy"]}', "application/json", 400, "$.availability"),
    ("setPresence", '{"expirationDuration": 300}', "application/json", 400, "$.expirationDuration"),
    ("setPresence", '{"sessionId": "' + APP_A + '", "colour": "red"}', "application/json", 400, "colour"),
    ("setUserPreferredPresence", '{"availability": true}', "application/json", 400, "$.availability"),
    ("setUserPreferredPresence", '{"reason": "meeting"}', "application/json", 400, "reason"),
    ("clearPresence", '{"sessionId": "' + APP_A + '", "force": true}', "application/json", 400, "force"),
    ("clearUserPreferredPresence", '{"now": 1}', "application/json", 400, "now"),
    ("setStatusMessage", '{"statusMessage": "Hi"}', "application/json", 400, "$.statusMessage"),
    ("setStatusMessage", '{"statusMessage": {"message": {"content": 5}}}', "application/json", 400, "content"),
    (
        "setStatusMessage",
        '{"statusMessage": {"message": {"content": "a", "font": "b"}}}',
        "application/json",
        400,
        "font",
    ),
    ("setStatusMessage", '{"statusMessage": {"expiryDateTime": {"dateTime": 1}}}', "application/json", 400, "dateTime"),
    ("setPresence", '{"sessionId": "' + APP_A + '"}', "", 415, "application/json"),
    ("setPresence", '{"sessionId": "' + APP_A + '"}', "text/plain", 415, "application/json"),
    ("clearUserPreferredPresence", "{}", "", 415, "application/json"),
    ("setStatusMessage", '{"statusMessage": {}}', "application/x-www-form-urlencoded", 415, "application/json"),
]


@pytest.mark.parametrize(
    ("action", "content", "content_type", "status", "named"),
    MALFORMED,
    ids=[
        "truncated",
        "array",
        "null",
        "string",
        "empty",
        "int sessionId",
        "list availability",
        "int duration",
        "unknown field",
        "bool availability",
        "unknown preferred field",
        "unknown clear field",
        "unknown field on an empty action",
        "string statusMessage",
        "int content",
        "unknown nested field",
        "int dateTime",
        "no content type",
        "text/plain",
        "no content type on {}",
        "form content type",
    ],
)
async def test_a_malformed_body_is_rejected_naming_what_is_wrong(
    env: Env, action: str, content: str, content_type: str, status: int, named: str
) -> None:
    """Malformed JSON, wrong types and unknown fields are a 400 naming the field; a body not sent as JSON is a 415."""
    headers = env.app()
    if content_type:
        headers["Content-Type"] = content_type
    async with nothing_changes(env):
        response = await env.client.post(f"/v1.0/users/{ANN}/presence/{action}", content=content, headers=headers)
    error_of(response, status, "BadRequest" if status == 400 else "UnsupportedMediaType", named)


async def test_a_json_content_type_with_parameters_is_accepted(env: Env) -> None:
    """application/json with a charset parameter is JSON."""
    headers = env.app() | {"Content-Type": "application/json; charset=utf-8"}
    content = b'{"sessionId": "' + APP_A.encode() + b'", "availability": "Away", "activity": "Away"}'
    response = await env.client.post(f"/v1.0/users/{BEN}/presence/setPresence", content=content, headers=headers)
    assert response.status_code == 200
    await shows(env, BEN, "Away", "Away")


# --- permissions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "body"), ACTIONS, ids=[a for a, _ in ACTIONS])
async def test_a_delegated_token_cannot_write_another_users_presence(env: Env, action: str, body: object) -> None:
    """Delegated Presence.ReadWrite on another user is a 403 'Cannot set the presence of another user.'."""
    async with nothing_changes(env):
        response = await env.act(action, body, headers=env.me(BEN, "Presence.ReadWrite"))
    error_of(response, 403, "Forbidden", "Cannot set the presence of another user.")


@pytest.mark.parametrize(("action", "body"), LOCATION_ACTIONS, ids=[a for a, _ in LOCATION_ACTIONS])
async def test_a_delegated_token_cannot_write_another_users_location(env: Env, action: str, body: object) -> None:
    """Delegated Presence.ReadWrite cannot change another user's work location (403)."""
    async with nothing_changes(env):
        response = await env.act(action, body, headers=env.me(BEN, "Presence.ReadWrite"))
    error_of(response, 403, "Forbidden", "another user")


def each_action_then_each_value(actions: list[tuple[str, object]], values: list[str]) -> list[tuple[str, object, str]]:
    """Every action with the first value, and the first action with each other value."""
    return [(a, b, values[0]) for a, b in actions] + [(*actions[0], v) for v in values[1:]]


WITHOUT_READWRITE = each_action_then_each_value(
    ACTIONS + LOCATION_ACTIONS, ["Presence.Read", "Presence.Read.All", "User.Read"]
)


@pytest.mark.parametrize(
    ("action", "body", "scope"), WITHOUT_READWRITE, ids=[f"{a}-{s}" for a, _, s in WITHOUT_READWRITE]
)
async def test_a_token_without_presence_readwrite_cannot_write_its_own_presence(
    env: Env, action: str, body: object, scope: str
) -> None:
    """Delegated tokens without Presence.ReadWrite are a 403 naming Presence.ReadWrite, even on /me."""
    async with nothing_changes(env):
        response = await env.act(action, body, headers=env.me(ANN, scope), path="/v1.0/me/presence")
    error_of(response, 403, "Forbidden", "Presence.ReadWrite")


@pytest.mark.parametrize(("action", "body"), ACTIONS + LOCATION_ACTIONS, ids=[a for a, _ in ACTIONS + LOCATION_ACTIONS])
async def test_an_app_only_token_on_me_is_a_bad_request(env: Env, action: str, body: object) -> None:
    """/me/presence actions with an app-only token are a 400: /me needs a delegated token."""
    async with nothing_changes(env):
        response = await env.act(action, body, headers=env.app(), path="/v1.0/me/presence")
    error_of(response, 400, "BadRequest", "delegated")


APP_LOCATION = each_action_then_each_value(LOCATION_ACTIONS, ["Presence.ReadWrite.All", "Presence.Read.All"])


@pytest.mark.parametrize(("action", "body", "role"), APP_LOCATION, ids=[f"{a}-{r}" for a, _, r in APP_LOCATION])
async def test_app_tokens_cannot_use_the_location_actions(env: Env, action: str, body: object, role: str) -> None:
    """The work-location actions have no application permission: 403."""
    async with nothing_changes(env):
        response = await env.act(action, body, headers=env.app(role))
    error_of(response, 403, "Forbidden")


@pytest.mark.parametrize(("action", "body"), ACTIONS, ids=[a for a, _ in ACTIONS])
async def test_an_app_token_with_only_read_all_cannot_write(env: Env, action: str, body: object) -> None:
    """An app-only token with Presence.Read.All but not Presence.ReadWrite.All is a 403 naming the latter."""
    async with nothing_changes(env):
        response = await env.act(action, body, headers=env.app("Presence.Read.All"))
    error_of(response, 403, "Forbidden", "Presence.ReadWrite.All")


@pytest.mark.parametrize(
    "path",
    [
        f"/v1.0/users/{BEN}/presence",
        f"/beta/communications/presences/{BEN}",
        "/v1.0/users/BEN@Fabrikam.example/presence",
    ],
)
async def test_an_application_can_write_any_user_of_its_tenant(env: Env, path: str) -> None:
    """Presence.ReadWrite.All writes any user of the token's tenant, by object id or UPN, on every path."""
    response = await env.act("setPresence", presence_body("DoNotDisturb", "Presenting"), path=path)
    assert (response.status_code, response.content) == (200, b"")
    await shows(env, BEN, "DoNotDisturb", "Presenting")
    response = await env.act("setStatusMessage", status_body("Presenting"), path=path)
    assert response.status_code == 200
    assert (await env.read(BEN))["statusMessage"] == {"message": {"content": "Presenting", "contentType": "text"}}
    assert [e.cause for e in await env.log(BEN)] == ["setPresence", "setStatusMessage"]


OTHER_TENANT_WRITES = each_action_then_each_value(ACTIONS, [ZOE, "zoe@northwind.example"])


@pytest.mark.parametrize(
    ("action", "body", "ref"), OTHER_TENANT_WRITES, ids=[f"{a}-{r[:3]}" for a, _, r in OTHER_TENANT_WRITES]
)
async def test_an_application_cannot_write_a_user_of_another_tenant(
    env: Env, action: str, body: object, ref: str
) -> None:
    """A user of another tenant is a 404 for Presence.ReadWrite.All, and stays as they were."""
    other = bearer(env.other_tokens.app("Presence.ReadWrite.All"))
    await env.act("setPresence", presence_body("Away", "Away", expirationDuration="PT1H"), user_id=ZOE, headers=other)
    reader = bearer(env.other_tokens.app("Presence.Read.All"))
    before = await env.read(ZOE, headers=reader), await env.log(ZOE)
    response = await env.act(action, body, user_id=ref)
    error_of(response, 404, "ResourceNotFound", ref)
    assert (await env.read(ZOE, headers=reader), await env.log(ZOE)) == before


UNKNOWN_USERS = each_action_then_each_value(ACTIONS, [str(uuid.UUID(int=404)), "nobody@fabrikam.example"])


@pytest.mark.parametrize(("action", "body", "ref"), UNKNOWN_USERS, ids=[f"{a}-{r[:3]}" for a, _, r in UNKNOWN_USERS])
async def test_an_unknown_user_is_404(env: Env, action: str, body: object, ref: str) -> None:
    """Writing a user that does not exist is a 404 ResourceNotFound naming the id."""
    response = await env.act(action, body, user_id=ref)
    error_of(response, 404, "ResourceNotFound", ref)


# --- mailbox settings -----------------------------------------------------------------------------

WINDOW_START = {"dateTime": "2030-01-08T09:00:00", "timeZone": "UTC"}
WINDOW_END = {"dateTime": "2030-01-09T09:00:00", "timeZone": "UTC"}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"timeZone": "Mars Standard Time"}, "timeZone"),
        ({"timeZone": "Europe/Atlantis"}, "timeZone"),
        ({"automaticRepliesSetting": {"status": "sometimes"}}, "status"),
        ({"automaticRepliesSetting": {"externalAudience": "everyone"}}, "externalAudience"),
        ({"automaticRepliesSetting": {"scheduledEndDateTime": WINDOW_START}}, "scheduledEndDateTime"),
        (
            {
                "automaticRepliesSetting": {
                    "scheduledStartDateTime": WINDOW_END,
                    "scheduledEndDateTime": WINDOW_START,
                }
            },
            "scheduledEndDateTime",
        ),
        (
            {"automaticRepliesSetting": {"scheduledStartDateTime": {**WINDOW_START, "timeZone": "Nowhere"}}},
            "timeZone",
        ),
        (
            {"automaticRepliesSetting": {"scheduledStartDateTime": {"dateTime": "2030-01-08T09:00:00Z"}}},
            "offset",
        ),
        ({"automaticRepliesSetting": {"colour": "red"}}, "colour"),
        ({"language": "en-US"}, "language"),
        ({"timeZone": 1}, "$.timeZone"),
    ],
    ids=[
        "unknown windows zone",
        "unknown iana zone",
        "unknown status",
        "unknown externalAudience",
        "end before the stored start",
        "end before start",
        "unknown window zone",
        "window with an offset",
        "unknown replies field",
        "unknown field",
        "int timeZone",
    ],
)
async def test_an_invalid_mailbox_patch_is_rejected(env: Env, body: dict[str, object], named: str) -> None:
    """A bad time zone, status, audience or window is a 400 naming it, and the mailbox and presence stay."""
    async with nothing_changes(env):
        response = await env.patch_mailbox(body)
    error_of(response, 400, "BadRequest", named)


@pytest.mark.parametrize("missing", ["scheduledStartDateTime", "scheduledEndDateTime", "both"])
async def test_a_scheduled_status_needs_both_ends_of_the_window(env: Env, missing: str) -> None:
    """status scheduled without a start or an end (none stored) is a 400 for a user who never set a window."""
    replies: dict[str, object] = {
        "status": "scheduled",
        "scheduledStartDateTime": WINDOW_START,
        "scheduledEndDateTime": WINDOW_END,
    }
    for name in ("scheduledStartDateTime", "scheduledEndDateTime"):
        if missing in (name, "both"):
            del replies[name]
    async with nothing_changes(env, BEN):
        response = await env.patch_mailbox({"automaticRepliesSetting": replies}, user_id=BEN)
    error_of(response, 400, "BadRequest", "scheduled")


async def test_the_window_end_must_come_after_its_start(env: Env) -> None:
    """An end equal to the start is a 400 too."""
    replies = {"status": "scheduled", "scheduledStartDateTime": WINDOW_START, "scheduledEndDateTime": WINDOW_START}
    async with nothing_changes(env):
        response = await env.patch_mailbox({"automaticRepliesSetting": replies})
    error_of(response, 400, "BadRequest", "scheduledEndDateTime")


async def test_a_valid_mailbox_patch_is_shown_back(env: Env) -> None:
    """A PATCH answers with the whole settings, in the zones given, and GET shows the same."""
    replies = {
        "status": "Scheduled",
        "externalAudience": "contactsOnly",
        "externalReplyMessage": "Out",
        "scheduledStartDateTime": {"dateTime": "2030-01-08T09:00:00", "timeZone": "Pacific Standard Time"},
        "scheduledEndDateTime": {"dateTime": "2030-01-09T09:00:00", "timeZone": "Asia/Tokyo"},
    }
    response = await env.patch_mailbox({"timeZone": "tokyo standard time", "automaticRepliesSetting": replies}, BEN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timeZone"] == "Tokyo Standard Time"
    assert body["automaticRepliesSetting"] == {
        "status": "scheduled",
        "externalAudience": "contactsOnly",
        "internalReplyMessage": "",
        "externalReplyMessage": "Out",
        "scheduledStartDateTime": {"dateTime": "2030-01-08T09:00:00.0000000", "timeZone": "Pacific Standard Time"},
        "scheduledEndDateTime": {"dateTime": "2030-01-09T09:00:00.0000000", "timeZone": "Asia/Tokyo"},
    }
    got = await env.mailbox(BEN)
    assert {k: v for k, v in got.items() if k != "@odata.context"} == {
        k: v for k, v in body.items() if k != "@odata.context"
    }


@pytest.mark.parametrize(
    ("headers_of", "path", "named"),
    [
        ("read", "/v1.0/me/mailboxSettings", "MailboxSettings.ReadWrite"),
        ("presence", "/v1.0/me/mailboxSettings", "MailboxSettings.ReadWrite"),
        ("readwrite", f"/v1.0/users/{ANN}/mailboxSettings", "another user"),
        ("app read", f"/v1.0/users/{ANN}/mailboxSettings", "MailboxSettings.ReadWrite"),
    ],
    ids=["delegated read", "presence scope", "another user", "app read"],
)
async def test_a_mailbox_patch_without_the_permission_is_403(env: Env, headers_of: str, path: str, named: str) -> None:
    """PATCH needs MailboxSettings.ReadWrite, and delegated only for the signed-in user."""
    headers = {
        "read": env.me(ANN, "MailboxSettings.Read"),
        "presence": env.me(ANN, "Presence.ReadWrite"),
        "readwrite": env.me(BEN, "MailboxSettings.ReadWrite"),
        "app read": env.app("MailboxSettings.Read"),
    }[headers_of]
    async with nothing_changes(env):
        response = await env.client.patch(
            path, json={"automaticRepliesSetting": {"status": "alwaysEnabled"}}, headers=headers
        )
    error_of(response, 403, "Forbidden", named)


async def test_an_application_patches_any_users_mailbox_but_not_another_tenants(env: Env) -> None:
    """Application MailboxSettings.ReadWrite changes a user of its tenant (200), not of another tenant (404)."""
    headers = env.app("MailboxSettings.ReadWrite")
    body = {"automaticRepliesSetting": {"status": "alwaysEnabled", "internalReplyMessage": "Off"}}
    response = await env.client.patch(f"/v1.0/users/{BEN}/mailboxSettings", json=body, headers=headers)
    assert response.status_code == 200
    assert (await env.read(BEN))["outOfOfficeSettings"] == {"message": "Off", "isOutOfOffice": True}
    response = await env.client.patch(f"/v1.0/users/{ZOE}/mailboxSettings", json=body, headers=headers)
    error_of(response, 404, "ResourceNotFound", ZOE)
    reader = bearer(env.other_tokens.app("Presence.Read.All"))
    assert (await env.read(ZOE, headers=reader))["outOfOfficeSettings"] == {"message": None, "isOutOfOffice": False}
    assert await env.log(ZOE) == []


async def test_the_fixture_state_is_what_the_rejections_protect(env: Env) -> None:
    """Ann starts with a session under a preferred presence, a status message, a manual location and an OOF window."""
    own = await env.read_own()
    assert (own["availability"], own["activity"]) == ("BeRightBack", "BeRightBack")
    assert own["statusMessage"]["expiryDateTime"] == {
        "dateTime": "2030-01-07T12:00:00.0000000",
        "timeZone": "W. Europe Standard Time",
    }
    assert own["workLocation"] == {"workLocationType": "office", "source": "manual", "placeId": "building-1"}
    mailbox = await env.mailbox()
    assert (mailbox["timeZone"], mailbox["automaticRepliesSetting"]["status"]) == ("Europe/Berlin", "scheduled")
    causes = ["setPresence", "setUserPreferredPresence", "setStatusMessage", "setManualLocation"]
    assert [e.cause for e in await env.log()] == causes
    assert await env.now() == START
