"""Portal benchmark: the web portal's pages, as a signed-in administrator, against a bare ASGI app.

Run:  /work/venv/bin/python bench/pages_bench.py [--duration 3] [--rounds 3] [--connections 4] [--no-pin]

The demo administrator (Adele) signs in through the portal's own form; with her cookies, each
page of ``PAGES`` is first checked to answer 200 (a page that does not, for example one not built
yet or a redirect to sign-in, is reported as not available and skipped), then measured with
``wrk -t1 --latency`` at ``--connections`` and at one connection, interleaved round by round with
a bare-ASGI baseline served by the same uvicorn/uvloop/httptools configuration that answers the
same path with the same status, headers and bytes. One write form, ``POST /me/preferred``, is
measured the same way. The figures to read are the ratios presenced/baseline.

Everything listens on 127.0.0.1 only. Results go to stdout and bench/results/pages_bench.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
rb: Any = importlib.import_module("read_bench")

RESULTS_FILE = BENCH_DIR / "results" / "pages_bench.json"
ADMIN = "adele"
ADMIN_UPN = "adele@contoso.example"
DAEMON_APP = "Presence Daemon (demo)"
SESSION_COOKIE = "presenced_session"
CSRF_COOKIE = "presenced_csrf"
FORM_TYPE = "application/x-www-form-urlencoded"
#: The pages measured, in order: (path, whether the request carries the signed-in cookies).
#: ``{daemon_app_id}`` is the demo daemon app's id. A page that does not answer 200 is skipped.
PAGES: tuple[tuple[str, bool], ...] = (
    ("/", True),
    ("/signin", False),
    ("/me", True),
    ("/people", True),
    ("/permissions", True),
    ("/permissions/Presence.Read", True),
    ("/permissions/Presence.Read.json", True),
    ("/permissions.csv", True),
    ("/apps", True),
    ("/consents", True),
    ("/apps/{daemon_app_id}", True),
)
#: The write form measured: path, fields besides ``csrf``, and the redirect it answers with.
FORM_PATH = "/me/preferred"
FORM_FIELDS = {"availability": "Busy", "duration": "PT1H"}
FORM_REDIRECT = "/me?done=preferred"
WRK_TIMEOUT = "10s"


# --------------------------------------------------------------------------- baseline server process


def serve_baseline(spec_path: str) -> None:
    """Serve a bare ASGI app that answers each path with the status, headers and bytes captured for it.

    read_bench's baseline, with one captured answer per path (a dict lookup) and its status, so
    that one process serves every page and the form's redirect.
    """
    import gc

    import uvicorn
    import uvloop

    from presenced.cli.main import listen, server_config

    spec = json.loads(Path(spec_path).read_text())
    answers: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for path, answer in spec["answers"].items():
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer["headers"]]
        start = {"type": "http.response.start", "status": answer["status"], "headers": headers}
        finish = {"type": "http.response.body", "body": Path(answer["body_file"]).read_bytes()}
        answers[path] = (start, finish)
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

    sock = listen(rb.HOST, 0)
    print(f"baseline listening on http://{rb.HOST}:{sock.getsockname()[1]}", flush=True)

    async def run() -> None:
        config = server_config(app)
        gc.collect()
        gc.freeze()
        await uvicorn.Server(config).serve(sockets=[sock])

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())


# --------------------------------------------------------------------------- requests


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def cookies(self) -> dict[str, str]:
        found = {}
        for name, value in self.headers:
            if name.lower() == "set-cookie":
                key, _, rest = value.split(";", 1)[0].partition("=")
                found[key.strip()] = rest.strip()
        return found


def request(url: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> Answer:
    """One request, redirects not followed (a redirect to sign-in must show as one)."""
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, list(response.getheaders()), response.read())
    finally:
        connection.close()


def wait_answering(url: str, path: str) -> None:
    """Wait (bounded) until the server answers ``GET path`` at all, whatever the status."""
    deadline = time.monotonic() + rb.STARTUP_TIMEOUT
    while True:
        try:
            request(url, "GET", path, {})
            return
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not answering within {rb.STARTUP_TIMEOUT:.0f} s: {exc}") from exc
            time.sleep(0.05)


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def sign_in(url: str, password: str) -> tuple[dict[str, str], str]:
    """Sign the administrator in through the portal's form: her cookies and the CSRF token."""
    page = request(url, "GET", "/signin?next=/me", {})
    cookies = page.cookies()
    found = re.search(rb'name="csrf" value="([^"]+)"', page.body)
    if page.status != 200 or CSRF_COOKIE not in cookies or found is None:
        raise RuntimeError(f"GET /signin?next=/me answered {page.status} without a CSRF cookie and field")
    csrf = found.group(1).decode()
    form = urllib.parse.urlencode({"csrf": csrf, "username": ADMIN_UPN, "password": password}).encode()
    headers = {"Cookie": cookie_header(cookies), "Content-Type": FORM_TYPE}
    answer = request(url, "POST", "/signin?next=/me", headers, form)
    cookies.update(answer.cookies())
    if answer.status != 303 or answer.header("location") != "/me" or SESSION_COOKIE not in cookies:
        raise RuntimeError(f"signing in as {ADMIN_UPN} answered {answer.status}: {answer.body[:300]!r}")
    return {CSRF_COOKIE: cookies[CSRF_COOKIE], SESSION_COOKIE: cookies[SESSION_COOKIE]}, csrf


