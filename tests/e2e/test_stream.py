"""The live presence stream (Server-Sent Events) against a real server process."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from presenced.services.demo import DEMO_DAEMON_APP_ID
from tests.e2e.server_process import ServerProcess, running_server
from tests.support import bearer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("stream") / "data", key_folder=key_folder, stop_timeout=3) as running:
        yield running


def _client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=str(server.bundle)), timeout=20)


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse an SSE line stream into events (comments and retry lines skipped)."""
    event: dict[str, Any] = {}
    for line in lines:
        if not line:
            if "data" in event:
                yield event
            event = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(": ")
        event[name] = value


def _set(server: ServerProcess, http: httpx.Client, user_id: str, availability: str, activity: str) -> None:
    token = server.cli("token", "--app", DEMO_DAEMON_APP_ID, "--roles", "Presence.ReadWrite.All").strip()
    body = {"sessionId": DEMO_DAEMON_APP_ID, "availability": availability, "activity": activity}
    response = http.post(f"/v1.0/users/{user_id}/presence/setPresence", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text


def test_the_stream_sends_the_presence_then_each_change_and_resumes(server: ServerProcess) -> None:
    """The current presence first, then a change as it is stored; Last-Event-ID resumes after that point."""
    demo = server.demo()
    nestor = demo.user("nestor")
    reader = server.cli("token", "--app", DEMO_DAEMON_APP_ID, "--roles", "Presence.Read.All").strip()
    import json

    with _client(server) as http:
        with http.stream("GET", f"/_stream/presences?ids={nestor['id']}", headers=bearer(reader)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _events(response.iter_lines())
            first = next(events)
            assert first["event"] == "presence"
            current = json.loads(first["data"])
            assert current["id"] == nestor["id"]
            assert first["id"] == current["sequenceNumber"]
            _set(server, http, nestor["id"], "Busy", "InACall")
            change = next(events)
            changed = json.loads(change["data"])
            assert (changed["availability"], changed["activity"]) == ("Busy", "InACall")
            assert int(change["id"]) > int(first["id"])
        headers = {**bearer(reader), "Last-Event-ID": first["id"]}
        with http.stream("GET", f"/_stream/presences?ids={nestor['id']}", headers=headers) as resumed:
            again = next(_events(resumed.iter_lines()))
            assert again["id"] == change["id"]


def test_the_stream_takes_the_permissions_of_reading(server: ServerProcess) -> None:
    """Presence.Read may stream only the signed-in user's own presence; more users take Presence.Read.All."""
    demo = server.demo()
    adele, alex = demo.user("adele"), demo.user("alex")
    token = server.cli("token", "--user", adele["userPrincipalName"], "--scopes", "Presence.Read").strip()
    with _client(server) as http:
        other = http.get(f"/_stream/presences?ids={alex['id']}", headers=bearer(token))
        assert other.status_code == 403
        assert http.get("/_stream/presences?ids=", headers=bearer(token)).status_code == 400
        with http.stream("GET", f"/_stream/presences?ids={adele['id']}", headers=bearer(token)) as own:
            assert own.status_code == 200
