"""One change, three processes: written through one, delivered by a second, streamed by a third.

On the real PostgreSQL and the real Redis, three processes share one database, one data
directory (the signing keys) and one Redis:

* A, ``serve --no-worker``, takes the writes (and the subscription);
* B, ``presenced worker``, delivers the webhooks;
* C, ``serve --no-worker``, serves the live stream.

A setPresence through A must reach the webhook receiver (a real HTTP server in this test
process; only B can have sent it) and the stream on C within ``DEADLINE`` of the write's answer.
With a Redis URL the safety-net polling is slow (deliveries every 2 s, the stream feed every
1 s). To make "not by polling" exact, the test publishes a wake-up on the channel itself just
before each write: B and C poll at once (finding nothing) and would poll next a whole interval
later. Each write through A must arrive before that next poll.

The control proves the converse in the same test: a fourth process, D, ``serve --no-worker``
*without* Redis, writes the same user. Its commit publishes nothing, so after the same wake-up
B and C find the change only at their next poll, about 2 s (webhook) and 1 s (stream) after it.
(The channel is shared: an attempt during which somebody else published proves nothing and is
made again.)

A variant without any Redis URL shows the fallback alone still delivers (polling every 0.2 s
and 0.1 s).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis

from presenced.notify.fanout import CHANNEL
from presenced.oauth.keys import SigningKeys
from presenced.oauth.tokens import mint_access_token
from presenced.services.demo import DEMO_DAEMON_APP_ID, DEMO_TENANT_ID, demo_user_id
from tests.support import stop_process

pytestmark = pytest.mark.postgres

PRESENCED = (sys.executable, "-m", "presenced")
START_TIMEOUT = 60.0
#: How long anything may take when only eventual arrival is asserted.
ARRIVAL = 10.0
#: The deadline of the wake-up path, from setPresence's answer to the webhook POST / the stream event.
#: Generous for a loaded machine, but below the 2 s delivery poll that would otherwise bring it.
DEADLINE = 1.5
#: The fallback polls with a Redis URL (src/presenced/bootstrap.py): deliveries, and the stream feed.
DELIVERY_POLL = 2.0
FEED_POLL = 1.0
#: How long after the test's own wake-up each write goes in (B and C have polled by then).
WAKE_GAP = 0.25
#: How long after both arrivals the test's own subscriber still counts as hearing that round's messages.
WATCH_GRACE = 0.2
#: Timer slack: a poll comes no sooner than its interval after the wake-up, less this.
POLL_SLACK = 0.1

_NS = uuid.UUID("5b0e3c1d-6f47-4b7e-8d9a-0c1e2f3a4b5c")
#: The subscribing application: the demo's daemon (a token names an app registered in the tenant).
READER_APP = DEMO_DAEMON_APP_ID
#: The writing application (app-only Presence.ReadWrite.All); its id is the sessionId.
WRITER_APP = str(uuid.uuid5(_NS, "writer"))
CLIENT_STATE = "many-processes-secret"
#: The demo gives this user no presence facts: every write below is a change.
USER_ID = demo_user_id("nestor")
#: What the rounds through A set, one after the other (each differs from the one before).
ROUNDS = (("Busy", "InACall"), ("DoNotDisturb", "Presenting"), ("Away", "Away"))
#: What the control attempts through D set (the first differs from the last round).
CONTROL_PAIRS = (("Busy", "InAConferenceCall"), ("Available", "Available"), ("DoNotDisturb", "Presenting"))


# --------------------------------------------------------------------------- the webhook receiver


@dataclass
class Receiver:
    """An HTTP endpoint on loopback in a thread: answers the validation handshake, records notifications."""

    validations: list[str] = field(default_factory=list)
    #: (time.monotonic() when the POST's body had been read, the notification item)
    arrivals: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    url: str = ""
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(request.path).query)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        arrived = time.monotonic()
        if "validationToken" in query:
            token = query["validationToken"][0]
            with self._changed:
                self.validations.append(token)
            body, status, content_type = token.encode(), 200, "text/plain; charset=utf-8"
        else:
            with self._changed:
                self.arrivals.extend((arrived, item) for item in json.loads(raw).get("value", []))
                self._changed.notify_all()
            body, status, content_type = b"", 202, None
        request.send_response(status)
        if content_type:
            request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def wait_for_count(self, count: int, timeout: float) -> tuple[float, dict[str, Any]]:
        """The ``count``-th notification (1-based) as it arrived, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.arrivals) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"notification {count} did not arrive in {timeout} s: {self.arrivals}")
                self._changed.wait(left)
            return self.arrivals[count - 1]


