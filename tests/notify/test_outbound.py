"""Outbound webhook safety: URL and address checks, pinned POSTs, bounded reads, the validation handshake."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from presenced.errors import BadRequest
from presenced.notify.outbound import (
    VALIDATION_FAILED,
    InvalidRequest,
    OutboundError,
    OutboundPolicy,
    Target,
    post,
    resolve_target,
    validate_endpoint,
)

HOOK_HOST = "hooks.example.test"
PUBLIC = "93.184.216.34"
LOOPBACK = OutboundPolicy(allow_loopback=True)


# --- a fake resolver ---------------------------------------------------------------


@dataclass
class FakeResolver:
    """Answers from a fixed table and counts the look-ups."""

    table: dict[str, list[str]]
    calls: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise OSError(f"no such host {host}")
        return self.table[host]


def resolving(*addresses: str, host: str = HOOK_HOST) -> FakeResolver:
    return FakeResolver({host: list(addresses)})


# --- a tiny real HTTP server -------------------------------------------------------------


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)


Handler = Callable[[Seen, asyncio.StreamWriter], Awaitable[None]]


async def respond(writer: asyncio.StreamWriter, status: int, body: bytes = b"", **headers: str) -> None:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()


@dataclass
class HookServer:
    port: int
    requests: list[Seen]
    sni: list[str | None]


class Servers:
    """Starts servers on 127.0.0.1, port 0, and tears them and their connections down."""

    def __init__(self) -> None:
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, handler: Handler, tls: ssl.SSLContext | None = None) -> HookServer:
        requests: list[Seen] = []
        sni: list[str | None] = []
        if tls is not None:
            tls.sni_callback = lambda _obj, name, _ctx: sni.append(name)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _version = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                seen = Seen(method, target, headers, body)
                requests.append(seen)
                await handler(seen, writer)
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
        self._servers.append(server)
        return HookServer(server.sockets[0].getsockname()[1], requests, sni)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    started = Servers()
    yield started
    await started.close()


async def target_for(server: HookServer, path: str = "/hook", scheme: str = "http") -> Target:
    url = f"{scheme}://{HOOK_HOST}:{server.port}{path}"
    return await resolve_target(url, LOOPBACK, resolving("127.0.0.1"))


async def echo_token(seen: Seen, writer: asyncio.StreamWriter) -> None:
    await respond(writer, 200, seen.query["validationToken"][0].encode(), Content_Type="text/plain")


# --- a throwaway CA and a certificate for HOOK_HOST ---------------------------------------------


@dataclass
class Pki:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "presenced test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOOK_HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOOK_HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("pki")
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file, ca_cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def pki(pki_files: tuple[Path, Path, str]) -> Pki:
    cert_file, key_file, ca_pem = pki_files
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca_pem)
    return Pki(server=server, client=client)


# --- resolve_target: refusals ---------------------------------------------------------------

REFUSALS = [
    pytest.param(f"http://{HOOK_HOST}/hook", resolving(PUBLIC), id="http-without-allow-loopback"),
    pytest.param("https://127.0.0.1/hook", resolving(), id="loopback-literal"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("127.0.0.1"), id="loopback-by-name"),
    pytest.param("https://[::1]/hook", resolving(), id="ipv6-loopback"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("10.1.2.3"), id="10.x"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("192.168.1.10"), id="192.168.x"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("172.16.0.5"), id="172.16.x"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("169.254.169.254"), id="metadata-v4"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("100.100.100.200"), id="metadata-alibaba"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("fd00:ec2::254"), id="metadata-v6"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("fe80::1"), id="fe80::1"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("fd12:3456::1"), id="unique-local-v6"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("::ffff:10.0.0.1"), id="ipv4-mapped-private"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("64:ff9b::a00:1"), id="nat64-private"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("100.64.0.1"), id="cgnat"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("0.0.0.0"), id="unspecified"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("224.0.0.1"), id="multicast"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving("240.0.0.1"), id="reserved"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving(PUBLIC, "10.0.0.7"), id="one-public-one-private"),
    pytest.param(f"https://user:secret@{HOOK_HOST}/hook", resolving(PUBLIC), id="userinfo"),
    pytest.param(f"ftp://{HOOK_HOST}/hook", resolving(PUBLIC), id="ftp-scheme"),
    pytest.param("javascript:alert(1)", resolving(), id="javascript-scheme"),
    pytest.param("/relative/hook", resolving(), id="relative"),
    pytest.param("https:///hook", resolving(), id="no-host"),
    pytest.param(f"https://{HOOK_HOST}/" + "a" * 2048, resolving(PUBLIC), id="too-long"),
    pytest.param("https://nowhere.example.test/hook", resolving(), id="unresolvable"),
    pytest.param(f"https://{HOOK_HOST}/hook", resolving(), id="resolves-to-nothing"),
]


@pytest.mark.parametrize(("url", "resolver"), REFUSALS)
async def test_unsafe_urls_are_refused_naming_the_field(url: str, resolver: FakeResolver) -> None:
    """An unsafe notification URL is a BadRequest whose message names notificationUrl."""
    with pytest.raises(BadRequest) as caught:
        await resolve_target(url, OutboundPolicy(), resolver)
    assert caught.value.code == "BadRequest"
    assert caught.value.status == 400
    assert "notificationUrl" in caught.value.message


async def test_the_caller_names_the_field() -> None:
    """The field argument is the name used in the refusal message."""
    with pytest.raises(BadRequest, match="lifecycleNotificationUrl"):
        await resolve_target(
            f"https://{HOOK_HOST}/", OutboundPolicy(), resolving("10.0.0.1"), field="lifecycleNotificationUrl"
        )


async def test_refusal_message_names_the_kind_of_address() -> None:
    """The message says which address was refused and why."""
    with pytest.raises(BadRequest, match=r"cloud metadata address \(169\.254\.169\.254\)"):
        await resolve_target(f"https://{HOOK_HOST}/", OutboundPolicy(), resolving("169.254.169.254"))


# --- resolve_target: what passes --------------------------------------------------------------


async def test_public_https_url_resolves_once_and_pins_the_first_address() -> None:
    """A public https URL is resolved exactly once and the first address is pinned."""
    resolver = resolving(PUBLIC, "2606:2800:220:1:248:1893:25c8:1946")
    target = await resolve_target(f"https://{HOOK_HOST}/hook?a=1", OutboundPolicy(), resolver)
    assert resolver.calls == [(HOOK_HOST, 443)]
    assert target == Target(
        url=f"https://{HOOK_HOST}/hook?a=1",
        host=HOOK_HOST,
        port=443,
        ip=PUBLIC,
        addresses=(PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"),
    )


async def test_allow_listed_private_network_passes() -> None:
    """An address inside allowed_networks passes although it is private."""
    policy = OutboundPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    target = await resolve_target(f"https://{HOOK_HOST}:8443/", policy, resolving("10.20.1.2"))
    assert (target.ip, target.port) == ("10.20.1.2", 8443)


async def test_allow_list_is_only_for_the_named_network() -> None:
    """A private address outside the allow-listed network is still refused."""
    policy = OutboundPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    with pytest.raises(BadRequest, match="notificationUrl"):
        await resolve_target(f"https://{HOOK_HOST}/", policy, resolving("10.21.0.1"))


async def test_link_local_allow_list_does_not_open_the_metadata_address() -> None:
    """Allow-listing 169.254.0.0/16 lets link-local through but not 169.254.169.254."""
    policy = OutboundPolicy(allowed_networks=(ipaddress.ip_network("169.254.0.0/16"),))
    assert (await resolve_target(f"https://{HOOK_HOST}/", policy, resolving("169.254.10.1"))).ip == "169.254.10.1"
    with pytest.raises(BadRequest, match="cloud metadata"):
        await resolve_target(f"https://{HOOK_HOST}/", policy, resolving("169.254.169.254"))


async def test_ipv4_mapped_address_is_judged_and_pinned_as_ipv4() -> None:
    """An IPv4-mapped IPv6 address is covered by an IPv4 allow-list and pinned as the IPv4 address."""
    policy = OutboundPolicy(allowed_networks=(ipaddress.ip_network("10.0.0.0/8"),))
    target = await resolve_target(f"https://{HOOK_HOST}/", policy, resolving("::ffff:10.0.0.1"))
    assert target.ip == "10.0.0.1"


async def test_allow_loopback_permits_plain_http_to_loopback() -> None:
    """With allow_loopback, http://127.0.0.1 is accepted without a DNS look-up."""
    resolver = resolving()
    target = await resolve_target("http://127.0.0.1:8000/hook", LOOPBACK, resolver)
    assert (target.ip, target.port, target.host) == ("127.0.0.1", 8000, "127.0.0.1")
    assert resolver.calls == []


