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
from presenced.domain.sequence import PresenceState, upcoming_of
from presenced.services.entities import StoredPresence, User, UserPresence
from presenced.store.batch_sql import MAILBOX
from presenced.store.codec import decode_steps, decode_visible, from_us, opt_from_us, opt_to_us, to_us

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
    """The state as shown (the upcoming changes left out)."""
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
_AVAILABILITY = {member.value: member for member in Availability}
_ACTIVITY = {member.value: member for member in Activity}
#: Mailbox settings by their stored columns: most users share a few (the defaults, to begin with).
_mailboxes: dict[tuple[Any, ...], MailboxSettings] = {}


def state_from_columns(row: Row | Any, at: int) -> PresenceState:
    """The state stored in ``row[at:at + 5]`` (``batch_sql.PRESENCE_STATE``), upcoming changes included."""
    if row[at + 4] is None:
        raise ValueError("the row does not carry its upcoming changes")
    return PresenceState(
        decode_visible(row[at]), row[at + 1], from_us(row[at + 2]), opt_from_us(row[at + 3]), decode_steps(row[at + 4])
    )


def stored_from_columns(row: Row | Any) -> StoredPresence:
    """A user's stored presence from a row of the writer's facts query (``batch_sql`` ``facts``, by position).

    By position and without intermediate dicts: a batch converts hundreds of these. A row stored
    before upcoming changes were kept gets them from its facts.
    """
    preferred = None
    if row[2] is not None:
        preferred = PreferredPresence(_AVAILABILITY[row[2]], _ACTIVITY[row[3]], from_us(row[4]))
    status = None
    if row[5] is not None:
        status = StatusMessage(row[5], from_us(row[7]), opt_from_us(row[8]), row[9], row[6] or "text")
    mailbox = _mailbox(tuple(row[19:28]))
    sessions: tuple[Session, ...] = ()
    if row[28] and row[28] != "[]":
        sessions = tuple(
            Session(app_id, _AVAILABILITY[availability], _ACTIVITY[activity], from_us(refreshed), from_us(expires))
            for app_id, availability, activity, refreshed, expires in sorted(_sessions_decoder.decode(row[28]))
        )
    facts = PresenceFacts(
        sessions,
        preferred,
        status,
        mailbox.automatic_replies,
        None if row[10] is None else LocationLayer(WorkLocationType(row[10]), row[11]),
        None if row[12] is None else LocationLayer(WorkLocationType(row[12]), row[13]),
    )
    if row[18] is None:
        visible = decode_visible(row[14])
        state = upcoming_of(PresenceState(visible, row[15], from_us(row[16]), opt_from_us(row[17])), facts)
    else:
        state = state_from_columns(row, 14)
    return StoredPresence(facts, state, mailbox)


def _mailbox(columns: tuple[Any, ...]) -> MailboxSettings:
    """Mailbox settings from the columns of ``batch_sql.MAILBOX`` (all None: the user has no row)."""
    found = _mailboxes.get(columns)
    if found is None:
        found = mailbox_from_row(None if columns[1] is None else dict(zip(MAILBOX, columns, strict=True)))
        if len(_mailboxes) >= 1024:
            _mailboxes.clear()
        _mailboxes[columns] = found
    return found