# --------------------------------------------------------------------------- the stream reader


class Stream:
    """GET /_stream/presences read in a thread; every event is recorded with its arrival time."""

    def __init__(self, url: str, token: str, user_id: str) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.status: int | None = None
        self.error: BaseException | None = None
        self._changed = threading.Condition()
        self._client = httpx.Client(base_url=url, timeout=httpx.Timeout(30.0, read=60.0))
        self._thread = threading.Thread(target=self._read, args=(token, user_id), name="presence-stream", daemon=True)
        self._thread.start()

    def _read(self, token: str, user_id: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with self._client.stream("GET", f"/_stream/presences?ids={user_id}", headers=headers) as response:
                with self._changed:
                    self.status = response.status_code
                    self._changed.notify_all()
                event: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(":"):
                        continue
                    if line:
                        name, _, value = line.partition(": ")
                        event[name] = value
                        continue
                    if "data" in event:
                        arrived = time.monotonic()
                        with self._changed:
                            self.events.append((arrived, {**event, "data": json.loads(event["data"])}))
                            self._changed.notify_all()
                    event = {}
        except BaseException as exc:  # the server went away at the end, or a real failure to report
            with self._changed:
                self.error = exc
                self._changed.notify_all()

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str, since: float = 0.0
    ) -> tuple[float, dict[str, Any]]:
        """The first event arrived from ``since`` on whose data satisfies ``predicate``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for arrived, event in self.events:
                    if arrived >= since and predicate(event["data"]):
                        return arrived, event
                left = deadline - time.monotonic()
                if left <= 0 or self.error is not None:
                    raise AssertionError(
                        f"the stream did not send {what} in {timeout} s "
                        f"(status {self.status}, error {self.error!r}): {[e for _, e in self.events]}"
                    )
                self._changed.wait(left)

    def close(self) -> None:
        """After the server has stopped (which ends the response): let the reader finish."""
        self._thread.join(timeout=10)
        self._client.close()


# --------------------------------------------------------------------------- watching the Redis channel


class ChannelWatch:
    """This test's own subscriber on the fan-out channel: when each wake-up was published."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self.messages: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(CHANNEL)
        self._thread = threading.Thread(target=self._listen, name="redis-watch", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.05)
            if message is not None and message.get("type") == "message":
                with self._lock:
                    self.messages.append(time.monotonic())

    def between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for at in self.messages if start <= at <= end)

    def subscribers(self) -> int:
        [(_, count)] = self.client.pubsub_numsub(CHANNEL)
        return int(count)

    def publish(self) -> None:
        self.client.publish(CHANNEL, b"1")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()
        self.client.close()


# --------------------------------------------------------------------------- processes


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _store_args(data_dir: Path, database_url: str) -> list[str]:
    return ["--data-dir", str(data_dir), "--database-url", database_url]


