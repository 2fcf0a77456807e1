"""A real webhook endpoint for end-to-end tests: an HTTP server on loopback in a thread of the test process.

It does what a Graph subscriber's endpoint does: a POST with a ``validationToken`` query
parameter is answered 200 text/plain with the (URL-decoded) token; any other POST is a
``changeNotificationCollection`` whose items are recorded with their arrival time. It can
be told to answer with another status (e.g. 503), to take a while over each POST (``delay``)
or to hold POSTs until released (``stall``), and it can be closed, leaving a dead port.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: How long a stalled POST is held at most (so that a forgotten stall cannot hang a test run).
MAX_STALL = 30.0


@dataclass(frozen=True)
class Arrival:
    """One notification item as it arrived."""

    item: dict[str, Any]
    #: ``time.monotonic()`` when its POST's body had been read.
    at: float
    #: Which POST (0, 1, ...) of this receiver carried it.
    post: int
    #: The status the receiver answered that POST with.
    status: int

    @property
    def id(self) -> str:
        return str(self.item.get("id"))


@dataclass
class Post:
    """One notification POST: the whole collection, when it came and how it was answered."""

    body: dict[str, Any]
    at: float
    status: int
    finished: float | None = None


@dataclass
class WebhookReceiver:
    """Start with :meth:`start`; ``url`` is then the endpoint to subscribe."""

    path: str = "/hook"
    #: The status notification POSTs are answered with.
    status: int = 202
    #: Seconds each notification POST takes before it is answered.
    delay: float = 0.0
    validations: list[str] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _released: threading.Event = field(default_factory=threading.Event)
    _stalling: bool = False
    _in_flight: int = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test reports what it needs

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}{self.path}"
        self._thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening (the port is closed: connections to it are refused) and let stalled POSTs go."""
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ behaviour

    def stall(self) -> None:
        """Hold every notification POST from now on (up to ``MAX_STALL`` seconds each) until :meth:`release`."""
        self._released.clear()
        self._stalling = True

    def release(self) -> None:
        self._stalling = False
        self._released.set()

    @property
    def in_flight(self) -> int:
        """Notification POSTs read but not answered yet."""
        with self._changed:
            return self._in_flight

    # ------------------------------------------------------------------ reading

    def received_ids(self) -> set[str]:
        with self._changed:
            return {a.id for a in self.arrivals}

    def items(self, predicate: Callable[[dict[str, Any]], bool] = lambda _: True) -> list[Arrival]:
        with self._changed:
            return [a for a in self.arrivals if predicate(a.item)]

    def wait_for(self, condition: Callable[[WebhookReceiver], bool], timeout: float, what: str) -> float:
        """Wait until ``condition(self)`` holds (checked on every arrival); the seconds it took.

        Raises AssertionError naming ``what`` when ``timeout`` passes first.
        """
        started = time.monotonic()
        deadline = started + timeout
        with self._changed:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout} s waiting for {what}; "
                        f"{len(self.posts)} POSTs, {len(self.arrivals)} items, {len(self.validations)} validations"
                    )
                self._changed.wait(min(left, 0.1))
        return time.monotonic() - started

    # ------------------------------------------------------------------ the endpoint

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(request.path).query)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        if "validationToken" in query:
            token = query["validationToken"][0]
            with self._changed:
                self.validations.append(token)
                self._changed.notify_all()
            self._answer(request, 200, token.encode(), "text/plain; charset=utf-8")
            return
        arrived = time.monotonic()
        body = json.loads(raw)
        status = self.status
        with self._changed:
            post = Post(body, arrived, status)
            number = len(self.posts)
            self.posts.append(post)
            self.arrivals.extend(Arrival(item, arrived, number, status) for item in body.get("value", []))
            self._in_flight += 1
            self._changed.notify_all()
        try:
            if self._stalling:
                self._released.wait(MAX_STALL)
            if self.delay:
                time.sleep(self.delay)
            self._answer(request, status, b"", None)
        finally:
            with self._changed:
                self._in_flight -= 1
                post.finished = time.monotonic()
                self._changed.notify_all()

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str | None) -> None:
        try:
            request.send_response(status)
            if content_type:
                request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except OSError:
            pass  # the caller gave up (its timeout, or it was killed): nothing to answer
