"""The ``presenced`` command line: serve, demo, token, db upgrade|backup|restore."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import shlex
import socket
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from presenced import __version__
from presenced.cli.admin import COMMANDS
from presenced.cli.backup import backup, restore
from presenced.cli.common import (
    clock_option,
    guid,
    load_settings,
    log_options,
    permission_list,
    run,
    start_logging,
    store_options,
    with_runtime,
)
from presenced.cli.faults import faults, scenario
from presenced.cli.registrations import COMMANDS as REGISTRATION_COMMANDS
from presenced.clock import real_now
from presenced.config import Settings, default_data_dir, parse_processes, redacted_url
from presenced.errors import ConfigurationError

# Each command imports what it needs when it runs: `presenced --help` and `presenced token` start
# without loading the server, the sign-in pages or the notification machinery.
if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator, Iterator

    import uvicorn

    from presenced.bootstrap import Runtime
    from presenced.services.demo import DemoIdentity, DemoTenant
    from presenced.tls import LocalTls

#: The application id that ``presenced token --user`` tokens carry unless told otherwise.
CLI_APP_ID = "de8bc8b5-d9f9-48b1-a8ad-b748da725064"


@click.group()
@click.version_option(__version__, prog_name="presenced")
def cli() -> None:
    """A self-hosted presence service that speaks the Microsoft Graph presence API."""


@cli.command()
@store_options
@click.option("--host", help="Address to listen on (default 127.0.0.1). Env: PRESENCED_HOST.")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default 8000; 0 picks a free one).")
@click.option(
    "--public-url", help="The URL clients use, if not https://HOST:PORT (http with --http). Env: PRESENCED_PUBLIC_URL."
)
@click.option("--demo", is_flag=True, help="Seed (or reset) the demo tenant before serving.")
@clock_option
@click.option(
    "--emulator",
    is_flag=True,
    default=None,
    help="Make the database an emulator's: fault rules and scenarios (implied by --clock manual). "
    "Env: PRESENCED_EMULATOR=1.",
)
@click.option("--no-worker", is_flag=True, help="Do not run the background worker (run `presenced worker`).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), help="Certificate chain (PEM) to serve.")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="Private key (PEM) of --tls-cert.")
@click.option(
    "--http",
    "plain_http",
    is_flag=True,
    help="Serve plain HTTP (e.g. behind a TLS-terminating proxy). Sign-in libraries need HTTPS. Env: PRESENCED_HTTP=1.",
)
@click.option(
    "--forwarded-allow-ips",
    help="Trust X-Forwarded-Proto/For from these proxy addresses (comma-separated, or *).",
)
@click.option(
    "--redis-url", help="redis://host:6379/0: wake other processes at once on each change. Env: PRESENCED_REDIS_URL."
)
@click.option("--device-code-interval", type=click.IntRange(1, 60), help="Seconds between device-code polls (5).")
@click.option(
    "--throttle",
    help="Graph's throttling per app per tenant: graph (10000/30, the default), graph-1500, off, or "
    "REQUESTS/SECONDS such as 100/30. Env: PRESENCED_THROTTLE.",
)
@click.option(
    "--processes",
    help="Server processes on the port: a number (1 by default) or auto, one per core; the background "
    "worker runs in the first. Env: PRESENCED_PROCESSES.",
)
@click.option(
    "--shutdown-timeout",
    type=click.IntRange(1, 600),
    help="Seconds a SIGTERM gives requests in flight, live streams and webhook deliveries (10). "
    "Env: PRESENCED_SHUTDOWN_TIMEOUT.",
)
@click.option(
    "--allow-loopback-webhooks",
    is_flag=True,
    default=None,
    help="Let webhooks be plain http and reach loopback addresses (on with --demo). "
    "Env: PRESENCED_ALLOW_LOOPBACK_WEBHOOKS=1.",
)
@log_options
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve GET /metrics (Prometheus) on this port instead of the main one. Env: PRESENCED_METRICS_PORT.",
)
@click.option("--no-metrics", is_flag=True, help="No GET /metrics at all. Env: PRESENCED_METRICS=off.")
def serve(
    data_dir: Path | None,
    database_url: str | None,
    host: str | None,
    port: int | None,
    public_url: str | None,
    demo: bool,
    clock: str | None,
    emulator: bool | None,
    no_worker: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    plain_http: bool,
    forwarded_allow_ips: str | None,
    redis_url: str | None,
    device_code_interval: int | None,
    throttle: str | None,
    processes: str | None,
    shutdown_timeout: int | None,
    allow_loopback_webhooks: bool | None,
    log_format: str | None,
    log_level: str | None,
    metrics_port: int | None,
    no_metrics: bool,
) -> None:
    """Serve the Graph presence API and the sign-in platform (and, unless --no-worker, the background worker)."""
    if plain_http and (tls_cert or tls_key):
        raise click.UsageError("--http and --tls-cert/--tls-key exclude each other")
    if no_metrics and metrics_port is not None:
        raise click.UsageError("--no-metrics and --metrics-port exclude each other")
    options = {
        "data_dir": data_dir,
        "database_url": database_url,
        "host": host,
        "public_url": public_url,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "tls": "off" if plain_http else None,
        "forwarded_allow_ips": forwarded_allow_ips,
        "device_code_interval": device_code_interval,
        "redis_url": redis_url,
        "allow_loopback_webhooks": True if demo else allow_loopback_webhooks,
        "throttle": throttle,
        "emulator": emulator,
        "log_format": log_format and log_format.lower(),
        "log_level": log_level and log_level.lower(),
        "shutdown_timeout": shutdown_timeout,
        "metrics": False if no_metrics else None,
        "metrics_port": metrics_port,
        "processes": None if processes is None else parse_processes(processes),
    }
    settings = load_settings(clock=clock, **options)
    start_logging(settings)
    many = settings.processes > 1
    sock = listen(settings.host, settings.port if port is None else port, reuse_port=many)
    settings = load_settings(clock=clock, port=sock.getsockname()[1], **options)
    settings = _within_open_files(settings)
    metrics_sock = _metrics_socket(settings)
    if many:
        # One listening socket per process on the one port (SO_REUSEPORT): the kernel spreads connections.
        others = [listen(settings.host, settings.port, reuse_port=True) for _ in range(settings.processes - 1)]
        sockets = [sock, *others]
        _serve_many(settings, sockets, demo, worker=not no_worker, metrics_sock=metrics_sock)
        return
    run(lambda: _serve(settings, sock, demo, worker=not no_worker, metrics_sock=metrics_sock))


def _within_open_files(settings: Settings) -> Settings:
    """The settings, with as many connections as the limit of open files allows, raised first as far as it goes
    (each connection is a file: docs/configuration.md, "Request limits")."""
    import dataclasses

    from presenced.config import connection_limit, raise_file_limit

    open_files = raise_file_limit()
    limit = connection_limit(settings, open_files)
    if limit == settings.max_connections:
        return settings
    logging.getLogger("presenced.http").warning(
        "open files are limited to %d (ulimit -n): this process takes at most %d connections, not %d "
        "(PRESENCED_MAX_CONNECTIONS); raise the hard limit (systemd: LimitNOFILE=) to take more",
        open_files,
        limit,
        settings.max_connections,
    )
    return dataclasses.replace(settings, max_connections=limit)


def _serve_many(
    settings: Settings, sockets: list[socket.socket], demo: bool, worker: bool, metrics_sock: socket.socket | None
) -> None:
    """Run a server process per socket (``_supervise``), sharing their metrics through a directory of their own."""
    import os
    import shutil
    import tempfile

    # The processes share their metrics through files (prometheus-client's multiprocess mode, chosen when it
    # is first imported, which is below): a scrape, whichever process answers it, counts them all.
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory was set")
    shared_metrics = tempfile.mkdtemp(prefix="presenced-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared_metrics
    try:
        _supervise(settings, sockets, demo, worker, metrics_sock)
    finally:
        shutil.rmtree(shared_metrics, ignore_errors=True)


def _supervise(
    settings: Settings, sockets: list[socket.socket], demo: bool, worker: bool, metrics_sock: socket.socket | None
) -> None:
    """Announce (seeding the demo once), then run a server process per socket, each with its own event loop,
    the worker in the first; start one again that exits on its own; on SIGTERM or SIGINT, pass SIGTERM on
    to each and wait for them all."""
    import os
    import signal
    import time

    from presenced.metrics import forget_process

    async def announce(runtime: Runtime) -> None:
        await _announce(runtime, settings, demo, worker)
        click.echo(f"  Processes:  {len(sockets)} on this port (the worker in the first)")
        sys.stdout.flush()

    run(lambda: with_runtime(settings, announce))
    forget_process(os.getpid())  # this process serves nothing: its gauges are not the servers'
    children: dict[int, int] = {}

    def start(slot: int) -> None:
        pid = os.fork()
        if pid:
            children[pid] = slot
            return
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            for other, sock in enumerate(sockets):
                if other != slot:
                    sock.close()
            run(lambda: _serve(settings, sockets[slot], False, worker and slot == 0, metrics_sock, announce=False))
            code = 0
        except BaseException:  # the parent logs that the process ended, and starts it again
            logging.getLogger("presenced.processes").exception("server process %d failed", slot + 1)
        finally:
            os._exit(code)

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for slot in range(len(sockets)):
        start(slot)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        slot = children.pop(pid, -1)
        if slot < 0:
            continue
        forget_process(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            failed = True
        if not stopping:
            logging.getLogger("presenced.processes").warning("server process %d ended; starting it again", slot + 1)
            time.sleep(1.0)
            if not stopping:
                start(slot)
    if failed and not stopping:
        raise SystemExit(1)


def _metrics_socket(settings: Settings) -> socket.socket | None:
    """The socket of ``--metrics-port``, when metrics are on and on a port of their own."""
    if not settings.metrics or settings.metrics_port is None:
        return None
    return listen(settings.host, settings.metrics_port)


@contextlib.asynccontextmanager
async def _metrics_server(runtime: Runtime, sock: socket.socket | None) -> AsyncIterator[None]:
    """``GET /metrics`` alone on ``sock`` (``--metrics-port``) while the block runs; nothing without a socket.

    The main server (or the worker) handles the signals: this one stops when the block ends."""
    import asyncio

    import uvicorn

    from presenced.app import create_metrics_app

    if sock is None:
        yield
        return

    class Quiet(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server = Quiet(server_config(create_metrics_app(runtime), settings=runtime.settings))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield
    finally:
        server.should_exit = True
        await task


def server_config(
    app: Any,
    tls: tuple[Path, Path] | None = None,
    forwarded_allow_ips: str | None = None,
    settings: Settings | None = None,
) -> uvicorn.Config:
    """How ``serve`` runs an ASGI app, with the request limits of ``settings`` (the benchmarks run their
    baseline the same way)."""
    import uvicorn

    from presenced.serving import bounded_protocol

    return uvicorn.Config(
        app,
        # uvicorn's loggers go to the process's handler (presenced.logs.configure), from warning up;
        # presenced.api.requestlog writes the line per request in place of its access log.
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="none",
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        http=bounded_protocol(settings or Settings()),
        server_header=False,
        date_header=True,
        # On SIGTERM: stop accepting, then wait this long for the requests in flight (and for idle TLS
        # connections, which close only once their client answers the TLS close), then stop anyway.
        timeout_graceful_shutdown=(settings or Settings()).shutdown_timeout,
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )


def listen(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """The listening socket ``serve`` hands to uvicorn; with ``reuse_port``, one of several on the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so,
    # and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port} (--host, --port): {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


