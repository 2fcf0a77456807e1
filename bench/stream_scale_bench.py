"""Live streams and webhooks at scale: 10,000 SSE clients on one server process, and 1,000 webhook
subscriptions on one user, each against a baseline measured in the same run.

Run:  .venv/bin/python bench/stream_scale_bench.py [--quick] [--clients N] [--writes N] [--subscriptions N]
      [--no-pin]

1. The bare server (this script, ``--serve-bare``, on uvloop: accepts a connection, answers its request with a
   chunked 200 and one event, keeps it; on ``POST /fire`` answers 200, then writes one event, the same bytes,
   to every connection): its RSS with no client and with ``--clients`` connections, and the time from
   ``/fire``'s 200 to the event at each client.
2. presenced (``serve --http --demo``): its RSS with no stream open (after a warm-up) and with ``--clients``
   streams (``GET /_stream/presences?ids=<one user>``, all watching the same user, an app-only token); then
   ``--writes`` setPresence writes of that user, one at a time: the time from the write's 200 to its event
   at each client; then the same with ``--few`` of the streams left open.
3. Webhooks: ``--subscriptions`` subscriptions on one other user, each with its own notification URL on a
   receiver in this process (uvicorn, a bare ASGI app); ``--writes`` writes of that user, one at a time: the
   time from the write's 200 to the last of its notifications answered. Baseline, after each write: this
   process POSTs a body of the same size to the same receiver as many times, all at once, over 64 kept-alive
   connections (plain asyncio sockets), as many as presenced keeps to one receiver.

The server (presenced or the bare one) runs on core 0, this process (clients, writer, receiver) on core 1, unless
``--no-pin``. RSS is VmRSS of /proc/<pid>/status. Results go to stdout and bench/results/stream_scale_bench.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import harness
from harness import ratio
from presenced.services.demo import DEMO_DAEMON_APP_ID

DEFAULTS = {"clients": 10_000, "few": 1_000, "writes": 20, "subscriptions": 1_000}
QUICK = {"clients": 2_000, "few": 200, "writes": 8, "subscriptions": 200}
#: Unrecorded writes (or fires) before each latency measurement.
WARMUP = 2
#: Connections opened at a time.
OPEN_CONCURRENCY = 200
#: Seconds to wait, after the clients are connected, before reading the server's RSS.
SETTLE_SECONDS = 3.0
#: How long all the events (or notifications) of one write may take before the benchmark gives up.
ARRIVAL_TIMEOUT = 30.0
#: Pause between two writes, so that each is measured alone.
PAUSE = 0.3
PAIRS = (("Available", "Available"), ("Busy", "InACall"))
SUBSCRIBE_CONCURRENCY = 16
#: Connections presenced keeps to one receiver (``notify.outbound.Connections``), and the baseline's.
PER_RECEIVER = 64
HOOK_PATH = "/hook/"
BASELINE_PATH = "/baseline"
#: Open files this process needs beyond its clients.
SPARE_FILES = 512


# --------------------------------------------------------------------------- figures


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summary(seconds: list[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": max(ms)}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def raise_open_files(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < needed:
        raise RuntimeError(f"this process may open {soft} files (ulimit -Hn), {needed} are needed")
    return soft


# --------------------------------------------------------------------------- the bare server


def serve_bare() -> None:
    """The baseline server: keeps every connection; ``POST /fire`` sends one event to all of them."""
    import gc

    import uvloop

    from presenced.cli.main import listen

    raise_open_files(0)
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    fired = 0
    connections: set[Bare] = set()

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n" % len(data) + data + b"\r\n"

    def event(n: int) -> bytes:
        body = json.dumps({"id": str(uuid.UUID(int=n)), "availability": "Busy", "filler": "x" * 380})
        return b"event: presence\nid: " + b"%020d" % n + b"\ndata: " + body.encode() + b"\n\n"

    class Bare(asyncio.Protocol):
        __slots__ = ("request", "transport")

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.request = b""

        def data_received(self, data: bytes) -> None:
            nonlocal fired
            if self.request is None:
                return
            self.request += data
            if b"\r\n\r\n" not in self.request:
                return
            if self.request.startswith(b"POST /fire"):
                self.request = b""
                self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                fired += 1
                framed = chunk(event(fired))  # encoded once, the same bytes to every connection
                for connection in connections:
                    connection.transport.write(framed)
                return
            self.request = None  # a stream: nothing more is read
            connections.add(self)
            self.transport.write(head + chunk(b"retry: 2000\n\n" + event(0)))

        def connection_lost(self, exc: Exception | None) -> None:
            connections.discard(self)

    sock = listen(harness.HOST, 0)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Bare, sock=sock, backlog=2048)
        print(f"bare listening on http://{harness.HOST}:{sock.getsockname()[1]}", flush=True)
        gc.collect()
        gc.freeze()
        await server.serve_forever()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())


# --------------------------------------------------------------------------- clients


class Client(asyncio.Protocol):
    """One SSE connection: the time of the latest event that arrived (``arrived``), nothing else kept."""

    __slots__ = ("arrived", "events", "headed", "opened", "request", "transport")

    def __init__(self, request: bytes, opened: asyncio.Future[None]) -> None:
        self.request = request
        self.opened: asyncio.Future[None] | None = opened
        self.headed = False
        self.arrived = 0.0
        self.events = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.headed:
            self.headed = True
            if not data.startswith(b"HTTP/1.1 200") and self.opened is not None:
                self.opened.set_exception(RuntimeError(f"answered {data[:120]!r}"))
                self.opened = None
                return
        if b"event: presence" not in data:
            return  # the head alone, or a keep-alive
        self.arrived = time.monotonic()
        self.events += 1
        if self.opened is not None:  # the current presence: the stream is listening
            self.opened.set_result(None)
            self.opened = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.opened is not None and not self.opened.done():
            self.opened.set_exception(RuntimeError(f"connection lost before its first event: {exc}"))
        self.transport = None


async def open_clients(url: str, request: bytes, count: int) -> list[Client]:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    semaphore = asyncio.Semaphore(OPEN_CONCURRENCY)
    clients: list[Client] = []

    async def one() -> None:
        async with semaphore:
            opened: asyncio.Future[None] = loop.create_future()
            client = Client(request, opened)
            await loop.create_connection(lambda: client, parts.hostname, parts.port)
            await asyncio.wait_for(opened, 60)
            clients.append(client)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        close_clients(clients)
        raise RuntimeError(f"{len(errors)} of {count} connections failed to open, e.g. {errors[0]!r}")
    return clients


def close_clients(clients: list[Client]) -> None:
    for client in clients:
        if client.transport is not None:
            client.transport.close()


class Requester(asyncio.Protocol):
    """One kept-alive connection that sends prepared requests and stamps each answer's arrival."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.transport: Any = None
        self.waiting: asyncio.Future[tuple[float, bytes]] | None = None
        self.buffer = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        head, found, rest = self.buffer.partition(b"\r\n\r\n")
        if not found:
            return
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        if len(rest) < length:
            return
        self.buffer = rest[length:]
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result((now, head.split(b"\r\n", 1)[0]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(RuntimeError(f"the writer's connection was lost: {exc}"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def send(self, request: bytes, status: bytes = b" 200 ") -> float:
        """Send ``request``; the time its answer arrived (it must have ``status``). A connection the server
        closed while idle is opened again first."""
        if self.transport is None or self.transport.is_closing():
            parts = urlsplit(self.url)
            loop = asyncio.get_running_loop()
            await loop.create_connection(lambda: self, parts.hostname, parts.port)
            self.buffer = b""
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        answered, got = await asyncio.wait_for(self.waiting, 30)
        if status not in got + b" ":
            raise RuntimeError(f"answered {got.decode(errors='replace')}")
        return answered


async def posts(connection: Requester, request: bytes, count: int) -> float:
    """``request`` ``count`` times on one kept-alive connection, one after the other; when the last answer (a 202)
    arrived."""
    answered = 0.0
    for _ in range(count):
        answered = await connection.send(request, b" 202 ")
    return answered


async def requester(url: str) -> Requester:
    return Requester(url)


def post(url: str, path: str, body: bytes, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def set_presence(url: str, user_id: str, token: str, turn: int) -> bytes:
    availability, activity = PAIRS[turn % 2]
    body = {"sessionId": DEMO_DAEMON_APP_ID, "availability": availability, "activity": activity,
            "expirationDuration": "PT1H"}  # fmt: skip
    return post(url, f"/v1.0/users/{user_id}/presence/setPresence", json.dumps(body).encode(), token)


async def fan_out_run(
    label: str, clients: list[Client], writes: int, trigger: Callable[[int], bytes], writer: Requester
) -> dict[str, Any]:
    """``writes`` triggers one at a time: each client's time from the trigger's 200 to the event's arrival."""
    samples: list[float] = []
    last: list[float] = []
    for n in range(-WARMUP, writes):
        for client in clients:
            client.arrived = 0.0
        answered = await writer.send(trigger(n))
        deadline = time.monotonic() + ARRIVAL_TIMEOUT
        while any(client.arrived == 0.0 for client in clients):
            if time.monotonic() > deadline:
                missing = sum(client.arrived == 0.0 for client in clients)
                raise RuntimeError(f"{label}: {missing} of {len(clients)} clients got no event within 30 s")
            await asyncio.sleep(0.01)
        if n >= 0:
            these = [client.arrived - answered for client in clients]
            samples += these
            last.append(max(these))
        await asyncio.sleep(PAUSE)
    closed = sum(client.transport is None for client in clients)
    return {"clients": len(clients), "writes": writes, "per_client": summary(samples), "last_client": summary(last),
            "closed_during_run": closed, "samples": samples, "last_samples": last}  # fmt: skip


async def memory_run(pid: int, url: str, request: bytes, count: int) -> tuple[dict[str, Any], list[Client]]:
    before = rss_kib(pid)
    started = time.monotonic()
    clients = await open_clients(url, request, count)
    opened = time.monotonic() - started
    await asyncio.sleep(SETTLE_SECONDS)
    after = rss_kib(pid)
    return {
        "clients": count,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "per_client_kib": (after - before) / count,
        "open_seconds": opened,
    }, clients


# --------------------------------------------------------------------------- phases


async def bare_phase(url: str, pid: int, args: argparse.Namespace, when: str) -> dict[str, Any]:
    request = f"GET /stream HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n\r\n".encode()
    step(f"bare server ({when}): {args.clients:,} connections")
    memory, clients = await memory_run(pid, url, request, args.clients)
    print_memory("  ", memory)
    try:
        writer = await requester(url)
        fire = post(url, "/fire", b"", None)
        latency = await fan_out_run("bare", clients, args.writes, lambda n: fire, writer)
        print_latency("  ", latency)
        writer.close()
    finally:
        close_clients(clients)
    return {"memory": memory, "latency": latency}


async def presenced_phase(
    url: str, pid: int, args: argparse.Namespace, reader: str, writer_token: str, user_id: str
) -> dict[str, Any]:
    request = (
        f"GET /_stream/presences?ids={user_id} HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n"
        f"Authorization: Bearer {reader}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    writer = await requester(url)
    turn = 0

    def write(_: int) -> bytes:
        nonlocal turn
        turn += 1
        return set_presence(url, user_id, writer_token, turn)

    # Warm-up: what the first streams and writes load and build is not the streams' cost.
    warm = await open_clients(url, request, 200)
    await fan_out_run("warm-up", warm, 3, write, writer)
    close_clients(warm)
    await asyncio.sleep(2.0)

    step(f"presenced: {args.clients:,} streams of one user")
    memory, clients = await memory_run(pid, url, request, args.clients)
    print_memory("  ", memory)
    try:
        latency = await fan_out_run("presenced", clients, args.writes, write, writer)
        print_latency("  ", latency)
        close_clients(clients[args.few :])
        await asyncio.sleep(1.0)
        step(f"presenced: the same with {args.few:,} streams")
        few = await fan_out_run("presenced", clients[: args.few], args.writes, write, writer)
        print_latency("  ", few)
    finally:
        close_clients(clients)
        writer.close()
    return {"memory": memory, "latency": latency, "latency_few": few}


@dataclass
class Receiver:
    """Webhook endpoint in this process: echoes validation tokens, stamps each notification's arrival."""

    url: str = ""
    arrivals: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    last_body: bytes = b""
    oddities: list[str] = field(default_factory=list)
    _server: Any = None
    _task: asyncio.Task[None] | None = None

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        now = time.monotonic()
        token = parse_qs(scope["query_string"].decode()).get("validationToken")
        if token:
            await answer(send, 200, token[0].encode())
            return
        if scope["path"] == BASELINE_PATH:
            self.baseline.append(now)
        elif scope["path"].startswith(HOOK_PATH):
            self.last_body = body
            try:
                count = len(json.loads(body)["value"])
            except (ValueError, KeyError, TypeError) as error:
                self.oddities.append(f"unexpected notification body ({error!r}): {body[:200]!r}")
                count = 0
            self.arrivals.extend([now] * count)
        await answer(send, 202, b"")

    async def start(self) -> None:
        import uvicorn

        from presenced.cli.main import listen

        sock = listen(harness.HOST, 0)
        self.url = f"http://{harness.HOST}:{sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off", loop="none",
                                server_header=False, interface="asgi3", backlog=4096)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)


async def answer(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def subscriber_tokens(data_dir: Path, url: str, tenant_id: str, users: list[str]) -> list[str]:
    """A delegated Presence.Read.All token for each user, signed here with the server's keys (as ``presenced
    token --user`` signs them, for the command line's client id; minting a thousand that way takes minutes)."""
    from presenced.cli.main import CLI_APP_ID
    from presenced.oauth.keys import SigningKeys
    from presenced.oauth.tokens import mint_access_token

    keys = SigningKeys.load_or_create(data_dir)
    now = datetime.now(UTC)
    return [
        mint_access_token(keys, url, tenant_id, app_id=CLI_APP_ID, now=now, user_id=u, scopes=("Presence.Read.All",))
        for u in users
    ]


async def webhook_phase(
    url: str, args: argparse.Namespace, tokens: list[str], writer_token: str, user_id: str
) -> dict[str, Any]:
    import httpx

    receiver = Receiver()
    await receiver.start()
    try:
        step(f"webhooks: {args.subscriptions:,} subscriptions on one user, each with its own URL")
        expires = (datetime.now(UTC) + timedelta(minutes=55)).strftime("%Y-%m-%dT%H:%M:%SZ")
        semaphore = asyncio.Semaphore(SUBSCRIBE_CONCURRENCY)
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=url, timeout=60, trust_env=False) as http:

            async def subscribe(n: int) -> None:
                body = {"changeType": "updated", "notificationUrl": f"{receiver.url}{HOOK_PATH}{n}",
                        "resource": f"/communications/presences/{user_id}", "expirationDateTime": expires,
                        "clientState": f"bench-{n}"}  # fmt: skip
                headers = {"Authorization": f"Bearer {tokens[n]}"}
                async with semaphore:
                    response = await http.post("/v1.0/subscriptions", json=body, headers=headers)
                if response.status_code != 201:
                    raise RuntimeError(f"POST /v1.0/subscriptions answered {response.status_code}: {response.text}")

            await asyncio.gather(*(subscribe(n) for n in range(args.subscriptions)))
        print(f"  created in {time.monotonic() - started:.1f} s", flush=True)

        writer = await requester(url)
        pool = [Requester(receiver.url) for _ in range(min(PER_RECEIVER, args.subscriptions))]
        shares = [len(range(k, args.subscriptions, len(pool))) for k in range(len(pool))]
        last: list[float] = []
        each: list[float] = []
        direct_last: list[float] = []
        direct_each: list[float] = []
        for n in range(-WARMUP, args.writes):
            before = len(receiver.arrivals)
            answered = await writer.send(set_presence(url, user_id, writer_token, n))
            deadline = time.monotonic() + ARRIVAL_TIMEOUT
            while len(receiver.arrivals) - before < args.subscriptions:
                if time.monotonic() > deadline:
                    got = len(receiver.arrivals) - before
                    raise RuntimeError(f"webhooks: {got} of {args.subscriptions} notifications arrived in 30 s")
                await asyncio.sleep(0.005)
            arrived = [t - answered for t in receiver.arrivals[before:]]
            await asyncio.sleep(PAUSE)
            # The baseline: the same number of POSTs of the same size to the same receiver, all at once, over as
            # many kept-alive connections as presenced keeps to one receiver, from plain asyncio sockets.
            request = post(receiver.url, BASELINE_PATH, b"x" * len(receiver.last_body), None)
            begun = len(receiver.baseline)
            sent = time.monotonic()
            done = max(await asyncio.gather(*(posts(connection, request, share) for connection, share in
                                              zip(pool, shares, strict=True))))  # fmt: skip
            direct = [t - sent for t in receiver.baseline[begun:]]
            if n >= 0:
                last.append(max(arrived))
                each += arrived
                direct_last.append(done - sent)
                direct_each += direct
            await asyncio.sleep(PAUSE)
        writer.close()
        for connection in pool:
            connection.close()
        result = {
            "subscriptions": args.subscriptions,
            "writes": args.writes,
            "body_bytes": len(receiver.last_body),
            "last_delivery": summary(last),
            "each_delivery": summary(each),
            "baseline_last": summary(direct_last),
            "baseline_each": summary(direct_each),
            "oddities": receiver.oddities,
        }
        print_webhooks("  ", result)
        return result
    finally:
        await receiver.stop()


# --------------------------------------------------------------------------- printing


def step(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def print_memory(indent: str, m: dict[str, Any]) -> None:
    print(
        f"{indent}RSS {m['rss_before_kib']:,} KiB without clients, {m['rss_after_kib']:,} KiB with {m['clients']:,}: "
        f"{m['per_client_kib']:.2f} KiB per client (opened in {m['open_seconds']:.1f} s)",
        flush=True,
    )


def print_latency(indent: str, r: dict[str, Any]) -> None:
    p, last = r["per_client"], r["last_client"]
    print(
        f"{indent}{r['clients']:,} clients, {r['writes']} writes: 200 -> event p50 {p['p50_ms']:.1f} ms, p99 "
        f"{p['p99_ms']:.1f} ms, max {p['max_ms']:.1f} ms; the last client of each write p50 {last['p50_ms']:.1f} ms, "
        f"p99 {last['p99_ms']:.1f} ms",
        flush=True,
    )


def print_webhooks(indent: str, r: dict[str, Any]) -> None:
    last, each, base, base_each = r["last_delivery"], r["each_delivery"], r["baseline_last"], r["baseline_each"]
    print(
        f"{indent}{r['subscriptions']:,} notifications per write ({r['body_bytes']} B each): last answered p50 "
        f"{last['p50_ms']:.1f} ms, p99 {last['p99_ms']:.1f} ms (each p50 {each['p50_ms']:.1f}, p99 "
        f"{each['p99_ms']:.1f} ms) | {r['subscriptions']:,} direct POSTs at once: last answered p50 "
        f"{base['p50_ms']:.1f} ms, p99 {base['p99_ms']:.1f} ms (each p50 {base_each['p50_ms']:.1f}, p99 "
        f"{base_each['p99_ms']:.1f} ms)",
        flush=True,
    )


def print_summary(results: dict[str, Any]) -> None:
    bare, mine = results.get("bare"), results.get("presenced")
    print()
    header = f"{'measurement':<58} {'figure':>12} {'baseline':>12} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    if bare and mine:
        b, p = bare["memory"], mine["memory"]
        print(f"{'memory per client, KiB (' + format(p['clients'], ',') + ' clients)':<58} "
              f"{p['per_client_kib']:>12.2f} {b['per_client_kib']:>12.2f} "
              f"{ratio(p['per_client_kib'], b['per_client_kib']):>6.1f}x")  # fmt: skip
        print(f"{'  RSS without clients -> with them, MiB':<58} "
              f"{p['rss_before_kib'] / 1024:>5.0f}->{p['rss_after_kib'] / 1024:<6.0f}"
              f"{b['rss_before_kib'] / 1024:>6.0f}->{b['rss_after_kib'] / 1024:<5.0f}")  # fmt: skip
        for key in ("p50_ms", "p99_ms"):
            value, base = mine["latency"]["per_client"][key], bare["latency"]["per_client"][key]
            label = f"write -> event at each of {mine['latency']['clients']:,} clients, {key[:3]} ms"
            print(f"{label:<58} {value:>12.1f} {base:>12.1f} {ratio(value, base):>6.1f}x")
        for key in ("p50_ms", "p99_ms"):
            value = mine["latency_few"]["per_client"][key]
            base = mine["latency"]["per_client"][key]
            few, many = mine["latency_few"]["clients"], mine["latency"]["clients"]
            label = f"  the same at {few:,} clients ({key[:3]}; baseline: at {many:,})"
            print(f"{label:<58} {value:>12.1f} {base:>12.1f} {ratio(value, base):>6.2f}x")
    hooks = results.get("webhooks")
    if hooks:
        for key in ("p50_ms", "p99_ms"):
            value, base = hooks["last_delivery"][key], hooks["baseline_last"][key]
            label = f"write -> last of {hooks['subscriptions']:,} webhooks answered, {key[:3]} ms"
            print(f"{label:<58} {value:>12.1f} {base:>12.1f} {ratio(value, base):>6.1f}x")
    print(
        "(baselines: the bare server at as many clients, its runs before and after presenced's taken together; "
        "presenced at 10x fewer clients; as many direct POSTs to the same receiver, at once, after each write)"
    )
    for problem in results["problems"]:
        print(f"problem: {problem}")


# --------------------------------------------------------------------------- main


def bare_run(args: argparse.Namespace, workdir: Path, pin: bool, when: str, problems: list[str]) -> dict[str, Any]:
    """The bare server started, measured and stopped."""
    import uvloop

    bare = harness.start_server(
        "bare", [*harness.pin_prefix(0, pin), sys.executable, __file__, "--serve-bare"], workdir,
        pattern=r"bare listening on (http://\S+)",
    )  # fmt: skip
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(bare_phase(bare.url, bare.proc.pid, args, when))
        if bare.proc.poll() is not None:
            problems.append(f"the bare server exited during the run with {bare.proc.returncode}")
    finally:
        harness.stop_server(bare)
    if bare.stderr_tail():
        problems.append(f"bare stderr: {bare.stderr_tail()}")
    return result


def pooled(*runs: dict[str, Any]) -> dict[str, Any]:
    """The figures of several latency runs' samples taken together."""
    return {
        "clients": runs[0]["clients"],
        "writes": sum(r["writes"] for r in runs),
        "per_client": summary([x for r in runs for x in r["samples"]]),
        "last_client": summary([x for r in runs for x in r["last_samples"]]),
    }


def benchmark(args: argparse.Namespace, workdir: Path, pin: bool) -> dict[str, Any]:
    import uvloop

    raise_open_files(args.clients + SPARE_FILES)
    problems: list[str] = []
    results: dict[str, Any] = {}
    data_dir = workdir / "data"
    demo = json.loads(harness.run_cli("demo", "--data-dir", str(data_dir), "--json"))
    # Two users of their own, with no presence session: every write of theirs changes what readers see; and
    # the subscribers, each of whom subscribes to the second (one subscription per app and user).
    stream_user, hook_user = (str(uuid.uuid4()) for _ in range(2))
    subscribers = [str(uuid.uuid4()) for _ in range(args.subscriptions)]
    users = [(stream_user, "streamed@contoso.example", "Streamed User"), (hook_user, "hooked@contoso.example",
             "Hooked User")]  # fmt: skip
    users += [(u, f"subscriber{n:04d}@contoso.example", f"Subscriber {n:04d}") for n, u in enumerate(subscribers)]
    asyncio.run(harness.add_users(data_dir, demo["tenantId"], users))
    with harness.serving(problems) as servers:
        try:
            if pin:
                os.sched_setaffinity(0, {1})
            results["bare_before"] = bare_run(args, workdir, pin, "before presenced", problems)
            server = harness.start_presenced(workdir, pin, "--demo", "--data-dir", str(data_dir))
            servers.append(server)
            reader, writer = (
                harness.run_cli("token", "--data-dir", str(data_dir), "--app", DEMO_DAEMON_APP_ID, "--roles", role,
                                "--url", server.url).strip()
                for role in ("Presence.Read.All", "Presence.ReadWrite.All")
            )  # fmt: skip
            print(f"presenced at {server.url}; pinned: {pin}", flush=True)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results["presenced"] = runner.run(
                    presenced_phase(server.url, server.proc.pid, args, reader, writer, stream_user)
                )
            # The baseline again, so that it shares whatever else the machine was doing meanwhile.
            results["bare_after"] = bare_run(args, workdir, pin, "after presenced", problems)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                tokens = subscriber_tokens(data_dir, server.url, demo["tenantId"], subscribers)
                results["webhooks"] = runner.run(webhook_phase(server.url, args, tokens, writer, hook_user))
        finally:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, range(os.cpu_count() or 1))
    for part in ("presenced",):
        for key in ("latency", "latency_few"):
            closed = results.get(part, {}).get(key, {}).get("closed_during_run", 0)
            if closed:
                problems.append(f"{part}: {closed} streams were closed during the {key} run")
    if "bare_before" in results and "bare_after" in results:
        results["bare"] = {
            "memory": results["bare_before"]["memory"],
            "latency": pooled(results["bare_before"]["latency"], results["bare_after"]["latency"]),
        }
    for run in (results.get("bare_before"), results.get("bare_after"), results.get("presenced")):
        for key in ("latency", "latency_few"):  # the summaries stay; the samples would make a file of megabytes
            if run and key in run:
                run[key].pop("samples", None)
                run[key].pop("last_samples", None)
    problems += results.get("webhooks", {}).get("oddities", [])
    results["config"] = {**{k: getattr(args, k) for k in DEFAULTS}, "quick": args.quick, "warmup": WARMUP,
                         **harness.machine(pin)}  # fmt: skip
    results["problems"] = problems
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 clients, 8 writes, 200 subscriptions")
    parser.add_argument("--clients", type=int, help=f"SSE connections (default {DEFAULTS['clients']:,})")
    parser.add_argument("--few", type=int, help=f"streams left open for the second run (default {DEFAULTS['few']:,})")
    parser.add_argument("--writes", type=int, help=f"writes per latency run (default {DEFAULTS['writes']})")
    parser.add_argument("--subscriptions", type=int, help=f"on one user (default {DEFAULTS['subscriptions']:,})")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to core 0 and this process to 1")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare()
        return 0
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.clients, args.few, args.writes, args.subscriptions) < 1 or args.few > args.clients:
        parser.error("every count must be at least 1, and --few at most --clients")
    return harness.run("stream_scale_bench", args, benchmark, print_summary)


if __name__ == "__main__":
    sys.exit(main())
