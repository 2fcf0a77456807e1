"""Outbound safety for webhook calls: validate, resolve once, pin, POST with bounds.

A subscriber's ``notificationUrl`` is attacker-chosen input that makes this
service open connections, so every call goes through two steps:

* :func:`resolve_target` checks the URL's shape, resolves its host name exactly
  once and refuses it when any address it resolves to is inside the service's
  own network neighbourhood (loopback, private, link-local, cloud metadata,
  CGNAT, ...) unless the operator allow-listed that network.
* :func:`post` connects to the pinned address from that resolution (no second
  lookup, so a name cannot re-point between check and use), while the Host
  header, the TLS server name and the certificate check still use the original
  host name. Redirects are never followed and at most ``max_response_bytes`` of
  the answer are read.

:func:`validate_endpoint` is Graph's subscription validation handshake on top
of :func:`post`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import socket
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias, cast
from urllib.parse import quote, urlsplit

import httptools
import httpx

from presenced import __version__
from presenced.errors import BadRequest, PresencedError

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver: TypeAlias = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves ``(host, port)`` to the IP address strings it stands for."""

MAX_URL_LENGTH: Final = 2048
NOTIFICATION_URL: Final = "notificationUrl"
VALIDATION_FAILED: Final = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
)


class InvalidRequest(BadRequest):
    """A request Graph answers with code ``InvalidRequest`` (a failed validation handshake)."""

    code = "InvalidRequest"


class OutboundError(PresencedError):
    """A webhook call that got no HTTP answer: refused connection, TLS failure, timeout, protocol error."""


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """What outbound webhook calls may reach.

    ``allow_loopback`` permits plain ``http`` and loopback targets (the demo and
    tests turn it on). ``allowed_networks`` lets named private / link-local /
    CGNAT networks through. A cloud-metadata address passes only when the
    allow-list names that single address; unspecified and multicast addresses
    never pass.
    """

    allow_loopback: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    max_response_bytes: int = 64 * 1024


DEFAULT_POLICY: Final = OutboundPolicy()


@dataclass(frozen=True, slots=True)
class Target:
    """A checked webhook URL and the single address to connect to for it."""

    url: str
    """The URL as it will be requested (normalised; path and query kept)."""
    host: str
    """The host name (ASCII / IDNA form) for the Host header, SNI and certificate check."""
    port: int
    ip: str
    """The pinned address every request to this target connects to."""
    addresses: tuple[str, ...] = ()
    """Every address the host resolved to (all of them passed the checks)."""


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    """What came back from a webhook call."""

    status: int
    elapsed: float
    """Seconds from sending the request to having read the (bounded) body."""
    body_prefix: bytes
    """At most ``max_response_bytes`` of the body, undecoded."""
    truncated: bool
    """Whether the body was longer than what was read."""


# --- address rules ---------------------------------------------------------

_METADATA: Final[frozenset[IPAddress]] = frozenset(
    {
        ipaddress.IPv4Address("169.254.169.254"),
        ipaddress.IPv4Address("100.100.100.200"),
        ipaddress.IPv6Address("fd00:ec2::254"),
    }
)
_PRIVATE: Final[tuple[IPNetwork, ...]] = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
    ipaddress.IPv6Network("fc00::/7"),
)
_LINK_LOCAL: Final[tuple[IPNetwork, ...]] = (
    ipaddress.IPv4Network("169.254.0.0/16"),
    ipaddress.IPv6Network("fe80::/10"),
)
_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


def _in_any(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, NAT64 well-known prefix, 6to4)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _category(address: IPAddress) -> str | None:
    """Why an address is off limits (``None`` when it is a public address)."""
    if address in _METADATA:
        return "cloud metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_multicast:
        return "multicast"
    if address.is_link_local or _in_any(address, _LINK_LOCAL):
        return "link-local"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "shared (CGNAT)"
    if _in_any(address, _PRIVATE) or address.is_private:
        return "private"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


