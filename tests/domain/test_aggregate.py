"""Table tests of the aggregation rules (spec Part A §A.6, with §A.7 out of office).

Every case pins ``now`` to one fixed aware UTC instant and builds the facts
relative to it, so each row reads as "refreshed N minutes ago, expires in M".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from presenced.domain.aggregate import aggregate, session_pair, visible_presence
from presenced.domain.model import (
    Activity,
    AutomaticReplies,
    AutoReplyStatus,
    Availability,
    LocationLayer,
    OutOfOfficeView,
    Pair,
    PreferredPresence,
    PresenceFacts,
    Session,
    StatusMessage,
    VisiblePresence,
    WorkLocationSource,
    WorkLocationType,
    WorkLocationView,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)

AVAILABLE: Pair = (Availability.AVAILABLE, Activity.AVAILABLE)
INACTIVE: Pair = (Availability.AVAILABLE, Activity.AVAILABLE_INACTIVE)
AWAY: Pair = (Availability.AWAY, Activity.AWAY)
BRB: Pair = (Availability.BE_RIGHT_BACK, Activity.BE_RIGHT_BACK)
IN_A_CALL: Pair = (Availability.BUSY, Activity.IN_A_CALL)
CONFERENCE: Pair = (Availability.BUSY, Activity.IN_A_CONFERENCE_CALL)
BUSY: Pair = (Availability.BUSY, Activity.BUSY)
PRESENTING: Pair = (Availability.DO_NOT_DISTURB, Activity.PRESENTING)
DND: Pair = (Availability.DO_NOT_DISTURB, Activity.DO_NOT_DISTURB)
OFFLINE: Pair = (Availability.OFFLINE, Activity.OFFLINE)
OFF_WORK: Pair = (Availability.OFFLINE, Activity.OFF_WORK)


def at(minutes: float) -> datetime:
    """The instant ``minutes`` after NOW (negative: before)."""
    return NOW + timedelta(minutes=minutes)


def session(app_id: str, pair: Pair, refreshed: float = 0, expires: float = 60) -> Session:
    """A session refreshed and expiring the given number of minutes from NOW."""
    return Session(app_id, pair[0], pair[1], at(refreshed), at(expires))


def preferred(pair: Pair, expires: float = 24 * 60) -> PreferredPresence:
    return PreferredPresence(pair[0], pair[1], at(expires))


def facts(
    *sessions: Session,
    preferred: PreferredPresence | None = None,
    status_message: StatusMessage | None = None,
    automatic_replies: AutomaticReplies | None = None,
) -> PresenceFacts:
    """Facts holding the given sessions and the other layers named."""
    return PresenceFacts(
        sessions=sessions,
        preferred=preferred,
        status_message=status_message,
        automatic_replies=automatic_replies or AutomaticReplies(),
    )


def pair_of(visible: VisiblePresence) -> Pair:
    return (visible.availability, visible.activity)


ALWAYS_OOF = AutomaticReplies(
    AutoReplyStatus.ALWAYS_ENABLED, internal_reply_message="Away this week.", external_reply_message="External."
)


def scheduled_oof(start: float, end: float) -> AutomaticReplies:
    return AutomaticReplies(
        AutoReplyStatus.SCHEDULED,
        scheduled_start=at(start),
        scheduled_end=at(end),
        internal_reply_message="On leave.",
        external_reply_message="External.",
    )


# --- Rules 1 to 5: the pair shown --------------------------------------------------------------

PAIR_CASES = [
    # Rule 1: sessions whose expiry is at or before now are gone.
    pytest.param(facts(session("a", AVAILABLE, -1, 0)), OFFLINE, id="r1-session-expiring-exactly-now-is-gone"),
    pytest.param(facts(session("a", IN_A_CALL, -30, -1)), OFFLINE, id="r1-session-expired-before-now-is-gone"),
    pytest.param(
        facts(Session("a", *AVAILABLE, at(-1), NOW + TICK)), AVAILABLE, id="r1-session-expiring-just-after-now-lives"
    ),
    pytest.param(
        facts(session("a", PRESENTING, -1, 0), session("b", AWAY, -1, 30)),
        AWAY,
        id="r1-expired-stronger-session-does-not-beat-live-weaker",
    ),
    # Rule 2: only Available sessions fade, at 5 and 10 minutes since the last refresh.
    pytest.param(facts(session("a", AVAILABLE, 0)), AVAILABLE, id="r2-available-just-refreshed"),
    pytest.param(
        facts(Session("a", *AVAILABLE, at(-5) + TICK, at(60))), AVAILABLE, id="r2-available-idle-just-under-5min"
    ),
    pytest.param(facts(session("a", AVAILABLE, -5)), INACTIVE, id="r2-available-idle-exactly-5min-is-inactive"),
    pytest.param(
        facts(Session("a", *AVAILABLE, at(-10) + TICK, at(60))), INACTIVE, id="r2-available-idle-just-under-10min"
    ),
    pytest.param(facts(session("a", AVAILABLE, -10)), AWAY, id="r2-available-idle-exactly-10min-is-away"),
    pytest.param(facts(session("a", AVAILABLE, -50)), AWAY, id="r2-available-idle-50min-is-away"),
    pytest.param(facts(session("a", IN_A_CALL, -50)), IN_A_CALL, id="r2-busy-in-a-call-does-not-fade"),
    pytest.param(facts(session("a", CONFERENCE, -50)), CONFERENCE, id="r2-busy-conference-does-not-fade"),
    pytest.param(facts(session("a", PRESENTING, -50)), PRESENTING, id="r2-dnd-presenting-does-not-fade"),
    pytest.param(facts(session("a", AWAY, -50)), AWAY, id="r2-away-does-not-fade"),
    # Rule 3: no live session -> Offline/Offline whatever the preferred presence says.
    pytest.param(facts(), OFFLINE, id="r3-no-facts-offline"),
    pytest.param(facts(preferred=preferred(BUSY)), OFFLINE, id="r3-no-session-unexpired-preferred-still-offline"),
    pytest.param(
        facts(session("a", AVAILABLE, -10, 0), preferred=preferred(DND)),
        OFFLINE,
        id="r3-only-expired-session-unexpired-preferred-offline",
    ),
    # Rule 4: an unexpired preferred presence wins while a session lives, shown as is.
    pytest.param(
        facts(session("a", AVAILABLE), preferred=preferred(BUSY)), BUSY, id="r4-preferred-busy-over-available"
    ),
    pytest.param(
        facts(session("a", PRESENTING), preferred=preferred(AVAILABLE)),
        AVAILABLE,
        id="r4-weaker-preferred-still-wins-over-presenting",
    ),
    pytest.param(facts(session("a", IN_A_CALL), preferred=preferred(OFF_WORK)), OFF_WORK, id="r4-preferred-off-work"),
    pytest.param(facts(session("a", IN_A_CALL), preferred=preferred(BRB)), BRB, id="r4-preferred-be-right-back"),
    pytest.param(
        facts(session("a", AVAILABLE, -15), preferred=preferred(AVAILABLE)),
        AVAILABLE,
        id="r4-preferred-available-is-not-faded",
    ),
    pytest.param(
        facts(session("a", IN_A_CALL), preferred=preferred(DND, expires=0)),
        IN_A_CALL,
        id="r4-preferred-expiring-exactly-now-stops-winning",
    ),
    pytest.param(
        facts(session("a", IN_A_CALL), preferred=PreferredPresence(*DND, NOW + TICK)),
        DND,
        id="r4-preferred-expiring-just-after-now-wins",
    ),
    pytest.param(
        facts(session("a", IN_A_CALL), preferred=preferred(DND, expires=-30)),
        IN_A_CALL,
        id="r4-preferred-expired-long-ago-ignored",
    ),
    # Rule 5: the strongest session wins.
    pytest.param(
        facts(session("a", IN_A_CALL), session("b", PRESENTING)), PRESENTING, id="r5-dnd-beats-busy-across-apps"
    ),
    pytest.param(facts(session("a", AVAILABLE), session("b", CONFERENCE)), CONFERENCE, id="r5-busy-beats-available"),
    pytest.param(facts(session("a", AWAY), session("b", AVAILABLE)), AVAILABLE, id="r5-available-beats-away"),
    pytest.param(facts(session("a", AWAY), session("b", BRB)), BRB, id="r5-be-right-back-beats-away"),
    pytest.param(facts(session("a", BRB), session("b", AVAILABLE)), AVAILABLE, id="r5-available-beats-be-right-back"),
    pytest.param(
        facts(session("a", CONFERENCE, -30), session("b", IN_A_CALL, 0)),
        CONFERENCE,
        id="r5-conference-call-beats-more-recent-in-a-call",
    ),
    pytest.param(
        facts(session("a", IN_A_CALL, 0), session("b", CONFERENCE, -30)),
        CONFERENCE,
        id="r5-conference-call-beats-in-a-call-other-order",
    ),
    pytest.param(
        facts(session("a", AVAILABLE, -6), session("b", AWAY, 0)),
        INACTIVE,
        id="r5-faded-inactive-available-still-beats-fresh-away",
    ),
    pytest.param(
        facts(session("a", AVAILABLE, -12), session("b", BRB, -30)),
        BRB,
        id="r5-available-faded-to-away-loses-to-be-right-back",
    ),
    pytest.param(
        facts(session("a", AVAILABLE, -12), session("b", AWAY, 0)),
        AWAY,
        id="r5-available-faded-to-away-ties-with-fresh-away",
    ),
    pytest.param(
        facts(session("a", AVAILABLE, -12), session("b", AWAY, -40)),
        AWAY,
        id="r5-available-faded-to-away-ties-with-older-away",
    ),
    pytest.param(
        facts(session("a", AVAILABLE, -7), session("b", AVAILABLE, -1)),
        AVAILABLE,
        id="r5-fresh-available-beats-inactive-available",
    ),
    pytest.param(
        facts(session("a", IN_A_CALL, -40), session("b", IN_A_CALL, -1)),
        IN_A_CALL,
        id="r5-same-pair-tie-shows-that-pair",
    ),
]


@pytest.mark.parametrize(("given", "expected"), PAIR_CASES)
def test_pair_rules(given: PresenceFacts, expected: Pair) -> None:
    """The availability and activity shown follow rules 1 to 5 of §A.6 at a fixed now."""
    assert pair_of(aggregate(given, NOW).visible) == expected


@pytest.mark.parametrize(("given", "expected"), PAIR_CASES)
def test_pair_rules_ignore_session_order(given: PresenceFacts, expected: Pair) -> None:
    """Reversing the stored order of the sessions never changes the pair shown."""
    reordered = PresenceFacts(sessions=tuple(reversed(given.sessions)), preferred=given.preferred)
    assert pair_of(aggregate(reordered, NOW).visible) == expected


PRECEDENCE = [PRESENTING, CONFERENCE, IN_A_CALL, AVAILABLE, BRB, AWAY]
NAMES = {
    PRESENTING: "DoNotDisturb/Presenting",
    CONFERENCE: "Busy/InAConferenceCall",
    IN_A_CALL: "Busy/InACall",
    AVAILABLE: "Available/Available",
    BRB: "BeRightBack/BeRightBack",
    AWAY: "Away/Away",
}


@pytest.mark.parametrize(
    ("stronger", "weaker"),
    [
        pytest.param(PRECEDENCE[i], PRECEDENCE[j], id=f"{NAMES[PRECEDENCE[i]]}>{NAMES[PRECEDENCE[j]]}")
        for i in range(len(PRECEDENCE))
        for j in range(i + 1, len(PRECEDENCE))
    ],
)
@pytest.mark.parametrize("weaker_refreshed_later", [False, True], ids=["stronger-newer", "weaker-newer"])
def test_precedence_between_two_apps(stronger: Pair, weaker: Pair, weaker_refreshed_later: bool) -> None:
    """The stronger of two apps' sessions wins whatever their refresh order and storage order."""
    strong_refresh, weak_refresh = (-4, -1) if weaker_refreshed_later else (-1, -4)
    for sessions in (
        (session("a", stronger, strong_refresh), session("b", weaker, weak_refresh)),
        (session("b", weaker, weak_refresh), session("a", stronger, strong_refresh)),
    ):
        assert pair_of(visible_presence(PresenceFacts(sessions=sessions), NOW)) == stronger


