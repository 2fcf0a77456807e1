"""The server's token-signing keys: in ``<data dir>/keys``, or sealed in the database.

Keys are RSA 2048, each with its RFC 7638 thumbprint as ``kid``. Three are published in the JWKS:
the previous key (tokens it signed may still be alive), the current key (which signs) and the next
key (published ahead, so verifiers already know it when it starts signing). ``rotate`` adds a new
next key, which makes the old next key current, and retires the oldest: tokens it signed are
refused from then on.

In a folder (the default), each key is a PEM file, named so that they sort oldest first. Every
process re-reads the folder when it changes (checked at most once a second) and when a token names
a key it does not know, so a rotation made by ``presenced keys rotate`` reaches running servers
without a restart.

In the database (when PRESENCED_KEYS_SECRET or PRESENCED_KEYS_SECRET_FILE is set; docs/deployment.md,
"Signing keys"), processes on several machines share the keys without sharing a folder. Each key is
sealed with AES-256-GCM under a key derived from the secret by HKDF-SHA256, its ``kid`` bound as
associated data. The first process to start with the secret moves the folder's keys in (tokens they
signed stay valid), or makes two; every process reads the table again each second and when a token
names a key it does not know.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import KeySet, RSAKey

from presenced.config import KEYS_SECRET_LENGTH
from presenced.errors import ConfigurationError
from presenced.services.entities import SealedKey
from presenced.services.loops import repeat
from presenced.services.ports import KeyRows

log = logging.getLogger("presenced.keys")

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
        self._kids = frozenset(key.kid for key in self.keys)

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
        """Whether ``kid`` is published (asked for every cached token: a set lookup)."""
        return kid in self._kids

    @property
    def where(self) -> str:
        """Where the keys are kept, in words."""
        return f"the folder {self.folder}" if self.folder is not None else "memory"

    async def reload(self) -> None:
        """Read the keys again now: a token names a key this process does not know."""
        self.refresh(force=True)

    async def watch(self) -> None:
        """Follow the keys' store in the background (the folder is looked at on use instead: returns at once)."""

    async def rotate(self) -> tuple[str, str]:
        """Add a new next key and retire the oldest; the (current, next) kids."""
        return self.rotate_folder()

    def rotate_folder(self) -> tuple[str, str]:
        if self.folder is None:
            raise ConfigurationError("these keys are kept in memory only")
        add_key(self.folder)
        for old in _key_files(self.folder)[:-PUBLISHED]:
            old.unlink()
        self.refresh(force=True)
        return str(self.current.kid), str(self.next.kid)

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
    """Rotate the keys of ``data_dir``'s folder; the (current, next) kids."""
    return SigningKeys.load_or_create(data_dir).rotate_folder()


class KeySealer:
    """Seals keys for the database and opens them: AES-256-GCM, the key derived from the secret by HKDF-SHA256,
    a random 96-bit nonce per key (stored before the ciphertext) and the ``kid`` as associated data, so a
    sealed key moved to another row does not open."""

    def __init__(self, secret: str) -> None:
        if len(secret) < KEYS_SECRET_LENGTH:
            raise ConfigurationError(f"a keys secret must be at least {KEYS_SECRET_LENGTH} characters")
        derived = HKDF(hashes.SHA256(), 32, salt=None, info=b"presenced signing keys v1").derive(secret.encode())
        self._aead = AESGCM(derived)

    def seal(self, key: RSAKey) -> SealedKey:
        """``key`` sealed, at position 0 (the caller places it)."""
        kid = str(key.kid)
        nonce = os.urandom(12)
        return SealedKey(0, kid, nonce + self._aead.encrypt(nonce, key.as_pem(private=True), kid.encode()))

    def open(self, sealed: SealedKey) -> RSAKey:
        try:
            pem = self._aead.decrypt(sealed.sealed[:12], sealed.sealed[12:], sealed.kid.encode())
        except InvalidTag:
            raise ConfigurationError(
                "the signing keys in the database do not open with PRESENCED_KEYS_SECRET: it is not the secret "
                'they were sealed with (docs/deployment.md, "Signing keys")'
            ) from None
        return _key(pem)


