"""JSON batching: ``POST /{version}/$batch`` runs up to 20 requests of the same version in one call.

Each inner request is handed to the whole application as if it had come alone, with the batch's
``Authorization``, so it is authorized, validated and answered exactly as it would be on its own
(docs/graph-api.md, "JSON batching"). What this module decides is only the batch's own shape:
which batches are malformed (a 400 for the whole batch), which single requests cannot be run (a
400 for that request), and the order: a request runs after the requests it ``dependsOn`` (and gets
424 without running when one of them failed), requests that change something run one after another
in the order the batch lists them, and reads run beside them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import msgspec
from msgspec import UNSET, Struct, UnsetType
from starlette.requests import Request
from starlette.responses import Response

from presenced.api.endpoints import Endpoint
from presenced.api.fastpath import PresenceFastPath
from presenced.api.http import error_parts, json_response, new_request_id, read_body
from presenced.errors import BadRequest, PresencedError
from presenced.wiring import services_of

log = logging.getLogger("presenced.api")

#: Graph's limit on the requests of one batch.
MAX_REQUESTS = 20
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
#: Response headers that describe the transport of the inner answer, not the answer.
_TRANSPORT = frozenset({b"content-length", b"connection", b"transfer-encoding"})
#: Request headers an inner request never takes from the batch's item: the batch's own apply.
_OWN = frozenset({"authorization", "content-length", "host", "transfer-encoding", "connection"})


class BatchItem(Struct, kw_only=True):
    # Unknown members are ignored, as Graph ignores them (msgraph-core sends ``depends_on``).
    id: str
    method: str
    url: str
    headers: dict[str, str] | None = None
    body: Any = UNSET
    dependsOn: list[str] | None = None


class BatchInput(Struct, kw_only=True):
    requests: list[BatchItem]


class BatchAnswer(Struct, kw_only=True, omit_defaults=True):
    id: str
    status: int
    headers: dict[str, str]
    body: msgspec.Raw | str | UnsetType = UNSET


class BatchOutput(Struct):
    responses: list[BatchAnswer]


@dataclass(slots=True)
class _Step:
    """One inner request, ready to run, or refused with ``refusal`` before running."""

    item: BatchItem
    method: str
    path: str
    query: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    refusal: PresencedError | None = None

    @property
    def changes(self) -> bool:
        return self.method != "GET"


def _decode(raw: bytes, content_type: str) -> BatchInput:
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise BadRequest("Content-Type must be application/json.")
    try:
        batch = msgspec.json.decode(raw, type=BatchInput)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"Invalid batch payload: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"Invalid batch payload: the body is not valid JSON ({exc}).") from None
    requests = batch.requests
    if not requests:
        raise BadRequest("Invalid batch payload: 'requests' must hold at least one request.")
    if len(requests) > MAX_REQUESTS:
        raise BadRequest(f"Invalid batch payload: a batch holds at most {MAX_REQUESTS} requests, not {len(requests)}.")
    ids = set()
    for item in requests:
        if not item.id.strip():
            raise BadRequest("Invalid batch payload: every request needs a non-empty 'id'.")
        if item.id in ids:
            raise BadRequest(f"Invalid batch payload: the id '{item.id[:64]}' is used by more than one request.")
        ids.add(item.id)
    for item in requests:
        for needed in item.dependsOn or ():
            if needed not in ids:
                raise BadRequest(
                    f"Invalid batch payload: request '{item.id[:64]}' depends on '{needed[:64]}', "
                    "which is not in the batch."
                )
    return batch


def _in_dependency_order(requests: list[BatchItem]) -> list[BatchItem]:
    """The requests with each after those it depends on, otherwise as listed; a cycle is a 400."""
    ordered: list[BatchItem] = []
    placed: set[str] = set()
    waiting = list(requests)
    while waiting:
        ready = next((i for i in waiting if placed.issuperset(i.dependsOn or ())), None)
        if ready is None:
            names = ", ".join(f"'{i.id[:64]}'" for i in waiting)
            raise BadRequest(f"Invalid batch payload: the dependencies of {names} form a cycle.")
        waiting.remove(ready)
        ordered.append(ready)
        placed.add(ready.id)
    return ordered


def _step(item: BatchItem, version: str, own_bases: tuple[str, ...]) -> _Step:
    """The inner request of ``item``, or the reason it cannot run."""
    method = item.method.upper()
    step = _Step(item, method, "", "", [], b"")
    try:
        if method not in _METHODS:
            raise BadRequest(f"The method '{item.method[:16]}' is not supported in a batch request.")
        step.path, step.query = _target(item.url, version, own_bases)
        step.headers, content_type = _headers(item.headers or {})
        step.body = _body(item.body, content_type)
    except PresencedError as refusal:
        step.refusal = refusal
    return step


def _target(url: str, version: str, own_bases: tuple[str, ...]) -> tuple[str, str]:
    """The path (with the version) and query string of an inner request's url."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise BadRequest("The url must not contain control characters.")
    relative = url
    if url.startswith("//"):
        raise BadRequest(f"The url must be relative to /{version} (for example '/me/presence'), not '{url[:128]}'.")
    if "://" in url.split("?", 1)[0]:
        # msgraph-core puts the whole URL of this service here; anything else is another service.
        for base in own_bases:
            if url.startswith(base + "/"):
                relative = url[len(base) :]
                break
        else:
            raise BadRequest(
                f"The url must be relative to /{version} (for example '/me/presence'), or an absolute URL "
                f"of this service's /{version}; '{url[:128]}' is neither."
            )
    parts = urlsplit(relative if relative.startswith("/") else "/" + relative)
    path = unquote(parts.path)
    if path.rstrip("/").lower() == "/$batch":
        raise BadRequest("A batch request cannot contain another batch ($batch).")
    return f"/{version}{path}", parts.query


