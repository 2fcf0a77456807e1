"""The composition root: builds the services from settings and picks the backends."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from presenced.clock import Clock, LocalClock, SystemClock, real_now
from presenced.config import Settings, prepare_data_dir
from presenced.notify.encryption import load_encryption_certificate
from presenced.notify.fanout import LocalFanout, RedisFanout
from presenced.notify.outbound import OutboundPolicy
from presenced.notify.webhooks import CHANGE_TRACKING_APP_ID, WebhookEndpoints, WebhookSender
from presenced.oauth.keys import DatabaseKeys, KeySealer, SigningKeys, open_keys
from presenced.oauth.passwords import Argon2Hasher
from presenced.oauth.server import AuthorizationServer
from presenced.oauth.signin import SignIn
from presenced.oauth.tokens import TokenVerifier, mint_access_token
from presenced.services.actions import PresenceActions
from presenced.services.consents import Consents
from presenced.services.deliveries import Deliveries
from presenced.services.demo import DemoIdentity, DemoTenant, seed_demo, seed_demo_identity
from presenced.services.directory import DirectoryService
from presenced.services.emulator import EmulatorClock
from presenced.services.faults import Faults
from presenced.services.feed import ChangeFeed
from presenced.services.health import Health
from presenced.services.history import PresenceHistory
from presenced.services.identity import IdentityService
from presenced.services.mailbox import MailboxService
from presenced.services.observe import Observer
from presenced.services.ports import ChangeLog, IdentityStore, PresenceReader, PresenceWriter, UnitOfWork
from presenced.services.presence import PresenceService
from presenced.services.presence_cache import CachedPresenceReader
from presenced.services.scenarios import Scenarios
from presenced.services.subscriptions import SubscriptionLifecycle, SubscriptionService
from presenced.services.sweeper import Sweeper
from presenced.services.throttle import Limit, Throttle
from presenced.store.backup import (
    copy_database,
    is_sqlite_file,
    migrate_file,
    postgres_server_version,
    schema_revisions,
    sealed_key_count,
)
from presenced.store.changes import SqlChangeLog
from presenced.store.clock import StoredClock
from presenced.store.directory_cache import CachedIdentityStore
from presenced.store.engine import SqlSchemaState, create_engine, sqlite_url, upgrade
from presenced.store.faults import SqlFaultStore, is_emulator, mark_emulator, unmark_emulator
from presenced.store.group_commit import GroupCommit
from presenced.store.keys import SqlKeyRows
from presenced.store.measures import SqlMeasures
from presenced.store.postgres_writer import PostgresBatches
from presenced.store.presence import SqlStore
from presenced.store.reads import PostgresPresenceReader, SqlitePresenceReader
from presenced.store.sqlite_writer import SqliteBatches
from presenced.store.subscriptions import SqlSubscriptionStore
from presenced.store.throttle import RedisThrottleCounts, SqlThrottleCounts
from presenced.store.token_state import PostgresTokenState, SqliteTokenState, TokenState


@dataclass
class Runtime:
    """The services of one process, typed by what they are to their users (ports and services), and
    what closes them."""

    settings: Settings
    #: The SQLAlchemy engine of the store (migrations, tools, tests).
    engine: AsyncEngine
    #: Transactions over the directory and presence facts (SQL).
    store: UnitOfWork
    keys: SigningKeys
    clock: Clock
    #: The read hot path (bare driver).
    reader: PresenceReader
    #: The single reads served from memory (``services.presence_cache``); the change feed keeps it fresh
    #: when ``serve`` follows it.
    cached_reader: CachedPresenceReader
    #: Every write of presence facts goes through it (group commit).
    writer: PresenceWriter
    presence: PresenceService
    verifier: TokenVerifier
    actions: PresenceActions
    mailbox: MailboxService
    sweeper: Sweeper
    #: The manual clock's controls; None on real time.
    emulator: EmulatorClock | None
    identity: IdentityService
    #: The directory as administrators change it: every call authorized inside.
    directory: DirectoryService
    consents: Consents
    #: Where the directory and sign-in state are kept (the services' port; tests and tools).
    identity_store: IdentityStore
    oauth: AuthorizationServer
    signin: SignIn
    subscriptions: SubscriptionService
    deliveries: Deliveries
    lifecycle: SubscriptionLifecycle
    change_log: ChangeLog
    feed: ChangeFeed
    #: Presence history and last seen (an extension), and its purge.
    history: PresenceHistory
    #: Other processes' changes (Redis), or this one's alone.
    fanout: LocalFanout
    #: Readiness: the database, the worker (when this process runs it) and Redis.
    health: Health
    #: The gauges a metrics scrape measures (docs/deployment.md, "Metrics").
    observer: Observer
    #: Graph's throttling of applications; None when it is off.
    throttle: Throttle | None = None
    #: The emulator's fault rules; None unless the database is an emulator's (--emulator, --clock manual).
    faults: Faults | None = None
    #: The emulator's scenario player; None without the manual clock.
    scenarios: Scenarios | None = None
    #: What ``close`` closes, in this order.
    closing: list[Callable[[], Awaitable[None]]] = field(default_factory=list, repr=False)

    async def close(self) -> None:
        for close in self.closing:
            await close()


async def build(settings: Settings, *, migrate: bool = True, clock: LocalClock | None = None) -> Runtime:
    """Open the database (migrating it to the newest schema) and load the signing keys."""
    prepare_data_dir(settings.data_dir)
    url = settings.database_url or sqlite_url(settings.data_dir)
    engine = create_engine(url)
    store = SqlStore(engine)
    opened: list[Callable[[], Awaitable[None]]] = [engine.dispose]
    try:
        if migrate:
            await upgrade(engine)
        keys = await open_keys(settings.data_dir, settings.keys_secret, SqlKeyRows(engine))
        reader = await _reader(engine)
        opened.append(reader.close)
        tokens = await _token_state(engine, store)
        opened.append(tokens.close)
        manual = None if clock is not None else await _manual_clock(url, settings)
        if manual is not None:
            opened.append(manual.close)
        if settings.emulator or settings.clock == "manual":
            await mark_emulator(engine)
        emulator = await is_emulator(engine)
        # The writer reads a clock of this process's itself; the manual clock, inside its transactions.
        local = None if manual is not None else clock or SystemClock()
        writer = GroupCommit(await _batches(engine, store, local))
    except BaseException:
        for close in reversed(opened):
            await close()
        raise
    presence_clock: Clock = manual or local or SystemClock()
    verifier = TokenVerifier(keys, settings.base_url, store.tenant_exists, settings.token_cache_size)
    sweeper = Sweeper(writer)
    actions = PresenceActions(reader, writer, presence_clock)
    hasher = Argon2Hasher()
    # What token requests read of the directory, kept until it changes (store.directory_cache).
    identity_store = CachedIdentityStore(store, tokens)
    identity = IdentityService(identity_store, hasher)
    oauth = AuthorizationServer(
        identity, identity_store, keys, settings.base_url, device_interval=settings.device_code_interval
    )
    policy = OutboundPolicy(
        allow_loopback=settings.allow_loopback_webhooks,
        allowed_networks=tuple(
            ipaddress.ip_network(n.strip()) for n in settings.webhook_allow_list.split(",") if n.strip()
        ),
    )
    subscription_store = SqlSubscriptionStore(store)
    change_log = SqlChangeLog(engine)

    def validation_token(app_id: str, tenant_id: str) -> str:
        """Rich notifications' proof of origin: a JWT of this server's, for the subscribing app."""
        return mint_access_token(
            keys, settings.base_url, tenant_id, app_id=CHANGE_TRACKING_APP_ID, now=real_now(), audience=app_id
        )

    subscriptions = SubscriptionService(
        subscription_store,
        store,
        WebhookEndpoints(policy),
        load_encryption_certificate,
        presence_clock,
        timedelta(minutes=settings.subscription_max_minutes),
        identity.kept_subscriptions,
        timedelta(minutes=settings.reauthorization_lead_minutes),
    )
    # With Redis, other processes wake this one at once; polling is only the safety net.
    fanout = RedisFanout(settings.redis_url) if settings.redis_url else LocalFanout()
    health = Health(SqlSchemaState(engine), sweeper, fanout if isinstance(fanout, RedisFanout) else None)
    faults = Faults(SqlFaultStore(engine)) if emulator else None
    sender = WebhookSender(policy, validation_token)
    deliveries = Deliveries(
        subscription_store,
        sender,
        real_now,
        interval=2.0 if settings.redis_url else 0.2,
        faults=faults,
    )
    signin = SignIn(identity_store, hasher)
    # Streams end when their token or portal session does; a sign-out here ends its streams at once.
    feed = ChangeFeed(change_log, interval=1.0 if settings.redis_url else 0.1, now=real_now, sessions=signin)
    signin.ended.append(feed.session_ended)
    fanout.listeners.append(feed.wake)
    fanout.outbox_listeners.append(deliveries.wake)
    fanout.directory_listeners.append(identity_store.cache.forget)
    store.after_commit.append(fanout.changed)
    store.after_directory_commit.append(fanout.directory_changed)
    writer.after_commit.append(fanout.changed)
    # Single reads by object id from memory; an entry goes when this process stores a change of the user,
    # when the change feed brings another process's, when the user is deleted here, and after MAX_AGE.
    cached = CachedPresenceReader(reader)
    writer.after_store.append(cached.forget)
    presence = PresenceService(cached)
    throttle = None
    closing = [writer.close, fanout.close, sender.connections.close, *reversed(opened)]
    limit = settings.throttle_limit
    if limit is not None:
        counts: RedisThrottleCounts | SqlThrottleCounts
        if settings.redis_url:
            counts = RedisThrottleCounts(settings.redis_url)
            closing.insert(0, counts.close)
        else:
            counts = SqlThrottleCounts(engine)
        throttle = Throttle(Limit(*limit), counts)
    emulator_clock = None if manual is None else EmulatorClock(manual, sweeper)
    scenarios = None
    if emulator_clock is not None and faults is not None:
        scenarios = Scenarios(emulator_clock, actions, presence, faults, identity)
    directory = DirectoryService(identity, identity_store)
    directory.user_removed.append(cached.forget_user)
    return Runtime(
        settings=settings,
        engine=engine,
        store=store,
        keys=keys,
        clock=presence_clock,
        reader=reader,
        cached_reader=cached,
        writer=writer,
        presence=presence,
        verifier=verifier,
        actions=actions,
        mailbox=MailboxService(actions, store),
        sweeper=sweeper,
        emulator=emulator_clock,
        identity=identity,
        directory=directory,
        consents=Consents(identity, identity_store),
        identity_store=identity_store,
        oauth=oauth,
        signin=signin,
        subscriptions=subscriptions,
        deliveries=deliveries,
        lifecycle=SubscriptionLifecycle(subscriptions),
        change_log=change_log,
        feed=feed,
        fanout=fanout,
        health=health,
        observer=Observer(SqlMeasures(engine), presence_clock, feed),
        throttle=throttle,
        faults=faults,
        scenarios=scenarios,
        history=PresenceHistory(presence, change_log, presence_clock, timedelta(days=settings.history_retention_days)),
        closing=closing,
    )


async def _manual_clock(url: str, settings: Settings) -> StoredClock | None:
    """The manual clock: started with ``--clock manual``; once a database has one, every process uses it."""
    if settings.clock == "manual":
        clock = StoredClock.open(url)
        await clock.start()
        return clock
    return await StoredClock.existing(url)


async def _batches(engine: AsyncEngine, store: SqlStore, clock: LocalClock | None) -> SqliteBatches | PostgresBatches:
    """The writer's batches on the bare driver of the same database."""
    if engine.dialect.name == "sqlite":
        return SqliteBatches(engine.url.database or ":memory:", clock, store.writer_turn)
    return await PostgresBatches.connect(engine.url.render_as_string(hide_password=False), clock)


