"""People: the organization's users with their presence, kept live from the presence stream."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from presenced.portal_session import portal_principal
from presenced.services.directory import Actor
from presenced.services.entities import Account
from presenced.services.presence import MAX_IDS, PresenceService
from presenced.web.portal import page, signed_in
from presenced.web.presence_words import VOCABULARY, initials, shown
from presenced.wiring import services_of

#: The most people one page shows (and one stream watches); a search narrows a bigger organization.
PAGE_LIMIT = MAX_IDS


async def _people(request: Request, account: Account) -> Response:
    query = request.query_params.get("q", "").strip()[:200]
    accounts = await services_of(request).directory.list_users(Actor.signed_in(account))
    words = query.lower().split()
    matching = sorted(
        (a for a in accounts if all(w in f"{a.user.display_name} {a.user.user_principal_name}".lower() for w in words)),
        key=lambda a: (a.user.display_name.lower(), a.user.user_principal_name),
    )
    listed = matching[:PAGE_LIMIT]
    presence: PresenceService = services_of(request).presence
    views = await presence.get_presences(portal_principal(account), [a.user.id for a in listed]) if listed else []
    by_id = {v.user_id: v for v in views}
    photos = await services_of(request).directory.photo_tags(Actor.signed_in(account), [a.user.id for a in listed])
    people = [
        {
            "id": a.user.id,
            "name": a.user.display_name,
            "upn": a.user.user_principal_name,
            "initials": initials(a.user.display_name),
            "photo": photos.get(a.user.id),
            "presence": shown(by_id[a.user.id].state.visible),
            "sequence": f"{by_id[a.user.id].state.sequence:020d}",
        }
        for a in listed
        if a.user.id in by_id
    ]
    return page(
        request,
        "people.html",
        account,
        "people",
        people=people,
        query=query,
        total=len(matching),
        limited=len(matching) > PAGE_LIMIT,
        vocabulary=json.dumps(VOCABULARY),
        me=account.user.id,
    )


people = signed_in(_people)


async def _photo(request: Request, account: Account) -> Response:
    """A person's photo for the portal's avatars; its address carries the etag, so it is kept a day."""
    photo = await services_of(request).directory.photo(Actor.signed_in(account), request.path_params["id"])
    headers = {"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return Response(photo.data, media_type=photo.content_type, headers=headers)


person_photo = signed_in(_photo)
