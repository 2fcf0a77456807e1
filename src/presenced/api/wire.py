"""The Graph JSON shapes, as msgspec structs: domain ↔ wire.

These structs are what the API encodes and decodes, and what ``/openapi.json``
is generated from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from presenced.domain import timezones
from presenced.domain.model import (
    Activity,
    Availability,
    MailboxSettings,
    StatusMessage,
    VisiblePresence,
    WorkLocationSource,
    WorkLocationType,
)
from presenced.domain.sequence import format_sequence
from presenced.services.presence import MAX_IDS, PresenceView


class ItemBody(Struct, kw_only=True, rename="camel"):
    content: str | None
    content_type: str = "text"


class DateTimeTimeZone(Struct, kw_only=True, rename="camel"):
    date_time: str
    time_zone: str | None


class PresenceStatusMessage(Struct, kw_only=True, rename="camel"):
    message: ItemBody
    #: Shown only to the user themself, and only when the message expires.
    expiry_date_time: DateTimeTimeZone | UnsetType = UNSET
    #: Shown only to the user themself.
    published_date_time: str | UnsetType = UNSET


class OutOfOfficeSettings(Struct, kw_only=True, rename="camel"):
    message: str | None
    is_out_of_office: bool


class UserWorkLocation(Struct, kw_only=True, rename="camel"):
    work_location_type: WorkLocationType
    source: WorkLocationSource
    place_id: str | None


class Presence(Struct, kw_only=True, rename={"odata_context": "@odata.context"}):
    """``microsoft.graph.presence`` (docs/graph-api.md, "The presence object": every property always present)."""

    odata_context: str | UnsetType = UNSET
    id: str
    availability: Availability
    activity: Activity
    outOfOfficeSettings: OutOfOfficeSettings
    statusMessage: PresenceStatusMessage | None
    sequenceNumber: str
    workLocation: UserWorkLocation


PRESENCE_PROPERTIES = frozenset(
    ("id", "availability", "activity", "outOfOfficeSettings", "statusMessage", "sequenceNumber", "workLocation")
)


class PresenceCollection(Struct, kw_only=True, rename={"odata_context": "@odata.context"}):
    odata_context: str
    value: list[Presence]


UserId = Annotated[str, Meta(max_length=320, description="A user's object id (GUID) or userPrincipalName")]


class GetPresencesByUserIdRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    ids: Annotated[list[UserId], Meta(min_length=1, max_length=MAX_IDS)]


class InnerError(Struct, kw_only=True, rename={"request_id": "request-id", "client_request_id": "client-request-id"}):
    date: str
    request_id: str
    client_request_id: str


class ErrorDetail(Struct, kw_only=True, rename="camel"):
    code: str
    message: str
    inner_error: InnerError


class ErrorResponse(Struct, kw_only=True):
    error: ErrorDetail


# --- encoding -------------------------------------------------------------------------------------


def graph_datetime(instant: datetime) -> str:
    """Graph's ``DateTimeOffset`` form: UTC, seven fraction digits, ``Z``."""
    u = instant.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}0Z"


def local_datetime(instant: datetime, time_zone: str | None) -> DateTimeTimeZone:
    """A ``dateTimeTimeZone`` for ``instant`` shown in ``time_zone`` (Windows or IANA; UTC if unknown)."""
    zone_name = time_zone or "UTC"
    try:
        return DateTimeTimeZone(date_time=timezones.format_local(instant, zone_name), time_zone=zone_name)
    except ValueError:
        return DateTimeTimeZone(date_time=timezones.format_local(instant, "UTC"), time_zone="UTC")


def _status_message(status: StatusMessage | None, own: bool) -> PresenceStatusMessage | None:
    if status is None:
        return None
    wire = PresenceStatusMessage(message=ItemBody(content=status.content, content_type=status.content_type))
    if own:
        wire.published_date_time = graph_datetime(status.published_at)
        if status.expires_at is not None:
            wire.expiry_date_time = local_datetime(status.expires_at, status.expiry_time_zone)
    return wire


def presence(view: PresenceView, context: str | UnsetType = UNSET) -> Presence:
    visible: VisiblePresence = view.state.visible
    location = visible.work_location
    return Presence(
        odata_context=context,
        id=view.user_id,
        availability=visible.availability,
        activity=visible.activity,
        outOfOfficeSettings=OutOfOfficeSettings(
            message=visible.out_of_office.message, is_out_of_office=visible.out_of_office.is_out_of_office
        ),
        statusMessage=_status_message(visible.status_message, view.own),
        sequenceNumber=format_sequence(view.state.sequence),
        workLocation=UserWorkLocation(
            work_location_type=location.work_location_type, source=location.source, place_id=location.place_id
        ),
    )


_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


