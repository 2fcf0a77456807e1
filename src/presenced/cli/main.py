"""The ``presenced`` command line: serve, demo, token, db upgrade."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    import uvicorn

from presenced import __version__
from presenced.bootstrap import Runtime, build, record_serving_url, recorded_url
from presenced.config import Settings
from presenced.errors import ConfigurationError
from presenced.oauth.tokens import mint_access_token
from presenced.services.demo import DEMO_TENANT_ID, DemoTenant, seed_demo
from presenced.services.sweeper import INTERVAL
from presenced.store.clock import StoredClock
from presenced.store.engine import sqlite_url

#: The application id that ``presenced token --user`` tokens carry unless told otherwise.
CLI_APP_ID = "de8bc8b5-d9f9-48b1-a8ad-b748da725064"

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _clock_option(command: F) -> F:
    return click.option(
        "--clock",
        type=click.Choice(["system", "manual"]),
        help="manual: presence time moves only through POST /_emulator/clock (an emulator feature). "
        "Env: PRESENCED_CLOCK.",
    )(command)


def _store_options(command: F) -> F:
    command = click.option(
        "--database-url",
        help="postgresql://user@host/db (default: SQLite in the data directory). Env: PRESENCED_DATABASE_URL.",
    )(command)
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Keys and the SQLite database live here. Env: PRESENCED_DATA_DIR.",
    )(command)


def _settings(**overrides: Any) -> Settings:
    return Settings.from_env(**overrides)


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on uvloop when it is installed (it is with uvicorn[standard])."""
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(factory())  # type: ignore[arg-type]


async def _with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    runtime = await build(settings)
    try:
        return await work(runtime)
    finally:
        await runtime.close()


@click.group()
@click.version_option(__version__, prog_name="presenced")
def cli() -> None:
    """A self-hosted presence service that speaks the Microsoft Graph presence API."""


@cli.command()
@_store_options
@click.option("--host", help="Address to listen on (default 127.0.0.1). Env: PRESENCED_HOST.")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default 8000; 0 picks a free one).")
@click.option("--public-url", help="The URL clients use, if not http://HOST:PORT. Env: PRESENCED_PUBLIC_URL.")
@click.option("--demo", is_flag=True, help="Seed (or reset) the demo tenant before serving.")
@_clock_option
@click.option("--no-worker", is_flag=True, help="Do not run the background worker (run `presenced worker`).")
def serve(
    data_dir: Path | None,
    database_url: str | None,
    host: str | None,
    port: int | None,
    public_url: str | None,
    demo: bool,
    clock: str | None,
    no_worker: bool,
) -> None:
    """Serve the Graph presence API (and, unless --no-worker, the background worker)."""
    options = {"data_dir": data_dir, "database_url": database_url, "host": host, "public_url": public_url}
    settings = _settings(clock=clock, **options)
    sock = listen(settings.host, settings.port if port is None else port)
    settings = _settings(clock=clock, port=sock.getsockname()[1], **options)
    _run(lambda: _serve(settings, sock, demo, worker=not no_worker))


def server_config(app: Any) -> uvicorn.Config:
    """How ``serve`` runs an ASGI app (the benchmarks run their baseline the same way)."""
    import uvicorn

    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="none",
        proxy_headers=False,
        http="auto",
        server_header=False,
        date_header=True,
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


async def _serve(settings: Settings, sock: socket.socket, demo: bool, worker: bool) -> None:
    import uvicorn

    from presenced.api.app import create_app

    runtime = await build(settings)
    try:
        if demo:
            tenant = await seed_demo(runtime.store, runtime.clock)
        record_serving_url(settings)
        base = settings.base_url
        where = (settings.database_url and "PostgreSQL") or f"SQLite in {settings.data_dir}"
        click.echo(f"presenced {__version__} listening on {base}")
        click.echo(f"  Graph API:  {base}/v1.0  and  {base}/beta")
        click.echo(f"  OpenAPI:    {base}/openapi.json")
        click.echo(f"  Store:      {where}")
        if runtime.emulator is not None:
            click.echo(
                f"  Clock:      manual, at {(await runtime.clock.now()).isoformat()} (POST {base}/_emulator/clock)"
            )
        click.echo(f"  Worker:     {'in this process' if worker else 'off (run presenced worker)'}")
        if demo:
            upn = tenant.users[0].user_principal_name
            click.echo(f"  Demo:       tenant {tenant.tenant.id}, {len(tenant.users)} users, e.g. {upn}")
            click.echo(f"  Try:        presenced token --user {upn} --scopes Presence.Read")
        sys.stdout.flush()
        config = server_config(create_app(runtime))
        # Everything built so far lives as long as the process: keep the
        # collector from scanning it again and again under load.
        gc.collect()
        gc.freeze()
        sweeping = asyncio.create_task(runtime.sweeper.run_forever()) if worker else None
        try:
            await uvicorn.Server(config).serve(sockets=[sock])
        finally:
            if sweeping is not None:
                sweeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeping
    finally:
        await runtime.close()


