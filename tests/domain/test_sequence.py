"""Unit tests of sequence numbers and the per-user presence timeline (spec Part A §A.8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from presenced.domain.aggregate import aggregate
from presenced.domain.model import (
    Activity,
    Availability,
    PresenceFacts,
    Session,
    StatusMessage,
)
from presenced.domain.sequence import (
    SEQUENCE_WIDTH,
    Change,
    PresenceState,
    advance,
    format_sequence,
    initial_state,
    is_due,
    next_sequence,
    recompute,
    upcoming_of,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW_MICROS = int(NOW.timestamp()) * 1_000_000


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def available_session(refreshed: float = 0, expires: float = 60, app_id: str = "a") -> Session:
    return Session(app_id, Availability.AVAILABLE, Activity.AVAILABLE, at(refreshed), at(expires))


def busy_session(refreshed: float = 0, expires: float = 60, app_id: str = "b") -> Session:
    return Session(app_id, Availability.BUSY, Activity.IN_A_CALL, at(refreshed), at(expires))


def pair(change: Change) -> tuple[Availability, Activity]:
    return (change.state.visible.availability, change.state.visible.activity)


# --- next_sequence and format_sequence ---------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "instant", "expected"),
    [
        pytest.param(0, NOW, NOW_MICROS, id="clock-ahead-uses-microseconds"),
        pytest.param(NOW_MICROS - 5, NOW, NOW_MICROS, id="clock-just-ahead"),
        pytest.param(NOW_MICROS - 1, NOW, NOW_MICROS, id="clock-one-ahead"),
        pytest.param(NOW_MICROS, NOW, NOW_MICROS + 1, id="clock-equal-previous-plus-one"),
        pytest.param(NOW_MICROS + 10**9, NOW, NOW_MICROS + 10**9 + 1, id="clock-behind-previous-plus-one"),
        pytest.param(0, NOW + timedelta(microseconds=7), NOW_MICROS + 7, id="microsecond-resolution"),
    ],
)
def test_next_sequence(previous: int, instant: datetime, expected: int) -> None:
    """The next sequence is the change instant in microseconds, or previous + 1 when the clock is not ahead."""
    assert next_sequence(previous, instant) == expected


def test_next_sequence_strictly_rises_with_clock_going_backwards() -> None:
    """Successive sequence numbers rise strictly even when each change instant is earlier than the last."""
    sequence = 0
    for minutes in (0, -1, -60, 30, 29, 29):
        following = next_sequence(sequence, at(minutes))
        assert following > sequence
        sequence = following


@pytest.mark.parametrize(
    "value", [0, 1, 9, 10, NOW_MICROS, 10**19 - 1, 10**19, 2**63 - 1, 2**64 - 1], ids=lambda v: f"n={v}"
)
def test_format_sequence_is_fixed_width_digits(value: int) -> None:
    """The wire form is always SEQUENCE_WIDTH (20) decimal digits, zero-padded, and parses back to the number."""
    text = format_sequence(value)
    assert SEQUENCE_WIDTH == 20
    assert len(text) == 20
    assert text.isdigit()
    assert int(text) == value


def test_format_sequence_sorts_like_numbers() -> None:
    """Byte-wise order of the wire forms equals numeric order (9 < 10, unlike plain decimal strings)."""
    values = [10, 9, 2**64 - 1, 0, NOW_MICROS + 1, NOW_MICROS, 100, 99]
    assert sorted(values, key=lambda v: format_sequence(v).encode()) == sorted(values)


# --- initial_state and is_due ------------------------------------------------------------------


def test_initial_state() -> None:
    """The initial state shows the aggregate at now, numbered by now in microseconds, with its next change."""
    facts = PresenceFacts(sessions=(available_session(),))
    state = initial_state(facts, NOW)
    result = aggregate(facts, NOW)
    assert state == PresenceState(result.visible, NOW_MICROS, NOW, at(5), result.upcoming)
    assert [step.at for step in state.upcoming] == [at(5), at(10), at(60)]


def test_initial_state_without_facts_never_changes() -> None:
    """A user with no facts starts Offline with no next change."""
    state = initial_state(PresenceFacts(), NOW)
    assert (state.visible.availability, state.visible.activity) == (Availability.OFFLINE, Activity.OFFLINE)
    assert state.next_change_at is None


@pytest.mark.parametrize(
    ("next_change_at", "due"),
    [
        pytest.param(None, False, id="never"),
        pytest.param(at(1), False, id="later"),
        pytest.param(NOW, True, id="exactly-now"),
        pytest.param(at(-1), True, id="past"),
    ],
)
def test_is_due(next_change_at: datetime | None, due: bool) -> None:
    """A transition is due when its instant is at or before now."""
    state = PresenceState(initial_state(PresenceFacts(), NOW).visible, 1, at(-30), next_change_at)
    assert is_due(state, NOW) is due


# --- advance -----------------------------------------------------------------------------------


def test_advance_materialises_each_fade_and_the_expiry() -> None:
    """An idle Available session yields one timer change each at +5 (Inactive), +10 (Away) and expiry (Offline)."""
    facts = PresenceFacts(sessions=(available_session(0, 60),))
    state = initial_state(facts, NOW)
    state, changes = advance(state, at(90))
    assert [(c.cause, c.state.changed_at, pair(c)) for c in changes] == [
        ("timer", at(5), (Availability.AVAILABLE, Activity.AVAILABLE_INACTIVE)),
        ("timer", at(10), (Availability.AWAY, Activity.AWAY)),
        ("timer", at(60), (Availability.OFFLINE, Activity.OFFLINE)),
    ]
    sequences = [NOW_MICROS] + [c.state.sequence for c in changes]
    assert sequences == sorted(set(sequences))
    assert [c.state.sequence for c in changes] == [
        int(at(5).timestamp()) * 1_000_000,
        int(at(10).timestamp()) * 1_000_000,
        int(at(60).timestamp()) * 1_000_000,
    ]
    assert state == changes[-1].state
    assert state.next_change_at is None


def test_advance_in_steps_equals_advance_at_once() -> None:
    """Advancing minute by minute reaches the same state and the same changes as one advance."""
    facts = PresenceFacts(sessions=(available_session(0, 60), busy_session(0, 30)))
    start = initial_state(facts, NOW)
    once, all_changes = advance(start, at(90))
    state, stepped = start, []
    for minute in range(91):
        state, changes = advance(state, at(minute))
        stepped.extend(changes)
    assert state == once
    assert stepped == all_changes


def test_advance_with_nothing_due_changes_nothing() -> None:
    """Advancing to an instant before the next change returns the same state and no change."""
    facts = PresenceFacts(sessions=(available_session(0, 60),))
    state = initial_state(facts, NOW)
    assert advance(state, at(4)) == (state, [])


def test_advance_is_idempotent() -> None:
    """Advancing again to the same instant changes nothing."""
    facts = PresenceFacts(sessions=(available_session(0, 60),))
    state, _ = advance(initial_state(facts, NOW), at(7))
    assert advance(state, at(7)) == (state, [])
    assert state.visible == aggregate(facts, at(7)).visible


def test_a_state_stored_without_its_upcoming_changes_gets_them_from_the_facts() -> None:
    """upcoming_of works out a state's upcoming changes from its facts, skipping a due instant that changes nothing."""
    facts = PresenceFacts(sessions=(busy_session(0, 60),))
    stale = PresenceState(initial_state(facts, NOW).visible, NOW_MICROS, NOW, at(5))  # as an older version stored it
    filled = upcoming_of(stale, facts)
    assert (filled.visible, filled.sequence, filled.changed_at) == (stale.visible, stale.sequence, stale.changed_at)
    assert filled.next_change_at == at(60)
    assert filled == initial_state(facts, NOW)
    assert advance(filled, at(6)) == (filled, [])


