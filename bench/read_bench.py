"""Read-path benchmark: presenced against a bare ASGI app on the same server stack.

Run:  /work/venv/bin/python bench/read_bench.py [--duration 5] [--rounds 3] [--connections 32] [--no-pin]

1. Single read, ``GET /v1.0/users/{id}/presence``, under ``wrk -c<connections>``, interleaved
   round by round with a baseline: a bare ASGI callable served by the same uvicorn/uvloop/httptools
   configuration that returns the same bytes. The figure to read is the ratio presenced/baseline.
2. ``POST /v1.0/communications/getPresencesByUserId`` with 650 ids at ``wrk -c1`` (latency).

Everything listens on 127.0.0.1 only. Results go to stdout and bench/results/read_bench.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results" / "read_bench.json"
USER_NAMESPACE = uuid.UUID("0d7c7b52-58a4-4d2e-9a0b-6f1f5e0b7a11")
MANY_IDS = 650
#: The request-id values the baseline sends (same length as a real GUID).
FIXED_REQUEST_ID = "00000000-0000-4000-8000-000000000000"
#: Response headers the server adds itself (not the application); the baseline leaves them to it too.
SERVER_HEADERS = frozenset({"date", "server", "connection", "transfer-encoding", "keep-alive"})
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
WARMUP_SECONDS = 1


# --------------------------------------------------------------------------- baseline server process


def serve_baseline(spec_path: str) -> None:
    """Serve a bare ASGI app that answers every request with the captured bytes.

    Runs in its own process (``read_bench.py --serve-baseline SPEC``) with the same
    uvicorn configuration and listening socket as ``presenced serve``.
    """
    import gc

    import uvicorn
    import uvloop

    from presenced.cli.main import listen, server_config

    spec = json.loads(Path(spec_path).read_text())
    body = Path(spec["body_file"]).read_bytes()
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in spec["headers"]]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    finish = {"type": "http.response.body", "body": body}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
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
        try:
            text = self.stderr.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


def start_server(name: str, cmd: list[str], workdir: Path, pattern: str) -> Server:
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


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=STOP_TIMEOUT)


def wait_ready(url: str, timeout: float = STARTUP_TIMEOUT) -> None:
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


# --------------------------------------------------------------------------- data


def bench_users(tenant_id: str) -> list[tuple[str, str, str]]:
    """(id, upn, display name) of the generated users; ids are stable across runs."""
    users = []
    for i in range(MANY_IDS):
        user_id = str(uuid.uuid5(USER_NAMESPACE, f"{tenant_id}:{i}"))
        users.append((user_id, f"bench.user{i:03d}@contoso.example", f"Bench User {i:03d}"))
    return users


async def add_users(data_dir: Path, tenant_id: str, users: Sequence[tuple[str, str, str]]) -> None:
    """Put the users straight into the store through the project's own API."""
    from datetime import UTC, datetime

    from presenced.bootstrap import build
    from presenced.config import Settings
    from presenced.services.ports import User

    runtime = await build(Settings.from_env(data_dir=data_dir))
    try:
        now = datetime.now(UTC)
        async with runtime.store.begin() as tx:
            for user_id, upn, name in users:
                await tx.put_user(User(user_id, tenant_id, upn, name), now)
    finally:
        await runtime.close()


