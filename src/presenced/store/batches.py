"""One group-commit batch: its writes decided in order (or a sweep's due users advanced), and the rows to store.

Driver-neutral: the SQLite and PostgreSQL writers load the batch's users, hand
the rows to ``Batch.decide`` (writes) or ``Batch.advance`` (a sweep), and store
what ``Rows`` lists, a statement per table, then commit. The rows are
positional tuples in the order of the statements in ``presenced.store.batch_sql``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from presenced.domain.model import PresenceFacts, Session
from presenced.domain.sequence import Change, PresenceState
from presenced.errors import UserNotFound
from presenced.services.entities import Decision, StoredPresence, User, UserRef
from presenced.services.ports import Advance, Decide
from presenced.store.codec import encode_steps, encode_visible, opt_to_us, to_us
from presenced.store.rows import state_from_columns, stored_from_columns

log = logging.getLogger("presenced.store")


@dataclass(eq=False, slots=True)
class Write:
    """One submitted write, answered through its future."""

    user: User | UserRef
    decide: Decide
    future: asyncio.Future[Decision]
    #: The decision, or why the write was refused; None until the batch has run.
    outcome: Decision | BaseException | None = None


@dataclass(eq=False, slots=True)
class Sweep:
    """Due users to advance, in transactions of a bounded size; answered with (users taken, changes logged)."""

    advance: Advance
    #: Sorted: each transaction takes a run of consecutive ids, so its rows lie together.
    user_ids: list[str]
    wait: bool
    future: asyncio.Future[tuple[int, int]]
    #: How many of ``user_ids`` earlier transactions took on, and what they stored.
    done: int = 0
    taken: int = 0
    logged: int = 0


@dataclass(eq=False, slots=True)
class SweepPart:
    """The part of a sweep one transaction stores."""

    whole: Sweep
    user_ids: list[str]
    outcome: tuple[int, int] | BaseException | None = None

    @property
    def advance(self) -> Advance:
        return self.whole.advance

    @property
    def wait(self) -> bool:
        return self.whole.wait


@dataclass(eq=False, slots=True)
class _Record:
    """A user of a batch of writes: as loaded (at row ``version``), and as the batch's decisions so far left them."""

    user_id: str
    tenant_id: str
    version: int
    loaded: StoredPresence
    current: StoredPresence
    decided: bool = False
    changes: list[Change] = field(default_factory=list)


#: (user id, tenant id, row version, the presence stored at that version)
Loaded = tuple[str, str, int, StoredPresence]


class Recent:
    """The presences this process's writer read or wrote lately, decoded, by the row version they
    are at. Every write raises a row's version (in whatever process), so one that still has the
    version here is as stored, and the writer need not read and decode its facts again: a batch
    reads the versions of its users and the facts only of those it does not have.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: dict[str, Loaded] = {}

    def split(self, versions: Iterable[Sequence[Any]]) -> tuple[list[Loaded], list[str]]:
        """The users (rows of user id, version) it has at those versions, and the ids of the others."""
        known: list[Loaded] = []
        missing: list[str] = []
        for user_id, version in versions:
            entry = self._entries.get(user_id)
            if entry is not None and entry[2] == version:
                known.append(entry)
            else:
                missing.append(user_id)
        return known, missing

    def remember(self, entries: Iterable[Loaded]) -> None:
        for entry in entries:
            self._entries.pop(entry[0], None)
            if len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]  # the least recently written
            self._entries[entry[0]] = entry

    def forget(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            self._entries.pop(user_id, None)


def loaded_from_columns(row: Sequence[Any]) -> Loaded:
    """A row of ``batch_sql`` ``facts`` (its version last) as a batch's user."""
    return row[0], row[1], row[-1], stored_from_columns(row)


@dataclass(slots=True)
class Rows:
    """What a batch stores, one list per statement."""

    presences: list[tuple[Any, ...]] = field(default_factory=list)
    #: Users whose one-per-user facts are as loaded: only the state columns change (a narrower update).
    states: list[tuple[Any, ...]] = field(default_factory=list)
    session_upserts: list[tuple[Any, ...]] = field(default_factory=list)
    session_deletes: list[tuple[str, str]] = field(default_factory=list)
    mailboxes: list[tuple[Any, ...]] = field(default_factory=list)
    changes: list[tuple[Any, ...]] = field(default_factory=list)
    #: The changes of each user that logged any, to notify their subscribers of.
    changed: dict[str, list[Change]] = field(default_factory=dict)

    def log(self, user_id: str, tenant_id: str, changes: Sequence[Change]) -> None:
        """Change-log rows for ``changes``."""
        self.changed[user_id] = list(changes)
        for change in changes:
            logged = change.state
            self.changes.append(
                (
                    tenant_id,
                    user_id,
                    logged.sequence,
                    encode_visible(logged.visible),
                    change.cause,
                    to_us(logged.changed_at),
                )
            )


