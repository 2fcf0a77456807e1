"""A database that cannot be reached is answered like a cloud service answers it: ``ServiceUnavailable``
(503 with ``Retry-After``), never a traceback per request (docs/deployment.md, "When the database or
Redis is down").

``is_outage`` tells a failure of the database itself (refused or reset connections, a server shutting
down or starting up, a connection left unusable) from a failure of one statement. The store's
adapters turn the first kind into ``unavailable()``: the SQLAlchemy engine through its
``handle_error`` hook, the bare-driver reader and writer where they call the driver. Each kind of
failure is logged once in a while (``logs.warn_occasionally``), whatever the number of requests it refuses.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from presenced.errors import ServiceUnavailable
from presenced.logs import warn_occasionally

log = logging.getLogger("presenced.store")

#: What a refused request is told to wait, in seconds (Graph's clients obey Retry-After).
RETRY_AFTER = 2
#: Set while the caller reports the failure itself (a command's start-up: one line, no log).
_quiet: ContextVar[bool] = ContextVar("quiet", default=False)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Within this block, an outage is not logged: the caller reports it in its own words."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, timed out connecting (TimeoutError is an OSError)
    asyncpg.PostgresConnectionError,  # the connection failed or was lost
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.InterfaceError,  # a connection closed under its operation
    asyncpg.exceptions.InternalClientError,  # a connection left mid-operation by a failure
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash shutdown, cancelled by the server
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, out of memory or disk
)


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) is a failure of the database, not of one statement."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 8:
        if isinstance(current, (ServiceUnavailable, *_OUTAGES)):
            # A pool this process closed is its own doing (shutting down), not the database's.
            return not (isinstance(current, asyncpg.InterfaceError) and "pool is clos" in str(current))
        if getattr(current, "connection_invalidated", False):
            return True
        current = getattr(current, "orig", None) or current.__cause__
        seen += 1
    return False


def drop_if_broken(connection: Any, error: BaseException) -> None:
    """Close ``connection`` (asyncpg's) at once if ``error`` is a failure of the database: a connection the
    failure left unusable never goes back to its pool. (Called from ``except``, so a read that succeeds
    pays nothing for it.)"""
    if is_outage(error):
        with contextlib.suppress(Exception):
            connection.terminate()


def unavailable(error: BaseException) -> ServiceUnavailable:
    """The refusal to answer for ``error``, logged once in a while (one line, no traceback)."""
    if isinstance(error, ServiceUnavailable):
        return error
    root: BaseException = error
    while getattr(root, "orig", None) is not None:
        root = root.orig  # type: ignore[attr-defined]
    kind = type(root).__name__
    if not _quiet.get():
        warn_occasionally(log, kind, "the database is unavailable (%s: %s); answering 503", kind, root)
    return ServiceUnavailable("The service is temporarily unavailable; try again shortly.", RETRY_AFTER)


def answer_outages_as_unavailable(engine: AsyncEngine) -> None:
    """Make every operation of ``engine`` that fails because the database did raise ``ServiceUnavailable``
    (SQLAlchemy has already invalidated the connection, so the pool opens a fresh one next time)."""

    def handle(context: ExceptionContext) -> None:
        if not isinstance(context.original_exception, Exception):
            # A cancelled task (shutting down, a client gone) is not an outage: the cancellation goes on as
            # it is, or whatever it cancelled would take it for one and carry on.
            return
        if context.is_disconnect or is_outage(context.original_exception):
            raise unavailable(context.original_exception) from None

    event.listen(engine.sync_engine, "handle_error", handle)
