"""Unit tests and properties of Windows/IANA time-zone names and Graph's local dateTime values."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from presenced.domain.timezones import WINDOWS_TO_IANA, canonical_name, format_local, parse_local, zone

HOSTILE_NAMES = [
    "",
    "   ",
    "\x00",
    "UTC\x00",
    "Europe/Berlin\x00",
    "../etc/passwd",
    "/etc/passwd",
    "/etc/localtime",
    "Europe/../../etc/passwd",
    "Europe/",
    "Europe",
    "Europe//Berlin",
    ".",
    "zone.tab",
    "localtime",
    "posixrules",
    "right/UTC",
    "posix/Europe/Berlin",
    "EUROPE",
    "Pacific Standard Time\n",
    "Europe/Berlin\nUTC",
    "Pacific Standard Time (Mars)",
    "Not/AZone",
    "x" * 10_000,
    "A/" * 5_000,
    "Europe/Berlín",
    "\ud800",
]


def test_every_mapping_entry_loads() -> None:
    """Every IANA name the Windows table maps to loads with zoneinfo and resolves through zone()."""
    for windows, iana in WINDOWS_TO_IANA.items():
        assert zoneinfo.ZoneInfo(iana).key == iana
        resolved = zone(windows)
        assert resolved is not None
        assert resolved.key == iana


def test_mapping_is_complete_primary_table() -> None:
    """The table holds CLDR's full primary list, with the fixed-offset UTC zones included."""
    assert len(WINDOWS_TO_IANA) >= 135
    assert WINDOWS_TO_IANA["UTC-11"] == "Etc/GMT+11"
    assert WINDOWS_TO_IANA["UTC+12"] == "Etc/GMT-12"
    assert WINDOWS_TO_IANA["Dateline Standard Time"] == "Etc/GMT+12"


@pytest.mark.parametrize(
    ("windows", "iana"),
    [
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("GMT Standard Time", "Europe/London"),
        ("Tokyo Standard Time", "Asia/Tokyo"),
        ("India Standard Time", "Asia/Calcutta"),
        ("UTC", "Etc/UTC"),
        ("Eastern Standard Time", "America/New_York"),
        ("AUS Eastern Standard Time", "Australia/Sydney"),
    ],
)
def test_well_known_windows_mappings(windows: str, iana: str) -> None:
    """Well-known Windows names map to CLDR's primary IANA zone."""
    assert WINDOWS_TO_IANA[windows] == iana
    resolved = zone(windows)
    assert resolved is not None
    assert resolved.key == iana


@pytest.mark.parametrize(
    ("given_name", "canonical"),
    [
        ("pacific standard time", "Pacific Standard Time"),
        ("PACIFIC STANDARD TIME", "Pacific Standard Time"),
        ("  w. europe standard time  ", "W. Europe Standard Time"),
        ("utc", "UTC"),
        ("utc+12", "UTC+12"),
        ("pacific standard time (mexico)", "Pacific Standard Time (Mexico)"),
    ],
)
def test_windows_lookup_is_case_insensitive(given_name: str, canonical: str) -> None:
    """Windows names match regardless of case and surrounding spaces and echo back in canonical spelling."""
    assert canonical_name(given_name) == canonical
    resolved = zone(given_name)
    assert resolved is not None
    assert resolved.key == WINDOWS_TO_IANA[canonical]


@pytest.mark.parametrize("name", ["America/Los_Angeles", "Europe/Berlin", "Etc/GMT", "Asia/Kolkata", "Etc/GMT+5"])
def test_iana_names_pass_through(name: str) -> None:
    """IANA names resolve to themselves and echo back unchanged."""
    resolved = zone(name)
    assert resolved is not None
    assert resolved.key == name
    assert canonical_name(name) == name


