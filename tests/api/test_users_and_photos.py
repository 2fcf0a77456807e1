"""Users as Graph lists them (pages, $filter, $search, $orderby, $count, $select, the User.* permissions) and
profile photos, in process, on both stores (docs/graph-api.md, "Users" and "Profile photos")."""

from __future__ import annotations

import base64
import struct
import zlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from presenced.bootstrap import Runtime
from presenced.services.demo import DemoTenant, demo_user_id, seed_demo_profiles
from tests.api.test_read_api import error_of
from tests.support import BASE_URL, Tokens, bearer

ADELE = demo_user_id("adele")
ALEX = demo_user_id("alex")
EVENTUAL = {"ConsistencyLevel": "eventual"}


@pytest.fixture(autouse=True)
async def profiles(runtime: Runtime, demo: DemoTenant) -> None:
    """The demo people with their profiles, as ``serve --demo`` seeds them."""
    await seed_demo_profiles(runtime.identity)


async def _add_users(runtime: Runtime, tenant_id: str, count: int, prefix: str = "person") -> list[str]:
    ids = []
    for n in range(count):
        account = await runtime.identity.create_user(
            tenant_id,
            f"{prefix}{n:04d}@contoso.example",
            f"{prefix.title()} {n:04d}",
            None,
            datetime.now(UTC),
            given_name=prefix.title(),
            surname=f"{n:04d}",
            mail=f"{prefix}.{n:04d}@mail.contoso.example",
        )
        ids.append(account.user.id)
    return ids


