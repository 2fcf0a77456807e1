"""The write path: one transaction per change of a user's facts.

Lock the user's presence, materialise any transition already due under the old
facts, apply the change, recompute, bump the sequence only if the visible
presence changed, and log every change exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from presenced.clock import Clock
from presenced.domain.model import PresenceFacts
from presenced.domain.sequence import Change, PresenceState, advance, recompute
from presenced.services.ports import Transaction, User


async def change_facts(
    tx: Transaction,
    user: User,
    mutate: Callable[[PresenceFacts, datetime], PresenceFacts],
    clock: Clock,
    cause: str,
    locked: tuple[PresenceFacts, PresenceState] | None = None,
) -> tuple[PresenceState, list[Change]]:
    """Apply ``mutate(facts, now)`` to the user's facts; return the new state and the changes logged.

    ``now`` is read once the user is locked: read before, it could be older than
    a change another writer stored while this one waited, and the sequence
    numbers would no longer follow the order of the changes. ``locked`` is what
    ``tx.lock_presence`` returned, for a caller that took the lock already.
    """
    facts, state = locked or await tx.lock_presence(user.id)
    now = await clock.now()
    state, due = advance(state, facts, now)
    new_facts = mutate(facts, now)
    state, changed = recompute(state, new_facts, now, cause)
    changes = due + changed
    await tx.save_presence(user, new_facts, state, previous=facts)
    await tx.append_changes(user, changes)
    if changes:
        # In the same transaction: a change is never stored without its notifications, or the reverse.
        await tx.queue_notifications(user, changes, now)
    return state, changes