@pytest.mark.parametrize(
    ("given_name", "canonical"),
    [("europe/berlin", "Europe/Berlin"), ("AMERICA/LOS_ANGELES", "America/Los_Angeles"), (" etc/gmt ", "Etc/GMT")],
)
def test_iana_names_match_case_insensitively(given_name: str, canonical: str) -> None:
    """IANA names in the wrong case resolve and echo back in the tz data's canonical case."""
    assert canonical_name(given_name) == canonical
    resolved = zone(given_name)
    assert resolved is not None
    assert resolved.key == canonical


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_unknown_and_malformed_names_give_none(name: str) -> None:
    """Unknown, malformed and hostile names give None from zone() and canonical_name() without raising."""
    assert zone(name) is None
    assert canonical_name(name) is None


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_unknown_zone_is_a_value_error(name: str) -> None:
    """parse_local and format_local reject an unknown zone with a ValueError naming it."""
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_local("2022-10-18T17:05:33", name)
    with pytest.raises(ValueError, match="unknown time zone"):
        format_local(datetime(2022, 10, 18, tzinfo=UTC), name)


@pytest.mark.parametrize(
    ("text", "microsecond"),
    [
        ("2022-10-18T17:05:33", 0),
        ("2022-10-18T17:05:33.5", 500_000),
        ("2022-10-18T17:05:33.207", 207_000),
        ("2022-10-18T17:05:33.207978", 207_978),
        ("2022-10-18T17:05:33.2079781", 207_978),
        ("2022-10-18T17:05:33.0000009", 0),
    ],
)
def test_parse_local_fraction_digits(text: str, microsecond: int) -> None:
    """Fractions of 0 to 7 digits parse, with digits beyond the microsecond truncated."""
    assert parse_local(text, "UTC") == datetime(2022, 10, 18, 17, 5, 33, microsecond, tzinfo=UTC)


def test_parse_local_returns_aware_utc() -> None:
    """The result is an aware datetime in UTC."""
    parsed = parse_local("2022-10-18T17:05:33.2079781", "Pacific Standard Time")
    assert parsed.tzinfo is UTC
    assert parsed == datetime(2022, 10, 19, 0, 5, 33, 207_978, tzinfo=UTC)


@pytest.mark.parametrize("name", ["W. Europe Standard Time", "Europe/Berlin"])
def test_parse_local_across_a_dst_change(name: str) -> None:
    """Berlin wall-clock noon is UTC+1 in winter and UTC+2 in summer."""
    assert parse_local("2022-01-15T12:00:00", name) == datetime(2022, 1, 15, 11, 0, tzinfo=UTC)
    assert parse_local("2022-07-15T12:00:00", name) == datetime(2022, 7, 15, 10, 0, tzinfo=UTC)
    before = parse_local("2022-03-27T01:59:59", name)
    after = parse_local("2022-03-27T03:00:00", name)
    assert after - before == timedelta(seconds=1)


def test_parse_local_in_a_dst_gap_uses_fold_zero() -> None:
    """A skipped local time is read with the offset in force before the transition, as zoneinfo does with fold=0."""
    instant = parse_local("2022-03-27T02:30:00", "Europe/Berlin")
    assert instant == datetime(2022, 3, 27, 1, 30, tzinfo=UTC)
    assert format_local(instant, "Europe/Berlin") == "2022-03-27T03:30:00.0000000"


