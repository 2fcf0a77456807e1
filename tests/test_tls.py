"""The local development CA and server certificate: made once, reused, reissued when stale, trusted for real."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from presenced.errors import ConfigurationError
from presenced.tls import LocalTls, ensure_local_tls, trust_instructions

FILES = ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "bundle.pem")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def server_cert(tls: LocalTls) -> x509.Certificate:
    return x509.load_pem_x509_certificate(tls.cert.read_bytes())


def sans(tls: LocalTls) -> list[x509.GeneralName]:
    return list(server_cert(tls).extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


@contextmanager
def serving(tls: LocalTls) -> Iterator[int]:
    """A one-connection TLS server on 127.0.0.1 in a thread; yields its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert, tls.key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve() -> None:
        with listener:
            try:
                conn, _ = listener.accept()
                with context.wrap_socket(conn, server_side=True) as secure:
                    secure.sendall(b"ok")
            except OSError:  # the client refused the certificate, or never came
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(timeout=5)


def handshake(port: int, context: ssl.SSLContext, server_hostname: str) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as secure,
    ):
        return secure.recv(2)


def test_files_are_created_with_private_modes(tmp_path: Path) -> None:
    """The folder is 0700, the private keys 0600, and all five files exist."""
    folder = tmp_path / "data" / "tls"
    tls = ensure_local_tls(folder, [])
    assert all((folder / name).is_file() for name in FILES)
    assert mode(folder) == 0o700
    assert mode(folder / "ca-key.pem") == mode(tls.key) == 0o600
    assert not [path.name for path in folder.iterdir() if path.name not in FILES]


def test_ca_is_a_critical_ca_named_after_the_machine(tmp_path: Path) -> None:
    """The CA has critical basicConstraints CA:true and keyUsage keyCertSign+cRLSign, and names the host."""
    ca = x509.load_pem_x509_certificate(ensure_local_tls(tmp_path, []).ca_cert.read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert (constraints.critical, constraints.value.ca) == (True, True)
    assert (usage.critical, usage.value.key_cert_sign, usage.value.crl_sign) == (True, True, True)
    key = ca.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    common_name = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == f"presenced local CA ({socket.gethostname()[:40]})"


def test_second_call_reuses_the_ca_and_server_certificate(tmp_path: Path) -> None:
    """A second call with the same hosts leaves every file byte for byte as it was."""
    ensure_local_tls(tmp_path, ["127.0.0.1"])
    before = {name: (tmp_path / name).read_bytes() for name in FILES}
    ensure_local_tls(tmp_path, ["127.0.0.1"])
    assert {name: (tmp_path / name).read_bytes() for name in FILES} == before


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])
def test_handshake_succeeds_with_the_ca(tmp_path: Path, server_hostname: str) -> None:
    """A client trusting ca.pem completes a strict, hostname-checked handshake with the server certificate."""
    tls = ensure_local_tls(tmp_path, [])
    context = ssl.create_default_context(cafile=tls.ca_cert)
    context.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default
    with serving(tls) as port:
        assert handshake(port, context, server_hostname) == b"ok"


def test_handshake_fails_without_the_ca(tmp_path: Path) -> None:
    """A client trusting only the usual roots refuses the server certificate."""
    tls = ensure_local_tls(tmp_path, [])
    with serving(tls) as port, pytest.raises(ssl.SSLCertVerificationError):
        handshake(port, ssl.create_default_context(), "localhost")


def test_new_host_reissues_the_server_certificate_from_the_same_ca(tmp_path: Path) -> None:
    """Asking for a host the certificate lacks reissues it with that host, under the same CA."""
    tls = ensure_local_tls(tmp_path, ["localhost"])
    ca, cert = tls.ca_cert.read_bytes(), tls.cert.read_bytes()
    ensure_local_tls(tmp_path, ["presence.example.test", "192.0.2.7"])
    assert tls.ca_cert.read_bytes() == ca
    assert tls.cert.read_bytes() != cert
    names = sans(tls)
    assert x509.DNSName("presence.example.test") in names
    assert x509.IPAddress(ipaddress.ip_address("192.0.2.7")) in names
    server_cert(tls).verify_directly_issued_by(x509.load_pem_x509_certificate(ca))


