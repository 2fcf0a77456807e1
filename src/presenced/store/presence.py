"""The SQL store: the directory and its transactions (presence facts are written by ``group_commit``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from presenced.domain.model import MailboxSettings, PresenceFacts
from presenced.domain.sequence import PresenceState, initial_state, upcoming_of
from presenced.services.entities import StoredPresence, Tenant, User
from presenced.store.codec import decode_steps, encode_steps, encode_visible, opt_to_us, to_us
from presenced.store.engine import WRITER
from presenced.store.rows import facts_from_rows, mailbox_from_row, session_from_row, state_from_row, user_from_row
from presenced.store.schema import identity_version, mailbox_settings, presence_sessions, presences, tenants, users

_USER_COLUMNS = (users.c.id, users.c.tenant_id, users.c.user_principal_name, users.c.display_name)


class SqlStore:
    """Implements ``Directory`` and ``UnitOfWork`` on one engine (reads: ``presenced.store.reads``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Queued here, this process's writers (these
        # transactions and the presence writer's batches) take turns in order; left to
        # SQLite's busy handler, they would poll with growing sleeps and take the lock in
        # no fair order.
        self.writer_turn: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        #: Called after each commit that logged a change or queued a notification.
        self.after_commit: list[Callable[[], None]] = []
        #: Called after each commit that changed the directory (and raised its version).
        self.after_directory_commit: list[Callable[[], None]] = []

    async def tenant_exists(self, tenant_id: str) -> bool:
        async with self.engine.connect() as conn:
            found = await conn.scalar(select(tenants.c.id).where(tenants.c.id == tenant_id.lower()))
        return found is not None

    async def find_user(self, tenant_id: str, ref: str) -> User | None:
        async with self.engine.connect() as conn:
            return await _find_user(conn, tenant_id, ref)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[SqlTransaction]:
        async with self.writer_turn, self.engine.connect() as conn:
            conn = await conn.execution_options(**{WRITER: True})
            tx = SqlTransaction(conn)
            async with conn.begin():
                yield tx
                if tx.directory_changed:
                    # Last, just before the commit: the version's row lock is held for no longer than that.
                    await raise_directory_version(conn)
        if tx.changed:
            # Committed: now (never before) the rest of the system may hear of it.
            for hook in self.after_commit:
                hook()
        if tx.directory_changed:
            for hook in self.after_directory_commit:
                hook()

    async def mailbox_settings(self, user_id: str) -> MailboxSettings:
        query = select(mailbox_settings).where(mailbox_settings.c.user_id == user_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return mailbox_from_row(row)

    async def stored_presence(self, user_id: str) -> StoredPresence | None:
        """A user's facts, state and mailbox settings as stored (for tools and tests: reads use the state only)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(presences).where(presences.c.user_id == user_id))).mappings().first()
            if row is None:
                return None
            query = select(mailbox_settings).where(mailbox_settings.c.user_id == user_id)
            mailbox = (await conn.execute(query)).mappings().first()
            query = select(presence_sessions).where(presence_sessions.c.user_id == user_id)
            sessions = sorted(
                (session_from_row(r) for r in (await conn.execute(query)).mappings()), key=lambda s: s.app_id
            )
        facts, state = facts_from_rows(row, mailbox, sessions), state_from_row(row)
        if row["upcoming"] is None:
            state = upcoming_of(state, facts)
        else:
            state = replace(state, upcoming=decode_steps(row["upcoming"]))
        return StoredPresence(facts, state, mailbox_from_row(mailbox))


async def _find_user(conn: AsyncConnection, tenant_id: str, ref: str) -> User | None:
    """The tenant's user with this object id or UPN (case-insensitive)."""
    if "\x00" in ref:  # names nobody, and PostgreSQL refuses NUL in text
        return None
    column = users.c.upn_key if "@" in ref else users.c.id
    query = select(*_USER_COLUMNS).where(users.c.tenant_id == tenant_id, column == ref.lower())
    row = (await conn.execute(query)).mappings().first()
    return None if row is None else user_from_row(row)


class SqlTransaction:
    """One database transaction; see ``presenced.services.ports.Transaction``."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        #: The transaction logged a change or queued a notification.
        self.changed = False
        #: The transaction changed the directory: the commit raises its version (``identity_version``).
        self.directory_changed = False

    async def put_tenant(self, tenant: Tenant, now: datetime) -> None:
        self.directory_changed = True
        updated = await self.conn.execute(
            update(tenants).where(tenants.c.id == tenant.id).values(display_name=tenant.display_name)
        )
        if updated.rowcount == 0:
            await self.conn.execute(
                insert(tenants).values(id=tenant.id, display_name=tenant.display_name, created_us=to_us(now))
            )

    async def put_user(self, user: User, now: datetime) -> None:
        self.directory_changed = True
        names = {
            "user_principal_name": user.user_principal_name,
            "upn_key": user.user_principal_name.lower(),
            "display_name": user.display_name,
        }
        updated = await self.conn.execute(update(users).where(users.c.id == user.id).values(**names))
        if updated.rowcount:
            return
        await self.conn.execute(
            insert(users).values(id=user.id, tenant_id=user.tenant_id, created_us=to_us(now), **names)
        )
        state = initial_state(PresenceFacts(), now)
        await self.conn.execute(
            insert(presences).values(user_id=user.id, tenant_id=user.tenant_id, **_state_columns(state))
        )
        await self.conn.execute(insert(mailbox_settings).values(user_id=user.id))

    async def find_user(self, tenant_id: str, ref: str) -> User | None:
        return await _find_user(self.conn, tenant_id, ref)


async def raise_directory_version(conn: AsyncConnection) -> None:
    """Raise the directory's version by one in ``conn``'s transaction (its row is made if it is missing)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(identity_version).values(id=1, version=1)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[identity_version.c.id], set_={"version": identity_version.c.version + 1}
        )
    )


def _state_columns(state: PresenceState) -> dict[str, Any]:
    return {
        "visible": encode_visible(state.visible),
        "sequence": state.sequence,
        "changed_us": to_us(state.changed_at),
        "next_change_us": opt_to_us(state.next_change_at),
        "upcoming": encode_steps(state.upcoming),
    }
