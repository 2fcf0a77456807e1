"""Time zones for Graph's ``dateTimeTimeZone`` and mailbox settings: Windows and IANA names, local date-times.

Graph carries an instant as ``{"dateTime": "2022-10-18T17:05:33.2079781", "timeZone": "Pacific Standard Time"}``:
a wall-clock date-time without an offset (up to seven fractional-second digits) plus a zone name, which may be a
Windows name ("W. Europe Standard Time") or an IANA name ("Europe/Berlin"). This module resolves such names to
:class:`zoneinfo.ZoneInfo`, turns a local date-time into an aware UTC instant and back.

Pure: no clock reads and no I/O beyond what :mod:`zoneinfo` does to read tz data (the ``tzdata`` package).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime
from functools import cache

__all__ = ["WINDOWS_TO_IANA", "canonical_name", "format_local", "parse_local", "zone"]

# Every Windows zone's primary (territory "001") IANA zone, in the file's order, from CLDR's
# common/supplemental/windowsZones.xml (unicode-org/cldr, commit 062dc06d16b0884bc42b0b04e5408aec6b85eb20,
# otherVersion 7e11800, typeVersion 2021a). The IANA names are CLDR's (e.g. "Asia/Calcutta", "Europe/Kiev"),
# which tzdata keeps as links.
WINDOWS_TO_IANA: dict[str, str] = {
    "Dateline Standard Time": "Etc/GMT+12",
    "UTC-11": "Etc/GMT+11",
    "Aleutian Standard Time": "America/Adak",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Marquesas Standard Time": "Pacific/Marquesas",
    "Alaskan Standard Time": "America/Anchorage",
    "UTC-09": "Etc/GMT+9",
    "Pacific Standard Time (Mexico)": "America/Tijuana",
    "UTC-08": "Etc/GMT+8",
    "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time (Mexico)": "America/Mazatlan",
    "Mountain Standard Time": "America/Denver",
    "Yukon Standard Time": "America/Whitehorse",
    "Central America Standard Time": "America/Guatemala",
    "Central Standard Time": "America/Chicago",
    "Easter Island Standard Time": "Pacific/Easter",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Canada Central Standard Time": "America/Regina",
    "SA Pacific Standard Time": "America/Bogota",
    "Eastern Standard Time (Mexico)": "America/Cancun",
    "Eastern Standard Time": "America/New_York",
    "Haiti Standard Time": "America/Port-au-Prince",
    "Cuba Standard Time": "America/Havana",
    "US Eastern Standard Time": "America/Indianapolis",
    "Turks And Caicos Standard Time": "America/Grand_Turk",
    "Paraguay Standard Time": "America/Asuncion",
    "Atlantic Standard Time": "America/Halifax",
    "Venezuela Standard Time": "America/Caracas",
    "Central Brazilian Standard Time": "America/Cuiaba",
    "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago",
    "Newfoundland Standard Time": "America/St_Johns",
    "Tocantins Standard Time": "America/Araguaina",
    "E. South America Standard Time": "America/Sao_Paulo",
    "SA Eastern Standard Time": "America/Cayenne",
    "Argentina Standard Time": "America/Buenos_Aires",
    "Greenland Standard Time": "America/Godthab",
    "Montevideo Standard Time": "America/Montevideo",
    "Magallanes Standard Time": "America/Punta_Arenas",
    "Saint Pierre Standard Time": "America/Miquelon",
    "Bahia Standard Time": "America/Bahia",
    "UTC-02": "Etc/GMT+2",
    "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde",
    "UTC": "Etc/UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Sao Tome Standard Time": "Africa/Sao_Tome",
    "Morocco Standard Time": "Africa/Casablanca",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "Jordan Standard Time": "Asia/Amman",
    "GTB Standard Time": "Europe/Bucharest",
    "Middle East Standard Time": "Asia/Beirut",
    "Egypt Standard Time": "Africa/Cairo",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Syria Standard Time": "Asia/Damascus",
    "West Bank Standard Time": "Asia/Hebron",
    "South Africa Standard Time": "Africa/Johannesburg",
    "FLE Standard Time": "Europe/Kiev",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Sudan Standard Time": "Africa/Juba",
    "Kaliningrad Standard Time": "Europe/Kaliningrad",
    "Sudan Standard Time": "Africa/Khartoum",
    "Libya Standard Time": "Africa/Tripoli",
    "Namibia Standard Time": "Africa/Windhoek",
    "Arabic Standard Time": "Asia/Baghdad",
    "Turkey Standard Time": "Europe/Istanbul",
    "Arab Standard Time": "Asia/Riyadh",
    "Belarus Standard Time": "Europe/Minsk",
    "Russian Standard Time": "Europe/Moscow",
    "E. Africa Standard Time": "Africa/Nairobi",
    "Iran Standard Time": "Asia/Tehran",
    "Arabian Standard Time": "Asia/Dubai",
    "Astrakhan Standard Time": "Europe/Astrakhan",
    "Azerbaijan Standard Time": "Asia/Baku",
    "Russia Time Zone 3": "Europe/Samara",
    "Mauritius Standard Time": "Indian/Mauritius",
    "Saratov Standard Time": "Europe/Saratov",
    "Georgian Standard Time": "Asia/Tbilisi",
    "Volgograd Standard Time": "Europe/Volgograd",
    "Caucasus Standard Time": "Asia/Yerevan",
    "Afghanistan Standard Time": "Asia/Kabul",
    "West Asia Standard Time": "Asia/Tashkent",
    "Ekaterinburg Standard Time": "Asia/Yekaterinburg",
    "Pakistan Standard Time": "Asia/Karachi",
    "Qyzylorda Standard Time": "Asia/Qyzylorda",
    "India Standard Time": "Asia/Calcutta",
    "Sri Lanka Standard Time": "Asia/Colombo",
    "Nepal Standard Time": "Asia/Katmandu",
    "Central Asia Standard Time": "Asia/Bishkek",
    "Bangladesh Standard Time": "Asia/Dhaka",
    "Omsk Standard Time": "Asia/Omsk",
    "Myanmar Standard Time": "Asia/Rangoon",
    "SE Asia Standard Time": "Asia/Bangkok",
    "Altai Standard Time": "Asia/Barnaul",
    "W. Mongolia Standard Time": "Asia/Hovd",
    "North Asia Standard Time": "Asia/Krasnoyarsk",
    "N. Central Asia Standard Time": "Asia/Novosibirsk",
    "Tomsk Standard Time": "Asia/Tomsk",
    "China Standard Time": "Asia/Shanghai",
    "North Asia East Standard Time": "Asia/Irkutsk",
    "Singapore Standard Time": "Asia/Singapore",
    "W. Australia Standard Time": "Australia/Perth",
    "Taipei Standard Time": "Asia/Taipei",
    "Ulaanbaatar Standard Time": "Asia/Ulaanbaatar",
    "Aus Central W. Standard Time": "Australia/Eucla",
    "Transbaikal Standard Time": "Asia/Chita",
    "Tokyo Standard Time": "Asia/Tokyo",
    "North Korea Standard Time": "Asia/Pyongyang",
    "Korea Standard Time": "Asia/Seoul",
    "Yakutsk Standard Time": "Asia/Yakutsk",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin",
    "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Tasmania Standard Time": "Australia/Hobart",
    "Vladivostok Standard Time": "Asia/Vladivostok",
    "Lord Howe Standard Time": "Australia/Lord_Howe",
    "Bougainville Standard Time": "Pacific/Bougainville",
    "Russia Time Zone 10": "Asia/Srednekolymsk",
    "Magadan Standard Time": "Asia/Magadan",
    "Norfolk Standard Time": "Pacific/Norfolk",
    "Sakhalin Standard Time": "Asia/Sakhalin",
    "Central Pacific Standard Time": "Pacific/Guadalcanal",
    "Russia Time Zone 11": "Asia/Kamchatka",
    "New Zealand Standard Time": "Pacific/Auckland",
    "UTC+12": "Etc/GMT-12",
    "Fiji Standard Time": "Pacific/Fiji",
    "Chatham Islands Standard Time": "Pacific/Chatham",
    "UTC+13": "Etc/GMT-13",
    "Tonga Standard Time": "Pacific/Tongatapu",
    "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati",
}

_WINDOWS_BY_FOLDED: dict[str, str] = {name.casefold(): name for name in WINDOWS_TO_IANA}

# Longer than any zone name (the longest Windows name has 31 characters, the longest IANA name 32).
_MAX_NAME = 128

# Entries some systems' tz directories hold that are not zones of their own: "localtime" follows the host's
# configuration and "posixrules" is a template for POSIX TZ strings. Neither is accepted. (zoneinfo would also load
# host-specific "posix/..." and "right/..." copies and bare files such as "zone.tab"; available_timezones() lists
# none of them, and only listed names are accepted.)
_EXCLUDED = frozenset({"localtime", "posixrules"})

_LOCAL = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?"
)
_OFFSET = re.compile(r"[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?")
_MAX_FRACTION = 7
_SHOWN = 40


@cache
def _iana_by_folded() -> dict[str, str]:
    """Every zone the tz data offers, keyed by its case-folded name (computed once, on first use; no two names
    in tzdata differ only in case)."""
    return {name.casefold(): name for name in zoneinfo.available_timezones() if name.casefold() not in _EXCLUDED}


def _resolve(name: str) -> tuple[str, str] | None:
    """The name to echo back and the IANA key to load for a Windows or IANA zone name, or None if it is neither."""
    if not isinstance(name, str) or len(name) > _MAX_NAME:
        return None
    stripped = name.strip(" ")
    windows = _WINDOWS_BY_FOLDED.get(stripped.casefold())
    if windows is not None:
        return windows, WINDOWS_TO_IANA[windows]
    # Only names the tz data lists are looked up, so a name can never reach the file system: no "..", absolute
    # paths, NUL bytes or directories. The lookup is exact for canonical names and case-insensitive otherwise.
    listed = _iana_by_folded().get(stripped.casefold())
    return None if listed is None else (listed, listed)


def _load(key: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        return None


def zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The zone a Windows or IANA name denotes, or None for an unknown or malformed name; never raises.

    Windows names match case-insensitively, ignoring surrounding spaces (only " ", not tabs or newlines), and map to
    CLDR's primary IANA zone. IANA names (surrounding spaces ignored too) match exactly or, failing that,
    case-insensitively against the zones the tz data offers.
    """
    resolved = _resolve(name)
    return None if resolved is None else _load(resolved[1])


