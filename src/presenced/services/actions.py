"""The presence write actions (docs/graph-api.md, "Writes"): who may, what is valid, one transaction each."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import ParamSpec

from presenced.auth.policy import Operation, Target, authorize, require_delegated, target_of
from presenced.auth.principal import Principal
from presenced.clock import Clock
from presenced.domain import changes as change
from presenced.domain.model import (
    PREFERRED_PAIRS,
    SESSION_PAIRS,
    Activity,
    Availability,
    LocationLayer,
    Pair,
    PresenceFacts,
    StatusMessage,
    WorkLocationType,
)
from presenced.domain.sequence import Change
from presenced.errors import BadRequest, PresencedError, ResourceNotFound, UserNotFound
from presenced.metrics import PRESENCE_WRITES
from presenced.services.entities import User, UserRef
from presenced.services.inputs import duration_value, enum_value, guid_value, local_instant, text_value
from presenced.services.ports import PresenceWriter, UserFinder
from presenced.services.writes import Mutation, deciding

MAX_STATUS_LENGTH = 280
MAX_PLACE_ID = 256
_LOCATION_TYPES = (
    WorkLocationType.UNSPECIFIED,
    WorkLocationType.OFFICE,
    WorkLocationType.REMOTE,
    WorkLocationType.TIME_OFF,
)


class _Outcomes:
    """The write counter's children of one action (docs/deployment.md, "Metrics")."""

    def __init__(self, action: str) -> None:
        self.ok, self.refused, self.failed = (PRESENCE_WRITES.labels(action, o) for o in ("ok", "refused", "failed"))

    async def count(self, write: Awaitable[None]) -> None:
        """Await the write, counting how it ended: ok, refused (a client error) or failed."""
        try:
            await write
        except PresencedError as error:
            (self.refused if error.status < 500 else self.failed).inc()
            raise
        except Exception:
            self.failed.inc()
            raise
        self.ok.inc()


_P = ParamSpec("_P")


def _counted(action: str) -> Callable[[Callable[_P, Awaitable[None]]], Callable[_P, Awaitable[None]]]:
    """Count the calls of a write action by outcome, under the action's Graph name."""
    outcomes = _Outcomes(action)

    def wrap(call: Callable[_P, Awaitable[None]]) -> Callable[_P, Awaitable[None]]:
        @functools.wraps(call)
        async def counted(*args: _P.args, **kwargs: _P.kwargs) -> None:
            await outcomes.count(call(*args, **kwargs))

        return counted

    return wrap


_LOCATION_OUTCOMES = {"manual": _Outcomes("setManualLocation"), "automatic": _Outcomes("setAutomaticLocation")}


