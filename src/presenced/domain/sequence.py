"""Sequence numbers (spec §A.8) and the per-user presence timeline.

A user's stored state is the visible presence, its sequence number and the next
instant it changes by itself. Because the visible presence is a pure function of
the facts and the time, the timeline between writes is deterministic: a reader
that finds a transition already due computes exactly the state (and sequence
number) that the sweeper will store for it, without writing anything.

The sequence number after a change at instant ``t`` is
``max(previous + 1, microseconds since the epoch of t)``: strictly rising,
close to the change time, and the same whoever computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from presenced.domain.aggregate import aggregate
from presenced.domain.model import PresenceFacts, VisiblePresence

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Width of the wire form; 20 digits hold any 64-bit value, so byte order is numeric order.
SEQUENCE_WIDTH = 20


def next_sequence(previous: int, at: datetime) -> int:
    """The sequence number of a change at ``at`` following ``previous``."""
    return max(previous + 1, _micros(at))


def format_sequence(sequence: int) -> str:
    """The fixed-width wire form of a sequence number."""
    return f"{sequence:0{SEQUENCE_WIDTH}d}"


def _micros(instant: datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class PresenceState:
    """The stored, materialised presence of one user."""

    visible: VisiblePresence
    sequence: int
    changed_at: datetime
    next_change_at: datetime | None


@dataclass(frozen=True, slots=True)
class Change:
    """One change of the visible presence: a change-log entry to be."""

    state: PresenceState
    cause: str


def initial_state(facts: PresenceFacts, now: datetime) -> PresenceState:
    """The state of a user as first stored at ``now``."""
    result = aggregate(facts, now)
    return PresenceState(result.visible, _micros(now), now, result.next_change_at)


def is_due(state: PresenceState, now: datetime) -> bool:
    """Whether a transition of ``state`` is due at ``now`` and not yet materialised."""
    return state.next_change_at is not None and state.next_change_at <= now


def advance(state: PresenceState, facts: PresenceFacts, now: datetime) -> tuple[PresenceState, list[Change]]:
    """Materialise every transition due at or before ``now`` (cause ``timer``)."""
    changes: list[Change] = []
    while state.next_change_at is not None and state.next_change_at <= now:
        at: datetime = state.next_change_at
        result = aggregate(facts, at)
        if result.visible == state.visible:
            state = PresenceState(state.visible, state.sequence, state.changed_at, result.next_change_at)
            continue
        state = PresenceState(result.visible, next_sequence(state.sequence, at), at, result.next_change_at)
        changes.append(Change(state, "timer"))
    return state, changes


def recompute(
    state: PresenceState, facts: PresenceFacts, now: datetime, cause: str
) -> tuple[PresenceState, list[Change]]:
    """The state after the facts became ``facts`` at ``now``.

    Transitions already due under the old facts must be materialised first
    with ``advance``; this only compares the new facts' presence with ``state``.
    The sequence number moves only when the visible presence changed.
    """
    result = aggregate(facts, now)
    if result.visible == state.visible:
        return PresenceState(state.visible, state.sequence, state.changed_at, result.next_change_at), []
    changed = PresenceState(result.visible, next_sequence(state.sequence, now), now, result.next_change_at)
    return changed, [Change(changed, cause)]
