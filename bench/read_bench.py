"""Read-path benchmark: presenced against a bare ASGI app on the same server stack.

Run:  .venv/bin/python bench/read_bench.py [--duration 5] [--rounds 3] [--connections 32] [--no-pin]

1. Single read, ``GET /v1.0/users/{id}/presence``, under ``wrk -c<connections>``, interleaved
   round by round with a baseline: a bare ASGI callable served by the same uvicorn/uvloop/httptools
   configuration that returns the same bytes. The figure to read is the ratio presenced/baseline.
   presenced runs as deployed, writing a JSON line per request to its stderr (a file) and counting
   Prometheus metrics; a second presenced process with ``--log-level warning --no-metrics`` (no request
   log, no metrics), measured in each round right before or after it (taking turns), gives their cost.
2. ``POST /v1.0/communications/getPresencesByUserId`` with 650 ids at ``wrk -c1`` (latency).

Everything listens on 127.0.0.1 only. Results go to stdout and bench/results/read_bench.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import harness

USER_NAMESPACE = uuid.UUID("0d7c7b52-58a4-4d2e-9a0b-6f1f5e0b7a11")
MANY_IDS = 650


def bench_users(tenant_id: str) -> list[tuple[str, str, str]]:
    """(id, upn, display name) of the generated users; ids are stable across runs."""
    users = []
    for i in range(MANY_IDS):
        user_id = str(uuid.uuid5(USER_NAMESPACE, f"{tenant_id}:{i}"))
        users.append((user_id, f"bench.user{i:03d}@contoso.example", f"Bench User {i:03d}"))
    return users


# --------------------------------------------------------------------------- main


def benchmark(args: argparse.Namespace, workdir: Path, pin: bool) -> dict[str, Any]:
    data_dir = workdir / "data"
    problems: list[str] = []

    demo = json.loads(harness.run_cli("demo", "--data-dir", str(data_dir), "--json"))
    tenant_id = demo["tenantId"]
    reader, target = demo["users"][0], demo["users"][1]
    many = bench_users(tenant_id)
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(harness.add_users(data_dir, tenant_id, many), timeout=120))
    print(f"added {len(many)} users in {time.monotonic() - started:.1f} s", flush=True)

    with harness.serving(problems) as servers:
        real = harness.start_presenced(workdir, pin, "--data-dir", str(data_dir), "--log-format", "json")
        servers.append(real)
        # The same issuer as the first (its public URL): one token serves both.
        quiet_args = ["--public-url", real.url, "--log-level", "warning", "--no-metrics", "--no-worker"]
        quiet = harness.start_presenced(workdir, pin, "--data-dir", str(data_dir), *quiet_args, name="presenced-quiet")
        servers.append(quiet)
        token = harness.run_cli(
            "token", "--data-dir", str(data_dir), "--user", reader["userPrincipalName"], "--scopes", "Presence.Read.All"
        ).strip()
        auth = [f"Authorization: Bearer {token}"]

        # Capture the real answer to the benchmarked request; the baseline answers with it.
        read_path = f"/v1.0/users/{target['id']}/presence"
        real_answer = harness.fetch(real.url + read_path, token)
        if real_answer.status != 200:
            raise RuntimeError(f"GET {read_path} answered {real_answer.status}")
        baseline = harness.start_baseline("baseline", workdir, pin, answer=real_answer)
        servers.append(baseline)
        harness.same_answer(f"GET {read_path}", harness.fetch(baseline.url + read_path, token), real_answer)
        # The 650-id request, checked once before it is measured.
        ids = [user_id for user_id, _, _ in many]
        many_body = json.dumps({"ids": ids}, separators=(",", ":"))
        many_path = "/v1.0/communications/getPresencesByUserId"
        m_status, _, m_answer = harness.fetch(real.url + many_path, token, many_body.encode())
        returned = len(json.loads(m_answer)["value"])
        if m_status != 200 or returned != MANY_IDS:
            raise RuntimeError(f"POST {many_path} answered {m_status} with {returned} presences")
        script = harness.post_script(workdir / "post.lua", many_body)

        print(
            f"single read: GET {read_path} ({len(real_answer.body)} bytes) as {reader['userPrincipalName']}; "
            f"wrk -t1 -c{args.connections} -d{args.duration}s; pinned: {pin}",
            flush=True,
        )
        harness.same_answer(f"GET {read_path}", harness.fetch(quiet.url + read_path, token), real_answer)
        for server in (baseline, real, quiet):  # warm them up; not recorded
            harness.run_wrk(server.url + read_path, args.connections, harness.WARMUP_SECONDS, pin, headers=auth)
        harness.run_wrk(real.url + many_path, 1, harness.WARMUP_SECONDS, pin, headers=auth, script=script)

        def read(server: harness.Server) -> harness.WrkResult:
            return harness.run_wrk(server.url + read_path, args.connections, args.duration, pin, headers=auth)

        rounds: list[dict[str, Any]] = []
        for n in range(1, args.rounds + 1):
            base_r = read(baseline)
            harness.note_errors(f"round {n} bare ASGI", base_r, problems)
            # The two presenced run back to back, taking turns at going first.
            if n % 2 == 0:
                quiet_r = read(quiet)
            real_r = read(real)
            harness.note_errors(f"round {n} presenced", real_r, problems)
            if n % 2 == 1:
                quiet_r = read(quiet)
            harness.note_errors(f"round {n} presenced, no request log or metrics", quiet_r, problems)
            many_r = harness.run_wrk(real.url + many_path, 1, args.duration, pin, headers=auth, script=script)
            harness.note_errors(f"round {n} getPresencesByUserId", many_r, problems)
            ratio = harness.ratio(real_r.rps, base_r.rps)
            log_ratio = harness.ratio(real_r.rps, quiet_r.rps)
            rounds.append(
                {
                    "baseline": base_r,
                    "presenced": real_r,
                    "quiet": quiet_r,
                    "ratio": ratio,
                    "log_ratio": log_ratio,
                    "many": many_r,
                }
            )
            print(
                f"round {n}: presenced {harness.describe(real_r)} | bare ASGI {harness.describe(base_r)} "
                f"| ratio {ratio:.2f}x",
                flush=True,
            )
            print(
                f"         no request log or metrics {harness.describe(quiet_r)} | with/without {log_ratio:.3f}x",
                flush=True,
            )
            print(f"         getPresencesByUserId({MANY_IDS}) {harness.describe(many_r)}", flush=True)

    real_med = harness.median_of([r["presenced"] for r in rounds])
    base_med = harness.median_of([r["baseline"] for r in rounds])
    quiet_med = harness.median_of([r["quiet"] for r in rounds])
    many_med = harness.median_of([r["many"] for r in rounds])
    return {
        "config": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "connections": args.connections,
            **harness.machine(pin),
        },
        "single_read": {
            "request": f"GET {read_path}",
            "response_bytes": len(real_answer.body),
            "rounds": [
                {
                    "presenced": asdict(r["presenced"]),
                    "baseline": asdict(r["baseline"]),
                    "no_request_log": asdict(r["quiet"]),
                    "ratio": r["ratio"],
                    "request_log_ratio": r["log_ratio"],
                }
                for r in rounds
            ],
            "median": {"presenced": real_med, "baseline": base_med, "no_request_log": quiet_med},
            "ratio_of_medians": real_med["rps"] / base_med["rps"],
            "median_of_ratios": statistics.median(r["ratio"] for r in rounds),
            "request_log_ratio_of_medians": real_med["rps"] / quiet_med["rps"],
            "request_log_median_of_ratios": statistics.median(r["log_ratio"] for r in rounds),
        },
        "get_presences_by_user_id": {
            "request": f"POST {many_path}",
            "ids": MANY_IDS,
            "connections": 1,
            "response_bytes": len(m_answer),
            "rounds": [asdict(r["many"]) for r in rounds],
            "median": many_med,
        },
        "problems": problems,
    }


def print_summary(results: dict[str, Any]) -> None:
    single = results["single_read"]
    real, base = single["median"]["presenced"], single["median"]["baseline"]
    many = results["get_presences_by_user_id"]["median"]
    print()
    print(f"summary (medians of {results['config']['rounds']} rounds of {results['config']['duration_s']} s)")
    print(
        f"single read: presenced {harness.fmt_rps(real['rps'])} req/s p50 {real['p50_ms']:.2f} ms "
        f"p99 {real['p99_ms']:.2f} ms | bare ASGI {harness.fmt_rps(base['rps'])} req/s p50 {base['p50_ms']:.2f} ms "
        f"p99 {base['p99_ms']:.2f} ms | ratio {single['ratio_of_medians']:.2f}x "
        f"(median of per-round ratios {single['median_of_ratios']:.2f}x)"
    )
    quiet = single["median"]["no_request_log"]
    print(
        f"request log and metrics: without them {harness.fmt_rps(quiet['rps'])} req/s p50 {quiet['p50_ms']:.2f} ms "
        f"p99 {quiet['p99_ms']:.2f} ms | with/without {single['request_log_ratio_of_medians']:.3f}x "
        f"(median of per-round ratios {single['request_log_median_of_ratios']:.3f}x)"
    )
    print(
        f"getPresencesByUserId({MANY_IDS}): p50 {many['p50_ms']:.2f} ms p99 {many['p99_ms']:.2f} ms, "
        f"{harness.fmt_rps(many['rps'])} req/s (wrk -c1)"
    )
    for problem in results["problems"]:
        print(f"problem: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_measurement_options(
        parser, duration=5, connections=32, connections_help="wrk connections for the single read"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers to core 0 and wrk to core 1")
    args = parser.parse_args(argv)

    if harness.missing_wrk():
        return 2
    if args.duration < 1 or args.rounds < 1 or args.connections < 1:
        parser.error("--duration, --rounds and --connections must be at least 1")
    return harness.run("read_bench", args, benchmark, print_summary)


if __name__ == "__main__":
    sys.exit(main())
