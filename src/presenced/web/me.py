"""My presence: see and set one's own presence, status message, automatic replies and work location, and see
one's presence over a day.

Every form goes through the same services as the Graph API, as the signed-in
person acting through the portal app. While the page is open its script keeps
a presence session of the portal app alive (``POST /me/session``), as a Teams
client does: it refreshes the session only after the person has used the page,
so an idle person fades to Inactive and then Away by the rules every session
follows (docs/graph-api.md, "How the visible presence is computed"), and closing the page ends the session.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from presenced.domain import timezones
from presenced.errors import BadRequest, PresencedError
from presenced.portal_session import PORTAL_APP_ID, portal_principal
from presenced.services.directory import Actor
from presenced.services.entities import Account
from presenced.services.mailbox import LocalTime, MailboxService, RepliesPatch
from presenced.web.pages import read_form
from presenced.web.people import day_timeline
from presenced.web.portal import page, signed_in
from presenced.web.presence_words import CHOICES, LOCATION_WORDS, VOCABULARY, initials, shown
from presenced.wiring import services_of

#: How long the portal's session lives without a refresh; the page refreshes it every minute while used.
SESSION_LIFETIME = "PT1H"
#: How long after the page is left its session ends, unless the next page refreshes it.
LEAVE_GRACE = timedelta(seconds=15)
#: What the status-message "Clear after" choices mean.
CLEAR_AFTER = {
    "never": None,
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "today": "today",
    "1w": timedelta(days=7),
}
PREFERRED_DURATIONS = ("", "PT30M", "PT1H", "PT2H", "PT4H", "P1D", "P7D")
DONE = {
    "preferred": "Your status is set.",
    "reset": "Your status is reset: it follows your activity again.",
    "status": "Your status message is saved.",
    "status-cleared": "Your status message is cleared.",
    "replies": "Your automatic replies are saved.",
    "location": "Your work location is saved.",
    "location-cleared": "Your work location is cleared.",
    "timezone": "Your time zone is saved.",
}


def _zones(current: str) -> list[str]:
    zones = ["UTC", *sorted(timezones.WINDOWS_TO_IANA)]
    return zones if current in zones else [current, *zones]


def _form_time(raw: str) -> str:
    """A datetime-local field's value (``YYYY-MM-DDTHH:MM``) as Graph's dateTime, with seconds."""
    raw = raw.strip()
    return f"{raw}:00" if len(raw) == 16 else raw


def _local(instant: datetime | None, zone: str) -> str:
    """An instant as the person's wall-clock time, as a datetime-local field wants it."""
    if instant is None:
        return ""
    return timezones.format_local(instant, zone)[:16]


