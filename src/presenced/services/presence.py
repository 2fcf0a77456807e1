"""Presence reads: who may see what, at the current instant. A read never writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from presenced.auth.policy import Operation, Target, authorize, require_delegated, target_of
from presenced.auth.principal import Principal
from presenced.clock import Clock
from presenced.domain.sequence import PresenceState, advance, is_due
from presenced.errors import BadRequest, ResourceNotFound
from presenced.services.ports import PresenceReader, UserPresence

#: getPresencesByUserId takes at most this many ids (Part B §2.3).
MAX_IDS = 650


@dataclass(frozen=True, slots=True)
class PresenceView:
    """One user's presence as a given caller may see it."""

    user_id: str
    state: PresenceState
    #: Whether the caller is this user (delegated): only they see status-message times.
    own: bool


class PresenceService:
    def __init__(self, reader: PresenceReader, clock: Clock) -> None:
        self._reader = reader
        self._clock = clock

    async def get_my_presence(self, principal: Principal) -> PresenceView:
        return await self.get_presence(principal, require_delegated(principal))

    async def get_presence(self, principal: Principal, ref: str) -> PresenceView:
        """The presence of the user with object id or UPN ``ref``.

        The permission is checked before the user's existence is revealed: a
        caller who may only read their own presence gets 403, not 404, for
        anyone else.
        """
        now = await self._clock.now()
        found = await self._reader.load(principal.tenant_id, [ref], now)
        record = found[0] if found else None
        target = Target.OTHER if record is None else target_of(principal, record.user_id)
        authorize(principal, Operation.READ_PRESENCE, target)
        if record is None:
            raise ResourceNotFound(f"User '{ref}' was not found.")
        return _view(record, target is Target.OWN, now)

    async def get_presences(self, principal: Principal, ids: Sequence[str]) -> list[PresenceView]:
        """The presence of many users in request order; unknown ids are left out."""
        authorize(principal, Operation.READ_PRESENCES, Target.ANY)
        if not 1 <= len(ids) <= MAX_IDS:
            raise BadRequest(f"'ids' must hold between 1 and {MAX_IDS} user ids, not {len(ids)}.")
        now = await self._clock.now()
        records = await self._reader.load(principal.tenant_id, ids, now)
        by_ref: dict[str, UserPresence] = {}
        for record in records:
            by_ref[record.user_id] = record
            if record.user_principal_name is not None:
                by_ref[record.user_principal_name.lower()] = record
        views: list[PresenceView] = []
        seen: set[str] = set()
        for ref in ids:
            found = by_ref.get(ref.lower())
            if found is not None and found.user_id not in seen:
                seen.add(found.user_id)
                views.append(_view(found, principal.is_self(found.user_id), now))
        return views


def _view(record: UserPresence, own: bool, now: datetime) -> PresenceView:
    # A transition the sweeper has not stored yet is computed here exactly as
    # the sweeper will store it (same visible presence, same sequence number).
    state = record.state
    if is_due(state, now):
        state, _ = advance(state, record.load_facts(), now)
    return PresenceView(record.user_id, state, own)
