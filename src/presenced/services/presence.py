"""Presence reads: who may see what. A read never writes.

A read shows the stored state: the last change committed, by a write or by the
background worker storing a change that time brought (within a second of its
time; at once when the emulator's clock is moved). Computing such a change at
read time instead would let a write that is committing at that moment store
a lower sequence number than the one the reader showed; shown only once stored,
sequence numbers follow the order in which the changes committed, in every
process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from presenced.auth.policy import Operation, Target, authorize, require_delegated, target_of
from presenced.auth.principal import Principal
from presenced.domain.sequence import PresenceState
from presenced.errors import BadRequest, ResourceNotFound
from presenced.services.entities import UserPresence
from presenced.services.ports import PresenceReader

#: getPresencesByUserId takes at most this many ids (docs/graph-api.md, "Paths").
MAX_IDS = 650


@dataclass(frozen=True, slots=True)
class PresenceView:
    """One user's presence as a given caller may see it."""

    user_id: str
    state: PresenceState
    #: Whether the caller is this user (delegated): only they see status-message times.
    own: bool


class PresenceService:
    def __init__(self, reader: PresenceReader) -> None:
        self._reader = reader

    async def get_my_presence(self, principal: Principal) -> PresenceView:
        return await self.get_presence(principal, require_delegated(principal))

    async def get_presence(self, principal: Principal, ref: str) -> PresenceView:
        """The presence of the user with object id or UPN ``ref``.

        The permission is checked before the user's existence is revealed: a
        caller who may only read their own presence gets 403, not 404, for
        anyone else.
        """
        found = await self._reader.load(principal.tenant_id, [ref])
        record = found[0] if found else None
        target = Target.OTHER if record is None else target_of(principal, record.user_id)
        authorize(principal, Operation.READ_PRESENCE, target)
        if record is None:
            raise ResourceNotFound(f"User '{ref[:128]}' was not found.")
        return PresenceView(record.user_id, record.state, target is Target.OWN)

    async def get_presences(self, principal: Principal, ids: Sequence[str]) -> list[PresenceView]:
        """The presence of many users in request order; unknown ids are left out."""
        authorize(principal, Operation.READ_PRESENCES, Target.ANY)
        if not 1 <= len(ids) <= MAX_IDS:
            raise BadRequest(f"'ids' must hold between 1 and {MAX_IDS} user ids, not {len(ids)}.")
        records = await self._reader.load(principal.tenant_id, ids)
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
                views.append(PresenceView(found.user_id, found.state, principal.is_self(found.user_id)))
        return views
