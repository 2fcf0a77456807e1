"""Presence subscriptions (docs/notifications.md, "Subscribing"): create, list, renew, delete.

A subscription watches one user (``communications/presences/{id}``) or up to
650 (``communications/presences?$filter=id in (...)``). It lives at most
``max_lifetime`` (Graph's 60 minutes by default); a requested expiry under 45
minutes away is raised to 45, as Graph does. Expiry follows the presence clock.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from presenced.auth.policy import Operation, Target, authorize
from presenced.auth.principal import Principal
from presenced.clock import Clock
from presenced.errors import BadRequest, Conflict, ResourceNotFound
from presenced.logs import with_fields
from presenced.services.entities import Subscription
from presenced.services.loops import repeat
from presenced.services.ports import Directory, SubscriptionStore

log = logging.getLogger("presenced.subscriptions")

MAX_USERS = 650
MIN_LIFETIME = timedelta(minutes=45)
DEFAULT_MAX_LIFETIME = timedelta(minutes=60)
MAX_CLIENT_STATE = 255
#: The lifecycle notifications Graph sends for presence subscriptions.
LIFECYCLE_EVENTS = frozenset({"missed", "reauthorizationRequired", "subscriptionRemoved"})
#: reauthorizationRequired goes out this long before a subscription expires.
DEFAULT_REAUTHORIZATION_LEAD = timedelta(minutes=10)
#: Expired or removed subscriptions are kept this long (their last notifications may still be retried).
KEEP_EXPIRED = timedelta(hours=4)
LIFECYCLE_INTERVAL = 5.0
TLS_VERSIONS = ("v1_0", "v1_1", "v1_2", "v1_3")

_SINGLE = re.compile(r"^/?communications/presences/([^/?\s]+)$", re.IGNORECASE)
_BULK = re.compile(r"^/?communications/presences\?\$filter=id\s+in\s*\((.*)\)$", re.IGNORECASE | re.DOTALL)


class WebhookEndpoints(Protocol):
    async def check(self, url: str, field: str) -> None:
        """Refuse a URL presenced may not call (400 naming ``field``), else run the validation handshake."""
        ...


#: Parses an ``encryptionCertificate``, raising a BadRequest naming it when it is unusable.
CertificateCheck = Callable[[str], object]


@dataclass(frozen=True, slots=True)
class NewSubscription:
    change_type: str
    notification_url: str
    resource: str
    expiration: datetime
    lifecycle_url: str | None = None
    client_state: str | None = None
    include_resource_data: bool = False
    encryption_certificate: str | None = None
    encryption_certificate_id: str | None = None
    latest_tls: str | None = None


def watched_users(resource: str) -> list[str]:
    """The user ids a presence ``resource`` names, lower-case GUIDs, duplicates dropped."""
    single = _SINGLE.match(resource.strip())
    if single:
        raw = [single.group(1)]
    else:
        bulk = _BULK.match(resource.strip())
        if bulk is None:
            raise BadRequest(
                "resource must be 'communications/presences/{id}' or "
                "\"communications/presences?$filter=id in ('{id}','{id}')\"."
            )
        raw = [item.strip().strip("'\"") for item in bulk.group(1).split(",")]
    ids: list[str] = []
    for item in raw:
        try:
            ids.append(str(uuid.UUID(item)) if len(item) == 36 else _bad_id(item))
        except ValueError:
            _bad_id(item)
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise BadRequest("resource must name at least one user id.")
    if len(unique) > MAX_USERS:
        raise BadRequest(f"resource may name at most {MAX_USERS} user ids, not {len(unique)}.")
    return unique


def _bad_id(item: str) -> str:
    raise BadRequest(f"resource: '{item[:64]}' is not a user object id (GUID).")


class SubscriptionService:
    def __init__(
        self,
        store: SubscriptionStore,
        directory: Directory,
        endpoints: WebhookEndpoints,
        certificates: CertificateCheck,
        clock: Clock,
        max_lifetime: timedelta = DEFAULT_MAX_LIFETIME,
        still_allowed: Callable[[Sequence[Subscription]], Awaitable[list[bool]]] | None = None,
        reauthorization_lead: timedelta = DEFAULT_REAUTHORIZATION_LEAD,
    ) -> None:
        self.store = store
        self._directory = directory
        self._endpoints = endpoints
        self._certificates = certificates
        self._clock = clock
        self._max_lifetime = max_lifetime
        self._still_allowed = still_allowed
        self._lead = reauthorization_lead

    async def create(self, principal: Principal, request: NewSubscription) -> Subscription:
        authorize(principal, Operation.SUBSCRIBE_PRESENCE, Target.ANY)
        if request.change_type != "updated":
            raise BadRequest("changeType must be 'updated': presence subscriptions support no other.")
        users = watched_users(request.resource)
        for user_id in users:
            if await self._directory.find_user(principal.tenant_id, user_id) is None:
                raise BadRequest(f"resource: there is no user '{user_id}' in this tenant.")
        now = await self._clock.now()
        expires = self._expiry(request.expiration, now)
        if request.client_state is not None and len(request.client_state) > MAX_CLIENT_STATE:
            raise BadRequest(f"clientState must be at most {MAX_CLIENT_STATE} characters.")
        tls = request.latest_tls or "v1_2"
        if tls not in TLS_VERSIONS:
            raise BadRequest(f"latestSupportedTlsVersion must be one of {', '.join(TLS_VERSIONS)}.")
        if request.include_resource_data:
            if not request.encryption_certificate or not request.encryption_certificate_id:
                raise BadRequest("includeResourceData needs encryptionCertificate and encryptionCertificateId.")
            if len(request.encryption_certificate_id) > 128:
                raise BadRequest("encryptionCertificateId must be at most 128 characters.")
            self._certificates(request.encryption_certificate)
        subscription = Subscription(
            id=str(uuid.uuid4()),
            tenant_id=principal.tenant_id,
            app_id=principal.app_id,
            creator_id=principal.user_id,
            resource=request.resource.strip(),
            change_type="updated",
            notification_url=request.notification_url,
            lifecycle_url=request.lifecycle_url,
            client_state=request.client_state,
            expires=expires,
            include_resource_data=request.include_resource_data,
            encryption_certificate=request.encryption_certificate if request.include_resource_data else None,
            encryption_certificate_id=request.encryption_certificate_id if request.include_resource_data else None,
            latest_tls=tls,
            created=now,
            user_ids=tuple(sorted(users)),
            delegated=principal.is_delegated,
        )
        same = await self.store.find_same(subscription, now)
        if same is not None:
            raise Conflict(f"Subscription Id {same.id} already exists for the requested combination")
        # Last, as it calls out: the endpoints must answer Graph's validation handshake.
        await self._endpoints.check(request.notification_url, "notificationUrl")
        if request.lifecycle_url:
            await self._endpoints.check(request.lifecycle_url, "lifecycleNotificationUrl")
        await self.store.create_subscription(subscription)
        return subscription

    def _expiry(self, requested: datetime, now: datetime) -> datetime:
        if requested.tzinfo is None:
            raise BadRequest("expirationDateTime must include a time zone (e.g. 2026-01-01T10:00:00Z).")
        if requested <= now:
            raise BadRequest("expirationDateTime must be in the future.")
        if requested > now + self._max_lifetime + timedelta(seconds=1):
            minutes = int(self._max_lifetime.total_seconds() // 60)
            raise BadRequest(f"expirationDateTime must be at most {minutes} minutes from now for presence.")
        return max(requested, now + MIN_LIFETIME)

    async def list(self, principal: Principal) -> list[Subscription]:
        """The caller's own live subscriptions."""
        now = await self._clock.now()
        found = await self.store.list_subscriptions(principal.tenant_id, principal.app_id, principal.user_id)
        return [s for s in found if s.expires > now]

    async def get(self, principal: Principal, subscription_id: str) -> Subscription:
        found = (
            await self.store.get_subscription(principal.tenant_id, subscription_id) if _guid(subscription_id) else None
        )
        now = await self._clock.now()
        if (
            found is None
            or found.expires <= now
            or found.app_id != principal.app_id
            or found.creator_id != principal.user_id
        ):
            raise ResourceNotFound(f"The object was not found: subscription '{subscription_id[:64]}'.")
        return found

    async def renew(self, principal: Principal, subscription_id: str, expiration: datetime) -> Subscription:
        found = await self.get(principal, subscription_id)
        authorize(principal, Operation.SUBSCRIBE_PRESENCE, Target.ANY)
        expires = self._expiry(expiration, await self._clock.now())
        await self.store.set_expiry(found.id, expires)
        return replace(found, expires=expires)

    async def reauthorize(self, principal: Principal, subscription_id: str) -> None:
        """The caller still has the permission: the subscription goes on (its expiry does not change)."""
        await self.get(principal, subscription_id)
        authorize(principal, Operation.SUBSCRIBE_PRESENCE, Target.ANY)

    async def fire_lifecycle(self, subscription_id: str, event: str) -> Subscription:
        """The emulator's: send a lifecycle notification now (docs/emulator.md, "Faults"); ``missed`` and
        ``reauthorizationRequired`` leave the subscription as it is, ``subscriptionRemoved`` ends it."""
        if event not in LIFECYCLE_EVENTS:
            raise BadRequest(f"event must be one of {', '.join(sorted(LIFECYCLE_EVENTS))}.")
        now = await self._clock.now()
        found = next((s for s in await self.store.live_subscriptions(now) if s.id == subscription_id.lower()), None)
        if found is None:
            raise ResourceNotFound(f"There is no live subscription '{subscription_id[:64]}'.")
        if found.lifecycle_url is None:
            raise BadRequest("The subscription has no lifecycleNotificationUrl to send it to.")
        await self.store.queue_lifecycle(found, event, now, on_demand=True)
        return found

    async def delete(self, principal: Principal, subscription_id: str) -> None:
        found = await self.get(principal, subscription_id)
        await self.store.delete_subscription(principal.tenant_id, found.id)


