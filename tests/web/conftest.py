"""Fixtures of the sign-in page tests: the demo directory with its apps, and a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from presenced.bootstrap import Runtime
from tests.oauth.identity_support import World, client_for, seed_world


@pytest.fixture
async def world(runtime: Runtime) -> World:
    return await seed_world(runtime)


@pytest.fixture
async def browser(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own address, keeping its cookies across requests."""
    async with client_for(runtime) as http:
        yield http
