"""The portal's signed-in session, which the Graph API's live stream accepts too (an EventSource
cannot send a header): the cookie, the portal as an application, and the person it acts for.

Below both HTTP adapters (``api`` and ``web``), which use it and do not know each other.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from starlette.requests import HTTPConnection

from presenced.auth.principal import Principal
from presenced.clock import real_now
from presenced.oauth.signin import Session
from presenced.services.entities import Account
from presenced.wiring import services_of

SESSION_COOKIE = "presenced_session"
PORTAL_APP_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://presenced/portal"))
#: What the portal may do for the signed-in person, as a Teams client may.
PORTAL_SCOPES = frozenset({"Presence.ReadWrite", "Presence.Read.All", "MailboxSettings.ReadWrite", "User.Read"})


def portal_principal(account: Account) -> Principal:
    """The signed-in person acting through the portal."""
    return Principal(
        tenant_id=account.user.tenant_id,
        app_id=PORTAL_APP_ID,
        expires_at=real_now() + timedelta(hours=1),
        user_id=account.user.id,
        scopes=PORTAL_SCOPES,
        directory_admin=account.is_admin,
    )


async def current_session(connection: HTTPConnection) -> Session | None:
    """The portal session the request's cookie names, if it is signed in."""
    return await services_of(connection).signin.session(connection.cookies.get(SESSION_COOKIE))


async def current_account(connection: HTTPConnection) -> Account | None:
    """The person the request's portal session cookie signs in, if any."""
    session = await current_session(connection)
    return None if session is None else session.account