def fetch(url: str, token: str, body: bytes | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, list(response.getheaders()), response.read()


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


def run_wrk(url: str, token: str, connections: int, duration: int, pin: bool, script: Path | None = None) -> WrkResult:
    cmd = [*pin_prefix(1, pin), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    cmd += ["-H", f"Authorization: Bearer {token}"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk(done.stdout)


def post_script(path: Path, body: bytes) -> Path:
    text = body.decode()
    assert "]==]" not in text
    path.write_text(
        f'wrk.method = "POST"\nwrk.body = [==[{text}]==]\nwrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


# --------------------------------------------------------------------------- report


def fmt_rps(value: float) -> str:
    return f"{value:,.0f}"


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


# --------------------------------------------------------------------------- main


def benchmark(args: argparse.Namespace, workdir: Path, pin: bool) -> dict[str, Any]:
    data_dir = workdir / "data"
    problems: list[str] = []

    demo = json.loads(run_cli("demo", "--data-dir", str(data_dir), "--json"))
    tenant_id = demo["tenantId"]
    reader, target = demo["users"][0], demo["users"][1]
    many = bench_users(tenant_id)
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(add_users(data_dir, tenant_id, many), timeout=120))
    print(f"added {len(many)} users in {time.monotonic() - started:.1f} s", flush=True)

    servers: list[Server] = []
    try:
        real = start_server(
            "presenced",
            [*pin_prefix(0, pin), *presenced_cmd("serve", "--http", "--data-dir", str(data_dir), "--port", "0")],
            workdir,
            r"listening on (http://\S+)",
        )
        servers.append(real)
        wait_ready(f"{real.url}/health")
        token = run_cli(
            "token", "--data-dir", str(data_dir), "--user", reader["userPrincipalName"], "--scopes", "Presence.Read.All"
        ).strip()

        # Capture the real answer to the benchmarked request.
        read_path = f"/v1.0/users/{target['id']}/presence"
        status, real_headers, real_body = fetch(real.url + read_path, token)
        if status != 200:
            raise RuntimeError(f"GET {read_path} answered {status}")
        app_headers = [(k.lower(), v) for k, v in real_headers if k.lower() not in SERVER_HEADERS]
        baseline_headers = [
            (k, FIXED_REQUEST_ID if k in {"request-id", "client-request-id"} else v) for k, v in app_headers
        ]
        body_file = workdir / "body.json"
        body_file.write_bytes(real_body)
        spec = workdir / "baseline.json"
        spec.write_text(json.dumps({"body_file": str(body_file), "headers": baseline_headers}))

        baseline = start_server(
            "baseline",
            [*pin_prefix(0, pin), sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(spec)],
            workdir,
            r"listening on (http://\S+)",
        )
        servers.append(baseline)
        wait_ready(baseline.url + read_path)
        b_status, b_headers, b_body = fetch(baseline.url + read_path, token)
        same_names = sorted(k.lower() for k, _ in b_headers) == sorted(k.lower() for k, _ in real_headers)
        if b_status != 200 or b_body != real_body or not same_names:
            raise RuntimeError(f"baseline answer differs: {b_status} {b_headers} vs {real_headers}")

        # The 650-id request, checked once before it is measured.
        ids = [user_id for user_id, _, _ in many]
        many_body = json.dumps({"ids": ids}, separators=(",", ":")).encode()
        many_path = "/v1.0/communications/getPresencesByUserId"
        m_status, _, m_answer = fetch(real.url + many_path, token, many_body)
        returned = len(json.loads(m_answer)["value"])
        if m_status != 200 or returned != MANY_IDS:
            raise RuntimeError(f"POST {many_path} answered {m_status} with {returned} presences")
        script = post_script(workdir / "post.lua", many_body)

        print(
            f"single read: GET {read_path} ({len(real_body)} bytes) as {reader['userPrincipalName']}; "
            f"wrk -t1 -c{args.connections} -d{args.duration}s; pinned: {pin}",
            flush=True,
        )
        for server in (baseline, real):  # warm both up; not recorded
            run_wrk(server.url + read_path, token, args.connections, WARMUP_SECONDS, pin)
        run_wrk(real.url + many_path, token, 1, WARMUP_SECONDS, pin, script)

        rounds: list[dict[str, Any]] = []
        for n in range(1, args.rounds + 1):
            base_r = run_wrk(baseline.url + read_path, token, args.connections, args.duration, pin)
            note_errors(f"round {n} bare ASGI", base_r, problems)
            real_r = run_wrk(real.url + read_path, token, args.connections, args.duration, pin)
            note_errors(f"round {n} presenced", real_r, problems)
            many_r = run_wrk(real.url + many_path, token, 1, args.duration, pin, script)
            note_errors(f"round {n} getPresencesByUserId", many_r, problems)
            ratio = real_r.rps / base_r.rps if base_r.rps else float("nan")
            rounds.append({"baseline": base_r, "presenced": real_r, "ratio": ratio, "many": many_r})
            print(
                f"round {n}: presenced {describe(real_r)} | bare ASGI {describe(base_r)} | ratio {ratio:.2f}x",
                flush=True,
            )
            print(f"         getPresencesByUserId({MANY_IDS}) {describe(many_r)}", flush=True)

        for server in servers:
            if server.proc.poll() is not None:
                problems.append(f"{server.name} exited during the run with {server.proc.returncode}")
    finally:
        for server in servers:
            stop_server(server)
    for server in servers:
        tail = server.stderr_tail()
        if tail:
            problems.append(f"{server.name} stderr: {tail}")

    real_med = median_of([r["presenced"] for r in rounds])
    base_med = median_of([r["baseline"] for r in rounds])
    many_med = median_of([r["many"] for r in rounds])
    return {
        "config": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "connections": args.connections,
            "pinned": pin,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "single_read": {
            "request": f"GET {read_path}",
            "response_bytes": len(real_body),
            "rounds": [
                {"presenced": asdict(r["presenced"]), "baseline": asdict(r["baseline"]), "ratio": r["ratio"]}
                for r in rounds
            ],
            "median": {"presenced": real_med, "baseline": base_med},
            "ratio_of_medians": real_med["rps"] / base_med["rps"],
            "median_of_ratios": statistics.median(r["ratio"] for r in rounds),
        },
        "get_presences_by_user_id": {
            "request": f"POST {many_path}",
            "ids": MANY_IDS,
            "connections": 1,
            "response_bytes": len(m_answer),
            "rounds": [asdict(r["many"]) for r in rounds],
            "median": many_med,
        },
        "problems": problems,
    }


def print_summary(results: dict[str, Any]) -> None:
    single = results["single_read"]
    real, base = single["median"]["presenced"], single["median"]["baseline"]
    many = results["get_presences_by_user_id"]["median"]
    print()
    print(f"summary (medians of {results['config']['rounds']} rounds of {results['config']['duration_s']} s)")
    print(
        f"single read: presenced {fmt_rps(real['rps'])} req/s p50 {real['p50_ms']:.2f} ms "
        f"p99 {real['p99_ms']:.2f} ms | bare ASGI {fmt_rps(base['rps'])} req/s p50 {base['p50_ms']:.2f} ms "
        f"p99 {base['p99_ms']:.2f} ms | ratio {single['ratio_of_medians']:.2f}x "
        f"(median of per-round ratios {single['median_of_ratios']:.2f}x)"
    )
    print(
        f"getPresencesByUserId({MANY_IDS}): p50 {many['p50_ms']:.2f} ms p99 {many['p99_ms']:.2f} ms, "
        f"{fmt_rps(many['rps'])} req/s (wrk -c1)"
    )
    for problem in results["problems"]:
        print(f"problem: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for the single read")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers to core 0 and wrk to core 1")
    parser.add_argument("--serve-baseline", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return 0
    if shutil.which("wrk") is None:
        print("install wrk (apt-get install wrk)")
        return 2
    if args.duration < 1 or args.rounds < 1 or args.connections < 1:
        parser.error("--duration, --rounds and --connections must be at least 1")

    pin = not args.no_pin and can_pin()
    if not args.no_pin and not pin:
        print("note: not pinning (needs taskset and cores 0 and 1)", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="presenced-bench-"))
    try:
        results = benchmark(args, workdir, pin)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print_summary(results)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS_FILE}")
    return 1 if results["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
