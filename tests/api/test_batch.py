"""JSON batching (``POST /$batch``), in process, on both stores: the batch's shape, its order, and inner
requests that behave exactly as they would alone (docs/graph-api.md, "JSON batching")."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from presenced.services.demo import DemoTenant, demo_user_id
from tests.api.test_read_api import error_of
from tests.support import APP_ID, Tokens, bearer

ADELE = demo_user_id("adele")
ALEX = demo_user_id("alex")


async def _batch(client: httpx.AsyncClient, token: str, requests: Any, version: str = "v1.0") -> httpx.Response:
    return await client.post(f"/{version}/$batch", headers=bearer(token), json={"requests": requests})


def _by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    answers = response.json()["responses"]
    return {a["id"]: a for a in answers}


def _set(user: str, availability: str = "Busy", activity: str = "InACall") -> dict[str, Any]:
    return {
        "method": "POST",
        "url": f"/users/{user}/presence/setPresence",
        "headers": {"Content-Type": "application/json"},
        "body": {"sessionId": APP_ID, "availability": availability,
                 "activity": activity, "expirationDuration": "PT1H"},
    }  # fmt: skip


async def test_inner_reads_answer_as_they_would_alone(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    token = tokens.user(ADELE, "Presence.Read.All")
    alone = await client.get(f"/v1.0/users/{ALEX}/presence", headers=bearer(token))
    answers = _by_id(
        await _batch(
            client,
            token,
            [
                {"id": "1", "method": "GET", "url": "/me/presence"},
                {"id": "2", "method": "GET", "url": f"users/{ALEX}/presence"},
                {"id": "3", "method": "GET", "url": f"/users/{ALEX}/presence?$select=availability"},
                {
                    "id": "4",
                    "method": "POST",
                    "url": "/communications/getPresencesByUserId",
                    "headers": {"Content-Type": "application/json"},
                    "body": {"ids": [ADELE, ALEX]},
                },
            ],
        )
    )
    assert [answers[i]["status"] for i in "1234"] == [200, 200, 200, 200]
    assert answers["1"]["body"]["id"] == ADELE
    assert answers["2"]["body"] == alone.json()
    assert answers["2"]["headers"]["Content-Type"].startswith("application/json")
    assert set(answers["3"]["body"]) == {"@odata.context", "id", "availability"}
    assert [p["id"] for p in answers["4"]["body"]["value"]] == [ADELE, ALEX]


async def test_the_answers_keep_the_batchs_order_and_beta_works_alike(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    token = tokens.user(ADELE, "Presence.Read")
    response = await _batch(
        client, token, [{"id": n, "method": "GET", "url": "/me/presence"} for n in ("b", "a", "c")], "beta"
    )
    assert [a["id"] for a in response.json()["responses"]] == ["b", "a", "c"]
    assert "/beta/$metadata" in response.json()["responses"][0]["body"]["@odata.context"]


async def test_each_inner_request_needs_its_own_permission(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    token = tokens.user(ADELE, "Presence.Read", "MailboxSettings.Read")
    requests = [
        {"id": "own", "method": "GET", "url": "/me/presence"},
        {"id": "other", "method": "GET", "url": f"/users/{ALEX}/presence"},
        {"id": "mailbox", "method": "GET", "url": "/me/mailboxSettings"},
        {"id": "write", **_set(ADELE)},
        {"id": "users", "method": "GET", "url": "/users"},
        {"id": "subscriptions", "method": "GET", "url": "/subscriptions"},
    ]
    answers = _by_id(await _batch(client, token, requests))
    for item in requests:
        alone = await client.request(
            item["method"],
            "/v1.0/" + item["url"].lstrip("/"),
            headers={**bearer(token), **item.get("headers", {})},
            content=json.dumps(item["body"]) if "body" in item else None,
        )
        assert answers[item["id"]]["status"] == alone.status_code, item["id"]
    assert answers["own"]["status"] == 200
    assert answers["mailbox"]["status"] == 200
    assert answers["other"]["status"] == 403
    assert answers["write"]["status"] >= 400
    assert answers["other"]["body"]["error"]["code"] == "Forbidden"


async def test_writes_in_a_batch_are_done_in_order_and_read_back(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    token = tokens.app("Presence.ReadWrite.All")
    answers = _by_id(
        await _batch(
            client,
            token,
            [
                {"id": "1", **_set(ALEX, "Available", "Available")},
                {"id": "2", **_set(ALEX, "Busy", "InACall")},
                {"id": "3", **_set(ALEX, "DoNotDisturb", "Presenting")},
                {"id": "4", "method": "GET", "url": f"/users/{ALEX}/presence", "dependsOn": ["3"]},
            ],
        )
    )
    assert [answers[i]["status"] for i in "123"] == [200, 200, 200]
    assert "body" not in answers["1"]
    assert answers["4"]["body"]["activity"] == "Presenting"
    alone = await client.get(f"/v1.0/users/{ALEX}/presence", headers=bearer(token))
    assert alone.json()["activity"] == "Presenting"


async def test_a_failed_dependency_is_424_and_its_request_does_not_run(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    token = tokens.app("Presence.ReadWrite.All")
    before = (await client.get(f"/v1.0/users/{ALEX}/presence", headers=bearer(token))).json()
    bad = _set(ALEX)
    bad["body"] = {**bad["body"], "availability": "Sleepy"}
    answers = _by_id(
        await _batch(
            client,
            token,
            [
                {"id": "w", **_set(ALEX, "DoNotDisturb", "Presenting"), "dependsOn": ["bad"]},
                {"id": "bad", **bad},
                {"id": "after", "method": "GET", "url": f"/users/{ALEX}/presence", "dependsOn": ["w"]},
                {"id": "free", "method": "GET", "url": f"/users/{ALEX}/presence"},
            ],
        )
    )
    assert answers["bad"]["status"] == 400
    assert answers["w"]["status"] == 424
    assert answers["w"]["body"]["error"]["code"] == "FailedDependency"
    assert answers["after"]["status"] == 424
    assert answers["free"]["status"] == 200
    after = (await client.get(f"/v1.0/users/{ALEX}/presence", headers=bearer(token))).json()
    assert after["activity"] == before["activity"]


async def test_twenty_requests_run_and_twenty_one_are_refused(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    token = tokens.user(ADELE, "Presence.Read")
    twenty = [{"id": str(n), "method": "GET", "url": "/me/presence"} for n in range(20)]
    assert len(_by_id(await _batch(client, token, twenty))) == 20
    response = await _batch(client, token, [*twenty, {"id": "20", "method": "GET", "url": "/me/presence"}])
    assert response.status_code == 400
    assert "at most 20" in str(error_of(response)["message"])


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"not json", "not valid JSON"),
        (b"{}", "requests"),
        (b'{"requests": {}}', "requests"),
        (b'{"requests": []}', "at least one"),
        (b'{"requests": [{"method": "GET", "url": "/me/presence"}]}', "id"),
        (b'{"requests": [{"id": "1", "url": "/me/presence"}]}', "method"),
        (b'{"requests": [{"id": "1", "method": "GET"}]}', "url"),
        (b'{"requests": [{"id": 1, "method": "GET", "url": "/me/presence"}]}', "id"),
        (b'{"requests": [{"id": " ", "method": "GET", "url": "/me/presence"}]}', "non-empty"),
        (
            b'{"requests": [{"id": "1", "method": "GET", "url": "/me/presence"},'
            b' {"id": "1", "method": "GET", "url": "/me/presence"}]}',
            "more than one request",
        ),
        (
            b'{"requests": [{"id": "1", "method": "GET", "url": "/me/presence", "dependsOn": ["9"]}]}',
            "not in the batch",
        ),
        (
            b'{"requests": [{"id": "1", "method": "GET", "url": "/me/presence", "dependsOn": ["2"]},'
            b' {"id": "2", "method": "GET", "url": "/me/presence", "dependsOn": ["1"]}]}',
            "cycle",
        ),
        (b'{"requests": [{"id": "1", "method": "GET", "url": "/me/presence", "dependsOn": ["1"]}]}', "cycle"),
    ],
)
async def test_a_malformed_batch_is_a_400_for_the_whole_batch(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant, payload: bytes, says: str
) -> None:
    token = tokens.app("Presence.ReadWrite.All")
    before = (await client.get(f"/v1.0/users/{ALEX}/presence", headers=bearer(token))).json()
    response = await client.post(
        "/v1.0/$batch", headers={**bearer(token), "Content-Type": "application/json"}, content=payload
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "BadRequest"
    assert says in str(error["message"])
    assert (await client.get(f"/v1.0/users/{ALEX}/presence", headers=bearer(token))).json() == before


async def test_a_batch_that_is_not_json_by_its_type_is_refused(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    response = await client.post(
        "/v1.0/$batch",
        headers={**bearer(tokens.app("Presence.Read.All")), "Content-Type": "text/plain"},
        content=b'{"requests": [{"id": "1", "method": "GET", "url": "/me/presence"}]}',
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ({"method": "GET", "url": "https://example.com/v1.0/me/presence"}, "relative"),
        ({"method": "GET", "url": "http://127.0.0.1:8000/beta/me/presence"}, "relative"),
        ({"method": "POST", "url": "/$batch", "headers": {"Content-Type": "application/json"}, "body": {}}, "batch"),
        ({"method": "POST", "url": "$batch"}, "batch"),
        ({"method": "TRACE", "url": "/me/presence"}, "not supported"),
        (
            {"method": "POST", "url": "/me/presence/setStatusMessage", "body": {"statusMessage": {}}},
            "Content-Type",
        ),
        ({"method": "GET", "url": "/me/presence", "headers": {"Bad\nName": "x"}}, "header"),
        ({"method": "GET", "url": "/me/presence", "headers": {"X-Thing": "a\r\nb"}}, "header"),
        (
            {"method": "PUT", "url": "/me/photo/$value", "headers": {"Content-Type": "image/png"}, "body": "%%"},
            "base64",
        ),
        ({"method": "GET", "url": "/me/presence\txyz"}, "control characters"),
        ({"method": "GET", "url": "/me/presence\x00"}, "control characters"),
        ({"method": "GET", "url": "//example.com/me/presence"}, "relative"),
    ],
)
async def test_a_request_that_cannot_run_is_a_400_for_itself_alone(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant, item: dict[str, Any], says: str
) -> None:
    token = tokens.user(ADELE, "Presence.ReadWrite")
    answers = _by_id(
        await _batch(
            client,
            token,
            [{"id": "bad", **item}, {"id": "good", "method": "GET", "url": "/me/presence"}],
        )
    )
    assert answers["bad"]["status"] == 400
    assert answers["bad"]["body"]["error"]["code"] == "BadRequest"
    assert says in answers["bad"]["body"]["error"]["message"]
    assert answers["good"]["status"] == 200


async def test_this_services_absolute_urls_are_taken_as_msgraph_core_sends_them(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    token = tokens.user(ADELE, "Presence.Read")
    answers = _by_id(
        await _batch(client, token, [{"id": "1", "method": "GET", "url": "http://127.0.0.1:8000/v1.0/me/presence"}])
    )
    assert answers["1"]["status"] == 200
    assert answers["1"]["body"]["id"] == ADELE


async def test_inner_errors_and_unknown_paths_are_graph_answers(
    client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant
) -> None:
    token = tokens.user(ADELE, "Presence.Read.All")
    answers = _by_id(
        await _batch(
            client,
            token,
            [
                {"id": "404", "method": "GET", "url": "/users/nobody@nowhere.example/presence"},
                {"id": "path", "method": "GET", "url": "/nothing/here"},
                {"id": "405", "method": "DELETE", "url": "/me/presence"},
                {"id": "q", "method": "GET", "url": "/me/presence?$top=1"},
                {"id": "body", "method": "POST", "url": "/communications/getPresencesByUserId",
                 "headers": {"Content-Type": "application/json"}, "body": {"ids": "x"}},
            ],
        )
    )  # fmt: skip
    assert {k: v["status"] for k, v in answers.items()} == {"404": 404, "path": 404, "405": 405, "q": 400, "body": 400}
    for answer in answers.values():
        assert set(answer["body"]["error"]) == {"code", "message", "innerError"}


async def test_without_a_token_every_inner_request_is_401(client: httpx.AsyncClient, demo: DemoTenant) -> None:
    response = await client.post(
        "/v1.0/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/me/presence"}]}
    )
    answers = _by_id(response)
    assert answers["1"]["status"] == 401
    assert answers["1"]["headers"]["Www-Authenticate"].startswith("Bearer")


async def test_a_non_json_body_travels_as_base64(client: httpx.AsyncClient, tokens: Tokens, demo: DemoTenant) -> None:
    token = tokens.user(ADELE, "Presence.ReadWrite")
    text = base64.b64encode(b'{"statusMessage": {"message": {"content": "hi"}}}').decode()
    answers = _by_id(
        await _batch(
            client,
            token,
            [{"id": "1", "method": "POST", "url": "/me/presence/setStatusMessage",
              "headers": {"Content-Type": "text/plain"}, "body": text}],
        )
    )  # fmt: skip
    # The inner request arrives with its bytes and its type, and is answered as it would be alone.
    assert answers["1"]["status"] == 415
