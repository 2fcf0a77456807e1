"""Notification fault rules on a real emulator process and a real receiver: deliveries of a subscription (or
to a URL) come late, twice, out of order, or are dropped and retried as a failed delivery is; and none
survives `presenced faults clear` (docs/emulator.md, "Notification faults")."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server_process import Demo, ServerProcess, running_server
from tests.e2e.webhook_receiver import WebhookReceiver


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("notification-faults") / "data"
    with running_server(data_dir, "--clock", "manual", key_folder=key_folder) as server:
        yield server


def daemon(demo: Demo) -> str:
    """The demo's confidential client: the app the tests call as (and its setPresence session id)."""
    return str(next(a for a in demo.raw["apps"] if not a["publicClient"])["clientId"])


@pytest.fixture
def demo(emulator: ServerProcess) -> Demo:
    """The demo tenant, reset: every test starts from its presence."""
    return emulator.demo()


@pytest.fixture(scope="module")
def http(emulator: ServerProcess) -> Iterator[httpx.Client]:
    roles = "Presence.Read.All Presence.ReadWrite.All"
    token = emulator.cli("token", "--app", daemon(emulator.demo()), "--roles", roles).strip()
    tls = ssl.create_default_context(cafile=str(emulator.bundle))
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=emulator.url, headers=headers, verify=tls, trust_env=False) as client:
        yield client


#: The subscriptions a test made, removed after it (a new receiver may get an old one's port).
made: list[str] = []


@pytest.fixture(autouse=True)
def nothing_left(http: httpx.Client) -> Iterator[None]:
    yield
    http.delete("/_emulator/faults")
    while made:
        http.delete(f"/v1.0/subscriptions/{made.pop()}")


def subscribe(http: httpx.Client, receiver: WebhookReceiver, user: str) -> str:
    now = http.get("/_emulator/clock").json()["now"]
    expires = datetime.fromisoformat(now[:19] + "+00:00") + timedelta(minutes=50)
    created = http.post(
        "/v1.0/subscriptions",
        json={
            "changeType": "updated",
            "notificationUrl": receiver.url,
            "resource": f"communications/presences/{user}",
            "expirationDateTime": expires.isoformat().replace("+00:00", "Z"),
            "clientState": "notification-faults",
        },
    )
    assert created.status_code == 201, created.text
    made.append(created.json()["id"])
    return str(created.json()["id"])


def set_presence(demo: Demo, http: httpx.Client, user: str, availability: str, activity: str) -> None:
    body = {
        "sessionId": daemon(demo),
        "availability": availability,
        "activity": activity,
        "expirationDuration": "PT1H",
    }
    answer = http.post(f"/v1.0/users/{user}/presence/setPresence", json=body)
    assert answer.status_code == 200, answer.text


def rule(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    added = http.post("/_emulator/faults", json=fields)
    assert added.status_code == 201, added.text
    body: dict[str, Any] = added.json()
    return body


def resources(receiver: WebhookReceiver) -> list[str]:
    return [str(a.item["resource"]).rsplit("/", 1)[-1] for a in receiver.items()]


def test_a_delay_rule_holds_a_subscriptions_notifications_back(demo: Demo, http: httpx.Client) -> None:
    user = demo.user("adele")["id"]
    with WebhookReceiver() as receiver:
        subscription = subscribe(http, receiver, user)
        added = rule(http, action="delay", subscriptionId=subscription, delayMs=2000, count=1)
        assert (added["action"], added["delayMs"], added["remaining"]) == ("delay", 2000, 1)
        written = time.monotonic()
        set_presence(demo, http, user, "Busy", "InACall")
        receiver.wait_for(lambda r: len(r.items()) == 1, 20, "the delayed notification")
        assert receiver.items()[0].at - written >= 2.0
        assert resources(receiver) == [user]


def test_a_duplicate_rule_delivers_each_notification_twice(demo: Demo, http: httpx.Client) -> None:
    user = demo.user("alex")["id"]
    with WebhookReceiver() as receiver:
        subscribe(http, receiver, user)
        rule(http, action="duplicate", notificationUrl=receiver.url)
        set_presence(demo, http, user, "DoNotDisturb", "Presenting")
        receiver.wait_for(lambda r: len(r.items()) == 2, 20, "the notification and its copy")
        first, second = receiver.items()
        assert first.id == second.id
        assert first.post != second.post


def test_a_reorder_rule_delivers_what_comes_within_its_window_last_first(demo: Demo, http: httpx.Client) -> None:
    users = [demo.user(nick)["id"] for nick in ("lynne", "grady", "pradeep")]
    with WebhookReceiver() as receiver:
        for user in users:
            subscribe(http, receiver, user)
        rule(http, action="reorder", notificationUrl=receiver.url, windowMs=3000, count=1)
        for user in users:
            set_presence(demo, http, user, "Busy", "InACall")
            # The outbox is in the order of the presence clock: move it, so that the writes' order is clear.
            assert http.post("/_emulator/clock", json={"advance": "PT1S"}).status_code == 200
        receiver.wait_for(lambda r: len(r.items()) == 3, 30, "the three notifications")
        assert resources(receiver) == list(reversed(users))
        assert len({a.post for a in receiver.items()}) == 3  # one request each


def test_a_drop_rule_loses_the_next_delivery_which_is_retried_as_a_failure_is(demo: Demo, http: httpx.Client) -> None:
    user = demo.user("pradeep")["id"]
    with WebhookReceiver() as receiver:
        subscription = subscribe(http, receiver, user)
        dropped = rule(http, action="drop", subscriptionId=subscription, count=1)
        written = time.monotonic()
        set_presence(demo, http, user, "DoNotDisturb", "Presenting")
        receiver.wait_for(lambda r: len(r.items()) == 1, 30, "the retried notification")
        assert receiver.items()[0].at - written >= 4.0  # the first retry of a failed delivery comes 5 s after it
        listed = {r["id"]: r for r in http.get("/_emulator/faults").json()["value"]}
        assert (listed[dropped["id"]]["remaining"], listed[dropped["id"]]["fired"]) == (0, 1)
        time.sleep(1.0)
        assert len(receiver.items()) == 1


def test_no_notification_rule_survives_faults_clear(emulator: ServerProcess, demo: Demo, http: httpx.Client) -> None:
    user = demo.user("adele")["id"]
    with WebhookReceiver() as receiver:
        subscription = subscribe(http, receiver, user)
        rule(http, action="drop", subscriptionId=subscription)
        line = emulator.cli("faults", "add", "--action", "duplicate", "--notification-url", receiver.url)
        assert '"action": "duplicate"' in line
        assert emulator.cli("faults", "clear").strip() == "removed 2 fault rules"
        set_presence(demo, http, user, "DoNotDisturb", "Presenting")
        receiver.wait_for(lambda r: len(r.items()) == 1, 20, "the notification")
        time.sleep(1.0)
        assert len(receiver.items()) == 1
