"""The presence vocabulary and the stored facts, as small immutable values.

Everything here is pure: no I/O, no clock reads. Instants are timezone-aware
``datetime`` values in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum


class _CaseInsensitiveEnum(StrEnum):
    """A string enum whose members are looked up case-insensitively by ``parse``."""

    @classmethod
    def parse(cls, raw: str) -> _CaseInsensitiveEnum | None:
        """Return the member whose value equals ``raw`` ignoring case, else None."""
        return _LOOKUP[cls].get(raw.lower())


class Availability(_CaseInsensitiveEnum):
    AVAILABLE = "Available"
    AVAILABLE_IDLE = "AvailableIdle"
    AWAY = "Away"
    BE_RIGHT_BACK = "BeRightBack"
    BUSY = "Busy"
    BUSY_IDLE = "BusyIdle"
    DO_NOT_DISTURB = "DoNotDisturb"
    OFFLINE = "Offline"
    PRESENCE_UNKNOWN = "PresenceUnknown"


class Activity(_CaseInsensitiveEnum):
    AVAILABLE = "Available"
    AVAILABLE_INACTIVE = "AvailableInactive"
    AWAY = "Away"
    BE_RIGHT_BACK = "BeRightBack"
    BUSY = "Busy"
    DO_NOT_DISTURB = "DoNotDisturb"
    IN_A_CALL = "InACall"
    IN_A_CONFERENCE_CALL = "InAConferenceCall"
    INACTIVE = "Inactive"
    IN_A_MEETING = "InAMeeting"
    OFFLINE = "Offline"
    OFF_WORK = "OffWork"
    OUT_OF_OFFICE = "OutOfOffice"
    PRESENCE_UNKNOWN = "PresenceUnknown"
    PRESENTING = "Presenting"
    URGENT_INTERRUPTIONS_ONLY = "UrgentInterruptionsOnly"


class WorkLocationType(_CaseInsensitiveEnum):
    UNSPECIFIED = "unspecified"
    OFFICE = "office"
    REMOTE = "remote"
    TIME_OFF = "timeOff"


class WorkLocationSource(_CaseInsensitiveEnum):
    NONE = "none"
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    AUTOMATIC = "automatic"


class AutoReplyStatus(_CaseInsensitiveEnum):
    DISABLED = "disabled"
    ALWAYS_ENABLED = "alwaysEnabled"
    SCHEDULED = "scheduled"


_LOOKUP: dict[type[Enum], dict[str, _CaseInsensitiveEnum]] = {
    cls: {member.value.lower(): member for member in cls}
    for cls in (
        Availability,
        Activity,
        WorkLocationType,
        WorkLocationSource,
        AutoReplyStatus,
    )
}

Pair = tuple[Availability, Activity]

OFFLINE_PAIR: Pair = (Availability.OFFLINE, Activity.OFFLINE)

#: The pairs setPresence accepts (docs/graph-api.md, "Writes").
SESSION_PAIRS: frozenset[Pair] = frozenset(
    {
        (Availability.AVAILABLE, Activity.AVAILABLE),
        (Availability.BUSY, Activity.IN_A_CALL),
        (Availability.BUSY, Activity.IN_A_CONFERENCE_CALL),
        (Availability.AWAY, Activity.AWAY),
        (Availability.DO_NOT_DISTURB, Activity.PRESENTING),
    }
)

#: The pairs setUserPreferredPresence accepts (docs/graph-api.md, "Writes").
PREFERRED_PAIRS: frozenset[Pair] = frozenset(
    {
        (Availability.AVAILABLE, Activity.AVAILABLE),
        (Availability.BUSY, Activity.BUSY),
        (Availability.DO_NOT_DISTURB, Activity.DO_NOT_DISTURB),
        (Availability.BE_RIGHT_BACK, Activity.BE_RIGHT_BACK),
        (Availability.AWAY, Activity.AWAY),
        (Availability.OFFLINE, Activity.OFF_WORK),
    }
)


@dataclass(frozen=True, slots=True)
class Session:
    """One application's presence session for a user (keyed by the app id)."""

    app_id: str
    availability: Availability
    activity: Activity
    refreshed_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PreferredPresence:
    """The user-preferred presence: shown over sessions until it expires."""

    availability: Availability
    activity: Activity
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """A status note. ``expires_at`` None means it never expires.

    ``expiry_time_zone`` keeps the zone name the writer used, so the expiry is
    shown back in the writer's own zone.
    """

    content: str
    published_at: datetime
    expires_at: datetime | None = None
    expiry_time_zone: str | None = None
    content_type: str = "text"


@dataclass(frozen=True, slots=True)
class AutomaticReplies:
    """The mailbox automatic-replies setting behind out of office (docs/graph-api.md, "Mailbox settings")."""

    status: AutoReplyStatus = AutoReplyStatus.DISABLED
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    internal_reply_message: str | None = None
    external_reply_message: str | None = None

    def is_active(self, now: datetime) -> bool:
        """Whether out of office is on at ``now``."""
        if self.status is AutoReplyStatus.ALWAYS_ENABLED:
            return True
        if self.status is AutoReplyStatus.SCHEDULED:
            start, end = self.scheduled_start, self.scheduled_end
            return start is not None and end is not None and start <= now < end
        return False

    def boundaries(self) -> tuple[datetime, ...]:
        """The instants at which ``is_active`` may flip by time alone."""
        if self.status is AutoReplyStatus.SCHEDULED:
            return tuple(t for t in (self.scheduled_start, self.scheduled_end) if t is not None)
        return ()


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    """A user's mailbox settings that presenced keeps (docs/graph-api.md, "Mailbox settings").

    Only ``automatic_replies`` affects presence; the rest is shown back as set.
    """

    time_zone: str = "UTC"
    automatic_replies: AutomaticReplies = field(default_factory=AutomaticReplies)
    external_audience: str = "all"
    scheduled_start_time_zone: str | None = None
    scheduled_end_time_zone: str | None = None


@dataclass(frozen=True, slots=True)
class LocationLayer:
    """One work-location signal (manual or automatic)."""

    work_location_type: WorkLocationType
    place_id: str | None = None


@dataclass(frozen=True, slots=True)
class PresenceFacts:
    """Everything stored about a user's presence; the visible presence derives from it."""

    sessions: tuple[Session, ...] = ()
    preferred: PreferredPresence | None = None
    status_message: StatusMessage | None = None
    automatic_replies: AutomaticReplies = field(default_factory=AutomaticReplies)
    manual_location: LocationLayer | None = None
    automatic_location: LocationLayer | None = None


@dataclass(frozen=True, slots=True)
class OutOfOfficeView:
    is_out_of_office: bool = False
    message: str | None = None


@dataclass(frozen=True, slots=True)
class WorkLocationView:
    work_location_type: WorkLocationType = WorkLocationType.UNSPECIFIED
    source: WorkLocationSource = WorkLocationSource.NONE
    place_id: str | None = None


@dataclass(frozen=True, slots=True)
class VisiblePresence:
    """What a reader sees (less the id and sequence number)."""

    availability: Availability = Availability.OFFLINE
    activity: Activity = Activity.OFFLINE
    out_of_office: OutOfOfficeView = OutOfOfficeView()
    status_message: StatusMessage | None = None
    work_location: WorkLocationView = WorkLocationView()


OFFLINE = VisiblePresence()
