"""Presence in the words and colours a Teams user knows."""

from __future__ import annotations

from dataclasses import dataclass

from presenced.domain.model import Activity, Availability, VisiblePresence, WorkLocationType

AVAILABILITY_WORDS: dict[str, str] = {
    Availability.AVAILABLE: "Available",
    Availability.AVAILABLE_IDLE: "Available, idle",
    Availability.AWAY: "Away",
    Availability.BE_RIGHT_BACK: "Be right back",
    Availability.BUSY: "Busy",
    Availability.BUSY_IDLE: "Busy, idle",
    Availability.DO_NOT_DISTURB: "Do not disturb",
    Availability.OFFLINE: "Offline",
    Availability.PRESENCE_UNKNOWN: "Status unknown",
}
ACTIVITY_WORDS: dict[str, str] = {
    Activity.AVAILABLE: "Available",
    Activity.AVAILABLE_INACTIVE: "Inactive",
    Activity.AWAY: "Away",
    Activity.BE_RIGHT_BACK: "Be right back",
    Activity.BUSY: "Busy",
    Activity.DO_NOT_DISTURB: "Do not disturb",
    Activity.IN_A_CALL: "In a call",
    Activity.IN_A_CONFERENCE_CALL: "In a conference call",
    Activity.INACTIVE: "Inactive",
    Activity.IN_A_MEETING: "In a meeting",
    Activity.OFFLINE: "Offline",
    Activity.OFF_WORK: "Off work",
    Activity.OUT_OF_OFFICE: "Out of office",
    Activity.PRESENCE_UNKNOWN: "Status unknown",
    Activity.PRESENTING: "Presenting",
    Activity.URGENT_INTERRUPTIONS_ONLY: "Urgent interruptions only",
}
LOCATION_WORDS: dict[str, str] = {
    WorkLocationType.UNSPECIFIED: "Not set",
    WorkLocationType.OFFICE: "In the office",
    WorkLocationType.REMOTE: "Remote",
    WorkLocationType.TIME_OFF: "Time off",
}

#: The statuses a person can choose (setUserPreferredPresence's pairs), in Teams' order.
CHOICES: tuple[tuple[str, str, str], ...] = (
    ("Available", "Available", "Available"),
    ("Busy", "Busy", "Busy"),
    ("DoNotDisturb", "DoNotDisturb", "Do not disturb"),
    ("BeRightBack", "BeRightBack", "Be right back"),
    ("Away", "Away", "Appear away"),
    ("Offline", "OffWork", "Appear offline"),
)


def words(availability: str, activity: str) -> str:
    """ "Busy", "Busy · In a call", "Available · Out of office": the availability, then the activity if it adds."""
    first = AVAILABILITY_WORDS.get(availability, availability)
    second = ACTIVITY_WORDS.get(activity, activity)
    return first if second == first else f"{first} · {second}"


@dataclass(frozen=True, slots=True)
class Shown:
    """One person's presence, ready for a page."""

    availability: str
    activity: str
    words: str
    status_message: str | None
    out_of_office: bool
    out_of_office_message: str | None
    location: str
    place_id: str | None


def shown(visible: VisiblePresence) -> Shown:
    location = visible.work_location
    return Shown(
        availability=visible.availability.value,
        activity=visible.activity.value,
        words=words(visible.availability.value, visible.activity.value),
        status_message=visible.status_message.content if visible.status_message else None,
        out_of_office=visible.out_of_office.is_out_of_office,
        out_of_office_message=visible.out_of_office.message,
        location=LOCATION_WORDS.get(location.work_location_type, location.work_location_type.value),
        place_id=location.place_id,
    )


def initials(display_name: str) -> str:
    parts = [p for p in display_name.replace("-", " ").split() if p[:1].isalnum()]
    return "".join(p[0] for p in parts[:2]).upper() or "?"


#: What the pages' scripts need to word a presence from the stream the same way.
VOCABULARY = {
    "availability": AVAILABILITY_WORDS,
    "activity": ACTIVITY_WORDS,
    "location": LOCATION_WORDS,
}