class DatabaseKeys(SigningKeys):
    """The keys sealed in the database, shared by every process that uses it."""

    def __init__(self, keys: list[RSAKey], rows: KeyRows, sealer: KeySealer) -> None:
        super().__init__(keys)
        self._rows = rows
        self._sealer = sealer

    @property
    def where(self) -> str:
        return "the database"

    @classmethod
    async def open(
        cls, rows: KeyRows, sealer: KeySealer, folder: Path, stored: list[SealedKey] | None = None
    ) -> DatabaseKeys:
        """The database's keys (``stored``, when already read); when it has none yet, ``folder``'s keys moved in
        (or two new keys)."""
        if stored is None:
            stored = await rows.sealed_keys()
        if not stored:
            moved = _folder_keys(folder)
            first = moved or [_new_key(), _new_key()]
            placed = [_placed(sealer.seal(key), n) for n, key in enumerate(first, start=1)]
            if await rows.add_keys(placed, retire_before=1) and moved:
                log.info("moved the %d signing keys of %s into the database", len(first), folder)
            stored = await rows.sealed_keys()  # ours, or those of a process that stored its first keys first
        return cls([sealer.open(row) for row in stored], rows, sealer)

    def refresh(self, force: bool = False) -> None:
        """Nothing to look at without waiting: ``watch`` follows the table."""

    async def reload(self) -> None:
        # At most once a second, however many tokens name unknown keys: a rotation reaches every process
        # within a second anyway (``watch``), and the key that signs after it was published one rotation ahead.
        if time.monotonic() - self._checked >= _RECHECK_SECONDS:
            await self._read()

    async def _read(self) -> None:
        self._checked = time.monotonic()
        stored = await self._rows.sealed_keys()
        if stored and [row.kid for row in stored[-PUBLISHED:]] != [key.kid for key in self.keys]:
            self._install([self._sealer.open(row) for row in stored])

    async def watch(self) -> NoReturn:
        await repeat(self._read, _RECHECK_SECONDS, "reading the signing keys", log)

    async def rotate(self) -> tuple[str, str]:
        # Two rotations at once (two operators, two machines) both land, one after the other.
        while True:
            stored = await self._rows.sealed_keys()
            position = stored[-1].position + 1 if stored else 1
            new = _placed(self._sealer.seal(_new_key()), position)
            if await self._rows.add_keys([new], retire_before=position + 1 - PUBLISHED):
                break
        await self._read()
        return str(self.current.kid), str(self.next.kid)

    async def reseal(self, sealer: KeySealer) -> int:
        """Seal the stored keys again under ``sealer``'s secret; how many."""
        stored = await self._rows.sealed_keys()
        await self._rows.reseal_keys([_placed(sealer.seal(self._sealer.open(row)), row.position) for row in stored])
        self._sealer = sealer
        return len(stored)


_KEPT_IN_DATABASE = (
    "the signing keys are kept in the database: set PRESENCED_KEYS_SECRET or PRESENCED_KEYS_SECRET_FILE "
    '(docs/deployment.md, "Signing keys")'
)


async def open_keys(data_dir: Path, secret: str | None, rows: KeyRows) -> SigningKeys:
    """The signing keys as configured: sealed in the database with ``secret``, else in ``data_dir``'s folder."""
    stored = await rows.sealed_keys()
    if secret is not None:
        return await DatabaseKeys.open(rows, KeySealer(secret), data_dir / "keys", stored)
    return _folder_keys_unless_in_database(data_dir, stored)


def stored_keys(data_dir: Path, secret: str | None, stored: list[SealedKey]) -> SigningKeys | None:
    """The keys as ``open_keys`` finds them, from rows already read; None when the database must be given its
    first keys (``open_keys`` does that)."""
    if secret is None:
        return _folder_keys_unless_in_database(data_dir, stored)
    if not stored:
        return None
    sealer = KeySealer(secret)
    return SigningKeys([sealer.open(row) for row in stored])


def _folder_keys_unless_in_database(data_dir: Path, stored: list[SealedKey]) -> SigningKeys:
    """Without a secret: the folder's keys, or a refusal when the database keeps them."""
    if stored:
        raise ConfigurationError(_KEPT_IN_DATABASE)
    return SigningKeys.load_or_create(data_dir)


def _folder_keys(folder: Path) -> list[RSAKey]:
    """The published keys of a keys folder (none if there is no such folder)."""
    return [_load(path) for path in _key_files(folder)[-PUBLISHED:]] if folder.is_dir() else []


def _placed(key: SealedKey, position: int) -> SealedKey:
    return SealedKey(position, key.kid, key.sealed)


def _new_key() -> RSAKey:
    return _key(RSAKey.generate_key(2048, private=True).as_pem(private=True))


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
    return _key(path.read_bytes())


def _key(pem: bytes) -> RSAKey:
    parameters: Any = {"kid": RSAKey.import_key(pem).thumbprint(), **_PARAMETERS}
    return RSAKey.import_key(pem, parameters)


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
