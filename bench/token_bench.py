"""Identity-platform benchmark: token requests of three grants against the raw signing rate, and first use
of a token, against bare ASGI apps.

Run:  .venv/bin/python bench/token_bench.py [--duration 5] [--rounds 3] [--connections 32]
      [--chains 32] [--tokens 20000] [--no-pin]

Each round measures, back to back:

0. The raw signing rate: joserfc signing the claims of a client-credentials token with the server's
   current key, in a process of its own on the server's core, one signature after another.
1. Client-credentials token requests, ``POST /{tenant}/oauth2/v2.0/token`` with the demo daemon
   app's id and secret (form body), with ``wrk -t1 -c<connections> --latency``, against the bare-ASGI
   baseline of harness.py (as in read_bench.py; same uvicorn settings) answering the same POST with
   presenced's own token response (same bytes and headers).
2. Refresh-token requests of the demo desktop app (a public client) for a demo user, as MSAL sends
   them; ``--chains`` sign-ins, each refreshed over and over (every answer carries the next refresh
   token), by ``token_load.py`` (a Python asyncio load generator on the other core); and its baseline.
3. Authorization-code redemptions (PKCE) of the same app and user, codes made beforehand by driving
   ``/authorize`` with the user's session cookie once per code; by ``token_load.py``; and its baseline.
4. ``GET /v1.0/users/{id}/presence`` with an app-only ``Presence.Read.All`` token: (a) one token for
   every request (verified once, then found in the server's token cache), (b) a different token for
   every request (``--tokens`` distinct tokens, minted in process with the server's own keys and
   handed out in turn, more than the cache holds, so every request pays a full verification:
   RS256 signature, claims, tenant), and the bare-ASGI baseline answering with the same bytes.

Everything listens on 127.0.0.1 only. Results go to stdout and bench/results/token_bench.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import math
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import harness
from harness import FORM_TYPE, Answer

T = TypeVar("T")

GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
READ_ROLE = "Presence.Read.All"
#: What MSAL asks for on behalf of a user: a delegated permission, sign-in, and a refresh token.
USER_SCOPE = "https://graph.microsoft.com/Presence.Read openid profile offline_access"
#: The demo's public client (no secret; PKCE) and the loopback redirect URI it registers.
DEMO_PUBLIC_APP = "Presence Desktop (demo)"
REDIRECT_URI = "http://localhost:8400/callback"
CSRF_COOKIE, SESSION_COOKIE = "presenced_csrf", "presenced_session"
LOAD_SCRIPT = harness.BENCH_DIR / "token_load.py"
#: The labels and order of the measurements of one round.
MEASUREMENTS = (
    ("signing", "raw RS256 signing (joserfc, one core)"),
    ("token_baseline", "client credentials: bare ASGI, same bytes"),
    ("token", "client credentials: POST .../oauth2/v2.0/token"),
    ("refresh_baseline", "refresh token: bare ASGI, same bytes"),
    ("refresh", "refresh token: POST .../oauth2/v2.0/token"),
    ("code_baseline", "authorization code: bare ASGI, same bytes"),
    ("code", "authorization code: POST .../oauth2/v2.0/token"),
    ("read_baseline", "presence read: bare ASGI, same bytes"),
    ("read_cached", "presence read, one token (cached)"),
    ("read_fresh", "presence read, a new token each request"),
)
#: The baseline each measurement is compared with.
BASELINE_OF = {
    "token": "token_baseline",
    "refresh": "refresh_baseline",
    "code": "code_baseline",
    "read_cached": "read_baseline",
    "read_fresh": "read_baseline",
}
#: The grants, compared with the raw signing rate too, and the share of it each is held to.
GRANTS = {"token": ("client credentials", 0.5), "refresh": ("refresh token", 0.3), "code": ("authorization code", 0.3)}


# --------------------------------------------------------------------------- requests


def post_form(url: str, form: dict[str, str]) -> Answer:
    """POST a form without Authorization; status, headers and body (also of an error answer)."""
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": FORM_TYPE}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, list(response.getheaders()), response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, list(exc.headers.items()), exc.read())


# --------------------------------------------------------------------------- wrk


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


def run_tokens(
    url: str, script: Path, connections: int, duration: int, pin: bool, offset: int
) -> tuple[harness.WrkResult, int]:
    """wrk with a ``tokens_script`` from token ``offset`` on; the parsed result, and the script's next offset."""
    output = harness.wrk_output(url, connections, duration, pin, script=script, script_args=[str(offset)])
    result = harness.parse_wrk(output)
    found = re.search(r"^next_offset (\d+)$", output, re.MULTILINE)
    # Without the line, skip ahead by more than wrk can have sent.
    return result, int(found.group(1)) if found else offset + result.requests + connections


