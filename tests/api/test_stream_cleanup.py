"""The live stream leaves nothing behind: clients that go away in the middle of a wait free their listener
and every task the stream started (a real server in this process, real sockets)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn

from presenced.app import create_app
from presenced.bootstrap import Runtime
from presenced.services.demo import DemoTenant
from tests.support import Tokens

STREAMS = 200


@pytest.fixture
async def port(runtime: Runtime) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


def _waiting_on_the_queue() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if "Queue.get" in repr(t.get_coro()) or "Event.wait" in repr(t.get_coro())]


async def _waits_that_stay() -> list[asyncio.Task[object]]:
    """The waits still pending a while after they were seen: a leaked one stays, while the process's own
    passing waits (the feed's poll, a round of a loop) are each a new task that ends within its round."""
    seen = _waiting_on_the_queue()
    await asyncio.sleep(1.5)
    return [t for t in seen if not t.done()]


async def _open_and_abandon(port: int, token: str, user_id: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"GET /_stream/presences?ids={user_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    writer.write(head.encode())
    await writer.drain()
    received = b""
    while b"event: presence" not in received:
        chunk = await reader.read(4096)
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    writer.close()
    await writer.wait_closed()


async def test_abandoned_streams_leave_no_listener_or_task(
    runtime: Runtime, demo: DemoTenant, tokens: Tokens, port: int
) -> None:
    token = tokens.app("Presence.Read.All")
    user_id = demo.users[0].id
    before = len(await _waits_that_stay())
    await asyncio.gather(*(_open_and_abandon(port, token, user_id) for _ in range(STREAMS)))
    # The server notices each disconnect on its own schedule: give it a moment, then count.
    for _ in range(100):
        if runtime.feed.listening == 0:
            break
        await asyncio.sleep(0.05)
    assert runtime.feed.listening == 0
    for _ in range(5):
        left = await _waits_that_stay()
        if len(left) <= before:
            break
    assert len(left) <= before, [repr(t.get_coro()) for t in left]