def unavailable_reason(answer: Answer) -> str:
    location = answer.header("location")
    if location is not None and location.startswith("/signin"):
        return f"answered {answer.status}, a redirect to sign-in ({location})"
    if location is not None:
        return f"answered {answer.status}, a redirect to {location}"
    return f"answered {answer.status}"


def baseline_answer(answer: Answer, workdir: Path, name: str) -> dict[str, Any]:
    """The baseline's copy of an answer: its status, body and headers, with fixed request ids."""
    app_headers = [(k.lower(), v) for k, v in answer.headers if k.lower() not in rb.SERVER_HEADERS]
    fixed = [(k, rb.FIXED_REQUEST_ID if k in {"request-id", "client-request-id"} else v) for k, v in app_headers]
    body_file = workdir / f"{name}.body"
    body_file.write_bytes(answer.body)
    return {"status": answer.status, "headers": fixed, "body_file": str(body_file)}


def same_answer(label: str, got: Answer, want: Answer) -> None:
    same_names = sorted(k.lower() for k, _ in got.headers) == sorted(k.lower() for k, _ in want.headers)
    if got.status != want.status or got.body != want.body or not same_names:
        raise RuntimeError(f"{label}: baseline answer differs: {got.status} {got.headers} vs {want.headers}")


# --------------------------------------------------------------------------- wrk


def form_script(path: Path, body: str) -> Path:
    """A wrk script that POSTs the form (method, body, Content-Type); the cookies come with -H."""
    assert "]==]" not in body
    path.write_text(f'wrk.method = "POST"\nwrk.body = [==[{body}]==]\nwrk.headers["Content-Type"] = "{FORM_TYPE}"\n')
    return path


