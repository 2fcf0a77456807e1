"""The ``presenced`` command line: serve, demo, token, db upgrade."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

if TYPE_CHECKING:
    import uvicorn

from presenced import __version__
from presenced.bootstrap import Runtime, build, record_serving_url, recorded_url
from presenced.cli.admin import COMMANDS
from presenced.cli.common import clock_option, guid, load_settings, permission_list, run, store_options, with_runtime
from presenced.config import Settings
from presenced.errors import ConfigurationError
from presenced.oauth.errors import OAuthError
from presenced.oauth.server import AuthorizationServer
from presenced.oauth.tls import LocalTls, trust_instructions
from presenced.services.demo import DEMO_ADMIN, DEMO_TENANT_ID, DemoIdentity, DemoTenant, seed_demo, seed_demo_identity
from presenced.services.sweeper import INTERVAL
from presenced.store.clock import StoredClock
from presenced.store.engine import sqlite_url

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
@click.option("--public-url", help="The URL clients use, if not http://HOST:PORT. Env: PRESENCED_PUBLIC_URL.")
@click.option("--demo", is_flag=True, help="Seed (or reset) the demo tenant before serving.")
@clock_option
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
    "--allow-loopback-webhooks",
    is_flag=True,
    default=None,
    help="Let webhooks be plain http and reach loopback addresses (on with --demo). "
    "Env: PRESENCED_ALLOW_LOOPBACK_WEBHOOKS=1.",
)
def serve(
    data_dir: Path | None,
    database_url: str | None,
    host: str | None,
    port: int | None,
    public_url: str | None,
    demo: bool,
    clock: str | None,
    no_worker: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    plain_http: bool,
    forwarded_allow_ips: str | None,
    redis_url: str | None,
    device_code_interval: int | None,
    allow_loopback_webhooks: bool | None,
) -> None:
    """Serve the Graph presence API and the sign-in platform (and, unless --no-worker, the background worker)."""
    if plain_http and (tls_cert or tls_key):
        raise click.UsageError("--http and --tls-cert/--tls-key exclude each other")
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
    }
    settings = load_settings(clock=clock, **options)
    sock = listen(settings.host, settings.port if port is None else port)
    settings = load_settings(clock=clock, port=sock.getsockname()[1], **options)
    run(lambda: _serve(settings, sock, demo, worker=not no_worker))


def server_config(
    app: Any, tls: tuple[Path, Path] | None = None, forwarded_allow_ips: str | None = None
) -> uvicorn.Config:
    """How ``serve`` runs an ASGI app (the benchmarks run their baseline the same way)."""
    import uvicorn

    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="none",
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        http="auto",
        server_header=False,
        date_header=True,
        # An idle TLS connection closes only once its client answers the TLS close (or after
        # asyncio's 30 s): on SIGTERM, wait this long for connections, then stop anyway.
        timeout_graceful_shutdown=3,
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )


def listen(host: str, port: int) -> socket.socket:
    """The listening socket ``serve`` hands to uvicorn."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so,
    # and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


#: How often expired sign-in state (codes, refresh tokens, device codes, sessions) is removed.
PURGE_INTERVAL = 300.0


def _background(runtime: Runtime) -> list[asyncio.Task[None]]:
    """The worker's jobs: the presence sweeper, webhook delivery, subscription lifecycle, and the purge of
    expired sign-in state."""
    return [
        asyncio.create_task(runtime.sweeper.run_forever()),
        asyncio.create_task(runtime.deliveries.run_forever()),
        asyncio.create_task(runtime.lifecycle.run_forever()),
        asyncio.create_task(runtime.identity.purge_forever(PURGE_INTERVAL, lambda: datetime.now(UTC))),
    ]


def _local_tls(settings: Settings) -> LocalTls:
    from presenced.oauth.tls import ensure_local_tls

    return ensure_local_tls(settings.data_dir / "tls", [settings.host])


