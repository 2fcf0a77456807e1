"""Last seen of many users at once (the People page's read): the same answers as asking for each user on their own,
from one read of the change log, on both stores and on the manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from presenced.auth.principal import Principal
from presenced.bootstrap import Runtime
from presenced.services.demo import DEMO_TENANT_ID, demo_user_id, demo_users, seed_demo
from presenced.services.history import RECENT_PER_USER
from tests.support import APP_ID, build_on_manual_clock

START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
NESTOR = demo_user_id("nestor")


@pytest.fixture
async def runtime(tmp_path: Path, key_folder: Path, database_url: str | None) -> AsyncIterator[Runtime]:
    """The demo directory on the manual clock, at ``START``."""
    built = await build_on_manual_clock(tmp_path, key_folder, database_url)
    try:
        assert built.emulator is not None
        await built.emulator.move(to=START)
        await seed_demo(built.store, built.writer, built.clock)
        yield built
    finally:
        await built.close()


def app() -> Principal:
    """An application that may read and write everyone's presence."""
    roles = frozenset({"Presence.Read.All", "Presence.ReadWrite.All"})
    return Principal(DEMO_TENANT_ID, APP_ID, datetime.now(UTC) + timedelta(hours=1), roles=roles)


async def one_by_one(runtime: Runtime, ids: list[str]) -> dict[str, datetime | None]:
    return {user_id: (await runtime.history.last_seen(app(), user_id))[1] for user_id in ids}


async def all_at_once(runtime: Runtime, ids: list[str]) -> dict[str, datetime | None]:
    return {seen.view.user_id: seen.last_seen for seen in await runtime.history.last_seen_many(app(), ids)}


async def test_many_at_once_agrees_with_one_by_one(runtime: Runtime) -> None:
    """Everyone's last seen, read at once, is what each read on their own gives: now for whoever is not Offline,
    the instant an Offline person's presence went Offline, none for someone never seen; also for someone whose
    newest entries are all Offline ones (status messages set while Offline), past what one read takes."""
    assert runtime.emulator is not None
    ids = [user.id for user in demo_users()]
    before = await all_at_once(runtime, ids)
    assert before == await one_by_one(runtime, ids)
    assert before[NESTOR] is None, "Nestor was never seen"
    assert START in before.values(), "somebody is online now"

    await runtime.actions.set_presence(app(), NESTOR, APP_ID, "Available", "Available", "PT1H")
    await runtime.emulator.move(advance="PT30M")
    assert (await all_at_once(runtime, [NESTOR]))[NESTOR] == START + timedelta(minutes=30), "online: now"
    await runtime.emulator.move(advance="PT2H")
    faded = await all_at_once(runtime, ids)
    assert faded == await one_by_one(runtime, ids)
    went_offline = faded[NESTOR]
    assert went_offline is not None
    assert START < went_offline <= START + timedelta(hours=1, minutes=5)

    for number in range(RECENT_PER_USER + 2):
        await runtime.emulator.move(advance="PT1M")
        message = f"Back tomorrow ({number})"
        await runtime.actions.set_status_message(app(), NESTOR, message, "text", None, None, False)
    logged = (await runtime.history.page(app(), NESTOR, START, None, 0, 100)).changes
    offline_after = [c for c in logged if c.state.changed_at > went_offline]
    assert len(offline_after) >= RECENT_PER_USER + 2, "each message is an Offline entry of the log"
    later = await all_at_once(runtime, ids)
    assert later == await one_by_one(runtime, ids)
    assert later[NESTOR] == went_offline


async def test_unknown_ids_are_left_out_and_order_is_kept(runtime: Runtime) -> None:
    ids = [demo_user_id("megan"), "00000000-0000-0000-0000-000000000bad", NESTOR]
    seen = await runtime.history.last_seen_many(app(), ids)
    assert [s.view.user_id for s in seen] == [demo_user_id("megan"), NESTOR]
