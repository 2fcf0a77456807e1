"""The server's token-signing keys, kept in the data directory.

Every key file in ``<data dir>/keys`` is accepted for verification, so a new
key can be added (rotation) while tokens signed with the old one stay valid;
the newest key signs. Keys are RSA 2048, each with its RFC 7638 thumbprint as
``kid``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, RSAKey

from presenced.errors import ConfigurationError

_PARAMETERS: dict[str, Any] = {"use": "sig", "alg": "RS256"}


class SigningKeys:
    def __init__(self, keys: list[RSAKey]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.keys = keys
        self.key_set = KeySet(list[Any](keys))

    @property
    def current(self) -> RSAKey:
        """The key that signs new tokens: the newest."""
        return self.keys[-1]

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWKS document."""
        return {"keys": [key.as_dict(private=False) for key in self.keys]}

    @classmethod
    def load_or_create(cls, data_dir: Path) -> SigningKeys:
        """Load the keys of ``data_dir``, creating the first one if there is none."""
        folder = data_dir / "keys"
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            files = sorted(folder.glob("*.pem"))
            if not files:
                files = [add_key(folder)]
            return cls([_load(path) for path in files])
        except OSError as exc:
            raise ConfigurationError(f"cannot use the data directory {data_dir}: {exc.strerror}") from exc


def add_key(folder: Path) -> Path:
    """Generate a new key in ``folder``; it becomes the signing key."""
    key = RSAKey.generate_key(2048, private=True)
    kid = key.thumbprint()
    path = folder / f"{time.time_ns():020d}-{kid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.as_pem(private=True))
    return path


def _load(path: Path) -> RSAKey:
    key = RSAKey.import_key(path.read_bytes())
    parameters: Any = {"kid": key.thumbprint(), **_PARAMETERS}
    return RSAKey.import_key(path.read_bytes(), parameters)
