"""The SQL store: presence reads, the directory, and write transactions."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from presenced.domain.model import MailboxSettings, PresenceFacts
from presenced.domain.sequence import Change, PresenceState, initial_state
from presenced.services.ports import Tenant, User
from presenced.store.codec import encode_visible, opt_to_us, to_us
from presenced.store.engine import WRITER
from presenced.store.rows import (
    facts_from_rows,
    facts_to_row,
    mailbox_from_row,
    mailbox_to_row,
    replies_to_row,
    session_from_row,
    session_to_row,
    state_from_row,
    user_from_row,
)
from presenced.store.schema import (
    mailbox_settings,
    notifications,
    presence_changes,
    presence_sessions,
    presences,
    subscription_users,
    subscriptions,
    tenants,
    users,
)

_USER_COLUMNS = (users.c.id, users.c.tenant_id, users.c.user_principal_name, users.c.display_name)


class SqlStore:
    """Implements ``Directory`` and ``UnitOfWork`` on one engine (reads: ``presenced.store.reads``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Queued here, this process's writers
        # take turns in order; left to SQLite's busy handler, they would poll
        # with growing sleeps and take the lock in no fair order.
        self._writer = asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        #: Called after each commit that logged a change or queued a notification.
        self.after_commit: list[Callable[[], None]] = []

    async def tenant_exists(self, tenant_id: str) -> bool:
        async with self.engine.connect() as conn:
            found = await conn.scalar(select(tenants.c.id).where(tenants.c.id == tenant_id.lower()))
        return found is not None

    async def find_user(self, tenant_id: str, ref: str) -> User | None:
        async with self.engine.connect() as conn:
            return await _find_user(conn, tenant_id, ref)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[SqlTransaction]:
        async with self._writer, self.engine.connect() as conn:
            conn = await conn.execution_options(**{WRITER: True})
            tx = SqlTransaction(conn)
            async with conn.begin():
                yield tx
        if tx.changed:
            # Committed: now (never before) the rest of the system may hear of it.
            for hook in self.after_commit:
                hook()

    async def mailbox_settings(self, user_id: str) -> MailboxSettings:
        query = select(mailbox_settings).where(mailbox_settings.c.user_id == user_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return mailbox_from_row(row)


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

    async def put_tenant(self, tenant: Tenant, now: datetime) -> None:
        updated = await self.conn.execute(
            update(tenants).where(tenants.c.id == tenant.id).values(display_name=tenant.display_name)
        )
        if updated.rowcount == 0:
            await self.conn.execute(
                insert(tenants).values(id=tenant.id, display_name=tenant.display_name, created_us=to_us(now))
            )

    async def put_user(self, user: User, now: datetime) -> None:
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

    async def lock_presence(self, user_id: str) -> tuple[PresenceFacts, PresenceState]:
        # The lock first, alone (FOR UPDATE on PostgreSQL; SQLite has one writer at a
        # time anyway). Under READ COMMITTED, a statement that waited for the lock
        # sees the locked row as committed but every other table as it was when the
        # statement began: joined in, the mailbox row could be one write old. The
        # statements after the lock see everything that committed before it.
        locked = select(presences).where(presences.c.user_id == user_id).with_for_update()
        row = (await self.conn.execute(locked)).mappings().one()
        mailbox = (
            (await self.conn.execute(select(mailbox_settings).where(mailbox_settings.c.user_id == user_id)))
            .mappings()
            .first()
        )
        session_rows = await self.conn.execute(select(presence_sessions).where(presence_sessions.c.user_id == user_id))
        sessions = [session_from_row(r) for r in session_rows.mappings()]
        return facts_from_rows(row, mailbox, sessions), state_from_row(row)

    async def save_presence(
        self, user: User, facts: PresenceFacts, state: PresenceState, previous: PresenceFacts | None = None
    ) -> None:
        await self.conn.execute(
            update(presences)
            .where(presences.c.user_id == user.id)
            .values(**facts_to_row(facts), **_state_columns(state))
        )
        if previous is None or facts.sessions != previous.sessions:
            await self.conn.execute(delete(presence_sessions).where(presence_sessions.c.user_id == user.id))
            if facts.sessions:
                rows = [session_to_row(user.id, s) for s in facts.sessions]
                await self.conn.execute(insert(presence_sessions), rows)
        if previous is None or facts.automatic_replies != previous.automatic_replies:
            replies = replies_to_row(facts.automatic_replies)
            await self.conn.execute(
                update(mailbox_settings).where(mailbox_settings.c.user_id == user.id).values(**replies)
            )

    async def lock_due(self, now: datetime, limit: int, skip_locked: bool = True) -> list[User]:
        # SKIP LOCKED: several sweepers share the due users instead of queueing
        # on them. SQLite ignores it (one writer at a time holds the database).
        query = (
            select(*_USER_COLUMNS)
            .select_from(presences.join(users, users.c.id == presences.c.user_id))
            .where(presences.c.next_change_us <= to_us(now))
            .order_by(presences.c.next_change_us)
            .limit(limit)
            .with_for_update(of=presences, skip_locked=skip_locked)
        )
        rows = (await self.conn.execute(query)).mappings().all()
        return [user_from_row(row) for row in rows]

    async def mailbox_settings(self, user_id: str) -> MailboxSettings:
        query = select(mailbox_settings).where(mailbox_settings.c.user_id == user_id)
        return mailbox_from_row((await self.conn.execute(query)).mappings().first())

    async def save_mailbox_settings(self, user: User, settings: MailboxSettings) -> None:
        """The mailbox columns that are not presence facts (the replies go with ``save_presence``)."""
        await self.conn.execute(
            update(mailbox_settings).where(mailbox_settings.c.user_id == user.id).values(**mailbox_to_row(settings))
        )

    async def queue_notifications(self, user: User, changes: Sequence[Change], now: datetime) -> None:
        watching = await self.conn.execute(
            select(subscriptions.c.id, subscriptions.c.notification_url)
            .select_from(
                subscription_users.join(subscriptions, subscriptions.c.id == subscription_users.c.subscription_id)
            )
            .where(subscription_users.c.user_id == user.id, subscriptions.c.expires_us > to_us(now))
        )
        rows = [
            {
                # Stable: the same change for the same subscription is always the same notification.
                "id": str(uuid.uuid5(uuid.UUID(subscription_id), f"{user.id}/{change.state.sequence}")),
                "subscription_id": subscription_id,
                "url": url,
                "user_id": user.id,
                "sequence": change.state.sequence,
                "visible": encode_visible(change.state.visible),
                "created_us": to_us(change.state.changed_at),
                "next_attempt_us": 0,
                "attempts": 0,
                "state": "pending",
            }
            for subscription_id, url in watching.all()
            for change in changes
        ]
        if rows:
            await self.conn.execute(insert(notifications), rows)
            self.changed = True

    async def append_changes(self, user: User, changes: Sequence[Change]) -> None:
        if not changes:
            return
        self.changed = True
        await self.conn.execute(
            insert(presence_changes),
            [
                {
                    "tenant_id": user.tenant_id,
                    "user_id": user.id,
                    "sequence": change.state.sequence,
                    "visible": encode_visible(change.state.visible),
                    "cause": change.cause,
                    "at_us": to_us(change.state.changed_at),
                }
                for change in changes
            ],
        )


def _state_columns(state: PresenceState) -> dict[str, Any]:
    return {
        "visible": encode_visible(state.visible),
        "sequence": state.sequence,
        "changed_us": to_us(state.changed_at),
        "next_change_us": opt_to_us(state.next_change_at),
    }
