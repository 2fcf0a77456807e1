"""Granted permissions: what each app has been granted, by whom and when, with a Revoke button for each.

An administrator sees every grant of the organization; anyone else sees the
consents they gave for themselves ("My consents"). ``services.consents`` decides
what each person may see and revoke: a forged request to revoke someone else's
grant is answered as if the grant did not exist, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from presenced.errors import PresencedError
from presenced.services.consents import ApplicationConsent, ClientConsents, Consents, DelegatedConsent
from presenced.services.directory import Actor
from presenced.services.entities import Account
from presenced.web.pages import read_form
from presenced.web.portal import page, signed_in
from presenced.wiring import services_of

DONE = {
    "grant-revoked": "The consent is revoked. The app must ask again before it gets another token with it.",
    "assignment-revoked": "The application permission is revoked. The app's next token will not carry it.",
}
#: Who gave a grant recorded without a person: the command line, the demo data, or an app calling the directory API.
NO_PERSON = "presenced CLI or an app"


def _consents(request: Request) -> Consents:
    consents: Consents = services_of(request).consents
    return consents


def _when(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M UTC")


def granted_by(recorded: str | None, found: Account | None) -> str:
    """Who gave a grant, in words: "Admin (Adele Vance)", "User (Nick Wilke)", or no person."""
    if recorded is None:
        return NO_PERSON
    if found is None:
        return "A user no longer in the directory"
    return f"{'Admin' if found.is_admin else 'User'} ({found.user.display_name})"


def _consent_type(item: DelegatedConsent) -> str:
    if item.grant.consent_type == "AllPrincipals":
        return "Admin consent for all users"
    name = item.user.user.display_name if item.user is not None else "a user no longer in the directory"
    return f"User consent ({name})"


def _delegated(item: DelegatedConsent) -> dict[str, Any]:
    grant = item.grant
    return {
        "id": grant.id,
        "resource": item.resource_name,
        "scopes": grant.scopes,
        "consent": _consent_type(item),
        "by": granted_by(grant.granted_by, item.granted_by),
        "when": _when(grant.granted_at or grant.created),
    }


def _application(item: ApplicationConsent) -> dict[str, Any]:
    assignment = item.assignment
    return {
        "id": assignment.id,
        "resource": item.resource_name,
        "permission": item.permission,
        "by": granted_by(assignment.granted_by, item.granted_by),
        "when": _when(assignment.granted_at or assignment.created),
    }


def _client(item: ClientConsents) -> dict[str, Any]:
    return {
        "id": item.client.id,
        "name": item.client.display_name,
        "app_id": item.client.app_id,
        "registered": item.registered_here,
        "delegated": [_delegated(d) for d in item.delegated],
        "application": [_application(a) for a in item.application],
    }


async def _show(request: Request, account: Account, status: int = 200, error: str | None = None) -> Response:
    tenant = await services_of(request).directory.tenant(Actor.signed_in(account))
    # Read once each: grants, assignments, people, service principals (which say where each app is registered).
    clients = await _consents(request).overview(account)
    return page(
        request, "consents.html", account, "consents", status,
        notice=None if error else DONE.get(request.query_params.get("done", "")), page_error=error,
        tenant=tenant, clients=[_client(c) for c in clients],
    )  # fmt: skip


async def _page(request: Request, account: Account) -> Response:
    return await _show(request, account)


Revocation = Callable[[Consents, Account, str], Awaitable[object]]


def _revoke(field: str, done: str, revoke: Revocation) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request, account: Account) -> Response:
        form = await read_form(request)
        try:
            await revoke(_consents(request), account, form.get(field, "")[:64])
        except PresencedError as error:
            return await _show(request, account, error.status, error.message)
        return RedirectResponse(f"/consents?done={done}", 303)

    return signed_in(endpoint)


ROUTES = [
    Route("/consents", signed_in(_page), methods=["GET"]),
    Route(
        "/consents/grants/revoke",
        _revoke("grant_id", "grant-revoked", lambda c, a, i: c.revoke_grant(a, i)),
        methods=["POST"],
    ),
    Route(
        "/consents/assignments/revoke",
        _revoke("assignment_id", "assignment-revoked", lambda c, a, i: c.revoke_assignment(a, i)),
        methods=["POST"],
    ),
]
