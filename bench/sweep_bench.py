"""Sweep benchmark: 10,000 due transitions stored through a manual-clock move, on SQLite and on PostgreSQL.

Run:  .venv/bin/python bench/sweep_bench.py [--users 10000] [--rounds 3] [--no-pin] [--no-postgres]
      [--postgres-admin-url URL]

For each store, the script seeds ``--users`` users through the store API (in this process), each
with one Available presence session refreshed shortly before the manual clock's time and expiring
an hour later, and starts ``presenced serve --http --clock manual`` on it (pinned to core 0).
Then, round by round, interleaved:

1. the server: ``POST /_emulator/clock`` moving the clock so that every user's next transition
   falls due at once (round 1: +5 minutes, every session fades to AvailableInactive; round 2: +5
   minutes, to Away; round 3: +50 minutes, every session expires: Offline; further rounds give every
   user a new session first, not timed). The sessions were refreshed at different instants over
   the 10 seconds before the clock's time, so no two users' changes are the same. The move
   answers once every transition is stored, so the request's time is the sweep's: ``--users``
   transitions (checked in the change log) over it;
2. the baseline: the same number of rows updated by one ``executemany`` on the bare driver
   (``sqlite3`` with the server's pragmas, or asyncpg), in one transaction, in this process pinned
   to the server's core: the statement with which the sweep stores each user's state, one row a
   time (``UPDATE ... SET visible, sequence, changed_us, next_change_us, upcoming WHERE user_id``;
   the PostgreSQL sweep sends all of a transaction's rows in one statement instead), on a
   copy of the ``presences`` table (same columns, keys and index) holding the rows as the sweep
   just left them, each given a new sequence number and instants: what storing the transitions
   costs the database, without reading, deciding, logging or notifying anything. It is measured
   three times a round; the median counts.

The figure is the ratio transitions/s to baseline rows/s. Everything listens on 127.0.0.1 only.
Results go to stdout and bench/results/sweep_bench.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import harness
from presenced.store.batch_sql import PRESENCE_STATE, SQLITE

USER_NAMESPACE = uuid.UUID("4c2e9a71-8b3d-4f6e-a1c5-7d9e0b2f3a44")
APP = "7b1e5d2c-9a4f-4c3b-8e6d-1f0a2b3c4d55"
#: How far each round moves the clock: every session fades, fades again, then expires.
MOVES = ("PT5M", "PT5M", "PT50M")
HOUR = timedelta(hours=1)
#: The baseline is measured this many times a round (the median counts): one executemany of
#: 10,000 rows takes tens of milliseconds, and one write-ahead-log checkpoint more or less moves it.
BASELINE_REPEATS = 3
#: The sessions' refreshes are spread over this much time before the clock's.
SPREAD = timedelta(seconds=10)
COPY_TABLE = "bench_presences"


def users_of(tenant_id: str, count: int) -> list[tuple[str, str, str]]:
    return [
        (str(uuid.uuid5(USER_NAMESPACE, f"{tenant_id}:{i}")), f"sweep.user{i:05d}@contoso.example", f"Sweeper {i:05d}")
        for i in range(count)
    ]


# --------------------------------------------------------------------------- seeding, through the project's API


async def _seed(data_dir: Path, database_url: str | None, count: int) -> str:
    """A tenant with ``count`` users, each with a fresh Available session; the tenant's id."""
    from presenced.bootstrap import build
    from presenced.config import Settings
    from presenced.services.entities import Tenant, User

    runtime = await build(Settings(data_dir=data_dir, database_url=database_url, clock="manual"))
    try:
        tenant = Tenant(str(uuid.uuid5(USER_NAMESPACE, "tenant")), "Sweep")
        now = await runtime.clock.now()
        users = [User(i, tenant.id, upn, name) for i, upn, name in users_of(tenant.id, count)]
        async with runtime.store.begin() as tx:
            await tx.put_tenant(tenant, now)
            for user in users:
                await tx.put_user(user, now)
        await _new_sessions(runtime, users)
        return tenant.id
    finally:
        await runtime.close()


async def _new_sessions(runtime: Any, users: list[Any]) -> None:
    """Every user gets an Available session lasting an hour, refreshed in the 10 seconds before the clock's time.

    Each user's at a different instant, as clients' refreshes are: no two users' facts, upcoming
    changes or change-log entries are the same.
    """
    from presenced.domain.model import Activity, Availability, PresenceFacts, Session
    from presenced.services.writes import deciding

    def refreshed(offset: timedelta) -> Any:
        def mutate(facts: Any, now: Any) -> Any:
            at = now - offset
            return PresenceFacts(sessions=(Session(APP, Availability.AVAILABLE, Activity.AVAILABLE, at, at + HOUR),))

        return deciding(mutate, "setPresence")

    spread = SPREAD / max(len(users), 1)
    for start in range(0, len(users), 2000):
        chunk = users[start : start + 2000]
        await asyncio.gather(
            *(runtime.writer.write(user, refreshed(spread * (start + i))) for i, user in enumerate(chunk))
        )


