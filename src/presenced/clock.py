"""The source of presence time. Only services and adapters read it; rules take ``now``.

Reading the clock is asynchronous because the emulator's manual clock lives in
the database, shared by every process on it (docs/emulator.md).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
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


def real_now() -> datetime:
    """Real time: the one place it is read. Tokens, sign-in state, certificates, notifications'
    delivery and the emulator's starting point run on it; presence runs on a ``Clock``, which is
    real time too unless the emulator's manual clock replaces it."""
    return datetime.now(UTC)


def real_seconds() -> float:
    """Real time in seconds since the epoch, as ``time.time()``: the log's time stamps."""
    return time.time()


class SystemClock:
    """Real time."""

    async def now(self) -> datetime:
        return real_now()

    def read(self) -> datetime:
        return real_now()
