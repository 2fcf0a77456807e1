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
