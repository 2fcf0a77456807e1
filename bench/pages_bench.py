"""Portal benchmark: the web portal's pages, as a signed-in administrator, against a bare ASGI app.

Run:  .venv/bin/python bench/pages_bench.py [--duration 3] [--rounds 3] [--connections 4] [--no-pin]

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
import http.client
import json
import re
import statistics
import sys
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import harness
from harness import FORM_TYPE, Answer

ADMIN = "adele"
ADMIN_UPN = "adele@contoso.example"
SESSION_COOKIE = "presenced_session"
CSRF_COOKIE = "presenced_csrf"
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


# --------------------------------------------------------------------------- requests


def set_cookies(answer: Answer) -> dict[str, str]:
    """The cookies the answer sets: name and value."""
    found = {}
    for name, value in answer.headers:
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


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def sign_in(url: str, password: str) -> tuple[dict[str, str], str]:
    """Sign the administrator in through the portal's form: her cookies and the CSRF token."""
    page = request(url, "GET", "/signin?next=/me", {})
    cookies = set_cookies(page)
    found = re.search(rb'name="csrf" value="([^"]+)"', page.body)
    if page.status != 200 or CSRF_COOKIE not in cookies or found is None:
        raise RuntimeError(f"GET /signin?next=/me answered {page.status} without a CSRF cookie and field")
    csrf = found.group(1).decode()
    form = urllib.parse.urlencode({"csrf": csrf, "username": ADMIN_UPN, "password": password}).encode()
    headers = {"Cookie": cookie_header(cookies), "Content-Type": FORM_TYPE}
    answer = request(url, "POST", "/signin?next=/me", headers, form)
    cookies.update(set_cookies(answer))
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


@dataclass
class Target:
    """One measured request: a page, or the form."""

    label: str
    path: str
    cookie: str | None
    script: Path | None
    answer: Answer


# --------------------------------------------------------------------------- main


def stderr_size(server: harness.Server) -> int:
    try:
        return int(server.stderr.stat().st_size)
    except OSError:
        return 0


def stderr_since(server: harness.Server, offset: int, lines: int | None = 20) -> str:
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
    levels = sorted({args.connections, 1}, reverse=True)

    # `serve --demo` would reseed: seed once here, serve without it.
    demo = json.loads(harness.run_cli("demo", "--data-dir", str(data_dir), "--json"))
    admin = next(u for u in demo["users"] if u["userPrincipalName"] == ADMIN_UPN)
    password = admin.get("password") or demo_password(ADMIN)
    daemon = harness.demo_daemon_app(demo)
    paths = [(template.format(daemon_app_id=daemon["clientId"]), signed) for template, signed in PAGES]

    targets: list[Target] = []
    unavailable: dict[str, str] = {}
    rounds: list[dict[str, Any]] = []
    checked_at = 0
    with harness.serving(problems, stderr=False) as servers:
        real = harness.start_presenced(workdir, pin, "--data-dir", str(data_dir))
        servers.append(real)
        cookies, csrf = sign_in(real.url, password)
        signed_in = cookie_header(cookies)

        # The form first (it changes Adele's presence, which /me and /people then show).
        form_body = urllib.parse.urlencode({"csrf": csrf, **FORM_FIELDS})
        form_label = f"POST {FORM_PATH} ({', '.join(f'{k}={v}' for k, v in FORM_FIELDS.items())})"
        headers = {"Cookie": signed_in, "Content-Type": FORM_TYPE}
        posted = request(real.url, "POST", FORM_PATH, headers, form_body.encode())
        if posted.status == 303 and posted.header("location") == FORM_REDIRECT:
            script = harness.post_script(workdir / "form.lua", form_body, FORM_TYPE)
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

        baseline = harness.start_baseline("baseline", workdir, pin, by_path={t.path: t.answer for t in targets})
        servers.append(baseline)
        for t in targets:
            method, body = ("POST", form_body.encode()) if t.script is not None else ("GET", None)
            headers = {"Cookie": t.cookie} if t.cookie else {}
            if body is not None:
                headers["Content-Type"] = FORM_TYPE
            harness.same_answer(t.label, request(baseline.url, method, t.path, headers, body), t.answer)

        print(
            f"signed in as {ADMIN_UPN} through the portal; {len(targets)} requests to measure, "
            f"wrk -t1 -c{'/-c'.join(map(str, levels))} -d{args.duration}s --timeout {WRK_TIMEOUT}; pinned: {pin}",
            flush=True,
        )

        def measure(server: harness.Server, t: Target, connections: int, duration: int) -> harness.WrkResult:
            cookie = [f"Cookie: {t.cookie}"] if t.cookie else []
            return harness.run_wrk(
                server.url + t.path, connections, duration, pin, headers=cookie, script=t.script, timeout=WRK_TIMEOUT
            )

        for t in targets:  # warm both up; not recorded
            for server in (baseline, real):
                measure(server, t, levels[0], harness.WARMUP_SECONDS)

        for n in range(1, args.rounds + 1):
            print(f"round {n}:", flush=True)
            this_round: dict[str, Any] = {}
            for t in targets:
                for c in levels:
                    base_r = measure(baseline, t, c, args.duration)
                    harness.note_errors(f"round {n} bare ASGI {t.label} -c{c}", base_r, problems)
                    real_r = measure(real, t, c, args.duration)
                    harness.note_errors(f"round {n} {t.label} -c{c}", real_r, problems)
                    ratio = harness.ratio(real_r.rps, base_r.rps)
                    this_round[f"{t.label} -c{c}"] = {"presenced": real_r, "baseline": base_r, "ratio": ratio}
                    print(
                        f"  {t.label} -c{c}: presenced {harness.describe(real_r)} "
                        f"| bare ASGI {harness.describe(base_r)} | ratio {ratio:.3f}x",
                        flush=True,
                    )
            rounds.append(this_round)

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
            real_med = harness.median_of([r[key]["presenced"] for r in rounds])
            base_med = harness.median_of([r[key]["baseline"] for r in rounds])
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
            **harness.machine(pin),
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
            f"{m['label']:<{width}} {m['connections']:>2} {m['response_bytes']:>6} {harness.fmt_rps(real['rps']):>7} "
            f"{real['p50_ms']:>7.2f} {real['p99_ms']:>7.2f} | {harness.fmt_rps(base['rps']):>8} {base['p50_ms']:>7.2f} "
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
    harness.add_measurement_options(
        parser, duration=3, connections=4, connections_help="wrk connections besides 1 (default 4)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers to core 0 and wrk to core 1")
    args = parser.parse_args(argv)

    if harness.missing_wrk():
        return 2
    if min(args.duration, args.rounds, args.connections) < 1:
        parser.error("--duration, --rounds and --connections must be at least 1")
    return harness.run("pages_bench", args, benchmark, print_summary)


if __name__ == "__main__":
    sys.exit(main())
