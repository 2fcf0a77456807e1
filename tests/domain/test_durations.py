"""Durations in the forms Graph documents and the official SDKs send (spec §A.5)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from presenced.domain.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT5M", timedelta(minutes=5)),
        ("PT1H", timedelta(hours=1)),
        ("pt4h", timedelta(hours=4)),
        ("P1D", timedelta(days=1)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("P1W", timedelta(days=7)),
        ("0:05:00", timedelta(minutes=5)),
        ("1:00:00", timedelta(hours=1)),
        ("1 day, 0:00:00", timedelta(days=1)),
        ("2 days, 3:04:05.5", timedelta(days=2, hours=3, minutes=4, seconds=5.5)),
        ("01:00:00", timedelta(hours=1)),
        ("1.00:00:00", timedelta(days=1)),
        ("00:05:00.1234567", timedelta(minutes=5, microseconds=123457)),
    ],
)
def test_known_forms_are_parsed(text: str, expected: timedelta) -> None:
    """ISO 8601, Python's str(timedelta) and .NET TimeSpan forms all parse."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "P1DT", "1h", "abc", "-PT5M", "00:61:00", "00:00:60", "P" + "9" * 70 + "D", "PT\u0665M"]
)
def test_other_text_is_not_a_duration(text: str) -> None:
    """Anything else is not a duration."""
    assert parse_duration(text) is None
