"""Group commit: writes submitted together share a transaction, and still behave one by one (both stores)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from presenced.bootstrap import Runtime, build
from presenced.domain import changes as change
from presenced.domain.aggregate import aggregate
from presenced.domain.model import (
    Activity,
    AutomaticReplies,
    AutoReplyStatus,
    Availability,
    Pair,
    PresenceFacts,
    Session,
)
from presenced.errors import BadRequest, ResourceNotFound
from presenced.services.entities import Decision, StoredPresence, Subscription, Tenant, User
from presenced.services.ports import Decide
from presenced.services.writes import deciding
from presenced.store.codec import decode_visible
from presenced.store.group_commit import MAX_SWEEP
from presenced.store.schema import notifications, presence_changes
from presenced.store.subscriptions import SqlSubscriptionStore
from tests.support import T0, FixedClock

TENANT = Tenant(str(uuid.UUID(int=1)), "Contoso")
APP = str(uuid.UUID(int=9))
AVAILABLE = (Availability.AVAILABLE, Activity.AVAILABLE)
BUSY = (Availability.BUSY, Activity.IN_A_CALL)
#: What a batch of writes runs, whatever its size: BEGIN, the rows' versions (PostgreSQL: with the
#: locks), the facts of the users this process does not have decoded at those versions ("cold"),
#: then on SQLite presences, sessions, the change log and the subscribers, and on PostgreSQL all of
#: these in one statement; COMMIT. A batch that logs no change (SQLite) skips the change log and
#: the subscribers; queuing notifications adds one.
STATEMENTS = {
    "sqlite": {"cold": 8, "warm": 7, "warm, no change": 5},
    "postgresql": {"cold": 5, "warm": 4, "warm, no change": 4},
}


def _user(n: int) -> User:
    return User(str(uuid.UUID(int=100 + n)), TENANT.id, f"user{n}@contoso.example", f"User {n}")


async def _seed(runtime: Runtime, count: int) -> list[User]:
    users = [_user(n) for n in range(count)]
    async with runtime.store.begin() as tx:
        await tx.put_tenant(TENANT, T0)
        for user in users:
            await tx.put_user(user, T0)
    return users


def _set(pair: Pair, app: str = APP) -> Decide:
    return deciding(lambda f, now: change.set_session(f, app, pair, timedelta(hours=1), now), "setPresence")


async def _log(runtime: Runtime, user: User) -> list[tuple[int, int, str]]:
    """(id, sequence, cause) of the user's change-log entries, in id order."""
    query = (
        select(presence_changes.c.id, presence_changes.c.sequence, presence_changes.c.cause)
        .where(presence_changes.c.user_id == user.id)
        .order_by(presence_changes.c.id)
    )
    async with runtime.engine.connect() as conn:
        return [(row.id, row.sequence, row.cause) for row in await conn.execute(query)]


async def _stored(runtime: Runtime, user: User) -> StoredPresence:
    stored = await runtime.store.stored_presence(user.id)
    assert stored is not None
    return stored


@asynccontextmanager
async def _holding(runtime: Runtime, user: User) -> AsyncIterator[None]:
    """Hold what a batch writing ``user`` must wait for: SQLite's write lock, or the user's row lock."""
    url = runtime.engine.url
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database or "", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    dsn = make_url(url.render_as_string(hide_password=False)).set(drivername="postgresql")
    holder = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM presences WHERE user_id = $1 FOR UPDATE", user.id)
            yield
    finally:
        await holder.close()


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting until {what}")


async def test_writes_submitted_together_share_one_transaction(runtime: Runtime) -> None:
    """Writes to many users submitted at once are committed in one batch, and each is stored."""
    users = await _seed(runtime, 40)
    before = runtime.writer.batches
    decisions = await asyncio.gather(*(runtime.writer.write(user, _set(BUSY)) for user in users))
    assert runtime.writer.batches == before + 1
    for user, decision in zip(users, decisions, strict=True):
        assert decision.stored.state.visible.availability is Availability.BUSY
        assert (await _stored(runtime, user)).state == decision.stored.state
        assert [cause for _, _, cause in await _log(runtime, user)] == ["setPresence"]