async def _token_state(engine: AsyncEngine, store: SqlStore) -> TokenState:
    """The token endpoint's codes and refresh tokens on the bare driver of the same database."""
    if engine.dialect.name == "sqlite":
        return SqliteTokenState(engine.url.database or ":memory:", store.writer_turn)
    return await PostgresTokenState.connect(engine.url.render_as_string(hide_password=False))


async def _reader(engine: AsyncEngine) -> SqlitePresenceReader | PostgresPresenceReader:
    """The read hot path on the bare driver of the same database."""
    if engine.dialect.name == "sqlite":
        return SqlitePresenceReader(engine.url.database or ":memory:")
    return await PostgresPresenceReader.connect(engine.url.render_as_string(hide_password=False))


async def reseal_keys(runtime: Runtime, new_secret: str) -> int:
    """Seal the database's signing keys under ``new_secret`` (the runtime opened them with the old one)."""
    if not isinstance(runtime.keys, DatabaseKeys):
        return 0
    return await runtime.keys.reseal(KeySealer(new_secret))


async def seed_demo_data(runtime: Runtime) -> tuple[DemoTenant, DemoIdentity]:
    """Create or reset the demo tenant: its people with their presence, their passwords and the demo apps."""
    tenant = await seed_demo(runtime.store, runtime.writer, runtime.clock)
    return tenant, await seed_demo_identity(runtime.identity, real_now())


