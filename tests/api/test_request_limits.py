"""The server's request limits, on a real server in this process (the same protocol ``presenced serve`` uses)
and real sockets: oversized and too many headers, clients too slow with their headers or body, idle
connections by the thousand, and the connection limit. Every refusal is Graph's error body."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import uvicorn

from presenced.app import create_app
from presenced.bootstrap import Runtime
from presenced.cli.main import server_config
from presenced.config import SPARE_FILES, Settings, connection_limit, raise_file_limit
from presenced.services.demo import DemoTenant
from tests.support import Tokens, bearer

#: Short timeouts, so that the slow-client tests take seconds.
TIMEOUT = 2


async def _serve(runtime: Runtime, **limits: Any) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    settings = replace(runtime.settings, header_timeout=TIMEOUT, body_timeout=TIMEOUT, **limits)
    server = uvicorn.Server(server_config(create_app(runtime), settings=settings))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def address(runtime: Runtime, demo: DemoTenant) -> AsyncIterator[str]:
    async for served in _serve(runtime):
        yield served


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and JSON body of one HTTP/1.1 response."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, json.loads(body)


async def _open(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = address.split(":")
    return await asyncio.open_connection(host, int(port))


def _graph_error(body: dict[str, Any], code: str) -> str:
    assert body["error"]["code"] == code
    assert body["error"]["innerError"]["request-id"]
    return str(body["error"]["message"])


async def test_a_16_mb_header_is_refused_with_431(address: str, tokens: Tokens, demo: DemoTenant) -> None:
    """The server answers 431 while the client is still sending, without reading the 16 MB."""
    reader, writer = await _open(address)
    writer.write(b"GET /v1.0/me/presence HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")

    async def send_forever() -> None:
        chunk = b"a" * 65536
        for _ in range(256):  # 16 MB
            writer.write(chunk)
            await writer.drain()

    sending = asyncio.create_task(send_forever())
    status, headers, body = await _answer(reader)
    assert status == 431
    assert headers["connection"] == "close"
    assert "bytes" in _graph_error(body, "RequestHeaderFieldsTooLarge")
    sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)
    writer.close()


async def test_five_thousand_headers_are_refused_with_431(address: str) -> None:
    reader, writer = await _open(address)
    headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 80) for i in range(5000))
    writer.write(b"GET /v1.0/me/presence HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    status, _, body = await _answer(reader)
    assert status == 431
    assert "more than 100 headers" in _graph_error(body, "RequestHeaderFieldsTooLarge")
    writer.close()


async def test_a_header_under_the_limits_is_served(address: str, tokens: Tokens, demo: DemoTenant) -> None:
    """A token-sized header (8 KB) and 60 ordinary headers are served as usual."""
    extra = {f"X-Extra-{i}": "v" * 40 for i in range(60)}
    headers = {**bearer(tokens.user(demo.users[0].id, "Presence.Read")), "X-Large": "x" * 8000, **extra}
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        response = await http.get("/v1.0/me/presence", headers=headers)
    assert response.status_code == 200, response.text


async def test_a_client_sending_a_byte_a_second_gets_408(address: str) -> None:
    reader, writer = await _open(address)
    request = b"GET /v1.0/me/presence HTTP/1.1\r\nHost: x\r\n"

    async def trickle() -> None:
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1)

    sending = asyncio.create_task(trickle())
    status, _, body = await _answer(reader)
    assert status == 408
    assert "headers did not arrive" in _graph_error(body, "RequestTimeout")
    sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)
    writer.close()


async def test_a_body_that_stops_arriving_gets_408(address: str, tokens: Tokens, demo: DemoTenant) -> None:
    reader, writer = await _open(address)
    token = tokens.app("Presence.ReadWrite.All")
    writer.write(
        f"POST /v1.0/users/{demo.users[0].id}/presence/setPresence HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        '{"sessionId": '.encode()
    )
    status, _, body = await _answer(reader)
    assert status == 408
    assert "body did not arrive" in _graph_error(body, "RequestTimeout")
    writer.close()


async def test_a_thousand_idle_connections_do_not_hold_up_a_client(
    address: str, tokens: Tokens, demo: DemoTenant
) -> None:
    """While 1,000 connections sit idle, another client is served; the idle ones are closed after the header
    timeout, without an answer (they asked nothing)."""
    idle = [await _open(address) for _ in range(1000)]
    headers = bearer(tokens.app("Presence.Read.All"))
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        for user in demo.users:
            response = await http.get(f"/v1.0/users/{user.id}/presence", headers=headers)
            assert response.status_code == 200, response.text
    closed = await asyncio.gather(*(asyncio.wait_for(reader.read(), TIMEOUT * 5) for reader, _ in idle))
    assert set(closed) == {b""}
    for _, writer in idle:
        writer.close()


async def test_beyond_the_connection_limit_a_request_gets_503_with_retry_after(
    runtime: Runtime, demo: DemoTenant, tokens: Tokens
) -> None:
    async for address in _serve(runtime, max_connections=16):
        held = [await _open(address) for _ in range(16)]
        reader, writer = await _open(address)
        writer.write(b"GET /v1.0/me/presence HTTP/1.1\r\nHost: x\r\nclient-request-id: mine\r\n\r\n")
        status, headers, body = await _answer(reader)
        assert status == 503
        assert headers["retry-after"] == "1"
        assert headers["client-request-id"] == "mine"
        assert "limit of 16 connections" in _graph_error(body, "ServiceUnavailable")
        for _, w in (*held, (reader, writer)):
            w.close()
        # Once connections are free again, requests are served.
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            response = await http.get(
                "/v1.0/me/presence", headers=bearer(tokens.user(demo.users[0].id, "Presence.Read"))
            )
        assert response.status_code == 200


async def test_live_streams_count_towards_the_connection_limit(
    runtime: Runtime, demo: DemoTenant, tokens: Tokens
) -> None:
    """A live stream's connection has left uvicorn (handed to the stream), and is still one of the process's."""
    async for address in _serve(runtime, max_connections=16):
        token = tokens.app("Presence.Read.All")
        streams = []
        for _ in range(16):
            reader, writer = await _open(address)
            writer.write(
                f"GET /_stream/presences?ids={demo.users[0].id} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            received = b""
            while b"event: presence" not in received:
                chunk = await asyncio.wait_for(reader.read(65536), 30)
                assert chunk, received
                received += chunk
            streams.append(writer)
        reader, writer = await _open(address)
        writer.write(b"GET /v1.0/me/presence HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = await _answer(reader)
        assert status == 503
        assert "limit of 16 connections" in _graph_error(body, "ServiceUnavailable")
        for w in (*streams, writer):
            w.close()
        for _ in range(500):  # the server notices each client going on its own schedule
            if runtime.feed.listening == 0:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            response = await http.get(
                "/v1.0/me/presence", headers=bearer(tokens.user(demo.users[0].id, "Presence.Read"))
            )
        assert response.status_code == 200


def test_the_connection_limit_leaves_room_in_the_open_files() -> None:
    """Past what the limit of open files allows, a process takes fewer connections, so that one over the limit is
    still accepted and answered 503."""
    settings = replace(Settings(), max_connections=16_384)
    assert connection_limit(settings, 100_000) == 16_384
    assert connection_limit(settings, 4_096) == 4_096 - SPARE_FILES


def test_serve_raises_the_soft_limit_of_open_files_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 64:
        pytest.skip(f"the hard limit of open files is {hard}")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        assert raise_file_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
