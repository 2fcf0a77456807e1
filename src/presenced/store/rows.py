"""Mapping between table rows and domain facts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from presenced.domain.model import (
    Activity,
    AutomaticReplies,
    AutoReplyStatus,
    Availability,
    LocationLayer,
    MailboxSettings,
    PreferredPresence,
    PresenceFacts,
    Session,
    StatusMessage,
    WorkLocationType,
)
from presenced.domain.sequence import PresenceState
from presenced.services.ports import StoredPresence, User, UserPresence
from presenced.store.codec import decode_visible, from_us, opt_from_us, opt_to_us, to_us

Row = Mapping[Any, Any]


def session_from_row(row: Row) -> Session:
    return Session(
        app_id=row["app_id"],
        availability=Availability(row["availability"]),
        activity=Activity(row["activity"]),
        refreshed_at=from_us(row["refreshed_us"]),
        expires_at=from_us(row["expires_us"]),
    )


def session_to_row(user_id: str, session: Session) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "app_id": session.app_id,
        "availability": session.availability.value,
        "activity": session.activity.value,
        "refreshed_us": to_us(session.refreshed_at),
        "expires_us": to_us(session.expires_at),
    }


def facts_from_rows(presence: Row, mailbox: Row | None, sessions: Iterable[Session]) -> PresenceFacts:
    """The facts of a user from the ``presences`` row, the mailbox row and the sessions."""
    preferred = None
    if presence["preferred_availability"] is not None:
        preferred = PreferredPresence(
            Availability(presence["preferred_availability"]),
            Activity(presence["preferred_activity"]),
            from_us(presence["preferred_expires_us"]),
        )
    status = None
    if presence["status_content"] is not None:
        status = StatusMessage(
            content=presence["status_content"],
            published_at=from_us(presence["status_published_us"]),
            expires_at=opt_from_us(presence["status_expires_us"]),
            expiry_time_zone=presence["status_expiry_time_zone"],
            content_type=presence["status_content_type"] or "text",
        )
    return PresenceFacts(
        sessions=tuple(sessions),
        preferred=preferred,
        status_message=status,
        automatic_replies=_replies_from_row(mailbox),
        manual_location=_layer(presence["manual_location_type"], presence["manual_place_id"]),
        automatic_location=_layer(presence["automatic_location_type"], presence["automatic_place_id"]),
    )


def facts_to_row(facts: PresenceFacts) -> dict[str, Any]:
    """The one-per-user facts as ``presences`` columns."""
    preferred, status = facts.preferred, facts.status_message
    manual, automatic = facts.manual_location, facts.automatic_location
    return {
        "preferred_availability": preferred.availability.value if preferred else None,
        "preferred_activity": preferred.activity.value if preferred else None,
        "preferred_expires_us": to_us(preferred.expires_at) if preferred else None,
        "status_content": status.content if status else None,
        "status_content_type": status.content_type if status else None,
        "status_published_us": to_us(status.published_at) if status else None,
        "status_expires_us": opt_to_us(status.expires_at) if status else None,
        "status_expiry_time_zone": status.expiry_time_zone if status else None,
        "manual_location_type": manual.work_location_type.value if manual else None,
        "manual_place_id": manual.place_id if manual else None,
        "automatic_location_type": automatic.work_location_type.value if automatic else None,
        "automatic_place_id": automatic.place_id if automatic else None,
    }


def replies_to_row(replies: AutomaticReplies) -> dict[str, Any]:
    return {
        "auto_reply_status": replies.status.value,
        "scheduled_start_us": opt_to_us(replies.scheduled_start),
        "scheduled_end_us": opt_to_us(replies.scheduled_end),
        "internal_reply_message": replies.internal_reply_message,
        "external_reply_message": replies.external_reply_message,
    }


def mailbox_from_row(row: Row | None) -> MailboxSettings:
    """Mailbox settings from a ``mailbox_settings`` row (defaults when there is none)."""
    if row is None:
        return MailboxSettings()
    return MailboxSettings(
        time_zone=row["time_zone"] or "UTC",
        automatic_replies=_replies_from_row(row),
        external_audience=row["external_audience"] or "all",
        scheduled_start_time_zone=row["scheduled_start_time_zone"],
        scheduled_end_time_zone=row["scheduled_end_time_zone"],
    )


def mailbox_to_row(settings: MailboxSettings) -> dict[str, Any]:
    """The mailbox columns that are not automatic-reply facts."""
    return {
        "time_zone": settings.time_zone,
        "external_audience": settings.external_audience,
        "scheduled_start_time_zone": settings.scheduled_start_time_zone,
        "scheduled_end_time_zone": settings.scheduled_end_time_zone,
    }


def state_from_row(row: Row) -> PresenceState:
    return PresenceState(
        visible=decode_visible(row["visible"]),
        sequence=row["sequence"],
        changed_at=from_us(row["changed_us"]),
        next_change_at=opt_from_us(row["next_change_us"]),
    )


def _replies_from_row(row: Row | None) -> AutomaticReplies:
    if row is None or row["auto_reply_status"] is None:
        return AutomaticReplies()
    return AutomaticReplies(
        status=AutoReplyStatus(row["auto_reply_status"]),
        scheduled_start=opt_from_us(row["scheduled_start_us"]),
        scheduled_end=opt_from_us(row["scheduled_end_us"]),
        internal_reply_message=row["internal_reply_message"],
        external_reply_message=row["external_reply_message"],
    )


def _layer(kind: str | None, place_id: str | None) -> LocationLayer | None:
    return None if kind is None else LocationLayer(WorkLocationType(kind), place_id)


def user_from_row(row: Row) -> User:
    return User(row["id"], row["tenant_id"], row["user_principal_name"], row["display_name"])


def user_presence(row: Row) -> UserPresence:
    """A user's stored presence from a row of the read query (``presenced.store.reads``)."""
    return UserPresence(row["id"], row["user_principal_name"], state_from_row(row))