#: How often expired sign-in state (codes, refresh tokens, device codes, sessions) is removed.
PURGE_INTERVAL = 300.0


def _background(runtime: Runtime) -> list[asyncio.Task[None]]:
    """The worker's jobs: the presence sweeper, webhook delivery, subscription lifecycle, and the purge of
    expired sign-in state."""
    import asyncio

    return [
        asyncio.create_task(runtime.sweeper.run_forever()),
        asyncio.create_task(runtime.deliveries.run_forever()),
        asyncio.create_task(runtime.lifecycle.run_forever()),
        asyncio.create_task(runtime.identity.purge_forever(PURGE_INTERVAL, real_now)),
        asyncio.create_task(runtime.history.purge_forever()),
    ]


def _local_tls(settings: Settings) -> LocalTls:
    from presenced.tls import ensure_local_tls

    return ensure_local_tls(settings.data_dir / "tls", [settings.host])


def command_words(settings: Settings, command: str) -> str:
    """How to run ``presenced COMMAND`` on this run's data: the program as installed, with ``--data-dir``
    and ``--database-url`` when they are not the defaults (a password in the URL is not printed)."""
    script = Path(sys.executable).with_name("presenced")
    words = [str(script)] if script.exists() else [sys.executable, "-m", "presenced"]
    words += command.split()
    if settings.data_dir != default_data_dir():
        words += ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        words += ["--database-url", redacted_url(settings.database_url)]
    return " ".join(shlex.quote(word) for word in words)


