"""The writes, as pure changes of a user's presence facts (docs/graph-api.md: "Writes", and
"How the visible presence is computed").

Each function takes the current facts and returns the new ones; validation
that depends on the facts (clearing a session that does not exist) happens
here, validation of the request's shape before it is called.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from presenced.domain.model import (
    Activity,
    AutomaticReplies,
    Availability,
    LocationLayer,
    Pair,
    PreferredPresence,
    PresenceFacts,
    Session,
    StatusMessage,
)
from presenced.errors import BadRequest, ResourceNotFound

SESSION_DEFAULT = timedelta(minutes=5)
SESSION_MIN = timedelta(minutes=5)
SESSION_MAX = timedelta(hours=4)
PREFERRED_MAX = timedelta(days=30)
#: setUserPreferredPresence defaults: a day for Busy and DoNotDisturb, a week otherwise.
PREFERRED_SHORT_DEFAULT = timedelta(days=1)
PREFERRED_LONG_DEFAULT = timedelta(days=7)


def _live(facts: PresenceFacts, now: datetime) -> tuple[Session, ...]:
    return tuple(s for s in facts.sessions if s.expires_at > now)


def session_duration(duration: timedelta | None) -> timedelta:
    """A session's lifetime: PT5M when not given, else PT5M to PT4H (a 400 otherwise)."""
    duration = SESSION_DEFAULT if duration is None else duration
    if not SESSION_MIN <= duration <= SESSION_MAX:
        raise BadRequest("'expirationDuration' must be between PT5M and PT4H.")
    return duration


def set_session(facts: PresenceFacts, app_id: str, pair: Pair, duration: timedelta, now: datetime) -> PresenceFacts:
    """setPresence: create or refresh the app's session; expired sessions are dropped."""
    session = Session(app_id, pair[0], pair[1], now, now + duration)
    others = tuple(s for s in facts.sessions if s.expires_at > now and s.app_id != app_id)
    # The constructor rather than dataclasses.replace: this is every client's keep-alive.
    return PresenceFacts(
        (*others, session),
        facts.preferred,
        facts.status_message,
        facts.automatic_replies,
        facts.manual_location,
        facts.automatic_location,
    )


def clear_session(facts: PresenceFacts, app_id: str, now: datetime) -> PresenceFacts:
    """clearPresence: end the app's session; 404 when it has none that is live."""
    live = _live(facts, now)
    if not any(s.app_id == app_id for s in live):
        raise ResourceNotFound(f"No presence session of application '{app_id}' exists for this user.")
    return replace(facts, sessions=tuple(s for s in live if s.app_id != app_id))


def end_session_at(facts: PresenceFacts, app_id: str, at: datetime, now: datetime) -> PresenceFacts:
    """Let the app's session expire at ``at`` if it would live longer, without refreshing it; no session: no change."""
    sessions = tuple(
        replace(s, expires_at=min(s.expires_at, at)) if s.app_id == app_id else s for s in _live(facts, now)
    )
    return replace(facts, sessions=sessions)


def preferred_duration(availability: Availability, duration: timedelta | None) -> timedelta:
    """A preferred presence's lifetime: a day (Busy, DoNotDisturb) or a week when not given, else at most P30D."""
    if duration is None:
        busy = availability in {Availability.BUSY, Availability.DO_NOT_DISTURB}
        return PREFERRED_SHORT_DEFAULT if busy else PREFERRED_LONG_DEFAULT
    if not timedelta(0) < duration <= PREFERRED_MAX:
        raise BadRequest("'expirationDuration' must be more than zero and at most P30D.")
    return duration


def set_preferred(facts: PresenceFacts, pair: Pair, duration: timedelta, now: datetime) -> PresenceFacts:
    """setUserPreferredPresence."""
    return replace(facts, preferred=PreferredPresence(pair[0], pair[1], now + duration))


def clear_preferred(facts: PresenceFacts) -> PresenceFacts:
    return replace(facts, preferred=None)


def set_status_message(facts: PresenceFacts, message: StatusMessage | None) -> PresenceFacts:
    """setStatusMessage; None (empty content) clears it."""
    return replace(facts, status_message=message)


def set_location(facts: PresenceFacts, layer: str, location: LocationLayer) -> PresenceFacts:
    """setManualLocation (``layer`` manual) or setAutomaticLocation (automatic)."""
    if layer == "manual":
        return replace(facts, manual_location=location)
    return replace(facts, automatic_location=location)


def clear_automatic_location(facts: PresenceFacts) -> PresenceFacts:
    return replace(facts, automatic_location=None)


def clear_location(facts: PresenceFacts) -> PresenceFacts:
    """clearLocation removes the manual and the automatic layers."""
    return replace(facts, manual_location=None, automatic_location=None)


def set_automatic_replies(facts: PresenceFacts, replies: AutomaticReplies) -> PresenceFacts:
    return replace(facts, automatic_replies=replies)


def pair_of(availability: Availability, activity: Activity, allowed: frozenset[Pair], action: str) -> Pair:
    """The (availability, activity) pair if ``action`` allows it, else a 400 listing the allowed pairs."""
    pair = (availability, activity)
    if pair not in allowed:
        listed = ", ".join(f"{a.value}/{b.value}" for a, b in sorted(allowed, key=lambda p: (p[0].value, p[1].value)))
        raise BadRequest(
            f"{action} does not support availability '{availability.value}' with activity '{activity.value}'. "
            f"Supported: {listed}."
        )
    return pair
