"""CLI start-time benchmark: how long each ``presenced`` command takes, beside ``python -c pass``.

Run:  .venv/bin/python bench/cli_bench.py [--runs 15]

In a temporary data directory with the demo tenant (``presenced demo``, not timed), each command
runs ``--runs`` times as a script would run it (the ``presenced`` program next to this Python,
output captured), the commands interleaved run by run, and the median wall time of each counts:

- ``python -c pass``: the baseline, the interpreter's own start in the same run;
- ``presenced --help``;
- ``presenced token --user ... --scopes ...`` and ``presenced token --app ... --roles ...``: a
  delegated and an app-only token (each opens the database, reads the directory and signs);
- ``presenced app list`` and ``presenced demo --json``, for comparison: commands that open the
  whole runtime.

Printed: each command's median and best time in milliseconds and its ratio to the baseline.
Results go to stdout and bench/results/cli_bench.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness
from presenced.services.demo_ids import DEMO_DAEMON_APP_ID

PRESENCED = str(Path(sys.executable).with_name("presenced"))


def commands(data_dir: Path) -> dict[str, list[str]]:
    store = ["--data-dir", str(data_dir)]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "presenced --help": [PRESENCED, "--help"],
        "presenced token --user": [
            PRESENCED, "token", "--user", "adele@contoso.example", "--scopes", "Presence.Read", *store,
        ],
        "presenced token --app": [
            PRESENCED, "token", "--app", DEMO_DAEMON_APP_ID, "--roles", "Presence.Read.All", *store,
        ],
        "presenced app list": [PRESENCED, "app", "list", *store],
        "presenced demo --json": [PRESENCED, "demo", "--json", *store],
    }  # fmt: skip


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=harness.clean_env(), check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.decode().strip()}")
    return elapsed


def benchmark(args: argparse.Namespace, workdir: Path, pin: bool) -> dict[str, Any]:
    data_dir = workdir / "data"
    harness.run_cli("demo", "--data-dir", str(data_dir))
    plan = commands(data_dir)
    times: dict[str, list[float]] = {name: [] for name in plan}
    for run in range(args.runs):
        for name, command in plan.items():
            times[name].append(timed(command))
        print(f"run {run + 1}/{args.runs}: " + ", ".join(f"{times[n][-1] * 1000:.0f}" for n in plan), flush=True)
    baseline = statistics.median(times["python -c pass"])
    return {
        "config": {"runs": args.runs, **harness.machine(False)},
        "commands": {
            name: {
                "median_ms": statistics.median(values) * 1000,
                "best_ms": min(values) * 1000,
                "ratio_to_python": statistics.median(values) / baseline,
            }
            for name, values in times.items()
        },
        "problems": [],
    }


def print_summary(results: dict[str, Any]) -> None:
    runs = results["config"]["runs"]
    print(f"\nsummary: median and best of {runs} runs each, interleaved; ratio = median / median of python -c pass")
    print(f"{'command':<26} {'median ms':>10} {'best ms':>8} {'ratio':>7}")
    print("-" * 54)
    for name, figures in results["commands"].items():
        median, best, ratio = figures["median_ms"], figures["best_ms"], figures["ratio_to_python"]
        print(f"{name:<26} {median:>10.0f} {best:>8.0f} {ratio:>6.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--no-pin", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.no_pin = True  # the commands are timed as a user runs them, on any core
    return harness.run("cli_bench", args, benchmark, print_summary)


if __name__ == "__main__":
    sys.exit(main())