@pytest.mark.parametrize(
    ("pair", "idle_minutes", "expected"),
    [
        pytest.param(AVAILABLE, 4.99, AVAILABLE, id="available-4.99min"),
        pytest.param(AVAILABLE, 5, INACTIVE, id="available-5min"),
        pytest.param(AVAILABLE, 10, AWAY, id="available-10min"),
        pytest.param(IN_A_CALL, 10, IN_A_CALL, id="busy-10min"),
        pytest.param(PRESENTING, 10, PRESENTING, id="dnd-10min"),
        pytest.param(AWAY, 10, AWAY, id="away-10min"),
    ],
)
def test_session_pair_fades_only_available(pair: Pair, idle_minutes: float, expected: Pair) -> None:
    """``session_pair`` fades an Available session at 5 and 10 minutes and leaves other pairs alone."""
    assert session_pair(session("a", pair, -idle_minutes), NOW) == expected


# --- Rule 6: out of office ---------------------------------------------------------------------

OOF_CASES = [
    pytest.param(facts(session("a", AVAILABLE)), (Availability.AVAILABLE, Activity.OUT_OF_OFFICE), id="available"),
    pytest.param(
        facts(session("a", AVAILABLE, -5)), (Availability.AVAILABLE, Activity.OUT_OF_OFFICE), id="available-inactive"
    ),
    pytest.param(facts(session("a", AWAY)), (Availability.AWAY, Activity.OUT_OF_OFFICE), id="away-session"),
    pytest.param(facts(session("a", AVAILABLE, -10)), (Availability.AWAY, Activity.OUT_OF_OFFICE), id="faded-away"),
    pytest.param(
        facts(session("a", IN_A_CALL), preferred=preferred(BRB)),
        (Availability.BE_RIGHT_BACK, Activity.OUT_OF_OFFICE),
        id="preferred-be-right-back",
    ),
    pytest.param(
        facts(session("a", IN_A_CALL), preferred=preferred(AVAILABLE)),
        (Availability.AVAILABLE, Activity.OUT_OF_OFFICE),
        id="preferred-available",
    ),
    pytest.param(
        facts(session("a", IN_A_CALL), preferred=preferred(AWAY)),
        (Availability.AWAY, Activity.OUT_OF_OFFICE),
        id="preferred-away",
    ),
    pytest.param(facts(), (Availability.OFFLINE, Activity.OUT_OF_OFFICE), id="no-session-offline"),
    pytest.param(
        facts(preferred=preferred(BUSY)), (Availability.OFFLINE, Activity.OUT_OF_OFFICE), id="no-session-preferred"
    ),
    pytest.param(facts(session("a", IN_A_CALL)), IN_A_CALL, id="busy-in-a-call-kept"),
    pytest.param(facts(session("a", CONFERENCE)), CONFERENCE, id="busy-conference-kept"),
    pytest.param(facts(session("a", PRESENTING)), PRESENTING, id="dnd-presenting-kept"),
    pytest.param(facts(session("a", AVAILABLE), preferred=preferred(BUSY)), BUSY, id="preferred-busy-kept"),
    pytest.param(facts(session("a", AVAILABLE), preferred=preferred(DND)), DND, id="preferred-dnd-kept"),
    pytest.param(facts(session("a", AVAILABLE), preferred=preferred(OFF_WORK)), OFF_WORK, id="preferred-off-work-kept"),
]


