"""Sequence numbers (docs/graph-api.md, "The presence object") and the per-user presence timeline.

A user's stored state is the visible presence, its sequence number, and the
changes it will make by itself (the first of them at ``next_change_at``).
Because the visible presence is a pure function of the facts and the time, the
timeline between writes is deterministic: it is worked out once, when the facts
are written (``initial_state``, ``recompute``), and ``advance`` stores what fell
due when its time comes, without the facts.

The sequence number after a change at instant ``t`` is
``max(previous + 1, microseconds since the epoch of t)``: strictly rising,
close to the change time, and the same whoever computes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from presenced.domain.aggregate import Step, aggregate
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
    #: The changes the facts make by themselves from ``next_change_at`` on, in order. A state read
    #: only to be shown (or logged) leaves them out; ``advance`` refuses such a state once it is due.
    upcoming: Sequence[Step] = ()


@dataclass(frozen=True, slots=True)
class Change:
    """One change of the visible presence: a change-log entry to be."""

    state: PresenceState
    cause: str


def initial_state(facts: PresenceFacts, now: datetime) -> PresenceState:
    """The state of a user as first stored at ``now``."""
    result = aggregate(facts, now)
    return PresenceState(result.visible, _micros(now), now, result.next_change_at, result.upcoming)


def is_due(state: PresenceState, now: datetime) -> bool:
    """Whether a transition of ``state`` is due at ``now`` and not yet materialised."""
    return state.next_change_at is not None and state.next_change_at <= now


def advance(state: PresenceState, now: datetime) -> tuple[PresenceState, list[Change]]:
    """Materialise every transition due at or before ``now`` (cause ``timer``), from the state's upcoming changes."""
    if not is_due(state, now):
        return state, []
    steps = state.upcoming
    if not steps or steps[0].at != state.next_change_at:
        raise ValueError("the state does not carry its upcoming changes")
    changes: list[Change] = []
    sequence = state.sequence
    count = len(steps)
    step = steps[0]
    taken = 0
    while True:
        taken += 1
        sequence = next_sequence(sequence, step.at)
        following = steps[taken] if taken < count else None
        state = PresenceState(
            step.visible, sequence, step.at, None if following is None else following.at, steps[taken:]
        )
        changes.append(Change(state, "timer"))
        if following is None or following.at > now:
            return state, changes
        step = following


def upcoming_of(state: PresenceState, facts: PresenceFacts) -> PresenceState:
    """``state`` with the changes ``facts`` make from its ``next_change_at`` on (for a state stored without them)."""
    if state.next_change_at is None:
        return PresenceState(state.visible, state.sequence, state.changed_at, None, ())
    result = aggregate(facts, state.next_change_at)
    first = (Step(state.next_change_at, result.visible),) if result.visible != state.visible else ()
    steps = (*first, *result.upcoming)
    return PresenceState(state.visible, state.sequence, state.changed_at, steps[0].at if steps else None, steps)


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
        unchanged = PresenceState(
            state.visible, state.sequence, state.changed_at, result.next_change_at, result.upcoming
        )
        return unchanged, []
    changed = PresenceState(
        result.visible, next_sequence(state.sequence, now), now, result.next_change_at, result.upcoming
    )
    return changed, [Change(changed, cause)]
