"""Scripted scenarios, the emulator's (docs/emulator.md, "Scenarios"): a list of steps at offsets of the
manual clock, played in order. Before each step the clock is moved to the scenario's start plus the step's
offset (so what falls due on the way happens, as with ``POST /_emulator/clock``), then the step is done:
a presence write made through an application, a fault rule, or an expectation of what a user's presence
reads. A scenario is checked whole before anything is played: one that cannot mean anything changes
nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from msgspec import Struct

from presenced.auth.principal import Principal
from presenced.errors import BadRequest, PresencedError
from presenced.services.actions import PresenceActions
from presenced.services.emulator import EmulatorClock
from presenced.services.entities import FaultRule
from presenced.services.faults import FaultFields, Faults, rule_from_fields
from presenced.services.identity import IdentityService
from presenced.services.inputs import duration_value
from presenced.services.presence import PresenceService

#: The application a step's writes go through when it names none (its session id).
PLAYER_APP = "5ce7a210-0000-4000-8000-5ce7a2105ce7"
MAX_STEPS = 1000
#: What a scenario's writes and reads are allowed to do, as an application of the tenant.
_ROLES = frozenset({"Presence.ReadWrite.All", "Presence.Read.All"})


class SessionStep(Struct, kw_only=True, forbid_unknown_fields=True):
    user: str
    availability: str
    activity: str
    expirationDuration: str | None = None
    #: A name from the scenario's ``apps``, or an application (client) id.
    app: str | None = None


class ClearSessionStep(Struct, kw_only=True, forbid_unknown_fields=True):
    user: str
    app: str | None = None


class PreferredStep(Struct, kw_only=True, forbid_unknown_fields=True):
    user: str
    availability: str
    activity: str
    expirationDuration: str | None = None


class UserStep(Struct, kw_only=True, forbid_unknown_fields=True):
    user: str


class StatusStep(Struct, kw_only=True, forbid_unknown_fields=True):
    user: str
    message: str


class Expectation(Struct, kw_only=True, forbid_unknown_fields=True):
    user: str
    availability: str | None = None
    activity: str | None = None


class Step(Struct, kw_only=True, forbid_unknown_fields=True):
    #: The offset from the scenario's start, an ISO 8601 duration (PT0S, PT30M, P1DT2H).
    at: str
    #: What the step is for, printed with what it did.
    note: str | None = None
    setPresence: SessionStep | None = None
    clearPresence: ClearSessionStep | None = None
    setUserPreferredPresence: PreferredStep | None = None
    clearUserPreferredPresence: UserStep | None = None
    setStatusMessage: StatusStep | None = None
    fault: FaultFields | None = None
    clearFaults: bool | None = None
    expect: Expectation | None = None


class Scenario(Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    steps: list[Step]
    #: The tenant the users are in; may be left out when the server has one tenant.
    tenant: str | None = None
    #: Names for the applications steps write through: ``{"teams": "<client id>"}``.
    apps: dict[str, str] = {}


_ACTIONS = (
    "setPresence",
    "clearPresence",
    "setUserPreferredPresence",
    "clearUserPreferredPresence",
    "setStatusMessage",
    "fault",
    "clearFaults",
    "expect",
)


@dataclass(frozen=True, slots=True)
class StepResult:
    #: The step's place in the scenario (from 1) and its offset.
    number: int
    at: str
    #: The manual clock when it was done.
    clock: datetime
    did: str
    ok: bool
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Played:
    name: str
    start: datetime
    steps: tuple[StepResult, ...]

    @property
    def passed(self) -> bool:
        return all(step.ok for step in self.steps)


def describe_rule(rule: FaultRule) -> str:
    """A fault rule in words: what it does, to what, how often."""
    if rule.action is not None:
        what = {"delay": f"delay by {rule.delay_ms} ms", "reorder": f"reorder within {rule.window_ms} ms"}.get(
            rule.action, rule.action
        )
        whose = " and ".join(
            x for x in (rule.subscription_id and f"subscription {rule.subscription_id}", rule.notification_url) if x
        )
        target = f"notifications of {whose}"
    else:
        late = f"{rule.latency_ms} ms late" if rule.latency_ms else ""
        what = " ".join(x for x in (str(rule.status or ""), late) if x)
        target = f"{rule.method or 'any'} {rule.path}"
    often = (
        f"the next {rule.count}"
        if rule.count is not None
        else (f"with probability {rule.probability}" if rule.probability is not None else "every one")
    )
    return f"{what} on {target}, {often}"


def parse_scenario(data: bytes, yaml: bool = False) -> Scenario:
    """A scenario from JSON or YAML, checked; anything it cannot mean is a 400 that says where."""
    try:
        if yaml:
            import yaml as pyyaml

            raw: Any = pyyaml.safe_load(data)
        else:
            raw = msgspec.json.decode(data)
    except Exception as error:  # the parsers' own errors say where
        raise BadRequest(f"The scenario is not valid {'YAML' if yaml else 'JSON'}: {str(error)[:300]}") from None
    try:
        scenario = msgspec.convert(raw, Scenario)
    except msgspec.ValidationError as error:
        raise BadRequest(f"The scenario is not one: {error}") from None
    _check(scenario)
    return scenario


def _check(scenario: Scenario) -> None:
    if not scenario.steps:
        raise BadRequest("A scenario needs at least one step.")
    if len(scenario.steps) > MAX_STEPS:
        raise BadRequest(f"A scenario has at most {MAX_STEPS} steps.")
    for name, app_id in scenario.apps.items():
        _guid(app_id, f"apps.{name}")
    previous = timedelta(0)
    for number, step in enumerate(scenario.steps, 1):
        where = f"step {number} (at {step.at})"
        offset = _offset(step.at, where)
        if offset < previous:
            raise BadRequest(f"{where} comes before the step ahead of it: steps are in the order of their 'at'.")
        previous = offset
        actions = [a for a in _ACTIONS if getattr(step, a) is not None]
        if len(actions) > 1:
            raise BadRequest(f"{where} does {' and '.join(actions)}: a step does one thing (or none: the clock).")
        part = getattr(step, actions[0]) if actions else None
        app = getattr(part, "app", None)
        if app is not None and app not in scenario.apps:
            _guid(app, f"{where}: app (a name from 'apps' or a client id)")
        lasting = getattr(part, "expirationDuration", None)
        if lasting is not None:
            duration_value(lasting, f"{where}: expirationDuration")
        if step.fault is not None:
            try:
                rule_from_fields(step.fault)
            except BadRequest as error:
                raise BadRequest(f"{where}: fault: {error.message}") from None
        if step.expect is not None and step.expect.availability is None and step.expect.activity is None:
            raise BadRequest(f"{where}: expect names an availability, an activity, or both.")


def _offset(text: str, where: str) -> timedelta:
    offset = duration_value(text, f"{where}: at")
    if offset is None or offset < timedelta(0):
        raise BadRequest(f"{where}: 'at' must be a duration from the start, PT0S or later.")
    return offset


def _guid(value: str, where: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadRequest(f"{where} must be an application (client) id, a GUID; got '{value[:64]}'.") from None


class Scenarios:
    """Plays scenarios on the emulator's services, as applications of one tenant."""

    def __init__(
        self,
        clock: EmulatorClock,
        actions: PresenceActions,
        presence: PresenceService,
        faults: Faults,
        identity: IdentityService,
    ) -> None:
        self._clock = clock
        self._actions = actions
        self._presence = presence
        self._faults = faults
        self._identity = identity

    async def play(
        self,
        scenario: Scenario,
        through: timedelta | None = None,
        before: Callable[[int, Step], Awaitable[None]] | None = None,
    ) -> Played:
        """Play the steps (those at ``through`` or before, if given) in order; stop after the first that
        fails (an expectation not met, or a write refused). ``before`` is awaited ahead of each step."""
        tenant = await self._tenant(scenario)
        named = {getattr(getattr(step, a), "user", "") for step in scenario.steps for a in _ACTIONS}
        for user in sorted(named - {""}):  # every user named exists, before anything is done
            await self._presence.get_presence(self._principal(tenant, PLAYER_APP), user)
        start = await self._clock.now()
        results: list[StepResult] = []
        for number, step in enumerate(scenario.steps, 1):
            offset = _offset(step.at, f"step {number}")
            if through is not None and offset > through:
                break
            if before is not None:
                await before(number, step)
            now = await self._clock.now()
            if start + offset > now:
                now = await self._clock.move(to=start + offset)
            try:
                did, ok = await self._do(scenario, tenant, step)
            except PresencedError as error:
                did, ok = f"refused: {error.message}", False
            results.append(StepResult(number, step.at, now, did, ok, step.note))
            if not ok:
                break
        return Played(scenario.name, start, tuple(results))

    async def _tenant(self, scenario: Scenario) -> str:
        tenants = [t.id for t in await self._identity.list_tenants()]
        if scenario.tenant is not None:
            if scenario.tenant.lower() not in tenants:
                raise BadRequest(f"There is no tenant '{scenario.tenant[:64]}' on this server.")
            return scenario.tenant.lower()
        if len(tenants) != 1:
            raise BadRequest(f"This server has {len(tenants)} tenants: name the scenario's 'tenant'.")
        return tenants[0]

    @staticmethod
    def _principal(tenant: str, app_id: str) -> Principal:
        return Principal(tenant_id=tenant, app_id=app_id, expires_at=datetime.max.replace(tzinfo=UTC), roles=_ROLES)

    async def _do(self, scenario: Scenario, tenant: str, step: Step) -> tuple[str, bool]:
        def app_of(name: str | None) -> tuple[str, str]:
            if name is None:
                return PLAYER_APP, "the scenario player"
            return (scenario.apps[name], name) if name in scenario.apps else (_guid(name, "app"), name)

        actions = self._actions
        if (s := step.setPresence) is not None:
            app_id, app_name = app_of(s.app)
            principal = self._principal(tenant, app_id)
            await actions.set_presence(principal, s.user, app_id, s.availability, s.activity, s.expirationDuration)
            lasting = f" for {s.expirationDuration}" if s.expirationDuration else ""
            return f"{s.user}: setPresence {s.availability}/{s.activity}{lasting} through {app_name}", True
        if (c := step.clearPresence) is not None:
            app_id, app_name = app_of(c.app)
            await actions.clear_presence(self._principal(tenant, app_id), c.user, app_id)
            return f"{c.user}: clearPresence through {app_name}", True
        player = self._principal(tenant, PLAYER_APP)
        if (p := step.setUserPreferredPresence) is not None:
            await actions.set_preferred_presence(player, p.user, p.availability, p.activity, p.expirationDuration)
            return f"{p.user}: setUserPreferredPresence {p.availability}/{p.activity}", True
        if (u := step.clearUserPreferredPresence) is not None:
            await actions.clear_preferred_presence(player, u.user)
            return f"{u.user}: clearUserPreferredPresence", True
        if (m := step.setStatusMessage) is not None:
            await actions.set_status_message(player, m.user, m.message, "text", None, None, False)
            return f"{m.user}: setStatusMessage {m.message!r}", True
        if step.fault is not None:
            rule = await self._faults.add(rule_from_fields(step.fault))
            return f"fault rule {rule.id}: {describe_rule(rule)}", True
        if step.clearFaults:
            removed = await self._faults.clear()
            return f"{removed} fault rule{'s' if removed != 1 else ''} removed", True
        if (e := step.expect) is not None:
            visible = (await self._presence.get_presence(player, e.user)).state.visible
            got = f"{visible.availability.value}/{visible.activity.value}"
            ok = (e.availability is None or e.availability == visible.availability.value) and (
                e.activity is None or e.activity == visible.activity.value
            )
            wanted = "/".join(x for x in (e.availability, e.activity) if x is not None)
            return f"{e.user}: expected {wanted}, read {got}", ok
        return "clock moved", True
