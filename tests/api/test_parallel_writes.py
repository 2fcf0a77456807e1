"""Parallel writes to one user through several connections lose nothing and keep the log in order."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import select

from presenced.bootstrap import Runtime
from presenced.domain.aggregate import aggregate
from presenced.services.demo import DemoTenant, demo_user_id
from presenced.store.codec import decode_visible
from presenced.store.schema import presence_changes
from tests.support import T0, Tokens, bearer

NESTOR = demo_user_id("nestor")
APPS = [str(uuid.UUID(int=500 + n)) for n in range(5)]
PAIRS = [("Available", "Available"), ("Busy", "InACall"), ("Away", "Away"), ("DoNotDisturb", "Presenting")]


async def test_parallel_set_presence_from_several_apps(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime, demo: DemoTenant
) -> None:
    """Every acknowledged write is kept, the stored presence is the aggregate of the stored facts, and the
    change log's sequence numbers only rise."""
    last: dict[str, tuple[str, str]] = {}

    async def app_writes(app_id: str, rounds: int) -> None:
        token = tokens.app("Presence.ReadWrite.All", app_id=app_id)
        for n in range(rounds):
            availability, activity = PAIRS[(n + APPS.index(app_id)) % len(PAIRS)]
            response = await client.post(
                f"/v1.0/users/{NESTOR}/presence/setPresence",
                json={
                    "sessionId": app_id,
                    "availability": availability,
                    "activity": activity,
                    "expirationDuration": "PT1H",
                },
                headers=bearer(token),
            )
            assert response.status_code == 200, response.text
            last[app_id] = (availability, activity)

    await asyncio.gather(*(app_writes(app_id, 8) for app_id in APPS))

    stored = await runtime.store.stored_presence(NESTOR)
    assert stored is not None
    facts, state = stored.facts, stored.state
    assert {s.app_id: (s.availability.value, s.activity.value) for s in facts.sessions} == last
    assert state.visible == aggregate(facts, T0).visible
    query = select(presence_changes).where(presence_changes.c.user_id == NESTOR).order_by(presence_changes.c.id)
    async with runtime.engine.connect() as conn:
        log = (await conn.execute(query)).mappings().all()
    sequences = [row["sequence"] for row in log]
    assert sequences == sorted(set(sequences))
    assert sequences[-1] == state.sequence
    assert decode_visible(log[-1]["visible"]) == state.visible
