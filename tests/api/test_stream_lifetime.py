"""A live stream lives as long as what opened it: a token's stream ends when the token expires, a portal
session's when it is signed out (in this process at once, in another at the next check) or expires; each with a
last ``event: closing`` saying why. Under presenced's own HTTP server a stream holds no request task and no
uvicorn connection state once it is live; under another server it is relayed, and ends the same way.
(A real server in this process, real sockets.)"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from presenced.app import create_app
from presenced.bootstrap import Runtime
from presenced.cli.main import server_config
from presenced.portal_session import SESSION_COOKIE
from presenced.services.credentials import digest, new_opaque
from presenced.services.demo import DemoTenant
from tests.oauth.identity_support import client_for, seed_world
from tests.support import APP_ID, Tokens, bearer
from tests.web.portal_support import csrf_of, portal_sign_in

#: Generous bounds on waiting for what must come (nothing here is timed).
WAIT = 30.0


@dataclass
class Served:
    port: int
    server: uvicorn.Server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def _serve(runtime: Runtime, presenced_server: bool) -> AsyncIterator[Served]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    app = create_app(runtime)
    config = (
        server_config(app, settings=runtime.settings)
        if presenced_server
        else uvicorn.Config(app, log_level="warning", lifespan="off")
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await _eventually(lambda: server.started)
    try:
        yield Served(sock.getsockname()[1], server)
    finally:
        server.should_exit = True
        await task


@pytest.fixture(params=["presenced", "another"], ids=["handed", "relayed"])
async def served(runtime: Runtime, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    """presenced's HTTP server (the stream takes its connection over), or plain uvicorn (the stream is relayed)."""
    async for one in _serve(runtime, request.param == "presenced"):
        yield one


@pytest.fixture
async def presenced_server(runtime: Runtime) -> AsyncIterator[Served]:
    async for one in _serve(runtime, True):
        yield one


class Stream:
    """A raw connection reading one stream: its body as it comes (chunk framing left in)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = b""

    @classmethod
    async def open(cls, served: Served, user_id: str, headers: dict[str, str]) -> Stream:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(f"GET /_stream/presences?ids={user_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}\r\n".encode())
        await writer.drain()
        stream = cls(reader, writer)
        await stream.until(b"event: presence")
        assert stream.received.startswith(b"HTTP/1.1 200"), stream.received[:300]
        return stream

    async def until(self, wanted: bytes) -> None:
        async with asyncio.timeout(WAIT):
            while wanted not in self.received:
                chunk = await self.reader.read(65536)
                assert chunk, f"the connection ended before {wanted!r}: {self.received[-500:]!r}"
                self.received += chunk

    async def to_the_end(self) -> dict[str, Any]:
        """Read until the body's last chunk; the data of the last event, which must be ``closing``."""
        await self.until(b"\r\n0\r\n\r\n")
        closing = self.received.rsplit(b"event: closing\n", 1)
        assert len(closing) == 2, self.received[-500:]
        data = closing[1].split(b"data: ", 1)[1].split(b"\n", 1)[0]
        found: dict[str, Any] = json.loads(data)
        return found

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def _eventually(condition: Callable[[], object]) -> None:
    """Wait (bounded) until ``condition()`` holds: the server gets there on its own schedule."""
    for _ in range(int(WAIT / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still not so after {WAIT:.0f} s")


async def _gone(runtime: Runtime) -> None:
    """Wait until no stream listens any more."""
    await _eventually(lambda: runtime.feed.listening == 0)


async def test_a_token_stream_ends_when_the_token_expires(
    runtime: Runtime, demo: DemoTenant, tokens: Tokens, served: Served
) -> None:
    token = tokens.app("Presence.Read.All", lifetime=timedelta(seconds=2))
    stream = await Stream.open(served, demo.users[0].id, bearer(token))
    closing = await stream.to_the_end()
    assert closing["reason"] == "tokenExpired"
    assert "new token" in closing["message"]
    await stream.close()
    await _gone(runtime)


async def test_a_live_stream_keeps_no_request_state_and_gets_each_change(
    runtime: Runtime, demo: DemoTenant, tokens: Tokens, presenced_server: Served
) -> None:
    """Under presenced's server a stream that is live has left uvicorn: no connection of its, no task."""
    user_id = demo.users[0].id
    stream = await Stream.open(presenced_server, user_id, bearer(tokens.app("Presence.Read.All")))
    state = presenced_server.server.server_state
    await _eventually(lambda: not state.tasks)  # the request's task ends right after handing the connection over
    assert not state.connections
    assert runtime.feed.listening == 1
    async with httpx.AsyncClient(base_url=presenced_server.url) as http:
        body = {"sessionId": APP_ID, "availability": "Busy", "activity": "InACall"}
        writer = tokens.app("Presence.ReadWrite.All")
        answer = await http.post(f"/v1.0/users/{user_id}/presence/setPresence", json=body, headers=bearer(writer))
        assert answer.status_code == 200, answer.text
    await stream.until(b'"activity":"InACall"')
    await stream.close()
    await _gone(runtime)


async def test_a_portal_stream_ends_when_the_session_signs_out(runtime: Runtime, served: Served) -> None:
    world = await seed_world(runtime)
    async with client_for(runtime) as browser:
        await portal_sign_in(browser, world, "adele", "/people")
        cookie = browser.cookies[SESSION_COOKIE]
        stream = await Stream.open(served, world.user_id("megan"), {"Cookie": f"{SESSION_COOKIE}={cookie}"})
        page = await browser.get("/people")
        assert (await browser.post("/signout", data={"csrf": csrf_of(page)})).status_code == 200
    closing = await stream.to_the_end()
    assert closing["reason"] == "signedOut"
    await stream.close()
    await _gone(runtime)


async def test_a_portal_stream_ends_when_another_process_signs_the_session_out(
    runtime: Runtime, presenced_server: Served
) -> None:
    """The session's row goes as another process's sign-out removes it: the stream ends at the next check."""
    world = await seed_world(runtime)
    cookie, now = new_opaque(), datetime.now(UTC)
    await runtime.identity_store.create_session(digest(cookie), world.user_id("adele"), now, now + timedelta(hours=1))
    stream = await Stream.open(presenced_server, world.user_id("megan"), {"Cookie": f"{SESSION_COOKIE}={cookie}"})
    await runtime.identity_store.delete_session(digest(cookie))
    closing = await stream.to_the_end()
    assert closing["reason"] == "signedOut"
    await stream.close()
    await _gone(runtime)


async def test_a_portal_stream_ends_when_the_session_expires(runtime: Runtime, served: Served) -> None:
    world = await seed_world(runtime)
    cookie, now = new_opaque(), datetime.now(UTC)
    await runtime.identity_store.create_session(digest(cookie), world.user_id("adele"), now, now + timedelta(seconds=2))
    stream = await Stream.open(served, world.user_id("megan"), {"Cookie": f"{SESSION_COOKIE}={cookie}"})
    closing = await stream.to_the_end()
    assert closing["reason"] == "sessionExpired"
    assert "sign in again" in closing["message"]
    await stream.close()
    await _gone(runtime)
