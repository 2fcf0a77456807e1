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
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias
from urllib.parse import quote

import httpx

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
        if not policy.allow_loopback:
            raise BadRequest(f"{field} must use https.")
    elif parsed.scheme != "https":
        raise BadRequest(f"{field} must be an https URL.")
    if parsed.userinfo:
        raise BadRequest(f"{field} must not contain a user name or password.")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise BadRequest(f"{field} must name a host.")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)

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
        url=str(parsed),
        host=host,
        port=port,
        ip=pinnable(addresses[0]),
        addresses=tuple(pinnable(a) for a in addresses),
    )


# --- calling ------------------------------------------------------------------


_system_context: ssl.SSLContext | None = None


def _context(verify: ssl.SSLContext | bool) -> ssl.SSLContext | bool:
    """``True`` becomes one shared context of the system's trust roots: building one loads the whole CA
    bundle (about 20 ms), too much to pay on every notification."""
    global _system_context
    if verify is not True:
        return verify
    if _system_context is None:
        _system_context = ssl.create_default_context()
    return _system_context


async def post(
    target: Target,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - part of the contract; enforced with asyncio.timeout below
    policy: OutboundPolicy = DEFAULT_POLICY,
    *,
    verify: ssl.SSLContext | bool = True,
) -> OutboundResponse:
    """POST ``body`` to the target's pinned address, reading at most ``policy.max_response_bytes`` back.

    The Host header, TLS SNI and certificate verification use ``target.host``;
    no name is resolved here. Redirects are not followed: a 3xx is returned
    like any other answer. ``timeout`` bounds the whole call. Raises
    :class:`OutboundError` when no HTTP answer arrives in time.
    """
    original = httpx.URL(target.url)
    request_url = original.copy_with(host=target.ip, fragment=None)
    request_headers = {k: v for k, v in headers.items() if k.lower() not in {"host", "accept-encoding"}}
    request_headers["Host"] = original.netloc.decode("ascii")
    request_headers["Accept-Encoding"] = "identity"
    extensions: dict[str, object] = {}
    if original.scheme == "https":
        extensions["sni_hostname"] = target.host
    limit = policy.max_response_bytes

    started = time.monotonic()
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(
                verify=_context(verify),
                trust_env=False,  # no proxy from the environment: connect to the pinned address
                follow_redirects=False,
                timeout=httpx.Timeout(timeout),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
            ) as client,
        ):
            request = client.build_request(
                "POST", request_url, content=body, headers=request_headers, extensions=extensions
            )
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                chunks: list[bytes] = []
                size = 0
                truncated = False
                async for chunk in response.aiter_raw():
                    room = limit - size
                    if len(chunk) > room:
                        chunks.append(chunk[:room])
                        size = limit
                        truncated = True
                        break
                    chunks.append(chunk)
                    size += len(chunk)
            finally:
                await response.aclose()
    except TimeoutError as exc:
        raise OutboundError(f"No answer from {target.host} within {timeout} seconds.") from exc
    except httpx.TimeoutException as exc:
        raise OutboundError(f"No answer from {target.host} within {timeout} seconds.") from exc
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        raise OutboundError(f"Calling {target.host} failed: {exc.__class__.__name__}: {exc}") from exc
    return OutboundResponse(
        status=response.status_code,
        elapsed=time.monotonic() - started,
        body_prefix=b"".join(chunks),
        truncated=truncated,
    )


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
