"""The SQL store, the same tests on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from presenced.bootstrap import Runtime
from presenced.domain.model import (
    Activity,
    AutomaticReplies,
    AutoReplyStatus,
    Availability,
    LocationLayer,
    PreferredPresence,
    PresenceFacts,
    Session,
    StatusMessage,
    WorkLocationType,
)
from presenced.domain.sequence import Change, initial_state
from presenced.services.entities import Decision, StoredPresence, Tenant, User
from presenced.services.writes import deciding
from presenced.store.bare_directory import newest_revision
from presenced.store.engine import upgrade
from presenced.store.schema import presence_changes
from tests.support import T0

#: A constraint refusing a row, as the writer's drivers raise it.
IntegrityError_ = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)

TENANT = Tenant(str(uuid.UUID(int=1)), "Contoso")
OTHER_TENANT = Tenant(str(uuid.UUID(int=2)), "Fabrikam")
ANNA = User(str(uuid.UUID(int=11)), TENANT.id, "Anna@Contoso.example", "Anna")
APP_A, APP_B = str(uuid.UUID(int=101)), str(uuid.UUID(int=102))


async def _seed(runtime: Runtime, *users: User) -> None:
    async with runtime.store.begin() as tx:
        await tx.put_tenant(TENANT, T0)
        await tx.put_tenant(OTHER_TENANT, T0)
        for user in users:
            await tx.put_user(user, T0)


def _rich_facts() -> PresenceFacts:
    return PresenceFacts(
        sessions=(
            Session(APP_A, Availability.AVAILABLE, Activity.AVAILABLE, T0, T0 + timedelta(hours=1)),
            Session(APP_B, Availability.BUSY, Activity.IN_A_CALL, T0 - timedelta(minutes=1), T0 + timedelta(minutes=5)),
        ),
        preferred=PreferredPresence(Availability.BE_RIGHT_BACK, Activity.BE_RIGHT_BACK, T0 + timedelta(days=1)),
        status_message=StatusMessage("Lunch", T0, T0 + timedelta(hours=2), "Europe/Berlin"),
        automatic_replies=AutomaticReplies(
            AutoReplyStatus.SCHEDULED, T0 + timedelta(hours=1), T0 + timedelta(hours=3), "Away", "Out"
        ),
        manual_location=LocationLayer(WorkLocationType.OFFICE, "b-1"),
        automatic_location=LocationLayer(WorkLocationType.REMOTE),
    )


async def test_migrating_twice_is_harmless(runtime: Runtime) -> None:
    """Running the migrations on an up-to-date database changes nothing and does not fail."""
    await _seed(runtime, ANNA)
    before = await runtime.reader.load(TENANT.id, [ANNA.id])
    await upgrade(runtime.engine)
    await upgrade(runtime.engine)
    assert await runtime.reader.load(TENANT.id, [ANNA.id]) == before
    async with runtime.engine.connect() as conn:
        versions = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [newest_revision()]


async def test_a_new_user_starts_offline_with_nothing_pending(runtime: Runtime) -> None:
    """A user is created with an Offline presence, a sequence number and no pending transition."""
    await _seed(runtime, ANNA)
    [record] = await runtime.reader.load(TENANT.id, [ANNA.id])
    assert record.user_id == ANNA.id
    assert record.state == initial_state(PresenceFacts(), T0)
    assert record.state.next_change_at is None


async def test_putting_a_user_twice_updates_names_only(runtime: Runtime) -> None:
    """put_user on an existing id renames it and keeps its presence."""
    await _seed(runtime, ANNA)
    renamed = User(ANNA.id, TENANT.id, "anna.b@contoso.example", "Anna B")
    async with runtime.store.begin() as tx:
        await tx.put_user(renamed, T0 + timedelta(hours=1))
    assert await runtime.store.find_user(TENANT.id, "ANNA.B@contoso.example") == renamed
    assert await runtime.store.find_user(TENANT.id, "anna@contoso.example") is None


async def test_upn_is_unique_per_tenant_ignoring_case(runtime: Runtime) -> None:
    """Two users of one tenant cannot share a UPN, whatever its case; another tenant can have it."""
    await _seed(runtime, ANNA)
    async with runtime.store.begin() as tx:
        await tx.put_user(User(str(uuid.uuid4()), OTHER_TENANT.id, ANNA.user_principal_name, "Other Anna"), T0)
    with pytest.raises(IntegrityError):
        async with runtime.store.begin() as tx:
            await tx.put_user(User(str(uuid.uuid4()), TENANT.id, "ANNA@contoso.EXAMPLE", "Impostor"), T0)


@pytest.mark.parametrize("ref", [ANNA.id, ANNA.id.upper(), "anna@contoso.example", "ANNA@CONTOSO.EXAMPLE"])
async def test_users_are_found_by_id_or_upn_in_any_case(runtime: Runtime, ref: str) -> None:
    """find_user and the reader match an object id or a UPN case-insensitively."""
    await _seed(runtime, ANNA)
    assert await runtime.store.find_user(TENANT.id, ref) == ANNA
    [record] = await runtime.reader.load(TENANT.id, [ref])
    assert record.user_id == ANNA.id


async def test_other_tenants_users_are_not_found(runtime: Runtime) -> None:
    """Lookups are scoped to the tenant."""
    await _seed(runtime, ANNA)
    assert await runtime.store.find_user(OTHER_TENANT.id, ANNA.id) is None
    assert await runtime.reader.load(OTHER_TENANT.id, [ANNA.id, ANNA.user_principal_name]) == []
    assert await runtime.store.tenant_exists(TENANT.id)
    assert not await runtime.store.tenant_exists(str(uuid.uuid4()))


async def test_every_fact_survives_a_round_trip(runtime: Runtime) -> None:
    """Sessions, preferred presence, status message, automatic replies and locations are stored and read back."""
    await _seed(runtime, ANNA)
    facts = _rich_facts()
    decision = await runtime.writer.write(ANNA, deciding(lambda _f, _now: facts, "test"))
    stored = await runtime.store.stored_presence(ANNA.id)
    assert stored is not None
    assert stored.facts == facts
    assert stored.state == decision.stored.state
    assert stored.state.next_change_at is not None
    assert [step.at for step in stored.state.upcoming] == [T0 + timedelta(hours=h) for h in (1, 2, 3)]
    [record] = await runtime.reader.load(TENANT.id, [ANNA.id])
    assert record.state == replace(stored.state, upcoming=())  # a read shows the state, not what comes
    # The writer reads them back the same way, by its own query, upcoming changes and all.
    seen: list[StoredPresence] = []

    def record_it(stored: StoredPresence, now: datetime) -> Decision:
        seen.append(stored)
        return Decision(stored, ())

    await runtime.writer.write(ANNA, record_it)
    assert [(s.facts, s.state) for s in seen] == [(facts, decision.stored.state)]


async def test_loading_many_returns_each_user_once(runtime: Runtime) -> None:
    """A mixed list of ids and UPNs naming the same users returns each user once, with all their sessions."""
    bob = User(str(uuid.UUID(int=12)), TENANT.id, "bob@contoso.example", "Bob")
    await _seed(runtime, ANNA, bob)
    facts = _rich_facts()
    await runtime.writer.write(ANNA, deciding(lambda _f, _now: facts, "test"))
    refs = [ANNA.id, "ANNA@contoso.example", bob.user_principal_name, str(uuid.uuid4()), "nobody@x"]
    records = await runtime.reader.load(TENANT.id, refs)
    assert sorted(r.user_id for r in records) == sorted([ANNA.id, bob.id])
    assert {r.user_principal_name for r in records} == {ANNA.user_principal_name, bob.user_principal_name}


async def test_a_failed_transaction_leaves_nothing(runtime: Runtime) -> None:
    """An exception inside a transaction rolls back every write in it."""
    await _seed(runtime)

    async def write_then_fail() -> None:
        async with runtime.store.begin() as tx:
            await tx.put_user(ANNA, T0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    assert await runtime.store.find_user(TENANT.id, ANNA.id) is None


async def test_the_change_log_keeps_one_entry_per_sequence_number(runtime: Runtime) -> None:
    """Change-log entries are stored in order, and a user's sequence number appears at most once."""
    await _seed(runtime, ANNA)
    first = await runtime.writer.write(ANNA, deciding(lambda _f, _now: _rich_facts(), "test"))
    async with runtime.engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(presence_changes))
    assert count == 1

    def again(stored: StoredPresence, now: datetime) -> Decision:
        return Decision(stored, (Change(first.changes[0].state, "again"),))

    with pytest.raises(IntegrityError_):
        await runtime.writer.write(ANNA, again)