async def _show(request: Request, account: Account, status: int = 200, error: str | None = None) -> Response:
    principal = portal_principal(account)
    view = await services_of(request).presence.get_my_presence(principal)
    mailbox: MailboxService = services_of(request).mailbox
    _, settings = await mailbox.get(principal, None)
    now = await services_of(request).actions.clock.now()
    zone = settings.time_zone
    local_now = timezones.zone(zone)
    offset = now.astimezone(local_now).utcoffset() if local_now is not None else None
    replies = settings.automatic_replies
    visible = view.state.visible
    done = DONE.get(request.query_params.get("done", ""))
    photo = await services_of(request).directory.photo_tags(Actor.signed_in(account), [account.user.id])
    timeline = await day_timeline(request, account, account.user.id, zone, now, "/me")
    return page(
        request,
        "me.html",
        account,
        "me",
        status,
        notice=done,
        page_error=error,
        me={
            "id": account.user.id,
            "initials": initials(account.user.display_name),
            "photo": photo.get(account.user.id),
        },
        presence=shown(visible),
        sequence=f"{view.state.sequence:020d}",
        status_expiry=(
            _local(visible.status_message.expires_at, zone)
            if visible.status_message and visible.status_message.expires_at
            else None
        ),
        local_time=timezones.format_local(now, zone)[11:16],
        now_ms=int(now.timestamp() * 1000),
        offset_minutes=int(offset.total_seconds() // 60) if offset is not None else 0,
        zone=zone,
        zones=_zones(zone),
        replies=replies,
        replies_start=_local(replies.scheduled_start, settings.scheduled_start_time_zone or zone),
        # One zone field serves both: the end is shown in the start's zone, so saving keeps both instants.
        replies_end=_local(replies.scheduled_end, settings.scheduled_start_time_zone or zone),
        replies_zone=settings.scheduled_start_time_zone or zone,
        choices=CHOICES,
        durations=PREFERRED_DURATIONS,
        locations=LOCATION_WORDS,
        vocabulary=json.dumps(VOCABULARY),
        portal_app_id=PORTAL_APP_ID,
        timeline=timeline,
    )


async def _me(request: Request, account: Account) -> Response:
    return await _show(request, account)


FormHandler = Callable[[Request, Account, dict[str, str]], Awaitable[None]]


def _action(change: str) -> Callable[[FormHandler], Callable[[Request], Awaitable[Response]]]:
    """A form that changes something: on success back to the page with a notice, else the page with the reason."""

    def wrap(handler: FormHandler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request, account: Account) -> Response:
            form = await read_form(request)
            try:
                await handler(request, account, form)
            except PresencedError as error:
                return await _show(request, account, error.status, error.message)
            return RedirectResponse(f"/me?done={change}", 303)

        return signed_in(endpoint)

    return wrap


@_action("preferred")
async def set_preferred(request: Request, account: Account, form: dict[str, str]) -> None:
    choice = form.get("availability", "")
    pairs = {availability: activity for availability, activity, _ in CHOICES}
    if choice not in pairs:
        raise BadRequest("Choose one of the statuses listed.")
    duration = form.get("duration", "")
    if duration not in PREFERRED_DURATIONS:
        raise BadRequest("Choose one of the durations listed.")
    await services_of(request).actions.set_preferred_presence(
        portal_principal(account), None, choice, pairs[choice], duration or None
    )


@_action("reset")
async def reset_preferred(request: Request, account: Account, form: dict[str, str]) -> None:
    await services_of(request).actions.clear_preferred_presence(portal_principal(account), None)


async def _expiry(request: Request, account: Account, choice: str, custom: str) -> tuple[str, str] | None:
    """The status message's expiry as (dateTime, timeZone) in the person's zone, or None for never."""
    _, settings = await services_of(request).mailbox.get(portal_principal(account), None)
    zone = settings.time_zone
    if choice == "custom":
        if not custom:
            raise BadRequest("Enter the date and time to clear the message at.")
        return _form_time(custom), zone
    if choice not in CLEAR_AFTER:
        raise BadRequest("Choose when to clear the message.")
    after = CLEAR_AFTER[choice]
    if after is None:
        return None
    now = await services_of(request).actions.clock.now()
    if after == "today":
        local = timezones.format_local(now, zone)[:10]
        return f"{local}T23:59:59", zone
    assert isinstance(after, timedelta)
    return timezones.format_local(now + after, zone)[:19], zone


@_action("status")
async def set_status(request: Request, account: Account, form: dict[str, str]) -> None:
    message = form.get("message", "").strip()
    if not message:
        raise BadRequest("Type a message, or use Clear to remove it.")
    expiry = await _expiry(request, account, form.get("clear_after", "never"), form.get("expires", ""))
    await services_of(request).actions.set_status_message(
        portal_principal(account),
        None,
        message,
        "text",
        expiry[0] if expiry else None,
        expiry[1] if expiry else None,
        has_expiry=expiry is not None,
    )


@_action("status-cleared")
async def clear_status(request: Request, account: Account, form: dict[str, str]) -> None:
    await services_of(request).actions.set_status_message(
        portal_principal(account), None, "", "text", None, None, False
    )


@_action("replies")
async def set_replies(request: Request, account: Account, form: dict[str, str]) -> None:
    mode = form.get("replies", "")
    status = {"off": "disabled", "on": "alwaysEnabled", "scheduled": "scheduled"}.get(mode)
    if status is None:
        raise BadRequest("Choose off, on or scheduled.")
    zone = form.get("time_zone") or None
    start = end = None
    if status == "scheduled":
        if not form.get("start") or not form.get("end"):
            raise BadRequest("Scheduled replies need a start and an end.")
        start, end = LocalTime(_form_time(form["start"]), zone), LocalTime(_form_time(form["end"]), zone)
    patch = RepliesPatch(
        status=status,
        internal_reply_message=form.get("internal", ""),
        external_reply_message=form.get("external", ""),
        scheduled_start=start,
        scheduled_end=end,
    )
    await services_of(request).mailbox.update(portal_principal(account), None, None, patch)


@_action("timezone")
async def set_time_zone(request: Request, account: Account, form: dict[str, str]) -> None:
    zone = form.get("time_zone", "")
    if not zone:
        raise BadRequest("Choose a time zone.")
    await services_of(request).mailbox.update(portal_principal(account), None, zone, None)


@_action("location")
async def set_location(request: Request, account: Account, form: dict[str, str]) -> None:
    kind = form.get("location", "")
    if kind not in LOCATION_WORDS:
        raise BadRequest("Choose a work location.")
    await services_of(request).actions.set_location(
        portal_principal(account), None, "manual", kind, form.get("place", "").strip() or None
    )


@_action("location-cleared")
async def clear_location(request: Request, account: Account, form: dict[str, str]) -> None:
    await services_of(request).actions.clear_location(portal_principal(account), None)


async def _keep_alive(request: Request, account: Account) -> Response:
    """The open page's heartbeat: the portal's session, Available, refreshed."""
    await services_of(request).actions.set_presence(
        portal_principal(account), None, PORTAL_APP_ID, "Available", "Available", SESSION_LIFETIME
    )
    return Response(status_code=204)


async def _end_session(request: Request, account: Account) -> Response:
    """The page was left: the portal's session ends in ``LEAVE_GRACE``, unless a page refreshes it first (a reload,
    a form that comes back here), so a person never flickers Offline between two pages."""
    await services_of(request).actions.end_session_soon(portal_principal(account), None, PORTAL_APP_ID, LEAVE_GRACE)
    return Response(status_code=204)


ROUTES = [
    Route("/me", signed_in(_me), methods=["GET"]),
    Route("/me/preferred", set_preferred, methods=["POST"]),
    Route("/me/preferred/reset", reset_preferred, methods=["POST"]),
    Route("/me/status", set_status, methods=["POST"]),
    Route("/me/status/clear", clear_status, methods=["POST"]),
    Route("/me/replies", set_replies, methods=["POST"]),
    Route("/me/timezone", set_time_zone, methods=["POST"]),
    Route("/me/location", set_location, methods=["POST"]),
    Route("/me/location/clear", clear_location, methods=["POST"]),
    Route("/me/session", signed_in(_keep_alive), methods=["POST"]),
    Route("/me/session/end", signed_in(_end_session), methods=["POST"]),
]