def _headers(given: dict[str, str]) -> tuple[list[tuple[bytes, bytes]], str]:
    headers: list[tuple[bytes, bytes]] = []
    content_type = ""
    for name, value in given.items():
        lowered = name.strip().lower()
        if not lowered or not lowered.isascii() or any(c in lowered for c in ' \t\r\n:"(),/;<=>?@[\\]{}'):
            raise BadRequest(f"The header name '{name[:64]}' is not valid.")
        if any(c in value for c in "\r\n\x00") or not value.isascii():
            raise BadRequest(f"The value of header '{name[:64]}' is not valid.")
        if lowered in _OWN:
            continue
        if lowered == "content-type":
            content_type = value
        headers.append((lowered.encode(), value.encode()))
    return headers, content_type


def _body(body: Any, content_type: str) -> bytes:
    """The bytes of an inner request's body: JSON as given, any other type from its base64 text."""
    if body is UNSET or body is None:
        return b""
    if not content_type:
        raise BadRequest("A request with a body must say its Content-Type in 'headers'.")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return msgspec.json.encode(body)
    if not isinstance(body, str):
        raise BadRequest(f"A body of type '{media_type[:64]}' must be a base64 string.")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"A body of type '{media_type[:64]}' must be a base64 string.") from None


class _Inner:
    """One inner request's ASGI conversation: its body in, its answer collected."""

    def __init__(self, body: bytes) -> None:
        self._body: bytes | None = body
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.started = False

    async def receive(self) -> dict[str, Any]:
        if self._body is None:
            # Only an endpoint that waits for the client to leave asks twice; none is reachable here.
            return {"type": "http.disconnect"}
        body, self._body = self._body, None
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
            self.started = True
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))


