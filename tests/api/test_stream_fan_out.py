"""How a change reaches the live streams watching its user: encoded once, the same bytes written to every
connection; a client that falls too far behind is cut off alone, told why (``event: overflow``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from presenced.api.routes.stream import END_OF_BODY, MAX_BEHIND, OVERFLOW, QUEUE_SIZE, LiveStream, StreamResponse
from presenced.api.wire import PresenceEncoder
from presenced.domain.model import OFFLINE
from presenced.domain.sequence import PresenceState
from presenced.services.entities import LoggedChange
from presenced.services.feed import ChangeFeed

TENANT = "00000000-0000-0000-0000-000000000001"
ANNA = "00000000-0000-0000-0000-0000000000a1"
CONTEXT = "http://127.0.0.1:8000/v1.0/$metadata#communications/presences/$entity"


class ChangeLog:
    def __init__(self) -> None:
        self.rows: list[LoggedChange] = []

    def commit(self, change_id: int) -> None:
        state = PresenceState(OFFLINE, change_id, datetime(2026, 1, 1, tzinfo=UTC), None)
        self.rows.append(LoggedChange(change_id, TENANT, ANNA, state))

    async def latest_change_id(self) -> int:
        return max((r.id for r in self.rows), default=0)

    async def changes_after(self, after_id: int, limit: int) -> list[LoggedChange]:
        return [r for r in self.rows if r.id > after_id][:limit]

    async def changes_since(
        self, tenant_id: str, user_ids: Sequence[str], sequence: int, limit: int
    ) -> list[LoggedChange]:
        return []


class Connection:
    """A transport that records what is written to it, with as many bytes still unsent as the test says."""

    def __init__(self, unsent: int = 0) -> None:
        self.unsent = unsent
        self.written: list[bytes] = []
        self.closed = False
        self.aborted = False

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed


def _stream(feed: ChangeFeed, encoder: PresenceEncoder) -> LiveStream:
    return LiveStream(feed, TENANT, (ANNA,), None, None, None, encoder, CONTEXT)


async def _live(feed: ChangeFeed, stream: LiveStream, connection: Connection) -> None:
    await feed.attach(stream)
    stream.take(connection)  # type: ignore[arg-type]


async def test_a_change_is_encoded_once_and_the_same_bytes_go_to_every_stream() -> None:
    log, encoder = ChangeLog(), PresenceEncoder()
    feed = ChangeFeed(log, interval=3600)
    connections = [Connection() for _ in range(3)]
    streams = [_stream(feed, encoder) for _ in connections]
    for stream, connection in zip(streams, connections, strict=True):
        await _live(feed, stream, connection)
    log.commit(1)
    await feed.poll()
    first = connections[0].written[-1]
    assert b"event: presence\nid: 00000000000000000001\ndata: " in first
    assert all(connection.written[-1] is first for connection in connections)
    for stream in streams:
        feed.detach(stream)


async def test_a_stream_that_falls_behind_is_cut_off_alone() -> None:
    log, encoder = ChangeLog(), PresenceEncoder()
    feed = ChangeFeed(log, interval=3600)
    slow, fast = Connection(unsent=MAX_BEHIND + 1), Connection()
    behind, keeping_up = _stream(feed, encoder), _stream(feed, encoder)
    await _live(feed, behind, slow)
    await _live(feed, keeping_up, fast)
    log.commit(1)
    await feed.poll()
    assert slow.written == [b"%x\r\n" % len(OVERFLOW) + OVERFLOW + b"\r\n" + END_OF_BODY]
    assert slow.closed
    assert feed.listening == 1
    log.commit(2)
    await feed.poll()
    assert len(slow.written) == 1
    assert len(fast.written) == 2
    assert not fast.closed
    feed.detach(keeping_up)


async def test_a_relayed_stream_that_falls_behind_is_cut_off() -> None:
    """Where the server cannot hand the connection over, what waits for a stream is bounded the same way."""
    log, encoder = ChangeLog(), PresenceEncoder()
    feed = ChangeFeed(log, interval=3600)
    stream = _stream(feed, encoder)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client stays
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if len(sent) == 2:  # while the first events are on their way, more changes come than may wait
            for n in range(1, QUEUE_SIZE + 100):
                log.commit(n)
            await feed.poll()

    scope = {"type": "http", "method": "GET", "path": "/_stream/presences", "headers": [], "query_string": b""}
    await StreamResponse(Request(scope), stream, [], None, log)(scope, receive, send)
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) == 1 + QUEUE_SIZE + 2
    assert bodies[-2:] == [OVERFLOW, b""]
    assert sent[-1]["more_body"] is False
    assert feed.listening == 0
