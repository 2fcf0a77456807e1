"""The one function that decides a write of a user's presence facts.

Every write — the nine actions, the mailbox PATCH and the demo data — is
``change_facts`` applied to the user's stored presence at an instant read after
the user was locked. The changes time brings are decided in the same call, when
the facts are written: the state it stores carries the changes the new facts
will make by themselves (``domain.sequence``), and ``due_changes``, the first step
of every ``change_facts``, stores those that fell due, whether a write or the
sweeper comes first. The store (``presenced.services.ports.PresenceWriter``)
decides when to lock, how many writes share a transaction, and how the rows
reach the database; it never decides what they hold.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from presenced.domain.model import PresenceFacts
from presenced.domain.sequence import Change, PresenceState, advance, recompute
from presenced.services.entities import Decision, StoredPresence
from presenced.services.ports import Decide

Mutation = Callable[[PresenceFacts, datetime], PresenceFacts]


def change_facts(stored: StoredPresence, now: datetime, mutate: Mutation, cause: str) -> Decision:
    """Materialise any transition already due, apply ``mutate(facts, now)``, and recompute.

    The sequence number moves only when the visible presence changed; every
    change (the due ones with cause ``timer``, then this write's) is returned to
    be logged. ``mutate`` may raise to refuse the write.
    """
    facts = stored.facts
    state, due = due_changes(stored.state, now)
    new_facts = mutate(facts, now)
    if new_facts is facts:
        # ``due_changes`` left the state as it is at ``now`` (visible presence and upcoming
        # changes): recomputing it from the same facts would find exactly that.
        return Decision(StoredPresence(facts, state, stored.mailbox), due)
    state, changed = recompute(state, new_facts, now, cause)
    return Decision(StoredPresence(new_facts, state, stored.mailbox), (*due, *changed))


def due_changes(state: PresenceState, now: datetime) -> tuple[PresenceState, tuple[Change, ...]]:
    """Store the changes the facts made by themselves up to ``now`` (cause ``timer``), as they were decided."""
    state, due = advance(state, now)
    return state, tuple(due)


def deciding(mutate: Mutation, cause: str) -> Decide:
    """``change_facts`` with this mutation and cause, for ``PresenceWriter.write``."""
    return partial(_decide, mutate=mutate, cause=cause)


def _decide(stored: StoredPresence, now: datetime, *, mutate: Mutation, cause: str) -> Decision:
    return change_facts(stored, now, mutate, cause)


def unchanged(facts: PresenceFacts, now: datetime) -> PresenceFacts:
    """A mutation that changes nothing: only what fell due is stored."""
    return facts