class Batch:
    def __init__(self, request: Request, app: Any) -> None:
        self._outer = request.scope
        self._app = app
        authorization = request.headers.get("authorization")
        self._authorization = [(b"authorization", authorization.encode("latin-1"))] if authorization else []

    async def run(self, steps: list[_Step]) -> list[BatchAnswer]:
        answers: dict[str, asyncio.Future[BatchAnswer]] = {}
        loop = asyncio.get_running_loop()
        last_change: asyncio.Future[BatchAnswer] | None = None
        tasks = []
        for step in steps:
            after = [answers[d] for d in step.item.dependsOn or ()]
            if step.changes and last_change is not None:
                after.append(last_change)
            answers[step.item.id] = loop.create_future()
            if step.changes:
                last_change = answers[step.item.id]
            tasks.append(asyncio.ensure_future(self._one(step, after, answers[step.item.id])))
        await asyncio.gather(*tasks)
        return [answers[step.item.id].result() for step in steps]

    async def _one(
        self, step: _Step, after: list[asyncio.Future[BatchAnswer]], answer: asyncio.Future[BatchAnswer]
    ) -> None:
        try:
            for earlier in after:
                await earlier
            needed = set(step.item.dependsOn or ())
            failed = [a.id for a in (f.result() for f in after) if a.id in needed and a.status >= 400]
            if failed:
                answer.set_result(_refused(step.item.id, _FailedDependency(failed[0])))
            elif step.refusal is not None:
                answer.set_result(_refused(step.item.id, step.refusal))
            else:
                answer.set_result(await self._dispatch(step))
        except BaseException as exc:
            if not answer.done():
                answer.set_exception(exc)
            raise

    async def _dispatch(self, step: _Step) -> BatchAnswer:
        scope = {
            key: value
            for key, value in self._outer.items()
            if key not in {"app", "router", "endpoint", "path_params", "route", "state"}
        }
        body = step.body
        headers = step.headers + self._authorization
        if body:
            headers.append((b"content-length", str(len(body)).encode()))
        scope.update(
            method=step.method,
            path=step.path,
            raw_path=quote(step.path, safe="/$'(),:@!*+;=").encode(),
            # As a client sends it: anything not ASCII percent-encoded as UTF-8, escapes already made kept.
            query_string=quote(step.query, safe="/?:@!$&'()*+,;=%~").encode(),
            headers=headers,
        )
        inner = _Inner(body)
        try:
            await self._app(scope, inner.receive, inner.send)
        except Exception:
            # The application answered already (its error handlers log and answer, then re-raise).
            if not inner.started:
                log.exception("unhandled error in a batch request %s %s", step.method, step.path)
                return _refused(step.item.id, PresencedError("An internal error occurred."))
        return _answer(step.item.id, inner)


class _FailedDependency(PresencedError):
    status = 424
    code = "FailedDependency"

    def __init__(self, failed: str) -> None:
        super().__init__(f"The request it depends on ('{failed[:64]}') failed, so it was not run.")


def _refused(request_id: str, error: PresencedError) -> BatchAnswer:
    inner_id = new_request_id()
    headers, body = error_parts(error, inner_id, inner_id)
    headers["Content-Type"] = "application/json"
    return BatchAnswer(id=request_id, status=error.status, headers=headers, body=msgspec.Raw(body))


def _answer(request_id: str, inner: _Inner) -> BatchAnswer:
    headers: dict[str, str] = {}
    content_type = ""
    for name, value in inner.headers:
        if name in _TRANSPORT:
            continue
        text = value.decode("latin-1")
        if name == b"content-type":
            content_type = text
        headers[name.decode("latin-1").title() if name != b"odata-version" else "OData-Version"] = text
    body = b"".join(inner.chunks)
    if not body:
        return BatchAnswer(id=request_id, status=inner.status, headers=headers)
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return BatchAnswer(id=request_id, status=inner.status, headers=headers, body=msgspec.Raw(body))
    return BatchAnswer(id=request_id, status=inner.status, headers=headers, body=base64.b64encode(body).decode())


async def post_batch(request: Request) -> Response:
    version = request.scope["path"].split("/", 2)[1]
    raw = await read_body(request.headers.get("content-length"), request.stream())
    batch = _decode(raw, request.headers.get("content-type", ""))
    ordered = _in_dependency_order(batch.requests)
    own = f"{request.url.scheme}://{request.url.netloc}/{version}"
    bases = (own, f"{services_of(request).base_url}/{version}")
    steps = [_step(item, version, bases) for item in ordered]
    answers = await Batch(request, PresenceFastPath(request.app)).run(steps)
    by_id = {a.id: a for a in answers}
    output = BatchOutput([by_id[item.id] for item in batch.requests])
    return json_response(request, msgspec.json.encode(output))


ENDPOINTS = (
    Endpoint(
        "POST",
        "/$batch",
        post_batch,
        "batch",
        "Run up to 20 requests of this version in one call (JSON batching)",
        (),
        request_body=BatchInput,
        response_body=BatchOutput,
        note="Each inner request is authorized with the batch's token and needs the permissions it needs alone.",
    ),
)