def startup_message(
    settings: Settings,
    local: LocalTls | None,
    *,
    demo: tuple[DemoTenant, DemoIdentity] | None,
    tenant_ids: list[str],
    clock: datetime | None,
    worker: bool,
) -> list[str]:
    """What ``serve`` prints once it listens: where, and commands to paste that work for this run."""
    from presenced.tls import trust_instructions

    base = settings.base_url
    where = (settings.database_url and "PostgreSQL") or f"SQLite in {settings.data_dir}"
    if demo is not None:
        tenant_ids = [demo[0].tenant.id]
    tenants = ", ".join(tenant_ids[:3]) + (", ..." if len(tenant_ids) > 3 else "")
    lines = [
        f"presenced {__version__} listening on {base}",
        f"  Graph API:  {base}/v1.0  and  {base}/beta",
        f"  Sign-in:    authority {base}/{{tenant}}"
        + (f"  (tenant {tenants}, common or organizations)" if tenant_ids else "  (no tenant yet)"),
        f"  OpenAPI:    {base}/openapi.json",
        f"  Store:      {where}",
    ]
    if clock is not None:
        lines.append(f"  Clock:      manual, at {clock.isoformat()} (POST {base}/_emulator/clock)")
    lines.append(f"  Worker:     {'in this process' if worker else 'off (run presenced worker)'}")
    if demo is not None:
        tenant, identity = demo
        first = tenant.users[0]
        upn = first.user_principal_name
        lines.append(f"  Demo:       tenant {tenant.tenant.id}, {len(tenant.users)} users, e.g. {upn}")
        lines.append(f"              password {identity.passwords[first.id]} (an administrator)")
        for app in identity.apps:
            secret = f", secret {app.secret}" if app.secret else " (public client)"
            lines.append(f"              app {app.app.display_name}: client id {app.app.app_id}{secret}")
        cacert = f"--cacert {shlex.quote(str(local.ca_cert))} " if local is not None else ""
        token = command_words(settings, "token")
        lines.append(f"  Try:        TOKEN=$({token} --user {upn} --scopes Presence.Read)")
        lines.append(f'              curl {cacert}-H "Authorization: Bearer $TOKEN" {base}/v1.0/me/presence')
    elif not tenant_ids:
        lines.append(f"  Try:        {command_words(settings, 'demo')}   # creates the demo tenant, its users and apps")
    if local is not None:
        lines.append(f"  TLS:        certificate from a local CA: {local.ca_cert}")
        lines += [f"              {line}" for line in trust_instructions(local)]
    return lines


