"""A worker holding a notification keeps it while it lives, by renewing its lease; once it stops (dies), another
worker takes the notification seconds later. Two delivery workers on one real store; their clock is driven by the
test, and their sender is the port's simplest implementation: one that holds the POST until told."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx

from presenced.bootstrap import Runtime
from presenced.services.deliveries import LEASE, RENEW, Answer, Deliveries
from presenced.services.demo import seed_demo
from presenced.services.entities import PendingNotification
from presenced.store.subscriptions import SqlSubscriptionStore
from tests.notify.conftest import Receiver
from tests.notify.subscribing import subscribe
from tests.support import Tokens, bearer


class Sender:
    """Records what it is asked to send; while ``held`` is not set, each POST waits (a slow receiver)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.held = asyncio.Event()

    async def send(self, url: str, notifications: Sequence[PendingNotification]) -> Answer:
        self.sent += [n.id for n in notifications]
        await self.held.wait()
        return Answer(202, 1, None)


class Watched:
    """A demo user whose presence a subscription watches; each change queues a notification."""

    def __init__(self, hooked: Runtime, api: httpx.AsyncClient) -> None:
        self.hooked, self.api = hooked, api

    async def start(self, receiver: Receiver) -> Watched:
        demo = await seed_demo(self.hooked.store, self.hooked.writer, self.hooked.clock)
        self.tokens = Tokens(self.hooked, demo.tenant.id)
        self.user = demo.users[-1]
        resource = f"communications/presences/{self.user.id}"
        created = await subscribe(self.api, self.tokens.app("Presence.Read.All"), receiver, resource)
        assert created.status_code == 201, created.text
        return self

    async def change(self, availability: str, activity: str) -> None:
        body = {"sessionId": "11111111-2222-3333-4444-555555555555", "availability": availability,
                "activity": activity}  # fmt: skip
        headers = bearer(self.tokens.app("Presence.ReadWrite.All"))
        path = f"/v1.0/users/{self.user.id}/presence/setPresence"
        assert (await self.api.post(path, json=body, headers=headers)).status_code == 200


async def test_a_held_lease_is_renewed_and_lapses_when_its_worker_stops(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    watched = await Watched(hooked, api).start(receiver)
    await watched.change("Busy", "InACall")

    now = [datetime.now(UTC) + timedelta(minutes=1)]
    store = SqlSubscriptionStore(hooked.store)
    first, second = Sender(), Sender()
    a = Deliveries(store, first, lambda: now[0])
    b = Deliveries(store, second, lambda: now[0])
    second.held.set()

    await a.deliver_due()
    await asyncio.sleep(0.05)
    assert len(first.sent) == 1, "worker A took the notification and is sending it"
    # A lives on, its POST still in flight: its rounds renew the lease past the first one's end.
    now[0] += RENEW
    await a.deliver_due()
    now[0] += LEASE - RENEW + timedelta(seconds=1)
    await b.deliver_due()
    await b.drain()
    assert second.sent == [], "worker B took a notification that A held and renewed"
    # A stops renewing (as if killed): within a lease, B takes the notification again.
    now[0] += LEASE
    await b.deliver_due()
    await b.drain()
    assert second.sent == first.sent
    first.held.set()
    await a.drain()


async def test_on_shutdown_a_post_in_flight_is_answered_and_one_that_is_not_is_let_go(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    watched = await Watched(hooked, api).start(receiver)
    await watched.change("Busy", "InACall")

    now = [datetime.now(UTC) + timedelta(minutes=1)]
    store = SqlSubscriptionStore(hooked.store)
    stuck, later = Sender(), Sender()
    a = Deliveries(store, stuck, lambda: now[0])
    await a.deliver_due()
    await asyncio.sleep(0.05)
    assert len(stuck.sent) == 1
    # The receiver never answers within the time left: the POST is given up, not recorded as anything.
    await a.finish(0.1)
    later.held.set()
    b = Deliveries(store, later, lambda: now[0])
    await b.deliver_due()
    await b.drain()
    assert later.sent == [], "the notification is still leased to the stopped worker"
    now[0] += LEASE + timedelta(seconds=1)
    await b.deliver_due()
    await b.drain()
    assert later.sent == stuck.sent, "once the lease ended, another worker sent it"

    # A receiver that answers in time: finish waits for the answer and records the delivery.
    await watched.change("Away", "Away")
    answering = Sender()
    c = Deliveries(store, answering, lambda: now[0])
    await c.deliver_due()
    await asyncio.sleep(0.05)
    assert len(answering.sent) == 1
    asyncio.get_running_loop().call_later(0.2, answering.held.set)
    await c.finish(10)
    now[0] += LEASE * 2
    d = Deliveries(store, later, lambda: now[0])
    await d.deliver_due()
    await d.drain()
    assert answering.sent[0] not in later.sent[1:], "a delivery finished at shutdown was sent again"
