"""The presence changes the write actions apply: here, ending a session a little later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from presenced.domain import changes as change
from presenced.domain.model import Activity, Availability, PresenceFacts, Session

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AVAILABLE = (Availability.AVAILABLE, Activity.AVAILABLE)


def facts_with(*sessions: Session) -> PresenceFacts:
    return PresenceFacts(sessions=sessions)


def test_end_session_at_shortens_only_that_session() -> None:
    """The app's session now expires at the given instant; another app's session and the refresh time stay."""
    mine = Session("app-a", *AVAILABLE, NOW - timedelta(minutes=2), NOW + timedelta(hours=1))
    other = Session("app-b", Availability.BUSY, Activity.IN_A_CALL, NOW, NOW + timedelta(hours=1))
    ended = change.end_session_at(facts_with(mine, other), "app-a", NOW + timedelta(seconds=15), NOW)
    by_app = {s.app_id: s for s in ended.sessions}
    assert by_app["app-a"].expires_at == NOW + timedelta(seconds=15)
    assert by_app["app-a"].refreshed_at == mine.refreshed_at
    assert by_app["app-b"] == other


def test_end_session_at_never_lengthens_a_session() -> None:
    soon = Session("app-a", *AVAILABLE, NOW, NOW + timedelta(seconds=5))
    ended = change.end_session_at(facts_with(soon), "app-a", NOW + timedelta(minutes=1), NOW)
    assert ended.sessions == (soon,)


def test_end_session_at_without_a_session_changes_nothing() -> None:
    assert change.end_session_at(PresenceFacts(), "app-a", NOW, NOW) == PresenceFacts()
