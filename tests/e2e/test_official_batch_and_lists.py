"""The official clients' JSON batching, page iteration and photo upload against a real server over HTTPS.

One `presenced serve --demo` process serves the whole module. msgraph-sdk (Python) sends a
``BatchRequestContent`` and reads the answers with ``BatchResponseContent``, walks ``GET /users``
with ``PageIterator`` and uploads profile photos; the JavaScript client
(`tests/e2e/js/batch_and_lists.mjs`, @microsoft/microsoft-graph-client 3.x) does the batch and the
page iteration too. Tokens come from `presenced token`, for the demo daemon app or a demo user,
with the permissions Graph asks for each call.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import struct
import subprocess
import urllib.request
import uuid
import warnings
import zlib
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.core.credentials import AccessToken
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.serialization import ParseNode
from msgraph import GraphServiceClient
from msgraph.generated.communications.get_presences_by_user_id.get_presences_by_user_id_post_request_body import (
    GetPresencesByUserIdPostRequestBody,
)
from msgraph.generated.communications.get_presences_by_user_id.get_presences_by_user_id_post_response import (
    GetPresencesByUserIdPostResponse,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.presence import Presence
from msgraph.generated.models.user import User as GraphUser
from msgraph.generated.users.item.presence.set_presence.set_presence_post_request_body import (
    SetPresencePostRequestBody,
)
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.requests.batch_response_content import BatchResponseContent
from msgraph_core.requests.batch_response_item import BatchResponseItem
from msgraph_core.tasks.page_iterator import PageIterator

from presenced.bootstrap import build
from presenced.clock import real_now
from presenced.config import Settings
from presenced.services.demo_ids import DEMO_DOMAIN
from presenced.services.entities import User
from tests.e2e.server_process import Demo, ServerProcess, running_server

# node_packages: the JavaScript tests' fixture (`npm ci` in tests/e2e/js from the lock file, once).
from tests.e2e.test_javascript_client import JS, NODE, NPM, node_packages  # noqa: F401

# server_log: attaches the server's output to each test that uses `env`, and fails it if the server died.
from tests.e2e.test_official_clients import server_log  # noqa: F401

with warnings.catch_warnings():
    # This builder's module and kiota's GetQueryParameters, which it imports, warn about themselves.
    warnings.simplefilter("ignore", DeprecationWarning)
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

GRAPH = "https://graph.microsoft.com"
#: Users added to the demo tenant (which has 10) for the page iterators.
BULK_USERS = 1_200
NODE_TIMEOUT = 120

needs_node = pytest.mark.skipif(NODE is None or NPM is None, reason="node and npm are needed on PATH")

pytestmark = [
    # msgraph-sdk's generated request builders warn about themselves.
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
]


class StaticToken:
    """An azure-core (async) TokenCredential that hands GraphServiceClient one token minted by `presenced token`."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._expires_on = int(jwt_payload(token)["exp"])

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, self._expires_on)

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class Env:
    server: ServerProcess
    demo: Demo

    @property
    def url(self) -> str:
        return self.server.url

    def app_token(self, *roles: str) -> str:
        """An app-only token of the demo daemon app carrying ``roles``."""
        return self.server.cli("token", "--app", self.demo.daemon_app["clientId"], "--roles", " ".join(roles)).strip()

    def user_token(self, nickname: str, *scopes: str) -> str:
        """A delegated token of the demo public client for the demo user ``nickname``."""
        user = self.demo.user(nickname)["userPrincipalName"]
        app = self.demo.public_app["clientId"]
        return self.server.cli("token", "--user", user, "--app-id", app, "--scopes", " ".join(scopes)).strip()

    def graph(self, token: str) -> GraphServiceClient:
        """GraphServiceClient as the recipe sets it up: the server's base URL, Graph's scope."""
        client = GraphServiceClient(credentials=StaticToken(token), scopes=[f"{GRAPH}/.default"])
        client.request_adapter.base_url = f"{self.url}/v1.0"
        return client


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[Env]:
    """One server for the module; msgraph-sdk (httpx) trusts its CA through SSL_CERT_FILE."""
    data_dir = tmp_path_factory.mktemp("official-batch") / "data"
    # msgraph-core's connections stay open (its transport has no aclose): stop after the 2 s grace.
    with running_server(data_dir, key_folder=key_folder, stop_timeout=2) as server:
        demo = server.demo()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SSL_CERT_FILE", str(server.bundle))
            yield Env(server, demo)


