"""A query whose task is cancelled (a process shutting down, a client gone) ends in the cancellation, never in
a ``ServiceUnavailable`` that the task's loop would take for an outage and carry on after."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text

from presenced.bootstrap import Runtime
from presenced.services.loops import repeat

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("postgres_url")
    return url


async def _sleep_in_the_database(runtime: Runtime) -> None:
    async with runtime.engine.connect() as conn:
        await conn.execute(text("SELECT pg_sleep(30)"))


async def test_a_cancelled_query_raises_the_cancellation(runtime: Runtime) -> None:
    task = asyncio.create_task(_sleep_in_the_database(runtime))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_background_loop_cancelled_mid_query_ends(runtime: Runtime) -> None:
    """As a job of the worker is at shutdown: it stops, however often its round was on its way."""
    loop = asyncio.create_task(repeat(lambda: _sleep_in_the_database(runtime), 0.1, "sleeping", logging.getLogger()))
    await asyncio.sleep(0.5)
    loop.cancel()
    done, _ = await asyncio.wait({loop}, timeout=10)
    assert done, "the loop carried on after its cancellation"
    assert loop.cancelled()