@cli.command()
@_store_options
@click.option("--json", "as_json", is_flag=True, help="Print the tenant and users as JSON.")
def demo(data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """Create or reset the demo tenant and its users."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    tenant: DemoTenant = _run(lambda: _with_runtime(settings, lambda rt: seed_demo(rt.store, rt.clock)))
    base = recorded_url(settings.data_dir) or settings.base_url
    if as_json:
        click.echo(json.dumps(_demo_json(tenant, base), indent=2))
        return
    click.echo(f"Demo tenant {tenant.tenant.id} ({tenant.tenant.display_name}):")
    for user in tenant.users:
        click.echo(f"  {user.id}  {user.user_principal_name:<28} {user.display_name}")


def _demo_json(tenant: DemoTenant, base_url: str) -> dict[str, Any]:
    return {
        "tenantId": tenant.tenant.id,
        "graphBaseUrl": f"{base_url}/v1.0",
        "users": [
            {"id": u.id, "userPrincipalName": u.user_principal_name, "displayName": u.display_name}
            for u in tenant.users
        ],
    }


def _permission_list(raw: str | None) -> list[str]:
    return [p for p in (raw or "").replace(",", " ").split() if p]


def _guid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise click.BadParameter(f"{what} must be a GUID, not {value!r}") from None


@cli.command()
@_store_options
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
    tenant_id = _guid(tenant, "--tenant") if tenant else DEMO_TENANT_ID
    settings = _settings(data_dir=data_dir, database_url=database_url)
    base = (url or settings.public_url or recorded_url(settings.data_dir) or settings.base_url).rstrip("/")

    async def mint(runtime: Runtime) -> str:
        if not await runtime.store.tenant_exists(tenant_id):
            hint = " (run 'presenced demo' first)" if tenant_id == DEMO_TENANT_ID else ""
            raise ConfigurationError(f"tenant {tenant_id} does not exist{hint}")
        now = datetime.now(UTC)
        common: dict[str, Any] = {"app_id": CLI_APP_ID, "now": now, "lifetime": timedelta(minutes=lifetime)}
        if app_ref is not None:
            common["app_id"] = _guid(app_ref, "--app")
            return mint_access_token(runtime.keys, base, tenant_id, roles=_permission_list(roles), **common)
        user = await runtime.store.find_user(tenant_id, user_ref or "")
        if user is None:
            raise ConfigurationError(f"no user {user_ref!r} in tenant {tenant_id}")
        if app_id:
            common["app_id"] = _guid(app_id, "--app-id")
        return mint_access_token(
            runtime.keys,
            base,
            tenant_id,
            user_id=user.id,
            user_principal_name=user.user_principal_name,
            name=user.display_name,
            scopes=_permission_list(scopes),
            **common,
        )

    click.echo(_run(lambda: _with_runtime(settings, mint)))


@cli.command()
@_store_options
@_clock_option
def worker(data_dir: Path | None, database_url: str | None, clock: str | None) -> None:
    """Run the background worker alone: store the presence changes that time brings (fades, expiries)."""
    settings = _settings(data_dir=data_dir, database_url=database_url, clock=clock)

    async def work(runtime: Runtime) -> None:
        click.echo(f"presenced {__version__} worker: sweeping due presence transitions every {INTERVAL} s")
        sys.stdout.flush()
        await runtime.sweeper.run_forever()

    _run(lambda: _with_runtime(settings, work))


@cli.group()
def clock() -> None:
    """The emulator's manual clock."""


@clock.command("reset")
@_store_options
def clock_reset(data_dir: Path | None, database_url: str | None) -> None:
    """Remove the database's manual clock: every process started afterwards runs on real time."""
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def reset(runtime: Runtime) -> bool:
        stored = StoredClock.open(runtime.settings.database_url or sqlite_url(runtime.settings.data_dir))
        try:
            return await stored.remove()
        finally:
            await stored.close()

    removed = _run(lambda: _with_runtime(settings, reset))
    click.echo("manual clock removed: real time from now on" if removed else "there was no manual clock")


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@_store_options
def upgrade(data_dir: Path | None, database_url: str | None) -> None:
    """Apply the database migrations."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    _run(lambda: _with_runtime(settings, _noop))
    click.echo("database is up to date")


async def _noop(runtime: Runtime) -> None:
    return None


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