class PresenceActions:
    def __init__(self, finder: UserFinder, writer: PresenceWriter, clock: Clock) -> None:
        self._finder = finder
        self._writer = writer
        self._clock = clock

    async def target(self, principal: Principal, ref: str | None, operation: Operation) -> User:
        """The user ``ref`` names (None: the signed-in user), if the caller may act on them.

        The permission is checked before the user's existence is revealed.
        """
        ref = require_delegated(principal) if ref is None else ref
        user = await self._finder.find_user(principal.tenant_id, ref)
        authorize(principal, operation, Target.OTHER if user is None else target_of(principal, user.id))
        if user is None:
            raise ResourceNotFound(f"User '{ref[:128]}' was not found.")
        return user

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def writer(self) -> PresenceWriter:
        return self._writer

    async def apply(
        self, principal: Principal, ref: str | None, operation: Operation, mutation: Mutation, cause: str
    ) -> tuple[Change, ...]:
        """Check the permission and change the user's facts; the changes logged.

        A user named by object id (or ``/me``) is not looked up first: the permission
        depends on the id alone, and the writer finds out, under the user's lock,
        whether they exist in the caller's tenant (a 404 if not). A user named by UPN is
        looked up, as for a read. A rejected change leaves everything as it was.
        """
        user: User | UserRef
        if ref is not None and "@" in ref:
            user = await self.target(principal, ref, operation)
        else:
            user_id = require_delegated(principal) if ref is None else ref.lower()
            authorize(principal, operation, target_of(principal, user_id))
            if "\x00" in user_id:  # names nobody, and PostgreSQL refuses NUL in text
                raise ResourceNotFound(f"User '{user_id[:128]}' was not found.")
            user = UserRef(user_id, principal.tenant_id)
        try:
            decision = await self._writer.write(user, deciding(mutation, cause))
        except UserNotFound:
            raise ResourceNotFound(f"User '{(ref or user.id)[:128]}' was not found.") from None
        return decision.changes

    @_counted("setPresence")
    async def set_presence(
        self,
        principal: Principal,
        ref: str | None,
        session_id: str | None,
        availability: str | None,
        activity: str | None,
        expiration: str | None,
    ) -> None:
        app_id = _own_session(principal, session_id)
        pair = _pair(availability, activity, SESSION_PAIRS, "setPresence")
        duration = change.session_duration(duration_value(expiration, "expirationDuration"))
        await self.apply(
            principal,
            ref,
            Operation.WRITE_PRESENCE,
            lambda f, now: change.set_session(f, app_id, pair, duration, now),
            "setPresence",
        )

    @_counted("clearPresence")
    async def clear_presence(self, principal: Principal, ref: str | None, session_id: str | None) -> None:
        app_id = _own_session(principal, session_id)
        await self.apply(
            principal,
            ref,
            Operation.WRITE_PRESENCE,
            lambda f, now: change.clear_session(f, app_id, now),
            "clearPresence",
        )

    @_counted("endSessionSoon")
    async def end_session_soon(
        self, principal: Principal, ref: str | None, session_id: str | None, within: timedelta
    ) -> None:
        """Let the caller's session end ``within`` from now unless refreshed before (a page that may be reloading)."""
        app_id = _own_session(principal, session_id)
        await self.apply(
            principal,
            ref,
            Operation.WRITE_PRESENCE,
            lambda f, now: change.end_session_at(f, app_id, now + within, now),
            "clearPresence",
        )

    @_counted("setUserPreferredPresence")
    async def set_preferred_presence(
        self,
        principal: Principal,
        ref: str | None,
        availability: str | None,
        activity: str | None,
        expiration: str | None,
    ) -> None:
        pair = _pair(availability, activity, PREFERRED_PAIRS, "setUserPreferredPresence")
        duration = change.preferred_duration(pair[0], duration_value(expiration, "expirationDuration"))
        await self.apply(
            principal,
            ref,
            Operation.WRITE_PRESENCE,
            lambda f, now: change.set_preferred(f, pair, duration, now),
            "setUserPreferredPresence",
        )

    @_counted("clearUserPreferredPresence")
    async def clear_preferred_presence(self, principal: Principal, ref: str | None) -> None:
        await self.apply(
            principal,
            ref,
            Operation.WRITE_PRESENCE,
            lambda f, now: change.clear_preferred(f),
            "clearUserPreferredPresence",
        )

    @_counted("setStatusMessage")
    async def set_status_message(
        self,
        principal: Principal,
        ref: str | None,
        content: str | None,
        content_type: str | None,
        expiry_date_time: str | None,
        expiry_time_zone: str | None,
        has_expiry: bool,
    ) -> None:
        if content_type is not None and content_type.lower() != "text":
            raise BadRequest("'statusMessage.message.contentType' must be text.")
        content = text_value(content, "statusMessage.message.content", MAX_STATUS_LENGTH)
        expires: datetime | None = None
        zone: str | None = None
        if has_expiry:
            expires, zone = local_instant(expiry_date_time, expiry_time_zone, "statusMessage.expiryDateTime")

        def mutation(facts: PresenceFacts, now: datetime) -> PresenceFacts:
            if not content:
                return change.set_status_message(facts, None)
            if expires is not None and expires <= now:
                raise BadRequest("'statusMessage.expiryDateTime' is in the past.")
            return change.set_status_message(facts, StatusMessage(content, now, expires, zone))

        await self.apply(principal, ref, Operation.WRITE_PRESENCE, mutation, "setStatusMessage")

    async def set_location(
        self, principal: Principal, ref: str | None, layer: str, location_type: str | None, place_id: str | None
    ) -> None:
        outcomes = _LOCATION_OUTCOMES["manual" if layer == "manual" else "automatic"]
        await outcomes.count(self._set_location(principal, ref, layer, location_type, place_id))

    async def _set_location(
        self, principal: Principal, ref: str | None, layer: str, location_type: str | None, place_id: str | None
    ) -> None:
        kind = enum_value(WorkLocationType, location_type, "workLocationType", _LOCATION_TYPES)
        location = LocationLayer(kind, text_value(place_id, "placeId", MAX_PLACE_ID))
        cause = "setManualLocation" if layer == "manual" else "setAutomaticLocation"
        await self.apply(
            principal, ref, Operation.WRITE_LOCATION, lambda f, now: change.set_location(f, layer, location), cause
        )

    @_counted("clearAutomaticLocation")
    async def clear_automatic_location(self, principal: Principal, ref: str | None) -> None:
        await self.apply(
            principal,
            ref,
            Operation.WRITE_LOCATION,
            lambda f, now: change.clear_automatic_location(f),
            "clearAutomaticLocation",
        )

    @_counted("clearLocation")
    async def clear_location(self, principal: Principal, ref: str | None) -> None:
        await self.apply(
            principal, ref, Operation.WRITE_LOCATION, lambda f, now: change.clear_location(f), "clearLocation"
        )


def _own_session(principal: Principal, session_id: str | None) -> str:
    """The session id, which must be the calling application's id (docs/graph-api.md, "Writes")."""
    app_id = guid_value(session_id, "sessionId")
    if app_id != principal.app_id:
        raise BadRequest(f"'sessionId' must be the calling application's id ({principal.app_id}).")
    return app_id


def _pair(availability: str | None, activity: str | None, allowed: frozenset[Pair], action: str) -> Pair:
    return change.pair_of(
        enum_value(Availability, availability, "availability"),
        enum_value(Activity, activity, "activity"),
        allowed,
        action,
    )
