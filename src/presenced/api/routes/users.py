"""Users as Graph lists them: ``GET /users`` in pages with ``$filter``, ``$search``, ``$orderby``, ``$count`` and
``$select``; ``GET /users/$count``; and profile photos (docs/graph-api.md, "Users" and "Profile photos").

The OData options are read here into a ``UserQuery``; the directory service decides who may list whom.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from presenced.api import wire
from presenced.api.endpoints import Endpoint
from presenced.api.http import (
    graph_headers,
    json_response,
    next_link,
    page_size,
    read_body,
    skiptoken,
    skiptoken_position,
)
from presenced.api.routes import directory_wire as dw
from presenced.api.routes.directory_http import actor, directory, now
from presenced.auth.operations import Operation, Target
from presenced.errors import BadRequest
from presenced.services.entities import Account, Photo, UserClause, UserQuery
from presenced.services.photos import MAX_PHOTO
from presenced.wiring import services_of

#: What ``$select`` may name, in the order Graph writes them; all but ``accountEnabled`` by default.
PROPERTIES = ("id", "displayName", "givenName", "surname", "mail", "userPrincipalName", "accountEnabled")
_DEFAULT = PROPERTIES[:-1]
#: What ``User.ReadBasic.All`` shows (docs/graph-api.md, "Users").
_BASIC = frozenset(_DEFAULT)
_STARTSWITH = frozenset({"displayName", "userPrincipalName", "mail", "givenName", "surname"})
_EQUALS = frozenset({"id", "userPrincipalName", "accountEnabled"})
_SEARCHABLE = frozenset({"displayName", "userPrincipalName"})
_OPTIONS = frozenset({"$select", "$filter", "$search", "$orderby", "$count", "$top", "$skiptoken"})

_STRING = r"'((?:[^']|'')*)'"
_CLAUSE = re.compile(
    rf"\s*(?:startswith\(\s*(\w+)\s*,\s*{_STRING}\s*\)"
    rf"|(\w+)\s+eq\s+(?:{_STRING}|(true|false))"
    rf"|(\w+)\s+in\s+\(\s*({_STRING}(?:\s*,\s*{_STRING})*)\s*\))\s*",
    re.IGNORECASE,
)
_JOIN = re.compile(r"(and|or)\b", re.IGNORECASE)
_TERM = re.compile(r'\s*"(\w+):([^"]*)"\s*')


class ProfilePhoto(msgspec.Struct, kw_only=True):
    """A photo's metadata (``GET /users/{id}/photo``); the bytes are at ``/photo/$value``."""

    id: str
    height: int
    width: int


class UnsupportedQuery(BadRequest):
    """An advanced query without ``ConsistencyLevel: eventual``, as Graph answers it."""

    code = "Request_UnsupportedQuery"


def _unquote(text: str) -> str:
    return text.replace("''", "'")


def _filter(expression: str) -> tuple[tuple[UserClause, ...], bool]:
    """The clauses of ``$filter`` and whether they are joined by ``or``."""
    clauses: list[UserClause] = []
    joins: set[str] = set()
    at = 0
    while True:
        match = _CLAUSE.match(expression, at)
        if match is None:
            raise BadRequest(
                "$filter: supported are startswith(property,'text'), property eq 'text' (or true/false), "
                "property in ('a','b'), joined by 'and' or 'or'."
            )
        clauses.append(_clause(match))
        at = match.end()
        if at == len(expression):
            break
        join = _JOIN.match(expression, at)
        if join is None:
            raise BadRequest(f"$filter: expected 'and' or 'or' at position {at}.")
        joins.add(join.group(1).lower())
        at = join.end()
    if len(joins) > 1:
        raise BadRequest("$filter: join the clauses with 'and' or with 'or', not both.")
    return tuple(clauses), joins == {"or"}


