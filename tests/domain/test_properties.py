"""Hypothesis properties of the aggregation (§A.6, §A.7) and of sequence numbers (§A.8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from presenced.domain.aggregate import aggregate, visible_presence
from presenced.domain.model import (
    PREFERRED_PAIRS,
    SESSION_PAIRS,
    Activity,
    AutomaticReplies,
    AutoReplyStatus,
    Availability,
    LocationLayer,
    Pair,
    PreferredPresence,
    PresenceFacts,
    Session,
    StatusMessage,
    WorkLocationType,
)
from presenced.domain.sequence import (
    SEQUENCE_WIDTH,
    PresenceState,
    advance,
    format_sequence,
    initial_state,
    recompute,
    upcoming_of,
)

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FOUR_HOURS = 4 * 3600
PROPERTY = settings(max_examples=200, deadline=None)

#: Session pairs setPresence accepts, plus BeRightBack which ranks between Available and Away.
SESSION_PAIR_CHOICES = [*sorted(SESSION_PAIRS), (Availability.BE_RIGHT_BACK, Activity.BE_RIGHT_BACK)]
PREFERRED_PAIR_CHOICES = sorted(PREFERRED_PAIRS)
OOF_REPLACES = {
    Activity.AVAILABLE,
    Activity.AVAILABLE_INACTIVE,
    Activity.AWAY,
    Activity.BE_RIGHT_BACK,
    Activity.OFFLINE,
}

# Offsets from BASE: whole minutes often (so fades, expiries and windows coincide), else any second.
offsets = st.one_of(
    st.integers(-240, 240).map(lambda m: timedelta(minutes=m)),
    st.integers(-FOUR_HOURS, FOUR_HOURS).map(lambda s: timedelta(seconds=s)),
)
instants = offsets.map(lambda d: BASE + d)
durations = st.one_of(
    st.sampled_from([timedelta(minutes=m) for m in (1, 5, 10, 15, 60, 240)]),
    st.integers(1, FOUR_HOURS).map(lambda s: timedelta(seconds=s)),
)


@st.composite
def sessions(draw: st.DrawFn) -> tuple[Session, ...]:
    app_ids = draw(st.lists(st.sampled_from(["app-a", "app-b", "app-c", "app-d"]), unique=True, max_size=4))
    result = []
    for app_id in app_ids:
        availability, activity = draw(st.sampled_from(SESSION_PAIR_CHOICES))
        refreshed = draw(instants)
        result.append(Session(app_id, availability, activity, refreshed, refreshed + draw(durations)))
    return tuple(result)


@st.composite
def preferred_presences(draw: st.DrawFn) -> PreferredPresence:
    availability, activity = draw(st.sampled_from(PREFERRED_PAIR_CHOICES))
    return PreferredPresence(availability, activity, draw(instants))


@st.composite
def status_messages(draw: st.DrawFn) -> StatusMessage:
    return StatusMessage(
        draw(st.sampled_from(["In the lab", "On a train", ""])),
        published_at=draw(instants),
        expires_at=draw(st.none() | instants),
    )


@st.composite
def automatic_replies(draw: st.DrawFn) -> AutomaticReplies:
    status = draw(st.sampled_from(list(AutoReplyStatus)))
    start, end = draw(st.none() | instants), draw(st.none() | instants)
    return AutomaticReplies(status, start, end, draw(st.none() | st.just("On leave")), "external")


locations = st.none() | st.builds(
    LocationLayer, st.sampled_from(list(WorkLocationType)), st.none() | st.sampled_from(["hq", "b7"])
)


@st.composite
def presence_facts(draw: st.DrawFn, replies: st.SearchStrategy[AutomaticReplies] | None = None) -> PresenceFacts:
    return PresenceFacts(
        sessions=draw(sessions()),
        preferred=draw(st.none() | preferred_presences()),
        status_message=draw(st.none() | status_messages()),
        automatic_replies=draw(replies if replies is not None else automatic_replies()),
        manual_location=draw(locations),
        automatic_location=draw(locations),
    )


def pair_of(facts: PresenceFacts, now: datetime) -> Pair:
    visible = visible_presence(facts, now)
    return (visible.availability, visible.activity)


def candidate_instants(facts: PresenceFacts) -> set[datetime]:
    """The instants at which the rules of §A.6 can make the presence change by time alone."""
    found: set[datetime] = set()
    for s in facts.sessions:
        found.update({s.expires_at, s.refreshed_at + timedelta(minutes=5), s.refreshed_at + timedelta(minutes=10)})
    if facts.preferred is not None:
        found.add(facts.preferred.expires_at)
    if facts.status_message is not None and facts.status_message.expires_at is not None:
        found.add(facts.status_message.expires_at)
    for t in (facts.automatic_replies.scheduled_start, facts.automatic_replies.scheduled_end):
        if t is not None:
            found.add(t)
    return found


@PROPERTY
@given(presence_facts(), instants, st.data())
def test_session_order_never_matters(facts: PresenceFacts, now: datetime, data: st.DataObject) -> None:
    """Permuting the stored sessions never changes the visible presence or the next change."""
    permuted = replace(facts, sessions=tuple(data.draw(st.permutations(facts.sessions))))
    assert aggregate(permuted, now) == aggregate(facts, now)


@PROPERTY
@given(presence_facts(), instants, st.sampled_from(PREFERRED_PAIR_CHOICES), durations, durations, st.data())
def test_unexpired_preferred_wins_while_a_session_lives(
    facts: PresenceFacts,
    now: datetime,
    wanted: Pair,
    preferred_left: timedelta,
    session_left: timedelta,
    data: st.DataObject,
) -> None:
    """With a live session, an unexpired preferred presence is the pair shown (with the OutOfOffice overlay)."""
    availability, activity = data.draw(st.sampled_from(SESSION_PAIR_CHOICES))
    refreshed = now - data.draw(durations)
    live = Session("app-live", availability, activity, refreshed, now + session_left)
    facts = replace(
        facts,
        sessions=(*facts.sessions, live),
        preferred=PreferredPresence(wanted[0], wanted[1], now + preferred_left),
    )
    expected_activity = wanted[1]
    if facts.automatic_replies.is_active(now) and expected_activity in OOF_REPLACES:
        expected_activity = Activity.OUT_OF_OFFICE
    assert pair_of(facts, now) == (wanted[0], expected_activity)


def _no_live_session(facts: PresenceFacts, now: datetime) -> PresenceFacts:
    return replace(facts, sessions=tuple(replace(s, expires_at=min(s.expires_at, now)) for s in facts.sessions))


inactive_replies = st.one_of(
    st.builds(AutomaticReplies, st.just(AutoReplyStatus.DISABLED), st.none() | instants, st.none() | instants),
    st.builds(
        AutomaticReplies,
        st.just(AutoReplyStatus.SCHEDULED),
        st.just(BASE + timedelta(hours=5)),
        st.just(BASE + timedelta(hours=6)),
        st.just("later"),
    ),
)
active_replies = st.one_of(
    st.builds(AutomaticReplies, st.just(AutoReplyStatus.ALWAYS_ENABLED), st.none() | instants),
    st.builds(
        AutomaticReplies,
        st.just(AutoReplyStatus.SCHEDULED),
        st.just(BASE - timedelta(hours=5)),
        st.just(BASE + timedelta(hours=5)),
        st.just("now"),
    ),
)


@PROPERTY
@given(presence_facts(inactive_replies), instants)
def test_no_live_session_is_offline(facts: PresenceFacts, now: datetime) -> None:
    """Without a live session and without out of office, the presence is Offline/Offline, preferred or not."""
    assert pair_of(_no_live_session(facts, now), now) == (Availability.OFFLINE, Activity.OFFLINE)


@PROPERTY
@given(presence_facts(active_replies), instants)
def test_no_live_session_out_of_office(facts: PresenceFacts, now: datetime) -> None:
    """Without a live session but with out of office active, the presence is Offline/OutOfOffice."""
    visible = visible_presence(_no_live_session(facts, now), now)
    assert (visible.availability, visible.activity) == (Availability.OFFLINE, Activity.OUT_OF_OFFICE)
    assert visible.out_of_office.is_out_of_office


@PROPERTY
@given(presence_facts(), instants, st.lists(st.floats(0, 1, exclude_min=True, exclude_max=True), max_size=5))
def test_next_change_at_is_the_first_change(facts: PresenceFacts, now: datetime, fractions: list[float]) -> None:
    """next_change_at is after now, shows something else, and nothing changes strictly before it."""
    result = aggregate(facts, now)
    assert result.visible == visible_presence(facts, now)
    later = sorted(t for t in candidate_instants(facts) if t > now)
    if result.next_change_at is None:
        for t in later:
            assert visible_presence(facts, t) == result.visible
        assert visible_presence(facts, BASE + timedelta(days=60)) == result.visible
        return
    nxt = result.next_change_at
    assert nxt > now
    assert nxt in later
    assert visible_presence(facts, nxt) != result.visible
    between = [t for t in later if t < nxt]
    between += [now + (nxt - now) * f for f in fractions]
    between.append(nxt - timedelta(microseconds=1))
    for t in between:
        if now < t < nxt:
            assert visible_presence(facts, t) == result.visible, t


@PROPERTY
@given(st.lists(st.integers(0, 2**64 - 1), min_size=2, max_size=10))
def test_format_sequence_byte_order_is_numeric_order(values: list[int]) -> None:
    """format_sequence is fixed width and its byte order equals the numeric order."""
    texts = [format_sequence(v) for v in values]
    assert all(len(t) == SEQUENCE_WIDTH and t.isdigit() for t in texts)
    assert sorted(values) == [int(t) for t in sorted(texts, key=str.encode)]


steps = st.lists(
    st.tuples(
        st.integers(0, 3 * 3600).map(lambda s: timedelta(seconds=s)),
        st.none() | presence_facts(),
    ),
    min_size=1,
    max_size=8,
)


def _assert_in_step(state: PresenceState, facts: PresenceFacts, now: datetime) -> None:
    expected = aggregate(facts, now)
    assert state.visible == expected.visible
    assert state.next_change_at == expected.next_change_at
    # The changes decided when the facts were written are the ones the facts make from here on,
    # and a state stored without them (by an earlier version) gets the same ones back.
    assert state.upcoming == expected.upcoming
    assert upcoming_of(replace(state, upcoming=()), facts) == state


@PROPERTY
@given(presence_facts(), steps)
def test_sequence_rises_exactly_when_presence_changes(
    facts: PresenceFacts, walk: list[tuple[timedelta, PresenceFacts | None]]
) -> None:
    """Walking time and fact changes, the sequence rises strictly on each visible change and only then."""
    now = BASE - timedelta(hours=1)
    state = initial_state(facts, now)
    seen = [state.sequence]
    for delay, new_facts in walk:
        now += delay
        before = state
        state, timer_changes = advance(state, now)
        _assert_in_step(state, facts, now)
        previous = before
        for change in timer_changes:
            assert change.cause == "timer"
            assert change.state.visible != previous.visible
            assert change.state.sequence > previous.sequence
            assert previous.changed_at < change.state.changed_at <= now
            previous = change.state
            seen.append(change.state.sequence)
        if not timer_changes:
            assert (state.visible, state.sequence, state.changed_at) == (
                before.visible,
                before.sequence,
                before.changed_at,
            )
        assert advance(state, now) == (state, [])  # idempotent at the same instant
        if new_facts is not None:
            before = state
            state, changes = recompute(state, new_facts, now, "write")
            facts = new_facts
            _assert_in_step(state, facts, now)
            if state.visible == before.visible:
                assert changes == []
                assert state.sequence == before.sequence
            else:
                assert [c.cause for c in changes] == ["write"]
                assert changes[0].state == state
                assert state.sequence > before.sequence
                seen.append(state.sequence)
            assert advance(state, now) == (state, [])
    assert seen == sorted(set(seen))
    wire = [format_sequence(s) for s in seen]
    assert all(len(w) == SEQUENCE_WIDTH for w in wire)
    assert wire == sorted(set(wire), key=str.encode)
