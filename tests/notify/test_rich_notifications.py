"""Rich notifications end to end (spec Part B §4.4-§4.5): encrypted presence and validation tokens, checked as a
subscriber would, with only its own private key, the server's published JWKS and standard libraries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding

from presenced.bootstrap import Runtime
from presenced.services.demo import DemoTenant, seed_demo
from tests.notify.certificates import self_signed
from tests.notify.conftest import Receiver
from tests.notify.subscribing import deliver, subscribe
from tests.support import APP_ID, BASE_URL, Tokens, bearer

#: Microsoft Graph Change Tracking: the caller identity of validation tokens.
CHANGE_TRACKING_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
CERTIFICATE_ID = "contoso-webhook-2026"
SESSION_ID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def receiver_key() -> rsa.RSAPrivateKey:
    """The subscriber's private key: the only secret the receiver has for decrypting."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def _set_presence_and_deliver(
    hooked: Runtime, api: httpx.AsyncClient, tokens: Tokens, user_id: str, availability: str, activity: str
) -> None:
    body = {"sessionId": SESSION_ID, "availability": availability, "activity": activity}
    response = await api.post(
        f"/v1.0/users/{user_id}/presence/setPresence",
        json=body,
        headers=bearer(tokens.app("Presence.ReadWrite.All")),
    )
    assert response.status_code == 200, response.text
    await deliver(hooked)


async def _rich_subscription(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver, key: rsa.RSAPrivateKey
) -> tuple[DemoTenant, Tokens, bytes]:
    """Seed the demo and subscribe, with resource data, to the user with nothing set; returns the certificate DER."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    tokens = Tokens(hooked, demo.tenant.id)
    der = self_signed(key).public_bytes(Encoding.DER)
    created = await subscribe(
        api,
        tokens.app("Presence.Read.All"),
        receiver,
        f"communications/presences/{demo.users[-1].id}",
        includeResourceData=True,
        encryptionCertificate=base64.b64encode(der).decode("ascii"),
        encryptionCertificateId=CERTIFICATE_ID,
    )
    assert created.status_code == 201, created.text
    return demo, tokens, der


def _decrypt(content: dict[str, str], key: rsa.RSAPrivateKey) -> bytes:
    """Microsoft's documented receiver steps, with nothing of presenced's."""
    oaep = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    symmetric = key.decrypt(base64.b64decode(content["dataKey"]), oaep)
    data = base64.b64decode(content["data"])
    expected = hmac.new(symmetric, data, hashlib.sha256).digest()
    assert hmac.compare_digest(expected, base64.b64decode(content["dataSignature"]))
    decryptor = Cipher(algorithms.AES(symmetric), modes.CBC(symmetric[:16])).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


async def test_the_receiver_decrypts_the_new_presence_with_only_its_private_key(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver, receiver_key: rsa.RSAPrivateKey
) -> None:
    """A rich notification's encryptedContent decrypts, by Microsoft's steps, to the user's new presence."""
    demo, tokens, der = await _rich_subscription(hooked, api, receiver, receiver_key)
    user = demo.users[-1]
    await _set_presence_and_deliver(hooked, api, tokens, user.id, "Busy", "InACall")
    assert len(receiver.received) == 1
    content = receiver.received[0]["encryptedContent"]
    assert content["encryptionCertificateId"] == CERTIFICATE_ID
    assert content["encryptionCertificateThumbprint"] == hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()
    presence = json.loads(_decrypt(content, receiver_key))
    assert presence["@odata.type"] == "#microsoft.graph.presence"
    assert presence["id"] == user.id
    assert (presence["availability"], presence["activity"]) == ("Busy", "InACall")


async def test_validation_tokens_verify_with_the_published_keys(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver, receiver_key: rsa.RSAPrivateKey
) -> None:
    """Each validation token verifies with the server's JWKS, is for the subscribing app, from Change Tracking."""
    demo, tokens, _ = await _rich_subscription(hooked, api, receiver, receiver_key)
    await _set_presence_and_deliver(hooked, api, tokens, demo.users[-1].id, "Away", "Away")
    assert len(receiver.collections) == 1
    validation_tokens = receiver.collections[0]["validationTokens"]
    assert validation_tokens
    published = await api.get(f"/{demo.tenant.id}/discovery/v2.0/keys")
    assert published.status_code == 200
    key_set = jwt.PyJWKSet.from_dict(published.json())
    for token in validation_tokens:
        signing_key = key_set[jwt.get_unverified_header(token)["kid"]]
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256"],
            audience=APP_ID,
            issuer=f"{BASE_URL}/{demo.tenant.id}/v2.0",
        )
        assert claims["aud"] == APP_ID
        assert CHANGE_TRACKING_APP_ID in {claims.get("appid"), claims.get("azp")}


async def test_a_basic_subscription_gets_neither_content_nor_tokens(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Without includeResourceData the notification has no encryptedContent and the collection no validationTokens."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    tokens = Tokens(hooked, demo.tenant.id)
    user = demo.users[-1]
    created = await subscribe(api, tokens.app("Presence.Read.All"), receiver, f"communications/presences/{user.id}")
    assert created.status_code == 201, created.text
    await _set_presence_and_deliver(hooked, api, tokens, user.id, "Busy", "InACall")
    assert len(receiver.collections) == 1
    body = receiver.collections[0]
    assert "validationTokens" not in body
    assert len(body["value"]) == 1
    assert "encryptedContent" not in body["value"][0]


async def test_unusable_certificates_and_a_missing_certificate_id_create_nothing(
    hooked: Runtime, api: httpx.AsyncClient, receiver: Receiver, receiver_key: rsa.RSAPrivateKey
) -> None:
    """EC P-256 and RSA 1024 certificates, and a missing encryptionCertificateId, are 400s and create nothing."""
    demo = await seed_demo(hooked.store, hooked.writer, hooked.clock)
    token = Tokens(hooked, demo.tenant.id).app("Presence.Read.All")
    resource = f"communications/presences/{demo.users[-1].id}"

    def encoded(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
        return base64.b64encode(self_signed(key).public_bytes(Encoding.DER)).decode("ascii")

    refused = {
        "EC P-256": ec.generate_private_key(ec.SECP256R1()),
        "RSA 1024": rsa.generate_private_key(public_exponent=65537, key_size=1024),
    }
    for label, key in refused.items():
        response = await subscribe(
            api,
            token,
            receiver,
            resource,
            includeResourceData=True,
            encryptionCertificate=encoded(key),
            encryptionCertificateId=CERTIFICATE_ID,
        )
        assert response.status_code == 400, (label, response.text)
        assert "encryptionCertificate" in response.json()["error"]["message"], (label, response.text)
    missing_id = await subscribe(
        api, token, receiver, resource, includeResourceData=True, encryptionCertificate=encoded(receiver_key)
    )
    assert missing_id.status_code == 400, missing_id.text
    assert "encryptionCertificateId" in missing_id.json()["error"]["message"]
    assert (await api.get("/v1.0/subscriptions", headers=bearer(token))).json()["value"] == []