async def _announce(runtime: Runtime, settings: Settings, demo: bool, worker: bool) -> None:
    """Seed the demo if asked, record the serving URL and print the start-up message."""
    from presenced.bootstrap import seed_demo_data
    from presenced.config import record_serving_url

    local = _local_tls(settings) if settings.tls == "local" else None
    if demo:
        tenant, demo_identity = await seed_demo_data(runtime)
    record_serving_url(settings)
    tenants = [] if demo else await runtime.identity.list_tenants()
    for line in startup_message(
        settings,
        local,
        demo=(tenant, demo_identity) if demo else None,
        tenant_ids=[t.id for t in tenants],
        clock=(await runtime.clock.now()) if runtime.emulator is not None else None,
        worker=worker,
    ):
        click.echo(line)
    sys.stdout.flush()


async def _serve(
    settings: Settings,
    sock: socket.socket,
    demo: bool,
    worker: bool,
    metrics_sock: socket.socket | None = None,
    announce: bool = True,
) -> None:
    import asyncio

    from presenced.api.requestlog import RequestLog
    from presenced.app import create_app
    from presenced.bootstrap import build
    from presenced.config import prepare_data_dir
    from presenced.logs import REQUEST_LOGGER

    prepare_data_dir(settings.data_dir)
    local = _local_tls(settings) if settings.tls == "local" else None
    tls: tuple[Path, Path] | None = None
    if local is not None:
        tls = (local.cert, local.key)
    elif settings.tls_cert is not None and settings.tls_key is not None:
        tls = (settings.tls_cert, settings.tls_key)
    # A process of --processes (announce False) finds the database migrated by the first presenced.
    runtime = await build(settings, migrate=announce)
    try:
        if announce:
            await _announce(runtime, settings, demo, worker)
        app: Any = create_app(runtime, local.ca_cert if local else None)
        if logging.getLogger(REQUEST_LOGGER).isEnabledFor(logging.INFO):
            app = RequestLog(app)
        config = server_config(app, tls, settings.forwarded_allow_ips, settings)
        # Everything built so far lives as long as the process: keep the
        # collector from scanning it again and again under load.
        gc.collect()
        gc.freeze()
        # Every process hears the others' commits (Redis), worker or not: its streams need them.
        background = [asyncio.create_task(runtime.fanout.run()), *(_background(runtime) if worker else [])]
        # Keys in the database: every process follows a rotation made anywhere.
        background.append(asyncio.create_task(runtime.keys.watch()))
        # Every process hears of other processes' changes for its cache of single reads.
        background.append(asyncio.create_task(runtime.feed.follow(runtime.cached_reader.changed)))
        if runtime.throttle is not None:  # every serving process counts its requests with the others'
            background.append(asyncio.create_task(runtime.throttle.run_forever()))
        if runtime.faults is not None:  # every serving process applies the rules any process sets
            background.append(asyncio.create_task(runtime.faults.run_forever()))
        if settings.metrics:  # processes sharing their metrics measure themselves now and then
            background.append(asyncio.create_task(runtime.observer.run_forever()))
        from presenced.serving import DrainingServer

        server = DrainingServer(config, runtime.feed.close)
        try:
            async with _metrics_server(runtime, metrics_sock):
                await server.serve(sockets=[sock])
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if worker:  # deliveries in flight are answered, within what is left of the shutdown timeout
                await runtime.deliveries.finish(server.time_left(settings.shutdown_timeout))
    finally:
        await runtime.close()


