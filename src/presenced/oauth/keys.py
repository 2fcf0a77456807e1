"""The server's token-signing keys, kept in ``<data dir>/keys``.

Keys are RSA 2048, each with its RFC 7638 thumbprint as ``kid``, one PEM file
each, named so that they sort oldest first. Three are published in the JWKS:
the previous key (tokens it signed may still be alive), the current key (which
signs) and the next key (published ahead, so verifiers already know it when it
starts signing). ``rotate`` adds a new next key, which makes the old next key
current, and retires the oldest: tokens it signed are refused from then on.

Every process re-reads the folder when it changes (checked at most once a
second) and when a token names a key it does not know, so a rotation made by
``presenced keys rotate`` reaches running servers without a restart.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, RSAKey

from presenced.errors import ConfigurationError

_PARAMETERS: dict[str, Any] = {"use": "sig", "alg": "RS256"}
#: How many keys are published: previous, current and next.
PUBLISHED = 3
_RECHECK_SECONDS = 1.0


class SigningKeys:
    def __init__(self, keys: list[RSAKey], folder: Path | None = None) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.folder = folder
        self._install(keys)
        self._checked = time.monotonic()
        self._stamp = self._folder_stamp()

    def _install(self, keys: list[RSAKey]) -> None:
        self.keys = keys[-PUBLISHED:]
        self.key_set = KeySet(list[Any](self.keys))

    @property
    def current(self) -> RSAKey:
        """The key that signs new tokens: the newest but one (the newest is the next key)."""
        return self.keys[-2] if len(self.keys) >= 2 else self.keys[-1]

    @property
    def next(self) -> RSAKey:
        return self.keys[-1]

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWKS document."""
        self.refresh()
        return {"keys": [key.as_dict(private=False) for key in self.keys]}

    def knows(self, kid: str | None) -> bool:
        return any(key.kid == kid for key in self.keys)

    def refresh(self, force: bool = False) -> None:
        """Re-read the folder if it changed since the last look (at most once a second unless ``force``)."""
        if self.folder is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < _RECHECK_SECONDS:
            return
        self._checked = now
        stamp = self._folder_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            keys = [_load(path) for path in _key_files(self.folder)]
        except (OSError, ValueError):
            # A key retired (deleted) while being read: keep the keys we have; the next look catches up.
            self._stamp = ()
            return
        if keys:
            self._install(keys)

    def _folder_stamp(self) -> tuple[str, ...]:
        return tuple(p.name for p in _key_files(self.folder)) if self.folder is not None else ()

    @classmethod
    def load_or_create(cls, data_dir: Path) -> SigningKeys:
        """Load the keys of ``data_dir``, creating a current and a next key if there are none."""
        folder = data_dir / "keys"
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            files = _key_files(folder)
            if not files:
                add_key(folder)
                add_key(folder)
                files = _key_files(folder)
            return cls([_load(path) for path in files], folder)
        except OSError as exc:
            raise ConfigurationError(f"cannot use the data directory {data_dir}: {exc.strerror}") from exc


def rotate(data_dir: Path) -> tuple[str, str]:
    """Add a new next key and retire the keys that are no longer published; the (current, next) kids."""
    folder = data_dir / "keys"
    keys = SigningKeys.load_or_create(data_dir)
    add_key(folder)
    files = _key_files(folder)
    for old in files[:-PUBLISHED]:
        old.unlink()
    keys = SigningKeys([_load(path) for path in _key_files(folder)], folder)
    return str(keys.current.kid), str(keys.next.kid)


def add_key(folder: Path) -> Path:
    """Generate a new key in ``folder``; it becomes the next key."""
    key = RSAKey.generate_key(2048, private=True)
    kid = key.thumbprint()
    path = folder / f"{time.time_ns():020d}-{kid}.pem"
    # Written under another name, then renamed: a process re-reading the folder never sees half a key.
    partial = folder / f".{path.name}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.as_pem(private=True))
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return path


def _key_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.pem"))


def _load(path: Path) -> RSAKey:
    key = RSAKey.import_key(path.read_bytes())
    parameters: Any = {"kid": key.thumbprint(), **_PARAMETERS}
    return RSAKey.import_key(path.read_bytes(), parameters)


# ---- backups: the key files as they are, to copy out and back in


def key_files(data_dir: Path) -> list[Path]:
    """The key files of ``data_dir``, oldest first (none if it has no ``keys`` folder)."""
    folder = data_dir / "keys"
    return _key_files(folder) if folder.is_dir() else []


def is_key_file(name: str, pem: bytes) -> bool:
    """Whether ``name`` and ``pem`` are a key file as ``add_key`` writes one: ``*.pem``, a private RSA key."""
    if not name.endswith(".pem") or name.startswith(".") or "/" in name or "\\" in name:
        return False
    try:
        return RSAKey.import_key(pem).is_private
    except (ValueError, TypeError):
        return False


def install_keys(data_dir: Path, files: dict[str, bytes]) -> None:
    """Write key files (name → PEM, as ``key_files`` holds them) into ``data_dir``'s keys folder, each
    readable by its owner only and complete before it appears, as ``add_key`` writes one."""
    folder = data_dir / "keys"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, pem in files.items():
        partial = folder / f".{name}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, folder / name)
