"""What delivery logs: a notification given up is a warning with its subscription's tenant, app and id;
each answer is a debug line; never the URL nor the client state."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from presenced.services.deliveries import _log_results
from presenced.services.entities import DeliveryResult, PendingNotification, Subscription

NOW = datetime(2027, 1, 4, 9, tzinfo=UTC)
URL = "https://hooks.example/notify?key=hook-secret-8c1"
SUBSCRIPTION = Subscription(
    id="5c0b2a34-0a67-4f0e-9d3e-3a7c1f2e9b10",
    tenant_id="2d026abe-922c-564e-8628-6a06c8cdf0ee",
    app_id="11111111-2222-3333-4444-555555555555",
    creator_id=None,
    resource="communications/presences/x",
    change_type="updated",
    notification_url=URL,
    lifecycle_url=None,
    client_state="state-secret-41d",
    expires=NOW,
    include_resource_data=False,
    encryption_certificate=None,
    encryption_certificate_id=None,
    latest_tls="v1_2",
    created=NOW,
    user_ids=("x",),
)


def _pending(notification_id: str, attempts: int) -> PendingNotification:
    return PendingNotification(id=notification_id, subscription=SUBSCRIPTION, url=URL, attempts=attempts, created=NOW)


def test_a_notification_given_up_is_a_warning_and_each_answer_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="presenced.deliveries")
    chunk = [_pending("n-1", 23), _pending("n-2", 1)]
    results = [
        DeliveryResult("n-1", 500, 12, "answer body from the receiver", "failed"),
        DeliveryResult("n-2", 202, 3, None, "delivered"),
    ]
    _log_results(chunk, results)
    gave_up, sent = caplog.records
    assert (gave_up.levelname, gave_up.getMessage()) == ("WARNING", "gave up a notification after 23 attempts")
    assert gave_up.__dict__["fields"] == {
        "job": "delivery",
        "tenant_id": SUBSCRIPTION.tenant_id,
        "app_id": SUBSCRIPTION.app_id,
        "subscription_id": SUBSCRIPTION.id,
        "status": 500,
        "attempts": 23,
    }
    assert (sent.levelname, sent.getMessage(), sent.__dict__["fields"]["status"]) == (
        "DEBUG",
        "notification sent: delivered",
        202,
    )
    text = caplog.text + repr([r.__dict__ for r in caplog.records])
    for secret in ("hook-secret-8c1", "state-secret-41d", "answer body"):
        assert secret not in text


def test_at_info_only_what_was_given_up_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="presenced.deliveries")
    _log_results([_pending("n-2", 1)], [DeliveryResult("n-2", 503, 3, None, "retry", NOW)])
    assert caplog.records == []
