"""Password hashes: argon2id at the recommended cost, except for passwords printed for anyone to read."""

from __future__ import annotations

from argon2 import PasswordHasher

from presenced.oauth.passwords import Argon2Hasher


def test_a_users_password_is_hashed_at_the_recommended_cost() -> None:
    """A password a person chose is stored with argon2id's recommended parameters, and checks."""
    hasher = Argon2Hasher()
    stored = hasher.hash_password("correct horse battery staple")
    recommended = PasswordHasher()
    assert stored.startswith(f"$argon2id$v=19$m={recommended.memory_cost},t={recommended.time_cost},")
    assert hasher.verify_password(stored, "correct horse battery staple")
    assert not hasher.verify_password(stored, "Correct horse battery staple")


def test_a_public_password_is_hashed_cheaply_and_checks_the_same_way() -> None:
    """The demo's passwords (printed at start-up) are cheap to hash and to check, and still checked."""
    hasher = Argon2Hasher()
    stored = hasher.hash_public_password("Adele-presence-demo")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hasher.verify_password(stored, "Adele-presence-demo")
    assert not hasher.verify_password(stored, "adele-presence-demo")
    assert not hasher.verify_password(None, "Adele-presence-demo")
