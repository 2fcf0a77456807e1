"""Passwords: argon2id, salted and slow, as people choose them."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: argon2id at its lowest cost: for passwords that are printed for anyone to read.
_CHEAPEST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Argon2Hasher:
    """Implements ``SecretHasher`` with argon2id at the library's recommended cost."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        self._decoy: str | None = None

    def hash_password(self, password: str) -> str:
        return self._hasher.hash(password)

    def hash_public_password(self, password: str) -> str:
        # Verification reads the cost from the hash, so these check as cheaply as they are made.
        return _CHEAPEST.hash(password)

    def verify_password(self, password_hash: str | None, password: str) -> bool:
        if self._decoy is None:
            # Verifying against this when the account does not exist takes as long as a
            # real check, so timing does not tell which accounts exist.
            self._decoy = self._hasher.hash(secrets.token_urlsafe(16))
        try:
            return self._hasher.verify(password_hash or self._decoy, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False
