"""Fault rules on a real emulator process: set over HTTP and from the command line, applied to the requests
they match, listed with what fired, and gone after `presenced faults clear`."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.server_process import ServerProcess, running_server
from tests.e2e.webhook_receiver import WebhookReceiver


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("faults") / "data"
    with running_server(data_dir, "--clock", "manual", key_folder=key_folder) as server:
        yield server


def daemon_client(server: ServerProcess) -> httpx.Client:
    """A client of the server as the demo's daemon app, reading with Presence.Read.All (the demo is reset)."""
    daemon = next(a for a in server.demo().raw["apps"] if not a["publicClient"])
    token = server.cli("token", "--app", daemon["clientId"], "--roles", "Presence.Read.All").strip()
    tls = ssl.create_default_context(cafile=str(server.bundle))
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, verify=tls, trust_env=False)


def test_rules_from_http_and_the_command_line_fail_what_they_match_until_cleared(emulator: ServerProcess) -> None:
    user = emulator.demo().user("adele")["id"]
    with daemon_client(emulator) as http:
        added = http.post("/_emulator/faults", json={"path": "/users/*/presence", "status": 429, "retryAfter": 2,
                                                     "count": 2})  # fmt: skip
        assert added.status_code == 201, added.text
        line = emulator.cli("faults", "add", "--path", "/communications/getPresencesByUserId", "--status", "503",
                            "--probability", "1", "--seed", "1")  # fmt: skip
        from_cli = json.loads(line)
        assert from_cli["status"] == 503

        reads = [http.get(f"/v1.0/users/{user}/presence") for _ in range(3)]
        assert [r.status_code for r in reads] == [429, 429, 200]
        assert reads[0].headers["Retry-After"] == "2"
        assert reads[0].json()["error"]["code"] == "TooManyRequests"
        # The server reads rules set by another process within REFRESH (0.5 s): until then the bulk read is served.
        deadline = time.monotonic() + 10
        while (bulk := http.post("/v1.0/communications/getPresencesByUserId", json={"ids": [user]})).status_code == 200:
            assert time.monotonic() < deadline, "the server never applied the rule added from the command line"
            time.sleep(0.05)
        assert bulk.status_code == 503

        listed = [json.loads(x) for x in emulator.cli("faults", "list").splitlines()]
        fired = {rule["id"]: rule["fired"] for rule in listed}
        assert fired == {added.json()["id"]: 2, from_cli["id"]: 1}

        assert emulator.cli("faults", "clear").strip() == "removed 2 fault rules"
        assert http.get("/_emulator/faults").json()["value"] == []
        assert http.post("/v1.0/communications/getPresencesByUserId", json={"ids": [user]}).status_code == 200


def test_the_command_line_refuses_rules_on_a_database_without_the_emulator(tmp_path: Path, key_folder: Path) -> None:
    with running_server(tmp_path / "data", key_folder=key_folder) as server:
        with pytest.raises(AssertionError, match="fault rules are for the emulator"):
            server.cli("faults", "list")
        with daemon_client(server) as http:
            refused = http.post("/_emulator/faults", json={"path": "/users/*", "status": 503, "count": 1})
            assert refused.status_code == 404
            assert "--clock manual" in refused.json()["error"]["message"]
            scenario = {"name": "s", "steps": [{"at": "PT0S"}]}
            not_played = http.post("/_emulator/scenarios", json=scenario)
            assert not_played.status_code == 404
            assert "--clock manual" in not_played.json()["error"]["message"]
        file = tmp_path / "scenario.json"
        file.write_text(json.dumps(scenario))
        with pytest.raises(AssertionError, match="scenarios are played on the emulator's manual clock"):
            server.cli("scenario", "run", str(file))


def test_serve_emulator_on_real_time_takes_rules_until_the_emulator_is_turned_off(
    tmp_path: Path, key_folder: Path
) -> None:
    """`serve --emulator` keeps real time and takes fault rules; `presenced emulator off` removes them, and a
    server started afterwards (without --emulator) refuses new ones."""
    data_dir = tmp_path / "data"
    with running_server(data_dir, "--emulator", key_folder=key_folder) as server:
        user = server.demo().user("adele")["id"]
        with daemon_client(server) as http:
            assert http.get("/_emulator/clock").status_code == 404  # real time: no manual clock
            added = http.post("/_emulator/faults", json={"path": "/users/*/presence", "status": 503, "count": 1})
            assert added.status_code == 201, added.text
            assert http.get(f"/v1.0/users/{user}/presence").status_code == 503
            assert http.get(f"/v1.0/users/{user}/presence").status_code == 200
            # A latency rule alone: the real answer, that much later.
            http.post("/_emulator/faults", json={"path": "/users/*/presence", "latencyMs": 400, "count": 1})
            asked = time.monotonic()
            late = http.get(f"/v1.0/users/{user}/presence")
            assert late.status_code == 200
            assert late.json()["id"] == user
            assert time.monotonic() - asked >= 0.4
            http.post("/_emulator/faults", json={"path": "/users/*/presence", "status": 500, "count": 5})
        assert server.cli("emulator", "off").strip() == "emulator off: no manual clock, no fault rule"
    with running_server(data_dir, key_folder=key_folder) as server:
        with pytest.raises(AssertionError, match="fault rules are for the emulator"):
            server.cli("faults", "list")
        with daemon_client(server) as http:
            assert http.get(f"/v1.0/users/{user}/presence").status_code == 200
            refused = http.post("/_emulator/faults", json={"path": "/users/*", "status": 503, "count": 1})
            assert refused.status_code == 404
        assert server.cli("emulator", "off").strip() == "this database was not an emulator's"


def test_a_lifecycle_notification_is_sent_on_demand_to_a_real_receiver(emulator: ServerProcess) -> None:
    """`missed` from the command line and `subscriptionRemoved` over HTTP reach the subscriber's lifecycle
    endpoint; the removal ends the subscription."""
    user = emulator.demo().user("alex")["id"]
    with WebhookReceiver() as receiver, daemon_client(emulator) as http:
        clock = http.get("/_emulator/clock").json()["now"]
        expires = datetime.fromisoformat(clock[:19] + "+00:00") + timedelta(minutes=50)
        created = http.post(
            "/v1.0/subscriptions",
            json={
                "changeType": "updated",
                "notificationUrl": receiver.url,
                "lifecycleNotificationUrl": receiver.url,
                "resource": f"communications/presences/{user}",
                "expirationDateTime": expires.isoformat().replace("+00:00", "Z"),
                "clientState": "faults",
            },
        )
        assert created.status_code == 201, created.text
        subscription = created.json()["id"]

        def events(r: WebhookReceiver) -> list[str]:
            return [a.item["lifecycleEvent"] for a in r.items(lambda item: "lifecycleEvent" in item)]

        said = emulator.cli("faults", "lifecycle", subscription, "missed").strip()
        assert said == f"missed queued for subscription {subscription}"
        receiver.wait_for(lambda r: events(r) == ["missed"], 20, "the missed notification")
        assert http.get(f"/v1.0/subscriptions/{subscription}").status_code == 200

        fired = http.post(f"/_emulator/subscriptions/{subscription}/lifecycle", json={"event": "subscriptionRemoved"})
        assert fired.status_code == 202, fired.text
        receiver.wait_for(lambda r: events(r) == ["missed", "subscriptionRemoved"], 20, "the removal")
        assert http.get(f"/v1.0/subscriptions/{subscription}").status_code == 404
        refused = http.post(f"/_emulator/subscriptions/{subscription}/lifecycle", json={"event": "missed"})
        assert refused.status_code == 404