class PresenceEncoder:
    """Encodes presences, keeping each user's latest encoding.

    A presence's JSON depends only on the user, the sequence number and whether
    the reader is the user: one sequence number is one visible presence (docs/graph-api.md, "The presence object").
    So an encoding is right for as long as its sequence number is the one read. The cache holds one
    encoding per user and kind of reader, replaced when a newer sequence number is read: its size
    follows the number of users read, not the number of changes (bounded, oldest out first).
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._members: dict[tuple[str, bool], tuple[int, bytes]] = {}

    def members(self, view: PresenceView) -> bytes:
        """The presence object's members, without the braces."""
        key = (view.user_id, view.own)
        sequence = view.state.sequence
        found = self._members.get(key)
        if found is not None and found[0] == sequence:
            return found[1]
        encoded = _encoder.encode(presence(view))[1:-1]
        if found is None and len(self._members) >= self._size:
            del self._members[next(iter(self._members))]
        if found is None or found[0] < sequence:
            self._members[key] = (sequence, encoded)
        return encoded

    def one(self, view: PresenceView, context: str) -> bytes:
        return b'{"@odata.context":' + _encoder.encode(context) + b"," + self.members(view) + b"}"

    def collection(self, views: list[PresenceView], context: str) -> bytes:
        items = b",".join(b"{" + self.members(view) + b"}" for view in views)
        return b'{"@odata.context":' + _encoder.encode(context) + b',"value":[' + items + b"]}"


def select(value: Presence, properties: tuple[str, ...]) -> dict[str, Any]:
    """The presence with only ``properties`` (and ``@odata.context``, ``id``)."""
    full: dict[str, Any] = msgspec.to_builtins(value)
    keep = {"@odata.context", "id", *properties}
    return {k: v for k, v in full.items() if k in keep}


# --- write actions ----------------------------------------------------------------------------------
# Every member is optional at this level so that a missing one is reported by
# name by the service ("'availability' is required"); a wrong type is reported
# by msgspec with its path ("Expected `str | null`, got `int` - at `$.activity`").


class SetPresenceRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    sessionId: str | None = None
    availability: str | None = None
    activity: str | None = None
    expirationDuration: str | None = None


class ClearPresenceRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    sessionId: str | None = None


class SetUserPreferredPresenceRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    availability: str | None = None
    activity: str | None = None
    expirationDuration: str | None = None


class EmptyRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """Actions without parameters take no body, or ``{}``."""


class ItemBodyInput(Struct, kw_only=True, forbid_unknown_fields=True):
    content: str | None = None
    contentType: str | None = None


class DateTimeTimeZoneInput(Struct, kw_only=True, forbid_unknown_fields=True):
    dateTime: str | None = None
    timeZone: str | None = None


class StatusMessageInput(Struct, kw_only=True, forbid_unknown_fields=True):
    message: ItemBodyInput | None = None
    expiryDateTime: DateTimeTimeZoneInput | None = None
    #: Set by the server; a client's value is ignored.
    publishedDateTime: str | None = None


class SetStatusMessageRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    statusMessage: StatusMessageInput | None = None


class WorkLocationRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    workLocationType: str | None = None
    placeId: str | None = None


# --- mailbox settings -------------------------------------------------------------------------------


class AutomaticRepliesSetting(Struct, kw_only=True, rename="camel"):
    status: str
    external_audience: str
    internal_reply_message: str
    external_reply_message: str
    scheduled_start_date_time: DateTimeTimeZone | None
    scheduled_end_date_time: DateTimeTimeZone | None


class MailboxSettingsBody(
    Struct,
    kw_only=True,
    rename={
        "odata_context": "@odata.context",
        "time_zone": "timeZone",
        "automatic_replies_setting": "automaticRepliesSetting",
    },
):
    odata_context: str
    time_zone: str
    automatic_replies_setting: AutomaticRepliesSetting


class AutomaticRepliesPatch(Struct, kw_only=True, forbid_unknown_fields=True):
    status: str | None = None
    externalAudience: str | None = None
    internalReplyMessage: str | None = None
    externalReplyMessage: str | None = None
    scheduledStartDateTime: DateTimeTimeZoneInput | None = None
    scheduledEndDateTime: DateTimeTimeZoneInput | None = None


class MailboxSettingsPatch(Struct, kw_only=True, forbid_unknown_fields=True):
    timeZone: str | None = None
    automaticRepliesSetting: AutomaticRepliesPatch | None = None


def mailbox_settings(settings: MailboxSettings, context: str) -> MailboxSettingsBody:
    replies = settings.automatic_replies
    start = replies.scheduled_start
    end = replies.scheduled_end
    return MailboxSettingsBody(
        odata_context=context,
        time_zone=settings.time_zone,
        automatic_replies_setting=AutomaticRepliesSetting(
            status=replies.status.value,
            external_audience=settings.external_audience,
            internal_reply_message=replies.internal_reply_message or "",
            external_reply_message=replies.external_reply_message or "",
            scheduled_start_date_time=None
            if start is None
            else local_datetime(start, settings.scheduled_start_time_zone),
            scheduled_end_date_time=None if end is None else local_datetime(end, settings.scheduled_end_time_zone),
        ),
    )


# --- emulator ---------------------------------------------------------------------------------------


class ClockMove(Struct, kw_only=True, forbid_unknown_fields=True, rename={"to": "set"}):
    advance: str | None = None
    to: datetime | None = None


class ClockReading(Struct, kw_only=True):
    now: str