def test_parse_local_ambiguous_time_is_first_occurrence() -> None:
    """A repeated local time resolves to its first occurrence, as zoneinfo does with fold=0."""
    assert parse_local("2022-10-30T02:30:00", "Europe/Berlin") == datetime(2022, 10, 30, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2022-10-18T17:05:33Z",
        "2022-10-18T17:05:33z",
        "2022-10-18T17:05:33.2079781Z",
        "2022-10-18T17:05:33+01:00",
        "2022-10-18T17:05:33-08:00",
        "2022-10-18T17:05:33.123+0100",
        "2022-10-18T17:05:33+01",
    ],
)
def test_parse_local_rejects_offsets(text: str) -> None:
    """A dateTime carrying an offset or Z is rejected with a message saying it must not carry one."""
    with pytest.raises(ValueError, match="must not carry an offset"):
        parse_local(text, "UTC")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tomorrow", "must look like"),
        ("", "must look like"),
        ("2022-13-01T00:00:00", "not a valid date-time"),
        ("2022-02-30T00:00:00", "not a valid date-time"),
        ("2022-10-18T24:00:00", "not a valid date-time"),
        ("2022-10-18T17:05:60", "not a valid date-time"),
        ("0000-01-01T00:00:00", "not a valid date-time"),
        ("2022-10-18", "must look like"),
        ("2022-10-18T17:05", "must look like"),
        ("2022-10-18 17:05:33", "must look like"),
        ("22-10-18T17:05:33", "must look like"),
        (" 2022-10-18T17:05:33", "must look like"),
        ("2022-10-18T17:05:33.", "trailing text"),
        ("2022-10-18T17:05:33 ", "trailing text"),
        ("2022-10-18T17:05:33\n", "trailing text"),
        ("2022-10-18T17:05:33.20797812", "at most 7"),
        ("٢٠٢٢-10-18T17:05:33", "must look like"),
    ],
)
def test_parse_local_rejects_garbage(text: str, problem: str) -> None:
    """Malformed dateTime values raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=problem):
        parse_local(text, "UTC")


def test_parse_local_out_of_range_is_a_value_error() -> None:
    """A local time that cannot be expressed in UTC within years 1-9999 raises ValueError, not OverflowError."""
    with pytest.raises(ValueError, match="out of range"):
        parse_local("0001-01-01T00:00:00", "Tokyo Standard Time")


def test_format_local_has_seven_digits_and_no_offset() -> None:
    """format_local shows the instant's wall-clock time with exactly seven fraction digits and no offset."""
    instant = datetime(2022, 10, 19, 0, 5, 33, 207_978, tzinfo=UTC)
    assert format_local(instant, "Pacific Standard Time") == "2022-10-18T17:05:33.2079780"
    assert format_local(instant, "UTC") == "2022-10-19T00:05:33.2079780"
    assert format_local(datetime(2022, 1, 1, tzinfo=UTC), "Tokyo Standard Time") == "2022-01-01T09:00:00.0000000"


def test_format_local_accepts_any_aware_instant() -> None:
    """An instant with a non-UTC offset is converted, not reinterpreted."""
    instant = datetime(2022, 7, 15, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_local(instant, "GMT Standard Time") == "2022-07-15T11:00:00.0000000"


def test_format_local_rejects_naive_instant() -> None:
    """A naive datetime is rejected rather than guessed at."""
    with pytest.raises(ValueError, match="timezone-aware"):
        format_local(datetime(2022, 7, 15, 12, 0), "UTC")


@pytest.mark.parametrize("name", ["W. Europe Standard Time", "Pacific Standard Time", "India Standard Time", "UTC"])
@pytest.mark.parametrize("text", ["2022-01-15T12:00:00.0000000", "2022-07-15T23:59:59.9999990"])
def test_format_local_round_trips_parse_local(name: str, text: str) -> None:
    """format_local undoes parse_local for a seven-digit dateTime in the same zone."""
    assert format_local(parse_local(text, name), name) == text


def _local_text(moment: datetime, digits: str) -> str:
    base = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    return f"{base}.{digits}" if digits else base


def _normalised(text: str, digits: str) -> str:
    base = text.split(".", 1)[0]
    return f"{base}.{digits.ljust(7, '0')[:6]}0"


LOCAL_MOMENTS = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31))
FRACTIONS = st.text(alphabet="0123456789", min_size=0, max_size=7)


@given(
    moment=LOCAL_MOMENTS,
    digits=FRACTIONS,
    name=st.sampled_from(["UTC", "Tokyo Standard Time", "India Standard Time", "Etc/GMT-14", "UTC-11"]),
)
def test_round_trip_in_fixed_offset_zones(moment: datetime, digits: str, name: str) -> None:
    """In fixed-offset zones, formatting a parsed dateTime gives its seven-digit form back."""
    text = _local_text(moment, digits)
    assert format_local(parse_local(text, name), name) == _normalised(text, digits)


@given(
    moment=LOCAL_MOMENTS,
    digits=FRACTIONS,
    name=st.sampled_from(["W. Europe Standard Time", "Pacific Standard Time", "Lord Howe Standard Time"]),
)
def test_round_trip_in_dst_zones_outside_gaps(moment: datetime, digits: str, name: str) -> None:
    """In zones with DST, every local time that exists round-trips, including the repeated ones."""
    tz = zone(name)
    assert tz is not None
    exists = moment.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == moment
    assume(exists)
    text = _local_text(moment, digits)
    assert format_local(parse_local(text, name), name) == _normalised(text, digits)
