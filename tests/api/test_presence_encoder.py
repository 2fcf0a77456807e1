"""The encoder's cache of presence JSON: one entry per user (and kind of reader), whatever the number of
changes, and never an answer of another sequence number."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from presenced.api.wire import PresenceEncoder
from presenced.domain.model import PresenceFacts
from presenced.domain.sequence import initial_state
from presenced.services.presence import PresenceView

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONTEXT = "https://example/v1.0/$metadata#users('x')/presence/$entity"


def _view(user_id: str, sequence: int, own: bool = False) -> PresenceView:
    return PresenceView(user_id, replace(initial_state(PresenceFacts(), T), sequence=sequence), own)


def test_many_changes_of_few_users_keep_one_entry_each() -> None:
    encoder = PresenceEncoder(size=100)
    for sequence in range(1, 5001):
        for user in ("a", "b"):
            body = json.loads(encoder.one(_view(user, sequence), CONTEXT))
            assert (body["id"], body["sequenceNumber"]) == (user, f"{sequence:020d}")
    assert len(encoder._members) == 2


def test_an_older_sequence_read_after_a_newer_one_is_encoded_as_itself() -> None:
    """A read of an older state (another process, not yet caught up) gets its own sequence number, and the
    newer encoding stays cached."""
    encoder = PresenceEncoder()
    newer = encoder.one(_view("a", 20), CONTEXT)
    older = json.loads(encoder.one(_view("a", 10), CONTEXT))
    assert older["sequenceNumber"] == f"{10:020d}"
    assert encoder.one(_view("a", 20), CONTEXT) == newer
    assert encoder._members[("a", False)][0] == 20