# --------------------------------------------------------------------------- raw signing


def measure_signing(spec_path: str) -> None:
    """Sign the spec's claims with the server's current key for ``seconds``, one after another; print a
    JSON line with the rate (this process, started on the server's core by ``signing_rate``)."""
    from joserfc import jwt

    from presenced.oauth.keys import SigningKeys

    spec = json.loads(Path(spec_path).read_text())
    keys = SigningKeys.load_or_create(Path(spec["data_dir"]))
    key, claims = keys.current, spec["claims"]
    header = {"alg": "RS256", "typ": "JWT", "kid": key.kid}
    warm = time.perf_counter() + 0.5
    while time.perf_counter() < warm:
        jwt.encode(header, claims, key)
    timings: list[float] = []
    started, cpu = time.perf_counter(), time.process_time()
    end = started + spec["seconds"]
    last = started
    while last < end:
        jwt.encode(header, claims, key)
        now = time.perf_counter()
        timings.append(now - last)
        last = now
    cpu = time.process_time() - cpu
    timings.sort()
    result = {
        "requests": len(timings),
        "cpu_s": cpu,
        "rps": len(timings) / (last - started),
        "p50_ms": statistics.median(timings) * 1e3,
        "p99_ms": timings[min(len(timings) - 1, int(len(timings) * 0.99))] * 1e3,
    }
    sys.stdout.write(json.dumps(result) + "\n")


def signing_rate(
    workdir: Path, pin: bool, data_dir: Path, claims: dict[str, Any], seconds: float
) -> tuple[harness.WrkResult, float]:
    """The raw RS256 signing rate of ``claims``, measured in a process of its own on core 0 (the server's); and
    the processor time it took."""
    spec = workdir / "signing.json"
    spec.write_text(json.dumps({"data_dir": str(data_dir), "claims": claims, "seconds": seconds}))
    command = [*harness.pin_prefix(0, pin), sys.executable, __file__, "--measure-signing", str(spec)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"measuring the signing rate failed: {done.stderr.strip()[-2000:]}")
    measured = json.loads(done.stdout)
    result = harness.WrkResult(measured["rps"], measured["p50_ms"], measured["p99_ms"], measured["requests"])
    return result, measured["cpu_s"]


