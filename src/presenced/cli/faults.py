"""The emulator's fault rules from the command line: ``presenced faults add|list|remove|clear``, the same
rules as ``/_emulator/faults``, on the database of an emulator (``serve --emulator`` or ``--clock manual``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec

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
                "fault rules are for the emulator: this database is not an emulator's "
                "(serve with --emulator or --clock manual)"
            )
        try:
            return await work(faults, runtime)
        except PresencedError as error:
            raise ConfigurationError(error.message) from None

    return run(lambda: with_runtime(settings, guarded))


def _shown(rule: Any) -> str:
    """A rule as ``/_emulator/faults`` lists it."""
    from presenced.api.faults import fault_body

    return json.dumps(msgspec.to_builtins(fault_body(rule)))


@click.group()
def faults() -> None:
    """The emulator's fault rules: Graph requests that fail or answer late, and notifications that come late,
    twice, out of order or not at all, on purpose."""


@faults.command("add")
@store_options
@click.option("--path", help="A request rule: a glob on the path below the version, e.g. /users/*/presence.")
@click.option("--method", help="GET, POST, PUT, PATCH or DELETE (default: any).")
@click.option("--app-id", help="Only requests of this application.")
@click.option("--user-id", help="Only requests about (or of) this user.")
@click.option("--status", type=int, help="429, 500, 502, 503 or 504.")
@click.option("--retry-after", type=int, help="Seconds, sent as Retry-After.")
@click.option("--latency-ms", type=int, help="Answer this much later.")
@click.option("--count", type=int, help="The next N matching requests.")
@click.option("--probability", type=float, help="Each matching request with this probability (0 to 1).")
@click.option("--seed", type=int, help="With --probability: the same requests fail on every run.")
@click.option(
    "--action",
    type=click.Choice(["delay", "duplicate", "reorder", "drop"]),
    help="A notification rule: what to do to the deliveries of --subscription-id or to --notification-url.",
)
@click.option("--subscription-id", help="A notification rule's subscription.")
@click.option("--notification-url", help="A notification rule's URL (a subscription's notificationUrl).")
@click.option("--delay-ms", type=int, help="With --action delay: send this much later.")
@click.option("--window-ms", type=int, help="With --action reorder: what comes within this, the last first.")
def faults_add(data_dir: Path | None, database_url: str | None, **rule: Any) -> None:
    """Add a fault rule (--path for requests, --action for notifications); prints it, with its id."""
    from presenced.services.faults import make_rule

    def work(faults: Faults, _: Runtime) -> Any:
        return faults.add(make_rule(**rule))

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


@click.group()
def scenario() -> None:
    """The emulator's scenarios: steps at offsets of the manual clock."""


@scenario.command("run")
@store_options
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--through", help="Play the steps up to this offset only (an ISO 8601 duration, e.g. PT1H).")
@click.option("--step", "one_by_one", is_flag=True, help="Wait for Enter before each step.")
@click.option("--json", "as_json", is_flag=True, help="Print what was played as JSON, as the API answers.")
def scenario_run(
    data_dir: Path | None, database_url: str | None, file: Path, through: str | None, one_by_one: bool, as_json: bool
) -> None:
    """Play a scenario file (JSON, or YAML by its .yaml/.yml name) on the emulator's database, printing what
    each step did; exits 1 when a step fails (an expectation not met, a write refused)."""
    from presenced.services.inputs import duration_value
    from presenced.services.scenarios import Played, Step, parse_scenario

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    try:
        parsed = parse_scenario(file.read_bytes(), file.suffix.lower() in {".yaml", ".yml"})
        until = duration_value(through, "--through")
    except PresencedError as error:
        raise ConfigurationError(error.message) from None

    async def pause(number: int, step: Step) -> None:
        click.prompt(f"step {number} at {step.at}: Enter to play", default="", show_default=False)

    async def play(runtime: Runtime) -> Played:
        if runtime.scenarios is None:
            raise ConfigurationError(
                "scenarios are played on the emulator's manual clock: this database has none "
                "(serve with --clock manual)"
            )
        try:
            return await runtime.scenarios.play(parsed, until, pause if one_by_one else None)
        except PresencedError as error:
            raise ConfigurationError(error.message) from None

    played = run(lambda: with_runtime(settings, play))
    if as_json:
        from presenced.api.routes.emulator import played_body

        click.echo(json.dumps(msgspec.to_builtins(played_body(played)), indent=2))
    else:
        click.echo(f"{played.name}: started at {played.start.isoformat()}")
        for s in played.steps:
            note = f"  ({s.note})" if s.note else ""
            click.echo(f"{s.number:>3} {s.at:>8} {s.clock:%H:%M:%S}  {'ok  ' if s.ok else 'FAIL'} {s.did}{note}")
        click.echo("passed" if played.passed else "failed")
    if not played.passed:
        raise SystemExit(1)
