"""The route table: each Graph endpoint once, with what OpenAPI and the permissions explorer need to describe it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from starlette.requests import Request
from starlette.responses import Response

from presenced.auth.operations import Access, Operation, Target

Handler = Callable[[Request], Awaitable[Response]]

#: Both Graph versions serve every endpoint, with the same behaviour (docs/graph-api.md, "Paths").
VERSIONS = ("v1.0", "beta")


class Surface(StrEnum):
    """Whose an endpoint is: Microsoft Graph's, or this server's own (marked so in ``/openapi.json``)."""

    #: An endpoint of Microsoft Graph, served under each of ``VERSIONS``.
    GRAPH = "graph"
    #: An extension of presenced's, not in Microsoft Graph: a path under ``/_`` (``/_ext/``, ``/_stream/``).
    EXTENSION = "extension"
    #: A control of the emulator (``/_emulator/``): not in Microsoft Graph either.
    EMULATOR = "emulator"


def surface_of(path: str) -> Surface:
    """The surface of a path below the version prefix (or of an unversioned path)."""
    if path.startswith("/_emulator/"):
        return Surface.EMULATOR
    return Surface.EXTENSION if path.startswith("/_") else Surface.GRAPH


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    #: Path below the version prefix, in Starlette's syntax (``/users/{id}/presence``).
    path: str
    handler: Handler
    operation_id: str
    summary: str
    #: What the handler asks the policy for: any one of these accesses lets the call through (which one
    #: applies depends on the target, e.g. the caller's own presence or someone else's). The permissions
    #: that allow the endpoint are the catalog's permissions allowing one of them; empty means no
    #: permission is checked (the emulator's controls).
    access: tuple[Access, ...]
    request_body: type | None = None
    response_body: type | None = None
    status: int = 200
    query: tuple[str, ...] = field(default=())
    #: Served under each of ``VERSIONS``; False for the unversioned extension and emulator endpoints.
    versioned: bool = True
    #: What the permissions alone do not say (shown after them in the OpenAPI description).
    note: str = ""
    #: Media types of a body that is not JSON (a photo's bytes), taken or answered as raw bytes.
    request_media: tuple[str, ...] = ()
    response_media: tuple[str, ...] = ()
    #: Properties ``$select`` may name beyond Graph's: extensions of presenced's (``lastSeenDateTime``).
    select_extensions: tuple[str, ...] = ()

    def paths(self) -> list[str]:
        return [f"/{v}{self.path}" for v in VERSIONS] if self.versioned else [self.path]

    @property
    def surface(self) -> Surface:
        """Microsoft Graph's, an extension of presenced's, or an emulator control (by its path)."""
        return surface_of(self.path)

    @property
    def delegated_only(self) -> bool:
        """A ``/me`` path names the signed-in user: an app-only token there is a bad request.

        (docs/graph-api.md, "Paths".)
        """
        return _names_me(self.path)


def on_user(path: str, operation: Operation) -> tuple[Access, ...]:
    """The accesses of ``operation`` on the user a path names: on ``/me`` the caller's own; on a path with the
    user's id, the caller's own or another user's (whichever the id turns out to be)."""
    own = ((operation, Target.OWN),)
    return own if _names_me(path) else (*own, (operation, Target.OTHER))


def _names_me(path: str) -> bool:
    return path == "/me" or path.startswith("/me/")