async def leave_emulator(runtime: Runtime) -> bool:
    """Make the database an ordinary one: no manual clock, no fault rule, and processes started afterwards
    are not emulators; whether it was an emulator's."""
    return await unmark_emulator(runtime.engine)


async def remove_manual_clock(runtime: Runtime) -> bool:
    """Remove the database's manual clock, so that every process started afterwards runs on real time;
    whether there was one."""
    stored = StoredClock.open(runtime.settings.database_url or sqlite_url(runtime.settings.data_dir))
    try:
        return await stored.remove()
    finally:
        await stored.close()


# ---- backups: what `presenced db backup|restore` need of the store


def is_sqlite_database(path: Path) -> bool:
    return is_sqlite_file(path)


def newest_schema_revision() -> str:
    return schema_revisions()[-1]


def copy_sqlite_database(source: Path, target: Path, what: str) -> str:
    """A consistent copy of the SQLite database ``source`` (servers may be writing it) in the new file
    ``target``; its schema revision. ``what`` names the source in errors."""
    return copy_database(source, target, what)


def sealed_keys_in(path: Path) -> int:
    """How many signing keys the SQLite database ``path`` keeps sealed (docs/deployment.md, "Signing keys")."""
    return sealed_key_count(path)


async def migrate_sqlite_file(path: Path) -> None:
    """Bring the SQLite database ``path`` to the newest schema, as ``build`` does."""
    await migrate_file(path)


async def postgres_version(url: str) -> str:
    """The PostgreSQL server's version (``SHOW server_version``)."""
    return await postgres_server_version(url)