def _refusal(address: IPAddress, policy: OutboundPolicy) -> str | None:
    """Why ``address`` may not be called under ``policy``, or ``None`` when it may."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            if address.ipv4_mapped is not None:
                candidates = [embedded]  # judged purely as the IPv4 address it is
            else:
                candidates.append(embedded)
    for candidate in candidates:
        reason = _category(candidate)
        if reason is None:
            continue
        if reason in {"unspecified", "multicast"}:
            return reason
        if reason == "cloud metadata":
            if any(n.num_addresses == 1 and candidate in n for n in policy.allowed_networks):
                continue
            return reason
        if reason == "loopback" and policy.allow_loopback:
            continue
        if _in_any(candidate, policy.allowed_networks) or _in_any(address, policy.allowed_networks):
            continue
        return reason
    return None


def _parse_ip(text: str) -> IPAddress | None:
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.scope_id is not None:
        parsed = ipaddress.IPv6Address(text.split("%", 1)[0])
    return parsed


# --- resolution -----------------------------------------------------------------


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """Resolve with the operating system's resolver (``loop.getaddrinfo``)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


@functools.lru_cache(maxsize=4096)
def _checked_url(url: str, field: str, allow_loopback: bool) -> tuple[str, str, int]:
    """The URL's shape checked: its normalised form, host and port; BadRequest naming ``field`` if it is not one
    webhooks may use. Kept for the URLs seen lately: parsing one costs more than the rest of a delivery's checks,
    and every notification to a URL asks again (its addresses are looked up anew each time, by the caller)."""
    if len(url) > MAX_URL_LENGTH:
        raise BadRequest(f"{field} must be at most {MAX_URL_LENGTH} characters long.")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise BadRequest(f"{field} must not contain whitespace or control characters.")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise BadRequest(f"{field} is not a valid URL.") from exc
    if not parsed.is_absolute_url:
        raise BadRequest(f"{field} must be an absolute URL.")
    if parsed.scheme == "http":
        if not allow_loopback:
            raise BadRequest(f"{field} must use https.")
    elif parsed.scheme != "https":
        raise BadRequest(f"{field} must be an https URL.")
    if parsed.userinfo:
        raise BadRequest(f"{field} must not contain a user name or password.")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise BadRequest(f"{field} must name a host.")
    return str(parsed), host, parsed.port or (443 if parsed.scheme == "https" else 80)