class Batch:
    """Writes (or one sweep) that share a transaction."""

    def __init__(self, writes: list[Write], sweep: SweepPart | None = None) -> None:
        self.writes = writes
        self.sweep = sweep
        self._records: dict[str, _Record] = {}
        #: The users whose due transitions a sweep stores.
        self._swept: list[str] = []
        #: Changes logged and notifications queued by the committed batch.
        self.logged = 0
        self.notified = 0

    @property
    def user_ids(self) -> list[str]:
        """The users the writes name, each once, in a fixed order (the order PostgreSQL locks them in)."""
        return sorted({write.user.id for write in self.writes})

    def stored(self) -> list[Loaded]:
        """Once committed: the batch's users as they are now stored (a decided one at its next version)."""
        return [
            (r.user_id, r.tenant_id, r.version + 1 if r.decided else r.version, r.current)
            for r in self._records.values()
        ]

    def stored_users(self) -> list[str]:
        """Once committed: the users whose stored presence the batch may have changed."""
        return [r.user_id for r in self._records.values() if r.decided] + self._swept

    def reset(self) -> None:
        """Forget a run that was rolled back, so the batch can run again from the start."""
        self._records = {}
        self._swept = []
        self.logged = self.notified = 0
        for write in self.writes:
            write.outcome = None
        if self.sweep is not None:
            self.sweep.outcome = None

    def decide(self, loaded: Iterable[Loaded], now: datetime) -> Rows:
        """Apply the writes' decisions at ``now`` to the loaded users."""
        records = self._records = {}
        for user_id, tenant_id, version, stored in loaded:
            records[user_id] = _Record(user_id, tenant_id, version, stored, stored)
        for write in self.writes:
            record = records.get(write.user.id)
            if record is None or record.tenant_id != write.user.tenant_id:
                write.outcome = UserNotFound(f"User '{write.user.id}' was not found.")
                continue
            try:
                decision = write.decide(record.current, now)
            except Exception as refused:  # this write only: the others of the batch go on
                write.outcome = refused
                continue
            record.current = decision.stored
            record.decided = True
            record.changes.extend(decision.changes)
            write.outcome = decision
        rows = Rows()
        for record in records.values():
            if record.decided:
                _record_rows(record, rows)
        self.logged = len(rows.changes)
        return rows

    def advance(self, loaded: Iterable[Sequence[Any]], stored: Mapping[str, StoredPresence], now: datetime) -> Rows:
        """Store what fell due at ``now`` for the sweep's users still due (rows of ``batch_sql`` ``due_states``).

        Only the state is needed: what falls due was decided when the facts were written. A user
        stored by an earlier version without its upcoming changes is in ``stored``, facts and all.
        """
        assert self.sweep is not None
        rows = Rows()
        taken = 0
        for row in loaded:
            taken += 1
            user_id, tenant_id = row[0], row[1]
            try:
                # A state as stored decodes only the upcoming changes ``advance`` reads: those due.
                state = stored[user_id].state if user_id in stored else state_from_columns(row, 2)
                new, changes = self.sweep.advance(state, now)
                columns = _state_columns(new)
            except Exception:  # one user's broken state must not hold up everyone else's transitions
                log.exception("cannot store the due transition of user %s; it stays due", user_id)
                continue
            rows.states.append((*columns, user_id))
            self._swept.append(user_id)
            if changes:
                rows.log(user_id, tenant_id, changes)
        self.logged = len(rows.changes)
        self.sweep.outcome = (taken, self.logged)
        return rows

    def notifications(
        self, watchers: Iterable[Sequence[Any]], changed: dict[str, list[Change]]
    ) -> list[tuple[Any, ...]]:
        """Outbox rows: each change for each subscription watching its user (rows of (user, subscription, URL))."""
        rows: list[tuple[Any, ...]] = []
        for user_id, subscription_id, url in watchers:
            namespace = uuid.UUID(subscription_id)
            for change in changed[user_id]:
                state = change.state
                rows.append(
                    (
                        # Stable: the same change for the same subscription is always the same notification.
                        str(uuid.uuid5(namespace, f"{user_id}/{state.sequence}")),
                        subscription_id,
                        url,
                        user_id,
                        state.sequence,
                        encode_visible(state.visible),
                        to_us(state.changed_at),
                    )
                )
        self.notified = len(rows)
        return rows

    def answer(self) -> None:
        """Resolve every write's future with its outcome (a write the batch never reached gets an error),
        and a sweep's once its last part is stored (or any part failed)."""
        for write in self.writes:
            _resolve(write.future, write.outcome)
        part = self.sweep
        if part is None:
            return
        whole, outcome = part.whole, part.outcome
        if isinstance(outcome, tuple):
            whole.taken += outcome[0]
            whole.logged += outcome[1]
            if whole.done >= len(whole.user_ids):
                _resolve(whole.future, (whole.taken, whole.logged))
        else:
            _resolve(whole.future, outcome)

    def fail(self, error: BaseException) -> None:
        """The whole batch failed: every item gets the error."""
        for write in self.writes:
            write.outcome = error
        if self.sweep is not None:
            self.sweep.outcome = error


