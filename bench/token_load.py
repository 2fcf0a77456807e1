"""The load generator of ``token_bench.py`` for requests wrk cannot repeat: refresh tokens and codes.

A refresh token is spent by its first use (the answer carries the next one) and an authorization
code redeems once, so every request needs a value the previous answer, or a sign-in, made. This
process keeps ``connections`` HTTP/1.1 keep-alive connections on one asyncio (uvloop) event loop,
each sending one request at a time, and writes what it measured as JSON to the spec's ``out`` file
(stdout would do for a few figures, but not for thousands of codes):

``python bench/token_load.py SPEC`` where SPEC is a JSON file (written by ``token_bench.py``) with
``out`` and ``mode``:

- ``refresh``: connection *i* sends ``form`` with ``refresh_token`` set to chain *i*'s token, and
  takes the answer's ``refresh_token`` as the chain's next one (``tokens``: one a chain). The
  result's ``tokens`` are where each chain stands, for the next run.
- ``code``: the connections take the ``codes`` in turn, each once, with ``form`` (the code goes as
  ``code``). When they run out, the run ends early (``ran_out``) and its rate is over the time it ran.
- ``authorize``: GET ``path`` with ``cookie`` until ``count`` answers were 302s with a ``code`` in
  their ``Location`` (a signed-in person's sign-in, once per code); the result's ``codes``.

Requests answered after ``seconds`` are not counted (their answers are still read, and a refresh
chain still takes its next token). With ``fixed`` (the bare-ASGI baseline, which answers every
request with the same bytes) the values sent are not taken from the answers, and the answers are
only counted. Latencies are from writing a request to having read its whole answer.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any


class Connection:
    """One keep-alive HTTP/1.1 connection: a request written, its answer read (Content-Length bodies only)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name:
                headers[name.strip().lower()] = value.strip()
        length = headers.get(b"content-length")
        if length is None:
            raise RuntimeError(f"answer {status} without Content-Length: {head[:300]!r}")
        body = await self.reader.readexactly(int(length))
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


def post(host: str, path: str, form: dict[str, str]) -> bytes:
    body = urllib.parse.urlencode(form).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


class Tally:
    """Requests answered within the measured time: their latencies, and the statuses other than 200."""

    def __init__(self, seconds: float) -> None:
        self.started = time.perf_counter()
        self.end = self.started + seconds
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.first_error: str | None = None
        self.stopped: float | None = None

    def record(self, sent: float, status: int, body: bytes) -> bool:
        """Count an answer read now; False once the measured time is over."""
        now = time.perf_counter()
        if now > self.end:
            return False
        self.latencies.append(now - sent)
        if status != 200:
            self.errors[str(status)] = self.errors.get(str(status), 0) + 1
            if self.first_error is None:
                self.first_error = f"{status}: {body[:300].decode(errors='replace')}"
        return True

    def result(self) -> dict[str, Any]:
        elapsed = min(self.stopped or self.end, self.end) - self.started
        latencies = sorted(self.latencies)
        count = len(latencies)
        p99 = latencies[min(count - 1, int(count * 0.99))] if count else 0.0
        return {
            "requests": count,
            "seconds": elapsed,
            "rps": count / elapsed if elapsed > 0 else 0.0,
            "p50_ms": statistics.median(latencies) * 1e3 if count else 0.0,
            "p99_ms": p99 * 1e3,
            "errors": self.errors,
            "first_error": self.first_error,
        }


async def refresh(spec: dict[str, Any]) -> dict[str, Any]:
    host, port, path = spec["host"], spec["port"], spec["path"]
    tokens: list[str] = list(spec["tokens"])
    fixed = spec.get("fixed", False)
    connections = [await Connection.open(host, port) for _ in tokens]
    tally = Tally(spec["seconds"])
    broken: list[str] = []

    async def chain(n: int) -> None:
        conn = connections[n]
        while time.perf_counter() < tally.end:
            request = post(host, path, {**spec["form"], "refresh_token": tokens[n]})
            sent = time.perf_counter()
            status, _, body = await conn.exchange(request)
            tally.record(sent, status, body)
            if status != 200:
                broken.append(f"chain {n}: {status} {body[:200].decode(errors='replace')}")
                return
            if not fixed:
                tokens[n] = json.loads(body)["refresh_token"]

    await asyncio.gather(*(chain(n) for n in range(len(tokens))))
    for conn in connections:
        conn.close()
    return {**tally.result(), "tokens": tokens, "broken": broken}


async def code(spec: dict[str, Any]) -> dict[str, Any]:
    host, port, path = spec["host"], spec["port"], spec["path"]
    codes: list[str] = spec["codes"]
    fixed = spec.get("fixed", False)
    connections = [await Connection.open(host, port) for _ in range(spec["connections"])]
    tally = Tally(spec["seconds"])
    taken = 0

    async def redeem(conn: Connection) -> None:
        nonlocal taken
        while time.perf_counter() < tally.end:
            if fixed:
                value = codes[0]
            elif taken < len(codes):
                value, taken = codes[taken], taken + 1
            else:
                tally.stopped = tally.stopped or time.perf_counter()
                return
            request = post(host, path, {**spec["form"], "code": value})
            sent = time.perf_counter()
            status, _, body = await conn.exchange(request)
            tally.record(sent, status, body)

    await asyncio.gather(*(redeem(conn) for conn in connections))
    for conn in connections:
        conn.close()
    return {**tally.result(), "codes_used": taken, "ran_out": tally.stopped is not None}


async def authorize(spec: dict[str, Any]) -> dict[str, Any]:
    host, port, path = spec["host"], spec["port"], spec["path"]
    count: int = spec["count"]
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {spec['cookie']}\r\n\r\n".encode()
    connections = [await Connection.open(host, port) for _ in range(spec["connections"])]
    codes: list[str] = []
    problems: list[str] = []
    started = time.perf_counter()

    async def sign_in(conn: Connection) -> None:
        while len(codes) + len(problems) < count:
            status, headers, body = await conn.exchange(request)
            location = headers.get(b"location", b"").decode()
            found = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).get("code")
            if status != 302 or not found:
                problems.append(f"{status} {location[:200]} {body[:200].decode(errors='replace')}")
                return
            codes.append(found[0])

    await asyncio.gather(*(sign_in(conn) for conn in connections))
    for conn in connections:
        conn.close()
    return {"codes": codes[:count], "seconds": time.perf_counter() - started, "problems": problems}


MODES = {"refresh": refresh, "code": code, "authorize": authorize}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        result = runner.run(MODES[spec["mode"]](spec))
    Path(spec["out"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