async def _refresh(data_dir: Path, database_url: str | None, tenant_id: str, count: int) -> None:
    from presenced.bootstrap import build
    from presenced.config import Settings
    from presenced.services.entities import User

    runtime = await build(Settings(data_dir=data_dir, database_url=database_url))
    try:
        await _new_sessions(runtime, [User(i, tenant_id, upn, name) for i, upn, name in users_of(tenant_id, count)])
    finally:
        await runtime.close()


# --------------------------------------------------------------------------- the server's sweep


def move_clock(url: str, advance: str) -> float:
    """``POST /_emulator/clock``; the seconds until it answered."""
    body = json.dumps({"advance": advance}).encode()
    request = urllib.request.Request(
        f"{url}/_emulator/clock", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"moving the clock answered {response.status}")
    return time.perf_counter() - started


# --------------------------------------------------------------------------- the bare-driver baseline


@contextmanager
def pinned_to_server_core(pin: bool) -> Any:
    """Run this process on core 0 (the server's) while measuring the baseline."""
    if not pin:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _baseline_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """New state values for every copied row, the size of what the sweep just wrote: a new sequence
    number and instants, the same presence and upcoming changes."""
    return [
        (visible, sequence + 1, changed + 1, None if nxt is None else nxt + 1, upcoming, user_id)
        for user_id, visible, sequence, changed, nxt, upcoming in rows
    ]


#: The statement a sweep stores each user's state with on SQLite (with executemany), on the copy;
#: on PostgreSQL, the same one row a time (the sweep sends all rows in one statement instead).
UPDATE_SQLITE = SQLITE.writes.update_state.replace("UPDATE presences", f"UPDATE {COPY_TABLE}")
UPDATE_POSTGRES = (
    f"UPDATE {COPY_TABLE} SET "
    + ", ".join(f"{column} = ${n}" for n, column in enumerate(PRESENCE_STATE, 1))
    + f" WHERE user_id = ${len(PRESENCE_STATE) + 1}"
)
SELECT_STATE = f"SELECT user_id, visible, sequence, changed_us, next_change_us, upcoming FROM {COPY_TABLE}"
#: Before each baseline, the copy takes the rows as the sweep just left them (not timed).
REFRESH = (f"DELETE FROM {COPY_TABLE}", f"INSERT INTO {COPY_TABLE} SELECT * FROM presences")