def _clause(match: re.Match[str]) -> UserClause:
    if match.group(1) is not None:
        prop = match.group(1)
        if prop not in _STARTSWITH:
            raise BadRequest(f"$filter: startswith takes one of {', '.join(sorted(_STARTSWITH))}, not '{prop[:64]}'.")
        return UserClause(prop, "startswith", (_unquote(match.group(2)),))
    if match.group(3) is not None:
        prop, text, boolean = match.group(3), match.group(4), match.group(5)
        if prop not in _EQUALS:
            raise BadRequest(f"$filter: eq takes one of {', '.join(sorted(_EQUALS))}, not '{prop[:64]}'.")
        if (prop == "accountEnabled") != (boolean is not None):
            raise BadRequest("$filter: accountEnabled compares with true or false; the others with 'text'.")
        return UserClause(prop, "eq", ((boolean.lower(),) if boolean is not None else (_unquote(text),)))
    prop = match.group(6)
    if prop not in {"id", "userPrincipalName"}:
        raise BadRequest(f"$filter: in takes id or userPrincipalName, not '{prop[:64]}'.")
    values = tuple(_unquote(v) for v in re.findall(_STRING, match.group(7)))
    if len(values) > 15:
        raise BadRequest("$filter: in takes at most 15 values.")
    return UserClause(prop, "in", values)


def _search(expression: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    """The terms of ``$search`` ("property:word" joined by OR or AND) and whether all must match."""
    terms: list[tuple[str, str]] = []
    joins: set[str] = set()
    at = 0
    while True:
        match = _TERM.match(expression, at)
        if match is None:
            raise BadRequest('$search: expected "displayName:text" or "userPrincipalName:text", in double quotes.')
        prop, word = match.group(1), match.group(2)
        if prop not in _SEARCHABLE:
            raise BadRequest(f"$search: searchable are displayName and userPrincipalName, not '{prop[:64]}'.")
        terms.append((prop, word))
        at = match.end()
        if at == len(expression):
            break
        join = _JOIN.match(expression, at)
        if join is None:
            raise BadRequest(f"$search: expected OR or AND at position {at}.")
        joins.add(join.group(1).lower())
        at = join.end()
    if len(joins) > 1:
        raise BadRequest("$search: join the terms with OR or with AND, not both.")
    return tuple(terms), joins == {"and"}


def _orderby(value: str) -> bool:
    """Whether ``$orderby`` (displayName, ascending or descending) is descending."""
    parts = value.split()
    if (
        not parts
        or parts[0] != "displayName"
        or len(parts) > 2
        or (len(parts) == 2 and parts[1] not in {"asc", "desc"})
    ):
        raise BadRequest("$orderby: users can be ordered by displayName (asc or desc) only.")
    return parts[-1] == "desc"


def _after(token: str, by_name: bool, descending: bool) -> tuple[str, ...]:
    """Where a ``$skiptoken`` says the page starts; a token of another order, or none of ours, is a 400."""
    found = skiptoken_position(token, list[bool | str])
    keys = found[2:]
    if (
        found[:2] != [by_name, descending]
        or len(keys) != (2 if by_name else 1)
        or not all(isinstance(k, str) and len(k) <= 400 for k in keys)
    ):
        raise BadRequest("$skiptoken is not valid for this query: follow @odata.nextLink as it is.")
    return tuple(str(k) for k in keys)


@dataclass(frozen=True, slots=True)
class _Listing:
    query: UserQuery
    selected: tuple[str, ...] | None
    count: bool


def _listing(request: Request) -> _Listing:
    options: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if not name.startswith("$"):
            continue
        option = name.lower()
        if option not in _OPTIONS:
            raise BadRequest(f"Query option '{name[:64]}' is not supported on this resource.")
        if option in options:
            raise BadRequest(f"Query option '{name[:64]}' is given more than once.")
        options[option] = value
    eventual = request.headers.get("consistencylevel", "").strip().lower() == "eventual"
    selected = _selected(options["$select"]) if "$select" in options else None
    clauses, any_clause = _filter(options["$filter"]) if "$filter" in options else ((), False)
    terms, all_terms = _search(options["$search"]) if "$search" in options else ((), False)
    descending = _orderby(options["$orderby"]) if "$orderby" in options else False
    count = options.get("$count", "false").lower()
    if count not in {"true", "false"}:
        raise BadRequest("$count must be true or false.")
    if not eventual:
        if terms:
            raise UnsupportedQuery(
                "Request with $search query parameter only works with the request header 'ConsistencyLevel: eventual'."
            )
        if count == "true":
            raise UnsupportedQuery("$count=true on users needs the request header 'ConsistencyLevel: eventual'.")
        if clauses and "$orderby" in options:
            raise UnsupportedQuery("$orderby with $filter needs the request header 'ConsistencyLevel: eventual'.")
    by_name = "$orderby" in options
    query = UserQuery(
        clauses,
        any_clause,
        terms,
        all_terms,
        by_name,
        descending,
        _after(options["$skiptoken"], by_name, descending) if "$skiptoken" in options else (),
        page_size(options.get("$top")),
    )
    return _Listing(query, selected, count == "true")


def _selected(value: str) -> tuple[str, ...]:
    named = tuple(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))
    if not named:
        raise BadRequest("$select must name at least one property.")
    for prop in named:
        if prop not in PROPERTIES:
            raise BadRequest(f"$select: could not find a property named '{prop[:64]}' on type 'microsoft.graph.user'.")
    return named


