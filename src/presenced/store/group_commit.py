"""Group commit: every presence write pending at a moment shares one transaction.

Implements ``presenced.services.ports.PresenceWriter``. Writes queue in the
order they are submitted; whenever no batch is running, one task takes every
write queued so far (up to ``MAX_WRITES``) into a batch, runs it on the
database (``SqliteBatches`` or ``PostgresBatches``), and answers each write
after the commit. While a batch commits, the next one fills up: under load,
one commit (and, on SQLite, one wait for the disk) serves many writes, and
writes to one user follow each other inside a batch without a lock queue.

The naive version, one transaction per write, is what this replaced::

    async with store.begin() as tx:            # BEGIN IMMEDIATE, or FOR UPDATE
        facts, state = await tx.lock_presence(user.id)
        ...                                    # ~10 statements
                                               # COMMIT: one fsync per write

A write that is refused (``decide`` raised) leaves the rest of its batch
alone. A batch that fails as a whole for one write's data (a constraint) is
run again one write at a time, so only that write fails; a database that is
unavailable fails the whole batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from presenced.services.entities import Decision, User, UserRef
from presenced.services.ports import Advance, Decide
from presenced.store.batches import Batch, Sweep, SweepPart, Write
from presenced.store.outages import is_outage, unavailable

log = logging.getLogger("presenced.store")

#: Writes per batch at most: a batch's statements grow with it, and its writes wait for all of it.
MAX_WRITES = 512
#: Due users per sweep transaction at most: large enough that an organisation's worth of fades
#: takes few commits, small enough that a write waits tens of milliseconds behind one.
MAX_SWEEP = 1000


class Backend(Protocol):
    statements: int

    async def run(self, batch: Batch) -> None:
        """Run the batch in one transaction, setting each item's outcome; raise if it did not commit."""
        ...

    async def due(self, limit: int) -> list[str]:
        """Up to ``limit`` users whose next transition is due now, in user-id order."""
        ...

    def unavailable(self, error: BaseException) -> bool:
        """Whether ``error`` means the database failed (not one write's data)."""
        ...

    async def close(self) -> None: ...


class GroupCommit:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._writes: deque[Write] = deque()
        self._sweeps: deque[Sweep] = deque()
        #: With both writes and sweeps waiting, batches take turns: a write waits for one sweep batch at most.
        self._sweep_next = False
        self._drainer: asyncio.Task[None] | None = None
        #: Called after each commit that logged changes, with whether it queued notifications.
        self.after_commit: list[Callable[[bool], None]] = []
        #: Called after each commit, before its writes are answered, with the users whose presence it stored.
        self.after_store: list[Callable[[list[str]], None]] = []
        #: Batches committed (or failed), for tests and benchmarks.
        self.batches = 0

    async def write(self, user: User | UserRef, decide: Decide) -> Decision:
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._writes.append(Write(user, decide, future))
        self._start()
        return await future

    async def due(self, limit: int) -> list[str]:
        return await self.backend.due(limit)

    async def sweep(self, advance: Advance, user_ids: Sequence[str], wait: bool) -> tuple[int, int]:
        if not user_ids:
            return 0, 0
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._sweeps.append(Sweep(advance, sorted(user_ids), wait, future))
        self._start()
        return await future

    async def close(self) -> None:
        """Finish what was submitted, then close the connection."""
        if self._drainer is not None:
            await asyncio.shield(self._drainer)
        await self.backend.close()

    def _start(self) -> None:
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._writes or self._sweeps:
                batch = self._take()
                if batch is None:
                    continue
                try:
                    await self._commit(batch)
                except Exception as error:  # never leave a caller waiting, whatever failed
                    log.exception("a batch failed unexpectedly")
                    batch.fail(error)
                    batch.answer()
        finally:
            self._drainer = None

    def _take(self) -> Batch | None:
        """The next batch: the writes waiting (up to ``MAX_WRITES``), or the next part of a sweep.

        A write (or sweep) whose caller stopped waiting before its batch began is
        dropped: it was never acknowledged, and nobody is left to tell.
        """
        if self._sweeps and (self._sweep_next or not self._writes):
            self._sweep_next = False
            sweep = self._sweeps[0]
            if sweep.future.done():
                self._sweeps.popleft()
                return None
            part = sweep.user_ids[sweep.done : sweep.done + MAX_SWEEP]
            sweep.done += len(part)
            if sweep.done >= len(sweep.user_ids):
                self._sweeps.popleft()
            return Batch([], SweepPart(sweep, part))
        self._sweep_next = True
        writes: list[Write] = []
        while self._writes and len(writes) < MAX_WRITES:
            write = self._writes.popleft()
            if not write.future.done():
                writes.append(write)
        return Batch(writes) if writes else None

    async def _commit(self, batch: Batch) -> None:
        self.batches += 1
        try:
            await self.backend.run(batch)
        except asyncio.CancelledError as stopped:
            batch.fail(stopped)
            batch.answer()
            raise
        except Exception as error:
            if len(batch.writes) > 1 and not self.backend.unavailable(error):
                log.warning("a batch of %d writes failed (%s); retrying each alone", len(batch.writes), error)
                for write in batch.writes:
                    await self._commit(Batch([write]))
                return
            # A database that failed refuses the batch's writes as unavailable (503, Retry-After): none
            # of them committed, and the client may send them again.
            batch.fail(unavailable(error) if is_outage(error) else error)
        else:
            stored = batch.stored_users()
            if stored:
                for forget in self.after_store:
                    forget(stored)
        batch.answer()
        if batch.logged:
            for hook in self.after_commit:
                hook(batch.notified > 0)
