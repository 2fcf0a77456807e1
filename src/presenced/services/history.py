"""Presence history and "last seen", an extension (docs/graph-api.md, "Presence history and last seen"):
the change log read back for one user, by whoever may read that user's presence, and kept for a
retention period.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from presenced.auth.principal import Principal
from presenced.clock import Clock
from presenced.domain.model import Availability
from presenced.services.entities import LoggedChange
from presenced.services.loops import repeat
from presenced.services.ports import ChangeLog
from presenced.services.presence import PresenceService

log = logging.getLogger("presenced.history")

#: How often the worker deletes what is past the retention period, in seconds.
PURGE_INTERVAL = 3600.0
#: How many entries one look back for "last seen" reads at a time.
_STEP = 200


@dataclass(frozen=True, slots=True)
class HistoryPage:
    user_id: str
    changes: tuple[LoggedChange, ...]
    #: Where the next page starts (the last entry's id); None on the last page.
    next_after: int | None


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

    async def last_seen(self, principal: Principal, ref: str) -> tuple[str, datetime | None]:
        """The user's id and the last instant their presence was not Offline: now while it is not; None when
        the history kept shows no such instant."""
        view = await self._presence.get_presence(principal, ref)
        if view.state.visible.availability is not Availability.OFFLINE:
            return view.user_id, await self._clock.now()
        # Newest first: the first entry that is not Offline ended when the entry after it (Offline) began.
        later: LoggedChange | None = None
        before: int | None = None
        while True:
            batch = await self._log.changes_before(principal.tenant_id, view.user_id, before, _STEP)
            for change in batch:
                if change.state.visible.availability is not Availability.OFFLINE:
                    return view.user_id, later.state.changed_at if later is not None else None
                later = change
            if len(batch) < _STEP:
                return view.user_id, None
            before = batch[-1].id

    async def purge(self) -> int:
        """Delete the history older than the retention period."""
        return await self._log.purge_changes(await self._clock.now() - self.retention)

    async def purge_forever(self) -> NoReturn:
        await repeat(self.purge, PURGE_INTERVAL, "history purge", log)