def user_item(account: Account, selected: tuple[str, ...] | None, full: bool) -> dict[str, Any]:
    """A user as the list shows it: the selected properties (else the default ones), basic ones only unless
    ``full``; ``id`` always."""
    user = account.user
    values: dict[str, Any] = {
        "id": user.id,
        "displayName": user.display_name,
        "givenName": account.given_name,
        "surname": account.surname,
        "mail": account.mail,
        "userPrincipalName": user.user_principal_name,
        "accountEnabled": True,
    }
    names = selected or _DEFAULT
    return {"id": user.id} | {n: values[n] for n in names if full or n in _BASIC}


async def list_users(request: Request) -> Response:
    listing = _listing(request)
    who = await actor(request)
    service = directory(request)
    page, full = await service.page_users(who, listing.query)
    version = request.scope["path"].split("/", 2)[1]
    state = services_of(request)
    select = f"({','.join(listing.selected)})" if listing.selected else ""
    body: dict[str, Any] = {"@odata.context": f"{state.base_url}/{version}/$metadata#users{select}"}
    if listing.count:
        body["@odata.count"] = await service.count_users(who, listing.query)
    if page.next_after is not None:
        position = [listing.query.by_name, listing.query.descending, *page.next_after]
        body["@odata.nextLink"] = next_link(request, state.base_url, skiptoken(position))
    body["value"] = [user_item(a, listing.selected, full) for a in page.accounts]
    return json_response(request, wire.encode(body))


async def count_users(request: Request) -> Response:
    for name, _ in request.query_params.multi_items():
        if name.startswith("$") and name.lower() not in {"$filter", "$search"}:
            raise BadRequest(f"Query option '{name[:64]}' is not supported on /users/$count.")
    if request.headers.get("consistencylevel", "").strip().lower() != "eventual":
        raise UnsupportedQuery("/users/$count needs the request header 'ConsistencyLevel: eventual'.")
    listing = _listing(request)
    total = await directory(request).count_users(await actor(request), listing.query)
    return Response(str(total), 200, headers=graph_headers(request), media_type="text/plain")


# ---- photos ----


def _photo_ref(request: Request) -> str | None:
    return request.path_params.get("id")


def _no_query(request: Request) -> None:
    for name, _ in request.query_params.multi_items():
        if name.startswith("$"):
            raise BadRequest(f"Query option '{name[:64]}' is not supported on a photo.")


async def get_photo(request: Request) -> Response:
    _no_query(request)
    photo = await directory(request).photo(await actor(request), _photo_ref(request))
    version = request.scope["path"].split("/", 2)[1]
    who = "me" if _photo_ref(request) is None else f"users('{request.path_params['id']}')"
    body = {
        "@odata.context": f"{services_of(request).base_url}/{version}/$metadata#{who}/photo/$entity",
        "@odata.mediaContentType": photo.content_type,
        "@odata.mediaEtag": f'W/"{photo.etag}"',
        "id": _size_id(photo),
        "height": photo.height,
        "width": photo.width,
    }
    return json_response(request, wire.encode(body))


def _size_id(photo: Photo) -> str:
    return f"{photo.width}X{photo.height}"


