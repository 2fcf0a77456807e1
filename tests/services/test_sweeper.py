"""The sweeper stores time-driven changes exactly once, on both stores."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import select

from presenced.bootstrap import Runtime, build
from presenced.domain.model import Activity, Availability, PresenceFacts, Session
from presenced.services.entities import Tenant, User
from presenced.services.sweeper import Sweeper
from presenced.services.writes import deciding
from presenced.store.schema import presence_changes
from tests.support import T0, FixedClock

TENANT = Tenant(str(uuid.UUID(int=1)), "Contoso")
APP = str(uuid.UUID(int=9))


def _idle_user(n: int) -> User:
    return User(str(uuid.UUID(int=100 + n)), TENANT.id, f"user{n}@contoso.example", f"User {n}")


async def _seed(runtime: Runtime, count: int) -> list[User]:
    """Users with one Available session refreshed at T0 (fades at +5 and +10 min, expires at +1 h)."""
    users = [_idle_user(n) for n in range(count)]
    session = Session(APP, Availability.AVAILABLE, Activity.AVAILABLE, T0, T0 + timedelta(hours=1))
    async with runtime.store.begin() as tx:
        await tx.put_tenant(TENANT, T0)
        for user in users:
            await tx.put_user(user, T0)
    decide = deciding(lambda _f, _now: PresenceFacts(sessions=(session,)), "setPresence")
    await asyncio.gather(*(runtime.writer.write(user, decide) for user in users))
    return users


async def _log(runtime: Runtime, user: User) -> list[tuple[int, str]]:
    query = (
        select(presence_changes.c.sequence, presence_changes.c.cause)
        .where(presence_changes.c.user_id == user.id)
        .order_by(presence_changes.c.id)
    )
    async with runtime.engine.connect() as conn:
        return [(row.sequence, row.cause) for row in await conn.execute(query)]


async def test_due_transitions_are_stored_with_their_change_log(runtime: Runtime, clock: FixedClock) -> None:
    """Past every fade and the expiry, one sweep logs each change once, as a timer change."""
    [user] = await _seed(runtime, 1)
    clock.set(T0 + timedelta(hours=2))
    assert await runtime.sweeper.run_due() == 3
    log = await _log(runtime, user)
    assert [cause for _, cause in log] == ["setPresence", "timer", "timer", "timer"]
    assert [seq for seq, _ in log] == sorted(seq for seq, _ in log)
    stored = await runtime.store.stored_presence(user.id)
    assert stored is not None
    state = stored.state
    assert state.visible.availability is Availability.OFFLINE
    assert state.next_change_at is None
    assert state.sequence == log[-1][0]


async def test_sweeping_again_changes_nothing(runtime: Runtime, clock: FixedClock) -> None:
    """A second sweep at the same time finds nothing due and logs nothing."""
    [user] = await _seed(runtime, 1)
    clock.set(T0 + timedelta(minutes=7))
    assert await runtime.sweeper.run_due() == 1
    assert await runtime.sweeper.run_due() == 0
    assert len(await _log(runtime, user)) == 2


async def test_a_read_shows_a_transition_once_it_is_stored(runtime: Runtime, clock: FixedClock) -> None:
    """Reads show the stored state: a due fade appears, with its sequence number, once the sweeper stores it."""
    [user] = await _seed(runtime, 1)
    clock.set(T0 + timedelta(minutes=11))
    [before] = await runtime.reader.load(TENANT.id, [user.id])
    assert before.state.visible.activity is Activity.AVAILABLE
    await runtime.sweeper.run_due()
    [after] = await runtime.reader.load(TENANT.id, [user.id])
    assert after.state.visible.activity is Activity.AWAY
    assert after.state.sequence > before.state.sequence
    assert after.state.changed_at == T0 + timedelta(minutes=10)


async def test_a_restart_loses_nothing_that_was_due(runtime: Runtime) -> None:
    """Transitions that fell due while no sweeper ran are stored by a worker started later (a new process)."""
    [user] = await _seed(runtime, 1)
    restarted = await build(runtime.settings, clock=FixedClock(T0 + timedelta(minutes=12)))
    try:
        assert await restarted.sweeper.run_due() == 2
    finally:
        await restarted.close()
    assert [cause for _, cause in await _log(runtime, user)] == ["setPresence", "timer", "timer"]


async def test_concurrent_sweepers_never_double_apply(runtime: Runtime, clock: FixedClock) -> None:
    """Sweepers of several processes (each with a writer of its own) store each transition exactly once."""
    users = await _seed(runtime, 30)
    clock.set(T0 + timedelta(minutes=11))
    others = [await build(runtime.settings, clock=clock) for _ in range(3)]
    try:
        sweepers = [Sweeper(r.writer, scan=7) for r in (runtime, *others)]
        logged = await asyncio.gather(*(s.run_due(wait=n % 2 == 0) for n, s in enumerate(sweepers)))
    finally:
        for other in others:
            await other.close()
    assert sum(logged) == 60
    for user in users:
        assert [cause for _, cause in await _log(runtime, user)] == ["setPresence", "timer", "timer"]


async def test_the_background_sweeper_picks_up_due_users(runtime: Runtime, clock: FixedClock) -> None:
    """run_forever stores a transition that falls due while it runs, without being asked."""
    [user] = await _seed(runtime, 1)
    sweeper = Sweeper(runtime.writer, interval=0.05)
    task = asyncio.create_task(sweeper.run_forever())
    try:
        clock.set(T0 + timedelta(minutes=5))
        for _ in range(200):  # at most 10 s; it takes one interval
            if len(await _log(runtime, user)) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert [cause for _, cause in await _log(runtime, user)] == ["setPresence", "timer"]
