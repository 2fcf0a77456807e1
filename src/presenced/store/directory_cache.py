"""What token requests read of the directory, kept in each process (docs/identity.md, "What each process
keeps").

A token request reads the tenant, the app registration with its secrets' hashes, the service
principals, the grants or app role assignments, and for a user flow the account: five or six
queries, for data that changes seldom. ``CachedIdentityStore`` keeps these lookups, and forgets
all of them whenever the directory changes:

- in the process that made the change, at once: every transaction that changes the directory
  calls ``DirectoryCache.forget`` after its commit, before the call that made it returns
  (``SqlStore.after_directory_commit``);
- in every other process within a second: the same transaction raises the directory's version
  (``identity_version``), and a process that serves a lookup from its cache first reads that
  version again if it last began to read it a second ago or more (one tiny query a second, on the
  first lookup after it is due); when it moved, everything is forgotten. With Redis, the commit also
  publishes a word that makes every process forget at once (``notify.fanout``); the version is
  still read each second, so a lost word costs no more than that second.

So a revoked grant, a removed secret or app role assignment, a deleted app or user is refused by
the process that removed it at once, and by every other within a second. Lookups that find
nothing are not kept: an app registered or a user added in one process is found by the others at
once. Lists are kept as they were read, empty ones too: a grant given or an assignment added
reaches a process that keeps the client's grants or assignments within the second, like every
change.

A lookup that began before the cache was last emptied is not kept (it may have read what the change
replaced), and at most ``MAX_ENTRIES`` lookups are kept (the oldest go first).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Any, TypeVar

from presenced.services.entities import (
    Account,
    Application,
    AppRoleAssignment,
    PermissionGrant,
    ServicePrincipal,
    Tenant,
)
from presenced.store.identity import SqlIdentityStore
from presenced.store.presence import SqlStore
from presenced.store.token_state import TokenState

#: How long the directory's version, once read, is taken as current: the bound on how late another
#: process's change reaches this one.
CHECK_SECONDS = 1.0
MAX_ENTRIES = 10_000

T = TypeVar("T")


class DirectoryCache:
    """Lookups kept until the directory changes; ``version`` reads the directory's version."""

    def __init__(
        self,
        version: Callable[[], Awaitable[int]],
        *,
        check_seconds: float = CHECK_SECONDS,
        max_entries: int = MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_version = version
        self.check_seconds = check_seconds
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._entries: dict[Hashable, Any] = {}
        #: Raised by every ``forget``: a lookup that began under an older one is not kept.
        self._generation = 0
        self._version: int | None = None
        #: When the last reading of the version that succeeded began.
        self._checked = -float("inf")
        self._checking: asyncio.Task[None] | None = None

    def forget(self) -> None:
        """The directory changed: forget every lookup."""
        self._entries.clear()
        self._generation += 1

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T]], keep: Callable[[T], bool]) -> T:
        """The lookup ``key``: kept, else ``load()``'s answer, kept if ``keep(answer)``."""
        if self._monotonic() - self._checked >= self.check_seconds:
            await self._check()
        try:
            found: T = self._entries[key]
        except KeyError:
            pass
        else:
            return found
        generation = self._generation
        value = await load()
        if generation == self._generation and keep(value):
            if len(self._entries) >= self._max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = value
        return value

    async def _check(self) -> None:
        """Read the directory's version (one reading at a time, which every lookup due waits for)."""
        if self._checking is None:
            self._checking = asyncio.get_running_loop().create_task(self._read())
        await asyncio.shield(self._checking)

    async def _read(self) -> None:
        started = self._monotonic()
        try:
            version = await self._read_version()
        finally:
            self._checking = None
        if version != self._version:
            self.forget()
            self._version = version
        self._checked = started


class CachedIdentityStore(SqlIdentityStore):
    """``SqlIdentityStore`` whose lookups on a token request's way are kept in a ``DirectoryCache``.

    The transactions that change the directory are ``SqlIdentityStore``'s own, unchanged: the composition
    empties the cache after each (``SqlStore.after_directory_commit``).
    """

    def __init__(self, store: SqlStore, tokens: TokenState, check_seconds: float = CHECK_SECONDS) -> None:
        super().__init__(store, tokens)
        self.cache = DirectoryCache(self.directory_version, check_seconds=check_seconds)

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        load = partial(SqlIdentityStore.get_tenant, self, tenant_id)
        return await self.cache.get(("tenant", tenant_id.lower()), load, _found)

    async def find_account(self, tenant_id: str | None, ref: str) -> Account | None:
        if tenant_id is None or "@" in ref:
            # Sign-in finds people by UPN, and must see a changed password at once: not kept.
            return await super().find_account(tenant_id, ref)
        load = partial(SqlIdentityStore.find_account, self, tenant_id, ref)
        return await self.cache.get(("account", tenant_id.lower(), ref.lower()), load, _found)

    async def find_application(self, app_id: str) -> Application | None:
        load = partial(SqlIdentityStore.find_application, self, app_id)
        return await self.cache.get(("app", app_id.lower()), load, _found)

    async def list_applications(self, tenant_id: str) -> list[Application]:
        load = partial(_tuple, SqlIdentityStore.list_applications, self, tenant_id)
        return list(await self.cache.get(("apps", tenant_id), load, _any))

    async def find_service_principal(self, tenant_id: str, app_id: str) -> ServicePrincipal | None:
        load = partial(SqlIdentityStore.find_service_principal, self, tenant_id, app_id)
        return await self.cache.get(("sp", tenant_id, app_id.lower()), load, _found)

    async def grants_for(self, client_id: str, resource_id: str, user_id: str | None) -> list[PermissionGrant]:
        load = partial(_tuple, SqlIdentityStore.grants_for, self, client_id, resource_id, user_id)
        return list(await self.cache.get(("grants", client_id, resource_id, user_id), load, _any))

    async def list_assignments(self, tenant_id: str, principal_id: str | None = None) -> list[AppRoleAssignment]:
        if principal_id is None:
            return await super().list_assignments(tenant_id)
        load = partial(_tuple, SqlIdentityStore.list_assignments, self, tenant_id, principal_id)
        return list(await self.cache.get(("assignments", tenant_id, principal_id), load, _any))


def _found(value: object) -> bool:
    return value is not None


def _any(value: object) -> bool:
    return True


async def _tuple(method: Callable[..., Awaitable[list[T]]], *args: Any) -> tuple[T, ...]:
    """A list lookup's answer as a tuple, which no caller can change in the cache."""
    return tuple(await method(*args))