async def get_photo_value(request: Request) -> Response:
    _no_query(request)
    photo = await directory(request).photo(await actor(request), _photo_ref(request))
    headers = graph_headers(request) | {"ETag": f'W/"{photo.etag}"'}
    return Response(photo.data, 200, headers=headers, media_type=photo.content_type)


async def put_photo_value(request: Request) -> Response:
    _no_query(request)
    who = await actor(request)
    data = await read_body(request.headers.get("content-length"), request.stream(), MAX_PHOTO)
    await directory(request).set_photo(who, _photo_ref(request), data, now(request))
    return Response(b"", 200, headers=graph_headers(request))


async def delete_photo(request: Request) -> Response:
    _no_query(request)
    await directory(request).delete_photo(await actor(request), _photo_ref(request))
    return Response(b"", 204, headers=graph_headers(request))


_BASIC_READ = ((Operation.READ_USERS_BASIC, Target.ANY),)
_OWN_PROFILE = ((Operation.READ_PROFILE, Target.OWN),)
_OWN_PHOTO = ((Operation.WRITE_PHOTO, Target.OWN),)
_ANY_PHOTO = ((Operation.WRITE_PHOTO, Target.OWN), (Operation.WRITE_PHOTO, Target.OTHER))
_IMAGES = ("image/jpeg", "image/png")
_LIST_QUERY = ("$select", "$filter", "$search", "$orderby", "$count", "$top", "$skiptoken")

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/users",
        list_users,
        "users.list",
        "List the tenant's users, a page at a time",
        _BASIC_READ,
        response_body=dw.UserCollection,
        query=_LIST_QUERY,
        note="$search, $count=true, and $orderby with $filter need the header ConsistencyLevel: eventual.",
    ),
    Endpoint(
        "GET",
        "/users/$count",
        count_users,
        "users.count",
        "Count the tenant's users (text/plain)",
        _BASIC_READ,
        query=("$filter", "$search"),
        note="Needs the header ConsistencyLevel: eventual.",
        response_media=("text/plain",),
    ),
    Endpoint(
        "GET",
        "/me/photo",
        get_photo,
        "me.getPhoto",
        "Get the signed-in user's photo's metadata",
        _OWN_PROFILE,
        response_body=ProfilePhoto,
    ),
    Endpoint(
        "GET",
        "/me/photo/$value",
        get_photo_value,
        "me.getPhotoContent",
        "Get the signed-in user's photo",
        _OWN_PROFILE,
        response_media=_IMAGES,
    ),
    Endpoint(
        "PUT",
        "/me/photo/$value",
        put_photo_value,
        "me.setPhotoContent",
        "Set the signed-in user's photo (JPEG or PNG, at most 4 MiB)",
        _OWN_PHOTO,
        request_media=_IMAGES,
    ),
    Endpoint(
        "GET",
        "/users/{id}/photo",
        get_photo,
        "users.getPhoto",
        "Get a user's photo's metadata",
        _OWN_PROFILE + _BASIC_READ,
        response_body=ProfilePhoto,
    ),
    Endpoint(
        "GET",
        "/users/{id}/photo/$value",
        get_photo_value,
        "users.getPhotoContent",
        "Get a user's photo",
        _OWN_PROFILE + _BASIC_READ,
        response_media=_IMAGES,
    ),
    Endpoint(
        "PUT",
        "/users/{id}/photo/$value",
        put_photo_value,
        "users.setPhotoContent",
        "Set a user's photo (JPEG or PNG, at most 4 MiB)",
        _ANY_PHOTO,
        request_media=_IMAGES,
    ),
    *(
        Endpoint(
            method,
            path,
            handler,
            f"{who}.{name}",
            summary,
            access,
            status=204 if method == "DELETE" else 200,
            request_media=media,
        )
        for who, base, access in (("me", "/me", _OWN_PHOTO), ("users", "/users/{id}", _ANY_PHOTO))
        for method, path, handler, name, summary, media in (
            ("PATCH", f"{base}/photo/$value", put_photo_value, "updatePhotoContent", "Set the photo (as PUT)", _IMAGES),
            ("DELETE", f"{base}/photo", delete_photo, "deletePhoto", "Remove the photo", ()),
            ("DELETE", f"{base}/photo/$value", delete_photo, "deletePhotoContent", "Remove the photo", ()),
        )
    ),
)