def _guid(value: str) -> bool:
    try:
        return len(value) == 36 and bool(uuid.UUID(value))
    except ValueError:
        return False


#: The lifecycle's job, as its log lines name it.
LIFECYCLE_JOB = "subscription lifecycle round"


class SubscriptionLifecycle:
    """The worker's side of subscriptions: lifecycle notifications, removals, and purging."""

    def __init__(self, service: SubscriptionService) -> None:
        self._service = service

    async def run_once(self) -> None:
        """One round: subscriptions whose grant or user is gone are removed (``subscriptionRemoved``);
        those near expiry get ``reauthorizationRequired``; long-expired ones are purged."""
        service = self._service
        now = await service._clock.now()
        live = await service.store.live_subscriptions(now)
        # Checked all at once: subscriptions of one app share its look-ups.
        kept = await service._still_allowed(live) if service._still_allowed is not None else [True] * len(live)
        for subscription, allowed in zip(live, kept, strict=True):
            if not allowed:
                await service.store.queue_lifecycle(subscription, "subscriptionRemoved", now)
                log.info(
                    "subscription removed: its app's permission or its user is gone",
                    extra=with_fields(
                        job=LIFECYCLE_JOB,
                        tenant_id=subscription.tenant_id,
                        app_id=subscription.app_id,
                        subscription_id=subscription.id,
                    ),
                )
            elif subscription.lifecycle_url and subscription.expires - service._lead <= now:
                await service.store.queue_lifecycle(subscription, "reauthorizationRequired", now)
        await service.store.delete_expired_subscriptions(now - KEEP_EXPIRED)

    async def run_forever(self, interval: float = LIFECYCLE_INTERVAL) -> None:
        await repeat(self.run_once, interval, LIFECYCLE_JOB, log)
