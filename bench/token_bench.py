"""Identity-platform benchmark: token requests and first use of a token, against a bare ASGI app.

Run:  /work/venv/bin/python bench/token_bench.py [--duration 5] [--rounds 3] [--connections 32]
      [--tokens 20000] [--no-pin]

Each round measures, back to back, with ``wrk -t1 -c<connections> --latency``:

1. Client-credentials token requests, ``POST /{tenant}/oauth2/v2.0/token`` with the demo daemon
   app's id and secret (form body), against the bare-ASGI baseline of read_bench.py (same uvicorn
   settings) answering the same POST with presenced's own token response (same bytes and headers).
2. ``GET /v1.0/users/{id}/presence`` with an app-only ``Presence.Read.All`` token: (a) one token for
   every request (verified once, then found in the server's token cache), (b) a different token for
   every request (``--tokens`` distinct tokens, minted in process with the server's own keys and
   handed out in turn, more than the cache holds, so every request pays a full verification:
   RS256 signature, claims, tenant), and the bare-ASGI baseline answering with the same bytes.

Everything listens on 127.0.0.1 only. Results go to stdout and bench/results/token_bench.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
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
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
rb: Any = importlib.import_module("read_bench")

RESULTS_FILE = BENCH_DIR / "results" / "token_bench.json"
DAEMON_APP = "Presence Daemon (demo)"
GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
READ_ROLE = "Presence.Read.All"
FORM_TYPE = "application/x-www-form-urlencoded"
#: The labels and order of the measurements of one round.
MEASUREMENTS = (
    ("token_baseline", "client credentials: bare ASGI, same bytes"),
    ("token", "client credentials: POST .../oauth2/v2.0/token"),
    ("read_baseline", "presence read: bare ASGI, same bytes"),
    ("read_cached", "presence read, one token (cached)"),
    ("read_fresh", "presence read, a new token each request"),
)
#: The baseline each measurement is compared with.
BASELINE_OF = {"token": "token_baseline", "read_cached": "read_baseline", "read_fresh": "read_baseline"}


# --------------------------------------------------------------------------- requests


def post_form(url: str, form: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """POST a form without Authorization; status, headers and body (also of an error answer)."""
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": FORM_TYPE}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, list(response.getheaders()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, list(exc.headers.items()), exc.read()


def baseline_spec(workdir: Path, name: str, headers: list[tuple[str, str]], body: bytes) -> Path:
    """The spec of read_bench's baseline server: presenced's body and headers, with fixed request ids."""
    app_headers = [(k.lower(), v) for k, v in headers if k.lower() not in rb.SERVER_HEADERS]
    fixed = [(k, rb.FIXED_REQUEST_ID if k in {"request-id", "client-request-id"} else v) for k, v in app_headers]
    body_file = workdir / f"{name}.body"
    body_file.write_bytes(body)
    spec = workdir / f"{name}.json"
    spec.write_text(json.dumps({"body_file": str(body_file), "headers": fixed}))
    return spec


def start_baseline(name: str, spec: Path, workdir: Path, pin: bool) -> Any:
    return rb.start_server(
        name,
        [*rb.pin_prefix(0, pin), sys.executable, str(BENCH_DIR / "read_bench.py"), "--serve-baseline", str(spec)],
        workdir,
        r"listening on (http://\S+)",
    )


def same_answer(
    label: str, got: tuple[int, list[tuple[str, str]], bytes], want: tuple[list[tuple[str, str]], bytes]
) -> None:
    status, headers, body = got
    same_names = sorted(k.lower() for k, _ in headers) == sorted(k.lower() for k, _ in want[0])
    if status != 200 or body != want[1] or not same_names:
        raise RuntimeError(f"{label} baseline answer differs: {status} {headers} vs {want[0]}")


# --------------------------------------------------------------------------- wrk


def form_script(path: Path, body: str) -> Path:
    """read_bench's POST script, with the form's Content-Type instead of JSON's."""
    rb.post_script(path, body.encode())
    with path.open("a") as out:
        out.write(f'wrk.headers["Content-Type"] = "{FORM_TYPE}"\n')
    return path


