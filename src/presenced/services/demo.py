"""The demo tenant: a fixed set of users in varied presence states.

Ids are derived from names, so they are the same on every machine. Seeding is
idempotent: it creates what is missing and puts every demo user back into the
scenario below, relative to the current time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from presenced.auth.permissions import (
    APP_PRESENCE_READ_ALL,
    APP_PRESENCE_READWRITE_ALL,
    GRAPH_APP_ID,
    PRESENCE_READ,
    PRESENCE_READ_ALL,
    PRESENCE_READWRITE,
    Permission,
)
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
from presenced.services.demo_ids import (
    DEMO_ADMIN,
    DEMO_APP_ID,
    DEMO_DAEMON_APP_ID,
    DEMO_DOMAIN,
    DEMO_PUBLIC_APP_ID,
    DEMO_TENANT_ID,
    NAMESPACE,
    demo_user_id,
)
from presenced.services.entities import Application, RequiredAccess, Tenant, User
from presenced.services.identity import IdentityService
from presenced.services.ports import PresenceWriter, UnitOfWork
from presenced.services.writes import deciding


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


async def seed_demo(uow: UnitOfWork, writer: PresenceWriter, clock: Clock) -> DemoTenant:
    """Create or reset the demo tenant and its users (one transaction), then their presence (one more)."""
    now = await clock.now()
    tenant = Tenant(DEMO_TENANT_ID, "Contoso (demo)")
    users = demo_users()
    async with uow.begin() as tx:
        await tx.put_tenant(tenant, now)
        for user in users:
            await tx.put_user(user, now)
    # Submitted together, the scenarios share one transaction of the writer's.
    await asyncio.gather(
        *(
            writer.write(user, deciding(_replace_with(scenario(now)), "demo"))
            for user, (_, _, scenario) in zip(users, SCENARIOS, strict=True)
        )
    )
    return DemoTenant(tenant, users)


# ---- The demo's sign-in side: passwords, an administrator, and two apps. ----

#: Where the public client's authorization codes go (as in Entra, http loopback URIs match on any port).
DEMO_REDIRECT_URIS = ("http://localhost", "http://localhost:8400/callback")


#: Hashes of the demo passwords, made once per process. The passwords are printed for anyone to
#: read, so they are hashed at argon2's lowest cost: seeding (every `presenced demo`, every
#: `serve --demo`) and signing in as a demo user cost no second of argon2 each.
_demo_hashes: dict[str, str] = {}


def _demo_hash(identity: IdentityService, password: str) -> str:
    if password not in _demo_hashes:
        _demo_hashes[password] = identity.hasher.hash_public_password(password)
    return _demo_hashes[password]


def demo_password(nickname: str) -> str:
    """Demo passwords are public knowledge: the demo tenant is for trying things out."""
    return f"{nickname.capitalize()}-presence-demo"


@dataclass(frozen=True, slots=True)
class DemoApp:
    app: Application
    #: The client secret, new on every seeding (it is stored only as a hash); None for a public client.
    secret: str | None
    permissions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DemoIdentity:
    passwords: dict[str, str]
    apps: tuple[DemoApp, ...]


def _access(*permissions: Permission) -> tuple[RequiredAccess, ...]:
    return tuple(RequiredAccess(GRAPH_APP_ID, p.id, p.kind.graph_type) for p in permissions)


async def seed_demo_profiles(identity: IdentityService) -> None:
    """The demo people's given names, surnames and mail addresses (their UPNs)."""
    for nick, name, _ in SCENARIOS:
        given_name, _, surname = name.partition(" ")
        await identity.set_profile(demo_user_id(nick), given_name, surname or None, f"{nick}@{DEMO_DOMAIN}")


async def seed_demo_identity(identity: IdentityService, now: datetime) -> DemoIdentity:
    """Give the demo users passwords (Adele is the administrator) and (re)create the two demo apps."""
    await identity.graph_principal(DEMO_TENANT_ID, now)
    passwords = {}
    await seed_demo_profiles(identity)
    for nick, _, _ in SCENARIOS:
        password = demo_password(nick)
        await identity.set_password_hash(demo_user_id(nick), _demo_hash(identity, password), nick == DEMO_ADMIN)
        passwords[demo_user_id(nick)] = password
    daemon_permissions = (APP_PRESENCE_READ_ALL, APP_PRESENCE_READWRITE_ALL)
    daemon = await identity.reset_application(
        _demo_app(DEMO_DAEMON_APP_ID, "Presence Daemon (demo)", now, required=_access(*daemon_permissions)),
        now,
    )
    secret = await identity.add_password(daemon, "demo", now, now + timedelta(days=365))
    await identity.grant_admin_consent(DEMO_TENANT_ID, daemon, now)
    public_permissions = (PRESENCE_READ, PRESENCE_READ_ALL, PRESENCE_READWRITE)
    public = await identity.reset_application(
        _demo_app(
            DEMO_PUBLIC_APP_ID,
            "Presence Desktop (demo)",
            now,
            required=_access(*public_permissions),
            public_redirects=DEMO_REDIRECT_URIS,
            public_client=True,
        ),
        now,
    )
    return DemoIdentity(
        passwords,
        (
            DemoApp(daemon, secret.text, tuple(f"{p.value} (application)" for p in daemon_permissions)),
            DemoApp(public, None, tuple(f"{p.value} (delegated)" for p in public_permissions)),
        ),
    )


def _demo_app(
    app_id: str,
    name: str,
    now: datetime,
    *,
    required: tuple[RequiredAccess, ...],
    public_redirects: tuple[str, ...] = (),
    public_client: bool = False,
) -> Application:
    return Application(
        id=str(uuid.uuid5(NAMESPACE, f"application:{app_id}")),
        app_id=app_id,
        tenant_id=DEMO_TENANT_ID,
        display_name=name,
        sign_in_audience="AzureADMyOrg",
        is_fallback_public_client=public_client,
        web_redirect_uris=(),
        spa_redirect_uris=(),
        public_client_redirect_uris=public_redirects,
        required_resource_access=required,
        identifier_uris=(),
        api_scopes=(),
        created=now,
    )
