"""GET and PATCH of /me/mailboxSettings and /users/{id}/mailboxSettings (time zone, automatic replies)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.endpoints import Endpoint, on_user
from presenced.api.http import json_body, json_response, principal_of
from presenced.auth.operations import Operation
from presenced.domain.model import MailboxSettings
from presenced.services.entities import User
from presenced.services.mailbox import LocalTime, RepliesPatch
from presenced.wiring import services_of


def _render(request: Request, user: User, settings: MailboxSettings) -> Response:
    version = request.scope["path"].split("/", 2)[1]
    context = f"{services_of(request).base_url}/{version}/$metadata#users('{user.id}')/mailboxSettings"
    return json_response(request, wire.encode(wire.mailbox_settings(settings, context)))


def _local(value: wire.DateTimeTimeZoneInput | None) -> LocalTime | None:
    return None if value is None else LocalTime(value.dateTime, value.timeZone)


async def get_mailbox_settings(request: Request) -> Response:
    principal = await principal_of(request)
    user, settings = await services_of(request).mailbox.get(principal, request.path_params.get("id"))
    return _render(request, user, settings)


async def patch_mailbox_settings(request: Request) -> Response:
    principal = await principal_of(request)
    body = await json_body(request, wire.MailboxSettingsPatch)
    replies = body.automaticRepliesSetting
    patch = None
    if replies is not None:
        patch = RepliesPatch(
            status=replies.status,
            external_audience=replies.externalAudience,
            internal_reply_message=replies.internalReplyMessage,
            external_reply_message=replies.externalReplyMessage,
            scheduled_start=_local(replies.scheduledStartDateTime),
            scheduled_end=_local(replies.scheduledEndDateTime),
        )
    user, settings = await services_of(request).mailbox.update(
        principal, request.path_params.get("id"), body.timeZone, patch
    )
    return _render(request, user, settings)


ENDPOINTS = tuple(
    endpoint
    for path, kind in (("/me/mailboxSettings", "me"), ("/users/{id}/mailboxSettings", "users"))
    for endpoint in (
        Endpoint(
            "GET",
            path,
            get_mailbox_settings,
            f"{kind}.getMailboxSettings",
            "Get the time zone and automatic replies",
            on_user(path, Operation.READ_MAILBOX_SETTINGS),
            response_body=wire.MailboxSettingsBody,
        ),
        Endpoint(
            "PATCH",
            path,
            patch_mailbox_settings,
            f"{kind}.updateMailboxSettings",
            "Change the time zone or automatic replies; out of office follows",
            on_user(path, Operation.WRITE_MAILBOX_SETTINGS),
            request_body=wire.MailboxSettingsPatch,
            response_body=wire.MailboxSettingsBody,
        ),
    )
)