# --- post -----------------------------------------------------------------------------------


async def test_post_connects_to_the_pinned_address_with_the_original_host_header(servers: Servers) -> None:
    """The POST reaches the pinned IP although the name is not in DNS, with Host, headers and body intact."""

    async def accept(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 202, b"ok")

    server = await servers.start(accept)
    target = await target_for(server, "/hook?tenant=1")
    response = await post(target, b'{"value":[]}', {"Content-Type": "application/json"}, 5.0, LOOPBACK)
    assert (response.status, response.body_prefix, response.truncated) == (202, b"ok", False)
    [seen] = server.requests
    assert (seen.method, seen.target, seen.body) == ("POST", "/hook?tenant=1", b'{"value":[]}')
    assert seen.headers["host"] == f"{HOOK_HOST}:{server.port}"
    assert seen.headers["content-type"] == "application/json"


async def test_https_post_uses_the_host_name_for_sni_and_certificate_check(servers: Servers, pki: Pki) -> None:
    """Over https the pinned IP is dialled while SNI, Host and certificate verification use the host name."""

    async def accept(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 202)

    server = await servers.start(accept, tls=pki.server)
    resolver = resolving("127.0.0.1")
    target = await resolve_target(f"https://{HOOK_HOST}:{server.port}/hook", LOOPBACK, resolver)
    response = await post(target, b"{}", {}, 5.0, LOOPBACK, verify=pki.client)
    assert response.status == 202
    assert server.sni == [HOOK_HOST]
    assert server.requests[0].headers["host"] == f"{HOOK_HOST}:{server.port}"
    assert len(resolver.calls) == 1


