"""Change-notification benchmark: webhook delivery and the live stream, each against a one-hop baseline.

Run:  .venv/bin/python bench/notify_bench.py [--quick] [--no-pin]

One ``presenced serve --http --demo --port 0`` process (worker inside; ``--demo`` allows loopback
webhooks), plus generated users added through the store API (harness.add_users, as in read_bench.py). The benchmark
process runs a webhook receiver (uvicorn + a bare ASGI app on 127.0.0.1, port 0) that echoes
``validationToken`` and stamps every arrival with ``time.monotonic()``, the same clock as the writer.

1. Webhook latency: one subscription per user (``--subscriptions`` users, app-only Presence.Read.All),
   then ``--writes`` setPresence, one at a time, each to a random subscribed user, alternating its
   availability: time from the setPresence response to its notification arriving; p50, p99.
   Baselines, interleaved write by write: the receiver's latency for a direct POST of a body of the
   same size from the benchmark process, on a kept-alive connection and on a new connection.
2. Burst: ``--burst`` setPresence writes from 16 concurrent clients as fast as they go; notifications
   delivered per second from the first to the last arrival, next to the writes/s of the same burst.
3. Stream latency: ``--streams`` SSE connections (``GET /_stream/presences?ids=<one user>``, raw
   asyncio sockets), one user each, users with no subscription; ``--writes`` writes, one at a time:
   time from the setPresence response to the event arriving; baseline as in 1.

Everything listens on 127.0.0.1 only. Results go to stdout and bench/results/notify_bench.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
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

USER_NAMESPACE = uuid.UUID("5a4c3e2f-8d1b-4f6a-9c7e-2b1d0e9f8a31")
#: The app whose app-only Presence.Read.All token subscribes and streams: the demo's daemon
#: (``presenced token --app`` names an app registered in the tenant).
READER_APP = DEMO_DAEMON_APP_ID
#: The app whose app-only Presence.ReadWrite.All token writes; its id is every write's sessionId.
WRITER_APP = DEMO_DAEMON_APP_ID
#: The two setPresence pairs each user alternates between, so every write changes the visible presence.
PAIRS = (("Available", "Available"), ("Busy", "InACall"))
HOOK_PATH = "/hook"
BASELINE_PATH = "/baseline"
BURST_CLIENTS = 16
#: Unrecorded writes (and baseline POSTs) before each latency measurement.
WARMUP_WRITES = 10
#: How long one notification or event may take before the benchmark gives up on it.
ARRIVAL_TIMEOUT = 15.0
#: After a burst, how long without any new arrival before the benchmark stops waiting for the rest.
BURST_IDLE_TIMEOUT = 15.0
CREATE_CONCURRENCY = 8
OPEN_CONCURRENCY = 50
#: Subscriptions expire this far ahead (presenced allows at most 60 minutes).
SUBSCRIPTION_MINUTES = 55
SSE_EVENT = re.compile(rb"event: presence\nid: (\d{20})\n")

DEFAULTS = {"subscriptions": 1000, "streams": 1000, "writes": 200, "burst": 2000}
QUICK = {"subscriptions": 200, "streams": 200, "writes": 100, "burst": 500}


# --------------------------------------------------------------------------- data


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


def set_presence_body(pair: tuple[str, str]) -> bytes:
    availability, activity = pair
    return json.dumps(
        {"sessionId": WRITER_APP, "availability": availability, "activity": activity, "expirationDuration": "PT1H"},
        separators=(",", ":"),
    ).encode()


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (inclusive method), as for a latency histogram."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summary(values_s: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "samples_ms": ms}


# --------------------------------------------------------------------------- the webhook receiver


@dataclass
class Receiver:
    """A webhook endpoint in this process: echoes validation tokens, stamps arrivals (time.monotonic)."""

    url: str = ""
    validations: int = 0
    posts: int = 0
    #: Notification items as they arrived: (time, notification id, user id).
    items: list[tuple[float, str, str]] = field(default_factory=list)
    #: The raw body of the latest notification POST (its size is the baseline's).
    last_body: bytes = b""
    #: Set when something arrives that the benchmark did not expect to see.
    oddities: list[str] = field(default_factory=list)
    _waiting: dict[str, asyncio.Future[float]] = field(default_factory=dict)
    _baseline: asyncio.Future[float] | None = None
    _server: Any = None
    _task: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, user_id: str) -> asyncio.Future[float]:
        """A future resolved with the arrival time of the next notification about ``user_id``."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[user_id] = future
        return future

    def expect_baseline(self) -> asyncio.Future[float]:
        self._baseline = asyncio.get_running_loop().create_future()
        return self._baseline

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
            self.validations += 1
            await respond(send, 200, token[0].encode(), b"text/plain; charset=utf-8")
            return
        if scope["path"] == BASELINE_PATH:
            if self._baseline is not None and not self._baseline.done():
                self._baseline.set_result(now)
            await respond(send, 202, b"", None)
            return
        self.posts += 1
        self.last_body = body
        try:
            value = json.loads(body)["value"]
            for item in value:
                user_id = item["resourceData"]["id"]
                self.items.append((now, item["id"], user_id))
                waiting = self._waiting.pop(user_id, None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(now)
        except (ValueError, KeyError, TypeError) as error:
            self.oddities.append(f"unexpected notification body ({error!r}): {body[:200]!r}")
        self._arrived.set()
        await respond(send, 202, b"", None)

    async def wait_arrival(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait, on purpose
        """Wait until some notification arrives (True) or ``timeout`` passes (False)."""
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def start(self) -> None:
        import uvicorn

        from presenced.cli.main import listen

        sock = listen(harness.HOST, 0)
        self.url = f"http://{harness.HOST}:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="none",
            server_header=False,
            interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # uvicorn < 0.29; newer ones ignore this
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the webhook receiver stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)


async def respond(send: Any, status: int, body: bytes, content_type: bytes | None) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- the live stream


@dataclass
class Stream:
    """One SSE connection watching one user, read with a raw asyncio socket."""

    user_id: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    last_sequence: int = -1
    events: int = 0
    #: The latest event's bytes (its size is the baseline's).
    last_event: bytes = b""
    first: asyncio.Future[float] | None = None
    waiting: asyncio.Future[float] | None = None
    closed: str | None = None
    task: asyncio.Task[None] | None = None

    def expect(self) -> asyncio.Future[float]:
        self.waiting = asyncio.get_running_loop().create_future()
        return self.waiting

    async def read_forever(self) -> None:
        buffer = b""
        try:
            while True:
                data = await self.reader.read(65536)
                now = time.monotonic()
                if not data:
                    self.closed = "closed by the server"
                    return
                buffer += data
                end = 0
                for match in SSE_EVENT.finditer(buffer):
                    end = match.end()
                    sequence = int(match.group(1))
                    self.events += 1
                    self.last_event = buffer[match.start() : buffer.find(b"\n\n", end) + 2]
                    if self.first is not None and not self.first.done():
                        self.first.set_result(now)
                    if sequence > self.last_sequence:
                        self.last_sequence = sequence
                        if self.waiting is not None and not self.waiting.done():
                            self.waiting.set_result(now)
                # Keep an event header that may be cut in two (the pattern is under 64 bytes).
                buffer = buffer[max(end, len(buffer) - 64) :]
        except (OSError, asyncio.IncompleteReadError) as error:
            self.closed = f"{type(error).__name__}: {error}"

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def open_stream(base_url: str, token: str, user_id: str) -> Stream:
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    assert parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(
        (
            f"GET /_stream/presences?ids={user_id} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" ":
        writer.close()
        raise RuntimeError(f"GET /_stream/presences?ids={user_id} answered {status.decode(errors='replace')}")
    stream = Stream(user_id, reader, writer)
    stream.first = asyncio.get_running_loop().create_future()
    stream.task = asyncio.create_task(stream.read_forever())
    return stream


# --------------------------------------------------------------------------- writes and baselines


@dataclass
class Writer:
    """setPresence through an httpx client; each user alternates between the two pairs."""

    client: Any
    problems: list[str]
    _next: dict[str, int] = field(default_factory=dict)

    async def write(self, user_id: str) -> float:
        """One setPresence; the time its response arrived."""
        n = self._next.get(user_id, 0)
        self._next[user_id] = n + 1
        path = f"/v1.0/users/{user_id}/presence/setPresence"
        response = await self.client.post(path, content=set_presence_body(PAIRS[n % 2]))
        now = time.monotonic()
        if response.status_code != 200:
            raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text[:300]}")
        return now


async def direct_post(receiver: Receiver, client: Any, body: bytes) -> float:
    """The baseline: one POST of ``body`` straight to the receiver; seconds from sending to its arrival."""
    arrived = receiver.expect_baseline()
    started = time.monotonic()
    response = await client.post(receiver.url + BASELINE_PATH, content=body)
    if response.status_code != 202:
        raise RuntimeError(f"baseline POST answered {response.status_code}")
    return await asyncio.wait_for(arrived, ARRIVAL_TIMEOUT) - started


async def outbound_post(receiver: Receiver, body: bytes) -> float:
    """The product's own sender path from this process: ``resolve_target`` + ``post`` (on a new connection, as
    without the worker's pool of kept-alive ones)."""
    from presenced.notify.outbound import OutboundPolicy, post, resolve_target
    from presenced.notify.webhooks import DELIVERY_TIMEOUT

    policy = OutboundPolicy(allow_loopback=True)
    arrived = receiver.expect_baseline()
    started = time.monotonic()
    target = await resolve_target(receiver.url + BASELINE_PATH, policy)
    answer = await post(target, body, {"Content-Type": "application/json; charset=utf-8"}, DELIVERY_TIMEOUT, policy)
    if answer.status != 202:
        raise RuntimeError(f"outbound post answered {answer.status}")
    return await asyncio.wait_for(arrived, ARRIVAL_TIMEOUT) - started


async def latency_run(
    label: str,
    writes: int,
    users: list[str],
    writer: Writer,
    expect: Callable[[str], asyncio.Future[float]],
    body_size: Callable[[], int],
    receiver: Receiver,
    rng: random.Random,
    with_sender: bool,
) -> dict[str, Any]:
    """``writes`` writes one at a time, each followed by one baseline POST of each kind.

    The kinds: on a kept-alive connection, on a new connection, and (``with_sender``) through
    presenced's own ``outbound.post()`` called in this process.
    """
    import httpx

    presenced: list[float] = []
    kept: list[float] = []
    fresh: list[float] = []
    sender: list[float] = []
    headers = {"Content-Type": "application/json; charset=utf-8"}
    async with (
        httpx.AsyncClient(headers=headers, timeout=10, trust_env=False) as keep_alive,
        httpx.AsyncClient(
            headers=headers, timeout=10, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
        ) as new_connection,
    ):
        for n in range(-WARMUP_WRITES, writes):
            user_id = rng.choice(users)
            arrived = expect(user_id)
            answered = await writer.write(user_id)
            try:
                latency = await asyncio.wait_for(arrived, ARRIVAL_TIMEOUT) - answered
            except TimeoutError:
                raise RuntimeError(
                    f"{label}: nothing arrived for the write to {user_id} within {ARRIVAL_TIMEOUT:.0f} s"
                ) from None
            body = b"x" * body_size()  # the same size as what arrived
            one_kept = await direct_post(receiver, keep_alive, body)
            one_fresh = await direct_post(receiver, new_connection, body)
            one_sender = await outbound_post(receiver, body) if with_sender else 0.0
            if n >= 0:
                presenced.append(latency)
                kept.append(one_kept)
                fresh.append(one_fresh)
                sender.append(one_sender)
    result = {
        "presenced": summary(presenced),
        "baseline_keep_alive": summary(kept),
        "baseline_new_connection": summary(fresh),
        "body_bytes": body_size(),
    }
    if with_sender:
        result["presenced_outbound_post"] = summary(sender)
    return result


async def burst_run(
    count: int, users: list[str], writer: Writer, receiver: Receiver, rng: random.Random, problems: list[str]
) -> dict[str, Any]:
    """``count`` writes from BURST_CLIENTS concurrent clients; writes/s and notifications/s."""
    order = list(users)
    rng.shuffle(order)
    # Writes to one user always go through the same client, in order, so every write is a change.
    jobs: list[list[str]] = [[] for _ in range(BURST_CLIENTS)]
    for k in range(count):
        index = k % len(order)
        jobs[index % BURST_CLIENTS].append(order[index])
    already = len(receiver.items)
    posts_before = receiver.posts

    async def client(todo: list[str]) -> float:
        last = 0.0
        for user_id in todo:
            last = await writer.write(user_id)
        return last

    started = time.monotonic()
    ends = await asyncio.gather(*(client(todo) for todo in jobs))
    writes_done = max(ends)
    while len({item_id for _, item_id, _ in receiver.items[already:]}) < count:
        if not await receiver.wait_arrival(BURST_IDLE_TIMEOUT):
            break
    arrived = receiver.items[already:]
    distinct = {item_id for _, item_id, _ in arrived}
    if len(distinct) < count:
        problems.append(
            f"burst: {len(distinct)} of {count} notifications arrived "
            f"(none for {BURST_IDLE_TIMEOUT:.0f} s after the last one)"
        )
    first, last = arrived[0][0], arrived[-1][0]
    posts = receiver.posts - posts_before
    return {
        "writes": count,
        "clients": BURST_CLIENTS,
        "writes_seconds": writes_done - started,
        "writes_per_s": count / (writes_done - started),
        "notifications": len(distinct),
        "duplicates": len(arrived) - len(distinct),
        "posts": posts,
        "items_per_post": len(arrived) / posts if posts else 0.0,
        "first_arrival_after_start_s": first - started,
        "last_arrival_after_last_write_s": last - writes_done,
        "delivery_seconds": last - first,
        "notifications_per_s": len(distinct) / (last - first) if last > first else float("nan"),
        "end_to_end_notifications_per_s": len(distinct) / (last - started),
    }


async def create_subscriptions(client: Any, receiver: Receiver, users: list[str], own_urls: bool) -> dict[str, Any]:
    """One subscription per user, CREATE_CONCURRENCY at a time; the time each took.

    All share one notification URL, or (``own_urls``) each has its own (``/hook?s=N``).
    """
    semaphore = asyncio.Semaphore(CREATE_CONCURRENCY)
    took: list[float] = [0.0] * len(users)
    expires = (datetime.now(UTC) + timedelta(minutes=SUBSCRIPTION_MINUTES)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def create(n: int, user_id: str) -> None:
        body = {
            "changeType": "updated",
            "notificationUrl": receiver.url + HOOK_PATH + (f"?s={n}" if own_urls else ""),
            "resource": f"/communications/presences/{user_id}",
            "expirationDateTime": expires,
            "clientState": f"bench-{n}",
        }
        async with semaphore:
            started = time.monotonic()
            response = await client.post("/v1.0/subscriptions", json=body)
            took[n] = time.monotonic() - started
        if response.status_code != 201:
            raise RuntimeError(f"POST /v1.0/subscriptions answered {response.status_code}: {response.text[:300]}")

    started = time.monotonic()
    await asyncio.gather(*(create(n, u) for n, u in enumerate(users)))
    tranche = max(len(users) // 10, 1)
    return {
        "count": len(users),
        "seconds": time.monotonic() - started,
        "concurrency": CREATE_CONCURRENCY,
        "first_tranche_mean_ms": statistics.mean(took[:tranche]) * 1000,
        "last_tranche_mean_ms": statistics.mean(took[-tranche:]) * 1000,
        "tranche": tranche,
        "validations": receiver.validations,
    }


async def open_streams(base_url: str, token: str, users: list[str]) -> list[Stream]:
    semaphore = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one(user_id: str) -> Stream:
        async with semaphore:
            stream = await open_stream(base_url, token, user_id)
            assert stream.first is not None
            await asyncio.wait_for(stream.first, 30)  # the current presence: the stream is listening
            return stream

    opened = await asyncio.gather(*(one(u) for u in users), return_exceptions=True)
    streams = [s for s in opened if isinstance(s, Stream)]
    errors = [e for e in opened if not isinstance(e, Stream)]
    if errors:
        await asyncio.gather(*(s.close() for s in streams))
        raise RuntimeError(f"{len(errors)} of {len(users)} streams failed to open, e.g. {errors[0]!r}")
    return streams


# --------------------------------------------------------------------------- main


async def measure(
    args: argparse.Namespace, server_url: str, reader_token: str, writer_token: str, hook_users: list[str],
    stream_users: list[str], problems: list[str],
) -> dict[str, Any]:  # fmt: skip
    import httpx

    rng = random.Random(20260127)
    receiver = Receiver()
    await receiver.start()
    results: dict[str, Any] = {"receiver": receiver.url}
    streams: list[Stream] = []
    try:
        async with (
            httpx.AsyncClient(
                base_url=server_url, headers={"Authorization": f"Bearer {reader_token}"}, timeout=30, trust_env=False
            ) as reading,
            httpx.AsyncClient(
                base_url=server_url,
                headers={"Authorization": f"Bearer {writer_token}", "Content-Type": "application/json"},
                timeout=30,
                trust_env=False,
                limits=httpx.Limits(max_connections=BURST_CLIENTS, max_keepalive_connections=BURST_CLIENTS),
            ) as writing,
        ):
            writer = Writer(writing, problems)

            where = "each to its own URL" if args.url_per_subscription else "all to one URL"
            step(f"creating {len(hook_users):,} subscriptions (one per user, {where}, {receiver.url}{HOOK_PATH})")
            created = await create_subscriptions(reading, receiver, hook_users, args.url_per_subscription)
            results["subscriptions"] = created
            print(
                f"  {created['count']:,} in {created['seconds']:.1f} s; mean per request: first "
                f"{created['tranche']} {created['first_tranche_mean_ms']:.0f} ms, last {created['tranche']} "
                f"{created['last_tranche_mean_ms']:.0f} ms ({CREATE_CONCURRENCY} at a time)",
                flush=True,
            )

            step(f"1. webhook latency: {args.writes} writes, one at a time (+{WARMUP_WRITES} unrecorded)")
            webhook = await latency_run(
                "webhook", args.writes, hook_users, writer, receiver.expect, lambda: len(receiver.last_body),
                receiver, rng, True,
            )  # fmt: skip
            results["webhook"] = webhook
            print_latency("  ", webhook)

            step(f"2. burst: {args.burst:,} writes from {BURST_CLIENTS} concurrent clients")
            burst = await burst_run(args.burst, hook_users, writer, receiver, rng, problems)
            results["burst"] = burst
            print_burst("  ", burst)

            step(f"3. stream latency: opening {len(stream_users):,} SSE connections, one user each")
            started = time.monotonic()
            streams = await open_streams(server_url, reader_token, stream_users)
            print(f"  opened in {time.monotonic() - started:.1f} s", flush=True)
            by_user = {s.user_id: s for s in streams}
            before = len(receiver.items)
            stream = await latency_run(
                "stream", args.writes, stream_users, writer, lambda u: by_user[u].expect(),
                lambda: max(len(s.last_event) for s in streams), receiver, rng, False,
            )  # fmt: skip
            stray = len(receiver.items) - before
            if stray:
                receiver.oddities.append(f"{stray} notifications arrived for users without a subscription")
            other_events = sum(s.events for s in streams) - len(streams) - args.writes - WARMUP_WRITES
            if other_events:
                problems.append(f"stream: {other_events} events arrived that no write of this run explains")
            stream["streams"] = len(streams)
            stream["events_on_other_streams"] = other_events
            results["stream"] = stream
            print_latency("  ", stream)
            closed = [s for s in streams if s.closed]
            if closed:
                problems.append(f"{len(closed)} streams were closed during the run, e.g. {closed[0].closed}")
    finally:
        await asyncio.gather(*(s.close() for s in streams))
        await receiver.stop()
    problems.extend(receiver.oddities)
    results["receiver_posts"] = receiver.posts
    return results


def step(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def print_latency(indent: str, result: dict[str, Any]) -> None:
    p, k, f = result["presenced"], result["baseline_keep_alive"], result["baseline_new_connection"]
    o = result.get("presenced_outbound_post")
    sender = f", presenced's outbound.post() p50 {o['p50_ms']:.2f} p99 {o['p99_ms']:.2f} ms" if o else ""
    print(
        f"{indent}presenced p50 {p['p50_ms']:.2f} ms p99 {p['p99_ms']:.2f} ms | direct POST of "
        f"{result['body_bytes']} bytes: kept-alive p50 {k['p50_ms']:.2f} p99 {k['p99_ms']:.2f} ms, new connection "
        f"p50 {f['p50_ms']:.2f} p99 {f['p99_ms']:.2f} ms{sender} | p50 {ratio(p['p50_ms'], k['p50_ms']):.1f}x, "
        f"p99 {ratio(p['p99_ms'], k['p99_ms']):.1f}x the kept-alive POST",
        flush=True,
    )


def print_burst(indent: str, b: dict[str, Any]) -> None:
    print(
        f"{indent}writes {b['writes_per_s']:,.0f}/s ({b['writes']:,} in {b['writes_seconds']:.1f} s); notifications "
        f"{b['notifications_per_s']:,.0f}/s first to last arrival ({b['notifications']:,} in "
        f"{b['delivery_seconds']:.1f} s, {b['posts']} POSTs, {b['items_per_post']:.1f} per POST); "
        f"last arrival {b['last_arrival_after_last_write_s']:.2f} s after the last write",
        flush=True,
    )


def benchmark(args: argparse.Namespace, workdir: Path, pin: bool) -> dict[str, Any]:
    import uvloop

    data_dir = workdir / "data"
    problems: list[str] = []
    demo = json.loads(harness.run_cli("demo", "--data-dir", str(data_dir), "--json"))
    tenant_id = demo["tenantId"]
    hook_users = generated_users(tenant_id, "hook", args.subscriptions)
    stream_users = generated_users(tenant_id, "stream", args.streams)
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(harness.add_users(data_dir, tenant_id, hook_users + stream_users), timeout=120))
    print(f"added {len(hook_users) + len(stream_users):,} users in {time.monotonic() - started:.1f} s", flush=True)

    with harness.serving(problems) as servers:
        server = harness.start_presenced(workdir, pin, "--demo", "--data-dir", str(data_dir))
        servers.append(server)
        try:
            if pin:  # this process (receiver, writers, streams) on the other core
                os.sched_setaffinity(0, {1})
            reader_token, writer_token = (
                harness.run_cli(
                    "token", "--data-dir", str(data_dir), "--app", app, "--roles", role, "--url", server.url
                ).strip()
                for app, role in ((READER_APP, "Presence.Read.All"), (WRITER_APP, "Presence.ReadWrite.All"))
            )
            print(f"presenced at {server.url}; pinned: {pin}", flush=True)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results = runner.run(
                    measure(
                        args,
                        server.url,
                        reader_token,
                        writer_token,
                        [u for u, _, _ in hook_users],
                        [u for u, _, _ in stream_users],
                        problems,
                    )
                )
        finally:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, range(os.cpu_count() or 1))
    results["config"] = {
        "subscriptions": args.subscriptions,
        "streams": args.streams,
        "writes": args.writes,
        "burst": args.burst,
        "burst_clients": BURST_CLIENTS,
        "warmup_writes": WARMUP_WRITES,
        "quick": args.quick,
        "url_per_subscription": args.url_per_subscription,
        **harness.machine(pin),
    }
    results["problems"] = problems
    return results


def print_summary(results: dict[str, Any]) -> None:
    config = results["config"]
    print()
    print(
        f"summary: {config['subscriptions']:,} subscriptions "
        f"({'each to its own URL' if config['url_per_subscription'] else 'all to one URL'}), "
        f"{config['streams']:,} streams, "
        f"{config['writes']} writes per latency run; ratio = presenced over the kept-alive direct POST of the "
        "same run (p50 over p50, p99 over p99)"
    )
    header = f"{'measurement':<52} {'p50 ms':>8} {'p99 ms':>8}  {'ratio p50':>9} {'ratio p99':>9}"
    print(header)
    print("-" * len(header))
    for key, name in (("webhook", "webhook: setPresence answered -> notification"),
                      ("stream", "stream: setPresence answered -> SSE event")):  # fmt: skip
        if key not in results:
            continue
        r = results[key]
        base = r["baseline_keep_alive"]
        rows = (
            (name, r["presenced"]),
            (f"  direct POST {r['body_bytes']} B, kept-alive connection", base),
            (f"  direct POST {r['body_bytes']} B, new connection", r["baseline_new_connection"]),
            ("  the same by presenced's outbound.post(), in here", r.get("presenced_outbound_post")),
        )
        for label, m in rows:
            if m is None:
                continue
            ratios = (
                f"{ratio(m['p50_ms'], base['p50_ms']):>8.1f}x {ratio(m['p99_ms'], base['p99_ms']):>8.1f}x"
                if m is not base
                else f"{'1':>9} {'1':>9}"
            )
            print(f"{label:<52} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f}  {ratios}")
    if "burst" in results:
        b = results["burst"]
        print(
            f"burst of {b['writes']:,} writes, {b['clients']} clients: writes {b['writes_per_s']:,.0f}/s, "
            f"notifications {b['notifications_per_s']:,.0f}/s (first to last arrival; "
            f"{b['notifications']:,} delivered in {b['posts']} POSTs) = "
            f"{ratio(b['notifications_per_s'], b['writes_per_s']):.2f}x the writes/s; "
            f"end to end {b['end_to_end_notifications_per_s']:,.0f}/s, the last "
            f"{b['last_arrival_after_last_write_s']:.2f} s after the last write"
        )
    for problem in results["problems"]:
        print(f"problem: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer subscriptions, streams and writes")
    parser.add_argument("--subscriptions", type=int, help=f"subscribed users (default {DEFAULTS['subscriptions']})")
    parser.add_argument("--streams", type=int, help=f"SSE connections (default {DEFAULTS['streams']})")
    parser.add_argument("--writes", type=int, help=f"writes per latency run (default {DEFAULTS['writes']})")
    parser.add_argument("--burst", type=int, help=f"writes in the burst (default {DEFAULTS['burst']})")
    parser.add_argument(
        "--url-per-subscription",
        action="store_true",
        help="give each subscription its own notification URL (default: one URL for all, as one app would)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to core 0 and this process to 1")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.subscriptions, args.streams, args.writes, args.burst) < 1:
        parser.error("--subscriptions, --streams, --writes and --burst must be at least 1")

    return harness.run("notify_bench", args, benchmark, print_summary)


if __name__ == "__main__":
    sys.exit(main())
