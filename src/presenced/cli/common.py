"""What the commands share: store options, settings, running a coroutine with the runtime."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from presenced.config import Settings

if TYPE_CHECKING:
    import asyncio

    from presenced.bootstrap import Runtime

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def clock_option(command: F) -> F:
    return click.option(
        "--clock",
        type=click.Choice(["system", "manual"]),
        help="manual: presence time moves only through POST /_emulator/clock (an emulator feature). "
        "Env: PRESENCED_CLOCK.",
    )(command)


def store_options(command: F) -> F:
    command = click.option(
        "--database-url",
        help="postgresql://user@host/db (default: SQLite in the data directory). Env: PRESENCED_DATABASE_URL.",
    )(command)
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Keys and the SQLite database live here. Env: PRESENCED_DATA_DIR.",
    )(command)


def log_options(command: F) -> F:
    command = click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
        help="Log from this level up (default info: a line per request). Env: PRESENCED_LOG_LEVEL.",
    )(command)
    return click.option(
        "--log-format",
        type=click.Choice(["json", "text"], case_sensitive=False),
        help="Log lines as JSON objects or as text (default: json, text when stderr is a terminal). "
        "Env: PRESENCED_LOG_FORMAT.",
    )(command)


def start_logging(settings: Settings) -> None:
    """Send the process's log lines to stderr in the settings' format, from their level up."""
    import sys

    from presenced.logs import configure, default_format

    configure(settings.log_format or default_format(sys.stderr), settings.log_level)


def load_settings(**overrides: Any) -> Settings:
    return Settings.from_env(**overrides)


def run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on uvloop when it is installed (it is with uvicorn[standard])."""
    import asyncio

    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(factory())  # type: ignore[arg-type]


async def with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    from presenced.bootstrap import build

    runtime = await build(settings)
    try:
        return await work(runtime)
    finally:
        await runtime.close()


def permission_list(raw: str | None) -> list[str]:
    return [p for p in (raw or "").replace(",", " ").split() if p]


def guid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise click.BadParameter(f"{what} must be a GUID, not {value!r}") from None
