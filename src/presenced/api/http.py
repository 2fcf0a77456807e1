"""Graph's HTTP conventions: headers, the error body, bearer tokens, JSON bodies.

As docs/graph-api.md ("Errors", "Headers") states them.
"""

from __future__ import annotations

import base64
import binascii
import random
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from presenced.api import wire
from presenced.auth.principal import Principal
from presenced.clock import real_now
from presenced.errors import BadRequest, InvalidAuthenticationToken, PresencedError, TryLater, UnsupportedMediaType
from presenced.wiring import Services, services_of

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
JSON_TYPE_BYTES = JSON_TYPE.encode()
#: Request bodies larger than this are refused before they are read in full.
MAX_BODY = 1 << 20

T = TypeVar("T")


class PayloadTooLarge(PresencedError):
    status = 413
    code = "RequestEntityTooLarge"


_V4_MASK = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_V4_BITS = (0x4 << 76) | (0x2 << 62)


def new_request_id() -> str:
    """A random (version 4) GUID; cheaper than ``uuid.uuid4()`` on the hot path."""
    # An id, not a secret: no need for os.urandom. Version 4 and variant bits set.
    h = "%032x" % (random.getrandbits(128) & _V4_MASK | _V4_BITS)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def request_ids(request: Request) -> tuple[str, str]:
    """This request's id and the client's (echoed, else the same)."""
    request_id = new_request_id()
    client = request.headers.get("client-request-id")
    return request_id, (client[:128] if client else request_id)


def graph_headers(request: Request) -> dict[str, str]:
    request_id, client_request_id = request_ids(request)
    return {"request-id": request_id, "client-request-id": client_request_id, "OData-Version": "4.0"}


def json_response(request: Request, body: bytes, status: int = 200) -> Response:
    return Response(body, status, headers=graph_headers(request), media_type=JSON_TYPE)


def empty_response(request: Request, status: int = 200) -> Response:
    return Response(b"", status, headers=graph_headers(request))


def error_response(request: Request, error: PresencedError) -> Response:
    request_id, client_request_id = request_ids(request)
    headers, body = error_parts(error, request_id, client_request_id)
    return Response(body, error.status, headers=headers, media_type=JSON_TYPE)


def error_parts(error: PresencedError, request_id: str, client_request_id: str) -> tuple[dict[str, str], bytes]:
    """The headers (but the content type) and body of Graph's answer to ``error``."""
    headers = {"request-id": request_id, "client-request-id": client_request_id, "OData-Version": "4.0"}
    inner = wire.InnerError(
        date=real_now().strftime("%Y-%m-%dT%H:%M:%S"),
        request_id=request_id,
        client_request_id=client_request_id,
    )
    body = wire.ErrorResponse(error=wire.ErrorDetail(code=error.code, message=error.message, inner_error=inner))
    if isinstance(error, InvalidAuthenticationToken):
        headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
    if isinstance(error, TryLater):
        headers["Retry-After"] = str(error.retry_after)
    return headers, wire.encode(body)


#: Where the fast path leaves the caller it admitted, for the route that answers after it.
ADMITTED = "presenced.principal"
#: Where a route leaves the caller it admitted, for the request's log line (its tenant and app).
CALLER = "presenced.caller"
#: Where the fast path leaves the template of the route it answered (``/v1.0/me/presence``), for the log line.
ROUTE = "presenced.route"
#: The scope's extension (``scope["extensions"]``) by which presenced's HTTP server lets a response that has
#: begun (chunked) take its connection over: ``detach(owner)`` returns the transport, now calling
#: ``owner.connection_lost(exc)`` when the connection goes, and the application returns without finishing the
#: answer; None when it cannot (``serving.bounded_protocol``; the live stream uses it).
DETACH = "presenced.detach"


async def principal_of(request: Request) -> Principal:
    """The verified caller of a request, admitted by the throttle (once per request)."""
    known: Principal | None = request.scope.get(ADMITTED)
    if known is not None:
        return known
    principal = await admit(services_of(request), request.headers.get("authorization"))
    request.scope[CALLER] = principal
    return principal


