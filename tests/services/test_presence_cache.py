"""Single reads from memory: fresh within the process at once, across processes within ``MAX_AGE``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from presenced.auth.principal import Principal
from presenced.bootstrap import Runtime, build
from presenced.config import Settings
from presenced.domain.model import OFFLINE
from presenced.domain.sequence import PresenceState
from presenced.errors import ResourceNotFound
from presenced.services.demo import DEMO_TENANT_ID, demo_user_id, seed_demo
from presenced.services.directory import Actor
from presenced.services.entities import UserPresence
from presenced.services.presence_cache import MAX_AGE, CachedPresenceReader
from tests.support import APP_ID, BASE_URL

TENANT = "00000000-0000-0000-0000-000000000001"
ANNA = "00000000-0000-0000-0000-0000000000a1"
ADELE = demo_user_id("adele")


class CountingReader:
    """A reader over a dict of user id → sequence; counts its queries; ``gate`` holds a query until set."""

    def __init__(self) -> None:
        self.sequences = {ANNA: 1}
        self.queries = 0
        self.gate: asyncio.Event | None = None

    async def load(self, tenant_id: str, refs: Sequence[str]) -> list[UserPresence]:
        self.queries += 1
        found = [
            UserPresence(
                ref.lower(), None, PresenceState(OFFLINE, self.sequences[ref.lower()], datetime.now(UTC), None)
            )
            for ref in refs
            if tenant_id == TENANT and ref.lower() in self.sequences
        ]
        if self.gate is not None:
            await self.gate.wait()
        return found


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sequence(records: list[UserPresence]) -> int:
    return records[0].state.sequence


async def test_a_read_is_served_from_memory_until_it_is_max_age_old() -> None:
    reader, clock = CountingReader(), Clock()
    cache = CachedPresenceReader(reader, monotonic=clock)
    assert sequence(await cache.load(TENANT, [ANNA])) == 1
    reader.sequences[ANNA] = 2  # changed where the cache cannot hear of it
    clock.now += MAX_AGE - 0.01
    assert sequence(await cache.load(TENANT, [ANNA.upper()])) == 1  # object ids fold to lower case
    assert reader.queries == 1
    clock.now += 0.01
    assert sequence(await cache.load(TENANT, [ANNA])) == 2
    assert reader.queries == 2


async def test_forgetting_a_user_reads_them_again_at_once() -> None:
    reader = CountingReader()
    cache = CachedPresenceReader(reader, monotonic=Clock())
    await cache.load(TENANT, [ANNA])
    reader.sequences[ANNA] = 2
    cache.forget([ANNA])
    assert sequence(await cache.load(TENANT, [ANNA])) == 2


async def test_a_read_begun_before_a_forget_is_not_kept() -> None:
    """A query that was on its way when the user changed brings the old state: it is answered, not kept."""
    reader = CountingReader()
    cache = CachedPresenceReader(reader, monotonic=Clock())
    reader.gate = asyncio.Event()
    slow = asyncio.create_task(cache.load(TENANT, [ANNA]))
    await asyncio.sleep(0)
    reader.sequences[ANNA] = 2
    cache.forget([ANNA])
    reader.gate.set()
    assert sequence(await slow) == 1
    reader.gate = None
    assert sequence(await cache.load(TENANT, [ANNA])) == 2


async def test_upns_many_users_other_tenants_and_unknown_users_always_query() -> None:
    reader = CountingReader()
    cache = CachedPresenceReader(reader, monotonic=Clock())
    await cache.load(TENANT, [ANNA])
    await cache.load(TENANT, ["anna@contoso.example"])
    await cache.load(TENANT, [ANNA, ANNA])
    assert await cache.load("00000000-0000-0000-0000-000000000002", [ANNA]) == []
    assert await cache.load(TENANT, ["00000000-0000-0000-0000-00000000dead"]) == []
    assert await cache.load(TENANT, ["00000000-0000-0000-0000-00000000dead"]) == []
    assert reader.queries == 6
    assert len(cache) == 1


async def test_the_cache_is_bounded_oldest_out_first() -> None:
    reader = CountingReader()
    users = [f"00000000-0000-0000-0000-{n:012d}" for n in range(5)]
    reader.sequences = dict.fromkeys(users, 1)
    cache = CachedPresenceReader(reader, max_entries=3, monotonic=Clock())
    for user in users:
        await cache.load(TENANT, [user])
    assert len(cache) == 3
    before = reader.queries
    await cache.load(TENANT, [users[-1]])
    await cache.load(TENANT, [users[0]])
    assert reader.queries == before + 1  # the newest was kept, the oldest had gone


# ---- on the real stores, through the services


def app() -> Principal:
    roles = frozenset({"Presence.Read.All", "Presence.ReadWrite.All"})
    return Principal(DEMO_TENANT_ID, APP_ID, datetime.now(UTC) + timedelta(hours=1), roles=roles)


async def availability(runtime: Runtime, user_id: str = ADELE) -> str:
    view = await runtime.presence.get_presence(app(), user_id)
    return str(view.state.visible.availability.value)


async def set_availability(runtime: Runtime, value: str, user_id: str = ADELE) -> None:
    await runtime.actions.set_preferred_presence(app(), user_id, value, value, "PT1H")


@pytest.fixture
async def processes(tmp_path: Path, key_folder: Path, shared_url: str) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """Two runtimes on one database, as two processes would be (the second follows the change feed, as
    ``serve`` does)."""
    built: list[Runtime] = []
    for name in ("a", "b"):
        data_dir = tmp_path / name
        data_dir.mkdir()
        (data_dir / "keys").symlink_to(key_folder)
        built.append(await build(Settings(data_dir=data_dir, database_url=shared_url, public_url=BASE_URL)))
    first, second = built
    await seed_demo(first.store, first.writer, first.clock)
    following = asyncio.create_task(second.feed.follow(second.cached_reader.changed))
    try:
        yield first, second
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        for runtime in built:
            await runtime.close()


async def test_a_process_reads_its_own_writes_at_once(processes: tuple[Runtime, Runtime]) -> None:
    first, _ = processes
    for value in ("Busy", "Away", "DoNotDisturb", "Available", "BeRightBack"):
        await availability(first)  # cached now
        await set_availability(first, value)
        assert await availability(first) == value
    assert first.cached_reader.hits > 0


async def test_another_process_reads_a_write_within_max_age(processes: tuple[Runtime, Runtime]) -> None:
    """A write acknowledged by one process is read by the other within ``MAX_AGE`` (the change feed usually
    brings it sooner; the bound holds whatever the feed does)."""
    first, second = processes
    for value in ("Busy", "Away", "DoNotDisturb"):
        await availability(second)  # cached there
        await set_availability(first, value)
        written = asyncio.get_running_loop().time()
        seen = await availability(second)
        while seen != value:
            assert asyncio.get_running_loop().time() - written <= MAX_AGE + 0.25, f"still {seen}"
            await asyncio.sleep(0.02)
            seen = await availability(second)


async def test_without_the_feed_the_age_alone_bounds_it(tmp_path: Path, key_folder: Path, shared_url: str) -> None:
    built: list[Runtime] = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "keys").symlink_to(key_folder)
        built.append(await build(Settings(data_dir=tmp_path / name, database_url=shared_url, public_url=BASE_URL)))
    first, second = built
    try:
        await seed_demo(first.store, first.writer, first.clock)
        await availability(second)
        await set_availability(first, "Away")
        await asyncio.sleep(MAX_AGE)
        assert await availability(second) == "Away"
    finally:
        for runtime in built:
            await runtime.close()


async def test_a_deleted_user_is_gone_at_once_in_the_deleting_process(processes: tuple[Runtime, Runtime]) -> None:
    first, second = processes
    await availability(first)
    await first.directory.delete_user(Actor.operator(DEMO_TENANT_ID), ADELE)
    with pytest.raises(ResourceNotFound):
        await availability(first)
    await asyncio.sleep(MAX_AGE)
    with pytest.raises(ResourceNotFound):
        await availability(second)