def _resolve(future: asyncio.Future[Any], outcome: object) -> None:
    if future.done():
        return  # the caller gave up waiting (cancelled)
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    elif outcome is None:
        future.set_exception(RuntimeError("the write's batch ended without deciding it"))
    else:
        future.set_result(outcome)


def _state_columns(state: PresenceState) -> tuple[Any, ...]:
    """The state, in the column order of ``batch_sql.PRESENCE_STATE``."""
    return (
        encode_visible(state.visible),
        state.sequence,
        to_us(state.changed_at),
        opt_to_us(state.next_change_at),
        encode_steps(state.upcoming),
    )


def _record_rows(record: _Record, rows: Rows) -> None:
    before, after = record.loaded, record.current
    facts = after.facts
    state = (*_state_columns(after.state), record.user_id)
    if _same_row_facts(before.facts, facts):
        rows.states.append(state)
    else:
        rows.presences.append((*_facts_columns(facts), *state))
    if facts.sessions is not before.facts.sessions:
        _session_rows(record.user_id, before.facts.sessions, facts.sessions, rows)
    replies = facts.automatic_replies
    if (after.mailbox is not before.mailbox or replies is not before.facts.automatic_replies) and (
        after.mailbox != before.mailbox or replies != before.facts.automatic_replies
    ):
        mailbox = after.mailbox
        rows.mailboxes.append(
            (
                record.user_id,
                mailbox.time_zone,
                replies.status.value,
                opt_to_us(replies.scheduled_start),
                mailbox.scheduled_start_time_zone,
                opt_to_us(replies.scheduled_end),
                mailbox.scheduled_end_time_zone,
                replies.internal_reply_message,
                replies.external_reply_message,
                mailbox.external_audience,
            )
        )
    if record.changes:
        rows.log(record.user_id, record.tenant_id, record.changes)


def _same_row_facts(before: PresenceFacts, after: PresenceFacts) -> bool:
    """Whether the facts kept in the ``presences`` row are the loaded ones (the same objects: a
    change replaces what it changes and keeps the rest)."""
    return after is before or (
        after.preferred is before.preferred
        and after.status_message is before.status_message
        and after.manual_location is before.manual_location
        and after.automatic_location is before.automatic_location
    )


def _facts_columns(facts: PresenceFacts) -> tuple[Any, ...]:
    """The one-per-user facts, in the column order of ``batch_sql.PRESENCE_FACTS``."""
    preferred, status = facts.preferred, facts.status_message
    manual, automatic = facts.manual_location, facts.automatic_location
    return (
        preferred.availability.value if preferred else None,
        preferred.activity.value if preferred else None,
        to_us(preferred.expires_at) if preferred else None,
        status.content if status else None,
        status.content_type if status else None,
        to_us(status.published_at) if status else None,
        opt_to_us(status.expires_at) if status else None,
        status.expiry_time_zone if status else None,
        manual.work_location_type.value if manual else None,
        manual.place_id if manual else None,
        automatic.work_location_type.value if automatic else None,
        automatic.place_id if automatic else None,
    )


def _session_rows(user_id: str, before: tuple[Session, ...], after: tuple[Session, ...], rows: Rows) -> None:
    """The sessions to write (new or changed) and to delete (gone), comparing by app id."""
    old = {session.app_id: session for session in before}
    for session in after:
        if old.pop(session.app_id, None) != session:
            rows.session_upserts.append(
                (
                    user_id,
                    session.app_id,
                    session.availability.value,
                    session.activity.value,
                    to_us(session.refreshed_at),
                    to_us(session.expires_at),
                )
            )
    rows.session_deletes.extend((user_id, app_id) for app_id in old)
