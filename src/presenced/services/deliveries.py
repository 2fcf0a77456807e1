"""Delivering change notifications: at least once, in order per user, never held up by a slow receiver.

The worker takes due notifications from the outbox, leasing them for a few seconds and renewing
the lease while it holds them (queued or in flight), so a worker that dies mid-send leaves them
to be taken again within seconds; it groups them per
notification URL, and sends each group as one ``changeNotificationCollection``.
One URL has one request in flight at a time, so a user's changes arrive in
sequence order — except after a worker dies mid-send: what it had taken goes out
again when its lease ends, after what was written meanwhile. Different URLs are
sent to concurrently. A 2xx within 3 s is
delivery; anything else is retried with exponential backoff for up to 4 hours,
then given up and recorded. Delivery times are real time.

Many notifications at once (one change of a user with a thousand subscribers) cost few transactions: a
round that takes a full batch is followed by the next at once, and the answers of every URL are recorded
together, in one transaction per round of recording, while the requests go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from presenced.logs import with_fields
from presenced.metrics import DELIVERIES, DELIVERY_LATENCY, WEBHOOK_REQUEST_DURATION
from presenced.services.entities import DeliveryResult, PendingNotification
from presenced.services.faults import DeliveryFaults, Faults
from presenced.services.loops import repeat
from presenced.services.ports import SubscriptionStore

log = logging.getLogger("presenced.deliveries")

#: How long a taken notification is reserved for the worker that took it, unless renewed.
LEASE = timedelta(seconds=6)
#: How often the leases of what a worker holds are renewed (a third of the lease: two renewals may fail).
RENEW = timedelta(seconds=2)
FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(minutes=15)
GIVE_UP_AFTER = timedelta(hours=4)
BATCH = 2000
#: Notifications sent in one POST at most.
PER_REQUEST = 100
#: Seconds answers wait to be recorded together with those that come just after them.
RECORD_AFTER = 0.05


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None
    latency_ms: int
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class NotificationSender(Protocol):
    async def send(self, url: str, notifications: Sequence[PendingNotification]) -> Answer:
        """POST these notifications (all for ``url``) as one collection; the receiver's answer."""
        ...


_DELIVERED, _RETRY, _FAILED = (DELIVERIES.labels(outcome) for outcome in ("delivered", "retry", "failed"))

