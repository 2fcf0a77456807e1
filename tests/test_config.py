"""Settings: each wrong one is refused with a message naming the flag or variable to fix, and no secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from presenced.config import Settings
from presenced.errors import ConfigurationError


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ({"clock": "sundial"}, "--clock"),
        ({"port": 70000}, "--port"),
        ({"database_url": "mysql://app:hunter2@db/x"}, "--database-url"),
        ({"redis_url": "http://:hunter2@cache"}, "--redis-url"),
        ({"tls_cert": Path("cert.pem")}, "--tls-key"),
        ({"subscription_max_minutes": 10}, "PRESENCED_SUBSCRIPTION_MAX_MINUTES"),
        ({"reauthorization_lead_minutes": 0}, "PRESENCED_REAUTHORIZATION_LEAD_MINUTES"),
        ({"webhook_allow_list": "10.0.0.0/8, nonsense"}, "PRESENCED_WEBHOOK_ALLOW_LIST"),
        ({"device_code_interval": 0}, "--device-code-interval"),
        ({"public_url": "ftp://example.org"}, "--public-url"),
    ],
)
def test_a_wrong_setting_names_what_to_fix(
    override: dict[str, Any], names: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message names the flag or variable, and shows a URL without its password."""
    for variable in ("PRESENCED_DATABASE_URL", "PRESENCED_REDIS_URL", "PRESENCED_PORT", "PRESENCED_CLOCK"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env(**override)
    assert names in refused.value.message
    assert "hunter2" not in refused.value.message


def test_an_empty_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """``PRESENCED_PORT=`` and ``PRESENCED_CLOCK=  `` mean the defaults, not a mistake."""
    monkeypatch.setenv("PRESENCED_PORT", "")
    monkeypatch.setenv("PRESENCED_CLOCK", "  ")
    settings = Settings.from_env()
    assert (settings.port, settings.clock) == (Settings().port, Settings().clock)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PRESENCED_MAX_CONNECTIONS", "0"),
        ("PRESENCED_HEADER_TIMEOUT", "soon"),
        ("PRESENCED_BODY_TIMEOUT", "-1"),
        ("PRESENCED_MAX_HEADER_BYTES", "12"),
        ("PRESENCED_MAX_HEAD_BYTES", "1e9"),
        ("PRESENCED_MAX_HEADERS", "100000"),
    ],
)
def test_a_wrong_request_limit_names_its_variable(variable: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env()
    assert variable in refused.value.message
    assert "whole number" in refused.value.message


def test_request_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESENCED_MAX_CONNECTIONS", "100")
    monkeypatch.setenv("PRESENCED_HEADER_TIMEOUT", "3")
    settings = Settings.from_env()
    assert (settings.max_connections, settings.header_timeout, settings.max_headers) == (100, 3, 100)
