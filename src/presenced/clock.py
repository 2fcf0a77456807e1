"""The source of presence time. Only services and adapters read it; rules take ``now``.

Reading the clock is asynchronous because the emulator's manual clock lives in
the database, shared by every process on it (spec §A.11).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    async def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class LocalClock(Clock, Protocol):
    """A clock kept in this process, so it can also be read without waiting (from any thread)."""

    def read(self) -> datetime:
        """The current instant, as ``now`` gives it."""
        ...


class SystemClock:
    """Real time."""

    async def now(self) -> datetime:
        return datetime.now(UTC)

    def read(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stays where it is put (for tests and scripted scenarios)."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    async def now(self) -> datetime:
        return self._at

    def read(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at

    def advance(self, by: timedelta) -> None:
        self._at += by