@pytest.mark.parametrize(("given", "expected"), OOF_CASES)
@pytest.mark.parametrize(
    "replies",
    [
        pytest.param(ALWAYS_OOF, id="always"),
        pytest.param(scheduled_oof(-60, 60), id="scheduled-inside"),
        pytest.param(scheduled_oof(0, 60), id="scheduled-starting-now"),
    ],
)
def test_out_of_office_overlay(given: PresenceFacts, expected: Pair, replies: AutomaticReplies) -> None:
    """Active out of office turns quiet activities into OutOfOffice, keeps busy ones, and flags isOutOfOffice."""
    visible = visible_presence(
        PresenceFacts(sessions=given.sessions, preferred=given.preferred, automatic_replies=replies), NOW
    )
    assert pair_of(visible) == expected
    assert visible.out_of_office == OutOfOfficeView(True, replies.internal_reply_message)


@pytest.mark.parametrize(
    "replies",
    [
        pytest.param(AutomaticReplies(), id="default-disabled"),
        pytest.param(
            AutomaticReplies(AutoReplyStatus.DISABLED, at(-60), at(60), "On leave.", "x"), id="disabled-with-window"
        ),
        pytest.param(scheduled_oof(-60, 0), id="scheduled-ending-exactly-now"),
        pytest.param(scheduled_oof(1, 60), id="scheduled-starting-later"),
        pytest.param(scheduled_oof(-120, -60), id="scheduled-in-the-past"),
        pytest.param(
            AutomaticReplies(AutoReplyStatus.SCHEDULED, scheduled_start=at(-60), internal_reply_message="x"),
            id="scheduled-without-end",
        ),
        pytest.param(
            AutomaticReplies(AutoReplyStatus.SCHEDULED, scheduled_end=at(60), internal_reply_message="x"),
            id="scheduled-without-start",
        ),
    ],
)
def test_out_of_office_inactive(replies: AutomaticReplies) -> None:
    """Inactive out of office leaves the activity alone and shows isOutOfOffice false with no message."""
    visible = visible_presence(PresenceFacts(sessions=(session("a", AVAILABLE),), automatic_replies=replies), NOW)
    assert pair_of(visible) == AVAILABLE
    assert visible.out_of_office == OutOfOfficeView(False, None)


