"""The one loop of the background jobs: do a round, log a failure, wait, again, until cancelled.

The sweeper, the change feed, webhook delivery, the subscription lifecycle and the purge of
expired sign-in state all run this way. A round that fails is logged and the next comes after
the same wait (the work is idempotent: what a failed round left undone is still there to do).
While the database is unavailable, rounds back off (doubling the wait up to ``MAX_BACKOFF``) without
a log line of their own: the store reports the outage once in a while; the first round that
succeeds brings the usual pace back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

from presenced.errors import ServiceUnavailable
from presenced.logs import with_fields

#: The longest wait between rounds while the database is unavailable, in seconds.
MAX_BACKOFF = 5.0


async def repeat(
    round_: Callable[[], Awaitable[object]],
    interval: float,
    what: str,
    log: logging.Logger,
    wake: asyncio.Event | None = None,
) -> NoReturn:
    """Run ``round_`` every ``interval`` seconds, or as soon as ``wake`` is set, until cancelled.

    A failure is logged as "``what`` failed; retrying" with its traceback and the field ``job`` (``what``),
    never raised; the start is logged at debug.
    """
    fields = with_fields(job=what)
    log.debug("%s started, every %s s", what, interval, extra=fields)
    wait = interval
    while True:
        try:
            await round_()
            wait = interval
        except asyncio.CancelledError:
            raise
        except ServiceUnavailable:
            wait = min(max(wait, 0.1) * 2, MAX_BACKOFF)
        except Exception:
            log.exception("%s failed; retrying", what, extra=fields)
        if wake is None or wait > interval:
            await asyncio.sleep(wait)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), wait)
        wake.clear()