@cli.command()
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print the tenant and users as JSON.")
def demo(data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """Create or reset the demo tenant and its users."""
    from presenced.bootstrap import seed_demo_data
    from presenced.config import recorded_url

    settings = load_settings(data_dir=data_dir, database_url=database_url)

    tenant, identity = run(lambda: with_runtime(settings, seed_demo_data))
    base = recorded_url(settings.data_dir) or settings.base_url
    ca = _local_tls(settings).ca_cert if urlsplit(base).scheme == "https" and settings.tls == "local" else None
    if as_json:
        click.echo(json.dumps(_demo_json(tenant, identity, base, ca), indent=2))
        return
    click.echo(f"Demo tenant {tenant.tenant.id} ({tenant.tenant.display_name}), sign-in authority {base}:")
    for user in tenant.users:
        password = identity.passwords[user.id]
        click.echo(f"  {user.id}  {user.user_principal_name:<28} {password:<26} {user.display_name}")
    for app in identity.apps:
        secret = f"secret {app.secret}" if app.secret else "public client"
        click.echo(f"  app {app.app.app_id}  {app.app.display_name}: {secret}; {', '.join(app.permissions)}")
    if ca is not None:
        click.echo(f"  CA certificate: {ca}")


def _demo_json(tenant: DemoTenant, identity: DemoIdentity, base_url: str, ca: Path | None) -> dict[str, Any]:
    from presenced.services.demo_ids import DEMO_ADMIN

    return {
        "tenantId": tenant.tenant.id,
        "graphBaseUrl": f"{base_url}/v1.0",
        "authority": base_url,
        "caCertificate": str(ca) if ca else None,
        "users": [
            {
                "id": u.id,
                "userPrincipalName": u.user_principal_name,
                "displayName": u.display_name,
                "password": identity.passwords[u.id],
                "isAdmin": u.user_principal_name.startswith(f"{DEMO_ADMIN}@"),
            }
            for u in tenant.users
        ],
        "apps": [
            {
                "displayName": a.app.display_name,
                "clientId": a.app.app_id,
                "clientSecret": a.secret,
                "publicClient": a.app.is_fallback_public_client,
                "redirectUris": list(a.app.public_client_redirect_uris + a.app.web_redirect_uris),
                "permissions": list(a.permissions),
            }
            for a in identity.apps
        ],
    }


@cli.command()
@store_options
@click.option("--user", "user_ref", help="Delegated token for this user (UPN or object id).")
@click.option("--scopes", help='Delegated scopes, e.g. "Presence.Read Presence.Read.All".')
@click.option("--app", "app_ref", help="App-only token for this application (client) id, registered in the tenant.")
@click.option("--roles", help='Application roles, e.g. "Presence.Read.All".')
@click.option("--app-id", help="Client application id of a delegated token (default: the CLI's).")
@click.option("--tenant", help="Tenant id (default: the demo tenant).")
@click.option("--lifetime", type=click.IntRange(1, 24 * 60), default=60, show_default=True, help="Minutes.")
@click.option("--url", help="The server's public URL (default: where serve last listened).")
def token(
    data_dir: Path | None,
    database_url: str | None,
    user_ref: str | None,
    scopes: str | None,
    app_ref: str | None,
    roles: str | None,
    app_id: str | None,
    tenant: str | None,
    lifetime: int,
    url: str | None,
) -> None:
    """Print an access token for scripting (delegated with --user, app-only with --app)."""
    # Only what signing needs: this command runs often, from scripts and tests.
    from presenced.config import prepare_data_dir, recorded_url
    from presenced.oauth.errors import OAuthError
    from presenced.oauth.keys import stored_keys
    from presenced.oauth.operator import operator_token
    from presenced.quick import open_directory
    from presenced.services.demo_ids import DEMO_TENANT_ID

    if (user_ref is None) == (app_ref is None):
        raise click.UsageError("give exactly one of --user or --app")
    if user_ref is not None and roles:
        raise click.UsageError("--roles goes with --app; a user token carries --scopes")
    if app_ref is not None and (scopes or app_id):
        raise click.UsageError("--scopes and --app-id go with --user; an app token carries --roles")
    if user_ref is not None and not permission_list(scopes):
        raise click.UsageError('a user token needs --scopes, e.g. --scopes "Presence.Read"')
    if app_ref is not None and not permission_list(roles):
        raise click.UsageError('an app token needs --roles, e.g. --roles "Presence.Read.All"')
    tenant_id = guid(tenant, "--tenant") if tenant else DEMO_TENANT_ID
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    base = (url or settings.public_url or recorded_url(settings.data_dir) or settings.base_url).rstrip("/")

    client = guid(app_ref, "--app") if app_ref is not None else guid(app_id, "--app-id") if app_id else CLI_APP_ID
    url_of_store = settings.database_url or f"sqlite:///{settings.data_dir / 'presenced.db'}"

    async def mint() -> str:
        prepare_data_dir(settings.data_dir)
        directory = await open_directory(url_of_store)
        keys = (
            None
            if directory is None
            else stored_keys(settings.data_dir, settings.keys_secret, await directory.sealed_keys())
        )
        if keys is None:
            # A new database, one an earlier version wrote, or keys still to move in: the full path does it first.
            if directory is not None:
                await directory.close()
            await with_runtime(settings, _noop)
            directory = await open_directory(url_of_store)
            if directory is None:
                raise ConfigurationError(f"cannot read the database at {redacted_url(url_of_store)} (--database-url)")
            keys = stored_keys(settings.data_dir, settings.keys_secret, await directory.sealed_keys())
        if keys is None or directory is None:  # the full path stored the first keys: not reached
            raise ConfigurationError("the database has no signing keys")
        try:
            if not await directory.tenant_exists(tenant_id):
                hint = " (run 'presenced demo' first)" if tenant_id == DEMO_TENANT_ID else ""
                raise ConfigurationError(f"tenant {tenant_id} does not exist{hint}")
            return await operator_token(
                directory,
                keys,
                base,
                tenant_id,
                client,
                user_ref=user_ref,
                permissions=permission_list(roles if app_ref is not None else scopes),
                now=real_now(),
                lifetime=timedelta(minutes=lifetime),
            )
        except OAuthError as error:
            raise ConfigurationError(error.description) from None
        finally:
            await directory.close()

    click.echo(run(mint))


@cli.command()
@store_options
@clock_option
@click.option(
    "--redis-url", help="redis://host:6379/0: wake other processes at once on each change. Env: PRESENCED_REDIS_URL."
)
@log_options
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve GET /metrics (Prometheus) on this port (none by default). Env: PRESENCED_METRICS_PORT.",
)
def worker(
    data_dir: Path | None,
    database_url: str | None,
    clock: str | None,
    redis_url: str | None,
    log_format: str | None,
    log_level: str | None,
    metrics_port: int | None,
) -> None:
    """Run the background worker alone: presence changes that time brings (fades, expiries), webhook
    delivery, subscription lifecycle."""
    import asyncio

    from presenced.services.sweeper import INTERVAL

    settings = load_settings(
        data_dir=data_dir,
        database_url=database_url,
        clock=clock,
        redis_url=redis_url,
        log_format=log_format and log_format.lower(),
        log_level=log_level and log_level.lower(),
        metrics_port=metrics_port,
    )
    start_logging(settings)
    metrics_sock = _metrics_socket(settings)

    async def work(runtime: Runtime) -> None:
        click.echo(f"presenced {__version__} worker: sweeping due presence transitions every {INTERVAL} s")
        sys.stdout.flush()
        # The worker delivers notifications: on an emulator it applies the notification rules any process sets.
        refresh = [runtime.faults.run_forever()] if runtime.faults is not None else []
        async with _metrics_server(runtime, metrics_sock):
            await asyncio.gather(runtime.fanout.run(), runtime.keys.watch(), *_background(runtime), *refresh)

    run(lambda: with_runtime(settings, work))


