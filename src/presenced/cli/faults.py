"""The emulator's fault rules from the command line: ``presenced faults add|list|remove|clear``, the same
rules as ``/_emulator/faults``, on the database of an emulator (one with a manual clock)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from presenced.cli.common import load_settings, run, store_options, with_runtime
from presenced.errors import ConfigurationError, PresencedError

if TYPE_CHECKING:
    from presenced.bootstrap import Runtime
    from presenced.services.faults import Faults


def _with_faults(work: Any, data_dir: Path | None, database_url: str | None) -> Any:
    settings = load_settings(data_dir=data_dir, database_url=database_url)

    async def guarded(runtime: Runtime) -> Any:
        faults: Faults | None = runtime.faults
        if faults is None:
            raise ConfigurationError(
                "fault rules are for the emulator: this database has no manual clock (serve with --clock manual)"
            )
        try:
            return await work(faults, runtime)
        except PresencedError as error:
            raise ConfigurationError(error.message) from None

    return run(lambda: with_runtime(settings, guarded))


def _shown(rule: Any) -> str:
    """A rule as ``/_emulator/faults`` lists it: its set fields, named as there."""
    names = {"app_id": "appId", "user_id": "userId", "retry_after": "retryAfter", "latency_ms": "latencyMs",
             "count": "remaining"}  # fmt: skip
    fields = {names.get(k, k): v for k, v in dataclasses.asdict(rule).items() if v is not None}
    return json.dumps(fields)


@click.group()
def faults() -> None:
    """The emulator's fault rules: Graph requests that fail or answer late on purpose."""


@faults.command("add")
@store_options
@click.option("--path", required=True, help="A glob on the path below the version, e.g. /users/*/presence.")
@click.option("--method", help="GET, POST, PUT, PATCH or DELETE (default: any).")
@click.option("--app-id", help="Only requests of this application.")
@click.option("--user-id", help="Only requests about (or of) this user.")
@click.option("--status", type=int, help="429, 500, 502, 503 or 504.")
@click.option("--retry-after", type=int, help="Seconds, sent as Retry-After.")
@click.option("--latency-ms", type=int, help="Answer this much later.")
@click.option("--count", type=int, help="The next N matching requests.")
@click.option("--probability", type=float, help="Each matching request with this probability (0 to 1).")
@click.option("--seed", type=int, help="With --probability: the same requests fail on every run.")
def faults_add(data_dir: Path | None, database_url: str | None, **rule: Any) -> None:
    """Add a fault rule; prints it, with its id."""
    from presenced.services.faults import new_rule

    def work(faults: Faults, _: Runtime) -> Any:
        return faults.add(new_rule(rule.pop("path"), **rule))

    click.echo(_shown(_with_faults(work, data_dir, database_url)))


@faults.command("list")
@store_options
def faults_list(data_dir: Path | None, database_url: str | None) -> None:
    """The rules, one JSON object a line, with how often each fired."""
    for rule in _with_faults(lambda f, _: f.rules(), data_dir, database_url):
        click.echo(_shown(rule))


@faults.command("remove")
@store_options
@click.argument("rule_id")
def faults_remove(data_dir: Path | None, database_url: str | None, rule_id: str) -> None:
    """Remove one rule."""
    _with_faults(lambda f, _: f.remove(rule_id), data_dir, database_url)


@faults.command("clear")
@store_options
def faults_clear(data_dir: Path | None, database_url: str | None) -> None:
    """Remove every rule."""
    removed = _with_faults(lambda f, _: f.clear(), data_dir, database_url)
    click.echo(f"removed {removed} fault rule{'s' if removed != 1 else ''}")


@faults.command("lifecycle")
@store_options
@click.argument("subscription_id")
@click.argument("event", type=click.Choice(["missed", "reauthorizationRequired", "subscriptionRemoved"]))
def faults_lifecycle(data_dir: Path | None, database_url: str | None, subscription_id: str, event: str) -> None:
    """Send a subscription's lifecycle notification now (the server delivers it)."""
    _with_faults(lambda _, rt: rt.subscriptions.fire_lifecycle(subscription_id, event), data_dir, database_url)
    click.echo(f"{event} queued for subscription {subscription_id}")
