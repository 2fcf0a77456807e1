"""What the benchmarks share: processes, the bare-ASGI baseline, wrk, users, reporting and results.

The benchmark scripts of this folder import it (``import harness``; a script's own folder is on
``sys.path``). It is also the baseline server process's entry point:
``python bench/harness.py --serve-baseline SPEC`` (started by ``start_baseline``). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
#: The request-id values the baseline sends (same length as a real GUID).
FIXED_REQUEST_ID = "00000000-0000-4000-8000-000000000000"
#: Response headers the server adds itself (not the application); the baseline leaves them to it too.
SERVER_HEADERS = frozenset({"date", "server", "connection", "transfer-encoding", "keep-alive"})
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
WARMUP_SECONDS = 1
#: The line ``presenced serve`` and the baseline print once they listen, with their URL.
LISTENING = r"listening on (http://\S+)"
FORM_TYPE = "application/x-www-form-urlencoded"
#: The demo's daemon app (``presenced demo --json`` gives its ``clientId`` and ``clientSecret``).
DEMO_DAEMON_APP = "Presence Daemon (demo)"


# --------------------------------------------------------------------------- answers


class Answer(NamedTuple):
    """An HTTP answer: status, headers as sent, body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), if any."""
        return next((v for k, v in self.headers if k.lower() == name), None)


def fetch(url: str, token: str, body: bytes | None = None) -> Answer:
    """GET ``url`` (POST ``body`` as JSON) with a bearer token; the answer must be 2xx/3xx."""
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        return Answer(response.status, list(response.getheaders()), response.read())


def same_answer(label: str, got: Answer, want: Answer) -> None:
    """Raise unless the baseline's answer has presenced's status, body and header names."""
    same_names = sorted(k.lower() for k, _ in got.headers) == sorted(k.lower() for k, _ in want.headers)
    if got.status != want.status or got.body != want.body or not same_names:
        raise RuntimeError(f"{label}: baseline answer differs: {got.status} {got.headers} vs {want.headers}")


# --------------------------------------------------------------------------- baseline server process


def serve_baseline(spec_path: str) -> None:
    """Serve a bare ASGI app that answers with the captured status, headers and bytes.

    Runs in its own process (``harness.py --serve-baseline SPEC``) with the same uvicorn
    configuration and listening socket as ``presenced serve``. The spec (written by
    ``start_baseline``) holds either one answer for every request (``"answer"``: nothing is looked
    at), or one answer per path (``"by_path"``: a dict lookup, 404 for any other path), so that one
    process can serve several pages.
    """
    import gc

    import uvicorn
    import uvloop

    from presenced.cli.main import listen, server_config

    def messages(answer: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer["headers"]]
        start = {"type": "http.response.start", "status": answer["status"], "headers": headers}
        return start, {"type": "http.response.body", "body": Path(answer["body_file"]).read_bytes()}

    spec = json.loads(Path(spec_path).read_text())
    app: Callable[[Any, Any, Any], Any]
    if "answer" in spec:
        start, finish = messages(spec["answer"])

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            await send(start)
            await send(finish)

    else:
        answers = {path: messages(answer) for path, answer in spec["by_path"].items()}
        missing = (
            {"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]},
            {"type": "http.response.body", "body": b""},
        )

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            start, finish = answers.get(scope["path"], missing)
            await send(start)
            await send(finish)

    # The same socket and server settings as `presenced serve`.
    sock = listen(HOST, 0)
    print(f"baseline listening on http://{HOST}:{sock.getsockname()[1]}", flush=True)

    async def run() -> None:
        config = server_config(app)
        gc.collect()
        gc.freeze()
        await uvicorn.Server(config).serve(sockets=[sock])

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())


def baseline_answer(answer: Answer, body_file: Path) -> dict[str, Any]:
    """The baseline's copy of presenced's answer: its status, body and headers, with fixed request ids."""
    app_headers = [(k.lower(), v) for k, v in answer.headers if k.lower() not in SERVER_HEADERS]
    fixed = [(k, FIXED_REQUEST_ID if k in {"request-id", "client-request-id"} else v) for k, v in app_headers]
    body_file.write_bytes(answer.body)
    return {"status": answer.status, "headers": fixed, "body_file": str(body_file)}


def start_baseline(
    name: str,
    workdir: Path,
    pin: bool,
    *,
    answer: Answer | None = None,
    by_path: dict[str, Answer] | None = None,
) -> Server:
    """Start a baseline process answering every request with ``answer``, or each path with its answer.

    Returns once it answers. The answers are presenced's: the baseline sends their status, bytes and
    headers, with fixed request ids.
    """
    if (answer is None) == (by_path is None):
        raise ValueError("give either answer or by_path")
    spec: dict[str, Any] = {}
    if answer is not None:
        spec["answer"] = baseline_answer(answer, workdir / f"{name}.body")
    else:
        assert by_path is not None
        spec["by_path"] = {
            path: baseline_answer(one, workdir / f"{name}-{n}.body") for n, (path, one) in enumerate(by_path.items())
        }
    spec_file = workdir / f"{name}.json"
    spec_file.write_text(json.dumps(spec))
    server = start_server(
        name,
        [*pin_prefix(0, pin), sys.executable, str(BENCH_DIR / "harness.py"), "--serve-baseline", str(spec_file)],
        workdir,
    )
    try:
        wait_answering(server.url)
    except BaseException:
        stop_server(server)
        raise
    return server


# --------------------------------------------------------------------------- processes


def pin_prefix(core: int, pin: bool) -> list[str]:
    return ["taskset", "-c", str(core)] if pin else []


def can_pin() -> bool:
    return shutil.which("taskset") is not None and {0, 1} <= os.sched_getaffinity(0)


def clean_env() -> dict[str, str]:
    """The environment without PRESENCED_* variables: the data dir alone decides the store."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}