async def resolve_target(
    url: str,
    policy: OutboundPolicy = DEFAULT_POLICY,
    resolver: Resolver = system_resolver,
    *,
    field: str = NOTIFICATION_URL,
) -> Target:
    """Check a webhook URL, resolve its host once and pin an address, or raise :class:`BadRequest`.

    ``field`` names the URL in error messages (``notificationUrl`` or
    ``lifecycleNotificationUrl``).
    """
    normalised, host, port = _checked_url(url, field, policy.allow_loopback)
    literal = _parse_ip(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            resolved = await resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise BadRequest(f"{field} host {host!r} could not be resolved.") from exc
        addresses = []
        for text in resolved:
            address = _parse_ip(text)
            if address is None:
                raise BadRequest(f"{field} host {host!r} resolved to an unusable address.")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise BadRequest(f"{field} host {host!r} could not be resolved.")

    for address in addresses:
        reason = _refusal(address, policy)
        if reason is not None:
            raise BadRequest(
                f"{field} host {host!r} resolves to a {reason} address ({address}); notifications cannot be sent there."
            )

    def pinnable(address: IPAddress) -> str:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(address)

    return Target(
        url=normalised,
        host=host,
        port=port,
        ip=pinnable(addresses[0]),
        addresses=tuple(pinnable(a) for a in addresses),
    )


# --- calling ------------------------------------------------------------------


_system_context: ssl.SSLContext | None = None
_unverified_context: ssl.SSLContext | None = None


def _context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    """``True`` becomes one shared context of the system's trust roots: building one loads the whole CA
    bundle (about 20 ms), too much to pay on every notification. ``False``: one that checks nothing."""
    global _system_context, _unverified_context
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify:
        if _system_context is None:
            _system_context = ssl.create_default_context()
        return _system_context
    if _unverified_context is None:
        _unverified_context = ssl.create_default_context()
        _unverified_context.check_hostname = False
        _unverified_context.verify_mode = ssl.CERT_NONE
    return _unverified_context


#: Headers ``post`` writes itself; a caller's are dropped.
_OWN_HEADERS = frozenset({"host", "accept-encoding", "content-length", "connection", "transfer-encoding"})
_USER_AGENT = f"presenced/{__version__}"


async def post(
    target: Target,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - part of the contract; enforced with asyncio.timeout below
    policy: OutboundPolicy = DEFAULT_POLICY,
    *,
    verify: ssl.SSLContext | bool = True,
    connections: Connections | None = None,
) -> OutboundResponse:
    """POST ``body`` to the target's pinned address, reading at most ``policy.max_response_bytes`` back.

    The Host header, TLS SNI and certificate verification use ``target.host``;
    no name is resolved here. Redirects are not followed: a 3xx is returned
    like any other answer. ``timeout`` bounds the whole call (waiting for a
    connection included). Raises :class:`OutboundError` when no HTTP answer
    arrives in time. With ``connections``, the connection comes from (and goes
    back to) that pool of kept-alive ones; without, it is opened for this call
    and closed after it.
    """
    parts = urlsplit(target.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"User-Agent: {_USER_AGENT}"]
    for name, value in headers.items():
        if name.lower() in _OWN_HEADERS:
            continue
        if any(c in name or c in value for c in "\r\n"):
            raise OutboundError(f"The header {name!r} cannot be sent.")
        lines.append(f"{name}: {value}")
    lines += ["Accept-Encoding: identity", f"Content-Length: {len(body)}"]
    if connections is None:
        lines.append("Connection: close")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    tls = _context(verify) if parts.scheme == "https" else None
    origin = (parts.scheme, target.ip, target.port, target.host, tls)
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            status, prefix, truncated = await _exchange(
                connections or Connections(keep=False), origin, request, policy.max_response_bytes
            )
    except TimeoutError as exc:
        raise OutboundError(f"No answer from {target.host} within {timeout} seconds.") from exc
    except (ssl.SSLError, OSError, _ProtocolError) as exc:
        raise OutboundError(f"Calling {target.host} failed: {exc.__class__.__name__}: {exc}") from exc
    return OutboundResponse(status=status, elapsed=time.monotonic() - started, body_prefix=prefix, truncated=truncated)


async def _exchange(pool: Connections, origin: _Origin, request: bytes, limit: int) -> tuple[int, bytes, bool]:
    """One request and its answer on a connection of ``pool``; once more on a new connection when a kept-alive
    one turns out to have been closed by the other end before it answered anything."""
    while True:
        connection = await pool.acquire(origin)
        reused = connection.used
        reusable = False
        try:
            answer = await connection.send(request, limit)
            reusable = answer.reusable
            return answer.status, b"".join(answer.chunks), answer.truncated
        except _Stale:
            if not reused:
                raise _ProtocolError("The connection closed before any answer.") from None
        finally:
            pool.release(connection, reusable)


class _ProtocolError(OutboundError):
    """The other end did not speak HTTP/1.1 as it should (``post`` says so in an ``OutboundError`` of its own)."""


class _Stale(_ProtocolError):
    """The connection closed before anything of the answer came."""


#: What a connection is opened for: scheme, pinned address, port, host name (Host, SNI, certificate), TLS context.
_Origin: TypeAlias = tuple[str, str, int, str, "ssl.SSLContext | None"]


class _Answer:
    __slots__ = ("chunks", "close_delimited", "final", "reusable", "size", "status", "truncated")

    def __init__(self) -> None:
        self.status = 0
        self.chunks: list[bytes] = []
        self.size = 0
        self.truncated = False
        self.reusable = False
        self.final = False
        #: No Content-Length and not chunked: the body ends when the connection does.
        self.close_delimited = True


class _Connection(asyncio.Protocol):
    """One connection to a receiver: a request at a time, its answer read with httptools' parser."""

    def __init__(self, pool: Connections, origin: _Origin) -> None:
        self.pool, self.origin = pool, origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: _Answer | None = None
        self.limit = 0
        self.waiting: asyncio.Future[_Answer] | None = None
        self.received = False
        self.used = False
        self.lost = False
        #: Whether it counts towards its origin's open connections (until it is closed and released).
        self.counted = True
        self.idle: asyncio.TimerHandle | None = None

    # ---- asyncio ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        if self.waiting is None or self.waiting.done():
            self.close()  # nothing was asked: not a connection to use again
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(_ProtocolError(f"The answer is not valid HTTP/1.1: {error}"))

    def eof_received(self) -> bool | None:
        return None  # the connection closes; connection_lost says what that means

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        answer = self.answer
        if self.waiting is not None and not self.waiting.done():
            if answer is not None and answer.status and answer.close_delimited and not (100 <= answer.status < 200):
                self._done(reusable=False)  # its body ended with the connection
            elif not self.received:
                self._fail(_Stale("The connection closed before any answer."))
            else:
                self._fail(_ProtocolError(f"The connection closed in the middle of the answer ({exc or 'closed'})."))
        self.pool.forget(self)

    # ---- httptools ----

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower()):
            assert self.answer is not None
            self.answer.close_delimited = False

    def on_headers_complete(self) -> None:
        assert self.answer is not None
        self.answer.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        answer = self.answer
        assert answer is not None
        if answer.truncated:
            return
        room = self.limit - answer.size
        if len(body) > room:
            answer.chunks.append(body[:room])
            answer.size = self.limit
            answer.truncated = True
            self._done(reusable=False)  # the rest is not read
            return
        answer.chunks.append(body)
        answer.size += len(body)

    def on_message_complete(self) -> None:
        answer = self.answer
        assert answer is not None
        if 100 <= answer.status < 200:  # an interim answer: the final one follows
            self.answer = _Answer()
            return
        if not answer.truncated:
            self._done(reusable=self.parser.should_keep_alive())

    # ---- one exchange ----

    async def send(self, request: bytes, limit: int) -> _Answer:
        assert self.transport is not None
        self.used = True
        self.answer, self.limit, self.received = _Answer(), limit, False
        self.waiting = asyncio.get_running_loop().create_future()
        if self.lost or self.transport.is_closing():
            self._fail(_Stale("The connection closed before any answer."))
        else:
            self.transport.write(request)
        try:
            return await self.waiting
        finally:
            self.waiting = None

    def _done(self, reusable: bool) -> None:
        assert self.answer is not None
        self.answer.reusable = reusable and not self.lost
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(self.answer)

    def _fail(self, error: Exception) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(error)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class Connections:
    """Kept-alive connections to webhook receivers, by origin (scheme, pinned address, port, host name and TLS
    context: a connection is used again only for exactly what it was opened for). At most ``per_origin`` are open
    to one origin (a call waits for one); an idle one is closed after ``idle`` seconds, or when the receiver
    closes it. So a thousand notifications for one receiver take a few dozen connections, not a thousand.
    With ``keep`` False, each connection is closed after its call."""

    def __init__(self, per_origin: int = 64, idle: float = 4.0, keep: bool = True) -> None:
        self._per_origin = per_origin
        self._idle_seconds = idle
        self._keep = keep
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._open: dict[_Origin, int] = {}
        self._waiting: dict[_Origin, deque[asyncio.Future[None]]] = {}

    async def acquire(self, origin: _Origin) -> _Connection:
        while True:
            idle = self._idle.get(origin)
            if idle:
                connection = idle.pop()
                if connection.idle is not None:
                    connection.idle.cancel()
                    connection.idle = None
                return connection
            if self._open.get(origin, 0) < self._per_origin:
                self._open[origin] = self._open.get(origin, 0) + 1
                connection = _Connection(self, origin)
                try:
                    await self._connect(connection)
                except BaseException:
                    self._uncount(connection)
                    raise
                return connection
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiting = self._waiting.setdefault(origin, deque())
            waiting.append(turn)
            try:
                await turn
            finally:
                if turn in waiting:
                    waiting.remove(turn)

    async def _connect(self, connection: _Connection) -> None:
        _scheme, ip, port, host, tls = connection.origin
        loop = asyncio.get_running_loop()
        if tls is None:
            await loop.create_connection(lambda: connection, ip, port)
        else:
            await loop.create_connection(lambda: connection, ip, port, ssl=tls, server_hostname=host)

    def release(self, connection: _Connection, reusable: bool) -> None:
        """The call is over: keep the connection for the next one, or close it."""
        if reusable and self._keep and not connection.lost:
            connection.idle = asyncio.get_running_loop().call_later(self._idle_seconds, connection.close)
            self._idle.setdefault(connection.origin, []).append(connection)
            self._next(connection.origin)
            return
        connection.close()
        self._uncount(connection)

    def forget(self, connection: _Connection) -> None:
        """The connection closed: if it was idle, it is no longer there to use (one in use is released by its
        call)."""
        idle = self._idle.get(connection.origin)
        if idle is not None and connection in idle:
            idle.remove(connection)
            if connection.idle is not None:
                connection.idle.cancel()
                connection.idle = None
            self._uncount(connection)

    def _uncount(self, connection: _Connection) -> None:
        if not connection.counted:
            return
        connection.counted = False
        origin = connection.origin
        left = self._open.get(origin, 1) - 1
        if left > 0:
            self._open[origin] = left
        else:
            self._open.pop(origin, None)
            if not self._idle.get(origin):
                self._idle.pop(origin, None)
        self._next(origin)

    def _next(self, origin: _Origin) -> None:
        """Let the first call waiting for a connection to ``origin`` try again."""
        waiting = self._waiting.get(origin)
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                break
        if waiting is not None and not waiting:
            del self._waiting[origin]

    async def close(self) -> None:
        """Close every idle connection (the process is closing)."""
        for idle in list(self._idle.values()):
            for connection in list(idle):
                connection.close()