def tokens_script(path: Path, tokens_file: Path, request_path: str) -> Path:
    """A wrk script that GETs ``request_path`` with the tokens of ``tokens_file`` (one a line) in turn.

    The first request uses token number ``offset`` (the script's argument, from 0); ``done`` prints
    ``next_offset N`` so the next run carries on where this one stopped.
    """
    for text in (str(tokens_file), request_path):
        assert "]==]" not in text
    path.write_text(
        f"""-- generated by bench/token_bench.py
local tokens_file = [==[{tokens_file}]==]
local path = [==[{request_path}]==]
local requests = {{}}
n = 0

function init(args)
  -- wrk.init has set the Host header by now; format every request once.
  for token in io.lines(tokens_file) do
    local headers = {{ ["Host"] = wrk.headers["Host"], ["Authorization"] = "Bearer " .. token }}
    requests[#requests + 1] = wrk.format("GET", path, headers)
  end
  n = tonumber(args[1] or "0") or 0
end

function request()
  local r = requests[(n % #requests) + 1]
  n = n + 1
  return r
end

local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, reqs)
  for _, t in ipairs(threads) do
    io.write(string.format("next_offset %d\\n", t:get("n")))
  end
end
"""
    )
    return path


def run_wrk(url: str, script: Path, connections: int, duration: int, pin: bool, offset: int | None = None) -> Any:
    """wrk with ``script`` (which sets method, body and headers); the parsed result, and the script's next offset."""
    cmd = [*rb.pin_prefix(1, pin), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    cmd += ["-s", str(script), url]
    if offset is not None:
        cmd += ["--", str(offset)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    result = rb.parse_wrk(done.stdout)
    if offset is None:
        return result, None
    found = re.search(r"^next_offset (\d+)$", done.stdout, re.MULTILINE)
    # Without the line, skip ahead by more than wrk can have sent.
    return result, int(found.group(1)) if found else offset + result.requests + connections


# --------------------------------------------------------------------------- main


def server_cache_size() -> int:
    """How many verified tokens ``presenced serve`` keeps (the default of its settings)."""
    from presenced.config import Settings

    default: Any = next(f.default for f in fields(Settings) if f.name == "token_cache_size")
    return int(default)


def mint_tokens(keys: Any, base_url: str, tenant_id: str, app_id: str, count: int) -> list[str]:
    """``count`` distinct app-only tokens (each has its own ``uti``), signed with the server's current key."""
    from presenced.oauth.tokens import mint_access_token

    now = datetime.now(UTC)
    return [
        mint_access_token(keys, base_url, tenant_id, app_id=app_id, roles=[READ_ROLE], now=now) for _ in range(count)
    ]


def benchmark(args: argparse.Namespace, workdir: Path, pin: bool) -> dict[str, Any]:
    from presenced.oauth.keys import SigningKeys
    from presenced.oauth.tokens import decode_own_token

    data_dir = workdir / "data"
    problems: list[str] = []
    servers: list[Any] = []
    cache_size = server_cache_size()

    # `serve --demo` would reseed and give the daemon a new secret: seed once here, serve without --demo.
    demo = json.loads(rb.run_cli("demo", "--data-dir", str(data_dir), "--json"))
    tenant_id = demo["tenantId"]
    daemon = next(app for app in demo["apps"] if app["displayName"] == DAEMON_APP)
    target = demo["users"][1]
    rounds: list[dict[str, Any]] = []
    try:
        real = rb.start_server(
            "presenced",
            [*rb.pin_prefix(0, pin), *rb.presenced_cmd("serve", "--http", "--data-dir", str(data_dir), "--port", "0")],
            workdir,
            r"listening on (http://\S+)",
        )
        servers.append(real)
        rb.wait_ready(f"{real.url}/health")
        keys = SigningKeys.load_or_create(data_dir)  # the server's own keys

        # 1. The token request, checked once: 200 with an access token of the daemon app with its role.
        token_path = f"/{tenant_id}/oauth2/v2.0/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": daemon["clientId"],
            "client_secret": daemon["clientSecret"],
            "scope": GRAPH_DEFAULT_SCOPE,
        }
        form_body = urllib.parse.urlencode(form)
        status, token_headers, token_body = post_form(real.url + token_path, form)
        answer = json.loads(token_body) if status == 200 else {}
        if status != 200 or not answer.get("access_token"):
            raise RuntimeError(f"POST {token_path} answered {status}: {token_body[:300]!r}")
        claims = decode_own_token(keys, answer["access_token"])
        if claims.get("appid") != daemon["clientId"] or READ_ROLE not in claims.get("roles", []):
            raise RuntimeError(f"POST {token_path}: unexpected token claims {claims}")
        token_script = form_script(workdir / "token.lua", form_body)

        # 2. The tokens of the read: one for the cached run, one to check, --tokens for the fresh run.
        started = time.monotonic()
        minted = mint_tokens(keys, real.url, tenant_id, daemon["clientId"], args.tokens + 2)
        print(f"minted {len(minted):,} tokens in {time.monotonic() - started:.1f} s", flush=True)
        cached_token, check_token, fresh_tokens = minted[0], minted[1], minted[2:]
        one_file, many_file = workdir / "one-token.txt", workdir / "tokens.txt"
        one_file.write_text(cached_token + "\n")
        many_file.write_text("\n".join(fresh_tokens) + "\n")
        read_path = f"/v1.0/users/{target['id']}/presence"
        cached_script = tokens_script(workdir / "cached.lua", one_file, read_path)
        fresh_script = tokens_script(workdir / "fresh.lua", many_file, read_path)
        read_status, read_headers, read_body = rb.fetch(real.url + read_path, check_token)
        if read_status != 200:
            raise RuntimeError(f"GET {read_path} with a minted token answered {read_status}")
        if rb.fetch(real.url + read_path, cached_token)[2] != read_body:
            raise RuntimeError(f"GET {read_path}: the two minted tokens read different answers")

        # The baselines: the same bytes and headers as presenced's answers.
        token_spec = baseline_spec(workdir, "token", token_headers, token_body)
        token_base = start_baseline("baseline-token", token_spec, workdir, pin)
        servers.append(token_base)
        read_spec = baseline_spec(workdir, "read", read_headers, read_body)
        read_base = start_baseline("baseline-read", read_spec, workdir, pin)
        servers.append(read_base)
        rb.wait_ready(read_base.url + "/")
        rb.wait_ready(token_base.url + "/")
        same_answer("token", post_form(token_base.url + token_path, form), (token_headers, token_body))
        same_answer("read", rb.fetch(read_base.url + read_path, cached_token), (read_headers, read_body))

        print(
            f"client credentials: POST {token_path} ({len(form_body)}-byte form, {len(token_body)}-byte answer); "
            f"presence read: GET {read_path} ({len(read_body)} bytes), tokens of {len(cached_token)} bytes, "
            f"{len(fresh_tokens):,} in turn for the fresh run (server cache: {cache_size:,}); "
            f"wrk -t1 -c{args.connections} -d{args.duration}s; pinned: {pin}",
            flush=True,
        )
        offset = 0

        def measure(key: str, duration: int) -> Any:
            nonlocal offset
            if key == "token_baseline":
                return run_wrk(token_base.url + token_path, token_script, args.connections, duration, pin)[0]
            if key == "token":
                return run_wrk(real.url + token_path, token_script, args.connections, duration, pin)[0]
            if key == "read_baseline":
                return run_wrk(read_base.url + read_path, cached_script, args.connections, duration, pin, 0)[0]
            if key == "read_cached":
                return run_wrk(real.url + read_path, cached_script, args.connections, duration, pin, 0)[0]
            result, offset = run_wrk(real.url + read_path, fresh_script, args.connections, duration, pin, offset)
            return result

        for key, _ in MEASUREMENTS:  # warm everything up; not recorded
            measure(key, rb.WARMUP_SECONDS)

        for n in range(1, args.rounds + 1):
            results: dict[str, Any] = {}
            for key, label in MEASUREMENTS:
                results[key] = measure(key, args.duration)
                rb.note_errors(f"round {n} {label}", results[key], problems)
            rounds.append(results)
            print(f"round {n}:", flush=True)
            for key, label in MEASUREMENTS:
                print(f"  {label:<42} {rb.describe(results[key])}{round_ratio(results, key)}", flush=True)
        fresh_sent = offset

        for server in servers:
            if server.proc.poll() is not None:
                problems.append(f"{server.name} exited during the run with {server.proc.returncode}")
    finally:
        for server in servers:
            rb.stop_server(server)
    for server in servers:
        tail = server.stderr_tail()
        if tail:
            problems.append(f"{server.name} stderr: {tail}")

    medians = {key: rb.median_of([r[key] for r in rounds]) for key, _ in MEASUREMENTS}
    comparisons = {}
    for key, over in [*BASELINE_OF.items(), ("read_fresh", "read_cached")]:
        comparisons[f"{key}/{over}"] = {
            "ratio_of_medians": medians[key]["rps"] / medians[over]["rps"],
            "median_of_ratios": statistics.median(r[key].rps / r[over].rps for r in rounds),
        }
    return {
        "config": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "connections": args.connections,
            "tokens": args.tokens,
            "server_token_cache": cache_size,
            "pinned": pin,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "requests": {
            "token": f"POST {token_path} (client_credentials, scope {GRAPH_DEFAULT_SCOPE})",
            "token_response_bytes": len(token_body),
            "read": f"GET {read_path} (app-only token, {READ_ROLE})",
            "read_response_bytes": len(read_body),
            "token_bytes": len(cached_token),
            "fresh_requests_sent": fresh_sent,
        },
        "labels": dict(MEASUREMENTS),
        "rounds": [{key: asdict(result) for key, result in r.items()} for r in rounds],
        "median": medians,
        "ratios": comparisons,
        "problems": problems,
    }


def round_ratio(results: dict[str, Any], key: str) -> str:
    over = BASELINE_OF.get(key)
    if over is None:
        return ""
    text = f" | {results[key].rps / results[over].rps:.3f}x of bare ASGI"
    if key == "read_fresh":
        text += f", {results[key].rps / results['read_cached'].rps:.2f}x of cached"
    return text


def print_summary(results: dict[str, Any]) -> None:
    config, medians, ratios = results["config"], results["median"], results["ratios"]
    print()
    print(
        f"summary: medians of {config['rounds']} rounds of {config['duration_s']} s, "
        f"wrk -t1 -c{config['connections']}; ratio = req/s over the bare-ASGI req/s of the same round "
        "(ratio of medians; median of per-round ratios)"
    )
    header = f"{'measurement':<46} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  ratio"
    print(header)
    print("-" * len(header))
    for key, label in MEASUREMENTS:
        m = medians[key]
        over = BASELINE_OF.get(key)
        ratio = "1"
        if over is not None:
            r = ratios[f"{key}/{over}"]
            ratio = f"{r['ratio_of_medians']:.3f}x; {r['median_of_ratios']:.3f}x"
        print(f"{label:<46} {rb.fmt_rps(m['rps']):>8} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f}  {ratio}")
    first_use = ratios["read_fresh/read_cached"]
    print(
        f"first use of a token vs a cached one: {first_use['ratio_of_medians']:.2f}x the req/s "
        f"(median of per-round ratios {first_use['median_of_ratios']:.2f}x; "
        f"{config['tokens']:,} tokens in turn, server cache {config['server_token_cache']:,})"
    )
    for problem in results["problems"]:
        print(f"problem: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument(
        "--tokens", type=int, default=20_000, help="distinct tokens for the fresh-token run (default 20000)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers to core 0 and wrk to core 1")
    args = parser.parse_args(argv)

    if shutil.which("wrk") is None:
        print("install wrk (apt-get install wrk)")
        return 2
    if min(args.duration, args.rounds, args.connections) < 1:
        parser.error("--duration, --rounds and --connections must be at least 1")
    if not server_cache_size() < args.tokens <= 200_000:
        parser.error(f"--tokens must be more than the server's token cache ({server_cache_size()}) and at most 200000")

    pin = not args.no_pin and rb.can_pin()
    if not args.no_pin and not pin:
        print("note: not pinning (needs taskset and cores 0 and 1)", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="presenced-token-bench-"))
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
