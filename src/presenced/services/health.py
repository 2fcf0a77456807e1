"""Readiness: whether this process can do its work now (docs/deployment.md, "Health checks").

Three checks, run side by side, each given at most ``CHECK_TIMEOUT`` seconds:

- ``database``: the database answers and has every migration of this version, no more, no fewer;
- ``worker``: when this process runs the background worker, its sweeper completed a sweep within the
  last ``SWEEP_BOUND`` seconds (it sweeps every half second, backing off to every 5 seconds while the
  database is down); not applicable in a process that runs no worker (``serve --no-worker``);
- ``redis``: Redis answers a ping, when the process uses one (``--redis-url``); else not applicable.

The answer says which check failed and why in a few words, never an error's text: that may name hosts,
users or URLs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from presenced.errors import ServiceUnavailable
from presenced.logs import warn_occasionally
from presenced.services.ports import SchemaState
from presenced.services.sweeper import Sweeper

log = logging.getLogger("presenced.health")

#: Seconds each check may take before it counts as failed.
CHECK_TIMEOUT = 2.0
#: Seconds since the sweeper's last sweep within which the worker counts as working.
SWEEP_BOUND = 30.0

Status = Literal["ok", "failing", "not applicable"]

_MIGRATION_REASONS = {
    "behind": "not at the newest migration (run presenced db upgrade)",
    "ahead": "migrated by a newer version of presenced",
    "none": "not migrated (run presenced db upgrade)",
}


class Pingable(Protocol):
    """A service the process depends on that answers a ping (Redis, through ``notify.fanout``)."""

    async def ping(self) -> None:
        """Return once it answered; raise when it cannot be reached."""
        ...


@dataclass(frozen=True, slots=True)
class Check:
    status: Status
    #: Why it fails, in a few words; None when it does not.
    reason: str | None = None
    #: The worker's: seconds since its sweeper's last sweep, when there was one.
    seconds_since_sweep: float | None = None


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, Check]

    @property
    def ready(self) -> bool:
        return all(check.status != "failing" for check in self.checks.values())


class Health:
    def __init__(
        self,
        schema: SchemaState,
        sweeper: Sweeper,
        redis: Pingable | None = None,
        *,
        timeout: float = CHECK_TIMEOUT,
        sweep_bound: float = SWEEP_BOUND,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._schema = schema
        self._sweeper = sweeper
        self._redis = redis
        self._timeout = timeout
        self._sweep_bound = sweep_bound
        self._monotonic = monotonic

    async def ready(self) -> Readiness:
        """Every check's state, within about ``timeout`` seconds whatever the database and Redis do."""
        database, redis = await asyncio.gather(
            self._bounded("database", self._database), self._bounded("redis", self._ping_redis)
        )
        return Readiness({"database": database, "worker": self._worker(), "redis": redis})

    async def _bounded(self, name: str, check: Callable[[], Awaitable[Check]]) -> Check:
        try:
            return await asyncio.wait_for(check(), self._timeout)
        except TimeoutError:
            return Check("failing", f"no answer within {self._timeout:g} s")
        except (ServiceUnavailable, OSError):
            return Check("failing", "unreachable")
        except Exception as error:
            warn_occasionally(log, name, "the %s check failed: %s", name, type(error).__name__)
            return Check("failing", "unreachable")

    async def _database(self) -> Check:
        migration = await self._schema.migration()
        if migration == "newest":
            return Check("ok")
        return Check("failing", _MIGRATION_REASONS[migration])

    async def _ping_redis(self) -> Check:
        if self._redis is None:
            return Check("not applicable")
        await self._redis.ping()
        return Check("ok")

    def _worker(self) -> Check:
        if self._sweeper.started is None:
            return Check("not applicable")
        last = self._sweeper.last_sweep
        if last is None:
            return Check("failing", "no sweep yet")
        age = max(0.0, self._monotonic() - last)
        seconds = round(age, 1)
        if age > self._sweep_bound:
            return Check("failing", f"no sweep for over {self._sweep_bound:g} s", seconds)
        return Check("ok", None, seconds)
