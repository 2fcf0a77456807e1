"""Rich-notification encryption: the ``encryptedContent`` Graph puts in change notifications.

A subscriber that sets ``includeResourceData`` gives an X.509 certificate; every
notification then carries the resource encrypted the way Microsoft Graph does it
(docs/notifications.md, "Rich notifications"), so the decryption code from Microsoft's samples and SDKs
works unchanged against presenced:

1. a fresh random 32-byte symmetric key per notification item;
2. ``data``: AES-256-CBC with PKCS7 padding of the resource JSON, the IV being
   the first 16 bytes of that key;
3. ``dataSignature``: HMAC-SHA256 keyed with that key over the encrypted bytes;
4. ``dataKey``: the key wrapped with RSA-OAEP (SHA-1, MGF1-SHA-1) under the
   certificate's public key;
5. ``encryptionCertificateId`` and ``encryptionCertificateThumbprint`` so the
   subscriber can pick the private key to use.

``decrypt_resource`` is the receiver's side of the same recipe, written out so
that tests and documentation have one reference for it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding

from presenced.errors import BadRequest

__all__ = [
    "MAX_RSA_KEY_BITS",
    "MIN_RSA_KEY_BITS",
    "EncryptionCertificate",
    "decrypt_resource",
    "encrypt_resource",
    "load_encryption_certificate",
]

#: The RSA key sizes Graph accepts for ``encryptionCertificate`` (docs/notifications.md, "Rich notifications").
MIN_RSA_KEY_BITS = 2048
MAX_RSA_KEY_BITS = 4096

#: Graph's symmetric key is 32 bytes (AES-256); the IV is its first block.
_SYMMETRIC_KEY_BYTES = 32
_IV_BYTES = 16

_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class EncryptionCertificate:
    """A subscriber's certificate, checked once at subscription time and reused per notification.

    Equality is by the DER bytes: two loads of the same certificate are the same
    certificate, whatever key objects the library hands back.
    """

    der: bytes
    #: Upper-case hex SHA-1 of ``der``, without separators: the form Graph sends in
    #: ``encryptionCertificateThumbprint`` and Windows/.NET show as the thumbprint.
    thumbprint: str
    public_key: rsa.RSAPublicKey = field(compare=False, repr=False)


def _refuse(reason: str) -> BadRequest:
    return BadRequest(f"Invalid encryptionCertificate: {reason}.")


def _certificate_der(text: str) -> bytes:
    """The DER bytes of the certificate given as base64 DER (Graph's form) or as PEM (tolerated)."""
    stripped = text.strip()
    if not stripped:
        raise _refuse("it is empty")
    if "-----BEGIN" in stripped:
        match = _PEM_CERTIFICATE.search(stripped)
        if match is None:
            raise _refuse("the PEM block is not a CERTIFICATE (give the public certificate, never a private key)")
        try:
            pem_certificate = x509.load_pem_x509_certificate(match.group(0).encode("ascii"))
        except (ValueError, UnicodeEncodeError) as error:
            raise _refuse("the PEM block is not a readable X.509 certificate") from error
        return pem_certificate.public_bytes(Encoding.DER)
    # .NET's Convert.FromBase64String, which Graph's own parsing follows, ignores
    # whitespace, so line-wrapped base64 (as openssl writes it) is accepted too.
    try:
        return base64.b64decode(_WHITESPACE.sub("", stripped), validate=True)
    except (binascii.Error, ValueError) as error:
        raise _refuse("it is not base64") from error


def load_encryption_certificate(base64_der_or_pem: str) -> EncryptionCertificate:
    """Parse and check the ``encryptionCertificate`` of a subscription request.

    Graph expects base64 of the DER-encoded X.509 certificate; a PEM certificate is
    tolerated because it is what most tools write. The certificate must carry an
    RSA public key of 2048 to 4096 bits, because the symmetric key is wrapped with
    RSA-OAEP. Validity dates and issuer are not checked: Graph accepts self-signed
    certificates and uses the certificate only as a container for the key.

    Raises ``BadRequest`` (naming ``encryptionCertificate``) for anything else.
    """
    der = _certificate_der(base64_der_or_pem)
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as error:
        raise _refuse("it is not a DER-encoded X.509 certificate") from error
    try:
        public_key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as error:
        raise _refuse("its public key cannot be read") from error
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise _refuse("its public key must be RSA")
    if not MIN_RSA_KEY_BITS <= public_key.key_size <= MAX_RSA_KEY_BITS:
        raise _refuse(
            f"its RSA key has {public_key.key_size} bits; "
            f"between {MIN_RSA_KEY_BITS} and {MAX_RSA_KEY_BITS} are accepted"
        )
    canonical_der = certificate.public_bytes(Encoding.DER)
    thumbprint = hashlib.sha1(canonical_der, usedforsecurity=False).hexdigest().upper()
    return EncryptionCertificate(der=canonical_der, thumbprint=thumbprint, public_key=public_key)


def _oaep_sha1() -> OAEP:
    """RSA-OAEP with SHA-1 and MGF1-SHA-1: what Graph uses and its receivers' samples expect."""
    return OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def encrypt_resource(data: bytes, certificate: EncryptionCertificate, certificate_id: str) -> dict[str, str]:
    """Encrypt one notification's resource JSON into Graph's ``encryptedContent`` object.

    A fresh symmetric key is drawn for every call, so no two notifications share a
    key, and the same resource encrypted twice gives different output.
    """
    key = os.urandom(_SYMMETRIC_KEY_BYTES)
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:_IV_BYTES])).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    signature = hmac.new(key, encrypted, hashlib.sha256).digest()
    wrapped_key = certificate.public_key.encrypt(key, _oaep_sha1())
    return {
        "data": base64.b64encode(encrypted).decode("ascii"),
        "dataSignature": base64.b64encode(signature).decode("ascii"),
        "dataKey": base64.b64encode(wrapped_key).decode("ascii"),
        "encryptionCertificateId": certificate_id,
        "encryptionCertificateThumbprint": certificate.thumbprint,
    }


def decrypt_resource(content: dict[str, str], private_key: rsa.RSAPrivateKey) -> bytes:
    """Recover the resource JSON from an ``encryptedContent`` object, as a subscriber does.

    The steps are Microsoft's documented ones: unwrap ``dataKey`` with RSA-OAEP
    (SHA-1); check ``dataSignature`` (HMAC-SHA256 with that key over the encrypted
    bytes, compared in constant time) before decrypting anything; then AES-CBC
    decrypt ``data`` with IV = first 16 bytes of the key and remove PKCS7 padding.

    Raises ``ValueError`` for a missing field, bad base64, a key that does not
    unwrap, a signature that does not match, or bad padding.
    """
    try:
        wrapped_key = base64.b64decode(content["dataKey"], validate=True)
        encrypted = base64.b64decode(content["data"], validate=True)
        signature = base64.b64decode(content["dataSignature"], validate=True)
    except KeyError as error:
        raise ValueError(f"encryptedContent lacks {error.args[0]}") from error
    key = private_key.decrypt(wrapped_key, _oaep_sha1())
    if len(key) != _SYMMETRIC_KEY_BYTES:
        raise ValueError("the symmetric key is not 32 bytes")
    expected = hmac.new(key, encrypted, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise ValueError("dataSignature does not match data: the content was altered or the key is wrong")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:_IV_BYTES])).decryptor()
    padded = decryptor.update(encrypted) + decryptor.finalize()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    return unpadder.update(padded) + unpadder.finalize()
