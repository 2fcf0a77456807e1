"""Single presence reads from memory: each process keeps the stored state of the users it read lately.

A read by object id (``/me/presence``, ``/users/{id}/presence``, ``/communications/presences/{id}``)
is answered from the cache when the entry is younger than ``MAX_AGE``, without a query. An entry
goes (docs/architecture.md, "The read hot path"):

- when this process stores a change of the user (the writer and the sweeper tell the cache after
  the commit and before anyone is answered), so a process reads its own writes at once;
- when this process deletes the user;
- when the change feed, which every process reads (every 0.1 s, or at once on a Redis wake-up),
  brings a change of the user committed by another process;
- in any case ``MAX_AGE`` after it was read, which bounds what nothing above covers (a user deleted
  through another process, a feed that could not be read): a write acknowledged by any process is
  read by every process within ``MAX_AGE``.

Reads by UPN and of many users (``getPresencesByUserId``) always query.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from presenced.services.entities import LoggedChange, UserPresence
from presenced.services.ports import PresenceReader

#: Seconds an entry is used for at most: the bound on how stale a read of any process can be.
MAX_AGE = 1.0
#: Entries kept at most; past it, the oldest go first.
MAX_ENTRIES = 100_000


class CachedPresenceReader:
    """A ``PresenceReader`` that answers single reads by object id from memory (see the module)."""

    def __init__(
        self,
        reader: PresenceReader,
        max_age: float = MAX_AGE,
        max_entries: int = MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._max_age = max_age
        self._max_entries = max_entries
        self._monotonic = monotonic
        #: user id → (tenant id, the stored presence, when it was read)
        self._entries: dict[str, tuple[str, UserPresence, float]] = {}
        #: Rises with every forgetting: a read that began before one must not store what it read.
        self._generation = 0
        self.hits = 0

    async def load(self, tenant_id: str, refs: Sequence[str]) -> list[UserPresence]:
        if len(refs) != 1 or "@" in refs[0]:
            return await self._reader.load(tenant_id, refs)
        key = refs[0].lower()
        entry = self._entries.get(key)
        now = self._monotonic()
        if entry is not None and entry[0] == tenant_id and now - entry[2] < self._max_age:
            self.hits += 1
            return [entry[1]]
        generation = self._generation
        found = await self._reader.load(tenant_id, refs)
        if len(found) == 1 and found[0].user_id == key and generation == self._generation:
            self._entries.pop(key, None)  # re-inserted last: the oldest entries are first
            self._entries[key] = (tenant_id, found[0], now)
            if len(self._entries) > self._max_entries:
                del self._entries[next(iter(self._entries))]
        return found

    def forget(self, user_ids: Iterable[str]) -> None:
        """These users' presence changed (or they are gone): read them again."""
        self._generation += 1
        for user_id in user_ids:
            self._entries.pop(user_id, None)

    def forget_user(self, user_id: str) -> None:
        self.forget((user_id,))

    def forget_everyone(self) -> None:
        """Read everyone again (the store was emptied or replaced underneath, as tests do)."""
        self._generation += 1
        self._entries.clear()

    def changed(self, entries: Sequence[LoggedChange]) -> None:
        """Changes the change feed brought (any process's)."""
        self.forget(entry.user_id for entry in entries)

    def __len__(self) -> int:
        return len(self._entries)
