"""Shared by the write-path scenario and validation tests: a manual-clock runtime, readers, the change log."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import Table, delete, insert, select

from presenced.app import create_app
from presenced.bootstrap import Runtime, build
from presenced.services.entities import Tenant, User
from presenced.store.clock import StoredClock
from presenced.store.codec import decode_visible, from_us
from presenced.store.schema import metadata, presence_changes
from tests.support import APP_ID, BASE_URL, TABLES, Tokens, bearer, make_settings

#: The instant every test starts at (a Monday, after the real time, since the manual clock only moves forward).
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
TENANT = "7c1f3a52-0d6e-4c11-9d2b-3f0e5a6b7c01"
OTHER_TENANT = "7c1f3a52-0d6e-4c11-9d2b-3f0e5a6b7c02"
ANN = "a0000000-0000-4000-8000-00000000000a"
BEN = "b0000000-0000-4000-8000-00000000000b"
#: A user of the other tenant.
ZOE = "c0000000-0000-4000-8000-00000000000c"
APP_A = APP_ID
APP_B = "22222222-3333-4444-5555-666666666666"
SEQUENCE = re.compile(r"^\d{20}$")


def iso(instant: datetime) -> str:
    """An instant as the emulator clock takes it."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(frozen=True)
class Logged:
    """One change-log entry."""

    sequence: int
    cause: str
    visible: dict[str, Any]
    at: datetime

    @property
    def pair(self) -> tuple[str, str]:
        return self.visible["availability"], self.visible["activity"]


