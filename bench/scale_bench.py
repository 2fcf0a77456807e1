"""What a second server process adds on PostgreSQL and Redis, and what each request costs every component.

Run:  .venv/bin/python bench/scale_bench.py [--duration 5] [--rounds 3] [--connections 32] [--light-connections 2]
      [--users 1000] [--subscriptions 200] [--no-pin] [--postgres-admin-url URL] [--redis-url URL]

On PostgreSQL (a database of its own) and Redis (a private ``redis-server`` on a free port, unless
``--redis-url``), each round measures ``presenced serve`` and ``presenced serve --processes 2`` (one at a
time, taking turns at going first), each with ``wrk -t1 -c<connections>``:

(a) single reads, ``GET /v1.0/users/{id}/presence`` round-robin over ``--users`` users;
(b) writes, ``POST .../presence/setPresence`` round-robin over 200 users, as write_bench.py does (each lap
    over the users with the next of three availability/activity pairs, so that every write is a change);
(c) notifications: the same writes to ``--subscriptions`` users each watched by a webhook subscription
    whose receiver runs in a process of its own; notifications delivered per second, end to end (from
    the first write to the last arrival, once nothing is left pending);
(b) and (c) again at ``--light-connections`` (2), where a group-commit batch and a delivery POST carry one or two
    writes' worth instead of many: the cost of a write when the load does not batch it;

and, as the read's baseline, the bare ASGI app of harness.py answering with presenced's bytes. Each server
process is pinned to a core of its own (the children of ``--processes 2`` once they run, with ``taskset
-a -p``); wrk and the receiver get the cores left, or share all of them when none is left. Before and after
each measurement the script reads the CPU time (utime + stime in /proc/<pid>/stat) of the server processes,
of the PostgreSQL backends of the benchmark's database, of PostgreSQL's shared processes, of redis-server,
of wrk and of the receiver: CPU per request of each, from which docs/deployment.md ("Sizing") works out what
a core of each carries. Everything listens on 127.0.0.1 only. Results go to stdout and
bench/results/scale_bench.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import harness
from write_bench import WRITER_APP, set_presence_body

USER_NAMESPACE = uuid.UUID("3f1c9a7e-6b2d-4c8e-9a51-7d0e2f4b6c13")
#: Users the writes of (b) go round, as in write_bench.py.
WRITE_USERS = 200
PROCESS_COUNTS = (1, 2)
WRK_TIMEOUT = "10s"
HOOK_PATH = "/hook"
#: How long the deliveries of one measurement may take after its last write before it counts as a problem.
DELIVERY_TIMEOUT = 60.0
SUBSCRIPTION_MINUTES = 55
CREATE_CONCURRENCY = 8
TICKS = os.sysconf("SC_CLK_TCK")
#: The components whose CPU time is read, in the order the table shows them.
COMPONENTS = ("server", "postgres", "postgres_shared", "redis", "wrk", "receiver")
COMPONENT_NAMES = {
    "server": "server",
    "postgres": "PG backends",
    "postgres_shared": "PG shared",
    "redis": "redis",
    "wrk": "wrk",
    "receiver": "receiver",
}
#: What each round measures on each server: the single read, the writes and the notified writes at
#: ``--connections``, and the writes and notified writes again at ``--light-connections`` ("light": a batch
#: of group commit, and a delivery POST, carry one or two writes' worth instead of many).
KINDS = ("read", "write", "notify", "write_light", "notify_light")


def script_of(kind: str) -> str:
    """The wrk script of a kind: ``read``, ``write`` or ``notify``."""
    return kind.split("_")[0]


def is_light(kind: str) -> bool:
    return kind.endswith("_light")


# --------------------------------------------------------------------------- /proc


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3, the state, first); None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process (all its threads, live or ended), in seconds; None if it is gone."""
    fields = _stat(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / TICKS


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return None if fields is None else int(fields[1])


def children_of(pid: int) -> list[int]:
    """The child processes of ``pid`` (any of its threads'), from /proc/<pid>/task/<tid>/children."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tasks:
        try:
            found.update(int(p) for p in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
        except OSError:
            continue
    return sorted(found)


def started_at(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[19]) if fields is not None else 0


def cores_of(pid: int) -> str:
    """The cores the process may run on (``Cpus_allowed_list``), as the kernel has them."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def cores_text(cores: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(cores))


def pin(pid: int, core: int) -> None:
    """Pin every thread of ``pid`` to ``core`` (threads it starts later inherit it)."""
    subprocess.run(["taskset", "-a", "-p", "-c", str(core), str(pid)], capture_output=True, check=True, timeout=10)


# --------------------------------------------------------------------------- CPU accounting

Groups = dict[str, Callable[[], Iterable[int]]]
Snapshot = dict[str, dict[int, float]]


def snapshot(groups: Groups) -> Snapshot:
    taken: Snapshot = {}
    for name, pids in groups.items():
        seen: dict[int, float] = {}
        for pid in pids():
            cpu = cpu_seconds(pid)
            if cpu is not None:
                seen[pid] = cpu
        taken[name] = seen
    return taken


def spent(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per group between the two: a process seen only after started from 0 meanwhile (a process
    that ended meanwhile is not counted: the benchmark's processes and connections live through it)."""
    return {
        name: sum(cpu - before.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items()) for name, pids in after.items()
    }


@dataclass
class Postgres:
    """The PostgreSQL server's processes: the backends of the benchmark's database, and the rest."""

    postmaster: int
    database: str
    #: The benchmark's own connection (it checks the outbox), left out of the backends' CPU.
    own: int

    def _children(self) -> list[tuple[int, str]]:
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid == self.own or parent_of(pid) != self.postmaster:
                continue
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            found.append((pid, title))
        return found

    def backends(self) -> list[int]:
        """Processes serving connections to the benchmark's database (their title names it)."""
        return [pid for pid, title in self._children() if f" {self.database} " in f" {title} "]

    def shared(self) -> list[int]:
        """The postmaster and its children that serve no client connection (checkpointer, background and WAL
        writers, launchers): they work for every database of the server."""
        return [self.postmaster] + [
            pid
            for pid, title in self._children()
            if f" {self.database} " not in f" {title} " and "(" not in title and "[local]" not in title
        ]


class Database:
    """One connection of the benchmark's own to its database (on an event loop of its own)."""

    def __init__(self, url: str) -> None:
        import asyncpg

        self._runner = asyncio.Runner()
        self._conn = self._runner.run(asyncpg.connect(url, timeout=10))

    def value(self, query: str) -> Any:
        return self._runner.run(self._conn.fetchval(query))

    def close(self) -> None:
        try:
            self._runner.run(self._conn.close())
        finally:
            self._runner.close()

    def postgres(self, database: str) -> Postgres | None:
        """The server's processes, if they are visible here (not when PostgreSQL runs in another namespace)."""
        own = int(self.value("SELECT pg_backend_pid()"))
        postmaster = parent_of(own)
        if postmaster is None:
            return None
        return Postgres(postmaster, database, own)


# --------------------------------------------------------------------------- Redis


@dataclass
class Redis:
    url: str
    pid: int | None
    proc: subprocess.Popen[bytes] | None = None
    _client: Any = None

    def commands(self) -> int:
        """Commands Redis has processed so far (``INFO stats``), not counting this INFO itself."""
        import redis

        if self._client is None:
            self._client = redis.Redis.from_url(self.url)
        return int(self._client.info("stats")["total_commands_processed"])

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((harness.HOST, 0))
        return int(sock.getsockname()[1])


def start_redis(url: str | None, workdir: Path) -> Redis:
    """A private redis-server (no persistence) on a free loopback port; or the one at ``url``."""
    import redis

    if url is not None:
        client = redis.Redis.from_url(url)
        try:
            pid = int(client.info("server")["process_id"])
        finally:
            client.close()
        return Redis(url, pid if cpu_seconds(pid) is not None else None)
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed: install it, or give --redis-url")
    port = free_port()
    log = (workdir / "redis.log").open("wb")
    cmd = ["redis-server", "--bind", harness.HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Redis(f"redis://{harness.HOST}:{port}/0", proc.pid, proc)
    deadline = time.monotonic() + harness.STARTUP_TIMEOUT
    while True:
        try:
            client = redis.Redis.from_url(server.url, socket_connect_timeout=1)
            try:
                client.ping()
            finally:
                client.close()
            return server
        except redis.RedisError:
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"redis-server did not start: {(workdir / 'redis.log').read_text()}") from None
            time.sleep(0.05)


# --------------------------------------------------------------------------- the webhook receiver process


def serve_receiver() -> None:
    """A webhook receiver (``scale_bench.py --serve-receiver``): echoes validation tokens, counts notifications.

    ``GET /count`` answers with the notification items received, the distinct ones, the POSTs and the
    ``time.monotonic()`` of the last arrival (the clock is the machine's, the same in every process).
    """
    import gc

    import uvicorn
    import uvloop

    from presenced.cli.main import listen, server_config

    counts = {"items": 0, "posts": 0, "last": 0.0}
    ids: set[str] = set()

    async def respond(send: Any, status: int, body: bytes, content_type: bytes) -> None:
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", content_type)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        now = time.monotonic()
        if scope["path"] == "/count":
            answer = {**counts, "distinct": len(ids)}
            await respond(send, 200, json.dumps(answer).encode(), b"application/json")
            return
        token = urllib.parse.parse_qs(scope["query_string"].decode()).get("validationToken")
        if token:
            await respond(send, 200, token[0].encode(), b"text/plain; charset=utf-8")
            return
        items = json.loads(body)["value"]
        counts["posts"] += 1
        counts["items"] += len(items)
        counts["last"] = now
        ids.update(item["id"] for item in items)
        await respond(send, 202, b"", b"text/plain")

    sock = listen(harness.HOST, 0)
    print(f"receiver listening on http://{harness.HOST}:{sock.getsockname()[1]}", flush=True)

    async def run() -> None:
        gc.collect()
        gc.freeze()
        await uvicorn.Server(server_config(app)).serve(sockets=[sock])

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())


def receiver_counts(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/count", timeout=10) as response:
        counts: dict[str, Any] = json.loads(response.read())
        return counts


# --------------------------------------------------------------------------- data and requests


def generated_users(tenant_id: str, prefix: str, count: int) -> list[tuple[str, str, str]]:
    """(id, upn, display name) of generated users; ids are stable across runs."""
    return [
        (
            str(uuid.uuid5(USER_NAMESPACE, f"{tenant_id}:{prefix}:{i}")),
            f"{prefix}.user{i:04d}@contoso.example",
            f"{prefix.title()} User {i:04d}",
        )
        for i in range(count)
    ]


def read_path(user_id: str) -> str:
    return f"/v1.0/users/{user_id}/presence"


def read_script(path: Path, token: str, user_ids: list[str]) -> Path:
    """A wrk script that GETs the users' presences round-robin (each request formatted once)."""
    assert all("]==]" not in text for text in (token, *user_ids))
    paths = ",\n  ".join(f"[==[{read_path(user_id)}]==]" for user_id in user_ids)
    path.write_text(
        f"""-- generated by bench/scale_bench.py
local paths = {{
  {paths}
}}
local token = [==[{token}]==]
local requests = {{}}
local n = 0

function init(args)
  for i, p in ipairs(paths) do
    requests[i] = wrk.format("GET", p, {{ ["Host"] = wrk.headers["Host"], ["Authorization"] = "Bearer " .. token }})
  end
end

function request()
  n = n + 1
  return requests[(n - 1) % #requests + 1]
end
"""
    )
    return path


#: The setPresence pairs a user's writes go round, a lap over the users at a time. Three, not two: a run cut
#: short leaves each user at the lap it was cut in or the one before, and the next run starts a lap after it,
#: so that every write changes the visible presence (and, for a watched user, notifies once).
PAIRS = (("Available", "Available"), ("Busy", "InACall"), ("DoNotDisturb", "Presenting"))


def write_script(path: Path, token: str, user_ids: list[str]) -> Path:
    """A wrk script that POSTs setPresence round-robin over the users, each lap with the next pair; the
    script's argument is the number of the first request (so a run goes on a lap after the last one)."""

    def lua_string(text: str) -> str:
        assert "]==]" not in text
        return f"[==[{text}]==]"

    paths = ",\n  ".join(lua_string(f"/v1.0/users/{user_id}/presence/setPresence") for user_id in user_ids)
    bodies = ", ".join(lua_string(set_presence_body(*pair)) for pair in PAIRS)
    path.write_text(
        f"""-- generated by bench/scale_bench.py
local paths = {{
  {paths}
}}
local bodies = {{ {bodies} }}
local token = {lua_string(token)}
local requests = {{}}
local n = 0

function init(args)
  n = tonumber(args[1]) or 0
  for i, p in ipairs(paths) do
    for j, b in ipairs(bodies) do
      local headers = {{ ["Host"] = wrk.headers["Host"], ["Content-Type"] = "application/json",
                         ["Authorization"] = "Bearer " .. token }}
      requests[(i - 1) * #bodies + j] = wrk.format("POST", p, headers, b)
    end
  end
end

function request()
  -- user n mod #paths, with the pair of the lap n is in
  local i = n % #paths
  local j = math.floor(n / #paths) % #bodies
  n = n + 1
  return requests[i * #bodies + j + 1]
end
"""
    )
    return path


@dataclass
class Laps:
    """Where the next run of a write script starts: at the first lap none of the last run's requests reached."""

    users: int
    start: int = 0

    def after(self, completed: int, connections: int) -> None:
        """The last run completed ``completed`` requests and had at most ``connections`` more in flight."""
        sent = self.start + completed + connections
        self.start = -(-sent // self.users) * self.users


async def create_subscriptions(base_url: str, token: str, notification_url: str, users: list[str]) -> float:
    """One subscription per user (app-only, all to one URL, as one app's would be); the seconds it took."""
    import httpx

    expires = (datetime.now(UTC) + timedelta(minutes=SUBSCRIPTION_MINUTES)).strftime("%Y-%m-%dT%H:%M:%SZ")
    semaphore = asyncio.Semaphore(CREATE_CONCURRENCY)
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30, trust_env=False
    ) as client:

        async def create(n: int, user_id: str) -> None:
            body = {
                "changeType": "updated",
                "notificationUrl": notification_url,
                "resource": f"/communications/presences/{user_id}",
                "expirationDateTime": expires,
                "clientState": f"scale-{n}",
            }
            async with semaphore:
                response = await client.post("/v1.0/subscriptions", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"POST /v1.0/subscriptions answered {response.status_code}: {response.text[:300]}")

        await asyncio.gather(*(create(n, u) for n, u in enumerate(users)))
    return time.monotonic() - started


# --------------------------------------------------------------------------- wrk, measured


@dataclass
class Placement:
    """Which cores each part runs on: server process i on ``cores[i]``, wrk and the receiver on the rest (all of
    them when there is no rest); when not ``pinned``, every part may run on any of ``cores``."""

    pinned: bool
    cores: list[int]

    def server_core(self, index: int) -> int:
        return self.cores[index]

    @property
    def load_cores(self) -> list[int]:
        """wrk's and the receiver's: the cores no server process has, or all of them when none is left."""
        rest = self.cores[max(PROCESS_COUNTS) :]
        return rest if self.pinned and rest else self.cores

    @property
    def load_shares(self) -> bool:
        return not (self.pinned and self.cores[max(PROCESS_COUNTS) :])

    def load_prefix(self) -> list[str]:
        return ["taskset", "-c", cores_text(self.load_cores)] if self.pinned and not self.load_shares else []


def run_wrk(
    url: str, connections: int, duration: int, placement: Placement, workdir: Path, script: Path, *script_args: str
) -> tuple[harness.WrkResult, float]:
    """``wrk -t1 -c<connections> -d<duration>s --latency --timeout 10s -s script``: its result and its own CPU
    seconds (from wait4's resource usage)."""
    cmd = [*placement.load_prefix(), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    cmd += ["--timeout", WRK_TIMEOUT, "-s", str(script), url]
    if script_args:
        cmd += ["--", *script_args]
    out = workdir / "wrk.out"
    with out.open("wb") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    watchdog = threading.Timer(duration + 60, proc.kill)
    watchdog.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        watchdog.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {text.strip()}")
    return harness.parse_wrk(text), usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- servers


@dataclass
class Running:
    """A running ``presenced serve`` (``processes`` > 1: the supervisor and its server processes)."""

    label: str
    processes: int
    server: harness.Server
    #: The serving processes: the one, or the children, oldest first (the first runs the worker).
    serving: list[int]

    def pids(self) -> list[int]:
        return [self.server.proc.pid, *self.serving] if self.processes > 1 else [self.server.proc.pid]


def start_running(workdir: Path, processes: int, serve_args: list[str], placement: Placement) -> Running:
    label = "1 process" if processes == 1 else f"{processes} processes"
    extra = ["--processes", str(processes)] if processes > 1 else []
    name = f"presenced-{processes}p"
    # Not harness.start_presenced (port 0): every server of the run listens on the same port, one at a time, so
    # that its URL, the tokens' issuer, is the same for all of them.
    command = harness.presenced_cmd("serve", "--http", "--throttle", "off", *serve_args, *extra)
    server = harness.start_server(name, command, workdir)
    try:
        harness.wait_ready(f"{server.url}/health")
        pid = server.proc.pid
        serving = [pid]
        if processes > 1:
            deadline = time.monotonic() + harness.STARTUP_TIMEOUT
            while len(children_of(pid)) < processes:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: {len(children_of(pid))} of {processes} server processes started")
                time.sleep(0.05)
            serving = sorted(children_of(pid), key=started_at)
        if placement.pinned:
            if processes > 1:
                pin(pid, placement.server_core(0))  # the supervisor only waits
            for index, child in enumerate(serving):
                pin(child, placement.server_core(index))
        return Running(label, processes, server, serving)
    except BaseException:
        stop(Running(label, processes, server, []))
        raise


#: What a server may log while it stops: a background job's query that the shutdown cancels is reported as the
#: database being unavailable (the store's outage hook turns the CancelledError into ServiceUnavailable, and the
#: job, taking it for an outage, carries on, so that the process may not stop at all: ``stop`` kills it). A
#: note, not a problem: it happens after the measurements, and no request is refused.
SHUTDOWN_CANCEL = "the database is unavailable (CancelledError"
#: What the same cause makes the metrics' measurements say while the process stops.
SHUTDOWN_UNAVAILABLE = "ServiceUnavailable("


#: How long a server may take to stop: its shutdown timeout (10 s), and more for the supervisor.
STOP_TIMEOUT = 20.0
STOP_NOTE_SECONDS = 5.0


def stop(running: Running) -> tuple[float, bool]:
    """SIGTERM to the server (the supervisor passes it on to its processes) and wait; past STOP_TIMEOUT, SIGKILL
    to its server processes and then to it, so that none is left behind. The seconds it took, and whether it
    had to be killed."""
    started = time.monotonic()
    proc = running.server.proc
    killed = False
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            killed = True
            # The directory --processes shares its metrics through, which the supervisor would have removed.
            shared = metrics_directory(proc.pid) if running.processes > 1 else None
            for pid in children_of(proc.pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
            if shared is not None:
                shutil.rmtree(shared, ignore_errors=True)
    return time.monotonic() - started, killed


def metrics_directory(pid: int) -> Path | None:
    """The directory ``serve --processes`` shares its metrics through (``presenced-metrics-*``), found from the
    files its server processes hold open; None if none is found."""
    for child in children_of(pid):
        try:
            fds = os.listdir(f"/proc/{child}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = Path(os.readlink(f"/proc/{child}/fd/{fd}"))
            except OSError:
                continue
            if target.parent.name.startswith("presenced-metrics-"):
                return target.parent
    return None


def shorten(line: str, limit: int = 400) -> str:
    """A log line in a few words: a JSON line's level, logger, message and the first exception of its traceback
    (the root cause), cut to ``limit`` characters (a statement in a traceback may list a thousand parameters)."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if isinstance(record, dict) and "message" in record:
        text = f"{record.get('level')} {record.get('logger')}: {record['message']}"
        error = str(record.get("error") or "")
        causes = [
            row
            for row in error.splitlines()
            if row and not row[0].isspace() and ": " in row and not row.startswith(("Traceback", "The above", "During"))
        ]
        if causes:
            text += f" ({causes[0]})"
        line = text
    return line if len(line) <= limit else line[:limit] + f"... ({len(line) - limit:,} more characters)"


def stop_running(running: Running, problems: list[str], notes: list[str]) -> None:
    """Stop the server: anything it wrote to stderr while it ran is a problem; what it writes while it stops is
    a note if it is the cancelled query above, else a problem too."""
    server = running.server
    if server.proc.poll() is not None:
        problems.append(f"{server.name} exited during the run with {server.proc.returncode}")
    elif running.processes > 1 and sorted(children_of(server.proc.pid)) != sorted(running.serving):
        problems.append(f"{server.name}: a server process was started again during the run")
    ran = server.stderr_tail(10_000).splitlines()
    took, killed = stop(running)
    if killed:
        notes.append(f"{server.name} had not stopped {STOP_TIMEOUT:.0f} s after SIGTERM: killed")
    elif took > STOP_NOTE_SECONDS:
        notes.append(f"{server.name} took {took:.1f} s to stop")
    stopping = server.stderr_tail(10_000).splitlines()[len(ran) :]
    if ran:
        problems.append(f"{server.name} stderr: " + "\n".join(shorten(line) for line in ran[-20:]))
    cancelled = [line for line in stopping if SHUTDOWN_CANCEL in line or SHUTDOWN_UNAVAILABLE in line]
    for line in cancelled[:2]:
        notes.append(f"{server.name}, while stopping: {shorten(line)}")
    others = [line for line in stopping if line not in cancelled]
    if others:
        problems.append(f"{server.name} stderr while stopping: " + "\n".join(shorten(line) for line in others[-20:]))


# --------------------------------------------------------------------------- measurements


@dataclass
class Measurement:
    """One measured run: its rate, what was done, and the CPU seconds each component spent meanwhile."""

    kind: str
    label: str
    #: Requests/s (wrk's); for notifications, notifications delivered per second, end to end.
    rate: float
    #: Requests completed; for notifications, notifications delivered.
    count: int
    seconds: float
    cpu: dict[str, float]
    wrk: harness.WrkResult
    #: CPU seconds of each server process (more than one with --processes).
    per_process: list[float] = field(default_factory=list)
    redis_commands: int = 0
    postgres_connections: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: What each component spends with the same server running and no load (CPU seconds per second): its
    #: background work (the sweeper, the workers' polls, Redis's and PostgreSQL's own), left out of ``micros``.
    idle: dict[str, float] = field(default_factory=dict)

    def micros(self, component: str) -> float | None:
        """CPU microseconds per request (notification) of the component, less what it spends idle in the same
        time; None if it was not measured."""
        cpu = self.cpu.get(component)
        if cpu is None or not self.count:
            return None
        return max(cpu - self.idle.get(component, 0.0) * self.seconds, 0.0) / self.count * 1e6

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cpu_us_per_request"] = {c: self.micros(c) for c in self.cpu}
        data["cpu_us_per_request_with_idle"] = {c: cpu / self.count * 1e6 for c, cpu in self.cpu.items() if self.count}
        data["busy"] = {c: cpu / self.seconds for c, cpu in self.cpu.items()}
        return data


@dataclass
class Rig:
    """What every measurement needs."""

    args: argparse.Namespace
    workdir: Path
    placement: Placement
    postgres: Postgres | None
    redis: Redis
    database: Database
    receiver: harness.Server
    problems: list[str]
    scripts: dict[str, Path]
    #: Where each write script's next run starts.
    laps: dict[str, Laps]

    def groups(self, server_pids: Callable[[], Iterable[int]], with_receiver: bool) -> Groups:
        groups: Groups = {"server": server_pids}
        if self.postgres is not None:
            groups["postgres"] = self.postgres.backends
            groups["postgres_shared"] = self.postgres.shared
        if self.redis.pid is not None:
            pid = self.redis.pid
            groups["redis"] = lambda: [pid]
        if with_receiver:
            receiver = self.receiver.proc.pid
            groups["receiver"] = lambda: [receiver]
        return groups

    def measure(
        self, kind: str, label: str, url: str, pids: Callable[[], Iterable[int]], serving: list[int], seconds: int
    ) -> Measurement:
        """wrk with the kind's script against ``url``; for notifications, until every one is delivered."""
        notify = script_of(kind) == "notify"
        connections = self.args.light_connections if is_light(kind) else self.args.connections
        groups = self.groups(pids, notify)
        groups.update({f"process {i}": (lambda p=pid: [p]) for i, pid in enumerate(serving, 1)})
        if notify:
            counted = receiver_counts(self.receiver.url)
            delivered = int(self.database.value("SELECT count(*) FROM notifications WHERE state = 'delivered'"))
        commands = self.redis.commands()
        before = snapshot(groups)
        started = time.monotonic()
        laps = self.laps.get(script_of(kind))
        start = [str(laps.start)] if laps is not None else []
        result, wrk_cpu = run_wrk(
            url, connections, seconds, self.placement, self.workdir, self.scripts[script_of(kind)], *start
        )
        if laps is not None:
            laps.after(result.requests, connections)
        extra: dict[str, Any] = {}
        rate, count = result.rps, result.requests
        if notify:
            time.sleep(0.2)  # the writes wrk left in flight are committed (and their notifications queued) by now
            arrived, extra = self.wait_delivered(counted, delivered, label)
            count = arrived["distinct"] - counted["distinct"]
            last = arrived["last"]
            rate = count / (last - started) if count and last > started else 0.0
            extra["writes"] = result.requests
            extra["writes_per_s"] = result.rps
            extra["notifications_per_write"] = count / result.requests if result.requests else 0.0
            extra["last_arrival_after_writes_s"] = last - started - seconds
        after = snapshot(groups)
        finished = time.monotonic()
        harness.note_errors(f"{label} {kind}", result, self.problems)
        cpu = spent(before, after)
        cpu["wrk"] = wrk_cpu
        per_process = [cpu.pop(f"process {i}") for i in range(1, len(serving) + 1)]
        return Measurement(
            kind,
            label,
            rate,
            count,
            finished - started,
            cpu,
            result,
            per_process if len(serving) > 1 else [],
            self.redis.commands() - commands - 1,  # less this script's own INFO
            len(after.get("postgres", {})),
            extra,
        )

    def idle(self, pids: Callable[[], Iterable[int]], seconds: int) -> dict[str, float]:
        """What each component spends, in CPU seconds per second, while the server runs with no load."""
        groups = self.groups(pids, False)
        before = snapshot(groups)
        started = time.monotonic()
        time.sleep(seconds)
        after = snapshot(groups)
        elapsed = time.monotonic() - started
        return {component: cpu / elapsed for component, cpu in spent(before, after).items()}

    def wait_delivered(self, counted: dict[str, Any], delivered: int, label: str) -> tuple[dict[str, Any], Any]:
        """Wait until nothing is pending and the receiver has every notification delivered since ``delivered``."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while True:
            pending = int(self.database.value("SELECT count(*) FROM notifications WHERE state = 'pending'"))
            arrived = receiver_counts(self.receiver.url)
            if pending == 0:
                now = int(self.database.value("SELECT count(*) FROM notifications WHERE state = 'delivered'"))
                if arrived["distinct"] - counted["distinct"] >= now - delivered:
                    return arrived, {"delivered_by_the_store": now - delivered, "pending": 0}
            if time.monotonic() > deadline:
                self.problems.append(
                    f"{label} notify: {pending} notifications still pending {DELIVERY_TIMEOUT:.0f} s after the writes"
                )
                return arrived, {"pending": pending}
            time.sleep(0.05)


def describe_rate(m: Measurement) -> str:
    if script_of(m.kind) == "notify":
        return (
            f"writes {harness.fmt_rps(m.extra['writes_per_s'])}/s, notifications {harness.fmt_rps(m.rate)}/s "
            f"end to end ({m.extra['notifications_per_write']:.2f} per write)"
        )
    return harness.describe(m.wrk)


def describe_busy(m: Measurement) -> str:
    parts = [f"server {m.cpu['server'] / m.seconds:.0%}"]
    if m.per_process:
        parts[0] += " (" + " + ".join(f"{cpu / m.seconds:.0%}" for cpu in m.per_process) + ")"
    for component in COMPONENTS[1:]:
        if component in m.cpu:
            parts.append(f"{COMPONENT_NAMES[component]} {m.cpu[component] / m.seconds:.0%}")
    return "busy: " + ", ".join(parts)


# --------------------------------------------------------------------------- the benchmark


def benchmark(args: argparse.Namespace, workdir: Path, _pin: bool) -> dict[str, Any]:
    problems: list[str] = []
    notes: list[str] = []
    cores = sorted(os.sched_getaffinity(0))
    pinned = not args.no_pin and shutil.which("taskset") is not None and len(cores) >= max(PROCESS_COUNTS)
    if not args.no_pin and not pinned:
        print(f"note: not pinning (needs taskset and {max(PROCESS_COUNTS)} cores)", flush=True)
    placement = Placement(pinned, cores)
    load_before = os.getloadavg()
    admin_url = args.postgres_admin_url
    pg_url = harness.create_database(admin_url)
    if pg_url is None:
        print("this benchmark needs PostgreSQL (--postgres-admin-url)", flush=True)
        raise SystemExit(2)
    database_name = pg_url.rpartition("/")[2]
    redis = start_redis(args.redis_url, workdir)
    database: Database | None = None
    rounds: list[dict[str, Any]] = []
    placements: dict[str, str] = {}
    try:
        data_dir = workdir / "data"
        store_args = ["--data-dir", str(data_dir), "--database-url", pg_url]
        demo = json.loads(harness.run_cli("demo", *store_args, "--json"))
        tenant_id = demo["tenantId"]
        read_users = generated_users(tenant_id, "read", args.users)
        write_users = generated_users(tenant_id, "write", WRITE_USERS)
        hook_users = generated_users(tenant_id, "hook", args.subscriptions)
        started = time.monotonic()
        everyone = read_users + write_users + hook_users
        asyncio.run(asyncio.wait_for(harness.add_users(data_dir, tenant_id, everyone, pg_url), timeout=300))
        print(f"added {len(everyone):,} users in {time.monotonic() - started:.1f} s", flush=True)
        database = Database(pg_url)
        postgres = database.postgres(database_name)
        if postgres is None:
            print("note: PostgreSQL's processes are not visible here: its CPU is not measured", flush=True)
        if redis.pid is None:
            print("note: redis-server's process is not visible here: its CPU is not measured", flush=True)

        with harness.serving(problems) as servers:
            receiver = harness.start_server(
                "receiver",
                [*placement.load_prefix(), sys.executable, str(Path(__file__).resolve()), "--serve-receiver"],
                workdir,
            )
            servers.append(receiver)
            harness.wait_answering(receiver.url, "/count")
            # Every server of the run listens on this port (one at a time): one URL, one token issuer.
            port = free_port()
            public_url = f"http://{harness.HOST}:{port}"
            serve_args = [*store_args, "--redis-url", redis.url, "--allow-loopback-webhooks", "--port", str(port)]
            read_token, write_token = (
                harness.run_cli("token", *store_args, "--app", WRITER_APP, "--roles", role, "--url", public_url).strip()
                for role in ("Presence.Read.All", "Presence.ReadWrite.All")
            )
            scripts = {
                "read": read_script(workdir / "read.lua", read_token, [u for u, _, _ in read_users]),
                "write": write_script(workdir / "write.lua", write_token, [u for u, _, _ in write_users]),
                "notify": write_script(workdir / "notify.lua", write_token, [u for u, _, _ in hook_users]),
            }
            laps = {"write": Laps(WRITE_USERS), "notify": Laps(args.subscriptions)}
            rig = Rig(args, workdir, placement, postgres, redis, database, receiver, problems, scripts, laps)

            # Set up (subscriptions) and check the answers with a first server; the baseline takes its answer.
            setup = start_running(workdir, 1, serve_args, placement)
            try:
                took = asyncio.run(
                    create_subscriptions(
                        setup.server.url, read_token, receiver.url + HOOK_PATH, [u for u, _, _ in hook_users]
                    )
                )
                print(f"created {len(hook_users)} subscriptions in {took:.1f} s", flush=True)
                answer = harness.fetch(setup.server.url + read_path(read_users[0][0]), read_token)
                if answer.status != 200 or b'"availability"' not in answer.body:
                    raise RuntimeError(f"GET {read_path(read_users[0][0])} answered {answer.status} {answer.body!r}")
                for user_id in (write_users[0][0], hook_users[0][0]):
                    path = f"/v1.0/users/{user_id}/presence/setPresence"
                    wrote = harness.fetch(
                        setup.server.url + path, write_token, set_presence_body("Busy", "InACall").encode()
                    )
                    if wrote.status != 200 or wrote.body:
                        raise RuntimeError(f"POST {path} answered {wrote.status} {wrote.body!r}")
            finally:
                stop_running(setup, problems, notes)

            baseline = harness.start_baseline("baseline", workdir, False, answer=answer)
            servers.append(baseline)
            if placement.pinned:
                pin(baseline.proc.pid, placement.server_core(0))
            harness.same_answer(
                "GET presence", harness.fetch(baseline.url + read_path(read_users[0][0]), read_token), answer
            )
            base_pids = [baseline.proc.pid]
            placements["bare ASGI"] = cores_of(baseline.proc.pid)
            placements["wrk (-t1)"] = cores_text(placement.load_cores) + (
                " (shared with the servers)" if placement.load_shares else ""
            )
            placements["webhook receiver"] = cores_of(receiver.proc.pid)
            if postgres is not None:
                placements["PostgreSQL"] = f"{cores_of(postgres.postmaster)} (not pinned: a server of the machine's)"
            if redis.pid is not None:
                placements["redis-server"] = f"{cores_of(redis.pid)} (not pinned)"
            print(
                f"wrk -t1 -c{args.connections} (light: -c{args.light_connections}) -d{args.duration}s; reads over "
                f"{args.users:,} users, writes over "
                f"{WRITE_USERS}, notifications: writes over {args.subscriptions} subscribed users; "
                f"{len(cores)} cores, pinned: {placement.pinned}",
                flush=True,
            )
            rig.measure("read", "bare ASGI", baseline.url + "/", lambda: base_pids, [], harness.WARMUP_SECONDS)

            for n in range(1, args.rounds + 1):
                results: dict[str, Any] = {}
                base = rig.measure("read", "bare ASGI", baseline.url + "/", lambda: base_pids, [], args.duration)
                results["baseline"] = base
                print(f"round {n}: bare ASGI read {describe_rate(base)} | {describe_busy(base)}", flush=True)
                order = PROCESS_COUNTS if n % 2 else tuple(reversed(PROCESS_COUNTS))
                for processes in order:
                    running = start_running(workdir, processes, serve_args, placement)
                    try:
                        placements.setdefault(
                            f"presenced, {running.label}", " | ".join(cores_of(p) for p in running.serving)
                        )
                        url = running.server.url + "/"
                        for kind in KINDS:  # warm up; not recorded
                            rig.measure(kind, running.label, url, running.pids, running.serving, harness.WARMUP_SECONDS)
                        idle = rig.idle(running.pids, args.duration)
                        results[f"idle_{processes}"] = idle
                        print(
                            f"  {running.label:<11} {'idle':<12} "
                            + ", ".join(f"{COMPONENT_NAMES[c]} {v:.1%}" for c, v in idle.items()),
                            flush=True,
                        )
                        for kind in KINDS:
                            m = rig.measure(kind, running.label, url, running.pids, running.serving, args.duration)
                            m.idle = idle
                            results[f"{kind}_{processes}"] = m
                            ratio = f" | {harness.ratio(m.rate, base.rate):.2f}x bare ASGI" if kind == "read" else ""
                            print(
                                f"  {running.label:<11} {kind:<12} {describe_rate(m)}{ratio} | {describe_busy(m)}",
                                flush=True,
                            )
                    finally:
                        stop_running(running, problems, notes)
                for kind in KINDS:
                    one, two = results[f"{kind}_1"], results[f"{kind}_2"]
                    results[f"{kind}_ratio"] = harness.ratio(two.rate, one.rate)
                print("  2 processes / 1: " + ", ".join(f"{k} {results[f'{k}_ratio']:.2f}x" for k in KINDS), flush=True)
                rounds.append(results)
    finally:
        if database is not None:
            database.close()
        harness.drop_database(admin_url, pg_url)
        redis.stop()
    return summarise(args, placement, placements, rounds, problems, notes, load_before, os.getloadavg(), redis)


def summarise(
    args: argparse.Namespace,
    placement: Placement,
    placements: dict[str, str],
    rounds: list[dict[str, Any]],
    problems: list[str],
    notes: list[str],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    redis: Redis,
) -> dict[str, Any]:
    keys = ["baseline", *(f"{kind}_{p}" for kind in KINDS for p in PROCESS_COUNTS)]
    medians: dict[str, Any] = {}
    for key in keys:
        ms: list[Measurement] = [r[key] for r in rounds]
        med: dict[str, Any] = {
            "rate": statistics.median(m.rate for m in ms),
            "p50_ms": statistics.median(m.wrk.p50_ms for m in ms),
            "p99_ms": statistics.median(m.wrk.p99_ms for m in ms),
            "cpu_us": {},
            "busy": {},
            "redis_commands_per_request": statistics.median(m.redis_commands / m.count if m.count else 0 for m in ms),
            "postgres_connections": max(m.postgres_connections for m in ms),
        }
        for component in COMPONENTS:
            values = [m.micros(component) for m in ms]
            if all(v is not None for v in values):
                med["cpu_us"][component] = statistics.median(v for v in values if v is not None)
                med["busy"][component] = statistics.median(m.cpu[component] / m.seconds for m in ms)
        if ms[0].per_process:
            med["busy_per_process"] = [
                statistics.median(m.per_process[i] / m.seconds for m in ms) for i in range(len(ms[0].per_process))
            ]
        if script_of(ms[0].kind) == "notify":
            med["writes_per_s"] = statistics.median(m.extra["writes_per_s"] for m in ms)
            med["notifications_per_write"] = statistics.median(m.extra["notifications_per_write"] for m in ms)
        medians[key] = med
    # What a request costs does not depend on how many processes share the load: the median over every
    # measurement of the kind (rounds x process counts) is the figure least moved by a disturbed one.
    pooled: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        ms = [r[f"{kind}_{p}"] for r in rounds for p in PROCESS_COUNTS]
        pooled[kind] = {}
        for component in COMPONENTS:
            values = [m.micros(component) for m in ms]
            if all(v is not None for v in values):
                pooled[kind][component] = statistics.median(v for v in values if v is not None)
        pooled[kind]["redis_commands"] = statistics.median(m.redis_commands / m.count if m.count else 0 for m in ms)
    ratios = {
        kind: {
            "ratio_of_medians": harness.ratio(medians[f"{kind}_2"]["rate"], medians[f"{kind}_1"]["rate"]),
            "median_of_ratios": statistics.median(r[f"{kind}_ratio"] for r in rounds),
        }
        for kind in KINDS
    }
    read_vs_bare = {
        f"read_{p}": {
            "ratio_of_medians": harness.ratio(medians[f"read_{p}"]["rate"], medians["baseline"]["rate"]),
            "median_of_ratios": statistics.median(r[f"read_{p}"].rate / r["baseline"].rate for r in rounds),
        }
        for p in PROCESS_COUNTS
    }
    return {
        "config": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "connections": args.connections,
            "light_connections": args.light_connections,
            "users": args.users,
            "write_users": WRITE_USERS,
            "subscriptions": args.subscriptions,
            "redis": "private redis-server" if redis.proc is not None else "--redis-url",
            "load_average_before": load_before,
            "load_average_after": load_after,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "postgres": True,
            **harness.machine(placement.pinned),
            "cores": placement.cores,
        },
        "placement": placements,
        "rounds": [{k: (v.as_json() if isinstance(v, Measurement) else v) for k, v in r.items()} for r in rounds],
        "median": medians,
        "cpu_us_all_measurements": pooled,
        "idle": {
            str(p): {
                c: statistics.median(r[f"idle_{p}"][c] for r in rounds)
                for c in rounds[0][f"idle_{p}"]
                if all(c in r[f"idle_{p}"] for r in rounds)
            }
            for p in PROCESS_COUNTS
        },
        "two_over_one": ratios,
        "read_over_bare_asgi": read_vs_bare,
        "notes": notes,
        "problems": problems,
    }


def label(kind: str, config: dict[str, Any]) -> str:
    """What the summary calls a kind of measurement."""
    name = {
        "baseline": "bare ASGI, single read",
        "read": "single read (GET presence)",
        "write": f"setPresence, {WRITE_USERS} users",
        "notify": "notified setPresence",
    }[script_of(kind)]
    return name + (f", -c{config['light_connections']}" if is_light(kind) else "")


def print_summary(results: dict[str, Any]) -> None:
    config, med = results["config"], results["median"]
    load = " ".join(f"{v:.2f}" for v in config["load_average_before"])
    print()
    print(
        f"summary: medians of {config['rounds']} rounds of {config['duration_s']} s, "
        f"wrk -t1 -c{config['connections']} (light: -c{config['light_connections']}), "
        f"PostgreSQL and {config['redis']}, {len(config['cores'])} cores; "
        f"load average at the start {load}"
    )
    print("cores (as each process's affinity reads):")
    for part, cores in results["placement"].items():
        print(f"  {part:<24} {cores}")
    print()
    header = f"{'measurement':<48} {'1 process':>11} {'2 processes':>12}  {'2/1':<14}  p99 ms (1; 2)"
    print(header)
    print("-" * len(header))
    base = med["baseline"]
    name = label("baseline", config) + ", req/s"
    print(f"{name:<48} {harness.fmt_rps(base['rate']):>11} {'':>12}  {'':<14}  {base['p99_ms']:.2f}")
    for kind in KINDS:
        one, two = med[f"{kind}_1"], med[f"{kind}_2"]
        r = results["two_over_one"][kind]
        notify = script_of(kind) == "notify"
        name = label(kind, config) + (": notifications/s" if notify else ", req/s")
        print(
            f"{name:<48} {harness.fmt_rps(one['rate']):>11} {harness.fmt_rps(two['rate']):>12}  "
            f"{r['ratio_of_medians']:.2f}x; {r['median_of_ratios']:.2f}x  {one['p99_ms']:.2f}; {two['p99_ms']:.2f}"
        )
        if notify:
            print(
                f"{'  (their writes/s)':<48} {harness.fmt_rps(one['writes_per_s']):>11} "
                f"{harness.fmt_rps(two['writes_per_s']):>12}"
            )
    bare = results["read_over_bare_asgi"]
    print(
        f"single read over bare ASGI: 1 process {bare['read_1']['ratio_of_medians']:.2f}x, "
        f"2 processes {bare['read_2']['ratio_of_medians']:.2f}x"
    )
    print()
    print(
        "CPU per request, microseconds, less what each part spends idle meanwhile (per notification delivered for "
        "the notified writes, its write included):"
    )
    header = (
        f"{'':<48}" + "".join(f"{COMPONENT_NAMES[c]:>12}" for c in COMPONENTS) + f"{'redis cmds':>12}{'PG conns':>10}"
    )
    print(header)
    print("-" * len(header))
    for key in ["baseline", *(f"{kind}_{p}" for kind in KINDS for p in PROCESS_COUNTS)]:
        m = med[key]
        if key == "baseline":
            name = label(key, config)
        else:
            kind, _, p = key.rpartition("_")
            name = f"{label(kind, config)}, {p} process{'es' * (p != '1')}"
        cells = "".join(f"{m['cpu_us'][c]:>12.1f}" if c in m["cpu_us"] else f"{'-':>12}" for c in COMPONENTS)
        print(f"{name:<48}{cells}{m['redis_commands_per_request']:>12.2f}{m['postgres_connections']:>10}")
    print()
    pooled = results["cpu_us_all_measurements"]
    parts = {"presenced": ("server",), "PostgreSQL": ("postgres", "postgres_shared"), "redis-server": ("redis",)}
    header = f"{'what one core carries (median cost of the kind)':<48}" + "".join(f"{p:>20}" for p in parts)
    print(header)
    print("-" * len(header))
    for kind in KINDS:
        costs = pooled[kind]
        cells = []
        for part, of in parts.items():
            if not all(c in costs for c in of) or (part == "redis-server" and costs["redis_commands"] < 0.001):
                cells.append(f"{'-':>20}")  # not measured, or (Redis on a read) no part in it: its own idle work
                continue
            micros = sum(costs[c] for c in of)
            cells.append(f"{capacity(micros) + '/s (' + format(micros, '.0f') + ' us)':>20}")
        print(f"{label(kind, config):<48}" + "".join(cells))
    print(
        f"(per request, the median over the {config['rounds']} rounds x 1 and 2 processes; PostgreSQL: backends and "
        "shared processes)"
    )
    for p, idle in results["idle"].items():
        print(
            f"idle, {p} process{'es' * (p != '1')} running, share of a core: "
            + ", ".join(f"{COMPONENT_NAMES[c]} {v:.1%}" for c, v in idle.items())
        )
    busy = [f"{key.replace('_', ' ')} " + " + ".join(f"{b:.0%}" for b in med[key]["busy_per_process"])
            for key in med if "busy_per_process" in med[key]]  # fmt: skip
    if busy:
        print("each of the 2 server processes' share of a core: " + "; ".join(busy))
    for note in results["notes"]:
        print(f"note: {note}")
    for problem in results["problems"]:
        print(f"problem: {problem}")


def capacity(micros: float) -> str:
    return "-" if micros <= 0 else harness.fmt_rps(1e6 / micros)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-receiver", action="store_true", help=argparse.SUPPRESS)
    harness.add_measurement_options(
        parser, duration=5, connections=32, connections_help="wrk connections, for every measurement (default 32)"
    )
    parser.add_argument(
        "--light-connections",
        type=int,
        default=2,
        help="wrk connections for the writes and notified writes at light load (default 2)",
    )
    parser.add_argument("--users", type=int, default=1000, help="users the reads go round (default 1000)")
    parser.add_argument(
        "--subscriptions",
        type=int,
        default=200,
        help="users watched by a subscription, written to in (c) (default 200)",
    )
    parser.add_argument("--no-pin", action="store_true", help="pin nothing")
    parser.add_argument(
        "--postgres-admin-url",
        default=harness.DEFAULT_ADMIN_URL,
        help=f"a database to create (and drop) the benchmark's own database from (default {harness.DEFAULT_ADMIN_URL})",
    )
    parser.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    args = parser.parse_args(argv)
    if args.serve_receiver:
        serve_receiver()
        return 0
    if harness.missing_wrk():
        return 2
    if min(args.duration, args.rounds, args.connections, args.light_connections, args.users, args.subscriptions) < 1:
        parser.error("--duration, --rounds, --connections, --light-connections, --users and --subscriptions: 1 or more")
    return harness.run("scale_bench", args, benchmark, print_summary)


if __name__ == "__main__":
    sys.exit(main())