_sessions_decoder = msgspec.json.Decoder(list[tuple[str, str, str, int, int]])


def stored_from_columns(row: Row | Any) -> StoredPresence:
    """A user's stored presence from a row of the writer's facts query (``batch_sql.FACTS``, by position).

    By position and without intermediate dicts: a sweep converts thousands of these.
    """
    preferred = None
    if row[2] is not None:
        preferred = PreferredPresence(Availability(row[2]), Activity(row[3]), from_us(row[4]))
    status = None
    if row[5] is not None:
        status = StatusMessage(row[5], from_us(row[7]), opt_from_us(row[8]), row[9], row[6] or "text")
    replies = AutomaticReplies()
    if row[19] is not None:
        replies = AutomaticReplies(
            AutoReplyStatus(row[19]), opt_from_us(row[20]), opt_from_us(row[22]), row[24], row[25]
        )
    sessions: tuple[Session, ...] = ()
    if row[27]:
        sessions = tuple(
            Session(app_id, Availability(availability), Activity(activity), from_us(refreshed), from_us(expires))
            for app_id, availability, activity, refreshed, expires in sorted(_sessions_decoder.decode(row[27]))
        )
    facts = PresenceFacts(
        sessions,
        preferred,
        status,
        replies,
        None if row[10] is None else LocationLayer(WorkLocationType(row[10]), row[11]),
        None if row[12] is None else LocationLayer(WorkLocationType(row[12]), row[13]),
    )
    state = PresenceState(decode_visible(row[14]), row[15], from_us(row[16]), opt_from_us(row[17]))
    mailbox = (
        MailboxSettings(row[18] or "UTC", replies, row[26] or "all", row[21], row[23])
        if row[19] is not None
        else MailboxSettings()
    )
    return StoredPresence(facts, state, mailbox)
