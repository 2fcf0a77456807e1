"""Mailbox settings: the time zone and the automatic replies behind out of office
(docs/graph-api.md, "Mailbox settings")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from presenced.auth.policy import Operation
from presenced.auth.principal import Principal
from presenced.domain import changes as change
from presenced.domain.model import AutoReplyStatus, MailboxSettings, PresenceFacts
from presenced.errors import BadRequest
from presenced.services.actions import PresenceActions
from presenced.services.entities import Decision, StoredPresence, User
from presenced.services.inputs import enum_value, local_instant, text_value, zone_name
from presenced.services.ports import Directory
from presenced.services.writes import change_facts

EXTERNAL_AUDIENCES = ("none", "contactsOnly", "all")
#: Longest automatic-reply message kept (Exchange's own limit is 128 KB of HTML).
MAX_REPLY = 65_536


@dataclass(frozen=True, slots=True)
class LocalTime:
    """A ``dateTimeTimeZone`` as sent."""

    date_time: str | None
    time_zone: str | None


@dataclass(frozen=True, slots=True)
class RepliesPatch:
    """The ``automaticRepliesSetting`` members a PATCH sent; None leaves one as it is."""

    status: str | None = None
    external_audience: str | None = None
    internal_reply_message: str | None = None
    external_reply_message: str | None = None
    scheduled_start: LocalTime | None = None
    scheduled_end: LocalTime | None = None


class MailboxService:
    def __init__(self, actions: PresenceActions, directory: Directory) -> None:
        self._actions = actions
        self._directory = directory

    async def get(self, principal: Principal, ref: str | None) -> tuple[User, MailboxSettings]:
        user = await self._actions.target(principal, ref, Operation.READ_MAILBOX_SETTINGS)
        return user, await self._directory.mailbox_settings(user.id)

    async def update(
        self, principal: Principal, ref: str | None, time_zone: str | None, replies: RepliesPatch | None
    ) -> tuple[User, MailboxSettings]:
        """Apply a PATCH; out of office (and so presence) follows the automatic replies.

        The PATCH applies to the mailbox settings as they stand once the user is
        locked, so a write queued behind another keeps what that one stored.
        """
        user = await self._actions.target(principal, ref, Operation.WRITE_MAILBOX_SETTINGS)
        zone = zone_name(time_zone, "timeZone") if time_zone is not None else None

        def decide(stored: StoredPresence, now: datetime) -> Decision:
            updated = _patched(stored.mailbox, zone, replies)
            decided = change_facts(stored, now, _with_replies(updated), "mailboxSettings")
            return Decision(replace(decided.stored, mailbox=updated), decided.changes)

        decision = await self._actions.writer.write(user, decide)
        return user, decision.stored.mailbox


def _with_replies(settings: MailboxSettings) -> Callable[[PresenceFacts, datetime], PresenceFacts]:
    def mutation(facts: PresenceFacts, now: datetime) -> PresenceFacts:
        return change.set_automatic_replies(facts, settings.automatic_replies)

    return mutation


def _patched(current: MailboxSettings, zone: str | None, patch: RepliesPatch | None) -> MailboxSettings:
    settings = current if zone is None else replace(current, time_zone=zone)
    if patch is None:
        return settings
    replies = settings.automatic_replies
    if patch.status is not None:
        replies = replace(replies, status=enum_value(AutoReplyStatus, patch.status, "automaticRepliesSetting.status"))
    if patch.internal_reply_message is not None:
        message = text_value(patch.internal_reply_message, "automaticRepliesSetting.internalReplyMessage", MAX_REPLY)
        replies = replace(replies, internal_reply_message=message)
    if patch.external_reply_message is not None:
        message = text_value(patch.external_reply_message, "automaticRepliesSetting.externalReplyMessage", MAX_REPLY)
        replies = replace(replies, external_reply_message=message)
    if patch.external_audience is not None:
        settings = replace(settings, external_audience=_audience(patch.external_audience))
    if patch.scheduled_start is not None:
        start, start_zone = _local(patch.scheduled_start, "automaticRepliesSetting.scheduledStartDateTime")
        replies = replace(replies, scheduled_start=start)
        settings = replace(settings, scheduled_start_time_zone=start_zone)
    if patch.scheduled_end is not None:
        end, end_zone = _local(patch.scheduled_end, "automaticRepliesSetting.scheduledEndDateTime")
        replies = replace(replies, scheduled_end=end)
        settings = replace(settings, scheduled_end_time_zone=end_zone)
    if replies.status is AutoReplyStatus.SCHEDULED:
        if replies.scheduled_start is None or replies.scheduled_end is None:
            raise BadRequest(
                "'automaticRepliesSetting' with status scheduled needs scheduledStartDateTime and scheduledEndDateTime."
            )
        if replies.scheduled_end <= replies.scheduled_start:
            raise BadRequest("'automaticRepliesSetting.scheduledEndDateTime' must be after scheduledStartDateTime.")
    return replace(settings, automatic_replies=replies)


def _audience(raw: str) -> str:
    for value in EXTERNAL_AUDIENCES:
        if value.lower() == raw.lower():
            return value
    raise BadRequest(f"'automaticRepliesSetting.externalAudience' must be one of {', '.join(EXTERNAL_AUDIENCES)}.")


def _local(value: LocalTime, field: str) -> tuple[datetime, str]:
    return local_instant(value.date_time, value.time_zone, field)
