"""The route table: each Graph endpoint once, with what OpenAPI needs to describe it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Awaitable[Response]]

#: Both Graph versions serve every endpoint, with the same behaviour (spec §A.1).
VERSIONS = ("v1.0", "beta")


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    #: Path below the version prefix, in Starlette's syntax (``/users/{id}/presence``).
    path: str
    handler: Handler
    operation_id: str
    summary: str
    permissions: str
    request_body: type | None = None
    response_body: type | None = None
    status: int = 200
    query: tuple[str, ...] = field(default=())
    #: Served under each of ``VERSIONS``; False for the unversioned emulator endpoints.
    versioned: bool = True

    def paths(self) -> list[str]:
        return [f"/{v}{self.path}" for v in VERSIONS] if self.versioned else [self.path]
