"""The exceptions presenced raises, each with its Graph wire code and HTTP status.

Raised anywhere below the entry points and translated to the Graph error body
(docs/graph-api.md, "Errors") only at the edge.
"""

from __future__ import annotations


class PresencedError(Exception):
    """The root of every exception presenced raises: a message, the HTTP status and the wire code
    (Graph's error code, or OAuth's ``error``) a client is answered with. A subclass fixes the
    status and code; an instance may set its own when it is made, never afterwards."""

    status: int = 500
    code: str = "InternalServerError"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


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


class ImageNotFound(ResourceNotFound):
    """A user without a profile photo, as Graph answers it."""

    code = "ImageNotFound"


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


class TryLater(PresencedError):
    """A refusal that passes: ``Retry-After`` says when to try again (seconds), as Graph does and its clients
    obey."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyRequests(TryLater):
    status = 429
    code = "TooManyRequests"


class ServiceUnavailable(TryLater):
    """The service cannot answer now: its database is unreachable, or it is at its connection limit."""

    status = 503
    code = "ServiceUnavailable"


class RequestTimeout(PresencedError):
    """The client took too long to send its request's headers or body."""

    status = 408
    code = "RequestTimeout"


class RequestHeaderFieldsTooLarge(PresencedError):
    """A header, or the headers together, exceed the limits (docs/configuration.md, "Request limits")."""

    status = 431
    code = "RequestHeaderFieldsTooLarge"


class ConfigurationError(PresencedError):
    """Settings or environment that make the service unable to start (CLI: one line, exit 2)."""
