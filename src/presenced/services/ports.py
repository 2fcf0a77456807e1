"""What the services need from storage, as protocols. The store implements them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from presenced.domain.model import MailboxSettings, PresenceFacts
from presenced.domain.sequence import Change, PresenceState


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    display_name: str


@dataclass(frozen=True, slots=True)
class User:
    id: str
    tenant_id: str
    user_principal_name: str
    display_name: str


@dataclass(frozen=True, slots=True)
class UserPresence:
    """A user's stored presence state.

    ``user_principal_name`` is known when the user was looked up by UPN or in a
    batch, else None.
    """

    user_id: str
    user_principal_name: str | None
    state: PresenceState


class PresenceReader(Protocol):
    async def load(self, tenant_id: str, refs: Sequence[str]) -> list[UserPresence]:
        """The stored presence of the tenant's users named by object id or UPN, in one query.

        Refs that match no user of the tenant are left out; order is not kept.
        """
        ...


class UserFinder(Protocol):
    async def find_user(self, tenant_id: str, ref: str) -> User | None: ...


class Directory(Protocol):
    async def tenant_exists(self, tenant_id: str) -> bool: ...

    async def find_user(self, tenant_id: str, ref: str) -> User | None:
        """The tenant's user with this object id or UPN (case-insensitive)."""
        ...

    async def mailbox_settings(self, user_id: str) -> MailboxSettings:
        """The user's mailbox settings (defaults if none were ever set)."""
        ...


class Transaction(Protocol):
    async def find_user(self, tenant_id: str, ref: str) -> User | None:
        """As ``Directory.find_user``, inside this transaction."""
        ...

    async def put_tenant(self, tenant: Tenant, now: datetime) -> None:
        """Create the tenant, or rename it if it exists."""
        ...

    async def put_user(self, user: User, now: datetime) -> None:
        """Create the user with an Offline presence, or update its names if it exists."""
        ...

    async def lock_presence(self, user_id: str) -> tuple[PresenceFacts, PresenceState]:
        """The user's facts and state, locked against other writers until commit."""
        ...

    async def save_presence(
        self, user: User, facts: PresenceFacts, state: PresenceState, previous: PresenceFacts | None = None
    ) -> None:
        """Store the facts and state; with ``previous``, only the facts that differ from it."""
        ...

    async def append_changes(self, user: User, changes: Sequence[Change]) -> None:
        """Add change-log entries, one per change of the visible presence."""
        ...

    async def lock_due(self, now: datetime, limit: int, skip_locked: bool = True) -> list[User]:
        """Up to ``limit`` users whose next transition is at or before ``now``, locked.

        With ``skip_locked``, users another transaction holds are skipped, not waited for.
        """
        ...

    async def mailbox_settings(self, user_id: str) -> MailboxSettings:
        """The user's mailbox settings as this transaction sees them."""
        ...

    async def save_mailbox_settings(self, user: User, settings: MailboxSettings) -> None:
        """The mailbox settings other than the automatic replies (saved with the presence)."""
        ...


class ManualClock(Protocol):
    """The emulator's clock: it moves only when told."""

    async def now(self) -> datetime: ...

    async def move(self, decide: Callable[[datetime], datetime]) -> datetime:
        """Set the time to ``decide(current time)``, atomically; the new time."""
        ...


class UnitOfWork(Protocol):
    def begin(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction that commits when the block ends normally, else rolls back."""
        ...