def test_out_of_office_message_is_internal_reply() -> None:
    """The outOfOffice message is the internal reply message, never the external one."""
    replies = AutomaticReplies(
        AutoReplyStatus.ALWAYS_ENABLED, internal_reply_message="inside", external_reply_message="outside"
    )
    visible = visible_presence(PresenceFacts(automatic_replies=replies), NOW)
    assert visible.out_of_office.message == "inside"


@pytest.mark.parametrize(
    ("now", "active"),
    [
        pytest.param(at(-1), False, id="before-start"),
        pytest.param(at(0), True, id="at-start-inclusive"),
        pytest.param(at(30), True, id="inside"),
        pytest.param(at(60) - TICK, True, id="just-before-end"),
        pytest.param(at(60), False, id="at-end-exclusive"),
    ],
)
def test_scheduled_window_bounds(now: datetime, active: bool) -> None:
    """A scheduled out-of-office window is active from its start inclusive to its end exclusive."""
    replies = scheduled_oof(0, 60)
    assert replies.is_active(now) is active
    visible = visible_presence(PresenceFacts(automatic_replies=replies), now)
    assert visible.out_of_office.is_out_of_office is active
    assert visible.activity is (Activity.OUT_OF_OFFICE if active else Activity.OFFLINE)


# --- Rule 7: status message --------------------------------------------------------------------


