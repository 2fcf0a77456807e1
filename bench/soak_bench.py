"""Soak: mixed Teams-like traffic at half the measured capacity for a long while (30 minutes by default).

Against one ``presenced serve --demo`` (SQLite, or PostgreSQL with ``--database-url``), from this
process: presence reads, session refreshes (setPresence with the same values), status changes
(setPresence with others), batch reads, with webhook subscriptions to a receiver in this process and
live-stream clients watching. First the mix runs flat out for a short while: its rate is the
capacity. Then it runs at half that rate for ``--seconds``.

Printed: the capacity, then per minute the requests, errors, p50 and p99 latency and the server's
RSS; at the end the errors (must be 0), notifications and stream events received, the p99 of the
last minute beside the first's, and the RSS at the end beside the start (growth must be at most 5%).
The baseline of each figure is the same run's first minute.

    python bench/soak_bench.py [--seconds 1800] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import harness

CAPACITY_SECONDS = 15
CONCURRENCY = 16
SUBSCRIPTIONS = 4
STREAMS = 4
PAIRS = (("Available", "Available"), ("Busy", "InACall"), ("DoNotDisturb", "Presenting"), ("Away", "Away"))


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notifications: int = 0
    stream_events: int = 0


class Traffic:
    def __init__(self, http: httpx.AsyncClient, user_ids: list[str], session_id: str) -> None:
        self.http = http
        self.user_ids = user_ids
        self.session_id = session_id
        self.tally = Tally()

    async def one(self) -> None:
        """One request of the mix: 60% reads, 20% session refreshes, 10% status changes, 10% batch reads."""
        user = random.choice(self.user_ids)
        roll = random.random()
        started = time.perf_counter()
        try:
            if roll < 0.6:
                response = await self.http.get(f"/v1.0/users/{user}/presence")
            elif roll < 0.9:
                pair = PAIRS[0] if roll < 0.8 else random.choice(PAIRS)
                body = {
                    "sessionId": self.session_id,
                    "availability": pair[0],
                    "activity": pair[1],
                    "expirationDuration": "PT1H",
                }
                response = await self.http.post(f"/v1.0/users/{user}/presence/setPresence", json=body)
            else:
                ids = random.sample(self.user_ids, min(5, len(self.user_ids)))
                response = await self.http.post("/v1.0/communications/getPresencesByUserId", json={"ids": ids})
        except httpx.HTTPError as error:
            self.tally.errors.append(f"{type(error).__name__}: {error}")
            return
        self.tally.latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            self.tally.errors.append(f"{response.status_code}: {response.text[:200]}")


async def flat_out(traffic: Traffic, seconds: float) -> float:
    """Requests per second of the mix with ``CONCURRENCY`` requests in flight."""
    deadline = time.monotonic() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await traffic.one()
            done += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done / seconds


async def paced(traffic: Traffic, rate: float, seconds: float, minute: float, report: Any) -> None:
    """``rate`` requests per second for ``seconds``, from ``CONCURRENCY`` clients that each keep a schedule:
    a client that falls behind sends at once, and at most ``CONCURRENCY`` requests are ever in flight (so a
    slow moment cannot pile up work in this process)."""
    start = time.monotonic()
    every = CONCURRENCY / rate

    async def client(offset: float) -> None:
        slot = start + offset
        while slot < start + seconds:
            delay = slot - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await traffic.one()
            slot += every

    async def reporter() -> None:
        next_report = start + minute
        while next_report <= start + seconds:
            await asyncio.sleep(next_report - time.monotonic())
            report()
            next_report += minute

    reporting = asyncio.create_task(reporter())
    await asyncio.gather(*(client(i * every / CONCURRENCY) for i in range(CONCURRENCY)))
    reporting.cancel()
    report()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values, default=0.0)


async def receiver(tally: Tally) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    async def hook(request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            return PlainTextResponse(token)
        tally.notifications += len((await request.json()).get("value", []))
        return Response(status_code=202)

    sock = socket.socket()
    sock.bind((harness.HOST, 0))
    sock.listen(128)
    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    return server, task, f"http://{harness.HOST}:{sock.getsockname()[1]}/hook"


async def stream(url: str, token: str, user_ids: list[str], tally: Tally) -> None:
    async with (
        httpx.AsyncClient(base_url=url, timeout=None, headers={"Authorization": f"Bearer {token}"}) as http,
        http.stream("GET", f"/_stream/presences?ids={','.join(user_ids)}") as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                tally.stream_events += 1


async def soak(url: str, token: str, user_ids: list[str], session_id: str, seconds: float, pid: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:
        traffic = Traffic(http, user_ids, session_id)
        hook_server, hook_task, hook_url = await receiver(traffic.tally)
        expires = (datetime.now(UTC) + timedelta(minutes=59)).isoformat().replace("+00:00", "Z")
        for user in user_ids[:SUBSCRIPTIONS]:
            body = {
                "changeType": "updated",
                "notificationUrl": hook_url,
                "resource": f"communications/presences/{user}",
                "expirationDateTime": expires,
                "clientState": "soak",
            }
            created = await http.post("/v1.0/subscriptions", json=body)
            if created.status_code != 201:
                raise RuntimeError(f"subscription refused: {created.status_code} {created.text[:200]}")
        streams = [asyncio.create_task(stream(url, token, user_ids, traffic.tally)) for _ in range(STREAMS)]

        capacity = await flat_out(traffic, CAPACITY_SECONDS)
        print(f"capacity of the mix: {capacity:,.0f} req/s ({CONCURRENCY} in flight); soaking at half", flush=True)
        traffic.tally = Tally(notifications=traffic.tally.notifications, stream_events=traffic.tally.stream_events)
        minutes: list[dict[str, Any]] = []
        seen = [0]

        def report() -> None:
            latencies = traffic.tally.latencies[seen[0] :]
            seen[0] = len(traffic.tally.latencies)
            row = {
                "minute": len(minutes) + 1,
                "requests": len(latencies),
                "errors": len(traffic.tally.errors),
                "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else 0.0,
                "p99_ms": round(p99(latencies) * 1000, 2),
                "rss_mb": round(rss_kb(pid) / 1024, 1),
            }
            minutes.append(row)
            print(
                f"  minute {row['minute']:>3}: {row['requests']:>7,} requests, {row['errors']} errors so far, "
                f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, server RSS {row['rss_mb']} MB",
                flush=True,
            )

        await paced(traffic, capacity / 2, seconds, 60.0, report)
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        await asyncio.sleep(3)  # the last notifications
        hook_server.should_exit = True
        await hook_task
    return {"capacity": capacity, "minutes": minutes, "tally": traffic.tally}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1800.0, help="how long to soak (default 30 minutes)")
    parser.add_argument("--database-url", help="PostgreSQL instead of SQLite")
    args = parser.parse_args(argv)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="presenced-soak-") as tmp, harness.serving(problems) as servers:
        workdir = Path(tmp)
        store_args = ["--data-dir", str(workdir / "data")]
        if args.database_url:
            store_args += ["--database-url", args.database_url]
        demo = json.loads(harness.run_cli("demo", *store_args, "--json"))
        daemon = harness.demo_daemon_app(demo)
        server = harness.start_presenced(workdir, False, *store_args, "--allow-loopback-webhooks")
        servers.append(server)
        token = harness.run_cli(
            "token", *store_args, "--app", daemon["clientId"], "--url", server.url,
            "--roles", "Presence.Read.All Presence.ReadWrite.All",
        ).strip()  # fmt: skip
        user_ids = [u["id"] for u in demo["users"]]
        result = asyncio.run(soak(server.url, token, user_ids, daemon["clientId"], args.seconds, server.proc.pid))
    minutes, tally = result["minutes"], result["tally"]
    first, last = minutes[0], minutes[-1] if len(minutes) > 1 else minutes[0]
    full = [m for m in minutes if m["requests"] > 0]
    growth = (last["rss_mb"] / first["rss_mb"] - 1) * 100 if first["rss_mb"] else 0.0
    print(
        f"\nsoak of {args.seconds / 60:.0f} min at {result['capacity'] / 2:,.0f} req/s "
        f"({'PostgreSQL' if args.database_url else 'SQLite'}): {sum(m['requests'] for m in minutes):,} requests, "
        f"{len(tally.errors)} errors, {tally.notifications:,} notifications, {tally.stream_events:,} stream events\n"
        f"p99: first minute {first['p99_ms']} ms, last minute {last['p99_ms']} ms "
        f"(ratio {last['p99_ms'] / first['p99_ms'] if first['p99_ms'] else 0:.2f}); "
        f"worst minute {max(m['p99_ms'] for m in full) if full else 0} ms\n"
        f"server RSS: first minute {first['rss_mb']} MB, last minute {last['rss_mb']} MB (growth {growth:+.1f}%)"
    )
    for error in tally.errors[:10]:
        problems.append(f"request error: {error}")
    if growth > 5:
        problems.append(f"RSS grew {growth:.1f}% (at most 5% is expected)")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