def cpu_seconds(pid: int) -> float:
    """The processor time process ``pid`` has used so far, all its threads, user and system (``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the Python load generator


def run_load(workdir: Path, pin: bool, spec: dict[str, Any]) -> dict[str, Any]:
    """``token_load.py`` with ``spec``, on core 1 (when pinning); its JSON result."""
    path, out = workdir / f"load-{spec['mode']}.json", workdir / f"load-{spec['mode']}-result.json"
    out.unlink(missing_ok=True)
    path.write_text(json.dumps({**spec, "out": str(out)}))
    command = [*harness.pin_prefix(1, pin), sys.executable, str(LOAD_SCRIPT), str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=spec.get("seconds", 0) + 300, check=False)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"token_load.py ({spec['mode']}) failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def load_result(measured: dict[str, Any]) -> harness.WrkResult:
    """The generator's figures in wrk's form (its non-200 answers as non-2xx)."""
    return harness.WrkResult(
        measured["rps"],
        measured["p50_ms"],
        measured["p99_ms"],
        measured["requests"],
        non_2xx=sum(measured["errors"].values()),
    )


def host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


# --------------------------------------------------------------------------- a person's sign-in


def request(url: str, method: str, target: str, headers: dict[str, str], body: bytes | None = None) -> Answer:
    """One request without following redirects: status, headers, body."""
    host, port = host_port(url)
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def cookies_of(answer: Answer, cookies: dict[str, str]) -> dict[str, str]:
    """``cookies`` with those the answer sets."""
    for name, value in answer.headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            cookies[key.strip()] = rest.split(";", 1)[0]
    return cookies


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def code_of(answer: Answer) -> str:
    location = answer.header("location") or ""
    found = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).get("code")
    if answer.status != 302 or not found:
        raise RuntimeError(f"/authorize answered {answer.status} {location[:200]} {answer.body[:300]!r}")
    return found[0]


def sign_in(url: str, authorize_target: str, username: str, password: str) -> tuple[str, str]:
    """Sign the user in to the app through ``/authorize``'s own forms (sign-in, then consent), as a browser
    does; the session cookie and the first code."""
    page = request(url, "GET", authorize_target, {})
    cookies = cookies_of(page, {})
    found = re.search(rb'name="csrf" value="([^"]+)"', page.body)
    if page.status != 200 or CSRF_COOKIE not in cookies or found is None:
        raise RuntimeError(f"GET /authorize answered {page.status} without a sign-in form")
    csrf = found.group(1).decode()
    step = {"csrf": csrf, "step": "signin", "username": username, "password": password}
    answer = form_post(url, authorize_target, step, cookies)
    cookies_of(answer, cookies)
    if answer.status == 200 and b'value="consent"' in answer.body:
        answer = form_post(url, authorize_target, {"csrf": csrf, "step": "consent", "decision": "accept"}, cookies)
        cookies_of(answer, cookies)
    if SESSION_COOKIE not in cookies:
        raise RuntimeError(f"signing in answered {answer.status} without a session cookie")
    return cookie_header({SESSION_COOKIE: cookies[SESSION_COOKIE]}), code_of(answer)


def form_post(url: str, target: str, form: dict[str, str], cookies: dict[str, str]) -> Answer:
    headers = {"Content-Type": FORM_TYPE, "Cookie": cookie_header(cookies)}
    return request(url, "POST", target, headers, urllib.parse.urlencode(form).encode())


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def check_user_answer(label: str, answer: Answer) -> dict[str, Any]:
    """A user flow's answer: 200 with an access token, an ID token and a refresh token, for Presence.Read."""
    body = json.loads(answer.body) if answer.status == 200 else {}
    wanted = ("access_token", "id_token", "refresh_token")
    if answer.status != 200 or not all(body.get(k) for k in wanted) or "Presence.Read" not in body.get("scope", ""):
        raise RuntimeError(f"{label} answered {answer.status}: {answer.body[:300]!r}")
    return body


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
    cache_size = server_cache_size()

    # `serve --demo` would reseed and give the daemon a new secret: seed once here, serve without --demo.
    demo = json.loads(harness.run_cli("demo", "--data-dir", str(data_dir), "--json"))
    tenant_id = demo["tenantId"]
    daemon = harness.demo_daemon_app(demo)
    public = next(app for app in demo["apps"] if app["displayName"] == DEMO_PUBLIC_APP)
    person = next(user for user in demo["users"] if not user["isAdmin"])
    target = demo["users"][1]
    rounds: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    #: Per round, for the signing process and each grant: its processor time and tokens per processor second.
    spent: list[dict[str, dict[str, float]]] = []
    with harness.serving(problems) as servers:
        real = harness.start_presenced(workdir, pin, "--data-dir", str(data_dir))
        servers.append(real)
        host, port = host_port(real.url)
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
        token_answer = post_form(real.url + token_path, form)
        status, token_body = token_answer.status, token_answer.body
        answer = json.loads(token_body) if status == 200 else {}
        if status != 200 or not answer.get("access_token"):
            raise RuntimeError(f"POST {token_path} answered {status}: {token_body[:300]!r}")
        app_claims = decode_own_token(keys, answer["access_token"])
        if app_claims.get("appid") != daemon["clientId"] or READ_ROLE not in app_claims.get("roles", []):
            raise RuntimeError(f"POST {token_path}: unexpected token claims {app_claims}")
        token_script = harness.post_script(workdir / "token.lua", form_body, FORM_TYPE)

        # 2. A person signs in to the desktop app once, through /authorize's forms; with the session
        #    cookie, each further GET /authorize is a code. The first code is redeemed here, checked.
        verifier, challenge = pkce()
        authorize_target = f"/{tenant_id}/oauth2/v2.0/authorize?" + urllib.parse.urlencode(
            {
                "client_id": public["clientId"],
                "response_type": "code",
                "redirect_uri": REDIRECT_URI,
                "scope": USER_SCOPE,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": "token-bench",
            }
        )
        cookie, first_code = sign_in(real.url, authorize_target, person["userPrincipalName"], person["password"])
        code_form = {
            "client_id": public["clientId"],
            "grant_type": "authorization_code",
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "scope": USER_SCOPE,
            "client_info": "1",
        }
        code_answer = post_form(real.url + token_path, {**code_form, "code": first_code})
        user_body = check_user_answer("redeeming a code", code_answer)
        user_claims = decode_own_token(keys, user_body["access_token"])
        if user_claims.get("oid") != person["id"] or "Presence.Read" not in user_claims.get("scp", "").split():
            raise RuntimeError(f"redeeming a code: unexpected token claims {user_claims}")

        def prepare_codes(count: int) -> tuple[list[str], float]:
            """``count`` codes, each from a GET /authorize with the session cookie; and the seconds it took."""
            spec = {
                "mode": "authorize",
                "host": host,
                "port": port,
                "path": authorize_target,
                "cookie": cookie,
                "count": count,
                "connections": min(args.connections, count),
            }
            made = run_load(workdir, pin, spec)
            if made["problems"] or len(made["codes"]) != count:
                raise RuntimeError(f"preparing {count} codes: {made['problems'][:3]}")
            return made["codes"], made["seconds"]

        # 3. The refresh chains: one sign-in (code) each; the first refresh is checked here.
        refresh_form = {
            "client_id": public["clientId"],
            "grant_type": "refresh_token",
            "scope": USER_SCOPE,
            "client_info": "1",
        }
        chains = [
            check_user_answer("redeeming a code", post_form(real.url + token_path, {**code_form, "code": code}))[
                "refresh_token"
            ]
            for code in prepare_codes(args.chains)[0]
        ]
        refresh_answer = post_form(real.url + token_path, {**refresh_form, "refresh_token": chains[0]})
        chains[0] = check_user_answer("refreshing", refresh_answer)["refresh_token"]

        # 4. The tokens of the read: one for the cached run, one to check, --tokens for the fresh run.
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
        read_answer = harness.fetch(real.url + read_path, check_token)
        read_body = read_answer.body
        if read_answer.status != 200:
            raise RuntimeError(f"GET {read_path} with a minted token answered {read_answer.status}")
        if harness.fetch(real.url + read_path, cached_token).body != read_body:
            raise RuntimeError(f"GET {read_path}: the two minted tokens read different answers")

        # The baselines: the same bytes and headers as presenced's answers.
        bases = {
            "token": harness.start_baseline("baseline-token", workdir, pin, answer=token_answer),
            "refresh": harness.start_baseline("baseline-refresh", workdir, pin, answer=refresh_answer),
            "code": harness.start_baseline("baseline-code", workdir, pin, answer=code_answer),
            "read": harness.start_baseline("baseline-read", workdir, pin, answer=read_answer),
        }
        servers.extend(bases.values())
        harness.same_answer("token", post_form(bases["token"].url + token_path, form), token_answer)
        harness.same_answer("refresh", post_form(bases["refresh"].url + token_path, refresh_form), refresh_answer)
        harness.same_answer("code", post_form(bases["code"].url + token_path, code_form), code_answer)
        harness.same_answer("read", harness.fetch(bases["read"].url + read_path, cached_token), read_answer)

        print(
            f"client credentials: POST {token_path} ({len(form_body)}-byte form, {len(token_body)}-byte answer); "
            f"refresh token and authorization code: {person['userPrincipalName']} in {DEMO_PUBLIC_APP}, "
            f"scope '{USER_SCOPE}' ({len(refresh_answer.body)}- and {len(code_answer.body)}-byte answers, "
            f"each with an access, an ID and a refresh token), {args.chains} refresh chains; "
            f"presence read: GET {read_path} ({len(read_body)} bytes), tokens of {len(cached_token)} bytes, "
            f"{len(fresh_tokens):,} in turn for the fresh run (server cache: {cache_size:,}); "
            f"wrk -t1 -c{args.connections} -d{args.duration}s; token_load.py: {args.connections} connections; "
            f"pinned: {pin}",
            flush=True,
        )
        offset = 0
        #: The last rate of each measurement (how many codes a code run needs).
        rates: dict[str, float] = {}
        note: dict[str, Any] = {}

        def load(key: str, spec: dict[str, Any], duration: int) -> dict[str, Any]:
            url = bases[key.removesuffix("_baseline")].url if key.endswith("_baseline") else real.url
            spec_host, spec_port = host_port(url)
            return run_load(
                workdir,
                pin,
                {
                    "host": spec_host,
                    "port": spec_port,
                    "path": token_path,
                    "seconds": duration,
                    "fixed": key.endswith("_baseline"),
                    **spec,
                },
            )

        #: Processor seconds of the measurement's serving process (the signing process's own), by key.
        cpu: dict[str, float] = {}

        def on_server(key: str, run: Callable[[], T]) -> T:
            """``run()``, the processor time presenced's process used meanwhile noted under ``key``."""
            before = cpu_seconds(real.proc.pid)
            result = run()
            cpu[key] = cpu_seconds(real.proc.pid) - before
            return result

        def measure(key: str, duration: int) -> harness.WrkResult:
            nonlocal offset
            if key == "signing":
                signed, cpu[key] = signing_rate(workdir, pin, data_dir, app_claims, duration)
                return signed
            if key == "token_baseline":
                return harness.run_wrk(
                    bases["token"].url + token_path, args.connections, duration, pin, script=token_script
                )
            if key == "token":
                return on_server(
                    key,
                    lambda: harness.run_wrk(
                        real.url + token_path, args.connections, duration, pin, script=token_script
                    ),
                )
            if key in {"refresh", "refresh_baseline"}:
                spec = {"mode": "refresh", "form": refresh_form, "tokens": chains}
                if key == "refresh":
                    measured = on_server(key, lambda: load(key, spec, duration))
                else:
                    measured = load(key, spec, duration)
                if key == "refresh":
                    chains[:] = measured["tokens"]
                problems.extend(f"{key}: {broken}" for broken in measured["broken"])
                return load_result(measured)
            if key == "code_baseline":
                spec = {"mode": "code", "form": code_form, "codes": [first_code], "connections": args.connections}
                return load_result(load(key, spec, duration))
            if key == "code":
                # Enough for half as much again as the last rate (or the refresh's, at first) would redeem.
                rate = max(rates.get("code", 0.0), rates.get("refresh", 0.0), 100.0)
                codes, seconds = prepare_codes(math.ceil(rate * duration * 1.5) + 2 * args.connections)
                spec = {"mode": "code", "form": code_form, "codes": codes, "connections": args.connections}
                measured = on_server(key, lambda: load(key, spec, duration))
                note.update(
                    codes_prepared=len(codes),
                    prepare_s=round(seconds, 2),
                    codes_redeemed=measured["codes_used"],
                    ran_out=measured["ran_out"],
                    measured_s=round(measured["seconds"], 2),
                )
                return load_result(measured)
            if key == "read_baseline":
                return run_tokens(bases["read"].url + read_path, cached_script, args.connections, duration, pin, 0)[0]
            if key == "read_cached":
                return run_tokens(real.url + read_path, cached_script, args.connections, duration, pin, 0)[0]
            result, offset = run_tokens(real.url + read_path, fresh_script, args.connections, duration, pin, offset)
            return result

        for key, _ in MEASUREMENTS:  # warm everything up; not recorded
            if key != "signing":  # its process warms itself up
                rates[key] = measure(key, harness.WARMUP_SECONDS).rps

        for n in range(1, args.rounds + 1):
            results: dict[str, Any] = {}
            note = {}
            cpu.clear()
            for key, label in MEASUREMENTS:
                results[key] = measure(key, args.duration)
                rates[key] = results[key].rps
                harness.note_errors(f"round {n} {label}", results[key], problems)
            rounds.append(results)
            notes.append(note)
            spent.append(processor(results, cpu, args.duration))
            print(f"round {n}:", flush=True)
            for key, label in MEASUREMENTS:
                ratios = round_ratio(results, spent[-1], key)
                print(f"  {label:<48} {harness.describe(results[key])}{ratios}", flush=True)
            print(f"  codes: {describe_codes(note)}", flush=True)
        fresh_sent = offset

    medians = {key: harness.median_of([r[key] for r in rounds]) for key, _ in MEASUREMENTS}
    comparisons = {}
    for key, over in [*BASELINE_OF.items(), ("read_fresh", "read_cached"), *((k, "signing") for k in GRANTS)]:
        comparisons[f"{key}/{over}"] = {
            "ratio_of_medians": medians[key]["rps"] / medians[over]["rps"],
            "median_of_ratios": statistics.median(r[key].rps / r[over].rps for r in rounds),
        }
    for key in GRANTS:
        comparisons[f"{key}/signing per processor second"] = {
            "ratio_of_medians": statistics.median(r[key]["per_cpu_s"] for r in spent)
            / statistics.median(r["signing"]["per_cpu_s"] for r in spent),
            "median_of_ratios": statistics.median(r[key]["per_cpu_s"] / r["signing"]["per_cpu_s"] for r in spent),
        }
    return {
        "config": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "connections": args.connections,
            "chains": args.chains,
            "tokens": args.tokens,
            "server_token_cache": cache_size,
            **harness.machine(pin),
        },
        "requests": {
            "token": f"POST {token_path} (client_credentials, scope {GRAPH_DEFAULT_SCOPE})",
            "token_response_bytes": len(token_body),
            "refresh": f"POST {token_path} (refresh_token, public client {public['clientId']}, scope {USER_SCOPE})",
            "refresh_response_bytes": len(refresh_answer.body),
            "code": f"POST {token_path} (authorization_code with PKCE, redirect {REDIRECT_URI}, scope {USER_SCOPE})",
            "code_response_bytes": len(code_answer.body),
            "signed_claims": app_claims,
            "read": f"GET {read_path} (app-only token, {READ_ROLE})",
            "read_response_bytes": len(read_body),
            "token_bytes": len(cached_token),
            "fresh_requests_sent": fresh_sent,
        },
        "labels": dict(MEASUREMENTS),
        "rounds": [{key: asdict(result) for key, result in r.items()} for r in rounds],
        "codes": notes,
        "processor": spent,
        "median": medians,
        "ratios": comparisons,
        "problems": problems,
    }


