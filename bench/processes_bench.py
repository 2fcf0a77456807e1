"""What a second server process adds: ``serve --processes 2`` against one process, in the same run.

Run:  .venv/bin/python bench/processes_bench.py [--duration 5] [--rounds 3] [--connections 64]

Both serve the same SQLite data (the demo), as deployed (JSON request log to a file, metrics on), and
are measured round by round, taking turns at going first, with ``wrk -t1`` reading one user's presence
(``GET /v1.0/users/{id}/presence``). Nothing is pinned: the two processes need both cores, which wrk
shares with them, so on a 2-core machine the figure is a floor of what a core of one's own per process
gives. The figure to read is the ratio two processes / one. Results go to stdout and
bench/results/processes_bench.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

import harness


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((harness.HOST, 0))
        return int(sock.getsockname()[1])


def benchmark(args: argparse.Namespace, workdir: Path, pin: bool) -> dict[str, Any]:
    data_dir = workdir / "data"
    problems: list[str] = []
    demo = json.loads(harness.run_cli("demo", "--data-dir", str(data_dir), "--json"))
    reader, target = demo["users"][0], demo["users"][1]
    read_path = f"/v1.0/users/{target['id']}/presence"
    with harness.serving(problems) as servers:
        one = harness.start_presenced(workdir, False, "--data-dir", str(data_dir), name="one-process")
        servers.append(one)
        # The same public URL: the same token issuer, and the same answer, byte for byte. serve prints its public
        # URL, not where it listens, so the second listens on a port chosen here and is reached there.
        port = free_port()
        two = harness.start_server(
            "two-processes",
            harness.presenced_cmd(
                "serve", "--http", "--throttle", "off", "--data-dir", str(data_dir), "--processes", "2",
                "--public-url", one.url, "--no-worker", "--port", str(port),
            ),
            workdir,
        )  # fmt: skip
        servers.append(two)
        two.url = f"http://{harness.HOST}:{port}"
        harness.wait_ready(f"{two.url}/health")
        if two.url == one.url:
            raise RuntimeError("both servers are at the same URL")
        token = harness.run_cli(
            "token", "--data-dir", str(data_dir), "--user", reader["userPrincipalName"], "--scopes", "Presence.Read.All"
        ).strip()
        auth = [f"Authorization: Bearer {token}"]
        answer = harness.fetch(one.url + read_path, token)
        if answer.status != 200:
            raise RuntimeError(f"GET {read_path} answered {answer.status}")
        harness.same_answer(f"GET {read_path}", harness.fetch(two.url + read_path, token), answer)

        def read(server: harness.Server, seconds: int) -> harness.WrkResult:
            return harness.run_wrk(server.url + read_path, args.connections, seconds, False, headers=auth)

        for server in (one, two):  # warm up; not recorded
            read(server, harness.WARMUP_SECONDS)
        print(f"GET {read_path}; wrk -t1 -c{args.connections} -d{args.duration}s; {os.cpu_count()} cores", flush=True)
        rounds: list[dict[str, Any]] = []
        for n in range(1, args.rounds + 1):
            order = (one, two) if n % 2 else (two, one)
            results = {server.name: read(server, args.duration) for server in order}
            for name, result in results.items():
                harness.note_errors(f"round {n} {name}", result, problems)
            one_r, two_r = results["one-process"], results["two-processes"]
            ratio = harness.ratio(two_r.rps, one_r.rps)
            rounds.append({"one": one_r, "two": two_r, "ratio": ratio})
            print(
                f"round {n}: two processes {harness.describe(two_r)} | one {harness.describe(one_r)} "
                f"| ratio {ratio:.2f}x",
                flush=True,
            )
    one_med = harness.median_of([r["one"] for r in rounds])
    two_med = harness.median_of([r["two"] for r in rounds])
    return {
        "config": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "connections": args.connections,
            "cores": os.cpu_count(),
            "pinned": False,
        },
        "request": f"GET {read_path}",
        "rounds": [{"one": asdict(r["one"]), "two": asdict(r["two"]), "ratio": r["ratio"]} for r in rounds],
        "median": {"one": one_med, "two": two_med},
        "ratio_of_medians": two_med["rps"] / one_med["rps"],
        "median_of_ratios": statistics.median(r["ratio"] for r in rounds),
        "problems": problems,
    }


def print_summary(results: dict[str, Any]) -> None:
    one, two = results["median"]["one"], results["median"]["two"]
    print()
    print(f"summary (medians of {results['config']['rounds']} rounds, {results['config']['cores']} cores, unpinned)")
    print(
        f"two processes {harness.fmt_rps(two['rps'])} req/s p99 {two['p99_ms']:.2f} ms | one process "
        f"{harness.fmt_rps(one['rps'])} req/s p99 {one['p99_ms']:.2f} ms | ratio {results['ratio_of_medians']:.2f}x "
        f"(median of per-round ratios {results['median_of_ratios']:.2f}x)"
    )
    for problem in results["problems"]:
        print(f"problem: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_measurement_options(parser, duration=5, connections=64, connections_help="wrk connections")
    args = parser.parse_args(argv)
    args.no_pin = True
    if harness.missing_wrk():
        return 2
    if args.duration < 1 or args.rounds < 1 or args.connections < 1:
        parser.error("--duration, --rounds and --connections must be at least 1")
    return harness.run("processes_bench", args, benchmark, print_summary)


if __name__ == "__main__":
    raise SystemExit(main())