def note(expires: float | None) -> StatusMessage:
    return StatusMessage("In the lab", published_at=at(-120), expires_at=None if expires is None else at(expires))


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        pytest.param(None, False, id="none"),
        pytest.param(note(-1), False, id="expired-before-now"),
        pytest.param(note(0), False, id="expiring-exactly-now"),
        pytest.param(StatusMessage("x", at(-1), NOW + TICK), True, id="expiring-just-after-now"),
        pytest.param(note(60), True, id="unexpired"),
        pytest.param(note(None), True, id="no-expiry"),
    ],
)
def test_status_message_expiry(message: StatusMessage | None, shown: bool) -> None:
    """An expired status message is not shown; an unexpired or never-expiring one is shown unchanged."""
    visible = visible_presence(PresenceFacts(status_message=message), NOW)
    assert visible.status_message == (message if shown else None)


# --- Rule 8: work location ---------------------------------------------------------------------

OFFICE = LocationLayer(WorkLocationType.OFFICE, "building-7")
REMOTE = LocationLayer(WorkLocationType.REMOTE)


@pytest.mark.parametrize(
    ("manual", "automatic", "expected"),
    [
        pytest.param(
            None, None, WorkLocationView(WorkLocationType.UNSPECIFIED, WorkLocationSource.NONE, None), id="none"
        ),
        pytest.param(
            None, REMOTE, WorkLocationView(WorkLocationType.REMOTE, WorkLocationSource.AUTOMATIC, None), id="automatic"
        ),
        pytest.param(
            OFFICE,
            None,
            WorkLocationView(WorkLocationType.OFFICE, WorkLocationSource.MANUAL, "building-7"),
            id="manual",
        ),
        pytest.param(
            OFFICE,
            REMOTE,
            WorkLocationView(WorkLocationType.OFFICE, WorkLocationSource.MANUAL, "building-7"),
            id="manual-over-automatic",
        ),
        pytest.param(
            LocationLayer(WorkLocationType.TIME_OFF),
            LocationLayer(WorkLocationType.OFFICE, "hq"),
            WorkLocationView(WorkLocationType.TIME_OFF, WorkLocationSource.MANUAL, None),
            id="manual-without-place-hides-automatic-place",
        ),
    ],
)
def test_work_location_layers(
    manual: LocationLayer | None, automatic: LocationLayer | None, expected: WorkLocationView
) -> None:
    """The work location is the manual layer, else the automatic one, else unspecified/none."""
    visible = visible_presence(PresenceFacts(manual_location=manual, automatic_location=automatic), NOW)
    assert visible.work_location == expected


