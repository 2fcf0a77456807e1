"""The throttle's arithmetic (services.throttle), with its shared counters in the database, on both stores:
two ``Throttle`` objects on one database stand for two processes."""

from __future__ import annotations

import pytest

from presenced.bootstrap import Runtime
from presenced.config import parse_throttle
from presenced.errors import ConfigurationError, TooManyRequests
from presenced.services.throttle import Limit, Throttle
from presenced.store.throttle import SqlThrottleCounts

TENANT = "00000000-0000-0000-0000-0000000000aa"
APP, OTHER_APP = "app-1", "app-2"


class Wall:
    """A wall clock the test moves."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def _admitted(throttle: Throttle, count: int, app: str = APP) -> int:
    admitted = 0
    for _ in range(count):
        try:
            throttle.admit(TENANT, app)
        except TooManyRequests:
            continue
        admitted += 1
    return admitted


@pytest.fixture
def wall() -> Wall:
    return Wall(1_000_000 * 30 + 5)


@pytest.mark.parametrize(
    ("text", "limit"),
    [("graph", (10_000, 30)), ("graph-1500", (1_500, 30)), ("off", None), ("100/30", (100, 30)),
     (" GRAPH ", (10_000, 30))],
)  # fmt: skip
def test_the_setting_reads_graph_off_or_a_rate(text: str, limit: tuple[int, int] | None) -> None:
    assert parse_throttle(text) == limit


@pytest.mark.parametrize("text", ["", "fast", "0/30", "10/0", "10/3601", "10 / 30", "-1/30", "1e3/30"])
def test_a_setting_that_is_none_of_those_is_refused_with_its_name(text: str) -> None:
    with pytest.raises(ConfigurationError, match="PRESENCED_THROTTLE"):
        parse_throttle(text)


async def test_one_process_admits_the_limit_exactly_then_refuses_until_the_window_ends(
    runtime: Runtime, wall: Wall
) -> None:
    throttle = Throttle(Limit(5, 30), SqlThrottleCounts(runtime.engine), now=wall)
    assert _admitted(throttle, 8) == 5
    with pytest.raises(TooManyRequests) as refused:
        throttle.admit(TENANT, APP)
    assert refused.value.status == 429
    assert refused.value.retry_after == 25
    assert _admitted(throttle, 5, OTHER_APP) == 5, "another app has a limit of its own"
    await throttle.sync()
    wall.at += 25
    assert _admitted(throttle, 8) == 5, "a new window admits the limit again"


async def test_two_processes_on_one_database_share_the_limit(runtime: Runtime, wall: Wall) -> None:
    counts = SqlThrottleCounts(runtime.engine)
    first, second = Throttle(Limit(10, 30), counts, now=wall), Throttle(Limit(10, 30), counts, now=wall)
    assert _admitted(first, 7) == 7
    await first.sync()
    # A key this process has not seen yet this window is admitted until its next sync: the slack.
    assert _admitted(second, 1) == 1
    await second.sync()
    assert _admitted(second, 10) == 2
    await second.sync()
    await first.sync()
    assert _admitted(first, 5) == 0
    wall.at += 30
    assert _admitted(second, 4) == 4


async def test_counts_made_during_a_sync_are_kept_for_the_next(runtime: Runtime, wall: Wall) -> None:
    """Between taking what to send and the database's answer, requests go on being admitted: they count."""
    counts = SqlThrottleCounts(runtime.engine)
    throttle = Throttle(Limit(6, 30), counts, now=wall)
    assert _admitted(throttle, 2) == 2
    original = counts.add

    async def add_while_admitting(window: int, seconds: int, deltas: dict[tuple[str, str], int]) -> dict:  # type: ignore[type-arg]
        assert _admitted(throttle, 2) == 2
        return await original(window, seconds, deltas)

    counts.add = add_while_admitting  # type: ignore[method-assign]
    await throttle.sync()
    counts.add = original  # type: ignore[method-assign]
    assert _admitted(throttle, 5) == 2
    await throttle.sync()
    other = Throttle(Limit(6, 30), counts, now=wall)
    await other.sync()
    assert _admitted(other, 1) == 1, "the other process has not learnt this key yet: it admits until its next sync"
    await other.sync()
    assert _admitted(other, 1) == 0


async def test_an_idle_process_stops_syncing_once_its_window_ends(runtime: Runtime, wall: Wall) -> None:
    counts = SqlThrottleCounts(runtime.engine)
    throttle = Throttle(Limit(10, 30), counts, now=wall)
    assert _admitted(throttle, 3) == 3
    sent: list[dict[tuple[str, str], int]] = []
    original = counts.add

    async def recording(window: int, seconds: int, deltas: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
        sent.append(dict(deltas))
        return await original(window, seconds, deltas)

    counts.add = recording  # type: ignore[method-assign]
    await throttle.sync()
    await throttle.sync()
    assert sent == [{(TENANT, APP): 3}, {(TENANT, APP): 0}], "within its window a key's total is kept fresh"
    wall.at += 30
    await throttle.sync()
    await throttle.sync()
    assert len(sent) == 2, "after the window, nothing is sent until a request comes"
    assert _admitted(throttle, 10) == 10
