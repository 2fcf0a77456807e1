"""Presence history and "last seen", an extension (docs/graph-api.md, "Presence history and last seen"):
the change log read back for one user, by whoever may read that user's presence, and kept for a
retention period.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from presenced.auth.principal import Principal
from presenced.clock import Clock
from presenced.domain.model import Availability
from presenced.domain.sequence import PresenceState
from presenced.services.entities import LoggedChange
from presenced.services.loops import repeat
from presenced.services.ports import ChangeLog
from presenced.services.presence import PresenceService, PresenceView

log = logging.getLogger("presenced.history")

#: How often the worker deletes what is past the retention period, in seconds.
PURGE_INTERVAL = 3600.0
#: How many entries one look back for "last seen" reads at a time.
_STEP = 200
#: How many of each user's newest entries "last seen" of many users reads at once; a user whose newest entries
#: are all Offline (a status message changed while Offline, say) is then read on, on their own.
RECENT_PER_USER = 8


@dataclass(frozen=True, slots=True)
class HistoryPage:
    user_id: str
    changes: tuple[LoggedChange, ...]
    #: Where the next page starts (the last entry's id); None on the last page.
    next_after: int | None


@dataclass(frozen=True, slots=True)
class Seen:
    """A user's presence and when they were last seen."""

    view: PresenceView
    #: The last instant the presence was not Offline: now while it is not; None when the history kept shows none.
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class Period:
    """A user's presence over a period: how it stood when the period began, and its changes in it."""

    user_id: str
    #: The presence when the period began; None when the history kept does not reach back that far.
    opening: PresenceState | None
    #: The changes made in the period, oldest first (at most the ``limit`` asked for).
    changes: tuple[LoggedChange, ...]
    #: Whether the period holds more changes than ``changes``.
    more: bool


class PresenceHistory:
    def __init__(self, presence: PresenceService, log_: ChangeLog, clock: Clock, retention: timedelta) -> None:
        self._presence = presence
        self._log = log_
        self._clock = clock
        self.retention = retention

    async def page(
        self, principal: Principal, ref: str, start: datetime | None, end: datetime | None, after: int, limit: int
    ) -> HistoryPage:
        """The user's changes in [start, end), oldest first, a page of ``limit`` after the entry ``after``."""
        view = await self._presence.get_presence(principal, ref)  # authorizes as reading that presence
        found = await self._log.history(principal.tenant_id, view.user_id, start, end, after, limit + 1)
        more = len(found) > limit
        changes = tuple(found[:limit])
        return HistoryPage(view.user_id, changes, changes[-1].id if more else None)

    async def period(self, principal: Principal, ref: str, start: datetime, end: datetime, limit: int) -> Period:
        """The user's presence over [start, end): how it stood at ``start`` and up to ``limit`` changes made in it."""
        view = await self._presence.get_presence(principal, ref)  # authorizes as reading that presence
        tenant_id, user_id = principal.tenant_id, view.user_id
        found = await self._log.history(tenant_id, user_id, start, end, 0, limit + 1)
        changes = tuple(found[:limit])
        # The presence at ``start`` is the one the entry before the first made from ``start`` on left.
        first = changes[:1] or tuple(await self._log.history(tenant_id, user_id, start, None, 0, 1))
        before = await self._log.changes_before(tenant_id, user_id, first[0].id if first else None, 1)
        if before:
            opening: PresenceState | None = before[0].state
        elif not first and view.state.changed_at <= start:
            opening = view.state  # nothing logged, and nothing changed since before ``start``
        else:
            opening = None
        return Period(user_id, opening, changes, len(found) > limit)

    async def last_seen(self, principal: Principal, ref: str) -> tuple[str, datetime | None]:
        """The user's id and the last instant their presence was not Offline: now while it is not; None when
        the history kept shows no such instant."""
        view = await self._presence.get_presence(principal, ref)
        if view.state.visible.availability is not Availability.OFFLINE:
            return view.user_id, await self._clock.now()
        newest = await self._log.changes_before(principal.tenant_id, view.user_id, None, _STEP)
        return view.user_id, await self._seen(principal.tenant_id, view.user_id, newest, _STEP)

    async def last_seen_many(self, principal: Principal, ids: Sequence[str]) -> list[Seen]:
        """The presence of many users, as ``PresenceService.get_presences`` reads it, each with when they were last
        seen (as ``last_seen``): the change log is read in one query for all of them, not once a user."""
        views = await self._presence.get_presences(principal, ids)  # authorizes as reading their presence
        now = await self._clock.now()
        offline = [v.user_id for v in views if v.state.visible.availability is Availability.OFFLINE]
        newest: dict[str, list[LoggedChange]] = {user_id: [] for user_id in offline}
        if offline:
            for change in await self._log.latest_changes(principal.tenant_id, offline, RECENT_PER_USER):
                newest[change.user_id].append(change)
        return [
            Seen(
                view,
                await self._seen(principal.tenant_id, view.user_id, newest[view.user_id], RECENT_PER_USER)
                if view.user_id in newest
                else now,
            )
            for view in views
        ]

    async def _seen(self, tenant_id: str, user_id: str, newest: list[LoggedChange], asked: int) -> datetime | None:
        """When an Offline user was last seen, from their newest entries (newest first, ``asked`` of them were
        asked for), reading on where they do not tell."""
        # Newest first: the first entry that is not Offline ended when the entry after it (Offline) began.
        later: LoggedChange | None = None
        batch = newest
        while True:
            for change in batch:
                if change.state.visible.availability is not Availability.OFFLINE:
                    return later.state.changed_at if later is not None else None
                later = change
            if len(batch) < asked:
                return None
            batch = await self._log.changes_before(tenant_id, user_id, batch[-1].id, _STEP)
            asked = _STEP

    async def purge(self) -> int:
        """Delete the history older than the retention period."""
        return await self._log.purge_changes(await self._clock.now() - self.retention)

    async def purge_forever(self) -> NoReturn:
        await repeat(self.purge, PURGE_INTERVAL, "history purge", log)