def canonical_name(name: str) -> str | None:
    """The name as Graph should echo it: a Windows name in its canonical spelling, else the IANA name in canonical
    case; None if the name is unknown or malformed."""
    resolved = _resolve(name)
    return None if resolved is None else resolved[0]


def _show(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def parse_local(date_time: str, zone_name: str) -> datetime:
    """The aware UTC instant that the wall-clock ``date_time`` denotes in the zone ``zone_name``.

    ``date_time`` is ``YYYY-MM-DDTHH:MM:SS`` with an optional fraction of one to seven digits; digits beyond the
    microsecond are truncated. It must not carry an offset or ``Z``. A local time that falls in a DST gap or
    occurs twice resolves as zoneinfo does with ``fold=0``: a skipped time is read with the offset in force before
    the transition (02:30 on a spring-forward night in Berlin is 01:30 UTC, shown afterwards as 03:30), and a
    repeated time is its first occurrence (the offset before the transition).

    Raises ValueError naming the problem for a malformed ``date_time`` or an unknown ``zone_name``.
    """
    if not isinstance(date_time, str):
        raise ValueError(f"dateTime must be a string, got {type(date_time).__name__}")
    match = _LOCAL.match(date_time)
    if match is None:
        raise ValueError(f"dateTime must look like YYYY-MM-DDTHH:MM:SS[.fffffff], got {_show(date_time)}")
    rest = date_time[match.end() :]
    if rest:
        if _OFFSET.fullmatch(rest):
            raise ValueError(
                f"dateTime must not carry an offset or 'Z' (the timeZone gives it), got {_show(date_time)}"
            )
        raise ValueError(f"dateTime has unexpected trailing text {_show(rest)}")
    fraction = match["fraction"] or ""
    if len(fraction) > _MAX_FRACTION:
        raise ValueError(f"dateTime may have at most {_MAX_FRACTION} fractional-second digits, got {len(fraction)}")
    tz = zone(zone_name)
    if tz is None:
        raise ValueError(f"unknown time zone {_show(zone_name) if isinstance(zone_name, str) else zone_name!r}")
    try:
        local = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            int(fraction[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError as error:
        raise ValueError(f"dateTime {_show(date_time)} is not a valid date-time: {error}") from None
    try:
        return local.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"dateTime {_show(date_time)} is out of range in time zone {_show(zone_name)}") from None


def format_local(instant: datetime, zone_name: str) -> str:
    """The aware ``instant`` as wall-clock time in ``zone_name``: ``YYYY-MM-DDTHH:MM:SS.fffffff``, no offset.

    The fraction always has seven digits, the microseconds followed by "0". Raises ValueError for an unknown zone,
    a naive instant, or an instant that falls outside the years 1-9999 in that zone.
    """
    tz = zone(zone_name)
    if tz is None:
        raise ValueError(f"unknown time zone {_show(zone_name) if isinstance(zone_name, str) else zone_name!r}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware")
    try:
        local = instant.astimezone(tz)
    except OverflowError:
        raise ValueError(f"instant {instant.isoformat()} is out of range in time zone {_show(zone_name)}") from None
    return (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
        f"T{local.hour:02d}:{local.minute:02d}:{local.second:02d}.{local.microsecond:06d}0"
    )
