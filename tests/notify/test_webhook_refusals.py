"""Where webhooks may not go: each refusal is a 400 at creation naming the field, and nothing is created."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.support import T0, Tokens, bearer


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hook", "https"),
        ("https://127.0.0.1:9/hook", "loopback"),
        ("https://[::1]:9/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://172.16.0.1/hook", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://100.64.0.1/hook", "100.64"),
        ("https://user:pw@hooks.example.com/hook", "user"),
        ("ftp://hooks.example.com/hook", "https"),
        ("not a url", "notificationUrl"),
    ],
)
async def test_a_webhook_url_that_may_not_be_called_is_refused(
    client: httpx.AsyncClient, tokens: Tokens, url: str, reason: str
) -> None:
    """Without --allow-loopback-webhooks, http, loopback, private, link-local, metadata and odd URLs are 400s."""
    token = tokens.app("Presence.Read.All")
    nestor = await tokens.runtime.store.find_user(tokens.tenant_id, "nestor@contoso.example")
    assert nestor is not None
    body = {
        "changeType": "updated",
        "notificationUrl": url,
        "resource": f"communications/presences/{nestor.id}",
        "expirationDateTime": (T0 + timedelta(minutes=50)).isoformat(),
    }
    response = await client.post("/v1.0/subscriptions", json=body, headers=bearer(token))
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "notificationUrl" in message
    assert reason.lower() in message.lower(), message
    listed = await client.get("/v1.0/subscriptions", headers=bearer(token))
    assert listed.json()["value"] == []
