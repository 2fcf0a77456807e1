"""The signing keys kept in the database (``services.ports.KeyRows``), sealed by ``oauth.keys``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from presenced.clock import real_now
from presenced.services.entities import SealedKey
from presenced.store.codec import to_us
from presenced.store.engine import WRITER
from presenced.store.schema import signing_keys


class SqlKeyRows:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def sealed_keys(self) -> list[SealedKey]:
        t = signing_keys.c
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(t.position, t.kid, t.sealed).order_by(t.position))).all()
        return [SealedKey(position, kid, bytes(sealed)) for position, kid, sealed in rows]

    async def add_keys(self, keys: Sequence[SealedKey], retire_before: int) -> bool:
        created = to_us(real_now())
        try:
            async with self._engine.connect() as conn:
                conn = await conn.execution_options(**{WRITER: True})
                async with conn.begin():
                    await conn.execute(
                        insert(signing_keys),
                        [
                            {"position": k.position, "kid": k.kid, "sealed": k.sealed, "created_us": created}
                            for k in keys
                        ],
                    )
                    await conn.execute(delete(signing_keys).where(signing_keys.c.position < retire_before))
        except IntegrityError:
            return False  # another process added a key at one of these positions first
        return True

    async def reseal_keys(self, keys: Sequence[SealedKey]) -> None:
        t = signing_keys.c
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(**{WRITER: True})
            async with conn.begin():
                for key in keys:
                    await conn.execute(update(signing_keys).where(t.position == key.position).values(sealed=key.sealed))
