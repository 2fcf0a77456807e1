"""Read-path benchmark: presenced against a bare ASGI app on the same server stack.

Run:  .venv/bin/python bench/read_bench.py [--duration 5] [--rounds 3] [--connections 32] [--no-pin] [--metrics-off]

1. Single read, ``GET /v1.0/users/{id}/presence``, under ``wrk -c<connections>``, interleaved
   round by round with a baseline: a bare ASGI callable served by the same uvicorn/uvloop/httptools
   configuration that returns the same bytes. The figure to read is the ratio presenced/baseline.
   With ``--metrics-off``, each round also measures a second presenced on the same data started with
   ``--no-metrics``: the ratio metrics on/off is what recording the request metrics costs.
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
        real = harness.start_presenced(workdir, pin, "--data-dir", str(data_dir))
        servers.append(real)
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
        quiet = None
        if args.metrics_off:
            # The same public URL: the same token issuer, and the same answer, byte for byte.
            quiet = harness.start_presenced(
                workdir, pin, "--data-dir", str(data_dir), "--no-metrics", "--public-url", real.url, name="no-metrics"
            )
            servers.append(quiet)
            harness.same_answer(f"GET {read_path}", harness.fetch(quiet.url + read_path, token), real_answer)

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
        for server in (baseline, real, *([quiet] if quiet else [])):  # warm them up; not recorded
            harness.run_wrk(server.url + read_path, args.connections, harness.WARMUP_SECONDS, pin, headers=auth)
        harness.run_wrk(real.url + many_path, 1, harness.WARMUP_SECONDS, pin, headers=auth, script=script)

        def read(server: harness.Server) -> harness.WrkResult:
            return harness.run_wrk(server.url + read_path, args.connections, args.duration, pin, headers=auth)

        rounds: list[dict[str, Any]] = []
        for n in range(1, args.rounds + 1):
            base_r = read(baseline)
            harness.note_errors(f"round {n} bare ASGI", base_r, problems)
            # With --metrics-off, the two presenced run back to back, taking turns at going first.
            off_r = read(quiet) if quiet is not None and n % 2 == 0 else None
            real_r = read(real)
            harness.note_errors(f"round {n} presenced", real_r, problems)
            if quiet is not None and off_r is None:
                off_r = read(quiet)
            many_r = harness.run_wrk(real.url + many_path, 1, args.duration, pin, headers=auth, script=script)
            harness.note_errors(f"round {n} getPresencesByUserId", many_r, problems)
            ratio = harness.ratio(real_r.rps, base_r.rps)
            rounds.append({"baseline": base_r, "presenced": real_r, "ratio": ratio, "many": many_r})
            print(
                f"round {n}: presenced {harness.describe(real_r)} | bare ASGI {harness.describe(base_r)} "
                f"| ratio {ratio:.2f}x",
                flush=True,
            )
            if off_r is not None:
                harness.note_errors(f"round {n} presenced --no-metrics", off_r, problems)
                rounds[-1]["metrics_off"] = off_r
                print(
                    f"         presenced --no-metrics {harness.describe(off_r)} | metrics on/off "
                    f"{harness.ratio(real_r.rps, off_r.rps):.3f}x",
                    flush=True,
                )
            print(f"         getPresencesByUserId({MANY_IDS}) {harness.describe(many_r)}", flush=True)

    real_med = harness.median_of([r["presenced"] for r in rounds])
    base_med = harness.median_of([r["baseline"] for r in rounds])
    many_med = harness.median_of([r["many"] for r in rounds])
    metrics_off: dict[str, Any] | None = None
    if args.metrics_off:
        off_med = harness.median_of([r["metrics_off"] for r in rounds])
        metrics_off = {
            "rounds": [asdict(r["metrics_off"]) for r in rounds],
            "median": off_med,
            "on_off_ratio_of_medians": real_med["rps"] / off_med["rps"],
            "on_off_median_of_ratios": statistics.median(r["presenced"].rps / r["metrics_off"].rps for r in rounds),
            "off_baseline_ratio_of_medians": off_med["rps"] / base_med["rps"],
        }
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
                {"presenced": asdict(r["presenced"]), "baseline": asdict(r["baseline"]), "ratio": r["ratio"]}
                for r in rounds
            ],
            "median": {"presenced": real_med, "baseline": base_med},
            "ratio_of_medians": real_med["rps"] / base_med["rps"],
            "median_of_ratios": statistics.median(r["ratio"] for r in rounds),
            "metrics_off": metrics_off,
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
    print(
        f"getPresencesByUserId({MANY_IDS}): p50 {many['p50_ms']:.2f} ms p99 {many['p99_ms']:.2f} ms, "
        f"{harness.fmt_rps(many['rps'])} req/s (wrk -c1)"
    )
    off = single.get("metrics_off")
    if off:
        print(
            f"single read, --no-metrics: {harness.fmt_rps(off['median']['rps'])} req/s "
            f"(ratio to bare ASGI {off['off_baseline_ratio_of_medians']:.2f}x); "
            f"metrics on/off {off['on_off_ratio_of_medians']:.3f}x "
            f"(median of per-round ratios {off['on_off_median_of_ratios']:.3f}x)"
        )
    for problem in results["problems"]:
        print(f"problem: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_measurement_options(
        parser, duration=5, connections=32, connections_help="wrk connections for the single read"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers to core 0 and wrk to core 1")
    parser.add_argument(
        "--metrics-off",
        action="store_true",
        help="also measure presenced --no-metrics, round by round (what the metrics cost)",
    )
    args = parser.parse_args(argv)

    if harness.missing_wrk():
        return 2
    if args.duration < 1 or args.rounds < 1 or args.connections < 1:
        parser.error("--duration, --rounds and --connections must be at least 1")
    return harness.run("read_bench", args, benchmark, print_summary)


if __name__ == "__main__":
    sys.exit(main())