async def admit(state: Services, authorization: str | None) -> Principal:
    """The caller of an ``Authorization`` header, once its token is verified and the throttle lets it in."""
    principal: Principal = await state.verifier.verify(bearer_token(authorization))
    if state.throttle is not None:
        state.throttle.admit(principal.tenant_id, principal.app_id)
    return principal


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header value."""
    if not header:
        raise InvalidAuthenticationToken("Access token is empty.")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidAuthenticationToken("Authorization header must be 'Bearer <access token>'.")
    return token


async def json_body(request: Request, kind: type[T], optional: bool = False) -> T:
    """The request body decoded into ``kind``; any problem is a 400 that names the field.

    With ``optional``, no body at all means ``kind()`` (actions without parameters).
    """
    raw = await read_body(request.headers.get("content-length"), request.stream())
    return decode_body(raw, request.headers.get("content-type", ""), kind, optional)


def decode_body(raw: bytes, content_type: str, kind: type[T], optional: bool = False) -> T:
    """``json_body`` once the body is read (shared with the raw-ASGI fast path)."""
    if not raw.strip():
        if optional:
            return kind()
        raise BadRequest("Request body is required.")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json.")
    try:
        if b'"@odata.' in raw:
            # OData annotations (``@odata.type`` …) describe the payload; they are not parameters.
            return msgspec.convert(_without_annotations(msgspec.json.decode(raw)), kind)
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"Invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None


def _without_annotations(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_annotations(v) for k, v in value.items() if not k.startswith("@odata.")}
    if isinstance(value, list):
        return [_without_annotations(v) for v in value]
    return value


async def read_body(declared: str | None, stream: AsyncIterator[bytes], limit: int = MAX_BODY) -> bytes:
    """The body (``Content-Length`` as sent, the chunks), refused once it is larger than ``limit``."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body must not exceed {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"Request body must not exceed {limit} bytes.")
            chunks.append(chunk)
    except ClientDisconnect:
        # The client left before sending it all: nothing to do, and nobody to tell.
        raise BadRequest("The request body did not arrive in full.") from None
    return b"".join(chunks)


def select_option(
    request: Request, allowed: frozenset[str], not_here: Mapping[str, str] | None = None
) -> tuple[str, ...] | None:
    """The properties of ``$select``, or None; unknown query options or properties are a 400.

    ``not_here`` maps a property that exists elsewhere but not on this resource to the 400's message.
    """
    selected: tuple[str, ...] | None = None
    for name, value in request.query_params.multi_items():
        if not name.startswith("$"):
            continue
        if name.lower() != "$select":
            raise BadRequest(f"Query option '{name}' is not supported on this resource.")
        properties = tuple(p.strip() for p in value.split(",") if p.strip())
        if not properties:
            raise BadRequest("$select must name at least one property of microsoft.graph.presence.")
        for prop in properties:
            if prop in allowed:
                continue
            if not_here is not None and prop in not_here:
                raise BadRequest(not_here[prop])
            raise BadRequest(f"Could not find a property named '{prop}' on type 'microsoft.graph.presence'.")
        selected = (selected or ()) + properties
    return selected


async def send_answer(send: Any, status: int, headers: dict[str, str], body: bytes) -> None:
    """What Starlette's ``Response`` sends: a JSON body with its type and length; an empty one with a
    length of 0, except 204 (no length at all)."""
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    if status != 204:
        raw.append((b"content-length", str(len(body)).encode()))
    if body:
        raw.append((b"content-type", JSON_TYPE_BYTES))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# ---- pages (docs/graph-api.md, "Users") ----

DEFAULT_PAGE = 100
MAX_PAGE = 999


def page_size(value: str | None) -> int:
    """``$top``: 1 to ``MAX_PAGE``, else Graph's 400; ``DEFAULT_PAGE`` when not given."""
    if value is None:
        return DEFAULT_PAGE
    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise BadRequest(f"Invalid page size specified: '{value[:16]}'. Must be between 1 and {MAX_PAGE} inclusive.")
    return int(value)


def skiptoken(position: object) -> str:
    """An opaque ``$skiptoken`` for where the next page starts (any value msgspec encodes)."""
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def skiptoken_position(token: str, kind: type[T]) -> T:
    """The position a ``$skiptoken`` of ``skiptoken`` holds; anything else is a 400."""
    try:
        return msgspec.json.decode(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), type=kind)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise BadRequest("$skiptoken is not valid for this query: follow @odata.nextLink as it is.") from None


def next_link(request: Request, base_url: str, token: str) -> str:
    """``@odata.nextLink``: this request's absolute URL with ``$skiptoken`` set to ``token``."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k.lower() != "$skiptoken"]
    params.append(("$skiptoken", token))
    encoded = urlencode(params, quote_via=quote, safe="$'(),:")
    return f"{base_url}{request.url.path}?{encoded}"