def _with_validation_token(url: str, token: str) -> str:
    base, _, _fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        separator = ""
    return f"{base}{separator}validationToken={quote(token, safe='')}"


async def validate_endpoint(
    target: Target,
    token: str,
    timeout: float = 10.0,  # noqa: ASYNC109 - Graph's handshake deadline, passed to post
    policy: OutboundPolicy = DEFAULT_POLICY,
    *,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Graph's validation handshake: the endpoint must echo ``token`` with 200 OK within ``timeout``.

    POSTs ``{url}?validationToken={token}`` (URL-encoded, the URL's own query
    kept) with an empty ``text/plain`` body; raises :class:`InvalidRequest`
    unless the answer is 200 and its stripped text equals the token.
    """
    probe = dataclasses.replace(target, url=_with_validation_token(target.url, token))
    try:
        response = await post(probe, b"", {"Content-Type": "text/plain; charset=utf-8"}, timeout, policy, verify=verify)
    except OutboundError as exc:
        raise InvalidRequest(VALIDATION_FAILED) from exc
    if response.status != 200 or response.truncated:
        raise InvalidRequest(VALIDATION_FAILED)
    try:
        echoed = response.body_prefix.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(VALIDATION_FAILED) from exc
    if echoed.strip() != token:
        raise InvalidRequest(VALIDATION_FAILED)