def presenced_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "presenced", *args]


def run_cli(*args: str, timeout: float = 120.0) -> str:
    done = subprocess.run(
        presenced_cmd(*args), capture_output=True, text=True, timeout=timeout, env=clean_env(), check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"presenced {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    url: str = ""

    def stderr_tail(self, lines: int = 20) -> str:
        """The last lines of stderr but the log's info and debug lines (a line per request is no problem)."""
        try:
            text = self.stderr.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.strip().splitlines() if not _routine(line)]
        return "\n".join(kept[-lines:])


def _routine(line: str) -> bool:
    """A JSON log line below warning (``presenced serve`` logs JSON when stderr is a file)."""
    if not line.startswith('{"time":'):
        return False
    try:
        return json.loads(line).get("level") in {"debug", "info"}
    except ValueError:
        return False


def start_server(name: str, cmd: list[str], workdir: Path, pattern: str = LISTENING) -> Server:
    """Start ``cmd``, wait (bounded) for a stdout line matching ``pattern`` with the URL."""
    out, err = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    with out.open("wb") as fout, err.open("wb") as ferr:
        proc = subprocess.Popen(cmd, stdout=fout, stderr=ferr, stdin=subprocess.DEVNULL, env=clean_env())
    server = Server(name, proc, out, err)
    regex = re.compile(pattern)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        match = regex.search(out.read_text(errors="replace"))
        if match:
            server.url = match.group(1)
            return server
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {server.stderr_tail()}")
        time.sleep(0.05)
    stop_server(server)
    raise RuntimeError(f"{name} did not report its URL within {STARTUP_TIMEOUT:.0f} s")


def start_presenced(workdir: Path, pin: bool, *serve_args: str, name: str = "presenced") -> Server:
    """``presenced serve --http --throttle off <serve_args> --port 0`` on core 0 (when pinning); returns once it is
    healthy. The benchmarks measure the server, not Graph's limit on one app (docs/graph-api.md, "Throttling")."""
    command = presenced_cmd("serve", "--http", "--throttle", "off", *serve_args, "--port", "0")
    server = start_server(name, [*pin_prefix(0, pin), *command], workdir)
    try:
        wait_ready(f"{server.url}/health")
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def serving(problems: list[str], stderr: bool = True) -> Iterator[list[Server]]:
    """The servers the block appends to the list it gets, stopped at the end.

    If the block ends normally, a server that had exited by then is a problem, and so (with
    ``stderr``) is anything a server wrote to stderr (its last lines).
    """
    servers: list[Server] = []
    try:
        yield servers
        for server in servers:
            if server.proc.poll() is not None:
                problems.append(f"{server.name} exited during the run with {server.proc.returncode}")
    finally:
        for server in servers:
            stop_server(server)
    if stderr:
        for server in servers:
            tail = server.stderr_tail()
            if tail:
                problems.append(f"{server.name} stderr: {tail}")