def test_empty_facts_show_the_default_presence() -> None:
    """No facts at all show Offline/Offline, not out of office, no status message, unspecified/none location."""
    result = aggregate(PresenceFacts(), NOW)
    assert result.visible == VisiblePresence()
    assert result.next_change_at is None


# --- The next instant the visible presence changes by itself ----------------------------------

NEXT_CASES = [
    pytest.param(facts(), None, id="nothing-stored"),
    pytest.param(facts(session("a", AVAILABLE, 0, 60)), at(5), id="fresh-available-fades-at-5min"),
    pytest.param(facts(session("a", AVAILABLE, -3, 60)), at(2), id="available-idle-3min-fades-in-2"),
    pytest.param(facts(session("a", AVAILABLE, -5, 60)), at(5), id="inactive-available-turns-away-at-10min"),
    pytest.param(facts(session("a", AVAILABLE, -7, 60)), at(3), id="available-idle-7min-away-in-3"),
    pytest.param(facts(session("a", AVAILABLE, -10, 60)), at(60), id="away-available-next-is-expiry"),
    pytest.param(facts(session("a", AVAILABLE, -4, 3)), at(1), id="fade-before-expiry"),
    pytest.param(facts(session("a", AVAILABLE, -1, 2)), at(2), id="expiry-before-fade"),
    pytest.param(facts(session("a", IN_A_CALL, -50, 30)), at(30), id="busy-session-expiry"),
    pytest.param(facts(session("a", IN_A_CALL, -50, 0)), None, id="session-expired-exactly-now-nothing-left"),
    pytest.param(
        facts(session("a", IN_A_CALL, 0, 60), preferred=preferred(BUSY, 20)), at(20), id="preferred-expiry-visible"
    ),
    pytest.param(
        facts(session("a", AVAILABLE, 0, 60), preferred=preferred(AVAILABLE, 20)),
        at(20),
        id="fades-hidden-under-preferred-then-preferred-expiry",
    ),
    pytest.param(
        facts(session("a", AVAILABLE, 0, 60), preferred=preferred(AVAILABLE, 120)),
        at(60),
        id="fades-hidden-under-preferred-session-expiry-next",
    ),
    pytest.param(
        facts(preferred=preferred(BUSY, 30)),
        None,
        id="preferred-expiry-without-session-changes-nothing",
    ),
    pytest.param(
        facts(session("a", PRESENTING, 0, 120), session("b", AVAILABLE, 0, 60)),
        at(120),
        id="fades-and-expiry-hidden-under-dnd",
    ),
    pytest.param(
        facts(session("a", IN_A_CALL, 0, 30), session("b", AVAILABLE, 0, 60)),
        at(30),
        id="fades-hidden-under-busy-until-busy-expires",
    ),
    pytest.param(
        facts(session("a", AVAILABLE, 0, 60), automatic_replies=ALWAYS_OOF),
        at(10),
        id="inactive-fade-hidden-by-out-of-office",
    ),
    pytest.param(facts(status_message=note(15)), at(15), id="status-message-expiry"),
    pytest.param(facts(status_message=note(None)), None, id="status-message-without-expiry"),
    pytest.param(facts(status_message=note(0)), None, id="status-message-expired-exactly-now"),
    pytest.param(facts(automatic_replies=scheduled_oof(30, 90)), at(30), id="out-of-office-window-start"),
    pytest.param(facts(automatic_replies=scheduled_oof(-30, 90)), at(90), id="out-of-office-window-end"),
    pytest.param(facts(automatic_replies=scheduled_oof(0, 90)), at(90), id="out-of-office-window-started-now"),
    pytest.param(facts(automatic_replies=scheduled_oof(-90, 0)), None, id="out-of-office-window-ended-now"),
    pytest.param(facts(automatic_replies=ALWAYS_OOF), None, id="always-out-of-office-never-changes"),
    pytest.param(
        facts(session("a", IN_A_CALL, 0, 60), automatic_replies=scheduled_oof(30, 90)),
        at(30),
        id="window-start-flags-out-of-office-under-busy",
    ),
    pytest.param(
        facts(session("a", PRESENTING, 0, 120), status_message=note(45)),
        at(45),
        id="status-expiry-before-session-expiry",
    ),
]


