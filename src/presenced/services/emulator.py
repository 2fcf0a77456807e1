"""The emulator's manual clock (docs/emulator.md): it moves forward only, and moving it runs what fell due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from presenced.errors import BadRequest
from presenced.services.inputs import duration_value
from presenced.services.ports import ManualClock
from presenced.services.sweeper import Sweeper

#: The latest the manual clock goes: far enough for any test, and far enough from the end of
#: the calendar that every expiry (at most 30 days ahead) can still be written down.
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class EmulatorClock:
    def __init__(self, clock: ManualClock, sweeper: Sweeper) -> None:
        self._clock = clock
        self._sweeper = sweeper

    async def now(self) -> datetime:
        return await self._clock.now()

    async def move(self, advance: str | None = None, to: datetime | None = None) -> datetime:
        """Advance by an ISO 8601 duration or set a later instant; then store the transitions now due."""
        if (advance is None) == (to is None):
            raise BadRequest("Give exactly one of 'advance' (an ISO 8601 duration) or 'set' (an instant).")
        step = duration_value(advance, "advance") if advance is not None else None

        def decide(current: datetime) -> datetime:
            try:
                target = current + step if step is not None else to
            except OverflowError:
                target = LATEST + timedelta(days=1)
            assert target is not None
            if target < current:
                raise BadRequest(f"The clock only moves forward; it is at {current.isoformat()}.")
            if target > LATEST:
                field = "advance" if step is not None else "set"
                raise BadRequest(f"'{field}' would take the clock past {LATEST.isoformat()}, the latest it goes.")
            return target

        if step is not None and step < timedelta(0):
            raise BadRequest("'advance' must not be negative.")
        moved = await self._clock.move(decide)
        # Wait for users other transactions hold rather than skip them, so that
        # what fell due is stored when the move answers.
        await self._sweeper.run_due(wait=True)
        return moved
