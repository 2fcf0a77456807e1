"""Subscriptions and the notification outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from presenced.services.entities import DeliveryResult, PendingNotification, Subscription
from presenced.store.codec import decode_visible, from_us, to_us
from presenced.store.presence import SqlStore
from presenced.store.schema import delivery_attempts, notifications, subscription_users, subscriptions

#: Notification ids named in one statement at most.
_IDS_PER_STATEMENT = 500


class SqlSubscriptionStore:
    """Implements ``presenced.services.ports.SubscriptionStore``."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._engine = store.engine

    async def create_subscription(self, subscription: Subscription) -> None:
        async with self._store.begin() as tx:
            await tx.conn.execute(insert(subscriptions).values(**_row(subscription)))
            await tx.conn.execute(
                insert(subscription_users),
                [{"subscription_id": subscription.id, "user_id": u} for u in subscription.user_ids],
            )

    async def get_subscription(self, tenant_id: str, subscription_id: str) -> Subscription | None:
        async with self._engine.connect() as conn:
            found = await _load(
                conn, subscriptions.c.tenant_id == tenant_id, subscriptions.c.id == subscription_id.lower()
            )
        return found[0] if found else None

    async def list_subscriptions(self, tenant_id: str, app_id: str, creator_id: str | None) -> list[Subscription]:
        conditions = [subscriptions.c.tenant_id == tenant_id, subscriptions.c.app_id == app_id]
        if creator_id is not None:
            conditions.append(subscriptions.c.creator_id == creator_id)
        else:
            conditions.append(subscriptions.c.delegated.is_(False))
        async with self._engine.connect() as conn:
            return await _load(conn, *conditions)

    async def find_same(self, subscription: Subscription, now: datetime) -> Subscription | None:
        async with self._engine.connect() as conn:
            found = await _load(
                conn,
                subscriptions.c.tenant_id == subscription.tenant_id,
                subscriptions.c.app_id == subscription.app_id,
                subscriptions.c.users_key == users_key(subscription.user_ids),
                subscriptions.c.expires_us > to_us(now),
                subscriptions.c.delegated.is_(subscription.delegated),
                *([subscriptions.c.creator_id == subscription.creator_id] if subscription.creator_id else []),
                with_users=False,
            )
        return found[0] if found else None

    async def set_expiry(self, subscription_id: str, expires: datetime) -> None:
        async with self._store.begin() as tx:
            await tx.conn.execute(
                update(subscriptions)
                .where(subscriptions.c.id == subscription_id)
                .values(expires_us=to_us(expires), reauthorization_queued=False)
            )

    async def live_subscriptions(self, now: datetime) -> list[Subscription]:
        async with self._engine.connect() as conn:
            return await _load(conn, subscriptions.c.expires_us > to_us(now), with_users=False)

    async def queue_lifecycle(
        self, subscription: Subscription, event: str, now: datetime, *, on_demand: bool = False
    ) -> None:
        async with self._store.begin() as tx:
            if on_demand:
                # The emulator's: sent each time it is asked for; only a removal ends the subscription.
                notification_id = str(uuid.uuid4())
                if event == "subscriptionRemoved":
                    await tx.conn.execute(
                        update(subscriptions).where(subscriptions.c.id == subscription.id).values(expires_us=to_us(now))
                    )
            elif event == "reauthorizationRequired":
                queued = await tx.conn.execute(
                    update(subscriptions)
                    .where(subscriptions.c.id == subscription.id, subscriptions.c.reauthorization_queued.is_(False))
                    .values(reauthorization_queued=True)
                )
                if queued.rowcount == 0:
                    return
            else:
                # Removed: it stops at once; its row stays until purged, so the notice can be delivered.
                await tx.conn.execute(
                    update(subscriptions).where(subscriptions.c.id == subscription.id).values(expires_us=to_us(now))
                )
            if subscription.lifecycle_url is None:
                return
            if not on_demand:
                notification_id = str(uuid.uuid5(uuid.UUID(subscription.id), f"{event}/{to_us(subscription.expires)}"))
            tx.changed = True
            await tx.conn.execute(
                insert(notifications).values(
                    id=notification_id,
                    subscription_id=subscription.id,
                    url=subscription.lifecycle_url,
                    lifecycle_event=event,
                    created_us=to_us(now),
                    next_attempt_us=0,
                    attempts=0,
                    state="pending",
                )
            )

    async def delete_subscription(self, tenant_id: str, subscription_id: str) -> bool:
        async with self._store.begin() as tx:
            result = await tx.conn.execute(
                delete(subscriptions).where(
                    subscriptions.c.tenant_id == tenant_id, subscriptions.c.id == subscription_id
                )
            )
            return result.rowcount > 0

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[PendingNotification]:
        # Looked for first without a write transaction: the worker asks several times a second, and
        # on SQLite a write transaction takes the database's one write lock from the presence writer.
        due_now = notifications.c.state == "pending", notifications.c.next_attempt_us <= to_us(now)
        async with self._engine.connect() as conn:
            if await conn.scalar(select(notifications.c.id).where(*due_now).limit(1)) is None:
                return []
        async with self._store.begin() as tx:
            due = (
                (
                    await tx.conn.execute(
                        select(notifications)
                        .where(notifications.c.state == "pending", notifications.c.next_attempt_us <= to_us(now))
                        .order_by(notifications.c.created_us, notifications.c.sequence)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                )
                .mappings()
                .all()
            )
            if not due:
                return []
            ids = [row["id"] for row in due]
            await tx.conn.execute(
                update(notifications)
                .where(notifications.c.id.in_(ids))
                .values(next_attempt_us=to_us(now + lease), attempts=notifications.c.attempts + 1)
            )
            by_id = {s.id: s for s in await _load(tx.conn, subscriptions.c.id.in_({r["subscription_id"] for r in due}))}
        return [
            PendingNotification(
                id=row["id"],
                subscription=by_id[row["subscription_id"]],
                url=row["url"],
                attempts=row["attempts"] + 1,
                created=from_us(row["created_us"]),
                user_id=row["user_id"],
                sequence=row["sequence"],
                visible=None if row["visible"] is None else decode_visible(row["visible"]),
                lifecycle_event=row["lifecycle_event"],
            )
            for row in due
            if row["subscription_id"] in by_id
        ]

    async def renew_leases(self, ids: Sequence[str], until: datetime) -> None:
        if not ids:
            return
        async with self._store.begin() as tx:
            await tx.conn.execute(
                update(notifications)
                .where(notifications.c.id.in_(list(ids)), notifications.c.state == "pending")
                .values(next_attempt_us=to_us(until))
            )

    async def record(self, results: Sequence[DeliveryResult], now: datetime) -> None:
        if not results:
            return
        now_us = to_us(now)
        # A few statements whatever the number of results: the attempts in one insert, the notifications that
        # are done by outcome, those to retry in one executemany.
        finished: dict[str, list[str]] = {}
        retries: list[dict[str, Any]] = []
        for r in results:
            if r.outcome == "retry" and r.next_attempt is not None:
                retries.append({"b_id": r.notification_id, "b_next": to_us(r.next_attempt)})
            else:
                finished.setdefault(r.outcome, []).append(r.notification_id)
        async with self._store.begin() as tx:
            await tx.conn.execute(
                insert(delivery_attempts),
                [
                    {
                        "notification_id": r.notification_id,
                        "at_us": now_us,
                        "status": r.status,
                        "latency_ms": r.latency_ms,
                        "error": r.error,
                    }
                    for r in results
                ],
            )
            for outcome, ids in finished.items():
                for start in range(0, len(ids), _IDS_PER_STATEMENT):
                    await tx.conn.execute(
                        update(notifications)
                        .where(notifications.c.id.in_(ids[start : start + _IDS_PER_STATEMENT]))
                        .values(state=outcome, finished_us=now_us)
                    )
            if retries:
                await tx.conn.execute(
                    update(notifications)
                    .where(notifications.c.id == bindparam("b_id"))
                    .values(next_attempt_us=bindparam("b_next")),
                    retries,
                )

    async def delete_expired_subscriptions(self, before: datetime) -> int:
        async with self._store.begin() as tx:
            result = await tx.conn.execute(delete(subscriptions).where(subscriptions.c.expires_us <= to_us(before)))
            return int(result.rowcount)


async def _load(conn: AsyncConnection, *conditions: Any, with_users: bool = True) -> list[Subscription]:
    """The subscriptions matching ``conditions``; without ``with_users``, their ``user_ids`` are left empty."""
    rows = (
        await conn.execute(select(subscriptions).where(*conditions).order_by(subscriptions.c.created_us))
    ).mappings()
    found = list(rows)
    if not found or not with_users:
        return [_subscription(r, ()) for r in found]
    users: dict[str, list[str]] = {}
    watched = await conn.execute(
        select(subscription_users).where(subscription_users.c.subscription_id.in_([r["id"] for r in found]))
    )
    for row in watched.mappings():
        users.setdefault(row["subscription_id"], []).append(row["user_id"])
    return [_subscription(r, tuple(sorted(users.get(r["id"], [])))) for r in found]


def _row(s: Subscription) -> dict[str, Any]:
    return {
        "id": s.id,
        "tenant_id": s.tenant_id,
        "app_id": s.app_id,
        "creator_id": s.creator_id,
        "delegated": s.delegated,
        "resource": s.resource,
        "users_key": users_key(s.user_ids),
        "change_type": s.change_type,
        "notification_url": s.notification_url,
        "lifecycle_url": s.lifecycle_url,
        "client_state": s.client_state,
        "expires_us": to_us(s.expires),
        "include_resource_data": s.include_resource_data,
        "encryption_certificate": s.encryption_certificate,
        "encryption_certificate_id": s.encryption_certificate_id,
        "latest_tls": s.latest_tls,
        "created_us": to_us(s.created),
    }


def _subscription(row: RowMapping, user_ids: tuple[str, ...]) -> Subscription:
    return Subscription(
        id=row["id"],
        tenant_id=row["tenant_id"],
        app_id=row["app_id"],
        creator_id=row["creator_id"],
        resource=row["resource"],
        change_type=row["change_type"],
        notification_url=row["notification_url"],
        lifecycle_url=row["lifecycle_url"],
        client_state=row["client_state"],
        expires=from_us(row["expires_us"]),
        include_resource_data=bool(row["include_resource_data"]),
        encryption_certificate=row["encryption_certificate"],
        encryption_certificate_id=row["encryption_certificate_id"],
        latest_tls=row["latest_tls"],
        created=from_us(row["created_us"]),
        user_ids=user_ids,
        delegated=bool(row["delegated"]),
    )


def users_key(user_ids: Sequence[str]) -> str:
    return hashlib.sha256(",".join(sorted(user_ids)).encode()).hexdigest()