def test_wildcard_bind_names_the_machine_instead(tmp_path: Path) -> None:
    """Binding 0.0.0.0, :: or nothing adds the machine's host name, never the wildcard address."""
    tls = ensure_local_tls(tmp_path, ["0.0.0.0", "::", ""])
    names = sans(tls)
    assert x509.DNSName(socket.gethostname().lower()) in names
    assert x509.IPAddress(ipaddress.ip_address("0.0.0.0")) not in names
    assert x509.IPAddress(ipaddress.ip_address("::")) not in names
    assert x509.IPAddress(ipaddress.ip_address("::1")) in names


@pytest.mark.parametrize(
    ("starts", "ends"),
    [(timedelta(days=-400), timedelta(days=-1)), (timedelta(days=-1), timedelta(days=10))],
    ids=["expired", "near-expiry"],
)
def test_stale_server_certificate_is_reissued(tmp_path: Path, starts: timedelta, ends: timedelta) -> None:
    """A server certificate that has expired, or expires within 30 days, is replaced by a fresh one."""
    tls = ensure_local_tls(tmp_path, [])
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key((tmp_path / "ca-key.pem").read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = serialization.load_pem_private_key(tls.key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    now = datetime.now(UTC)
    short = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "short")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + starts)
        .not_valid_after(now + ends)
        .add_extension(x509.SubjectAlternativeName(sans(tls)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tls.cert.write_bytes(short.public_bytes(serialization.Encoding.PEM))
    ensure_local_tls(tmp_path, [])
    assert server_cert(tls).not_valid_after_utc > now + timedelta(days=390)


def test_unparseable_server_certificate_is_reissued(tmp_path: Path) -> None:
    """A server.pem that is not a certificate is replaced by a valid one."""
    tls = ensure_local_tls(tmp_path, [])
    tls.cert.write_text("not a certificate\n")
    ensure_local_tls(tmp_path, [])
    assert server_cert(tls).not_valid_after_utc > datetime.now(UTC) + timedelta(days=390)


def test_bundle_holds_the_system_roots_then_the_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bundle.pem is the system's trusted roots (here from SSL_CERT_FILE) followed by the CA."""
    roots = tmp_path / "roots.pem"
    roots.write_bytes(ensure_local_tls(tmp_path / "other", []).ca_cert.read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(roots))
    tls = ensure_local_tls(tmp_path / "tls", [])
    assert tls.bundle.read_bytes() == roots.read_bytes() + tls.ca_cert.read_bytes()


def test_bundle_is_not_built_from_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When SSL_CERT_FILE already names the bundle, a new CA's bundle does not keep the old CA."""
    tls = ensure_local_tls(tmp_path, [])
    old_ca = tls.ca_cert.read_bytes()
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.bundle))
    tls.ca_cert.unlink()
    ensure_local_tls(tmp_path, [])
    bundle = tls.bundle.read_bytes()
    assert bundle.endswith(tls.ca_cert.read_bytes())
    assert old_ca not in bundle


def test_missing_bundle_is_written_again(tmp_path: Path) -> None:
    """A deleted bundle.pem is written again, ending with the same CA."""
    tls = ensure_local_tls(tmp_path, [])
    tls.bundle.unlink()
    ensure_local_tls(tmp_path, [])
    assert tls.bundle.read_bytes().endswith(tls.ca_cert.read_bytes())


def test_unwritable_folder_raises_configuration_error(tmp_path: Path) -> None:
    """A folder that cannot be made (its parent is a file, which stops root too) is a one-line ConfigurationError."""
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigurationError) as raised:
        ensure_local_tls(tmp_path / "file" / "tls", [])
    assert "\n" not in str(raised.value)


def test_trust_instructions_name_the_bundle_and_the_ca(tmp_path: Path) -> None:
    """The instructions export the bundle for Python, the CA for Node.js, and say how browsers import it."""
    tls = ensure_local_tls(tmp_path, [])
    lines = trust_instructions(tls)
    text = "\n".join(lines)
    assert f"export REQUESTS_CA_BUNDLE={tls.bundle}" in text
    assert f"export SSL_CERT_FILE={tls.bundle}" in text
    assert f"export NODE_EXTRA_CA_CERTS={tls.ca_cert}" in text
    assert f"-i {tls.ca_cert}" in text