async def test_https_post_fails_when_the_certificate_is_for_another_name(servers: Servers, pki: Pki) -> None:
    """A certificate that does not match the URL's host name makes the call fail."""

    async def accept(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 202)

    server = await servers.start(accept, tls=pki.server)
    target = await resolve_target(
        f"https://other.example.test:{server.port}/hook", LOOPBACK, resolving("127.0.0.1", host="other.example.test")
    )
    with pytest.raises(OutboundError, match=r"(?i)hostname mismatch"):
        await post(target, b"{}", {}, 5.0, LOOPBACK, verify=pki.client)
    assert server.requests == []


async def test_redirect_is_not_followed(servers: Servers) -> None:
    """A 302 is returned as the answer and its Location is never requested."""

    async def redirect(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 302, Location="/elsewhere")

    server = await servers.start(redirect)
    response = await post(await target_for(server), b"{}", {}, 5.0, LOOPBACK)
    assert response.status == 302
    assert [seen.target for seen in server.requests] == ["/hook"]


async def test_huge_response_body_is_read_only_up_to_the_bound(servers: Servers) -> None:
    """A body announced as 100 MB that never ends is cut at max_response_bytes without waiting for the rest."""

    async def flood(seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n")
        writer.write(b"x" * (1024 * 1024))
        await writer.drain()
        await asyncio.Event().wait()  # the rest never comes

    server = await servers.start(flood)
    policy = OutboundPolicy(allow_loopback=True, max_response_bytes=1000)
    started = time.monotonic()
    response = await post(await target_for(server), b"{}", {}, 5.0, policy)
    assert time.monotonic() - started < 4.0
    assert (response.status, len(response.body_prefix), response.truncated) == (200, 1000, True)


async def test_proxy_settings_from_the_environment_are_ignored(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY in the environment does not divert the call away from the pinned address."""

    async def accept(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 204)

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    server = await servers.start(accept)
    response = await post(await target_for(server), b"{}", {}, 5.0, LOOPBACK)
    assert response.status == 204


async def test_post_without_an_answer_in_time_raises_outbound_error(servers: Servers) -> None:
    """A server that never answers makes post raise OutboundError once the timeout passes."""

    async def stall(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    server = await servers.start(stall)
    started = time.monotonic()
    with pytest.raises(OutboundError):
        await post(await target_for(server), b"{}", {}, 0.5, LOOPBACK)
    assert time.monotonic() - started < 2.0


# --- validate_endpoint ---------------------------------------------------------------------------


async def test_handshake_passes_with_a_correct_echo(servers: Servers) -> None:
    """An endpoint that answers 200 with the token as text passes validation."""
    server = await servers.start(echo_token)
    await validate_endpoint(await target_for(server), "abc123", 5.0, LOOPBACK)
    [seen] = server.requests
    assert seen.method == "POST"
    assert seen.query == {"validationToken": ["abc123"]}


async def test_handshake_request_is_empty_text_plain(servers: Servers) -> None:
    """The validation POST has an empty body and Content-Type text/plain; charset=utf-8."""
    server = await servers.start(echo_token)
    await validate_endpoint(await target_for(server), "abc123", 5.0, LOOPBACK)
    [seen] = server.requests
    assert seen.body == b""
    assert seen.headers["content-type"] == "text/plain; charset=utf-8"


async def test_handshake_keeps_the_urls_own_query(servers: Servers) -> None:
    """The token is appended to the notification URL's existing query string."""
    server = await servers.start(echo_token)
    await validate_endpoint(await target_for(server, "/hook?tenant=t1&x=%2F"), "abc", 5.0, LOOPBACK)
    assert server.requests[0].target == "/hook?tenant=t1&x=%2F&validationToken=abc"


async def test_handshake_passes_over_https_with_sni_pinning(servers: Servers, pki: Pki) -> None:
    """Validation works against a TLS endpoint reached through the pinned address."""
    server = await servers.start(echo_token, tls=pki.server)
    await validate_endpoint(await target_for(server, scheme="https"), "tok", 5.0, LOOPBACK, verify=pki.client)
    assert server.sni == [HOOK_HOST]


async def test_handshake_token_with_special_characters_is_url_encoded(servers: Servers) -> None:
    """A token with reserved and non-ASCII characters travels URL-encoded and passes when echoed decoded."""
    token = "Validation: a+b=c&d e/f?g#h%ü"
    server = await servers.start(echo_token)
    await validate_endpoint(await target_for(server), token, 5.0, LOOPBACK)
    raw_query = urlsplit(server.requests[0].target).query
    assert raw_query == "validationToken=Validation%3A%20a%2Bb%3Dc%26d%20e%2Ff%3Fg%23h%25%C3%BC"


async def test_handshake_fails_when_the_echo_is_still_url_encoded(servers: Servers) -> None:
    """Echoing the token in its URL-encoded form instead of the token itself fails validation."""

    async def echo_raw(seen: Seen, writer: asyncio.StreamWriter) -> None:
        raw = urlsplit(seen.target).query.removeprefix("validationToken=")
        await respond(writer, 200, raw.encode())

    server = await servers.start(echo_raw)
    with pytest.raises(InvalidRequest) as caught:
        await validate_endpoint(await target_for(server), "a b&c=d", 5.0, LOOPBACK)
    assert caught.value.message == VALIDATION_FAILED


async def test_handshake_fails_with_a_wrong_body(servers: Servers) -> None:
    """A 200 whose body is not the token fails validation with InvalidRequest."""

    async def wrong(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 200, b"something else")

    server = await servers.start(wrong)
    with pytest.raises(InvalidRequest) as caught:
        await validate_endpoint(await target_for(server), "abc123", 5.0, LOOPBACK)
    assert (caught.value.code, caught.value.status, caught.value.message) == ("InvalidRequest", 400, VALIDATION_FAILED)
    assert isinstance(caught.value, BadRequest)


async def test_handshake_fails_with_a_non_200_status(servers: Servers) -> None:
    """A correct echo with status 202 instead of 200 fails validation."""

    async def accepted(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 202, seen.query["validationToken"][0].encode())

    server = await servers.start(accepted)
    with pytest.raises(InvalidRequest, match="must respond with 200 OK"):
        await validate_endpoint(await target_for(server), "abc123", 5.0, LOOPBACK)


async def test_handshake_fails_when_the_answer_is_too_slow(servers: Servers) -> None:
    """A correct echo that arrives after the timeout fails validation, and the wait ends at the timeout."""

    async def slow(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3)
        await echo_token(seen, writer)

    server = await servers.start(slow)
    started = time.monotonic()
    with pytest.raises(InvalidRequest, match="must respond with 200 OK"):
        await validate_endpoint(await target_for(server), "abc123", 0.5, LOOPBACK)
    assert time.monotonic() - started < 2.0


async def test_handshake_fails_when_nothing_listens(servers: Servers) -> None:
    """A refused connection fails validation with InvalidRequest rather than a transport error."""

    async def accept(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 200)

    server = await servers.start(accept)
    target = await target_for(server)
    await servers.close()
    with pytest.raises(InvalidRequest):
        await validate_endpoint(target, "abc123", 2.0, LOOPBACK)