def describe_codes(note: dict[str, Any]) -> str:
    text = (
        f"{note['codes_prepared']:,} prepared in {note['prepare_s']:.1f} s through /authorize, "
        f"{note['codes_redeemed']:,} redeemed"
    )
    return text + (f" (ran out after {note['measured_s']:.1f} s)" if note["ran_out"] else "")


def processor(results: dict[str, Any], cpu: dict[str, float], duration: int) -> dict[str, dict[str, float]]:
    """For the signing process and each grant: processor seconds, tokens per processor second, and the share of
    a core the process had during the measurement."""
    return {
        key: {
            "cpu_s": cpu[key],
            "per_cpu_s": results[key].requests / cpu[key] if cpu[key] else float("nan"),
            "core_share": cpu[key] / duration,
        }
        for key in ("signing", *GRANTS)
    }


def round_ratio(results: dict[str, Any], spent: dict[str, dict[str, float]], key: str) -> str:
    if key == "signing":
        return f" | had {spent[key]['core_share']:.2f} of a core"
    over = BASELINE_OF.get(key)
    if over is None:
        return ""
    text = f" | {results[key].rps / results[over].rps:.3f}x of bare ASGI"
    if key == "read_fresh":
        text += f", {results[key].rps / results['read_cached'].rps:.2f}x of cached"
    if key in GRANTS:
        per_cpu = spent[key]["per_cpu_s"] / spent["signing"]["per_cpu_s"]
        text += (
            f", {results[key].rps / results['signing'].rps:.3f}x of raw signing"
            f" ({per_cpu:.3f}x per processor second; had {spent[key]['core_share']:.2f} of a core)"
        )
    return text