def wait_ready(url: str, timeout: float = STARTUP_TIMEOUT) -> None:
    """Wait (bounded) until ``GET url`` answers 2xx/3xx."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
                return
        except Exception as exc:
            last = exc
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready within {timeout:.0f} s: {last}")


def wait_answering(url: str, path: str = "/") -> None:
    """Wait (bounded) until the server answers ``GET path`` at all, whatever the status."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        connection = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=2)
        try:
            connection.request("GET", path)
            connection.getresponse().read()
            return
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not answering within {STARTUP_TIMEOUT:.0f} s: {exc}") from exc
            time.sleep(0.05)
        finally:
            connection.close()


# --------------------------------------------------------------------------- data


def demo_daemon_app(demo: dict[str, Any]) -> dict[str, Any]:
    """The demo daemon app's entry in the output of ``presenced demo --json``."""
    app: dict[str, Any] = next(app for app in demo["apps"] if app["displayName"] == DEMO_DAEMON_APP)
    return app


async def add_users(
    data_dir: Path, tenant_id: str, users: Sequence[tuple[str, str, str]], database_url: str | None = None
) -> None:
    """Put the users (id, upn, display name) straight into the store through the project's own API."""
    from datetime import UTC, datetime

    from presenced.bootstrap import build
    from presenced.config import Settings
    from presenced.services.entities import User

    runtime = await build(Settings(data_dir=data_dir, database_url=database_url))
    try:
        now = datetime.now(UTC)
        async with runtime.store.begin() as tx:
            for user_id, upn, name in users:
                await tx.put_user(User(user_id, tenant_id, upn, name), now)
    finally:
        await runtime.close()


# --------------------------------------------------------------------------- PostgreSQL

#: Where the benchmarks create (and drop) a database of their own.
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def _admin(admin_url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database(admin_url: str) -> str | None:
    """A new database on the admin URL's server; its URL, or None (with the reason printed) if unreachable."""
    name = f"presenced_bench_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(asyncio.wait_for(_admin(admin_url, f'CREATE DATABASE "{name}"'), timeout=15))
    except Exception as exc:
        print(f"skipping PostgreSQL: cannot create a database at {admin_url}: {exc!r}", flush=True)
        return None
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


def drop_database(admin_url: str, url: str) -> None:
    name = url.rpartition("/")[2]
    try:
        asyncio.run(asyncio.wait_for(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'), timeout=30))
    except Exception as exc:
        print(f"WARNING: could not drop database {name}: {exc!r}", flush=True)


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    requests = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    percentiles = {int(p): float(v) * _UNITS_MS[u] for p, v, u in _PERCENTILE.findall(output)}
    if rps is None or requests is None or set(percentiles) != {50, 99}:
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socket_errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True)) if sockets else {}
    )
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=percentiles[50],
        p99_ms=percentiles[99],
        requests=int(requests.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors={k: v for k, v in socket_errors.items() if v},
    )


