"""The aggregation function (spec Part A §A.6).

``aggregate(facts, now)`` gives the visible presence at ``now`` and the next
instant at which it would change by itself. It is the only place that decides
what a reader sees; every other layer calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from presenced.domain.location import work_location
from presenced.domain.model import (
    OFFLINE_PAIR,
    Activity,
    Availability,
    OutOfOfficeView,
    Pair,
    PresenceFacts,
    Session,
    VisiblePresence,
)

#: An Available session not refreshed for this long shows Available/AvailableInactive.
INACTIVE_AFTER = timedelta(minutes=5)
#: ...and for this long, Away/Away.
AWAY_AFTER = timedelta(minutes=10)

_AVAILABILITY_RANK = {
    a: rank
    for rank, a in enumerate(
        reversed(
            (
                Availability.DO_NOT_DISTURB,
                Availability.BUSY,
                Availability.AVAILABLE,
                Availability.BE_RIGHT_BACK,
                Availability.AWAY,
                Availability.OFFLINE,
            )
        ),
        start=1,
    )
}
_ACTIVITY_RANK = {
    a: rank
    for rank, a in enumerate(
        reversed(
            (
                Activity.PRESENTING,
                Activity.DO_NOT_DISTURB,
                Activity.IN_A_CONFERENCE_CALL,
                Activity.IN_A_CALL,
                Activity.IN_A_MEETING,
                Activity.BUSY,
                Activity.AVAILABLE,
                Activity.AVAILABLE_INACTIVE,
                Activity.BE_RIGHT_BACK,
                Activity.AWAY,
            )
        ),
        start=1,
    )
}
#: Activities that out of office replaces with OutOfOffice (rule 6).
_OOF_REPLACES = frozenset(
    {
        Activity.AVAILABLE,
        Activity.AVAILABLE_INACTIVE,
        Activity.AWAY,
        Activity.BE_RIGHT_BACK,
        Activity.OFFLINE,
    }
)


@dataclass(frozen=True, slots=True)
class Aggregate:
    visible: VisiblePresence
    #: The next instant after ``now`` at which ``visible`` changes by itself; None if never.
    next_change_at: datetime | None


def aggregate(facts: PresenceFacts, now: datetime) -> Aggregate:
    """Return the visible presence at ``now`` and when it next changes by itself."""
    visible = visible_presence(facts, now)
    return Aggregate(visible, _next_change(facts, now, visible))


def visible_presence(facts: PresenceFacts, now: datetime) -> VisiblePresence:
    """The visible presence at ``now`` (rules 1-8)."""
    live = [s for s in facts.sessions if s.expires_at > now]  # rule 1
    if not live:
        pair = OFFLINE_PAIR  # rule 3
    elif facts.preferred is not None and facts.preferred.expires_at > now:
        pair = (facts.preferred.availability, facts.preferred.activity)  # rule 4
    else:
        pair = _strongest(live, now)  # rules 2 and 5
    availability, activity = pair
    replies = facts.automatic_replies
    out_of_office = OutOfOfficeView()
    if replies.is_active(now):  # rule 6
        out_of_office = OutOfOfficeView(True, replies.internal_reply_message)
        if activity in _OOF_REPLACES:
            activity = Activity.OUT_OF_OFFICE
    status = facts.status_message
    if status is not None and status.expires_at is not None and status.expires_at <= now:
        status = None  # rule 7
    return VisiblePresence(
        availability=availability,
        activity=activity,
        out_of_office=out_of_office,
        status_message=status,
        work_location=work_location(facts.manual_location, facts.automatic_location),  # rule 8
    )


def session_pair(session: Session, now: datetime) -> Pair:
    """A live session's pair after fading (rule 2): only Available sessions fade."""
    if session.availability is Availability.AVAILABLE:
        idle = now - session.refreshed_at
        if idle >= AWAY_AFTER:
            return (Availability.AWAY, Activity.AWAY)
        if idle >= INACTIVE_AFTER:
            return (Availability.AVAILABLE, Activity.AVAILABLE_INACTIVE)
    return (session.availability, session.activity)


def _strongest(live: list[Session], now: datetime) -> Pair:
    """Rule 5: strongest availability, then activity, then most recently refreshed.

    The app id breaks a remaining exact tie, so the winner never depends on the
    order in which sessions are stored.
    """

    def key(session: Session) -> tuple[int, int, datetime, str]:
        availability, activity = session_pair(session, now)
        return (
            _AVAILABILITY_RANK.get(availability, 0),
            _ACTIVITY_RANK.get(activity, 0),
            session.refreshed_at,
            session.app_id,
        )

    return session_pair(max(live, key=key), now)


def _candidate_instants(facts: PresenceFacts) -> set[datetime]:
    """Every instant at which the visible presence may change by time alone."""
    instants: set[datetime] = set()
    for session in facts.sessions:
        instants.add(session.expires_at)
        if session.availability is Availability.AVAILABLE:
            instants.add(session.refreshed_at + INACTIVE_AFTER)
            instants.add(session.refreshed_at + AWAY_AFTER)
    if facts.preferred is not None:
        instants.add(facts.preferred.expires_at)
    if facts.status_message is not None and facts.status_message.expires_at is not None:
        instants.add(facts.status_message.expires_at)
    instants.update(facts.automatic_replies.boundaries())
    return instants


def _next_change(facts: PresenceFacts, now: datetime, visible: VisiblePresence) -> datetime | None:
    """The first candidate instant after ``now`` whose visible presence differs.

    The visible presence is piecewise constant between candidate instants, so
    checking each candidate in order finds the exact next change. Candidates
    that change nothing (a fade hidden by a stronger session, say) are skipped,
    so the sweeper never wakes for nothing.
    """
    for instant in sorted(t for t in _candidate_instants(facts) if t > now):
        if visible_presence(facts, instant) != visible:
            return instant
    return None
