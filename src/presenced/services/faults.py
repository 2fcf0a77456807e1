"""Fault injection, the emulator's (docs/emulator.md, "Faults"): rules that make matching Graph requests
fail with a status Graph sends (429, 500, 502, 503, 504), answer late, or both; and rules that make the
change notifications of a subscription (or to a URL) come late, twice, out of order, or not at all.

Rules live in the database, so every process applies them. Each process keeps a copy, read again every
``REFRESH`` seconds and at once after a change of its own; a rule for the next N requests is taken one
request at a time in the database, so N requests fail in all, whichever process serves them.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from msgspec import Struct

from presenced.errors import BadRequest, ResourceNotFound
from presenced.services.entities import FaultRule, PendingNotification
from presenced.services.loops import repeat
from presenced.services.ports import FaultStore

log = logging.getLogger("presenced.faults")

#: The statuses a rule may answer with: those Graph sends when it is busy or failing.
STATUSES = frozenset({429, 500, 502, 503, 504})
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
#: How often each process reads the rules again, in seconds.
REFRESH = 0.5
MAX_LATENCY_MS = 60_000
#: What a notification rule does to the deliveries it covers.
ACTIONS = frozenset({"delay", "duplicate", "reorder", "drop"})
MAX_DELAY_MS = 600_000
MAX_WINDOW_MS = 60_000


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
    """A request rule as asked for, checked; anything it cannot mean is a 400 that names the field."""
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


def new_notification_rule(
    action: str,
    *,
    subscription_id: str | None = None,
    notification_url: str | None = None,
    delay_ms: int | None = None,
    window_ms: int | None = None,
    count: int | None = None,
) -> FaultRule:
    """A notification rule as asked for, checked: ``delay`` (by ``delay_ms``), ``duplicate``, ``reorder``
    (what comes within ``window_ms``, the last first) or ``drop``, for the next ``count`` deliveries or every
    one until removed."""
    if action not in ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(sorted(ACTIONS))}.")
    if subscription_id is None and notification_url is None:
        raise BadRequest("A notification rule needs a subscriptionId, a notificationUrl, or both.")
    if subscription_id is not None and not 0 < len(subscription_id) <= 64:
        raise BadRequest("subscriptionId must be a subscription's id.")
    if notification_url is not None and not 0 < len(notification_url) <= 2048:
        raise BadRequest("notificationUrl must be a subscription's notification URL.")
    if (action == "delay") != (delay_ms is not None):
        raise BadRequest("delayMs goes with the delay action, and that action needs it.")
    if delay_ms is not None and not 1 <= delay_ms <= MAX_DELAY_MS:
        raise BadRequest(f"delayMs must be 1 to {MAX_DELAY_MS}.")
    if (action == "reorder") != (window_ms is not None):
        raise BadRequest("windowMs goes with the reorder action, and that action needs it.")
    if window_ms is not None and not 1 <= window_ms <= MAX_WINDOW_MS:
        raise BadRequest(f"windowMs must be 1 to {MAX_WINDOW_MS}.")
    if count is not None and not 1 <= count <= 1_000_000:
        raise BadRequest("count must be 1 to 1000000.")
    return FaultRule(
        str(uuid.uuid4()),
        None,
        count=count,
        action=action,
        subscription_id=subscription_id.lower() if subscription_id else None,
        notification_url=notification_url,
        delay_ms=delay_ms,
        window_ms=window_ms,
    )


class FaultFields(Struct, kw_only=True, forbid_unknown_fields=True):
    """A rule as ``POST /_emulator/faults`` and a scenario's ``fault`` step write it."""

    path: str | None = None
    method: str | None = None
    appId: str | None = None
    userId: str | None = None
    status: int | None = None
    retryAfter: int | None = None
    latencyMs: int | None = None
    count: int | None = None
    probability: float | None = None
    seed: int | None = None
    action: str | None = None
    subscriptionId: str | None = None
    notificationUrl: str | None = None
    delayMs: int | None = None
    windowMs: int | None = None


def rule_from_fields(fields: FaultFields) -> FaultRule:
    """The rule these fields describe, checked (``make_rule``)."""
    return make_rule(
        path=fields.path,
        method=fields.method,
        app_id=fields.appId,
        user_id=fields.userId,
        status=fields.status,
        retry_after=fields.retryAfter,
        latency_ms=fields.latencyMs,
        count=fields.count,
        probability=fields.probability,
        seed=fields.seed,
        action=fields.action,
        subscription_id=fields.subscriptionId,
        notification_url=fields.notificationUrl,
        delay_ms=fields.delayMs,
        window_ms=fields.windowMs,
    )


_REQUEST_ONLY = ("path", "method", "app_id", "user_id", "status", "retry_after", "latency_ms", "probability", "seed")
_NOTIFICATION_ONLY = ("subscription_id", "notification_url", "delay_ms", "window_ms")


def _wire(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


def make_rule(**given: object) -> FaultRule:
    """A request rule (given a path) or a notification rule (given an action), from the fields as named in
    Python; a field of the other kind of rule is a 400 that names it as the API does."""
    fields: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if "action" in fields:
        stray = [k for k in fields if k in _REQUEST_ONLY]
        if stray:
            raise BadRequest(f"A notification rule (one with an action) takes no {_wire(stray[0])}.")
        return new_notification_rule(fields.pop("action"), **fields)
    stray = [k for k in fields if k in _NOTIFICATION_ONLY]
    if stray:
        raise BadRequest(f"{_wire(stray[0])} belongs to a notification rule, which needs an action.")
    if "path" not in fields:
        raise BadRequest("A rule needs a path (a request rule) or an action (a notification rule).")
    return new_rule(fields.pop("path"), **fields)


@dataclass(frozen=True, slots=True)
class DeliveryFaults:
    """The notification rules that fired for one delivery to a URL: how long to hold it back first, then what
    to do to each notification."""

    rules: tuple[FaultRule, ...]

    @property
    def hold(self) -> float:
        """Seconds to wait before sending: a delay, or a reorder window in which later notifications join."""
        return max((r.delay_ms or r.window_ms or 0) / 1000 for r in self.rules)

    def does(self, action: str, notification: PendingNotification) -> bool:
        return any(r.action == action and r.covers(notification) for r in self.rules)


@dataclass(slots=True)
class _Known:
    rules: tuple[FaultRule, ...] = ()
    dice: dict[str, random.Random] = field(default_factory=dict)
    #: The notification rules.
    deliveries: tuple[FaultRule, ...] = ()


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
        live = [r for r in await self._store.faults() if r.count is None or r.count > 0]
        rules = tuple(r for r in live if r.action is None)
        dice = {r.id: self._known.dice.get(r.id) or random.Random(r.seed) for r in rules if r.probability is not None}
        self._known = _Known(rules, dice, tuple(r for r in live if r.action is not None))

    async def for_delivery(self, waiting: Sequence[PendingNotification]) -> DeliveryFaults | None:
        """The notification rules that fire for the next delivery of these notifications (one URL's, in
        order), each counted as fired; None when no rule covers any of them."""
        fired = []
        for rule in self._known.deliveries:
            if not any(rule.covers(n) for n in waiting):
                continue
            store = self._store
            if await (store.take_fault(rule.id) if rule.count is not None else store.fired(rule.id)):
                fired.append(rule)
        return DeliveryFaults(tuple(fired)) if fired else None

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
