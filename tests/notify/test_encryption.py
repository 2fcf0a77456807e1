"""Rich-notification encryption as Graph does it (spec Part B §4.4-§4.5), checked from the receiver's side."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from presenced.errors import BadRequest
from presenced.notify.encryption import (
    EncryptionCertificate,
    decrypt_resource,
    encrypt_resource,
    load_encryption_certificate,
)
from tests.notify.certificates import base64_der, self_signed

USER_ID = "66825e03-7ef5-42da-9069-724602c31f6b"
PRESENCE_JSON = json.dumps(
    {
        "@odata.id": f"users/{USER_ID}/presence",
        "@odata.type": "#microsoft.graph.presence",
        "id": USER_ID,
        "availability": "Busy",
        "activity": "InACall",
    }
).encode("utf-8")
CERTIFICATE_ID = "my-certificate-id"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def certificate(private_key: rsa.RSAPrivateKey) -> x509.Certificate:
    return self_signed(private_key)


@pytest.fixture(scope="module")
def loaded(certificate: x509.Certificate) -> EncryptionCertificate:
    return load_encryption_certificate(base64_der(certificate))


def test_receiver_decrypts_with_only_its_private_key_following_microsofts_steps(
    loaded: EncryptionCertificate, private_key: rsa.RSAPrivateKey
) -> None:
    """A subscriber holding only its private key recovers the presence JSON by Microsoft's documented steps."""
    content = encrypt_resource(PRESENCE_JSON, loaded, CERTIFICATE_ID)

    # 1. Unwrap the symmetric key: RSA-OAEP with SHA-1 / MGF1-SHA-1.
    oaep = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    key = private_key.decrypt(base64.b64decode(content["dataKey"]), oaep)
    # 2. Check the signature: HMAC-SHA256 with the key over the encrypted bytes, base64.
    encrypted = base64.b64decode(content["data"])
    signature = base64.b64encode(hmac.new(key, encrypted, hashlib.sha256).digest()).decode("ascii")
    assert signature == content["dataSignature"]
    # 3. Decrypt: AES-CBC, IV = first 16 bytes of the key, PKCS7 padding.
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(encrypted) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    plain = unpadder.update(padded) + unpadder.finalize()

    assert json.loads(plain) == json.loads(PRESENCE_JSON)


def test_symmetric_key_is_32_bytes_for_aes_256(loaded: EncryptionCertificate, private_key: rsa.RSAPrivateKey) -> None:
    """The wrapped symmetric key is 32 bytes, so the data is AES-256 encrypted."""
    content = encrypt_resource(PRESENCE_JSON, loaded, CERTIFICATE_ID)
    oaep = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    assert len(private_key.decrypt(base64.b64decode(content["dataKey"]), oaep)) == 32


def test_encrypted_content_has_graphs_fields_and_names_the_certificate(loaded: EncryptionCertificate) -> None:
    """The object has exactly Graph's five fields and echoes the certificate id and thumbprint."""
    content = encrypt_resource(PRESENCE_JSON, loaded, CERTIFICATE_ID)
    assert set(content) == {
        "data",
        "dataSignature",
        "dataKey",
        "encryptionCertificateId",
        "encryptionCertificateThumbprint",
    }
    assert content["encryptionCertificateId"] == CERTIFICATE_ID
    assert content["encryptionCertificateThumbprint"] == loaded.thumbprint


def test_decrypt_resource_round_trips(loaded: EncryptionCertificate, private_key: rsa.RSAPrivateKey) -> None:
    """decrypt_resource returns exactly the bytes encrypt_resource was given."""
    assert decrypt_resource(encrypt_resource(PRESENCE_JSON, loaded, CERTIFICATE_ID), private_key) == PRESENCE_JSON


