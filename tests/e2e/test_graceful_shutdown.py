"""SIGTERM under load on a real server process: the requests in flight are answered whole, the live stream
ends with a hint to reconnect, the process exits on its own within the shutdown timeout, and every
acknowledged write is there when a server starts again on the same data (docs/deployment.md, "Stopping")."""

from __future__ import annotations

import signal
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.server_process import ServerProcess, running_server

#: Preferred presences: each user has a demo session, so what a read shows is the last one set.
STATES = [("Busy", "Busy"), ("DoNotDisturb", "DoNotDisturb"), ("BeRightBack", "BeRightBack"), ("Away", "Away")]


@dataclass
class Outcomes:
    #: (started, finished, status, complete JSON body) of every request that got an answer.
    answers: list[tuple[float, float, int, bool]] = field(default_factory=list)
    #: Errors other than a refused connection (a request cut off mid-answer would be one).
    broken: list[str] = field(default_factory=list)
    #: Per user: the last state a 200 acknowledged, and a state sent whose answer never came.
    acknowledged: dict[str, tuple[str, str]] = field(default_factory=dict)
    unanswered: dict[str, tuple[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, http: httpx.Client, method: str, url: str, **kwargs: object) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.ConnectError:
            return None  # no longer accepting: the client would try another process
        except httpx.HTTPError as error:
            with self.lock:
                self.broken.append(f"{method} {url}: {type(error).__name__}: {error}")
            return None
        complete = True
        if response.content:
            try:
                response.json()
            except ValueError:
                complete = False
        with self.lock:
            self.answers.append((started, time.monotonic(), response.status_code, complete))
        return response


def _client(server: ServerProcess, token: str) -> httpx.Client:
    tls = ssl.create_default_context(cafile=str(server.bundle))
    headers = {"Authorization": f"Bearer {token}"}
    # A new connection for each request: one closed by the shutdown is then a refusal, never a reused socket.
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(base_url=server.url, headers=headers, verify=tls, trust_env=False, limits=limits, timeout=20)


def test_sigterm_answers_what_is_in_flight_ends_streams_and_loses_no_write(tmp_path: Path, key_folder: Path) -> None:
    data_dir = tmp_path / "data"
    outcomes = Outcomes()
    stop = threading.Event()
    with running_server(data_dir, "--emulator", "--shutdown-timeout", "10", key_folder=key_folder) as server:
        demo = server.demo()
        app = next(a for a in demo.raw["apps"] if not a["publicClient"])["clientId"]
        token = server.cli("token", "--app", app, "--roles", "Presence.Read.All Presence.ReadWrite.All").strip()
        users = [demo.user(nick)["id"] for nick in ("adele", "alex", "megan", "pradeep")]
        http = _client(server, token)
        # Reads answer 1.5 s late, so that some are in flight when the signal comes.
        slow = {"method": "GET", "path": "/users/*/presence", "latencyMs": 1500, "probability": 1}
        assert http.post("/_emulator/faults", json=slow).status_code == 201

        def write(user: str) -> None:
            with _client(server, token) as own:
                turn = 0
                while not stop.is_set():
                    availability, activity = STATES[turn % len(STATES)]
                    body = {"availability": availability, "activity": activity, "expirationDuration": "PT8H"}
                    with outcomes.lock:
                        outcomes.unanswered[user] = (availability, activity)
                    url = f"/v1.0/users/{user}/presence/setUserPreferredPresence"
                    response = outcomes.call(own, "POST", url, json=body)
                    if response is None:
                        return
                    assert response.status_code == 200, response.text
                    with outcomes.lock:
                        outcomes.acknowledged[user] = (availability, activity)
                        del outcomes.unanswered[user]
                    turn += 1

        def read(user: str) -> None:
            with _client(server, token) as own:
                while not stop.is_set() and outcomes.call(own, "GET", f"/v1.0/users/{user}/presence") is not None:
                    pass

        streamed: list[str] = []

        def watch() -> None:
            with _client(server, token) as own, own.stream("GET", f"/_stream/presences?ids={users[0]}") as stream:
                for line in stream.iter_lines():
                    streamed.append(line)

        threads = [threading.Thread(target=write, args=(u,)) for u in users]
        threads += [threading.Thread(target=read, args=(u,)) for u in users]
        threads.append(threading.Thread(target=watch))
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0, server.log()
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        http.close()

    assert outcomes.broken == []
    assert all(status == 200 and complete for _, _, status, complete in outcomes.answers), outcomes.answers
    in_flight = [a for a in outcomes.answers if a[0] < signalled < a[1]]
    assert in_flight, "no request was in flight when the signal came"
    assert "event: closing" in streamed
    assert "retry: 1000" in streamed
    assert outcomes.acknowledged, "no write was acknowledged"

    # A server started again on the same data (without resetting the demo) reads every acknowledged write.
    with running_server(data_dir, demo=False) as again:
        again.cli("faults", "clear")
        token = again.cli("token", "--app", app, "--roles", "Presence.Read.All").strip()  # its own issuer URL
        with _client(again, token) as http:
            for user, state in outcomes.acknowledged.items():
                read = http.get(f"/v1.0/users/{user}/presence")
                assert read.status_code == 200, read.text
                got = (read.json()["availability"], read.json()["activity"])
                assert got in {state, outcomes.unanswered.get(user, state)}, (user, got, state)
