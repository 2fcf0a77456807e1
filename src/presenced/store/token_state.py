"""What the token endpoint reads and writes of sign-in state, on the bare database drivers: authorization
codes and refresh tokens.

Every refresh-token request reads its token and spends it; every code redemption marks its code; most
store a new refresh token. Through SQLAlchemy's async layer (and aiosqlite's thread hop) each statement
cost about half a millisecond of the event loop's time, more than signing a token. Here:

- SQLite: reads on a plain ``sqlite3`` connection used from the event loop (a WAL reader never waits
  for writers); writes on a connection and thread of their own, so that waiting for the disk
  (``synchronous=FULL``) and for another process's write lock does not hold up the event loop. They
  take turns with this process's other SQLite writers (``SqlStore.writer_turn``), and begin with
  ``BEGIN IMMEDIATE``, as those do.
- PostgreSQL: an asyncpg pool; a read that fails because the database did is tried once more, a write
  is not (``ServiceUnavailable``, as everywhere).

The rules are the store's (``services.ports.IdentityStore``): a code is marked redeemed by its first
redemption, whatever follows; a refresh token is spent, and its successor stored, in one transaction
that finds it unspent (``rotate_refresh_token``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from presenced.services.entities import AuthorizationCode, RefreshToken
from presenced.store.codec import from_us, opt_from_us, to_us
from presenced.store.engine import CONNECT_TIMEOUT
from presenced.store.outages import drop_if_broken, is_outage, unavailable

T = TypeVar("T")

_REFRESH_COLUMNS = (
    "token_hash, family_id, tenant_id, client_app_id, user_id, scopes, public_client, auth_time_us, expires_us, used_us"
)
_CODE_COLUMNS = (
    "code_hash, tenant_id, client_app_id, user_id, redirect_uri, scopes, nonce, code_challenge, "
    "code_challenge_method, auth_time_us, expires_us, redeemed_us"
)


def _statements(p: Callable[[int], str]) -> dict[str, str]:
    """The statements, with ``p(n)`` the driver's n-th parameter (``?`` for sqlite3, ``$n`` for asyncpg)."""
    refresh_values = ", ".join(p(n) for n in range(1, 10))
    return {
        "find_refresh": f"SELECT {_REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = {p(1)}",
        "insert_refresh": (
            f"INSERT INTO refresh_tokens ({_REFRESH_COLUMNS.removesuffix(', used_us')}) VALUES ({refresh_values})"
        ),
        "spend_refresh": (f"UPDATE refresh_tokens SET used_us = {p(1)} WHERE token_hash = {p(2)} AND used_us IS NULL"),
        "insert_code": (
            f"INSERT INTO authorization_codes ({_CODE_COLUMNS.removesuffix(', redeemed_us')}) "
            f"VALUES ({', '.join(p(n) for n in range(1, 12))})"
        ),
        "find_code": f"SELECT {_CODE_COLUMNS} FROM authorization_codes WHERE code_hash = {p(1)}",
        "redeem_code": (
            f"UPDATE authorization_codes SET redeemed_us = {p(1)} WHERE code_hash = {p(2)} AND redeemed_us IS NULL"
        ),
    }


_SQLITE = _statements(lambda n: "?")
_POSTGRES = _statements(lambda n: f"${n}")
_POSTGRES["find_code_locked"] = _POSTGRES["find_code"] + " FOR UPDATE"


def _refresh_values(token: RefreshToken) -> tuple[Any, ...]:
    return (
        token.token_hash,
        token.family_id,
        token.tenant_id,
        token.client_app_id,
        token.user_id,
        " ".join(token.scopes),
        token.public_client,
        to_us(token.auth_time),
        to_us(token.expires),
    )


def _refresh(row: Sequence[Any]) -> RefreshToken:
    return RefreshToken(
        token_hash=row[0],
        family_id=row[1],
        tenant_id=row[2],
        client_app_id=row[3],
        user_id=row[4],
        scopes=tuple(row[5].split()),
        public_client=bool(row[6]),
        auth_time=from_us(row[7]),
        expires=from_us(row[8]),
        used=opt_from_us(row[9]),
    )


def _code_values(code: AuthorizationCode) -> tuple[Any, ...]:
    return (
        code.code_hash,
        code.tenant_id,
        code.client_app_id,
        code.user_id,
        code.redirect_uri,
        " ".join(code.scopes),
        code.nonce,
        code.code_challenge,
        code.code_challenge_method,
        to_us(code.auth_time),
        to_us(code.expires),
    )


def _code(row: Sequence[Any]) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=row[0],
        tenant_id=row[1],
        client_app_id=row[2],
        user_id=row[3],
        redirect_uri=row[4],
        scopes=tuple(row[5].split()),
        nonce=row[6],
        code_challenge=row[7],
        code_challenge_method=row[8],
        auth_time=from_us(row[9]),
        expires=from_us(row[10]),
        redeemed=opt_from_us(row[11]),
    )