def test_tampered_data_fails_the_signature_check(loaded: EncryptionCertificate, private_key: rsa.RSAPrivateKey) -> None:
    """Changing one bit of the encrypted data makes decryption refuse it on the signature."""
    content = encrypt_resource(PRESENCE_JSON, loaded, CERTIFICATE_ID)
    encrypted = bytearray(base64.b64decode(content["data"]))
    encrypted[0] ^= 0x01
    tampered = {**content, "data": base64.b64encode(bytes(encrypted)).decode("ascii")}
    with pytest.raises(ValueError, match="dataSignature"):
        decrypt_resource(tampered, private_key)


def test_another_private_key_cannot_decrypt(loaded: EncryptionCertificate) -> None:
    """A private key other than the certificate's cannot unwrap the symmetric key."""
    content = encrypt_resource(PRESENCE_JSON, loaded, CERTIFICATE_ID)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ValueError):  # noqa: PT011 - cryptography's message is not ours to pin
        decrypt_resource(content, stranger)


def test_each_call_uses_a_fresh_key(loaded: EncryptionCertificate) -> None:
    """Two encryptions of the same data differ in key and ciphertext."""
    first = encrypt_resource(PRESENCE_JSON, loaded, CERTIFICATE_ID)
    second = encrypt_resource(PRESENCE_JSON, loaded, CERTIFICATE_ID)
    assert first["dataKey"] != second["dataKey"]
    assert first["data"] != second["data"]


def test_thumbprint_is_upper_case_hex_sha1_of_the_der(
    loaded: EncryptionCertificate, certificate: x509.Certificate
) -> None:
    """The thumbprint is the SHA-1 of the DER certificate as upper-case hex without separators."""
    der = certificate.public_bytes(Encoding.DER)
    assert loaded.thumbprint == hashlib.sha1(der).hexdigest().upper()
    assert loaded.der == der


def test_pem_certificate_is_accepted(certificate: x509.Certificate, loaded: EncryptionCertificate) -> None:
    """A PEM certificate loads to the same certificate as its base64 DER."""
    pem = certificate.public_bytes(Encoding.PEM).decode("ascii")
    assert load_encryption_certificate(pem) == loaded


def test_line_wrapped_base64_is_accepted(certificate: x509.Certificate, loaded: EncryptionCertificate) -> None:
    """Base64 broken into lines, as openssl writes it, is accepted like .NET's base64 parser does."""
    text = base64_der(certificate)
    wrapped = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    assert load_encryption_certificate(wrapped) == loaded


def test_rsa_4096_is_accepted() -> None:
    """An RSA 4096 certificate, the documented upper bound, is accepted."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    assert load_encryption_certificate(base64_der(self_signed(key))).public_key.key_size == 4096


def test_ec_key_is_refused() -> None:
    """A certificate with an EC key is refused, naming encryptionCertificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(BadRequest, match="encryptionCertificate"):
        load_encryption_certificate(base64_der(self_signed(key)))


@pytest.mark.parametrize("bits", [1024, 2040, 4104])
def test_rsa_key_size_outside_2048_to_4096_is_refused(bits: int) -> None:
    """An RSA key below 2048 or above 4096 bits is refused, naming encryptionCertificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    with pytest.raises(BadRequest, match="encryptionCertificate"):
        load_encryption_certificate(base64_der(self_signed(key)))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64 at all!",
        base64.b64encode(b"valid base64, but not a certificate").decode("ascii"),
    ],
)
def test_garbage_is_refused(text: str) -> None:
    """Empty input, invalid base64 and base64 of a non-certificate are refused, naming encryptionCertificate."""
    with pytest.raises(BadRequest, match="encryptionCertificate"):
        load_encryption_certificate(text)


def test_pem_private_key_is_refused(private_key: rsa.RSAPrivateKey) -> None:
    """A PEM private key given instead of the certificate is refused, naming encryptionCertificate."""
    pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")
    with pytest.raises(BadRequest, match="encryptionCertificate"):
        load_encryption_certificate(pem)