@pytest.fixture(scope="module")
def everyone(env: Env) -> frozenset[str]:
    """The ids of every user of the demo tenant once BULK_USERS more are added.

    They are written into the server's database through presenced's own store (one transaction, as the
    demo's users are seeded), not with 1,200 POST /users, each of which would hash a password.
    """
    added = _run(_add_users(env.server.data_dir, env.demo.tenant_id, BULK_USERS))
    return frozenset(added) | {str(u["id"]) for u in env.demo.raw["users"]}


async def _add_users(data_dir: Path, tenant_id: str, count: int) -> list[str]:
    runtime = await build(Settings(data_dir=data_dir))
    try:
        now = real_now()
        users = [
            User(str(uuid.uuid4()), tenant_id, f"bulk{i:04d}@{DEMO_DOMAIN}", f"Bulk User {i:04d}") for i in range(count)
        ]
        async with runtime.store.begin() as tx:
            for user in users:
                await tx.put_user(user, now)
        return [u.id for u in users]
    finally:
        await runtime.close()


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` on a loop of its own (in a thread, away from the tests' loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def batch_bodies_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let msgraph-core keep the JSON bodies of a batch's answers.

    BatchResponseItem reads ``body`` with ``JsonParseNode.get_bytes_value``, which (kiota-serialization-json
    1.16) gives None for anything but a string: every JSON body in a batch answer, from Graph as from
    this server, is dropped and ``response_body`` fails (microsoft/kiota-python#737). This gives the SDK's
    own readers what they expect, the body's bytes: a base64 string (a body that is not JSON) decoded as
    the SDK decodes it, a JSON value as its UTF-8 text, as kiota did before.
    """
    original = BatchResponseItem.get_field_deserializers

    def body_bytes(node: ParseNode) -> bytes | None:
        decoded = node.get_bytes_value()
        if decoded is not None:
            return decoded
        value = getattr(node, "_json_node", None)
        return None if value is None else json.dumps(value).encode()

    def get_field_deserializers(self: BatchResponseItem) -> dict[str, Callable[[ParseNode], None]]:
        fields: dict[str, Callable[[ParseNode], None]] = original(self)
        fields["body"] = lambda node: setattr(self, "body", body_bytes(node))
        return fields

    monkeypatch.setattr(BatchResponseItem, "get_field_deserializers", get_field_deserializers)


# ---- helpers ----


def jwt_payload(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified."""
    middle = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(middle + "=" * (-len(middle) % 4)))
    return decoded


def png(width: int, height: int) -> bytes:
    """An RGB PNG of ``width`` x ``height`` pixels (a gradient)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in (x * 255 // width, y * 255 // height, 128))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def jpeg(width: int, height: int) -> bytes:
    """A baseline grey JPEG of ``width`` x ``height`` pixels (libjpeg decodes it without a warning).

    Every 8x8 block is flat mid-grey, so each is two Huffman codes: DC difference 0 and end-of-block.
    """

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">HH", marker, len(payload) + 2) + payload

    one_code = bytes([1] + [0] * 15) + b"\x00"  # a Huffman table of one 1-bit code, "0", for symbol 0
    blocks = -(-width // 8) * -(-height // 8)
    bits = "00" * blocks
    bits += "1" * (-len(bits) % 8)
    scan = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)).replace(b"\xff", b"\xff\x00")
    return b"".join(
        (
            b"\xff\xd8",
            segment(0xFFE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            segment(0xFFDB, b"\x00" + b"\x01" * 64),
            segment(0xFFC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"),
            segment(0xFFC4, b"\x00" + one_code),
            segment(0xFFC4, b"\x10" + one_code),
            segment(0xFFDA, b"\x01\x01\x00\x00\x3f\x00"),
            scan,
            b"\xff\xd9",
        )
    )


def page_sizes(total: int, top: int) -> list[int]:
    return [top] * (total // top) + ([total % top] if total % top else [])


def users_query(
    top: int | None = None,
) -> RequestConfiguration[UsersRequestBuilder.UsersRequestBuilderGetQueryParameters]:
    return RequestConfiguration(query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=top))


def run_node(env: Env, mode: str, token: str, **extra: str) -> dict[str, Any]:
    """Run batch_and_lists.mjs in ``mode``; its one line of JSON output."""
    assert NODE is not None
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    variables = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")},
        "NODE_EXTRA_CA_CERTS": str(env.demo.raw["caCertificate"]),
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
        "AUTHORITY": env.url,
        "ACCESS_TOKEN": token,
        **extra,
    }
    result = subprocess.run(
        [NODE, "batch_and_lists.mjs", mode],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        env=variables,
        check=False,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return output


# ---- 1. msgraph-sdk: JSON batching ----


async def test_graph_sdk_batch_reads_two_presences_sets_one_and_reads_in_bulk(
    env: Env, batch_bodies_kept: None
) -> None:
    """BatchRequestContent with two presence reads, a setPresence, a getPresencesByUserId and a read of a user
    who does not exist: 200 for each but the last, a 404; BatchResponseContent reads each body; the presence
    set in the batch is what a later read alone sees."""
    daemon = env.demo.daemon_app
    adele, alex, nestor = env.demo.user("adele"), env.demo.user("alex"), env.demo.user("nestor")
    client = env.graph(env.app_token("Presence.ReadWrite.All"))
    ids = [adele["id"], alex["id"], nestor["id"]]
    set_presence = SetPresencePostRequestBody(
        session_id=daemon["clientId"],
        availability="Busy",
        activity="InACall",
        expiration_duration=timedelta(minutes=10),
    )
    users = client.users
    # The ids go on the items: BatchRequestContent keeps an item's own id (a new UUID unless given) and
    # drops the key it is given with a RequestInformation.
    content = BatchRequestContent()
    content.add_request(
        "adele", BatchRequestItem(users.by_user_id(adele["id"]).presence.to_get_request_information(), "adele")
    )
    content.add_request(
        "set",
        BatchRequestItem(
            users.by_user_id(nestor["id"]).presence.set_presence.to_post_request_information(set_presence), "set"
        ),
    )
    content.add_request(
        "bulk",
        BatchRequestItem(
            client.communications.get_presences_by_user_id.to_post_request_information(
                GetPresencesByUserIdPostRequestBody(ids=ids)
            ),
            "bulk",
        ),
    )
    # An item made from a urllib request keeps its absolute URL in the batch (by UPN, this one).
    alex_url = f"{env.url}/v1.0/users/{alex['userPrincipalName']}/presence"
    content.add_request("alex", BatchRequestItem.create_with_urllib_request(urllib.request.Request(alex_url), "alex"))
    # A user who does not exist: that request's 404 leaves the others alone.
    ghost = str(uuid.uuid4())
    content.add_request(
        "ghost", BatchRequestItem(users.by_user_id(ghost).presence.to_get_request_information(), "ghost")
    )
    sent = {item.id: item.url for item in content.requests.values()}
    assert sent["alex"] == alex_url

    answer = await client.batch.post(content)
    assert isinstance(answer, BatchResponseContent)
    statuses = answer.get_response_status_codes()
    assert statuses == {"adele": 200, "alex": 200, "set": 200, "bulk": 200, "ghost": 404}, sent

    adele_presence = answer.get_response_by_id("adele", Presence)
    assert isinstance(adele_presence, Presence)
    assert adele_presence.id == adele["id"]
    assert (adele_presence.availability, adele_presence.activity) == ("Available", "Available")
    alex_presence = answer.response_body("alex", Presence)
    assert alex_presence is not None
    assert alex_presence.id == alex["id"]
    assert (alex_presence.availability, alex_presence.activity) == ("Busy", "InACall")
    set_answer = answer.get_response_by_id("set")
    assert isinstance(set_answer, BatchResponseItem)
    assert not set_answer.body, set_answer.body
    bulk = answer.response_body("bulk", GetPresencesByUserIdPostResponse)
    assert bulk is not None
    assert bulk.value is not None
    # The bulk read ran beside the write: Nestor's entry may be from before or after it.
    assert sorted(p.id for p in bulk.value if p.id) == sorted(ids)
    missing = answer.response_body("ghost", ODataError)
    assert missing is not None
    assert missing.error is not None
    assert missing.error.code == "ResourceNotFound"

    after = await client.users.by_user_id(nestor["id"]).presence.get()
    assert after is not None
    assert (after.availability, after.activity) == ("Busy", "InACall")


# ---- 2. msgraph-sdk: PageIterator over GET /users ----


async def test_graph_sdk_page_iterator_sees_every_user_exactly_once(env: Env, everyone: frozenset[str]) -> None:
    """PageIterator follows @odata.nextLink (absolute, with an opaque $skiptoken) from GET /users?$top=100
    through every page of 100, and sees each of the tenant's 1,210 users once. (The slowest test here:
    msgraph-sdk spends some 10 ms making each User, the server well under 1 ms.)"""
    client = env.graph(env.app_token("User.Read.All"))
    first = await client.users.get(request_configuration=users_query(top=100))
    assert first is not None
    assert first.value is not None
    assert len(first.value) == 100
    next_link = first.odata_next_link
    assert next_link, "the first page has no @odata.nextLink"
    parts = urlsplit(next_link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{env.url}/v1.0/users", next_link
    assert parse_qs(parts.query).get("$skiptoken"), next_link

    seen: list[str] = []
    pages: list[Any] = []  # the pages themselves, so that two are never told apart by a recycled id()
    iterator = PageIterator(first, client.request_adapter)

    def collect(user: GraphUser) -> bool:
        if not pages or iterator.current_page is not pages[-1]:
            pages.append(iterator.current_page)
        assert user.id is not None
        seen.append(user.id)
        return True

    await iterator.iterate(collect)
    assert len(seen) == len(set(seen)), f"{len(seen) - len(set(seen))} users were seen twice"
    assert set(seen) == everyone, (len(everyone - set(seen)), len(set(seen) - everyone))
    assert [len(page.value) for page in pages] == page_sizes(len(everyone), 100)


def test_users_come_100_a_page_by_default_and_at_most_999(env: Env, everyone: frozenset[str]) -> None:
    """GET /users without $top answers 100 and a next link, $top=999 answers 999 and a next link, and a $top
    of 0 or 1000 is a 400. (Plain HTTP: msgraph-sdk would spend some 10 ms reading each User.)"""
    tls = ssl.create_default_context(cafile=str(env.server.bundle))
    headers = {"Authorization": f"Bearer {env.app_token('User.Read.All')}"}
    with httpx.Client(base_url=f"{env.url}/v1.0", headers=headers, verify=tls, timeout=30, trust_env=False) as http:
        default = http.get("/users")
        assert default.status_code == 200, default.text
        assert len(default.json()["value"]) == 100
        assert default.json()["@odata.nextLink"].startswith(f"{env.url}/v1.0/users?")
        largest = http.get("/users", params={"$top": "999"})
        assert largest.status_code == 200, largest.text
        assert len(largest.json()["value"]) == 999
        assert largest.json()["@odata.nextLink"].startswith(f"{env.url}/v1.0/users?")
        for top in ("0", "1000"):
            refused = http.get("/users", params={"$top": top})
            assert refused.status_code == 400, (top, refused.text)
            assert refused.json()["error"]["code"], refused.text


# ---- 3. the JavaScript client: BatchRequestContent and PageIterator ----


@needs_node
@pytest.mark.usefixtures("node_packages")
def test_javascript_batch_reads_presences_and_reads_in_bulk(env: Env) -> None:
    """The JS BatchRequestContent sends two presence reads and a getPresencesByUserId; BatchResponseContent
    gives each answer as a Response with status 200 and the presence in its JSON."""
    adele, megan = env.demo.user("adele"), env.demo.user("megan")
    output = run_node(
        env,
        "batch",
        env.app_token("Presence.Read.All"),
        FIRST_USER=adele["id"],
        SECOND_USER=megan["userPrincipalName"],
        BULK_IDS=f"{adele['id']},{megan['id']}",
    )
    # 3.0.7 keeps the path after the host of the step's URL (the script gives it without /v1.0).
    assert output["sent"] == {
        "first": f"/users/{adele['id']}/presence",
        "second": f"/users/{megan['userPrincipalName']}/presence",
        "bulk": "/communications/getPresencesByUserId",
    }
    answers = output["answers"]
    assert {key: answer["status"] for key, answer in answers.items()} == {"first": 200, "second": 200, "bulk": 200}
    assert answers["first"]["body"]["id"] == adele["id"]
    assert answers["first"]["body"]["availability"] == "Available"
    assert answers["second"]["body"]["id"] == megan["id"]
    assert answers["second"]["body"]["availability"] == "DoNotDisturb"
    assert sorted(p["id"] for p in answers["bulk"]["body"]["value"]) == sorted([adele["id"], megan["id"]])


@needs_node
@pytest.mark.usefixtures("node_packages")
def test_javascript_page_iterator_sees_every_user_exactly_once(env: Env, everyone: frozenset[str]) -> None:
    """The JS PageIterator from GET /users?$top=100 follows every @odata.nextLink and sees each user once."""
    output = run_node(env, "users", env.app_token("User.Read.All"))
    assert output["firstPage"] == 100
    assert output["complete"] is True
    ids: list[str] = output["ids"]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} users were seen twice"
    assert set(ids) == everyone, (len(everyone - set(ids)), len(set(ids) - everyone))


# ---- 4. msgraph-sdk: profile photos ----


async def test_graph_sdk_puts_a_png_as_my_photo_and_reads_it_back(env: Env) -> None:
    """PUT /me/photo/$value (User.ReadWrite) takes a PNG; GET /me/photo/$value gives the same bytes back and
    GET /me/photo its width and height."""
    client = env.graph(env.user_token("megan", "User.ReadWrite"))
    picture = png(48, 32)
    await client.me.photo.content.put(picture)
    assert await client.me.photo.content.get() == picture
    metadata = await client.me.photo.get()
    assert metadata is not None
    assert (metadata.width, metadata.height) == (48, 32)


async def test_graph_sdk_app_puts_a_jpeg_as_a_users_photo_and_is_refused_other_bytes(env: Env) -> None:
    """An app with User.ReadWrite.All puts a JPEG on /users/{id}/photo/$value and reads it and its size back;
    bytes that are neither JPEG nor PNG are a 400 and leave the photo as it was."""
    pradeep = env.demo.user("pradeep")
    client = env.graph(env.app_token("User.ReadWrite.All"))
    photo = client.users.by_user_id(pradeep["id"]).photo
    picture = jpeg(40, 24)
    await photo.content.put(picture)
    assert await photo.content.get() == picture
    metadata = await photo.get()
    assert metadata is not None
    assert (metadata.width, metadata.height) == (40, 24)

    with pytest.raises(APIError) as refused:
        await photo.content.put(b"this is not a picture")
    assert refused.value.response_status_code == 400
    assert await photo.content.get() == picture


def test_the_generated_pictures_are_what_they_claim() -> None:
    """The PNG and JPEG the photo tests upload start as those formats do and name their size."""
    picture = png(48, 32)
    assert picture.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", picture[16:24]) == (48, 32)
    photo = jpeg(40, 24)
    assert photo.startswith(b"\xff\xd8\xff")
    assert photo.endswith(b"\xff\xd9")
    start = photo.index(b"\xff\xc0")
    assert struct.unpack(">HH", photo[start + 5 : start + 9]) == (24, 40)
