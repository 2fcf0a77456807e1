"""The demo tenant: a fixed set of users in varied presence states.

Ids are derived from names, so they are the same on every machine. Seeding is
idempotent: it creates what is missing and puts every demo user back into the
scenario below, relative to the current time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from presenced.clock import Clock
from presenced.domain.model import (
    Activity,
    AutomaticReplies,
    AutoReplyStatus,
    Availability,
    LocationLayer,
    PreferredPresence,
    PresenceFacts,
    Session,
    StatusMessage,
    WorkLocationType,
)
from presenced.services.ports import Tenant, UnitOfWork, User
from presenced.services.writes import change_facts

_NAMESPACE = uuid.UUID("5b0c3f3e-7d1a-4c52-9a53-2f7e0f6d1c11")
DEMO_TENANT_ID = str(uuid.uuid5(_NAMESPACE, "tenant"))
DEMO_DOMAIN = "contoso.example"
#: The application the demo's presence sessions belong to.
DEMO_APP_ID = str(uuid.uuid5(_NAMESPACE, "app:teams-demo"))


def demo_user_id(nickname: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"user:{nickname}"))


def _session(now: datetime, availability: Availability, activity: Activity, idle: int = 0) -> Session:
    refreshed = now - timedelta(minutes=idle)
    return Session(DEMO_APP_ID, availability, activity, refreshed, refreshed + timedelta(hours=4))


def _status(now: datetime, text: str, hours: float | None = None) -> StatusMessage:
    expires = None if hours is None else now + timedelta(hours=hours)
    return StatusMessage(text, now, expires, None if hours is None else "UTC")


Scenario = Callable[[datetime], PresenceFacts]

#: nickname, display name, the facts relative to ``now``.
SCENARIOS: tuple[tuple[str, str, Scenario], ...] = (
    (
        "adele",
        "Adele Vance",
        lambda now: PresenceFacts(
            sessions=(_session(now, Availability.AVAILABLE, Activity.AVAILABLE),),
            status_message=_status(now, "Working on the quarterly report"),
            manual_location=LocationLayer(WorkLocationType.OFFICE, "building-1"),
        ),
    ),
    (
        "alex",
        "Alex Wilber",
        lambda now: PresenceFacts(
            sessions=(_session(now, Availability.BUSY, Activity.IN_A_CALL),),
            status_message=_status(now, "On calls until lunch", hours=3),
        ),
    ),
    (
        "megan",
        "Megan Bowen",
        lambda now: PresenceFacts(
            sessions=(_session(now, Availability.DO_NOT_DISTURB, Activity.PRESENTING),),
            automatic_location=LocationLayer(WorkLocationType.REMOTE),
        ),
    ),
    (
        "lynne",
        "Lynne Robbins",
        # Idle for 7 minutes: Available/AvailableInactive now, Away/Away in 3 minutes.
        lambda now: PresenceFacts(sessions=(_session(now, Availability.AVAILABLE, Activity.AVAILABLE, 7),)),
    ),
    (
        "diego",
        "Diego Siciliani",
        lambda now: PresenceFacts(
            sessions=(_session(now, Availability.AVAILABLE, Activity.AVAILABLE),),
            preferred=PreferredPresence(Availability.BE_RIGHT_BACK, Activity.BE_RIGHT_BACK, now + timedelta(days=7)),
        ),
    ),
    (
        "isaiah",
        "Isaiah Langer",
        lambda now: PresenceFacts(
            sessions=(_session(now, Availability.AVAILABLE, Activity.AVAILABLE),),
            automatic_replies=AutomaticReplies(
                AutoReplyStatus.ALWAYS_ENABLED,
                internal_reply_message="I am on leave until Monday.",
                external_reply_message="I am on leave until Monday.",
            ),
        ),
    ),
    (
        "johanna",
        "Johanna Lorenz",
        # "Appear offline": a live session under the preferred Offline/OffWork.
        lambda now: PresenceFacts(
            sessions=(_session(now, Availability.AVAILABLE, Activity.AVAILABLE),),
            preferred=PreferredPresence(Availability.OFFLINE, Activity.OFF_WORK, now + timedelta(days=1)),
        ),
    ),
    (
        "grady",
        "Grady Archie",
        lambda now: PresenceFacts(
            automatic_replies=AutomaticReplies(
                AutoReplyStatus.SCHEDULED,
                scheduled_start=now + timedelta(days=2),
                scheduled_end=now + timedelta(days=9),
                internal_reply_message="On holiday; back in a week.",
            ),
        ),
    ),
    (
        "pradeep",
        "Pradeep Gupta",
        lambda now: PresenceFacts(
            sessions=(_session(now, Availability.AWAY, Activity.AWAY),),
            status_message=_status(now, "Back after lunch", hours=1),
            manual_location=LocationLayer(WorkLocationType.TIME_OFF),
        ),
    ),
    ("nestor", "Nestor Wilke", lambda now: PresenceFacts()),
)


@dataclass(frozen=True, slots=True)
class DemoTenant:
    tenant: Tenant
    users: tuple[User, ...]


def demo_users() -> tuple[User, ...]:
    return tuple(User(demo_user_id(nick), DEMO_TENANT_ID, f"{nick}@{DEMO_DOMAIN}", name) for nick, name, _ in SCENARIOS)


def _replace_with(facts: PresenceFacts) -> Callable[[PresenceFacts, datetime], PresenceFacts]:
    return lambda _old, _now: facts


async def seed_demo(uow: UnitOfWork, clock: Clock) -> DemoTenant:
    """Create or reset the demo tenant and its users, in one transaction."""
    now = await clock.now()
    tenant = Tenant(DEMO_TENANT_ID, "Contoso (demo)")
    users = demo_users()
    async with uow.begin() as tx:
        await tx.put_tenant(tenant, now)
        for user, (_, _, scenario) in zip(users, SCENARIOS, strict=True):
            await tx.put_user(user, now)
            facts = scenario(now)
            await change_facts(tx, user, _replace_with(facts), clock, "demo")
    return DemoTenant(tenant, users)