async def _walk(client: httpx.AsyncClient, headers: dict[str, str], url: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        response = await client.get(next_url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["value"]
        next_url = body.get("@odata.nextLink")
    return seen


def _png(width: int = 3, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _jpeg(width: int = 48, height: int = 32) -> bytes:
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    frame = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", height, width) + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    scan = b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00" + b"\x12\x34" * 8
    return b"\xff\xd8" + app0 + frame + scan + b"\xff\xd9"


# ---- pages ----


async def test_users_come_in_pages_of_100_with_an_absolute_next_link(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime, demo: DemoTenant
) -> None:
    await _add_users(runtime, demo.tenant.id, 230)
    headers = bearer(tokens.app("User.Read.All"))
    first = (await client.get("/v1.0/users", headers=headers)).json()
    assert len(first["value"]) == 100
    link = urlsplit(first["@odata.nextLink"])
    assert f"{link.scheme}://{link.netloc}" == BASE_URL
    assert link.path == "/v1.0/users"
    assert set(parse_qs(link.query)) == {"$skiptoken"}
    everyone = await _walk(client, headers, "/v1.0/users")
    assert len(everyone) == 230 + len(demo.users)
    assert len({u["id"] for u in everyone}) == len(everyone)
    assert set(everyone[0]) == {"id", "displayName", "givenName", "surname", "mail", "userPrincipalName"}


async def test_top_sets_the_page_size_and_the_next_link_keeps_the_query(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime, demo: DemoTenant
) -> None:
    await _add_users(runtime, demo.tenant.id, 30)
    headers = bearer(tokens.app("User.Read.All"))
    url = "/beta/users?$select=id,displayName&$top=7&$filter=startswith(displayName,'Person')"
    first = (await client.get(url, headers=headers)).json()
    assert len(first["value"]) == 7
    assert first["@odata.context"].endswith("/beta/$metadata#users(id,displayName)")
    query = parse_qs(urlsplit(first["@odata.nextLink"]).query)
    assert query["$top"] == ["7"]
    assert query["$select"] == ["id,displayName"]
    assert query["$filter"] == ["startswith(displayName,'Person')"]
    walked = await _walk(client, headers, url)
    assert sorted(u["displayName"] for u in walked) == [f"Person {n:04d}" for n in range(30)]
    assert all(set(u) == {"id", "displayName"} for u in walked)


@pytest.mark.parametrize("top", ["0", "1000", "-1", "abc", "", "1.5"])
async def test_a_top_outside_1_to_999_is_a_bad_request(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant, top: str
) -> None:
    response = await client.get(f"/v1.0/users?$top={top}", headers=bearer(tokens.app("User.Read.All")))
    assert response.status_code == 400
    assert "page size" in str(error_of(response)["message"])


async def test_a_top_of_999_and_of_1_are_taken(client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant) -> None:
    headers = bearer(tokens.app("User.Read.All"))
    assert len((await client.get("/v1.0/users?$top=999", headers=headers)).json()["value"]) == len(demo.users)
    one = (await client.get("/v1.0/users?$top=1", headers=headers)).json()
    assert len(one["value"]) == 1
    assert "@odata.nextLink" in one


@pytest.mark.parametrize("order", ["", "&$orderby=displayName", "&$orderby=displayName desc"])
async def test_a_walk_with_users_added_and_removed_meanwhile_repeats_and_skips_nobody(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime, demo: DemoTenant, order: str
) -> None:
    tenant = demo.tenant.id
    stay = set(await _add_users(runtime, tenant, 60, "stay")) | {u.id for u in demo.users}
    going = await _add_users(runtime, tenant, 60, "going")
    headers = bearer(tokens.app("User.Read.All", "User.ReadWrite.All"))
    seen: list[str] = []
    next_url: str | None = f"/v1.0/users?$top=9{order}"
    round_ = 0
    while next_url:
        body = (await client.get(next_url, headers=headers)).json()
        seen += [u["id"] for u in body["value"]]
        next_url = body.get("@odata.nextLink")
        # Between pages: some users come, some go, before and after where the walk stands.
        await _add_users(runtime, tenant, 3, f"new{round_}x")
        for gone in going[round_ * 4 : round_ * 4 + 4]:
            assert (await client.delete(f"/v1.0/users/{gone}", headers=headers)).status_code == 204
        round_ += 1
    assert len(seen) == len(set(seen)), "a user came twice"
    assert stay <= set(seen), "a user present throughout was skipped"
    assert round_ > 10


async def test_a_skiptoken_that_is_not_ours_is_a_bad_request(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    headers = bearer(tokens.app("User.Read.All"))
    token = base64.urlsafe_b64encode(b'[false,false,"x"]').decode()
    for bad in ["nonsense", "%00", base64.urlsafe_b64encode(b'[true,false,"x"]').decode(), "W10"]:
        response = await client.get(f"/v1.0/users?$skiptoken={bad}", headers=headers)
        assert response.status_code == 400, bad
    # A token of the id order is refused where the order is by name.
    response = await client.get(f"/v1.0/users?$orderby=displayName&$skiptoken={token}", headers=headers)
    assert response.status_code == 400


# ---- filter, search, order, count ----


async def _names(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[str]:
    response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return sorted(u["displayName"] for u in response.json()["value"])


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("startswith(displayName,'ad')", ["Adele Vance"]),
        ("startswith(givenName,'AL')", ["Alex Wilber"]),
        ("startswith(surname,'vance')", ["Adele Vance"]),
        ("startswith(mail,'alex@')", ["Alex Wilber"]),
        ("startswith(userPrincipalName,'adele@contoso')", ["Adele Vance"]),
        ("startswith(displayName,'A') and startswith(surname,'W')", ["Alex Wilber"]),
        ("startswith(displayName,'Adele') or startswith(displayName,'Alex')", ["Adele Vance", "Alex Wilber"]),
        (f"id eq '{ALEX.upper()}'", ["Alex Wilber"]),
        ("userPrincipalName eq 'ADELE@contoso.example'", ["Adele Vance"]),
        (f"id in ('{ADELE}', '{ALEX}')", ["Adele Vance", "Alex Wilber"]),
        ("accountEnabled eq false", []),
        ("startswith(displayName,'%')", []),
        ("startswith(displayName,'_dele')", []),
    ],
)
async def test_filters_find_users_by_prefix_and_by_equality(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant, expression: str, expected: list[str]
) -> None:
    names = await _names(client, f"/v1.0/users?$filter={expression}", bearer(tokens.app("User.Read.All")))
    assert names == expected


async def test_account_enabled_eq_true_finds_everyone(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    names = await _names(client, "/v1.0/users?$filter=accountEnabled eq true", bearer(tokens.app("User.Read.All")))
    assert len(names) == len(demo.users)


@pytest.mark.parametrize(
    "expression",
    [
        "startswith(id,'a')",
        "displayName eq 'Adele Vance'",
        "startswith(displayName,'a') and startswith(surname,'b') or startswith(mail,'c')",
        "accountEnabled eq 'yes'",
        "mail in ('a@b.c')",
        "startswith(displayName,'a'",
        "displayName ne 'x'",
        "",
    ],
)
async def test_a_filter_outside_the_supported_ones_is_a_bad_request(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant, expression: str
) -> None:
    response = await client.get(f"/v1.0/users?$filter={expression}", headers=bearer(tokens.app("User.Read.All")))
    assert response.status_code == 400
    assert "$filter" in str(error_of(response)["message"])


async def test_search_needs_consistency_level_eventual(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    headers = bearer(tokens.app("User.Read.All"))
    refused = await client.get('/v1.0/users?$search="displayName:wilb"', headers=headers)
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "Request_UnsupportedQuery"
    url = '/v1.0/users?$search="displayName:wilb"'
    assert await _names(client, url, headers | EVENTUAL) == ["Alex Wilber"]
    url = '/v1.0/users?$search="displayName:wilb" OR "userPrincipalName:adele"'
    assert await _names(client, url, headers | EVENTUAL) == ["Adele Vance", "Alex Wilber"]
    url = '/v1.0/users?$search="displayName:alex" AND "displayName:wilb"'
    assert await _names(client, url, headers | EVENTUAL) == ["Alex Wilber"]
    for bad in ["displayName:wil", '"mail:x"', '"displayName:a" OR "displayName:b" AND "displayName:c"']:
        response = await client.get(f"/v1.0/users?$search={bad}", headers=headers | EVENTUAL)
        assert response.status_code == 400, bad


async def test_orderby_display_name_orders_and_with_a_filter_needs_eventual(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    headers = bearer(tokens.app("User.Read.All"))
    body = (await client.get("/v1.0/users?$orderby=displayName", headers=headers)).json()
    names = [u["displayName"] for u in body["value"]]
    assert names == sorted(names, key=str.lower)
    body = (await client.get("/v1.0/users?$orderby=displayName desc", headers=headers)).json()
    assert [u["displayName"] for u in body["value"]] == names[::-1]
    url = "/v1.0/users?$orderby=displayName&$filter=startswith(displayName,'A')"
    assert (await client.get(url, headers=headers)).status_code == 400
    assert (await client.get(url, headers=headers | EVENTUAL)).status_code == 200
    assert (await client.get("/v1.0/users?$orderby=mail", headers=headers)).status_code == 400


async def test_count_needs_eventual_and_counts_every_match_not_the_page(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime, demo: DemoTenant
) -> None:
    await _add_users(runtime, demo.tenant.id, 12)
    headers = bearer(tokens.app("User.Read.All"))
    refused = await client.get("/v1.0/users?$count=true", headers=headers)
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "Request_UnsupportedQuery"
    url = "/v1.0/users?$count=true&$top=5&$filter=startswith(displayName,'Person')"
    body = (await client.get(url, headers=headers | EVENTUAL)).json()
    assert body["@odata.count"] == 12
    assert len(body["value"]) == 5
    counted = await client.get("/v1.0/users/$count", headers=headers | EVENTUAL)
    assert counted.status_code == 200
    assert counted.headers["content-type"].startswith("text/plain")
    assert counted.text == str(12 + len(demo.users))
    url = "/v1.0/users/$count?$filter=startswith(displayName,'Person')"
    assert (await client.get(url, headers=headers | EVENTUAL)).text == "12"
    assert (await client.get("/v1.0/users/$count", headers=headers)).status_code == 400
    assert (await client.get("/v1.0/users/$count?$top=3", headers=headers | EVENTUAL)).status_code == 400
    assert (await client.get("/v1.0/users?$count=maybe", headers=headers | EVENTUAL)).status_code == 400


@pytest.mark.parametrize("query", ["$expand=manager", "$skip=10", "$select=password", "$select=", "$top=2&$top=3"])
async def test_other_query_options_are_bad_requests(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant, query: str
) -> None:
    response = await client.get(f"/v1.0/users?{query}", headers=bearer(tokens.app("User.Read.All")))
    assert response.status_code == 400


# ---- permissions ----


async def test_read_basic_all_lists_basic_profiles_without_an_administrator(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    basic = bearer(tokens.user(ALEX, "User.ReadBasic.All"))
    body = (await client.get("/v1.0/users?$select=displayName,accountEnabled", headers=basic)).json()
    assert len(body["value"]) == len(demo.users)
    assert all(set(u) == {"id", "displayName"} for u in body["value"])
    full = bearer(tokens.user(ALEX, "User.Read.All"))
    body = (await client.get("/v1.0/users?$select=displayName,accountEnabled", headers=full)).json()
    assert all(u["accountEnabled"] is True for u in body["value"])
    assert (await client.get(f"/v1.0/users/{ADELE}", headers=basic)).json()["mail"] == "adele@contoso.example"


@pytest.mark.parametrize("scopes", [("Presence.Read.All",), ("User.Read",)])
async def test_listing_users_takes_a_user_permission(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant, scopes: tuple[str, ...]
) -> None:
    headers = bearer(tokens.user(ALEX, *scopes))
    response = await client.get("/v1.0/users", headers=headers)
    assert response.status_code == 403
    assert "User.ReadBasic.All" in str(error_of(response)["message"])
    assert (await client.get("/v1.0/users/$count", headers=headers | EVENTUAL)).status_code == 403


async def test_me_has_the_profile(client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant) -> None:
    me = (await client.get("/v1.0/me", headers=bearer(tokens.user(ADELE, "User.Read")))).json()
    assert (me["givenName"], me["surname"], me["mail"]) == ("Adele", "Vance", "adele@contoso.example")


async def test_a_created_user_has_the_profile_it_was_given(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    headers = bearer(tokens.app("User.ReadWrite.All"))
    body = {
        "accountEnabled": True,
        "displayName": "Zora Quill",
        "givenName": "Zora",
        "surname": "Quill",
        "mail": "zora@contoso.example",
        "userPrincipalName": "zora@contoso.example",
        "passwordProfile": {"password": "correct horse battery"},
    }
    response = await client.post("/v1.0/users", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["givenName"], created["surname"], created["mail"]) == ("Zora", "Quill", "zora@contoso.example")
    names = await _names(client, "/v1.0/users?$filter=startswith(surname,'qui')", headers)
    assert names == ["Zora Quill"]
    bad = await client.post("/v1.0/users", json={**body, "userPrincipalName": "m2@contoso.example", "mail": "x"},
                            headers=headers)  # fmt: skip
    assert bad.status_code == 400


# ---- photos ----


async def test_a_user_without_a_photo_gets_image_not_found(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    headers = bearer(tokens.user(ADELE, "User.Read"))
    for path in ("/v1.0/me/photo", "/v1.0/me/photo/$value"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 404
        assert error_of(response)["code"] == "ImageNotFound"


@pytest.mark.parametrize(("image", "kind", "size"), [(_png(), "image/png", (3, 2)), (_jpeg(), "image/jpeg", (48, 32))])
async def test_a_photo_is_set_and_read_back_with_its_type_by_its_bytes(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant, image: bytes, kind: str, size: tuple[int, int]
) -> None:
    own = bearer(tokens.user(ADELE, "User.ReadWrite"))
    # The header says PNG whatever the bytes are: the bytes decide.
    put = await client.put("/v1.0/me/photo/$value", content=image, headers=own | {"Content-Type": "image/png"})
    assert put.status_code == 200, put.text
    value = await client.get("/v1.0/me/photo/$value", headers=own)
    assert value.content == image
    assert value.headers["content-type"] == kind
    meta = (await client.get("/v1.0/me/photo", headers=own)).json()
    assert (meta["width"], meta["height"], meta["@odata.mediaContentType"]) == (*size, kind)
    assert meta["id"] == f"{size[0]}X{size[1]}"
    other = bearer(tokens.user(ALEX, "User.ReadBasic.All"))
    assert (await client.get(f"/v1.0/users/{ADELE}/photo/$value", headers=other)).content == image
    assert (await client.get(f"/beta/users/{ADELE}/photo", headers=other)).json()["width"] == size[0]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a\x01\x00\x01\x00",
        b"not an image at all",
        _png()[:40],
        _png()[:8],
        _jpeg()[:30],
        _png(0, 5),
        b"\xff\xd8\xff" + b"\x00" * 50,
    ],
)
async def test_what_is_not_a_whole_jpeg_or_png_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant, data: bytes
) -> None:
    own = bearer(tokens.user(ADELE, "User.ReadWrite"))
    assert (await client.put("/v1.0/me/photo/$value", content=_png(), headers=own)).status_code == 200
    response = await client.put("/v1.0/me/photo/$value", content=data, headers=own | {"Content-Type": "image/jpeg"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"
    assert (await client.get("/v1.0/me/photo/$value", headers=own)).content == _png()


async def test_a_photo_over_4_mib_is_refused(client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant) -> None:
    own = bearer(tokens.user(ADELE, "User.ReadWrite"))
    big = _png() + b"\x00" * (4 * 1024 * 1024)
    response = await client.put("/v1.0/me/photo/$value", content=big, headers=own)
    assert response.status_code == 413
    assert (await client.get("/v1.0/me/photo", headers=own)).status_code == 404


async def test_who_may_change_and_read_a_photo(client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant) -> None:
    path = f"/v1.0/users/{ADELE}/photo/$value"
    own_only = bearer(tokens.user(ALEX, "User.ReadWrite"))
    assert (await client.put(path, content=_png(), headers=own_only)).status_code == 403
    assert (await client.put(path, content=_png(), headers=bearer(tokens.app("User.Read.All")))).status_code == 403
    assert (await client.put(path, content=_png(), headers=bearer(tokens.app("User.ReadWrite.All")))).status_code == 200
    assert (await client.get(path, headers=bearer(tokens.user(ALEX, "User.Read")))).status_code == 403
    assert (await client.get(path, headers=bearer(tokens.app("User.Read.All")))).status_code == 200
    assert (await client.get(path, headers=bearer(tokens.user(ALEX, "Presence.Read.All")))).status_code == 403
    missing = "/v1.0/users/00000000-0000-0000-0000-000000000001/photo"
    assert (await client.get(missing, headers=bearer(tokens.app("User.Read.All")))).status_code == 404


async def test_patch_sets_a_photo_as_put_does_and_delete_removes_it(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    own = bearer(tokens.user(ADELE, "User.ReadWrite"))
    assert (await client.patch("/v1.0/me/photo/$value", content=_jpeg(), headers=own)).status_code == 200
    assert (await client.get("/v1.0/me/photo/$value", headers=own)).content == _jpeg()
    assert (await client.delete("/v1.0/me/photo", headers=own)).status_code == 204
    gone = await client.get("/v1.0/me/photo/$value", headers=own)
    assert gone.status_code == 404
    assert error_of(gone)["code"] == "ImageNotFound"
    assert (await client.delete("/v1.0/me/photo/$value", headers=own)).status_code == 404
    app = bearer(tokens.app("User.ReadWrite.All"))
    assert (await client.put(f"/v1.0/users/{ALEX}/photo/$value", content=_png(), headers=app)).status_code == 200
    other = bearer(tokens.user(ADELE, "User.ReadWrite"))
    assert (await client.delete(f"/v1.0/users/{ALEX}/photo/$value", headers=other)).status_code == 403
    assert (await client.delete(f"/v1.0/users/{ALEX}/photo/$value", headers=app)).status_code == 204


async def test_a_photo_goes_with_its_user(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime, demo: DemoTenant
) -> None:
    [user_id] = await _add_users(runtime, demo.tenant.id, 1)
    app = bearer(tokens.app("User.ReadWrite.All"))
    assert (await client.put(f"/v1.0/users/{user_id}/photo/$value", content=_png(), headers=app)).status_code == 200
    assert (await client.delete(f"/v1.0/users/{user_id}", headers=app)).status_code == 204
    assert (await client.get(f"/v1.0/users/{user_id}/photo", headers=app)).status_code == 404


async def test_a_photo_travels_through_a_batch_as_base64(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    own = bearer(tokens.user(ADELE, "User.ReadWrite"))
    image = base64.b64encode(_png()).decode()
    requests = [
        {"id": "put", "method": "PUT", "url": "/me/photo/$value", "headers": {"Content-Type": "image/png"},
         "body": image},
        {"id": "get", "method": "GET", "url": "/me/photo/$value", "dependsOn": ["put"]},
    ]  # fmt: skip
    answers = {a["id"]: a for a in (await client.post("/v1.0/$batch", json={"requests": requests}, headers=own)).json()
               ["responses"]}  # fmt: skip
    assert answers["put"]["status"] == 200
    assert answers["get"]["status"] == 200
    assert answers["get"]["headers"]["Content-Type"] == "image/png"
    assert base64.b64decode(answers["get"]["body"]) == _png()


async def test_a_filter_with_letters_beyond_ascii_finds_the_same_alone_and_in_a_batch(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime, demo: DemoTenant
) -> None:
    await runtime.identity.create_user(demo.tenant.id, "zoe@contoso.example", "Zoë Ærø", None, datetime.now(UTC))
    headers = bearer(tokens.app("User.Read.All"))
    url = "/users?$filter=startswith(displayName,'Zoë Æ')&$select=displayName"
    alone = (await client.get("/v1.0" + url, headers=headers)).json()["value"]
    assert [u["displayName"] for u in alone] == ["Zoë Ærø"]
    batch = await client.post("/v1.0/$batch", json={"requests": [{"id": "1", "method": "GET", "url": url}]},
                              headers=headers)  # fmt: skip
    assert batch.json()["responses"][0]["body"].get("value") == alone, batch.text
