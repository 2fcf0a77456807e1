"""The exceptions presenced raises, each with its Graph wire code and HTTP status.

Raised anywhere below the entry points and translated to the Graph error body
(docs/graph-api.md, "Errors") only at the edge.
"""

from __future__ import annotations


class PresencedError(Exception):
    """Base of every error a client may see."""

    status: int = 500
    code: str = "InternalServerError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(PresencedError):
    """Malformed or invalid input; the message names the field."""

    status = 400
    code = "BadRequest"


class InvalidAuthenticationToken(PresencedError):
    """Missing, malformed, expired or otherwise unacceptable bearer token."""

    status = 401
    code = "InvalidAuthenticationToken"


class Forbidden(PresencedError):
    """A valid token that lacks the permission; the message names what would allow it."""

    status = 403
    code = "Forbidden"


class ResourceNotFound(PresencedError):
    status = 404
    code = "ResourceNotFound"


class UserNotFound(ResourceNotFound):
    """The user a write names does not exist (in the caller's tenant)."""


class MethodNotAllowed(PresencedError):
    status = 405
    code = "MethodNotAllowed"


class Conflict(PresencedError):
    status = 409
    code = "Conflict"


class UnsupportedMediaType(PresencedError):
    status = 415
    code = "UnsupportedMediaType"


class TooManyRequests(PresencedError):
    status = 429
    code = "TooManyRequests"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigurationError(Exception):
    """Settings or environment that make the service unable to start (CLI: one line, exit 2)."""