#: Writes per SQLite transaction at most.
MAX_WRITES = 256
#: Where ``redeemed_us`` is among ``find_code``'s columns.
_REDEEMED = 11


@dataclass(frozen=True, slots=True)
class _Save:
    """Store a new refresh token (``code`` None) or a new code."""

    refresh: RefreshToken | None = None
    code: AuthorizationCode | None = None


@dataclass(frozen=True, slots=True)
class _Rotate:
    spent_hash: str
    successor: RefreshToken
    now_us: int


@dataclass(frozen=True, slots=True)
class _Redeem:
    code_hash: str
    now_us: int


_Op = _Save | _Rotate | _Redeem


class SqliteTokenState:
    """Codes and refresh tokens in the SQLite database at ``path``; ``turn``: this process's writers' turns.

    Writes are group-committed, as presence writes are (``store.group_commit``): the writes waiting when
    the writer's thread is free share one transaction, of a few statements whatever their number (the
    rows they read, in one query per table; then one ``executemany`` per kind of change), and each is
    answered once it is committed. One wait for the disk serves them all; so does one hand-off to the
    thread, which otherwise waits for the event loop to let go of the interpreter at every statement.
    Within a batch the writes are decided in the order they came, as if one after another: of two
    rotations of one refresh token, the first spends it and the second finds it spent. A batch that the
    database refuses for one write's rows (a user deleted meanwhile) is run again write by write, so
    only that write fails.
    """

    def __init__(self, path: str, turn: contextlib.AbstractAsyncContextManager[Any]) -> None:
        self._path = path
        self._turn = turn
        self._reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._reader.execute("PRAGMA busy_timeout=5000")
        self._reader.execute("PRAGMA query_only=ON")
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="presenced-sign-in")
        self._writer: sqlite3.Connection | None = None
        self._pending: list[tuple[_Op, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None
        #: Transactions run, for tests.
        self.transactions = 0

    async def find_refresh_token(self, token_hash: str) -> RefreshToken | None:
        row = self._reader.execute(_SQLITE["find_refresh"], (token_hash,)).fetchone()
        return None if row is None else _refresh(row)

    async def save_refresh_token(self, token: RefreshToken) -> None:
        await self._write(_Save(refresh=token))

    async def rotate_refresh_token(self, spent_hash: str, token: RefreshToken, now: datetime) -> bool:
        rotated: bool = await self._write(_Rotate(spent_hash, token, to_us(now)))
        return rotated

    async def save_code(self, code: AuthorizationCode) -> None:
        await self._write(_Save(code=code))

    async def redeem_code(self, code_hash: str, now: datetime) -> AuthorizationCode | None:
        row: tuple[Any, ...] | None = await self._write(_Redeem(code_hash, to_us(now)))
        return None if row is None else _code(row)

    async def _write(self, op: _Op) -> Any:
        """``op``'s answer once the transaction it joined is committed (or its error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((op, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                # A write whose caller stopped waiting before its batch began is dropped: never acknowledged.
                batch = [item for item in self._pending[:MAX_WRITES] if not item[1].done()]
                del self._pending[:MAX_WRITES]
                if batch:
                    await self._commit(batch)
        finally:
            self._drainer = None

    async def _commit(self, batch: list[tuple[_Op, asyncio.Future[Any]]]) -> None:
        ops = [op for op, _ in batch]
        try:
            async with self._turn:
                answers = await asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, ops)
        except sqlite3.IntegrityError as error:
            if len(batch) == 1:
                _settle(batch[0][1], error)
                return
            for one in batch:  # only the write whose rows the database refused fails
                await self._commit([one])
            return
        except asyncio.CancelledError as stopped:
            for _, future in batch:
                _settle(future, stopped)
            raise
        except Exception as error:  # nothing committed: every write of the batch fails with it
            for _, future in batch:
                _settle(future, error)
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)

    def _transaction(self, ops: list[_Op]) -> list[Any]:
        """On the writer's thread: decide the writes in order on the rows they read, write, commit."""
        self.transactions += 1
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            answers = self._decide(conn, ops)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return answers

    def _decide(self, conn: sqlite3.Connection, ops: list[_Op]) -> list[Any]:
        spent = [op.spent_hash for op in ops if isinstance(op, _Rotate)]
        redeemed = [op.code_hash for op in ops if isinstance(op, _Redeem)]
        # What the batch's writes find: each refresh token's used_us, each code's row; as the batch changes them.
        used: dict[str, int | None] = {}
        codes: dict[str, tuple[Any, ...]] = {}
        if spent:
            for row in conn.execute(_SQLITE_USED, (json.dumps(spent),)):
                used[row[0]] = row[1]
        if redeemed:
            for row in conn.execute(_SQLITE_CODES, (json.dumps(redeemed),)):
                codes[row[0]] = tuple(row)
        spends: list[tuple[int, str]] = []
        refresh_rows: list[tuple[Any, ...]] = []
        code_rows: list[tuple[Any, ...]] = []
        redemptions: list[tuple[int, str]] = []
        answers: list[Any] = []
        for op in ops:
            if isinstance(op, _Rotate):
                if op.spent_hash not in used or used[op.spent_hash] is not None:
                    answers.append(False)
                    continue
                used[op.spent_hash] = op.now_us
                spends.append((op.now_us, op.spent_hash))
                refresh_rows.append(_refresh_values(op.successor))
                used[op.successor.token_hash] = None
                answers.append(True)
            elif isinstance(op, _Redeem):
                row = codes.get(op.code_hash)
                answers.append(row)
                if row is not None and row[_REDEEMED] is None:
                    codes[op.code_hash] = (*row[:_REDEEMED], op.now_us)
                    redemptions.append((op.now_us, op.code_hash))
            elif op.refresh is not None:
                refresh_rows.append(_refresh_values(op.refresh))
                used[op.refresh.token_hash] = None
                answers.append(None)
            else:
                assert op.code is not None
                code_rows.append(_code_values(op.code))
                codes[op.code.code_hash] = (*_code_values(op.code), None)
                answers.append(None)
        for statement, rows in (
            (_SQLITE["spend_refresh"], spends),
            (_SQLITE["insert_refresh"], refresh_rows),
            (_SQLITE["insert_code"], code_rows),
            (_SQLITE["redeem_code"], redemptions),
        ):
            if rows:
                conn.executemany(statement, rows)
        return answers

    def _connection(self) -> sqlite3.Connection:
        if self._writer is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # As the engine's connections: a commit is on disk before it is acknowledged.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            self._writer = conn
        return self._writer

    async def close(self) -> None:
        if self._drainer is not None:
            await asyncio.shield(self._drainer)
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_writer)
        self._thread.shutdown(wait=True)
        self._reader.close()

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


_SQLITE_USED = "SELECT token_hash, used_us FROM refresh_tokens WHERE token_hash IN (SELECT value FROM json_each(?))"
_SQLITE_CODES = f"SELECT {_CODE_COLUMNS} FROM authorization_codes WHERE code_hash IN (SELECT value FROM json_each(?))"


def _settle(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class PostgresTokenState:
    """Codes and refresh tokens in PostgreSQL, through a pool of this process's own."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, url: str) -> PostgresTokenState:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        # A few: each transaction is a few short statements, and every process of a deployment has its own pool.
        return cls(await asyncpg.create_pool(dsn, min_size=0, max_size=4, timeout=CONNECT_TIMEOUT))

    async def find_refresh_token(self, token_hash: str) -> RefreshToken | None:
        for attempt in (1, 2):  # a read may be repeated: once more, on a fresh connection
            try:
                async with self._pool.acquire() as conn:
                    try:
                        row = await conn.fetchrow(_POSTGRES["find_refresh"], token_hash)
                    except Exception as error:
                        drop_if_broken(conn, error)
                        raise
            except Exception as error:
                if not is_outage(error):
                    raise
                if attempt == 2:
                    raise unavailable(error) from None
                continue
            return None if row is None else _refresh(row)
        raise AssertionError("unreachable")

    async def save_refresh_token(self, token: RefreshToken) -> None:
        async def save(conn: Any) -> None:
            await conn.execute(_POSTGRES["insert_refresh"], *_refresh_values(token))

        await self._write(save)

    async def rotate_refresh_token(self, spent_hash: str, token: RefreshToken, now: datetime) -> bool:
        async def rotate(conn: Any) -> bool:
            # A concurrent rotation of the same token waits for this one's row lock, then finds it spent.
            if await conn.execute(_POSTGRES["spend_refresh"], to_us(now), spent_hash) != "UPDATE 1":
                return False
            await conn.execute(_POSTGRES["insert_refresh"], *_refresh_values(token))
            return True

        return await self._write(rotate)

    async def save_code(self, code: AuthorizationCode) -> None:
        async def save(conn: Any) -> None:
            await conn.execute(_POSTGRES["insert_code"], *_code_values(code))

        await self._write(save)

    async def redeem_code(self, code_hash: str, now: datetime) -> AuthorizationCode | None:
        async def redeem(conn: Any) -> AuthorizationCode | None:
            row = await conn.fetchrow(_POSTGRES["find_code_locked"], code_hash)
            if row is None:
                return None
            if row[_REDEEMED] is None:
                await conn.execute(_POSTGRES["redeem_code"], to_us(now), code_hash)
            return _code(row)

        return await self._write(redeem)

    async def _write(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """``work`` in one transaction; a database that fails under it is ``ServiceUnavailable`` (not retried)."""
        try:
            async with self._pool.acquire() as conn:
                try:
                    async with conn.transaction():
                        return await work(conn)
                except Exception as error:
                    drop_if_broken(conn, error)
                    raise
        except Exception as error:
            if is_outage(error):
                raise unavailable(error) from None
            raise

    async def close(self) -> None:
        await self._pool.close()


TokenState = SqliteTokenState | PostgresTokenState
