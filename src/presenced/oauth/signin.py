"""Password sign-in, throttled per account and per address, and browser sessions.

Throttling is stored in the database, so every process counts the same
failures. While a key is locked even the right password is refused, and the
answer does not say whether the account exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from presenced.clock import real_now
from presenced.errors import PresencedError
from presenced.services.credentials import digest, new_opaque
from presenced.services.entities import Account
from presenced.services.ports import IdentityStore, SecretHasher

#: Entra's smart-lockout defaults: 10 failures lock an account for a minute.
ACCOUNT_LIMIT, ACCOUNT_LOCK = 10, timedelta(minutes=1)
#: One address trying many accounts.
ADDRESS_LIMIT, ADDRESS_LOCK = 30, timedelta(minutes=5)
WINDOW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)


class SignInRefused(PresencedError):
    """A sign-in the page refuses (wrong password, locked account): the message says why."""

    def __init__(self, aadsts: int, message: str) -> None:
        super().__init__(message, status=400, code="invalid_grant")
        self.aadsts = aadsts


@dataclass(frozen=True, slots=True)
class Session:
    account: Account
    auth_time: datetime
    #: When it ends, unless signed out before.
    expires: datetime
    #: How it is stored (the hash of its cookie's value): what names it to the live streams it opened.
    key: str


class SignIn:
    def __init__(self, store: IdentityStore, hasher: SecretHasher, now: Callable[[], datetime] = real_now) -> None:
        self.store = store
        self.hasher = hasher
        self.now = now
        #: Told the key of each session signed out here (the live streams it opened end at once).
        self.ended: list[Callable[[str], None]] = []

    async def password(self, tenant_id: str | None, username: str, password: str, address: str) -> Account:
        """The account, if the password is right and neither the account nor the address is locked."""
        now = self.now()
        username = username.strip()
        account = await self.store.find_account(tenant_id, username) if username else None
        # The account's lock is the account's, however it is named (UPN, object id, tenant or common).
        account_key = f"account:{account.user.id}" if account else f"name:{username.lower()[:320]}"
        address_key = f"address:{address[:64]}"
        for key in (account_key, address_key):
            if await self.store.locked_until(key, now) is not None:
                raise SignInRefused(
                    50053,
                    "Your account is locked because you tried to sign in too many times with an incorrect user ID or "
                    "password. Wait a minute and try again.",
                )
        # argon2 takes tens of milliseconds of CPU: off the event loop. Always one verification,
        # whether or not the account exists.
        good = await asyncio.to_thread(
            self.hasher.verify_password, account.password_hash if account else None, password
        )
        if account is None or not good:
            await self.store.record_failure(account_key, now, WINDOW, ACCOUNT_LIMIT, ACCOUNT_LOCK)
            await self.store.record_failure(address_key, now, WINDOW, ADDRESS_LIMIT, ADDRESS_LOCK)
            raise SignInRefused(50126, "Your account or password is incorrect.")
        await self.store.clear_failures(account_key)
        return account

    async def start_session(self, account: Account) -> tuple[str, Session]:
        """A new session: the cookie value (stored only as a hash) and the session."""
        session_id, now = new_opaque(), self.now()
        key, expires = digest(session_id), now + SESSION_LIFETIME
        await self.store.create_session(key, account.user.id, now, expires)
        return session_id, Session(account, now, expires, key)

    async def session(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        key = digest(session_id)
        found = await self.store.find_session(key, self.now())
        return None if found is None else Session(*found, key=key)

    async def end_session(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= 128:
            key = digest(session_id)
            await self.store.delete_session(key)
            for ended in self.ended:
                ended(key)

    async def live_sessions(self, keys: Collection[str]) -> set[str]:
        """Which of these sessions (their keys) are still signed in (``services.feed.LiveSessions``)."""
        return await self.store.live_sessions(keys, self.now())