async def test_writes_to_one_user_in_a_batch_follow_each_other(runtime: Runtime) -> None:
    """Writes to one user in one batch apply in order, each to what the previous one left, each logged."""
    [user] = await _seed(runtime, 1)
    seen: list[PresenceFacts] = []

    def recording(pair: Pair) -> Decide:
        def decide(stored: StoredPresence, now: datetime) -> Decision:
            seen.append(stored.facts)
            return _set(pair)(stored, now)

        return decide

    pairs = [AVAILABLE if n % 2 else BUSY for n in range(20)]
    before = runtime.writer.batches
    decisions = await asyncio.gather(*(runtime.writer.write(user, recording(pair)) for pair in pairs))
    assert runtime.writer.batches == before + 1
    # Each decision saw the session the previous one set.
    assert seen[0].sessions == ()
    for facts, previous in zip(seen[1:], pairs, strict=False):
        [session] = facts.sessions
        assert (session.availability, session.activity) == previous
    log = await _log(runtime, user)
    assert len(log) == 20
    sequences = [sequence for _, sequence, _ in log]
    assert sequences == sorted(set(sequences))
    assert [d.stored.state.sequence for d in decisions] == sequences
    stored = await _stored(runtime, user)
    assert stored.state == decisions[-1].stored.state
    assert (stored.state.visible.availability, stored.state.visible.activity) == pairs[-1]
    assert stored.state.visible == aggregate(stored.facts, T0).visible


async def test_a_refused_write_leaves_the_rest_of_its_batch_applied(runtime: Runtime) -> None:
    """A write refused with a 400 or a 404 inside a batch stores nothing; the batch's other writes are stored."""
    users = await _seed(runtime, 6)
    gone = _user(99)  # looked up, then deleted before its write: the writer does not find it

    def refused(stored: StoredPresence, now: datetime) -> Decision:
        raise BadRequest("'statusMessage.expiryDateTime' is in the past.")

    clear_missing = deciding(lambda f, now: change.clear_session(f, APP, now), "clearPresence")
    before = runtime.writer.batches
    results = await asyncio.gather(
        runtime.writer.write(users[0], _set(BUSY)),
        runtime.writer.write(users[1], refused),
        runtime.writer.write(users[2], _set(BUSY)),
        runtime.writer.write(users[3], clear_missing),  # no session to clear: 404
        runtime.writer.write(gone, _set(BUSY)),
        runtime.writer.write(users[1], _set(BUSY)),  # the same user as the refused write, after it
        runtime.writer.write(users[4], _set(BUSY)),
        return_exceptions=True,
    )
    assert runtime.writer.batches == before + 1
    assert isinstance(results[1], BadRequest)
    assert isinstance(results[3], ResourceNotFound)
    assert isinstance(results[4], ResourceNotFound)
    for n in (0, 2, 5, 6):
        assert isinstance(results[n], Decision), results[n]
    for user in (users[0], users[1], users[2], users[4]):
        assert (await _stored(runtime, user)).state.visible.availability is Availability.BUSY
        assert [cause for _, _, cause in await _log(runtime, user)] == ["setPresence"]
    for user in (users[3], users[5]):
        assert (await _stored(runtime, user)).facts == PresenceFacts()
        assert await _log(runtime, user) == []


async def test_a_write_that_breaks_a_constraint_fails_alone(runtime: Runtime) -> None:
    """When the database refuses one write's rows, the batch is retried write by write: only that write fails."""
    users = await _seed(runtime, 4)
    first = await runtime.writer.write(users[0], _set(BUSY))

    def duplicate_entry(stored: StoredPresence, now: datetime) -> Decision:
        # Logs again a sequence number the user's change log already holds.
        return Decision(stored, first.changes)

    before = runtime.writer.batches
    results = await asyncio.gather(
        runtime.writer.write(users[1], _set(BUSY)),
        runtime.writer.write(users[0], duplicate_entry),
        runtime.writer.write(users[2], _set(BUSY)),
        return_exceptions=True,
    )
    assert runtime.writer.batches == before + 1 + 3  # the batch, then each write alone
    assert isinstance(results[1], sqlite3.IntegrityError | asyncpg.IntegrityConstraintViolationError)
    assert isinstance(results[0], Decision)
    assert isinstance(results[2], Decision)
    for user in (users[1], users[2]):
        assert [cause for _, _, cause in await _log(runtime, user)] == ["setPresence"]
    assert len(await _log(runtime, users[0])) == 1