class Env:
    """A runtime on the manual clock, its HTTP client, a tenant with two users and one other tenant."""

    def __init__(self, runtime: Runtime, client: httpx.AsyncClient) -> None:
        self.runtime = runtime
        self.client = client
        self.tokens = Tokens(runtime, TENANT)
        self.other_tokens = Tokens(runtime, OTHER_TENANT)
        self._minted: dict[tuple[object, ...], str] = {}
        #: An application reader: sees every user of the tenant, without the status-message times.
        self.reader = self.app("Presence.Read.All")

    async def seed(self) -> None:
        async with self.runtime.store.begin() as tx:
            await tx.put_tenant(Tenant(TENANT, "Fabrikam"), START)
            await tx.put_tenant(Tenant(OTHER_TENANT, "Northwind"), START)
            await tx.put_user(User(ANN, TENANT, "ann@fabrikam.example", "Ann"), START)
            await tx.put_user(User(BEN, TENANT, "ben@fabrikam.example", "Ben"), START)
            await tx.put_user(User(ZOE, OTHER_TENANT, "zoe@northwind.example", "Zoe"), START)

    # --- tokens ---------------------------------------------------------------------------------------

    def me(self, user_id: str = ANN, *scopes: str, app_id: str = APP_A) -> dict[str, str]:
        """Headers of a delegated token of ``user_id`` (Presence.ReadWrite unless ``scopes`` are given)."""
        scopes = scopes or ("Presence.ReadWrite",)
        key = ("user", user_id, scopes, app_id)
        if key not in self._minted:
            self._minted[key] = self.tokens.user(user_id, *scopes, app_id=app_id)
        return bearer(self._minted[key])

    def app(self, *roles: str, app_id: str = APP_A) -> dict[str, str]:
        """Headers of an app-only token (Presence.ReadWrite.All unless ``roles`` are given)."""
        roles = roles or ("Presence.ReadWrite.All",)
        key = ("app", roles, app_id)
        if key not in self._minted:
            self._minted[key] = self.tokens.app(*roles, app_id=app_id)
        return bearer(self._minted[key])

    # --- the clock ------------------------------------------------------------------------------------

    async def move_clock(self, body: dict[str, str]) -> httpx.Response:
        return await self.client.post("/_emulator/clock", json=body)

    async def set_clock(self, at: datetime) -> datetime:
        response = await self.move_clock({"set": iso(at)})
        assert response.status_code == 200, response.text
        return self._now(response)

    async def advance(self, duration: str) -> datetime:
        response = await self.move_clock({"advance": duration})
        assert response.status_code == 200, response.text
        return self._now(response)

    async def now(self) -> datetime:
        response = await self.client.get("/_emulator/clock")
        assert response.status_code == 200, response.text
        return self._now(response)

    @staticmethod
    def _now(response: httpx.Response) -> datetime:
        return datetime.fromisoformat(response.json()["now"].replace("0Z", "+00:00"))

    # --- reads and writes -----------------------------------------------------------------------------

    async def read(self, user_id: str = ANN, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """The user's presence as an application reader (or ``headers``) sees it."""
        response = await self.client.get(f"/v1.0/users/{user_id}/presence", headers=headers or self.reader)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def read_own(self, user_id: str = ANN) -> dict[str, Any]:
        """The user's presence as they see it themselves (/me)."""
        response = await self.client.get("/v1.0/me/presence", headers=self.me(user_id, "Presence.Read"))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def act(
        self,
        action: str,
        body: object = None,
        *,
        user_id: str = ANN,
        headers: dict[str, str] | None = None,
        path: str | None = None,
    ) -> httpx.Response:
        """POST an action on ``/users/{user_id}/presence`` (or ``path``) with an app token of APP_A by default."""
        url = f"{path or f'/v1.0/users/{user_id}/presence'}/{action}"
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        return await self.client.post(url, headers=headers or self.app(), **kwargs)

    async def set_presence(
        self,
        availability: str,
        activity: str,
        duration: str | None = None,
        *,
        app_id: str = APP_A,
        user_id: str = ANN,
    ) -> None:
        body = {"sessionId": app_id, "availability": availability, "activity": activity}
        if duration is not None:
            body["expirationDuration"] = duration
        response = await self.act("setPresence", body, user_id=user_id, headers=self.app(app_id=app_id))
        assert (response.status_code, response.content) == (200, b""), response.text

    async def mailbox(self, user_id: str = ANN) -> dict[str, Any]:
        headers = self.app("MailboxSettings.Read")
        response = await self.client.get(f"/v1.0/users/{user_id}/mailboxSettings", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def patch_mailbox(self, body: object, user_id: str = ANN) -> httpx.Response:
        headers = self.me(user_id, "MailboxSettings.ReadWrite")
        return await self.client.patch("/v1.0/me/mailboxSettings", json=body, headers=headers)

    async def log(self, user_id: str = ANN) -> list[Logged]:
        """The user's change-log entries, oldest first."""
        query = (
            select(presence_changes.c.sequence, presence_changes.c.cause, presence_changes.c.visible)
            .add_columns(presence_changes.c.at_us)
            .where(presence_changes.c.user_id == user_id)
            .order_by(presence_changes.c.id)
        )
        async with self.runtime.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Logged(row.sequence, row.cause, msgspec.to_builtins(decode_visible(row.visible)), from_us(row.at_us))
            for row in rows
        ]

    async def snapshot(self, user_id: str = ANN) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[Logged]]:
        """Everything a rejected request must leave as it was: both views of the presence, mailbox, change log."""
        return (
            await self.read_own(user_id),
            await self.read(user_id),
            await self.mailbox(user_id),
            await self.log(user_id),
        )