def sqlite_copy(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'presences'").fetchone()[0]
        conn.execute(ddl.replace("presences", COPY_TABLE, 1).replace("pk_presences", f"pk_{COPY_TABLE}"))
        conn.execute(f"CREATE INDEX ix_{COPY_TABLE}_next_change_us ON {COPY_TABLE} (next_change_us)")
    finally:
        conn.close()


def sqlite_baseline(path: Path) -> tuple[float, int]:
    """One executemany over the copy, committed like the server's writes; (seconds, rows)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("BEGIN IMMEDIATE")
        for statement in REFRESH:
            conn.execute(statement)
        conn.execute("COMMIT")
        rows = _baseline_rows(conn.execute(SELECT_STATE).fetchall())
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(UPDATE_SQLITE, rows)
        conn.execute("COMMIT")
        return time.perf_counter() - started, len(rows)
    finally:
        conn.close()


async def _postgres_copy(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE TABLE {COPY_TABLE} (LIKE presences INCLUDING ALL)")
    finally:
        await conn.close()


async def _postgres_baseline(url: str) -> tuple[float, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            for statement in REFRESH:
                await conn.execute(statement)
        await conn.execute(f"ANALYZE {COPY_TABLE}")
        rows = _baseline_rows([tuple(r) for r in await conn.fetch(SELECT_STATE)])
        await conn.prepare(UPDATE_POSTGRES)
        started = time.perf_counter()
        async with conn.transaction():
            await conn.executemany(UPDATE_POSTGRES, rows)
        return time.perf_counter() - started, len(rows)
    finally:
        await conn.close()


# --------------------------------------------------------------------------- main


def benchmark(args: argparse.Namespace, workdir: Path, pin: bool) -> dict[str, Any]:
    problems: list[str] = []
    pg_url = None if args.no_postgres else harness.create_database(args.postgres_admin_url)
    if args.no_postgres:
        print("skipping PostgreSQL: --no-postgres", flush=True)
    stores = [("sqlite", "SQLite", None)] + ([("postgres", "PostgreSQL", pg_url)] if pg_url else [])
    measured: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in stores}
    try:
        for name, backend, database_url in stores:
            data_dir = workdir / f"data-{name}"
            started = time.monotonic()
            tenant_id = asyncio.run(_seed(data_dir, database_url, args.users))
            print(f"{backend}: {args.users} users with a session in {time.monotonic() - started:.1f} s", flush=True)
            store_args = ["--data-dir", str(data_dir)] + (["--database-url", database_url] if database_url else [])
            if database_url:
                asyncio.run(_postgres_copy(database_url))
            else:
                sqlite_copy(data_dir / "presenced.db")
            for n in range(1, args.rounds + 1):
                if n > len(MOVES) and (n - 1) % len(MOVES) == 0:
                    asyncio.run(_refresh(data_dir, database_url, tenant_id, args.users))
                before = asyncio.run(_logged(data_dir, database_url))
                with harness.serving(problems) as servers:
                    server = harness.start_presenced(workdir, pin, *store_args, "--clock", "manual", name=name)
                    servers.append(server)
                    seconds = move_clock(server.url, MOVES[(n - 1) % len(MOVES)])
                stored = asyncio.run(_logged(data_dir, database_url)) - before
                if stored != args.users:
                    problems.append(f"{backend} round {n}: {stored} transitions logged, not {args.users}")
                timings = []
                with pinned_to_server_core(pin):
                    for _ in range(BASELINE_REPEATS):
                        if database_url:
                            timings.append(asyncio.run(_postgres_baseline(database_url)))
                        else:
                            timings.append(sqlite_baseline(data_dir / "presenced.db"))
                base_s, rows = sorted(timings)[len(timings) // 2]
                result = {
                    "transitions": stored,
                    "seconds": seconds,
                    "transitions_per_s": stored / seconds,
                    "baseline_rows": rows,
                    "baseline_seconds": base_s,
                    "baseline_rows_per_s": rows / base_s,
                }
                result["ratio"] = result["transitions_per_s"] / result["baseline_rows_per_s"]
                measured[name].append(result)
                print(
                    f"round {n}: {backend:<10} sweep {stored:,} transitions in {seconds * 1000:,.0f} ms = "
                    f"{result['transitions_per_s']:,.0f}/s | executemany {rows:,} rows in {base_s * 1000:,.0f} ms = "
                    f"{result['baseline_rows_per_s']:,.0f}/s | {result['ratio']:.3f}x",
                    flush=True,
                )
    finally:
        if pg_url:
            harness.drop_database(args.postgres_admin_url, pg_url)
    summary = {}
    for name, backend, _ in stores:
        rounds = measured[name]
        summary[name] = {
            "backend": backend,
            "rounds": rounds,
            "transitions_per_s": statistics.median(r["transitions_per_s"] for r in rounds),
            "baseline_rows_per_s": statistics.median(r["baseline_rows_per_s"] for r in rounds),
            "median_of_ratios": statistics.median(r["ratio"] for r in rounds),
        }
    return {
        "config": {"users": args.users, "rounds": args.rounds, **harness.machine(pin), "postgres": pg_url is not None},
        "stores": summary,
        "problems": problems,
    }


async def _logged(data_dir: Path, database_url: str | None) -> int:
    """Change-log entries so far (read through the project's engine)."""
    from sqlalchemy import func, select

    from presenced.bootstrap import build
    from presenced.config import Settings
    from presenced.store.schema import presence_changes

    runtime = await build(Settings(data_dir=data_dir, database_url=database_url), migrate=False)
    try:
        async with runtime.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(presence_changes)) or 0)
    finally:
        await runtime.close()


def print_summary(results: dict[str, Any]) -> None:
    config = results["config"]
    print()
    print(
        f"summary: medians of {config['rounds']} rounds, {config['users']:,} due transitions per clock move; "
        "ratio = transitions/s / rows/s of one bare executemany (median of per-round ratios)"
    )
    header = f"{'store':<11} {'sweep transitions/s':>20} {'executemany rows/s':>20}  ratio"
    print(header)
    print("-" * len(header))
    for store in results["stores"].values():
        print(
            f"{store['backend']:<11} {store['transitions_per_s']:>20,.0f} {store['baseline_rows_per_s']:>20,.0f}  "
            f"{store['median_of_ratios']:.3f}x"
        )
    harness.print_problems(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000, help="users whose transitions fall due at once")
    parser.add_argument("--rounds", type=int, default=3, help="clock moves (default 3)")
    harness.add_store_options(parser, "do not pin the server and the baseline to core 0")
    args = parser.parse_args(argv)
    if args.rounds < 1 or not 1 <= args.users <= 100_000:
        parser.error("--rounds must be at least 1, --users between 1 and 100000")
    return harness.run("sweep_bench", args, benchmark, print_summary)


if __name__ == "__main__":
    sys.exit(main())
