"""Fixtures of the change-notification tests: a real webhook receiver and a runtime allowed to call it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from presenced.app import create_app
from presenced.bootstrap import Runtime, build
from tests.support import BASE_URL, T0, FixedClock, make_settings, truncate_postgres


class Receiver:
    """A webhook endpoint: echoes validation tokens, records notifications, can be told to fail."""

    def __init__(self) -> None:
        #: Every notification collection posted, whole (``validationTokens`` included).
        self.collections: list[dict[str, Any]] = []
        self.validations = 0
        self.failures_left = 0
        self.echo_validation = True
        self.url = ""

    async def handle(self, request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            self.validations += 1
            return PlainTextResponse(token if self.echo_validation else "nope")
        if self.failures_left > 0:
            self.failures_left -= 1
            return Response(status_code=503)
        self.collections.append(json.loads(await request.body()))
        return Response(status_code=202)

    @property
    def received(self) -> list[dict[str, Any]]:
        """Every notification received, in order."""
        return [item for body in self.collections for item in body["value"]]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = Starlette(routes=[Route("/hook", hook.handle, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    hook.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    try:
        yield hook
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def hooked(tmp_path: Path, key_folder: Path, database_url: str | None) -> AsyncIterator[Runtime]:
    """A runtime whose webhooks may reach loopback (as `serve --demo` allows)."""
    settings = dataclasses.replace(make_settings(tmp_path, key_folder, database_url), allow_loopback_webhooks=True)
    if database_url is not None:
        await truncate_postgres(database_url)
    rt = await build(settings, clock=FixedClock(T0))
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def api(hooked: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(hooked), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http
