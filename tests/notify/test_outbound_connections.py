"""Webhook POSTs on kept-alive connections (``notify.outbound.Connections``): shared by the calls to one origin,
never more than allowed at once, never shared across host names, dropped when the receiver closes them or they
stay idle, and a call that meets a connection the receiver closed meanwhile goes out again on a new one. Answers
framed every way HTTP/1.1 allows are read. (Real sockets, a small keep-alive server.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from presenced.notify.outbound import Connections, OutboundError, OutboundPolicy, Target, post, resolve_target

LOOPBACK = OutboundPolicy(allow_loopback=True)
ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"

#: What the server answers to the n-th request (from 1) of a connection; None: close without answering.
Answer = Callable[[int], Awaitable[bytes | None]]


async def accepted(_: int) -> bytes | None:
    return ACCEPTED


@dataclass
class KeepAliveServer:
    """Reads requests one after the other on each connection until the client closes it."""

    answer: Answer = accepted
    port: int = 0
    connections: int = 0
    requests: list[tuple[int, str]] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0
    closed_by_client: int = 0
    #: Close each connection after its first answer (an answer whose body ends with the connection).
    close_after_answer: bool = False
    _server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection, n = self.connections, 0
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client += 1
                    return
                lines = head.decode("latin-1").split("\r\n")
                length = next((int(h.split(":")[1]) for h in lines if h.lower().startswith("content-length:")), 0)
                await reader.readexactly(length)
                n += 1
                host = next(h.split(":", 1)[1].strip() for h in lines if h.lower().startswith("host:"))
                self.requests.append((connection, host))
                answer = await self.answer(n)
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:
                    return
        finally:
            self.open_now -= 1
            writer.close()

    async def target(self, host: str = "127.0.0.1", path: str = "/hook") -> Target:
        async def resolver(name: str, port: int) -> list[str]:
            return ["127.0.0.1"]

        return await resolve_target(f"http://{host}:{self.port}{path}", LOOPBACK, resolver)


@pytest.fixture
async def server() -> AsyncIterator[KeepAliveServer]:
    hook = KeepAliveServer()
    hook._server = await asyncio.start_server(hook.serve, "127.0.0.1", 0)
    hook.port = hook._server.sockets[0].getsockname()[1]
    yield hook
    hook._server.close()


async def _eventually(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("still not so after 5 s")


async def test_calls_to_one_receiver_share_a_kept_alive_connection(server: KeepAliveServer) -> None:
    pool = Connections()
    for n in range(20):
        target = await server.target(path=f"/hook/{n}")  # each its own URL, one receiver
        assert (await post(target, b"{}", {}, 5.0, LOOPBACK, connections=pool)).status == 202
    assert server.connections == 1
    assert len(server.requests) == 20
    await pool.close()


async def test_no_more_connections_to_one_origin_than_allowed(server: KeepAliveServer) -> None:
    async def slowly(_: int) -> bytes | None:
        await asyncio.sleep(0.05)
        return ACCEPTED

    server.answer = slowly
    pool = Connections(per_origin=3)
    target = await server.target()
    answers = await asyncio.gather(*(post(target, b"{}", {}, 10.0, LOOPBACK, connections=pool) for _ in range(12)))
    assert {a.status for a in answers} == {202}
    assert server.most_open == 3
    assert server.connections == 3
    await pool.close()


async def test_connections_are_kept_per_host_name(server: KeepAliveServer) -> None:
    """Two names of one address (one port) never share a connection: Host, SNI and the certificate differ."""
    pool = Connections()
    for host in ("hooks.example.test", "other.example.test", "hooks.example.test"):
        target = await server.target(host=host)
        assert (await post(target, b"{}", {}, 5.0, LOOPBACK, connections=pool)).status == 202
    assert server.requests == [
        (1, f"hooks.example.test:{server.port}"),
        (2, f"other.example.test:{server.port}"),
        (1, f"hooks.example.test:{server.port}"),
    ]
    await pool.close()


async def test_a_connection_the_receiver_closed_while_idle_is_not_used(server: KeepAliveServer) -> None:
    async def then_close(n: int) -> bytes | None:
        return ACCEPTED if n == 1 else None

    server.answer = then_close
    pool = Connections()
    target = await server.target()
    assert (await post(target, b"{}", {}, 5.0, LOOPBACK, connections=pool)).status == 202
    # The second request on the first connection is met with its closing: the call goes out again on a new one.
    assert (await post(target, b"{}", {}, 5.0, LOOPBACK, connections=pool)).status == 202
    assert [c for c, _ in server.requests] == [1, 1, 2]
    await pool.close()


async def test_a_new_connection_closed_without_an_answer_fails_the_call(server: KeepAliveServer) -> None:
    async def never(_: int) -> bytes | None:
        return None

    server.answer = never
    with pytest.raises(OutboundError, match="closed before any answer"):
        await post(await server.target(), b"{}", {}, 5.0, LOOPBACK, connections=Connections())
    assert len(server.requests) == 1


async def test_an_idle_connection_is_closed_after_a_while(server: KeepAliveServer) -> None:
    pool = Connections(idle=0.1)
    assert (await post(await server.target(), b"{}", {}, 5.0, LOOPBACK, connections=pool)).status == 202
    await _eventually(lambda: server.closed_by_client == 1)


async def test_without_a_pool_each_call_has_a_connection_of_its_own(server: KeepAliveServer) -> None:
    target = await server.target()
    for _ in range(3):
        assert (await post(target, b"{}", {}, 5.0, LOOPBACK)).status == 202
    assert server.connections == 3


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n", b"hello"),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello", b"hello"),
    ],
    ids=["content-length", "chunked", "interim-100", "until-closed"],
)
async def test_every_framing_of_an_answer_is_read(server: KeepAliveServer, answer: bytes, body: bytes) -> None:
    """Twice on one pool: an answer that keeps the connection leaves it for the next call, one that ends with it
    (no length) is read to its end and the next call opens another."""

    async def framed(_: int) -> bytes | None:
        return answer

    server.answer = framed
    server.close_after_answer = b"Connection: close" in answer
    pool = Connections()
    target = await server.target()
    for _ in range(2):
        response = await post(target, b"{}", {}, 5.0, LOOPBACK, connections=pool)
        assert (response.status, response.body_prefix, response.truncated) == (200, body, False)
    assert server.connections == (2 if server.close_after_answer else 1)
    await pool.close()