def run_wrk(url: str, cookie: str | None, connections: int, duration: int, pin: bool, script: Path | None) -> Any:
    cmd = [*rb.pin_prefix(1, pin), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    cmd += ["--timeout", WRK_TIMEOUT]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return rb.parse_wrk(done.stdout)


@dataclass
class Target:
    """One measured request: a page, or the form."""

    label: str
    path: str
    cookie: str | None
    script: Path | None
    answer: Answer


# --------------------------------------------------------------------------- main


def stderr_size(server: Any) -> int:
    try:
        return int(server.stderr.stat().st_size)
    except OSError:
        return 0


def stderr_since(server: Any, offset: int, lines: int | None = 20) -> str:
    """What the server wrote to stderr from byte ``offset`` on: the last ``lines`` lines, or all of it."""
    try:
        with server.stderr.open("rb") as err:
            err.seek(offset)
            text = err.read().decode(errors="replace")
    except OSError:
        return ""
    kept = text.strip().splitlines()
    return "\n".join(kept if lines is None else kept[-lines:])


#: What a log entry of a client that went away before its form was read looks like (see disconnects()).
DISCONNECT = "starlette.requests.ClientDisconnect"
_LOG_HEADER = re.compile(r"^(ERROR:\s+Exception in ASGI application|unhandled error on [A-Z]+ \S+)$")
_CHAINED = ("Traceback (most recent call last):", "The above exception", "During handling of the above")


def disconnects(text: str) -> tuple[int, str]:
    """Set apart the tracebacks of ``ClientDisconnect``: how many there were, and the rest of ``text``.

    wrk closes its connections at the end of each run, also those with a request in flight; a form
    handler that had not read its body by then gets ``ClientDisconnect``, which the server logs
    (presenced's "unhandled error on POST ..." and uvicorn's "Exception in ASGI application"). An entry
    counts as one only if it has nothing but those headers, traceback lines and that exception.
    """
    count, rest, entry = 0, [], []
    for line in text.splitlines():
        entry.append(line)
        if line.strip() != DISCONNECT:
            continue
        plain = [x for x in entry if x.strip() and not x.startswith(" ") and not x.startswith(_CHAINED)]
        if all(_LOG_HEADER.match(x) or x == DISCONNECT for x in plain):
            count += sum(1 for x in plain if _LOG_HEADER.match(x)) or 1
        else:
            rest += entry
        entry = []
    rest += entry
    return count, "\n".join(rest).strip()


def benchmark(args: argparse.Namespace, workdir: Path, pin: bool) -> dict[str, Any]:
    from presenced.services.demo import demo_password

    data_dir = workdir / "data"
    problems: list[str] = []
    notes: list[str] = []
    servers: list[Any] = []
    levels = sorted({args.connections, 1}, reverse=True)

    # `serve --demo` would reseed: seed once here, serve without it.
    demo = json.loads(rb.run_cli("demo", "--data-dir", str(data_dir), "--json"))
    admin = next(u for u in demo["users"] if u["userPrincipalName"] == ADMIN_UPN)
    password = admin.get("password") or demo_password(ADMIN)
    daemon = next(app for app in demo["apps"] if app["displayName"] == DAEMON_APP)
    paths = [(template.format(daemon_app_id=daemon["clientId"]), signed) for template, signed in PAGES]

    targets: list[Target] = []
    unavailable: dict[str, str] = {}
    rounds: list[dict[str, Any]] = []
    checked_at = 0
    try:
        real = rb.start_server(
            "presenced",
            [*rb.pin_prefix(0, pin), *rb.presenced_cmd("serve", "--http", "--data-dir", str(data_dir), "--port", "0")],
            workdir,
            r"listening on (http://\S+)",
        )
        servers.append(real)
        rb.wait_ready(f"{real.url}/health")
        cookies, csrf = sign_in(real.url, password)
        signed_in = cookie_header(cookies)

        # The form first (it changes Adele's presence, which /me and /people then show).
        form_body = urllib.parse.urlencode({"csrf": csrf, **FORM_FIELDS})
        form_label = f"POST {FORM_PATH} ({', '.join(f'{k}={v}' for k, v in FORM_FIELDS.items())})"
        headers = {"Cookie": signed_in, "Content-Type": FORM_TYPE}
        posted = request(real.url, "POST", FORM_PATH, headers, form_body.encode())
        if posted.status == 303 and posted.header("location") == FORM_REDIRECT:
            script = form_script(workdir / "form.lua", form_body)
            targets.append(Target(form_label, FORM_PATH, signed_in, script, posted))
        else:
            unavailable[form_label] = unavailable_reason(posted) + f", not 303 to {FORM_REDIRECT}"

        # Each page, checked: 200, not a redirect; its answer is what the baseline sends.
        page_targets: list[Target] = []
        for path, signed in paths:
            label = f"GET {path}" + ("" if signed else " (signed out)")
            cookie = signed_in if signed else None
            try:
                answer = request(real.url, "GET", path, {"Cookie": cookie} if cookie else {})
            except (OSError, http.client.HTTPException) as exc:
                unavailable[label] = f"failed: {exc}"
                continue
            if answer.status != 200:
                unavailable[label] = unavailable_reason(answer)
                continue
            page_targets.append(Target(label, path, cookie, None, answer))
        targets = page_targets + targets
        for label, reason in unavailable.items():
            print(f"not available: {label}: {reason}", flush=True)
        checked_at = stderr_size(real)
        early = stderr_since(real, 0)
        if early:
            notes.append(f"presenced stderr while checking the pages: {early}")
        if not targets:
            raise RuntimeError("no page answered 200: nothing to measure")

        answers = {t.path: baseline_answer(t.answer, workdir, f"answer{i}") for i, t in enumerate(targets)}
        spec = workdir / "baseline.json"
        spec.write_text(json.dumps({"answers": answers}))
        baseline = rb.start_server(
            "baseline",
            [*rb.pin_prefix(0, pin), sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(spec)],
            workdir,
            r"listening on (http://\S+)",
        )
        servers.append(baseline)
        wait_answering(baseline.url, targets[0].path)
        for t in targets:
            method, body = ("POST", form_body.encode()) if t.script is not None else ("GET", None)
            headers = {"Cookie": t.cookie} if t.cookie else {}
            if body is not None:
                headers["Content-Type"] = FORM_TYPE
            same_answer(t.label, request(baseline.url, method, t.path, headers, body), t.answer)

        print(
            f"signed in as {ADMIN_UPN} through the portal; {len(targets)} requests to measure, "
            f"wrk -t1 -c{'/-c'.join(map(str, levels))} -d{args.duration}s --timeout {WRK_TIMEOUT}; pinned: {pin}",
            flush=True,
        )
        for t in targets:  # warm both up; not recorded
            for server in (baseline, real):
                run_wrk(server.url + t.path, t.cookie, levels[0], rb.WARMUP_SECONDS, pin, t.script)

        for n in range(1, args.rounds + 1):
            print(f"round {n}:", flush=True)
            this_round: dict[str, Any] = {}
            for t in targets:
                for c in levels:
                    base_r = run_wrk(baseline.url + t.path, t.cookie, c, args.duration, pin, t.script)
                    rb.note_errors(f"round {n} bare ASGI {t.label} -c{c}", base_r, problems)
                    real_r = run_wrk(real.url + t.path, t.cookie, c, args.duration, pin, t.script)
                    rb.note_errors(f"round {n} {t.label} -c{c}", real_r, problems)
                    ratio = real_r.rps / base_r.rps if base_r.rps else float("nan")
                    this_round[f"{t.label} -c{c}"] = {"presenced": real_r, "baseline": base_r, "ratio": ratio}
                    print(
                        f"  {t.label} -c{c}: presenced {rb.describe(real_r)} | bare ASGI {rb.describe(base_r)} "
                        f"| ratio {ratio:.3f}x",
                        flush=True,
                    )
            rounds.append(this_round)

        for server in servers:
            if server.proc.poll() is not None:
                problems.append(f"{server.name} exited during the run with {server.proc.returncode}")
    finally:
        for server in servers:
            rb.stop_server(server)
    for server in servers:
        count, rest = disconnects(stderr_since(server, checked_at if server.name == "presenced" else 0, None))
        if count:
            notes.append(
                f"{server.name} logged {count} tracebacks of {DISCONNECT} (a form request in flight when wrk "
                "closed its connections at the end of a run)"
            )
        if rest:
            problems.append(f"{server.name} stderr: " + "\n".join(rest.splitlines()[-20:]))

    measured = []
    for t in targets:
        for c in levels:
            key = f"{t.label} -c{c}"
            real_med = rb.median_of([r[key]["presenced"] for r in rounds])
            base_med = rb.median_of([r[key]["baseline"] for r in rounds])
            measured.append(
                {
                    "label": t.label,
                    "page": t.script is None,
                    "connections": c,
                    "response_status": t.answer.status,
                    "response_bytes": len(t.answer.body),
                    "rounds": [
                        {"presenced": asdict(r[key]["presenced"]), "baseline": asdict(r[key]["baseline"])}
                        for r in rounds
                    ],
                    "median": {"presenced": real_med, "baseline": base_med},
                    "ratio_of_medians": real_med["rps"] / base_med["rps"] if base_med["rps"] else float("nan"),
                    "median_of_ratios": statistics.median(r[key]["ratio"] for r in rounds),
                }
            )
    return {
        "config": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "connections": levels,
            "wrk_timeout": WRK_TIMEOUT,
            "signed_in_as": ADMIN_UPN,
            "pinned": pin,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "measured": measured,
        "not_available": unavailable,
        "notes": notes,
        "problems": problems,
    }


def slowest(measured: list[dict[str, Any]], connections: int) -> dict[str, Any] | None:
    pages = [m for m in measured if m["page"] and m["connections"] == connections]
    return max(pages, key=lambda m: m["median"]["presenced"]["p99_ms"], default=None)


def print_summary(results: dict[str, Any]) -> None:
    config = results["config"]
    print()
    print(
        f"summary: medians of {config['rounds']} rounds of {config['duration_s']} s, wrk -t1, signed in as "
        f"{config['signed_in_as']}; ratio = presenced req/s over the bare-ASGI req/s of the same round "
        "(ratio of medians; median of per-round ratios)"
    )
    width = max([len(m["label"]) for m in results["measured"]] + [len("request")])
    header = (
        f"{'request':<{width}} {'c':>2} {'bytes':>6} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
        f" | {'base r/s':>8} {'p50 ms':>7} {'p99 ms':>7} | ratio"
    )
    print(header)
    print("-" * (len(header) + 14))
    for m in results["measured"]:
        real, base = m["median"]["presenced"], m["median"]["baseline"]
        print(
            f"{m['label']:<{width}} {m['connections']:>2} {m['response_bytes']:>6} {rb.fmt_rps(real['rps']):>7} "
            f"{real['p50_ms']:>7.2f} {real['p99_ms']:>7.2f} | {rb.fmt_rps(base['rps']):>8} {base['p50_ms']:>7.2f} "
            f"{base['p99_ms']:>7.2f} | {m['ratio_of_medians']:.3f}x; {m['median_of_ratios']:.3f}x"
        )
    for label, reason in results["not_available"].items():
        print(f"not available: {label}: {reason}")
    alone, loaded = slowest(results["measured"], 1), slowest(results["measured"], max(config["connections"]))
    if alone is not None and loaded is not None:
        line = (
            f"slowest page p99: {alone['median']['presenced']['p99_ms']:.2f} ms "
            f"(baseline {alone['median']['baseline']['p99_ms']:.2f} ms): {alone['label']}, wrk -c1"
        )
        if loaded is not alone:
            line += (
                f"; at -c{loaded['connections']}: {loaded['median']['presenced']['p99_ms']:.2f} ms "
                f"(baseline {loaded['median']['baseline']['p99_ms']:.2f} ms): {loaded['label']}"
            )
        print(line)
    for note in results["notes"]:
        print(f"note: {note}")
    for problem in results["problems"]:
        print(f"problem: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections besides 1 (default 4)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers to core 0 and wrk to core 1")
    parser.add_argument("--serve-baseline", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return 0
    if shutil.which("wrk") is None:
        print("install wrk (apt-get install wrk)")
        return 2
    if min(args.duration, args.rounds, args.connections) < 1:
        parser.error("--duration, --rounds and --connections must be at least 1")

    pin = not args.no_pin and rb.can_pin()
    if not args.no_pin and not pin:
        print("note: not pinning (needs taskset and cores 0 and 1)", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="presenced-pages-bench-"))
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
