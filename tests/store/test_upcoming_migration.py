"""A database written before upcoming changes were stored keeps working (migration 0005), on both stores.

Rows of earlier versions have no ``upcoming`` column value and hold the visible presence as a JSON
object. The sweeper and the writer work the upcoming changes out from the facts when they first
load such a user, and both forms of the visible presence are read.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import msgspec
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from presenced.bootstrap import Runtime
from presenced.domain import changes as change
from presenced.domain.model import Activity, Availability, PresenceFacts, Session, VisiblePresence
from presenced.services.entities import Tenant, User
from presenced.services.writes import deciding
from presenced.store.codec import decode_visible
from presenced.store.engine import MIGRATIONS
from presenced.store.schema import presence_changes, presences
from tests.support import T0, FixedClock

TENANT = Tenant(str(uuid.UUID(int=1)), "Contoso")
APP = str(uuid.UUID(int=9))
USERS = [User(str(uuid.UUID(int=100 + n)), TENANT.id, f"user{n}@contoso.example", f"User {n}") for n in range(3)]


def _migrate(connection: Connection, revision: str, up: bool) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    (command.upgrade if up else command.downgrade)(config, revision)


def _object_form(raw: str) -> str:
    """The visible presence as versions before 0005 wrote it: the dataclass as a JSON object."""
    return msgspec.json.encode(decode_visible(raw)).decode()


async def _as_an_earlier_version_left_it(runtime: Runtime) -> None:
    """Users with an Available session refreshed at T0, stored in the form and schema of 0004."""
    async with runtime.store.begin() as tx:
        await tx.put_tenant(TENANT, T0)
        for user in USERS:
            await tx.put_user(user, T0)
    session = Session(APP, Availability.AVAILABLE, Activity.AVAILABLE, T0, T0 + timedelta(hours=1))
    decide = deciding(lambda _f, _now: PresenceFacts(sessions=(session,)), "setPresence")
    await asyncio.gather(*(runtime.writer.write(user, decide) for user in USERS))
    async with runtime.engine.begin() as conn:
        await conn.run_sync(_migrate, "0004", False)
        for table in ("presences", "presence_changes"):
            rows = (await conn.execute(text(f"SELECT user_id, sequence, visible FROM {table}"))).all()
            for user_id, sequence, visible in rows:
                await conn.execute(
                    text(f"UPDATE {table} SET visible = :visible WHERE user_id = :user AND sequence = :sequence"),
                    {"visible": _object_form(visible), "user": user_id, "sequence": sequence},
                )
        await conn.run_sync(_migrate, "head", True)
    async with runtime.engine.connect() as conn:
        assert (await conn.execute(select(presences.c.upcoming))).scalars().all() == [None] * len(USERS)


async def test_the_sweeper_works_out_the_due_changes_of_rows_stored_without_them(
    runtime: Runtime, clock: FixedClock
) -> None:
    """After the migration, the due fades of users an earlier version stored are logged in order, in the new form."""
    await _as_an_earlier_version_left_it(runtime)
    clock.set(T0 + timedelta(minutes=11))
    assert await runtime.sweeper.run_due() == 2 * len(USERS)
    query = select(presence_changes.c.visible, presence_changes.c.cause).order_by(presence_changes.c.id)
    async with runtime.engine.connect() as conn:
        log = (await conn.execute(query.where(presence_changes.c.user_id == USERS[0].id))).all()
    assert [cause for _, cause in log] == ["setPresence", "timer", "timer"]
    assert log[0].visible.startswith("{")  # as the earlier version wrote it, and still read
    assert all(visible.startswith("[") for visible, _ in log[1:])
    assert [decode_visible(v).activity for v, _ in log] == [
        Activity.AVAILABLE,
        Activity.AVAILABLE_INACTIVE,
        Activity.AWAY,
    ]
    [record] = await runtime.reader.load(TENANT.id, [USERS[0].id])
    assert record.state.visible.availability is Availability.AWAY
    stored = await runtime.store.stored_presence(USERS[0].id)
    assert stored is not None
    assert stored.state.next_change_at == T0 + timedelta(hours=1)
    async with runtime.engine.connect() as conn:
        upcoming = (await conn.execute(select(presences.c.upcoming))).scalars().all()
    assert None not in upcoming


async def test_a_write_to_a_row_stored_without_upcoming_changes_logs_what_fell_due_first(
    runtime: Runtime, clock: FixedClock
) -> None:
    """A write to such a user stores the fade that fell due before it, then its own change."""
    await _as_an_earlier_version_left_it(runtime)
    clock.set(T0 + timedelta(minutes=6))
    busy = (Availability.BUSY, Activity.IN_A_CALL)
    decision = await runtime.writer.write(
        USERS[1], deciding(lambda f, now: change.set_session(f, APP, busy, timedelta(hours=1), now), "setPresence")
    )
    assert [(c.cause, c.state.visible.activity) for c in decision.changes] == [
        ("timer", Activity.AVAILABLE_INACTIVE),
        ("setPresence", Activity.IN_A_CALL),
    ]
    async with runtime.engine.connect() as conn:
        await conn.execute(update(presences).values(upcoming=None))  # even when it is stored again the old way
        await conn.commit()
    stored = await runtime.store.stored_presence(USERS[1].id)
    assert stored is not None
    assert stored.state == decision.stored.state
    assert isinstance(stored.state.visible, VisiblePresence)