@pytest.mark.parametrize(("given", "expected"), NEXT_CASES)
def test_next_change_at(given: PresenceFacts, expected: datetime | None) -> None:
    """``next_change_at`` is the first instant after now at which the visible presence changes by itself."""
    result = aggregate(given, NOW)
    assert result.next_change_at == expected
    if expected is not None:
        assert visible_presence(given, expected) != result.visible
        assert visible_presence(given, expected - TICK) == result.visible


@pytest.mark.parametrize(
    ("given", "skipped"),
    [
        pytest.param(
            facts(session("a", PRESENTING, 0, 120), session("b", AVAILABLE, 0, 60)),
            [at(5), at(10), at(60)],
            id="under-dnd",
        ),
        pytest.param(
            facts(session("a", AVAILABLE, 0, 60), preferred=preferred(AVAILABLE, 120)),
            [at(5), at(10)],
            id="under-preferred",
        ),
        pytest.param(facts(session("a", AVAILABLE, 0, 60), automatic_replies=ALWAYS_OOF), [at(5)], id="under-oof"),
        pytest.param(facts(preferred=preferred(BUSY, 30)), [at(30)], id="preferred-without-session"),
    ],
)
def test_hidden_instants_change_nothing(given: PresenceFacts, skipped: list[datetime]) -> None:
    """The instants ``next_change_at`` skips are ones at which nothing visible changes."""
    before = visible_presence(given, NOW)
    for instant in skipped:
        assert visible_presence(given, instant) == before


def test_timeline_of_one_available_session() -> None:
    """Following next_change_at from a fresh Available session walks Inactive, Away, Offline, then stops."""
    given = facts(session("a", AVAILABLE, 0, 60))
    seen = []
    now: datetime | None = NOW
    while now is not None:
        result = aggregate(given, now)
        seen.append((now, pair_of(result.visible)))
        now = result.next_change_at
    assert seen == [(NOW, AVAILABLE), (at(5), INACTIVE), (at(10), AWAY), (at(60), OFFLINE)]