#: A delivery a fault rule dropped: a failed attempt with no answer.
DROPPED = Answer(None, 0, "dropped by a fault rule")


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s, … doubling up to 15 minutes between tries."""
    doubled: timedelta = FIRST_RETRY * (2 ** max(min(attempts, 20) - 1, 0))
    return min(doubled, MAX_RETRY)


def waited(attempts: int) -> timedelta:
    """How long retries have waited in all, after ``attempts`` tries: about 4 hours after 23."""
    return sum((backoff(n) for n in range(1, attempts + 1)), timedelta())


class Deliveries:
    def __init__(
        self,
        store: SubscriptionStore,
        sender: NotificationSender,
        now: Callable[[], datetime],
        interval: float = 0.2,
        faults: Faults | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        #: The emulator's notification rules (docs/emulator.md, "Notification faults"); None off the emulator.
        self._faults = faults
        self._now = now
        self._interval = interval
        self._busy_urls: set[str] = set()
        self._queues: dict[str, list[PendingNotification]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        #: What this worker holds (queued or in flight), whose leases it renews.
        self._held: set[str] = set()
        self._renewed: datetime | None = None
        #: Results waiting to be recorded, and the future their senders wait on.
        self._unrecorded: list[DeliveryResult] = []
        self._recorded: asyncio.Future[None] | None = None
        self._recording: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look for new notifications now rather than at the next tick."""
        self._wake.set()

    async def run_forever(self) -> None:
        await repeat(self.deliver_due, self._interval, "delivery round", log, self._wake)

    async def deliver_due(self) -> None:
        """Renew the leases held, take what is due and queue it per URL; a URL without a request in flight
        gets a sender task."""
        now = self._now()
        if self._held and (self._renewed is None or now - self._renewed >= RENEW):
            await self._store.renew_leases(sorted(self._held), now + LEASE)
            self._renewed = now
        due = await self._store.claim_due(now, LEASE, BATCH)
        if len(due) == BATCH:  # more may be due: the next round comes at once
            self._wake.set()
        for item in due:
            self._held.add(item.id)
            url = item.url
            queue = self._queues.setdefault(url, [])
            queue.append(item)
            if len(queue) == 1 and url not in self._busy_urls:
                self._busy_urls.add(url)
                task = asyncio.create_task(self._send_all(url))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the requests in flight (the tests wait for them)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def finish(self, within: float) -> None:
        """On shutdown (with the delivery rounds stopped): let the requests in flight be answered and recorded,
        for up to ``within`` seconds; what is not by then is let go, and its lease hands it to another worker
        (or this one, restarted) within ``LEASE``."""
        try:
            await asyncio.wait_for(self.drain(), max(within, 0.0))
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _send_all(self, url: str) -> None:
        """Send the URL's queue in order, one request at a time, until it is empty."""
        chunk: list[PendingNotification] = []
        try:
            while self._queues.get(url):
                faults = await self._faults.for_delivery(self._queues[url]) if self._faults is not None else None
                if faults is not None and faults.hold:
                    await asyncio.sleep(faults.hold)  # what is due meanwhile joins the queue (a reorder window)
                chunk = self._queues[url][:PER_REQUEST]
                del self._queues[url][:PER_REQUEST]
                if faults is None:
                    answer = await self._send(url, chunk)
                    results = [self._result(item, answer) for item in chunk]
                else:
                    results = await self._send_faulted(url, chunk, faults)
                await self._record(results)
                _log_results(chunk, results)
                self._held.difference_update(item.id for item in chunk)
                chunk = []
        except Exception:
            log.exception("sending to a notification URL failed", extra=with_fields(job="delivery"))
        finally:
            # Whatever was not recorded is let go: its lease lapses and a round takes it again.
            for item in (*chunk, *self._queues.pop(url, ())):
                self._held.discard(item.id)
            self._busy_urls.discard(url)

    async def _record(self, results: list[DeliveryResult]) -> None:
        """Record ``results`` with those of the other URLs that are waiting: one transaction for all of them."""
        self._unrecorded.extend(results)
        if self._recorded is None:
            self._recorded = asyncio.get_running_loop().create_future()
        recorded = self._recorded
        if self._recording is None or self._recording.done():
            self._recording = asyncio.create_task(self._record_waiting())
            self._tasks.add(self._recording)
            self._recording.add_done_callback(self._tasks.discard)
        await asyncio.shield(recorded)

    async def _record_waiting(self) -> None:
        while self._unrecorded:
            # A moment for the requests in flight to add theirs: a burst is recorded in a few transactions.
            await asyncio.sleep(RECORD_AFTER)
            results, self._unrecorded = self._unrecorded, []
            recorded, self._recorded = self._recorded, None
            assert recorded is not None
            try:
                await self._store.record(results, self._now())
            except asyncio.CancelledError:
                recorded.cancel()
                raise
            except Exception as error:  # each sender logs it, and lets its notifications go (as before)
                recorded.set_exception(error)
                recorded.exception()  # a sender that was let go no longer waits for it: not left unretrieved
            else:
                recorded.set_result(None)

    async def _send_faulted(
        self, url: str, chunk: list[PendingNotification], faults: DeliveryFaults
    ) -> list[DeliveryResult]:
        """Send as the fault rules say: dropped notifications are failed attempts (retried as any failure is);
        reordered ones go one per request, the last first; duplicated ones are sent a second time."""
        results: list[DeliveryResult] = []
        sent: list[PendingNotification] = []
        together: list[PendingNotification] = []
        reordered: list[PendingNotification] = []
        for item in chunk:
            if faults.does("drop", item):
                results.append(self._result(item, DROPPED))
            else:
                sent.append(item)
                (reordered if faults.does("reorder", item) else together).append(item)
        for group in ([together] if together else []) + [[item] for item in reversed(reordered)]:
            answer = await self._send(url, group)
            results += [self._result(item, answer) for item in group]
        twice = [item for item in sent if faults.does("duplicate", item)]
        if twice:
            await self._sender.send(url, twice)  # the second copy; its answer changes nothing
        return results

    async def _send(self, url: str, notifications: Sequence[PendingNotification]) -> Answer:
        answer = await self._sender.send(url, notifications)
        WEBHOOK_REQUEST_DURATION.observe(answer.latency_ms / 1000)
        return answer

    def _result(self, item: PendingNotification, answer: Answer) -> DeliveryResult:
        """What became of one notification, counted (docs/deployment.md, "Metrics")."""
        if answer.delivered:
            _DELIVERED.inc()
            DELIVERY_LATENCY.observe(max((self._now() - item.created).total_seconds(), 0.0))
            return DeliveryResult(item.id, answer.status, answer.latency_ms, None, "delivered")
        if waited(item.attempts) >= GIVE_UP_AFTER:
            _FAILED.inc()
            return DeliveryResult(item.id, answer.status, answer.latency_ms, answer.error, "failed")
        _RETRY.inc()
        retry_at = self._now() + backoff(item.attempts)
        return DeliveryResult(item.id, answer.status, answer.latency_ms, answer.error, "retry", retry_at)


def _log_results(chunk: list[PendingNotification], results: list[DeliveryResult]) -> None:
    """A notification given up is a warning; each answer is a debug line (the URL is not logged: it is the
    subscriber's, and may carry a secret of theirs)."""
    sent = {item.id: item for item in chunk}
    for result in results:
        item = sent.get(result.notification_id)
        if item is None or (result.outcome != "failed" and not log.isEnabledFor(logging.DEBUG)):
            continue
        fields = with_fields(
            job="delivery",
            tenant_id=item.subscription.tenant_id,
            app_id=item.subscription.app_id,
            subscription_id=item.subscription.id,
            status=result.status,
            attempts=item.attempts,
        )
        if result.outcome == "failed":
            log.warning("gave up a notification after %d attempts", item.attempts, extra=fields)
        else:
            log.debug("notification sent: %s", result.outcome, extra=fields)
