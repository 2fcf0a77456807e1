"""JSON batching benchmark: one ``$batch`` of 20 presence reads against 20 single reads, in server time.

Run:  .venv/bin/python bench/batch_bench.py [--seconds 3] [--rounds 5] [--connections 4] [--no-pin]

One ``presenced serve --http --port 0`` process (its defaults otherwise) on a ``presenced demo`` data
directory plus 20 generated users, read with a delegated ``Presence.Read.All`` token of a demo user.
Two ways of reading the same 20 presences, on kept-alive connections (``--connections`` of them, each
sending its next request as soon as the previous answer is in):

- singles: ``GET /v1.0/users/{id}/presence``, one request per presence;
- batch: ``POST /v1.0/$batch`` with those 20 GETs, one request per 20 presences.

Each measurement lasts ``--seconds``; the server process's CPU time (utime + stime of
/proc/<pid>/stat) is read before and after it. Rounds interleave (singles, batch, singles, ...) and
the summary gives medians: server CPU per 20 presences, presences/s, and the ratio batch/singles of
server CPU per presence (the target: at most 1.0). Every answer's status is checked (the batch's and
each inner one must be 200); any other stops the run. The default run takes under a minute. Results
go to stdout and bench/results/batch_bench.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

import harness
from harness import ratio

USER_NAMESPACE = uuid.UUID("8e0f6a3c-2b7d-4c1e-9a5f-3d6b8c0e1f27")
BATCH_SIZE = 20
TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / TICKS


class Connection:
    """One kept-alive HTTP/1.1 connection that sends a request and reads its (Content-Length) answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        if "content-length" not in headers:
            raise RuntimeError(f"answer without Content-Length: {head!r}")
        return status, await self.reader.readexactly(int(headers["content-length"]))


async def connect(host: str, port: int) -> Connection:
    return Connection(*await asyncio.open_connection(host, port))


def check_single(status: int, body: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"GET presence answered {status}: {body[:500]!r}")


def check_batch(status: int, body: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"POST $batch answered {status}: {body[:500]!r}")
    responses = msgspec.json.decode(body)["responses"]
    if sorted(r["id"] for r in responses) != sorted(str(i) for i in range(1, BATCH_SIZE + 1)):
        raise RuntimeError(f"POST $batch answered ids {[r['id'] for r in responses]}")
    bad = [(r["id"], r["status"], r.get("body")) for r in responses if r["status"] != 200]
    if bad:
        raise RuntimeError(f"POST $batch: {len(bad)} inner answers are not 200, e.g. {bad[0]}")


async def measure(conns: list[Connection], requests: list[bytes], per_request: int, seconds: float, pid: int) -> dict:
    """Every connection sends ``requests`` in turn for ``seconds``; presences/s and the server's CPU."""
    check = check_batch if per_request > 1 else check_single
    served = 0

    async def load(conn: Connection, start: int, deadline: float) -> None:
        nonlocal served
        n = start
        while time.perf_counter() < deadline:
            check(*await conn.exchange(requests[n % len(requests)]))
            served += per_request
            n += 1

    cpu0, client0, t0 = server_cpu_seconds(pid), time.process_time(), time.perf_counter()
    await asyncio.gather(*(load(c, i, t0 + seconds) for i, c in enumerate(conns)))
    wall, cpu = time.perf_counter() - t0, server_cpu_seconds(pid) - cpu0
    client = time.process_time() - client0
    return {
        "presences": served,
        "wall_s": wall,
        "server_cpu_s": cpu,
        "presences_per_s": served / wall,
        "cpu_ms_per_20": 1000 * cpu / served * BATCH_SIZE,
        "server_busy": cpu / wall,
        "client_busy": client / wall,
    }


