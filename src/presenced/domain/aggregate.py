"""The aggregation function (docs/graph-api.md, "How the visible presence is computed").

``aggregate(facts, now)`` gives the visible presence at ``now`` and every change
it would make by itself after ``now`` while the facts stay as they are (the
first of them is the next instant it changes). It is the only place that
decides what a reader sees; every other layer calls it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from presenced.domain.location import work_location
from presenced.domain.model import (
    OFFLINE_PAIR,
    Activity,
    Availability,
    LocationLayer,
    OutOfOfficeView,
    Pair,
    PresenceFacts,
    Session,
    StatusMessage,
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


class Step(NamedTuple):
    """A change the facts make by themselves: from ``at`` on, the visible presence is ``visible``.

    A named tuple rather than a dataclass: a sweep makes one for each of thousands of users'
    upcoming changes, and a tuple is three times cheaper to make.
    """

    at: datetime
    visible: VisiblePresence


@dataclass(frozen=True, slots=True)
class Aggregate:
    visible: VisiblePresence
    #: Every change after ``now``, in order, each to a different visible presence than the one before.
    upcoming: tuple[Step, ...]

    @property
    def next_change_at(self) -> datetime | None:
        """The next instant after ``now`` at which ``visible`` changes by itself; None if never."""
        return self.upcoming[0].at if self.upcoming else None


def aggregate(facts: PresenceFacts, now: datetime) -> Aggregate:
    """Return the visible presence at ``now`` and the changes it makes by itself after ``now``."""
    moment = _moment(facts, now)
    return Aggregate(_visible(facts, moment), _upcoming(facts, now, moment))


def visible_presence(facts: PresenceFacts, now: datetime) -> VisiblePresence:
    """The visible presence at ``now`` (rules 1-8)."""
    return _visible(facts, _moment(facts, now))


#: What of the visible presence depends on the time: the pair shown (after rule 6), whether out of
#: office is on, whether the status message is still shown. The rest (the out-of-office message,
#: the status message itself, the work location) is a fact as stored, so two instants with the same
#: moment have the same visible presence.
_Moment = tuple[Availability, Activity, bool, bool]


def _moment(facts: PresenceFacts, now: datetime) -> _Moment:
    """Rules 1-7 at ``now``, as the parts of the visible presence that time can change."""
    live = [s for s in facts.sessions if s.expires_at > now]  # rule 1
    if not live:
        availability, activity = OFFLINE_PAIR  # rule 3
    elif facts.preferred is not None and facts.preferred.expires_at > now:
        availability, activity = facts.preferred.availability, facts.preferred.activity  # rule 4
    elif len(live) == 1:
        availability, activity = session_pair(live[0], now)  # rule 2
    else:
        availability, activity = _strongest(live, now)  # rules 2 and 5
    out_of_office = facts.automatic_replies.is_active(now)  # rule 6
    if out_of_office and activity in _OOF_REPLACES:
        activity = Activity.OUT_OF_OFFICE
    status = facts.status_message
    shown = status is not None and (status.expires_at is None or status.expires_at > now)  # rule 7
    return availability, activity, out_of_office, shown


def _visible(facts: PresenceFacts, moment: _Moment) -> VisiblePresence:
    availability, activity, out_of_office, shown = moment
    return _shared_visible(
        availability,
        activity,
        facts.automatic_replies.internal_reply_message if out_of_office else _NOT_OUT,
        facts.status_message if shown else None,
        facts.manual_location,
        facts.automatic_location,
    )


#: Out of office is off (an out-of-office message may be None).
_NOT_OUT = object()


@functools.lru_cache(maxsize=4096)
def _shared_visible(
    availability: Availability,
    activity: Activity,
    out_of_office_message: object,
    status_message: StatusMessage | None,
    manual: LocationLayer | None,
    automatic: LocationLayer | None,
) -> VisiblePresence:
    """The visible presence of these parts. Values are immutable, and most users show one of a
    few, so one object serves them all (and the store encodes it once)."""
    if out_of_office_message is _NOT_OUT:
        out_of_office = OutOfOfficeView()
    else:
        assert out_of_office_message is None or isinstance(out_of_office_message, str)
        out_of_office = OutOfOfficeView(True, out_of_office_message)
    return VisiblePresence(
        availability=availability,
        activity=activity,
        out_of_office=out_of_office,
        status_message=status_message,
        work_location=work_location(manual, automatic),  # rule 8
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


def _upcoming(facts: PresenceFacts, now: datetime, moment: _Moment) -> tuple[Step, ...]:
    """The candidate instants after ``now`` at which the visible presence differs from just before.

    The visible presence is piecewise constant between candidate instants, so
    checking each candidate in order finds every change exactly. Candidates that
    change nothing (a fade hidden by a stronger session, say) are skipped, so
    the sweeper never wakes for nothing. The naive check builds the visible
    presence at each candidate and compares it with the one before; comparing
    the moments gives the same answer, and only a change builds anything.
    """
    steps: list[Step] = []
    for instant in sorted(t for t in _candidate_instants(facts) if t > now):
        following = _moment(facts, instant)
        if following != moment:
            steps.append(Step(instant, _visible(facts, following)))
            moment = following
    return tuple(steps)
