"""The one function that decides a write of a user's presence facts.

Every write — the nine actions, the mailbox PATCH, the demo data, and the
changes time brings — is ``change_facts`` applied to the user's stored presence
at an instant read after the user was locked. The store
(``presenced.services.ports.PresenceWriter``) decides when to lock, how many
writes share a transaction, and how the rows reach the database; it never
decides what they hold.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from presenced.domain.model import PresenceFacts
from presenced.domain.sequence import advance, recompute
from presenced.services.ports import Decide, Decision, StoredPresence

Mutation = Callable[[PresenceFacts, datetime], PresenceFacts]


def change_facts(stored: StoredPresence, now: datetime, mutate: Mutation, cause: str) -> Decision:
    """Materialise any transition already due, apply ``mutate(facts, now)``, and recompute.

    The sequence number moves only when the visible presence changed; every
    change (the due ones with cause ``timer``, then this write's) is returned to
    be logged. ``mutate`` may raise to refuse the write.
    """
    facts = stored.facts
    state, due = advance(stored.state, facts, now)
    new_facts = mutate(facts, now)
    if new_facts is facts:
        # ``advance`` left the state as it is at ``now`` (visible presence and next change):
        # recomputing it from the same facts would find exactly that.
        return Decision(StoredPresence(facts, state, stored.mailbox), tuple(due))
    state, changed = recompute(state, new_facts, now, cause)
    return Decision(StoredPresence(new_facts, state, stored.mailbox), (*due, *changed))


def deciding(mutate: Mutation, cause: str) -> Decide:
    """``change_facts`` with this mutation and cause, for ``PresenceWriter.write``."""
    return partial(_decide, mutate=mutate, cause=cause)


def _decide(stored: StoredPresence, now: datetime, *, mutate: Mutation, cause: str) -> Decision:
    return change_facts(stored, now, mutate, cause)


def unchanged(facts: PresenceFacts, now: datetime) -> PresenceFacts:
    """The mutation of a time-driven change: the facts stay; only what is due is stored."""
    return facts
