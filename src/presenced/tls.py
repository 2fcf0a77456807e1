"""A local certificate authority and server certificate for HTTPS during development.

The official clients (MSAL, azure-identity, msgraph-sdk, the JavaScript Graph
client) insist on an HTTPS authority, so even a laptop install needs a
certificate they accept. A self-signed server certificate would have to be
trusted again after every reissue; instead a long-lived local CA is made once
in ``<data dir>/tls``, trusted once, and signs short-lived server certificates
that are reissued silently when they near expiry or the served hosts change.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import socket
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from presenced.clock import real_now
from presenced.errors import ConfigurationError

CA_LIFETIME = timedelta(days=3650)
# Browsers reject server certificates valid for more than 398 days.
SERVER_LIFETIME = timedelta(days=397)
RENEW_BEFORE = timedelta(days=30)
# Backdated so that a client whose clock runs a little behind still accepts a fresh certificate.
BACKDATE = timedelta(hours=1)
SYSTEM_ROOTS = Path("/etc/ssl/certs/ca-certificates.crt")
_ALWAYS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class LocalTls:
    """Where the files are: serve with ``cert``/``key``; clients trust ``ca_cert`` or use ``bundle``."""

    ca_cert: Path
    cert: Path
    key: Path
    bundle: Path


def ensure_local_tls(folder: Path, hosts: Sequence[str]) -> LocalTls:
    """Make (once) the CA, and (when needed) a server certificate covering ``hosts``, in ``folder``."""
    tls = LocalTls(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem", folder / "bundle.pem")
    ca_key_path = folder / "ca-key.pem"
    now = real_now()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.chmod(0o700)
        created = not (tls.ca_cert.exists() and ca_key_path.exists())
        if created:
            ca_key, ca_cert = _new_ca(now)
            _write(ca_key_path, _key_pem(ca_key), 0o600)
            _write(tls.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
        else:
            ca_key, ca_cert = _load_ca(tls.ca_cert, ca_key_path)
        wanted = _names(hosts)
        if created or not _server_is_current(tls, ca_cert, wanted, now):
            key, cert = _new_server(ca_key, ca_cert, wanted, now)
            # Key first: a crash in between leaves a mismatched pair, which the next start reissues.
            _write(tls.key, _key_pem(key), 0o600)
            _write(tls.cert, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, ca_cert)))
        if created or not tls.bundle.exists():
            _write(tls.bundle, _system_roots(tls.bundle) + ca_cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise ConfigurationError(f"cannot use the TLS folder {folder}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigurationError(f"cannot set up local TLS in {folder}: {exc}") from exc
    return tls


def trust_instructions(tls: LocalTls) -> list[str]:
    """How a person makes clients trust the local CA (the bundle keeps public HTTPS working too)."""
    bundle, ca = shlex.quote(str(tls.bundle)), shlex.quote(str(tls.ca_cert))
    return [
        f"presenced's local certificate authority is {tls.ca_cert}; to trust it:",
        f"  curl:                                     curl --cacert {ca} ..., or export CURL_CA_BUNDLE={bundle}",
        f"  Python (requests, MSAL, azure-identity): export REQUESTS_CA_BUNDLE={bundle}",
        f"  Python (httpx, msgraph-sdk):              export SSL_CERT_FILE={bundle}",
        f"  Node.js (Graph JavaScript client):        export NODE_EXTRA_CA_CERTS={ca}",
        f"  Browsers: import {tls.ca_cert} as a trusted authority (Chromium: Settings > Privacy and security"
        f" > Security > Manage certificates > Authorities), or: certutil -d sql:$HOME/.pki/nssdb -A -t C,,"
        f" -n presenced -i {ca}",
    ]


def _names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    """The SANs for ``hosts``: IPs as IPAddress, names as DNSName; a wildcard bind means this machine's name."""
    names: list[x509.GeneralName] = []
    for host in (*_ALWAYS, *hosts):
        host = host.strip().strip("[]").lower()
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if host in ("", "*") or (ip is not None and ip.is_unspecified):
            host, ip = socket.gethostname().lower(), None
        name: x509.GeneralName = x509.IPAddress(ip) if ip is not None else x509.DNSName(host.encode("idna").decode())
        if name not in names:
            names.append(name)
    return names


def _server_is_current(tls: LocalTls, ca_cert: x509.Certificate, wanted: list[x509.GeneralName], now: datetime) -> bool:
    """Whether the server certificate exists, parses, comes from this CA, matches its key, is not
    about to expire and covers every wanted name."""
    try:
        cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
        key = serialization.load_pem_private_key(tls.key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (FileNotFoundError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    fresh = cert.not_valid_after_utc - now > RENEW_BEFORE
    return fresh and cert.public_key() == key.public_key() and set(wanted) <= set(names)


def _load_ca(cert_path: Path, key_path: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.public_key() != cert.public_key():
        raise ValueError(f"{key_path.name} does not match {cert_path.name}; delete both to make a new CA")
    return key, cert


def _new_ca(now: datetime) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # A common name may hold at most 64 characters; the host name only tells CAs of two machines apart.
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"presenced local CA ({socket.gethostname()[:40]})")])
    usage = _key_usage(key_cert_sign=True, crl_sign=True)
    cert = (
        _builder(name, name, key, now, CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _new_server(
    ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate, names: list[x509.GeneralName], now: datetime
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "presenced")])
    cert = (
        _builder(subject, ca_cert.subject, key, now, SERVER_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey, now: datetime, lifetime: timedelta
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _key_usage(**allowed: bool) -> x509.KeyUsage:
    flags = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement")
    rest = ("key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{flag: allowed.get(flag, False) for flag in (*flags, *rest)})


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _system_roots(bundle: Path) -> bytes:
    """The system's trusted roots, so that a client pointed at the bundle still reaches public HTTPS.

    SSL_CERT_FILE may already name our own bundle; reading it back would pile up old CAs.
    """
    cafile = ssl.get_default_verify_paths().cafile
    for candidate in (Path(cafile) if cafile else None, SYSTEM_ROOTS):
        if candidate is not None and candidate.is_file() and candidate.resolve() != bundle.resolve():
            roots = candidate.read_bytes()
            return roots if roots.endswith(b"\n") else roots + b"\n"
    return b""


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` atomically, so a reader (or a crash) never sees half a file."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
