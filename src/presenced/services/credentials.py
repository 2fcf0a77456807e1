"""Credentials that are not passwords: client secrets, codes, tokens; stored as SHA-256, compared in constant time.

They are long random values, so a fast hash is enough; passwords, which people
choose, are hashed with argon2 (``presenced.oauth.passwords``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

#: Characters of device-flow user codes: no 0/O or 1/I/L, which people misread.
_USER_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
#: Characters of client secrets, as Entra's (letters, digits, ``~._-``).
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-"


def digest(value: str) -> str:
    """SHA-256 (hex) of a high-entropy value: how codes, tokens and client secrets are stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def same_digest(value: str, expected_digest: str) -> bool:
    """Whether ``value`` hashes to ``expected_digest``, compared in constant time."""
    return hmac.compare_digest(digest(value), expected_digest)


def new_client_secret() -> str:
    """40 characters, like the secrets Entra shows once."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def new_opaque(size: int = 32) -> str:
    """A random URL-safe value: authorization codes, refresh tokens, device codes, session ids."""
    return secrets.token_urlsafe(size)


def new_user_code() -> str:
    """Nine characters for a person to type, e.g. ``FZ7K3QW9B``."""
    return "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))


def pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    """RFC 7636: S256 or plain, compared in constant time."""
    if method == "S256":
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    else:
        computed = verifier
    return hmac.compare_digest(computed.encode(), challenge.encode())