async def test_a_batch_runs_the_same_few_statements_for_one_write_or_fifty(runtime: Runtime, clock: FixedClock) -> None:
    """A batch's statements do not grow with its writes: one per table written, whatever the batch's size."""
    users = await _seed(runtime, 51)
    backend = runtime.writer.backend
    expected = STATEMENTS[runtime.engine.dialect.name]

    before = backend.statements
    await runtime.writer.write(users[0], _set(BUSY))
    assert backend.statements - before == expected["cold"]

    before, batches = backend.statements, runtime.writer.batches
    await asyncio.gather(
        *(runtime.writer.write(user, _set(p)) for user, p in zip(users, [AVAILABLE] + [BUSY] * 50, strict=True))
    )
    assert runtime.writer.batches == batches + 1
    assert backend.statements - before == expected["cold"]

    # Written by this process and by nobody since, the users' facts need not be read again.
    before, batches = backend.statements, runtime.writer.batches
    await asyncio.gather(*(runtime.writer.write(user, _set(AVAILABLE)) for user in users[1:]))
    assert runtime.writer.batches == batches + 1
    assert backend.statements - before == expected["warm"]

    # A write that changes nothing visible (the same pair again, a second later) logs nothing and
    # looks for no subscriber.
    clock.advance(timedelta(seconds=1))
    before = backend.statements
    await runtime.writer.write(users[0], _set(AVAILABLE))
    assert backend.statements - before == expected["warm, no change"]


async def test_a_write_through_another_process_is_not_hidden_by_what_this_one_decoded(
    runtime: Runtime, clock: FixedClock
) -> None:
    """Each write builds on the stored facts, whichever process wrote them last (no stale decoded copy)."""
    [user] = await _seed(runtime, 1)
    other = await build(runtime.settings, clock=clock)  # another process's writer on the same database
    apps = [str(uuid.UUID(int=900 + n)) for n in range(4)]
    try:
        for n, app in enumerate(apps):
            writer = (runtime.writer, other.writer)[n % 2]
            await writer.write(user, _set(BUSY, app))
    finally:
        await other.close()
    assert sorted(s.app_id for s in (await _stored(runtime, user)).facts.sessions) == apps


async def test_notifications_are_queued_in_the_batch_for_each_subscriber(runtime: Runtime) -> None:
    """Each change of a watched user gets a notification per subscription, in the same commit; at one statement more."""
    users = await _seed(runtime, 3)
    subscriptions = SqlSubscriptionStore(runtime.store)
    for n in range(2):
        await subscriptions.create_subscription(_subscription(users[:2], n))
    backend = runtime.writer.backend
    before = backend.statements
    await asyncio.gather(*(runtime.writer.write(user, _set(BUSY)) for user in users))
    assert backend.statements - before == STATEMENTS[runtime.engine.dialect.name]["cold"] + 1
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(select(notifications.c.user_id, notifications.c.sequence))).all()
    logged = {user.id: (await _log(runtime, user))[0][1] for user in users}
    assert sorted(rows) == sorted((user.id, logged[user.id]) for user in users[:2] for _ in range(2))


def _subscription(users: list[User], n: int) -> Subscription:
    return Subscription(
        id=str(uuid.UUID(int=500 + n)),
        tenant_id=TENANT.id,
        app_id=APP,
        creator_id=None,
        resource="/communications/presences?$filter=id in (...)",
        change_type="updated",
        notification_url=f"https://receiver.example/hook/{n}",
        lifecycle_url=None,
        client_state=None,
        expires=T0 + timedelta(hours=1),
        include_resource_data=False,
        encryption_certificate=None,
        encryption_certificate_id=None,
        latest_tls="v1_2",
        created=T0,
        user_ids=tuple(u.id for u in users),
    )


async def test_a_mailbox_patch_and_a_write_in_one_batch_keep_each_other(runtime: Runtime) -> None:
    """Out of office set by one write and a session set by the next, in one batch, are both stored."""
    [user] = await _seed(runtime, 1)
    replies = AutomaticReplies(AutoReplyStatus.ALWAYS_ENABLED, internal_reply_message="Away today")

    def patch(stored: StoredPresence, now: datetime) -> Decision:
        decided = deciding(lambda f, _now: change.set_automatic_replies(f, replies), "mailboxSettings")(stored, now)
        mailbox = replace(stored.mailbox, time_zone="Europe/Berlin", automatic_replies=replies)
        return Decision(replace(decided.stored, mailbox=mailbox), decided.changes)

    await asyncio.gather(runtime.writer.write(user, patch), runtime.writer.write(user, _set(AVAILABLE)))
    stored = await _stored(runtime, user)
    assert stored.mailbox.time_zone == "Europe/Berlin"
    assert stored.facts.automatic_replies == replies
    assert stored.state.visible.activity is Activity.OUT_OF_OFFICE
    assert stored.facts.sessions[0].availability is Availability.AVAILABLE