async def run_rounds(args: argparse.Namespace, url: str, token: str, user_ids: list[str], pid: int) -> list[dict]:
    host, port = url.removeprefix("http://").split(":")
    common = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
    singles = [f"GET /v1.0/users/{u}/presence HTTP/1.1\r\n{common}\r\n".encode() for u in user_ids]
    items = [{"id": str(i), "method": "GET", "url": f"/users/{u}/presence"} for i, u in enumerate(user_ids, 1)]
    body = json.dumps({"requests": items}, separators=(",", ":")).encode()
    batch = [
        f"POST /v1.0/$batch HTTP/1.1\r\n{common}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    ]
    ways = {"singles": (singles, 1), "batch": (batch, BATCH_SIZE)}
    pools = {way: [await connect(host, int(port)) for _ in range(args.connections)] for way in ways}
    try:
        for way, (requests, per) in ways.items():  # warm-up, not recorded
            await measure(pools[way], requests, per, harness.WARMUP_SECONDS, pid)
        rounds = []
        for n in range(1, args.rounds + 1):
            result = {
                way: await measure(pools[way], requests, per, args.seconds, pid)
                for way, (requests, per) in ways.items()
            }
            result["cpu_ratio"] = ratio(result["batch"]["cpu_ms_per_20"], result["singles"]["cpu_ms_per_20"])
            rounds.append(result)
            for way in ways:
                print(f"round {n}: {row(way, result[way])}", flush=True)
        return rounds
    finally:
        for conn in (c for pool in pools.values() for c in pool):
            conn.writer.close()


LABELS = {"singles": "20 x GET /users/{id}/presence", "batch": "1 x POST /$batch of those 20"}
HEADER = f"{'way':<32} {'presences/s':>12} {'server CPU ms/20':>18} {'server busy':>12} {'client busy':>12}"


def row(way: str, r: dict[str, float]) -> str:
    return (
        f"{LABELS[way]:<32} {r['presences_per_s']:>12,.0f} {r['cpu_ms_per_20']:>18.2f} "
        f"{100 * r['server_busy']:>11.0f}% {100 * r['client_busy']:>11.0f}%"
    )


def benchmark(args: argparse.Namespace, workdir: Path, pin: bool) -> dict[str, Any]:
    import uvloop

    data_dir = workdir / "data"
    problems: list[str] = []
    demo = json.loads(harness.run_cli("demo", "--data-dir", str(data_dir), "--json"))
    tenant_id, reader = demo["tenantId"], demo["users"][0]
    users = [
        (
            str(uuid.uuid5(USER_NAMESPACE, f"{tenant_id}:{i}")),
            f"batch.user{i:02d}@contoso.example",
            f"Batch User {i:02d}",
        )
        for i in range(BATCH_SIZE)
    ]
    asyncio.run(asyncio.wait_for(harness.add_users(data_dir, tenant_id, users), timeout=120))

    with harness.serving(problems) as servers:
        server = harness.start_presenced(workdir, pin, "--data-dir", str(data_dir))
        servers.append(server)
        pid = server.proc.pid  # taskset execs python: the same process
        if "serve" not in Path(f"/proc/{pid}/cmdline").read_text():
            raise RuntimeError(f"process {pid} is not presenced serve")
        token = harness.run_cli(
            "token", "--data-dir", str(data_dir), "--user", reader["userPrincipalName"], "--scopes", "Presence.Read.All"
        ).strip()
        print(
            f"presenced at {server.url} (pid {pid}); {BATCH_SIZE} users, {args.connections} connections, "
            f"{args.rounds} rounds of {args.seconds:g} s per way; delegated token of {reader['userPrincipalName']}; "
            f"pinned: {pin}",
            flush=True,
        )
        print(f"{'':9}{HEADER}", flush=True)
        try:
            if pin:  # this process (the clients) on the other core
                os.sched_setaffinity(0, {1})
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                rounds = runner.run(run_rounds(args, server.url, token, [u for u, _, _ in users], pid))
        finally:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, range(os.cpu_count() or 1))

    median = {
        way: {key: statistics.median(r[way][key] for r in rounds) for key in rounds[0][way]}
        for way in ("singles", "batch")
    }
    return {
        "config": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "connections": args.connections,
            "batch_size": BATCH_SIZE,
            **harness.machine(pin),
        },
        "rounds": rounds,
        "median": median,
        "cpu_ratio_of_medians": ratio(median["batch"]["cpu_ms_per_20"], median["singles"]["cpu_ms_per_20"]),
        "cpu_median_of_ratios": statistics.median(r["cpu_ratio"] for r in rounds),
        "throughput_ratio_of_medians": ratio(median["batch"]["presences_per_s"], median["singles"]["presences_per_s"]),
        "problems": problems,
    }


def print_summary(results: dict[str, Any]) -> None:
    config, median = results["config"], results["median"]
    print()
    print(
        f"summary (medians of {config['rounds']} interleaved rounds of {config['seconds']:g} s, "
        f"{config['connections']} kept-alive connections)"
    )
    print(HEADER)
    print("-" * len(HEADER))
    for way in ("singles", "batch"):
        print(row(way, median[way]))
    print(
        f"batch/singles, server CPU per presence: {results['cpu_ratio_of_medians']:.2f}x "
        f"(median of per-round ratios {results['cpu_median_of_ratios']:.2f}x; target <= 1.00x)"
    )
    print(f"batch/singles, presences/s: {results['throughput_ratio_of_medians']:.2f}x")
    for problem in results["problems"]:
        print(f"problem: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of each way (default 5)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent kept-alive connections (default 4)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to core 0 and this process to 1")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or args.connections < 1:
        parser.error("--seconds, --rounds and --connections must be positive")
    return harness.run("batch_bench", args, benchmark, print_summary)


if __name__ == "__main__":
    sys.exit(main())