async def _serve(settings: Settings, sock: socket.socket, demo: bool, worker: bool) -> None:
    import uvicorn

    from presenced.api.app import create_app

    local = _local_tls(settings) if settings.tls == "local" else None
    tls: tuple[Path, Path] | None = None
    if local is not None:
        tls = (local.cert, local.key)
    elif settings.tls_cert is not None and settings.tls_key is not None:
        tls = (settings.tls_cert, settings.tls_key)
    runtime = await build(settings)
    try:
        if demo:
            tenant = await seed_demo(runtime.store, runtime.writer, runtime.clock)
            demo_identity = await seed_demo_identity(runtime.identity, datetime.now(UTC))
        record_serving_url(settings)
        base = settings.base_url
        where = (settings.database_url and "PostgreSQL") or f"SQLite in {settings.data_dir}"
        click.echo(f"presenced {__version__} listening on {base}")
        click.echo(f"  Graph API:  {base}/v1.0  and  {base}/beta")
        click.echo(
            f"  Sign-in:    authority {base}  (tenant {DEMO_TENANT_ID if demo else 'id'}, common, organizations)"
        )
        click.echo(f"  OpenAPI:    {base}/openapi.json")
        click.echo(f"  Store:      {where}")
        if runtime.emulator is not None:
            click.echo(
                f"  Clock:      manual, at {(await runtime.clock.now()).isoformat()} (POST {base}/_emulator/clock)"
            )
        click.echo(f"  Worker:     {'in this process' if worker else 'off (run presenced worker)'}")
        if demo:
            first = tenant.users[0]
            upn = first.user_principal_name
            click.echo(f"  Demo:       tenant {tenant.tenant.id}, {len(tenant.users)} users, e.g. {upn}")
            click.echo(f"              password {demo_identity.passwords[first.id]} (an administrator)")
            for app in demo_identity.apps:
                secret = f", secret {app.secret}" if app.secret else " (public client)"
                click.echo(f"              app {app.app.display_name}: client id {app.app.app_id}{secret}")
            click.echo(f"  Try:        presenced token --user {upn} --scopes Presence.Read")
        if local is not None:
            click.echo(f"  TLS:        certificate from a local CA: {local.ca_cert}")
            for line in trust_instructions(local):
                click.echo(f"              {line}")
        sys.stdout.flush()
        config = server_config(create_app(runtime, local.ca_cert if local else None), tls, settings.forwarded_allow_ips)
        # Everything built so far lives as long as the process: keep the
        # collector from scanning it again and again under load.
        gc.collect()
        gc.freeze()
        # Every process hears the others' commits (Redis), worker or not: its streams need them.
        background = [asyncio.create_task(runtime.fanout.run()), *(_background(runtime) if worker else [])]
        try:
            await uvicorn.Server(config).serve(sockets=[sock])
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        await runtime.close()


@cli.command()
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print the tenant and users as JSON.")
def demo(data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """Create or reset the demo tenant and its users."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)

    async def seed(runtime: Runtime) -> tuple[DemoTenant, DemoIdentity]:
        tenant = await seed_demo(runtime.store, runtime.writer, runtime.clock)
        return tenant, await seed_demo_identity(runtime.identity, datetime.now(UTC))

    tenant, identity = run(lambda: with_runtime(settings, seed))
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
@click.option("--app", "app_ref", help="App-only token for this application id.")
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
    if (user_ref is None) == (app_ref is None):
        raise click.UsageError("give exactly one of --user or --app")
    if user_ref is not None and roles:
        raise click.UsageError("--roles goes with --app; a user token carries --scopes")
    if app_ref is not None and (scopes or app_id):
        raise click.UsageError("--scopes and --app-id go with --user; an app token carries --roles")
    tenant_id = guid(tenant, "--tenant") if tenant else DEMO_TENANT_ID
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    base = (url or settings.public_url or recorded_url(settings.data_dir) or settings.base_url).rstrip("/")

    async def mint(runtime: Runtime) -> str:
        if not await runtime.store.tenant_exists(tenant_id):
            hint = " (run 'presenced demo' first)" if tenant_id == DEMO_TENANT_ID else ""
            raise ConfigurationError(f"tenant {tenant_id} does not exist{hint}")
        server = AuthorizationServer(runtime.identity, runtime.keys, base)
        client = guid(app_ref, "--app") if app_ref is not None else guid(app_id, "--app-id") if app_id else CLI_APP_ID
        try:
            return await server.operator_token(
                tenant_id,
                client,
                user_ref=user_ref,
                permissions=permission_list(roles if app_ref is not None else scopes),
                lifetime=timedelta(minutes=lifetime),
            )
        except OAuthError as error:
            raise ConfigurationError(error.description) from None

    click.echo(run(lambda: with_runtime(settings, mint)))


@cli.command()
@store_options
@clock_option
@click.option(
    "--redis-url", help="redis://host:6379/0: wake other processes at once on each change. Env: PRESENCED_REDIS_URL."
)
def worker(data_dir: Path | None, database_url: str | None, clock: str | None, redis_url: str | None) -> None:
    """Run the background worker alone: presence changes that time brings (fades, expiries), webhook
    delivery, subscription lifecycle."""
    settings = load_settings(data_dir=data_dir, database_url=database_url, clock=clock, redis_url=redis_url)

    async def work(runtime: Runtime) -> None:
        click.echo(f"presenced {__version__} worker: sweeping due presence transitions every {INTERVAL} s")
        sys.stdout.flush()
        await asyncio.gather(runtime.fanout.run(), *_background(runtime))

    run(lambda: with_runtime(settings, work))


@cli.group()
def clock() -> None:
    """The emulator's manual clock."""


@clock.command("reset")
@store_options
def clock_reset(data_dir: Path | None, database_url: str | None) -> None:
    """Remove the database's manual clock: every process started afterwards runs on real time."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)

    async def reset(runtime: Runtime) -> bool:
        stored = StoredClock.open(runtime.settings.database_url or sqlite_url(runtime.settings.data_dir))
        try:
            return await stored.remove()
        finally:
            await stored.close()

    removed = run(lambda: with_runtime(settings, reset))
    click.echo("manual clock removed: real time from now on" if removed else "there was no manual clock")


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


async def _noop(runtime: Runtime) -> None:
    return None


for _command in COMMANDS:
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