def print_summary(results: dict[str, Any]) -> None:
    config, medians, ratios = results["config"], results["median"], results["ratios"]
    print()
    print(
        f"summary: medians of {config['rounds']} rounds of {config['duration_s']} s, "
        f"wrk -t1 -c{config['connections']} or token_load.py; ratios: req/s over the bare-ASGI req/s, and over the "
        "raw signing rate, of the same round (ratio of medians; median of per-round ratios)"
    )
    header = f"{'measurement':<50} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  {'of bare ASGI':<16} of raw signing"
    print(header)
    print("-" * len(header))
    for key, label in MEASUREMENTS:
        m = medians[key]
        over = BASELINE_OF.get(key)
        ratio = "" if over is not None or key == "signing" else "1"
        if over is not None:
            r = ratios[f"{key}/{over}"]
            ratio = f"{r['ratio_of_medians']:.3f}x; {r['median_of_ratios']:.3f}x"
        if key.endswith("_baseline"):
            ratio = "1"
        signing = ""
        if key in GRANTS:
            s = ratios[f"{key}/signing"]
            signing = f"{s['ratio_of_medians']:.3f}x; {s['median_of_ratios']:.3f}x"
        elif key == "signing":
            signing = "1"
        print(
            f"{label:<50} {harness.fmt_rps(m['rps']):>8} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f}  {ratio:<16} {signing}"
        )
    print()
    raw = medians["signing"]["rps"]
    print(f"raw RS256 signing of a client-credentials token's claims: {harness.fmt_rps(raw)} tokens/s (one core)")
    for key, (name, target) in GRANTS.items():
        r = ratios[f"{key}/signing"]
        met = "met" if r["ratio_of_medians"] >= target else "NOT met"
        rate = harness.fmt_rps(medians[key]["rps"])
        print(
            f"{name + ':':<20} {rate:>7} tokens/s = {r['ratio_of_medians']:.2f}x the raw "
            f"signing rate (median of per-round ratios {r['median_of_ratios']:.2f}x); target {target}x: {met}"
        )
    print("(each refresh-token and authorization-code answer signs two tokens: the access token and an ID token)")
    per_cpu = [f"{GRANTS[k][0]} {ratios[f'{k}/signing per processor second']['ratio_of_medians']:.2f}x" for k in GRANTS]
    print(
        "per second of processor time the process used (presenced's, all threads; the signing process's), "
        f"over the same for raw signing: {', '.join(per_cpu)}"
    )
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
    harness.add_measurement_options(
        parser, duration=5, connections=32, connections_help="wrk's and token_load.py's connections (default 32)"
    )
    parser.add_argument(
        "--chains", type=int, default=32, help="refresh-token chains, each a connection of its own (default 32)"
    )
    parser.add_argument(
        "--tokens", type=int, default=20_000, help="distinct tokens for the fresh-token run (default 20000)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers to core 0 and clients to core 1")
    parser.add_argument("--measure-signing", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_signing:
        measure_signing(args.measure_signing)
        return 0

    if harness.missing_wrk():
        return 2
    if min(args.duration, args.rounds, args.connections, args.chains) < 1:
        parser.error("--duration, --rounds, --connections and --chains must be at least 1")
    if not server_cache_size() < args.tokens <= 200_000:
        parser.error(f"--tokens must be more than the server's token cache ({server_cache_size()}) and at most 200000")
    return harness.run("token_bench", args, benchmark, print_summary)


if __name__ == "__main__":
    sys.exit(main())