async def test_a_sweep_stores_many_users_in_chunks_and_writes_wait_for_one_chunk_at_most(
    runtime: Runtime, clock: FixedClock
) -> None:
    """1,200 fades are stored in chunks with their notifications; a write submitted meanwhile waits for one chunk."""
    assert MAX_SWEEP < 1200
    users = await _seed(runtime, 1201)
    writer_user, faders = users[0], users[1:]
    await runtime.writer.write(writer_user, _set(BUSY))
    session = Session(APP, *AVAILABLE, T0, T0 + timedelta(hours=1))
    await asyncio.gather(
        *(runtime.writer.write(u, deciding(lambda _f, _n: PresenceFacts((session,)), "setPresence")) for u in faders)
    )
    await SqlSubscriptionStore(runtime.store).create_subscription(_subscription(faders[:10], 0))
    clock.set(T0 + timedelta(minutes=6))
    before = runtime.writer.batches
    async with _holding(runtime, faders[0]):
        sweeping = asyncio.create_task(runtime.sweeper.run_due(wait=True))
        await _until(lambda: runtime.writer.batches > before, "the first chunk started")
        writing = asyncio.create_task(runtime.writer.write(writer_user, _set(AVAILABLE)))
        await asyncio.sleep(0.05)
    assert await asyncio.wait_for(sweeping, 60) == 1200
    await asyncio.wait_for(writing, 60)

    assert runtime.writer.batches - before == 3  # a chunk, the write, the rest
    write_id = (await _log(runtime, writer_user))[-1][0]
    query = select(presence_changes.c.id).where(presence_changes.c.cause == "timer").order_by(presence_changes.c.id)
    async with runtime.engine.connect() as conn:
        fades = (await conn.execute(query)).scalars().all()
    assert len(fades) == 1200
    # The write committed right after the first chunk: between its entries and the rest.
    assert fades[MAX_SWEEP - 1] < write_id < fades[MAX_SWEEP]
    for user in faders[:3]:
        assert (await _stored(runtime, user)).state.visible.activity is Activity.AVAILABLE_INACTIVE
    async with runtime.engine.connect() as conn:
        queued = (await conn.execute(select(notifications.c.visible))).scalars().all()
    # The subscription came after the setPresence: one notification, of the fade, per watched user.
    assert [decode_visible(v).activity for v in queued] == [Activity.AVAILABLE_INACTIVE] * 10


async def test_sequence_numbers_keep_rising_across_batches(runtime: Runtime, clock: FixedClock) -> None:
    """Across batches and a moving clock, a user's sequence numbers rise with every change, in commit order."""
    [user] = await _seed(runtime, 1)
    for step in range(5):
        clock.set(T0 + timedelta(seconds=step))
        pairs = [(BUSY, AVAILABLE)[n % 2] for n in range(3 * step, 3 * step + 3)]  # each write a change
        await asyncio.gather(*(runtime.writer.write(user, _set(pair)) for pair in pairs))
    sequences = [sequence for _, sequence, _ in await _log(runtime, user)]
    assert len(sequences) == 15
    assert all(a < b for a, b in itertools.pairwise(sequences))


@pytest.mark.parametrize("count", [1, 3])
async def test_a_write_whose_caller_gave_up_before_its_batch_is_not_stored(runtime: Runtime, count: int) -> None:
    """A write cancelled while queued behind a running batch is dropped; the writes around it are stored."""
    users = await _seed(runtime, 3)
    async with _holding(runtime, users[0]):
        first = asyncio.create_task(runtime.writer.write(users[0], _set(BUSY)))
        await _until(lambda: runtime.writer.batches > 0, "the first batch started")
        queued = [asyncio.create_task(runtime.writer.write(users[1], _set(BUSY))) for _ in range(count)]
        kept = asyncio.create_task(runtime.writer.write(users[2], _set(BUSY)))
        await asyncio.sleep(0)
        for task in queued:
            task.cancel()
    await asyncio.wait_for(asyncio.gather(first, kept), 30)
    assert await _log(runtime, users[1]) == []
    assert len(await _log(runtime, users[2])) == 1
