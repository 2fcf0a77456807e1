"""Fault injection, the emulator's (docs/emulator.md, "Faults"): rules that make matching Graph requests
fail with a status Graph sends (429, 500, 502, 503, 504), answer late, or both.

Rules live in the database, so every process applies them. Each process keeps a copy, read again every
``REFRESH`` seconds and at once after a change of its own; a rule for the next N requests is taken one
request at a time in the database, so N requests fail in all, whichever process serves them.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, field, replace
from typing import NoReturn

from presenced.errors import BadRequest, ResourceNotFound
from presenced.services.entities import FaultRule
from presenced.services.loops import repeat
from presenced.services.ports import FaultStore

log = logging.getLogger("presenced.faults")

#: The statuses a rule may answer with: those Graph sends when it is busy or failing.
STATUSES = frozenset({429, 500, 502, 503, 504})
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
#: How often each process reads the rules again, in seconds.
REFRESH = 0.5
MAX_LATENCY_MS = 60_000


def new_rule(
    path: str,
    *,
    method: str | None = None,
    app_id: str | None = None,
    user_id: str | None = None,
    status: int | None = None,
    retry_after: int | None = None,
    latency_ms: int | None = None,
    count: int | None = None,
    probability: float | None = None,
    seed: int | None = None,
) -> FaultRule:
    """A rule as asked for, checked; anything it cannot mean is a 400 that names the field."""
    if not path.startswith("/") or len(path) > 512 or any(ord(c) < 0x20 for c in path):
        raise BadRequest("path must be a glob on the path below the version, starting with '/' (/users/*/presence).")
    if method is not None and method.upper() not in METHODS:
        raise BadRequest(f"method must be one of {', '.join(sorted(METHODS))}.")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(str(s) for s in sorted(STATUSES))}.")
    if status is None and latency_ms is None:
        raise BadRequest("A rule needs a status, a latencyMs, or both.")
    if retry_after is not None and (status is None or not 0 <= retry_after <= 3600):
        raise BadRequest("retryAfter goes with a status and is 0 to 3600 seconds.")
    if latency_ms is not None and not 0 <= latency_ms <= MAX_LATENCY_MS:
        raise BadRequest(f"latencyMs must be 0 to {MAX_LATENCY_MS}.")
    if (count is None) == (probability is None):
        raise BadRequest("Give exactly one of count (the next N matching requests) or probability (0 to 1).")
    if count is not None and not 1 <= count <= 1_000_000:
        raise BadRequest("count must be 1 to 1000000.")
    if probability is not None and not 0 <= probability <= 1:
        raise BadRequest("probability must be 0 to 1.")
    if seed is not None and probability is None:
        raise BadRequest("seed goes with probability.")
    return FaultRule(
        str(uuid.uuid4()),
        path,
        method.upper() if method else None,
        app_id.lower() if app_id else None,
        user_id.lower() if user_id else None,
        status,
        retry_after,
        latency_ms,
        count,
        probability,
        seed,
    )


@dataclass(slots=True)
class _Known:
    rules: tuple[FaultRule, ...] = ()
    dice: dict[str, random.Random] = field(default_factory=dict)


class Faults:
    """The rules, and which of them a request meets."""

    def __init__(self, store: FaultStore) -> None:
        self._store = store
        self._known = _Known()

    @property
    def active(self) -> bool:
        """Whether any rule is known to this process: without one, requests are not looked at."""
        return bool(self._known.rules)

    async def add(self, rule: FaultRule) -> FaultRule:
        await self._store.add_fault(rule)
        await self.refresh()
        return rule

    async def rules(self) -> list[FaultRule]:
        return await self._store.faults()

    async def remove(self, rule_id: str) -> None:
        if not await self._store.remove_faults(rule_id):
            raise ResourceNotFound(f"There is no fault rule '{rule_id[:64]}'.")
        await self.refresh()

    async def clear(self) -> int:
        removed = await self._store.remove_faults(None)
        await self.refresh()
        return removed

    async def refresh(self) -> None:
        rules = tuple(r for r in await self._store.faults() if r.count is None or r.count > 0)
        dice = {r.id: self._known.dice.get(r.id) or random.Random(r.seed) for r in rules if r.probability is not None}
        self._known = _Known(rules, dice)

    async def meet(self, method: str, path: str, app_id: str | None, user_ids: frozenset[str]) -> FaultRule | None:
        """The rule this request meets (the first added that matches and fires), counted as fired; or None."""
        for rule in self._known.rules:
            if not rule.matches(method, path, app_id, user_ids):
                continue
            if rule.count is not None:
                if not await self._store.take_fault(rule.id):
                    continue
            else:
                dice = self._known.dice[rule.id]
                if dice.random() >= (rule.probability or 0.0):
                    continue
                if not await self._store.fired(rule.id):  # removed since this process last read the rules
                    continue
            return replace(rule, fired=rule.fired + 1)
        return None

    async def run_forever(self) -> NoReturn:
        await repeat(self.refresh, REFRESH, "fault rules", log)