def test_advance_refuses_a_due_state_without_its_upcoming_changes() -> None:
    """A state read only to be shown cannot be advanced: its changes would be lost, not stored."""
    facts = PresenceFacts(sessions=(available_session(0, 60),))
    shown = replace(initial_state(facts, NOW), upcoming=())
    assert advance(shown, at(4)) == (shown, [])  # nothing due: nothing needed
    with pytest.raises(ValueError, match="upcoming"):
        advance(shown, at(6))


def test_advance_keeps_rising_when_the_clock_is_behind() -> None:
    """Timer changes number above a previous sequence that is ahead of their instants."""
    facts = PresenceFacts(sessions=(available_session(0, 60),))
    ahead = replace(initial_state(facts, NOW), sequence=NOW_MICROS + 10**12)
    _, changes = advance(ahead, at(11))
    assert [c.state.sequence for c in changes] == [NOW_MICROS + 10**12 + 1, NOW_MICROS + 10**12 + 2]


# --- recompute ---------------------------------------------------------------------------------


def test_recompute_unchanged_presence_keeps_the_sequence() -> None:
    """A fact change that alters nothing visible yields no change and the same sequence and changed_at."""
    before = PresenceFacts(sessions=(busy_session(0, 60),))
    state = initial_state(before, NOW)
    after = PresenceFacts(sessions=(busy_session(0, 60), available_session(0, 30)))
    new_state, changes = recompute(state, after, at(1), "setPresence")
    assert changes == []
    assert new_state.visible == state.visible
    assert new_state.sequence == state.sequence
    assert new_state.changed_at == state.changed_at
    assert new_state.next_change_at == at(60)


def test_recompute_updates_next_change_even_without_visible_change() -> None:
    """Refreshing a session that shows the same pair moves its expiry into next_change_at."""
    before = PresenceFacts(sessions=(busy_session(0, 60),))
    state = initial_state(before, NOW)
    after = PresenceFacts(sessions=(busy_session(1, 120),))
    new_state, changes = recompute(state, after, at(1), "setPresence")
    assert changes == []
    assert new_state.next_change_at == at(120)


def test_recompute_changed_presence_emits_one_change() -> None:
    """A fact change that alters the visible presence yields one change with the given cause and a higher sequence."""
    before = PresenceFacts(sessions=(available_session(0, 60),))
    state = initial_state(before, NOW)
    after = PresenceFacts(sessions=(available_session(0, 60),), status_message=StatusMessage("hi", at(1)))
    new_state, changes = recompute(state, after, at(1), "setStatusMessage")
    assert changes == [Change(new_state, "setStatusMessage")]
    assert new_state.sequence == next_sequence(state.sequence, at(1)) > state.sequence
    assert new_state.changed_at == at(1)
    assert new_state.visible == aggregate(after, at(1)).visible
    assert new_state.next_change_at == at(5)


def test_recompute_when_clock_is_behind() -> None:
    """A write whose instant is behind the stored sequence still numbers the change previous + 1."""
    before = PresenceFacts()
    state = replace(initial_state(before, NOW), sequence=NOW_MICROS + 10**12)
    new_state, _ = recompute(state, PresenceFacts(sessions=(busy_session(),)), NOW, "setPresence")
    assert new_state.sequence == NOW_MICROS + 10**12 + 1