def wrk_output(
    url: str,
    connections: int,
    duration: int,
    pin: bool,
    *,
    headers: Sequence[str] = (),
    script: Path | None = None,
    timeout: str | None = None,
    script_args: Sequence[str] = (),
) -> str:
    """What ``wrk -t1 -c<connections> -d<duration>s --latency`` on core 1 (when pinning) prints.

    ``headers`` go as ``-H``, ``timeout`` (e.g. ``"10s"``) as wrk's ``--timeout``, ``script_args``
    to the Lua script (after ``--``).
    """
    cmd = [*pin_prefix(1, pin), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if timeout is not None:
        cmd += ["--timeout", timeout]
    for header in headers:
        cmd += ["-H", header]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def run_wrk(
    url: str,
    connections: int,
    duration: int,
    pin: bool,
    *,
    headers: Sequence[str] = (),
    script: Path | None = None,
    timeout: str | None = None,
) -> WrkResult:
    """``wrk_output``, parsed."""
    return parse_wrk(wrk_output(url, connections, duration, pin, headers=headers, script=script, timeout=timeout))


def post_script(path: Path, body: str, content_type: str = "application/json") -> Path:
    """A wrk script that POSTs ``body`` with ``content_type`` (other headers come with -H)."""
    assert "]==]" not in body
    path.write_text(f'wrk.method = "POST"\nwrk.body = [==[{body}]==]\nwrk.headers["Content-Type"] = "{content_type}"\n')
    return path


def missing_wrk() -> bool:
    """True, having said so, when wrk is not installed."""
    if shutil.which("wrk") is not None:
        return False
    print("install wrk (apt-get install wrk)")
    return True


# --------------------------------------------------------------------------- report


def fmt_rps(value: float) -> str:
    return f"{value:,.0f}"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def median_of(results: Sequence[WrkResult]) -> dict[str, float]:
    return {
        "rps": statistics.median(r.rps for r in results),
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
    }


def describe(result: WrkResult | dict[str, float]) -> str:
    values = asdict(result) if isinstance(result, WrkResult) else result
    return f"{fmt_rps(values['rps'])} req/s p50 {values['p50_ms']:.2f} ms p99 {values['p99_ms']:.2f} ms"


def note_errors(label: str, result: WrkResult, problems: list[str]) -> None:
    if result.errors:
        problem = f"{label}: {result.non_2xx} non-2xx responses, socket errors {result.socket_errors}"
        problems.append(problem)
        print(f"  WARNING {problem}", flush=True)


def machine(pin: bool) -> dict[str, Any]:
    """The part of a results file's configuration that describes the machine."""
    return {"pinned": pin, "cpus": os.cpu_count(), "python": sys.version.split()[0]}


# --------------------------------------------------------------------------- a benchmark's run


def add_store_options(parser: argparse.ArgumentParser, pin_help: str) -> None:
    """``--no-pin``, ``--no-postgres`` and ``--postgres-admin-url``, for the scripts that measure both stores."""
    parser.add_argument("--no-pin", action="store_true", help=pin_help)
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    parser.add_argument(
        "--postgres-admin-url",
        default=DEFAULT_ADMIN_URL,
        help=f"a database to create (and drop) the benchmark's own database from (default {DEFAULT_ADMIN_URL})",
    )


def print_problems(results: dict[str, Any]) -> None:
    """The end of a summary: whether PostgreSQL was left out, and the problems."""
    if not results["config"]["postgres"]:
        print("(PostgreSQL not measured)")
    for problem in results["problems"]:
        print(f"problem: {problem}")


def add_measurement_options(
    parser: argparse.ArgumentParser, *, duration: int, connections: int, connections_help: str
) -> None:
    """``--duration``, ``--rounds`` and ``--connections``, with the script's defaults."""
    parser.add_argument("--duration", type=int, default=duration, help=f"seconds per measurement (default {duration})")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=int, default=connections, help=connections_help)


def run(
    name: str,
    args: argparse.Namespace,
    benchmark: Callable[[argparse.Namespace, Path, bool], dict[str, Any]],
    print_summary: Callable[[dict[str, Any]], None],
) -> int:
    """Run ``benchmark`` in a temporary directory, print its summary, write ``results/<name>.json``.

    Pins (servers to core 0, wrk to core 1) unless ``--no-pin`` or it cannot. Returns the exit
    status: 1 if the results list problems.
    """
    pin = not args.no_pin and can_pin()
    if not args.no_pin and not pin:
        print("note: not pinning (needs taskset and cores 0 and 1)", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"presenced-{name.replace('_', '-')}-"))
    try:
        results = benchmark(args, workdir, pin)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print_summary(results)
    results_file = BENCH_DIR / "results" / f"{name}.json"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {results_file}")
    return 1 if results["problems"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The benchmarks' baseline server process.")
    parser.add_argument("--serve-baseline", metavar="SPEC", required=True, help="the spec start_baseline wrote")
    serve_baseline(parser.parse_args(argv).serve_baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