class Timeline:
    """Follows one user's presence step by step.

    ``logged`` compares the change log with its last check: entries are only
    ever added, with the expected causes, in order, and sequence numbers rise
    strictly. ``shows`` also reads the presence: its sequence number equals the
    newest entry's, and it rose since the last read exactly when entries were
    added since then.
    """

    def __init__(self, env: Env, user_id: str, first: dict[str, Any], log: list[Logged]) -> None:
        self.env = env
        self.user_id = user_id
        self.body = first
        self.entries = log
        self.entries_at_read = len(log)
        self.initial_sequence = first["sequenceNumber"]

    @classmethod
    async def of(cls, env: Env, user_id: str = ANN) -> Timeline:
        log = await env.log(user_id)
        return cls(env, user_id, await env.read(user_id), log)

    async def logged(self, *causes: str) -> list[Logged]:
        """The entries added since the last check; they must have ``causes``, in this order."""
        log = await self.env.log(self.user_id)
        assert log[: len(self.entries)] == self.entries, "change-log entries were changed or removed"
        new = log[len(self.entries) :]
        assert [entry.cause for entry in new] == list(causes), [(e.cause, e.pair) for e in new]
        sequences = [entry.sequence for entry in log]
        assert sequences == sorted(set(sequences)), "sequence numbers must rise strictly"
        self.entries = log
        return new

    async def shows(self, availability: str, activity: str, *causes: str) -> dict[str, Any]:
        """Check the log for ``causes``, then read: the presence shows the pair with the right sequence number."""
        await self.logged(*causes)
        body = await self.env.read(self.user_id)
        sequence = body["sequenceNumber"]
        assert SEQUENCE.match(sequence), sequence
        if len(self.entries) > self.entries_at_read:
            assert sequence > self.body["sequenceNumber"], "the sequence number must rise on a change"
        else:
            assert sequence == self.body["sequenceNumber"], "the sequence number must stay without a change"
        if self.entries:
            newest = self.entries[-1]
            assert int(sequence) == newest.sequence
            assert newest.pair == (body["availability"], body["activity"])
        else:
            assert sequence == self.initial_sequence
        assert (body["availability"], body["activity"]) == (availability, activity)
        self.body = body
        self.entries_at_read = len(self.entries)
        return body


#: The two stores, as the module-scoped parameter of the tests' runtime.
STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def store_url_of(request: pytest.FixtureRequest) -> str | None:
    """None for SQLite, else the PostgreSQL URL of this test process."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


async def build_manual(data_dir: Path, key_folder: Path, database_url: str | None) -> Runtime:
    """A runtime on the manual clock, its store emptied."""
    settings = dataclasses.replace(make_settings(data_dir, key_folder, database_url), clock="manual")
    runtime = await build(settings)
    assert runtime.emulator is not None
    if database_url is not None:
        await wipe(runtime)
    return runtime


async def wipe(runtime: Runtime) -> None:
    """Empty every table, the manual clock's included, and start the clock again."""
    async with runtime.engine.begin() as conn:
        for table in TABLES.split(", "):  # children first; DELETE of a few rows is far cheaper than TRUNCATE
            await conn.exec_driver_sql(f"DELETE FROM {table}")
    runtime.cached_reader.forget_everyone()  # the store changed underneath the runtime
    assert isinstance(runtime.clock, StoredClock)
    await runtime.clock.start()


@asynccontextmanager
async def client_env(runtime: Runtime) -> AsyncIterator[Env]:
    """An ``Env`` with a fresh application (no cached encodings) on ``runtime``, as the store is."""
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield Env(runtime, client)


@asynccontextmanager
async def env_on(runtime: Runtime) -> AsyncIterator[Env]:
    """An ``Env`` on an emptied ``runtime``: the clock set to ``START``, the tenants and users seeded."""
    async with client_env(runtime) as env:
        assert await env.set_clock(START) == START
        await env.seed()
        yield env


Rows = list[tuple[Table, list[dict[str, Any]]]]


async def save_rows(runtime: Runtime) -> Rows:
    """Every row of every table (the manual clock's included), parents first."""
    saved: Rows = []
    async with runtime.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(select(table))).mappings().all()
            saved.append((table, [dict(row) for row in rows]))
    return saved


async def restore_rows(runtime: Runtime, saved: Rows) -> None:
    """Put every table back as ``save_rows`` found it, in one transaction."""
    async with runtime.engine.begin() as conn:
        for table, _ in reversed(saved):
            await conn.execute(delete(table))
        for table, rows in saved:
            if rows:
                await conn.execute(insert(table), rows)


def later(minutes: float = 0, *, hours: float = 0, days: float = 0, seconds: float = 0) -> datetime:
    """``START`` plus a duration."""
    return START + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
