"""The one loop of the background jobs: do a round, log a failure, wait, again, until cancelled.

The sweeper, the change feed, webhook delivery, the subscription lifecycle and the purge of
expired sign-in state all run this way. A round that fails is logged and the next comes after
the same wait (the work is idempotent: what a failed round left undone is still there to do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn


async def repeat(
    round_: Callable[[], Awaitable[object]],
    interval: float,
    what: str,
    log: logging.Logger,
    wake: asyncio.Event | None = None,
) -> NoReturn:
    """Run ``round_`` every ``interval`` seconds, or as soon as ``wake`` is set, until cancelled.

    A failure is logged as "``what`` failed; retrying" with its traceback, never raised.
    """
    while True:
        try:
            await round_()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", what)
        if wake is None:
            await asyncio.sleep(interval)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), interval)
        wake.clear()