@cli.group()
def clock() -> None:
    """The emulator's manual clock."""


@clock.command("reset")
@store_options
def clock_reset(data_dir: Path | None, database_url: str | None) -> None:
    """Remove the database's manual clock: every process started afterwards runs on real time."""
    from presenced.bootstrap import remove_manual_clock

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    removed = run(lambda: with_runtime(settings, remove_manual_clock))
    click.echo("manual clock removed: real time from now on" if removed else "there was no manual clock")


@cli.group("emulator")
def emulator_group() -> None:
    """The emulator's mark on a database."""


@emulator_group.command("off")
@store_options
def emulator_off(data_dir: Path | None, database_url: str | None) -> None:
    """Make the database an ordinary one: remove its manual clock and fault rules; processes started
    afterwards are not emulators."""
    from presenced.bootstrap import leave_emulator

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    left = run(lambda: with_runtime(settings, leave_emulator))
    click.echo("emulator off: no manual clock, no fault rule" if left else "this database was not an emulator's")


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@store_options
def upgrade(data_dir: Path | None, database_url: str | None) -> None:
    """Apply the database migrations."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    run(lambda: with_runtime(settings, _noop))
    click.echo("database is up to date")


db.add_command(backup)
db.add_command(restore)


async def _noop(runtime: Runtime) -> None:
    return None


for _command in (*COMMANDS, *REGISTRATION_COMMANDS, faults, scenario):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error is one line on stderr."""
    try:
        cli.main(args=argv, prog_name="presenced", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(130)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"presenced: error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"presenced: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except ConfigurationError as exc:
        click.echo(f"presenced: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