def _spawn(name: str, args: list[str], log_dir: Path, env: dict[str, str]) -> Process:
    """Start ``presenced ARGS``, its output in ``log_dir/NAME.log``."""
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [*PRESENCED, *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    return Process(name, popen, log)


def _wait_ready(process: Process, ready: str) -> None:
    """Wait until the output matches ``ready`` (its ``url`` group, if any, is the server's URL)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = re.search(ready, process.log_text())
        if match:
            process.url = match.groupdict().get("url") or ""
            return
        if process.process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{process.name} did not start:\n{process.log_text()}")


def _cli(data_dir: Path, database_url: str, *command: str) -> str:
    result = subprocess.run(
        [*PRESENCED, *command, *_store_args(data_dir, database_url)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        check=False,
    )
    assert result.returncode == 0, f"presenced {' '.join(command)} failed: {result.stderr}"
    return result.stdout.strip()


@dataclass
class Cluster:
    writer: Process  # A
    worker: Process  # B
    streamer: Process  # C
    #: D: writes without Redis (only in the Redis runs).
    quiet_writer: Process | None
    #: Bearer tokens per server URL (each token's issuer is the URL it is sent to).
    readers: dict[str, str]
    writers: dict[str, str]

    @property
    def processes(self) -> list[Process]:
        return [p for p in (self.writer, self.worker, self.streamer, self.quiet_writer) if p is not None]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (exit {p.process.poll()}):\n{p.log_text()}" for p in self.processes)


@contextmanager
def _cluster(tmp_path: Path, key_folder: Path, database_url: str, redis_url: str | None) -> Iterator[Cluster]:
    """The demo on the database, then A, B, C (and D with Redis) on one data directory."""
    data_dir = tmp_path / "data"
    shutil.copytree(key_folder, data_dir / "keys")
    _cli(data_dir, database_url, "demo")
    store = _store_args(data_dir, database_url)
    fanout = ["--redis-url", redis_url] if redis_url else []
    serve = ["serve", "--http", "--no-worker", "--port", "0", *store]
    serving = r"listening on (?P<url>http://\S+)[\s\S]*Worker: "  # the URL, and the banner printed in full
    worker_env = _env(PRESENCED_ALLOW_LOOPBACK_WEBHOOKS="1")
    commands = [
        ("A", [*serve, *fanout, "--allow-loopback-webhooks"], serving, _env()),
        ("B", ["worker", *store, *fanout], r"worker: ", worker_env),
        ("C", [*serve, *fanout], serving, _env()),
        *([("D", serve, serving, _env())] if redis_url else []),
    ]
    started: list[Process] = []
    try:
        # Started together (they share the data directory, as processes of one deployment do).
        for name, args, _, env in commands:
            started.append(_spawn(name, args, tmp_path, env))
        for process, (_, _, ready, _) in zip(started, commands, strict=True):
            _wait_ready(process, ready)
        a, b, c = started[:3]
        d = started[3] if redis_url else None
        # The subscriber's tokens as a client gets them (`presenced token --url`, one per server); the
        # writer's minted in process with the same keys and function, since each CLI run costs seconds.
        readers = {
            server.url: _cli(
                data_dir,
                database_url,
                "token",
                "--app",
                READER_APP,
                "--roles",
                "Presence.Read.All",
                "--url",
                server.url,
            )
            for server in (a, c)
        }
        keys = SigningKeys.load_or_create(data_dir)
        writers = {
            server.url: mint_access_token(
                keys,
                server.url,
                DEMO_TENANT_ID,
                app_id=WRITER_APP,
                now=datetime.now(UTC),
                roles=["Presence.ReadWrite.All"],
            )
            for server in (a, d)
            if server is not None
        }
        yield Cluster(a, b, c, d, readers, writers)
    finally:
        for process in reversed(started):
            process.stop()


# --------------------------------------------------------------------------- Graph calls


def _subscribe(http: httpx.Client, cluster: Cluster, receiver: Receiver) -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(minutes=50)
    body = {
        "changeType": "updated",
        "notificationUrl": receiver.url,
        "resource": f"communications/presences/{USER_ID}",
        "expirationDateTime": expires.isoformat().replace("+00:00", "Z"),
        "clientState": CLIENT_STATE,
    }
    url = cluster.writer.url
    answer = http.post(
        f"{url}/v1.0/subscriptions", json=body, headers={"Authorization": f"Bearer {cluster.readers[url]}"}
    )
    assert answer.status_code == 201, f"{answer.status_code} {answer.text}\n{cluster.logs()}"
    assert receiver.validations, "the subscription was created without the validation handshake"
    created: dict[str, Any] = answer.json()
    return created


def _set_presence(http: httpx.Client, cluster: Cluster, server: Process, pair: tuple[str, str]) -> tuple[float, float]:
    """setPresence through ``server``: when it was sent and when its answer came (time.monotonic())."""
    body = {"sessionId": WRITER_APP, "availability": pair[0], "activity": pair[1], "expirationDuration": "PT1H"}
    headers = {"Authorization": f"Bearer {cluster.writers[server.url]}"}
    sent = time.monotonic()
    answer = http.post(f"{server.url}/v1.0/users/{USER_ID}/presence/setPresence", json=body, headers=headers)
    answered = time.monotonic()
    assert answer.status_code == 200, f"{answer.status_code} {answer.text}\n{cluster.logs()}"
    return sent, answered


def _is(pair: tuple[str, str]) -> Callable[[dict[str, Any]], bool]:
    return lambda data: data["id"] == USER_ID and (data["availability"], data["activity"]) == pair


def _check_item(item: dict[str, Any], subscription: dict[str, Any]) -> None:
    assert item["subscriptionId"] == subscription["id"], item
    assert item["clientState"] == CLIENT_STATE, item
    assert item["resourceData"]["id"] == USER_ID, item


@contextmanager
def _watching(cluster: Cluster, receiver: Receiver, http: httpx.Client) -> Iterator[tuple[Stream, dict[str, Any]]]:
    """The subscription through A and the stream on C, opened and showing the current presence."""
    subscription = _subscribe(http, cluster, receiver)
    stream_url = cluster.streamer.url
    stream = Stream(stream_url, cluster.readers[stream_url], USER_ID)
    try:
        stream.wait_for(lambda data: data["id"] == USER_ID, ARRIVAL, "the current presence")
        assert stream.status == 200, stream.status
        yield stream, subscription
    finally:
        for process in cluster.processes:
            process.stop()  # ends the stream
        stream.close()


# --------------------------------------------------------------------------- the tests


@dataclass
class Round:
    """One write, timed with time.monotonic()."""

    pair: tuple[str, str]
    #: When the test published its own wake-up, just before the write.
    woken: float
    sent: float
    answered: float
    posted: float
    streamed: float
    #: Messages on the channel from the wake-up until both arrivals (and WATCH_GRACE), the test's own included.
    published: int

    @property
    def webhook(self) -> float:
        return self.posted - self.answered

    @property
    def stream(self) -> float:
        return self.streamed - self.answered

    def __repr__(self) -> str:
        return (
            f"{self.pair}: webhook {self.webhook:.3f} s / stream {self.stream:.3f} s after the answer, "
            f"{self.posted - self.woken:.3f} / {self.streamed - self.woken:.3f} s after the wake-up, "
            f"{self.published} published"
        )


def _round(
    cluster: Cluster,
    server: Process,
    pair: tuple[str, str],
    receiver: Receiver,
    stream: Stream,
    subscription: dict[str, Any],
    http: httpx.Client,
    watch: ChannelWatch,
) -> Round:
    """Wake every process (B and C poll now, then not for a whole interval), write ``pair`` through ``server``."""
    count = len(receiver.arrivals) + 1
    woken = time.monotonic()
    watch.publish()
    time.sleep(WAKE_GAP)
    sent, answered = _set_presence(http, cluster, server, pair)
    posted, item = receiver.wait_for_count(count, ARRIVAL)
    streamed, event = stream.wait_for(_is(pair), ARRIVAL, f"{pair} (written through {server.name})", since=sent)
    _check_item(item, subscription)
    assert event["event"] == "presence", event
    assert event["id"] == event["data"]["sequenceNumber"], event
    # This test's own subscriber may hear a message a little after B and C acted on it.
    heard_by = max(posted, streamed) + WATCH_GRACE
    time.sleep(max(0.0, heard_by - time.monotonic()))
    return Round(pair, woken, sent, answered, posted, streamed, watch.between(woken, heard_by))


def test_a_write_through_one_process_is_delivered_by_a_second_and_streamed_by_a_third_at_once(
    tmp_path: Path, key_folder: Path, clean_postgres_url: str, redis_url: str
) -> None:
    """With Redis: each setPresence through A is POSTed by B and streamed by C at once, not at their next poll.

    Before each write the test publishes a wake-up itself, so B and C have just polled and would
    poll next only DELIVERY_POLL and FEED_POLL later. A write through A (which publishes) must
    arrive within DEADLINE of its answer and before that next poll; a write through D (no Redis:
    nothing published) must not arrive before it.
    """
    watch = ChannelWatch(redis_url)
    try:
        before = watch.subscribers()
        with (
            _cluster(tmp_path, key_folder, clean_postgres_url, redis_url) as cluster,
            Receiver() as receiver,
            httpx.Client(timeout=30) as http,
        ):
            # A, B and C subscribe to the channel in the background once started: wait until they have.
            deadline = time.monotonic() + ARRIVAL
            while watch.subscribers() < before + 3:
                assert time.monotonic() < deadline, f"A, B and C did not all subscribe to {CHANNEL}\n{cluster.logs()}"
                time.sleep(0.05)
            with _watching(cluster, receiver, http) as (stream, subscription):

                def write(server: Process, pair: tuple[str, str]) -> Round:
                    return _round(cluster, server, pair, receiver, stream, subscription, http, watch)

                fast = [write(cluster.writer, pair) for pair in ROUNDS]
                print("\nthrough A (published):", *fast, sep="\n  ")
                for n, timed in enumerate(fast, start=1):
                    assert timed.published >= 2, f"round {n}: A published nothing on {CHANNEL}: {fast}"
                    assert timed.webhook <= DEADLINE, f"round {n}: the webhook came late: {fast}"
                    assert timed.stream <= DEADLINE, f"round {n}: the stream event came late: {fast}"
                    # Sooner than any poll could have brought it: the wake-up through Redis did.
                    assert timed.posted < timed.woken + DELIVERY_POLL - POLL_SLACK, (
                        f"round {n}: webhook by poll: {fast}"
                    )
                    assert timed.streamed < timed.woken + FEED_POLL - POLL_SLACK, f"round {n}: stream by poll: {fast}"
                slow = _control(cluster, write)
                print("through D (not published):", *slow, sep="\n  ")
            assert len(receiver.arrivals) == len(ROUNDS) + len(slow), receiver.arrivals
    finally:
        watch.close()


def _control(cluster: Cluster, write: Callable[[Process, tuple[str, str]], Round]) -> list[Round]:
    """Writes through D, which publishes nothing: B and C find them only at their next poll.

    Anybody else publishing on the shared channel meanwhile spoils an attempt (it wakes B or C):
    such an attempt proves nothing and is made again.
    """
    assert cluster.quiet_writer is not None
    attempts = []
    for pair in CONTROL_PAIRS:
        timed = write(cluster.quiet_writer, pair)
        attempts.append(timed)
        if timed.published > 1:
            continue
        assert timed.posted >= timed.woken + DELIVERY_POLL - POLL_SLACK, f"B delivered before its poll: {attempts}"
        assert timed.streamed >= timed.woken + FEED_POLL - POLL_SLACK, f"C streamed before its poll: {attempts}"
        return attempts
    raise AssertionError(f"other publishers on {CHANNEL} spoiled every control attempt: {attempts}")


def test_without_redis_every_process_still_gets_the_change_by_polling(
    tmp_path: Path, key_folder: Path, clean_postgres_url: str
) -> None:
    """The same three processes without a Redis URL: B delivers and C streams, found by their polls alone."""
    with (
        _cluster(tmp_path, key_folder, clean_postgres_url, None) as cluster,
        Receiver() as receiver,
        httpx.Client(timeout=30) as http,
    ):
        with _watching(cluster, receiver, http) as (stream, subscription):
            pair = ROUNDS[0]
            sent, answered = _set_presence(http, cluster, cluster.writer, pair)
            posted, item = receiver.wait_for_count(1, ARRIVAL)
            streamed, event = stream.wait_for(_is(pair), ARRIVAL, f"{pair}", since=sent)
            _check_item(item, subscription)
            assert event["id"] == event["data"]["sequenceNumber"], event
        print(
            f"\nwithout Redis: webhook {posted - answered:.3f} s / stream {streamed - answered:.3f} s after the answer"
        )
