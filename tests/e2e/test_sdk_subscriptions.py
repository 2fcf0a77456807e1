"""msgraph-sdk's /subscriptions requests against a real server, with a real webhook receiver.

One `presenced serve --demo` process serves the module (the demo allows plain-http
loopback webhooks). A ``ThreadingHTTPServer`` on 127.0.0.1 plays the subscriber:
it echoes Graph's validation token and records the change notifications posted to it.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.identity import ClientSecretCredential
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.users.item.presence.set_presence.set_presence_post_request_body import (
    SetPresencePostRequestBody,
)

from tests.e2e.server_process import Demo, ServerProcess, running_server

GRAPH = "https://graph.microsoft.com"
CLIENT_STATE = "sdk-state"
#: Slack for the round trip and the server's clock running a little ahead of ours.
SLACK = timedelta(seconds=5)

pytestmark = [
    # msgraph-sdk's generated request builders warn about themselves.
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]


# ---- the webhook receiver ----


@dataclass
class Receiver:
    """What the subscriber's endpoint saw: validation tokens it echoed and notification bodies it accepted."""

    url: str = ""
    validations: list[str] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def notifications_for(self, subscription_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                item
                for body in self.notifications
                for item in body.get("value", [])
                if item.get("subscriptionId") == subscription_id
            ]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            token = parse_qs(urlsplit(self.path).query).get("validationToken")
            if token:
                with receiver.lock:
                    receiver.validations.append(token[0])
                self._answer(200, token[0].encode(), "text/plain; charset=utf-8")
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._answer(400, b"not JSON", "text/plain")
                return
            with receiver.lock:
                receiver.notifications.append(body)
            self._answer(202, b"", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(found))
    httpd.daemon_threads = True
    found.url = f"http://127.0.0.1:{httpd.server_address[1]}/notify"
    thread = threading.Thread(target=httpd.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield found
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# ---- the server ----


@dataclass(frozen=True)
class Env:
    server: ServerProcess
    demo: Demo
    tls: ssl.SSLContext

    def credential(self) -> ClientSecretCredential:
        daemon = self.demo.daemon_app
        return ClientSecretCredential(
            self.demo.tenant_id,
            daemon["clientId"],
            daemon["clientSecret"],
            authority=self.server.url,
            disable_instance_discovery=True,
            connection_verify=str(self.server.bundle),
        )

    def graph(self, credential: ClientSecretCredential) -> GraphServiceClient:
        client = GraphServiceClient(credentials=credential, scopes=[f"{GRAPH}/.default"])
        client.request_adapter.base_url = f"{self.server.url}/v1.0"
        return client


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[Env]:
    """One server for the module; msgraph-sdk (httpx) trusts its CA through SSL_CERT_FILE."""
    data_dir = tmp_path_factory.mktemp("sdk-subscriptions") / "data"
    # The Graph SDK's connections stay open (msgraph-core's transport has no aclose): stop after 2 s.
    with running_server(data_dir, key_folder=key_folder, stop_timeout=2) as server:
        demo = server.demo()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SSL_CERT_FILE", str(server.bundle))
            patch.setenv("REQUESTS_CA_BUNDLE", str(server.bundle))
            yield Env(server, demo, ssl.create_default_context(cafile=str(server.bundle)))


@pytest.fixture(autouse=True)
def server_log(request: pytest.FixtureRequest) -> Iterator[None]:
    """Attach the server's output to each test's report; fail the test if the server died."""
    env: Env = request.getfixturevalue("env")
    yield
    request.node.add_report_section("teardown", "presenced server log", env.server.log())
    if not env.server.alive:
        pytest.fail(f"the server exited (code {env.server.process.returncode}):\n{env.server.log()}")


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    """Poll ``check()`` until it returns something truthy or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.1)


# ---- the tests ----


async def test_subscription_lifecycle_with_graph_sdk_and_a_real_webhook(env: Env, receiver: Receiver) -> None:
    """Create (validated, expiry raised to 45 min), renew, list, get, notify on setPresence, delete, then 404."""
    daemon = env.demo.daemon_app
    nestor = env.demo.user("nestor")
    user_id = nestor["id"]
    resource = f"/communications/presences/{user_id}"
    with env.credential() as credential:
        graph = env.graph(credential)

        # create: the receiver is validated once; 30 minutes is raised to Graph's minimum of 45
        before = datetime.now(UTC)
        created = await graph.subscriptions.post(
            Subscription(
                change_type="updated",
                notification_url=receiver.url,
                resource=resource,
                expiration_date_time=before + timedelta(minutes=30),
                client_state=CLIENT_STATE,
            )
        )
        assert created is not None
        assert created.id
        subscription_id = created.id
        assert created.resource == resource
        assert created.client_state == CLIENT_STATE
        assert created.change_type == "updated"
        assert created.notification_url == receiver.url
        assert created.application_id == daemon["clientId"]
        assert created.expiration_date_time is not None
        assert created.expiration_date_time >= before + timedelta(minutes=45)
        assert created.expiration_date_time <= datetime.now(UTC) + timedelta(minutes=45) + SLACK
        with receiver.lock:
            assert len(receiver.validations) == 1, receiver.validations
            assert receiver.validations[0]

        # renew
        wanted = datetime.now(UTC) + timedelta(minutes=55)
        renewed = await graph.subscriptions.by_subscription_id(subscription_id).patch(
            Subscription(expiration_date_time=wanted)
        )
        assert renewed is not None
        assert renewed.id == subscription_id
        assert renewed.expiration_date_time is not None
        assert abs(renewed.expiration_date_time - wanted) < timedelta(milliseconds=1)

        # list and get
        listed = await graph.subscriptions.get()
        assert listed is not None
        assert listed.value is not None
        assert subscription_id in [s.id for s in listed.value]
        got = await graph.subscriptions.by_subscription_id(subscription_id).get()
        assert got is not None
        assert got.id == subscription_id
        assert got.resource == resource
        assert got.client_state == CLIENT_STATE
        assert got.expiration_date_time == renewed.expiration_date_time

        # a presence change is notified to the receiver
        await graph.users.by_user_id(user_id).presence.set_presence.post(
            SetPresencePostRequestBody(
                session_id=daemon["clientId"],
                availability="Busy",
                activity="InACall",
                expiration_duration=timedelta(minutes=10),
            )
        )
        notified = wait_for(lambda: receiver.notifications_for(subscription_id), timeout=10)
        assert notified, f"no notification for {subscription_id} within 10 s; received: {receiver.notifications}"
        item = notified[0]
        assert item["clientState"] == CLIENT_STATE
        assert item["changeType"] == "updated"
        assert item["resource"] == f"communications/presences/{user_id}"
        assert item["resourceData"]["id"] == user_id

        # delete, then it is gone
        await graph.subscriptions.by_subscription_id(subscription_id).delete()
        with pytest.raises(ODataError) as gone:
            await graph.subscriptions.by_subscription_id(subscription_id).get()
        assert gone.value.response_status_code == 404
        after = await graph.subscriptions.get()
        assert after is not None
        assert subscription_id not in [s.id for s in after.value or []]


async def test_creating_a_subscription_with_a_bad_resource_is_400(env: Env, receiver: Receiver) -> None:
    """A resource that is not a user's presence is refused with 400, before any handshake."""
    with receiver.lock:
        validations_before = len(receiver.validations)
    with env.credential() as credential:
        graph = env.graph(credential)
        with pytest.raises(ODataError) as refused:
            await graph.subscriptions.post(
                Subscription(
                    change_type="updated",
                    notification_url=receiver.url,
                    resource="/users/not-a-guid/presence",
                    expiration_date_time=datetime.now(UTC) + timedelta(minutes=50),
                    client_state=CLIENT_STATE,
                )
            )
    assert refused.value.response_status_code == 400
    assert refused.value.error is not None
    assert refused.value.error.message
    with receiver.lock:
        assert len(receiver.validations) == validations_before
