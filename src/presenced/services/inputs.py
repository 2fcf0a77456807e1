"""Request values → domain values; every problem is a 400 that names the field."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from enum import Enum
from typing import TypeVar, cast

from presenced.domain import timezones
from presenced.domain.durations import parse_duration
from presenced.errors import BadRequest

E = TypeVar("E", bound=Enum)

#: Clients send the same few durations again and again; parsing one is a few regular expressions.
_parse_duration = functools.lru_cache(maxsize=256)(parse_duration)


def enum_value(kind: type[E], raw: str | None, field: str, allowed: tuple[E, ...] | None = None) -> E:
    """The member of ``kind`` named ``raw`` (any case), one of ``allowed`` if given."""
    if raw is None:
        raise BadRequest(f"'{field}' is required.")
    found = _members(kind).get(raw.lower())
    if found is not None and (allowed is None or found in allowed):
        return found
    choices = allowed or tuple(kind)
    listed = ", ".join(str(m.value) for m in choices)
    raise BadRequest(f"'{field}' must be one of {listed}; '{raw[:64]}' is not.")


_MEMBERS: dict[type[Enum], dict[str, Enum]] = {}


def _members(kind: type[E]) -> dict[str, E]:
    """``kind``'s members by their value in lower case (iterating an enum is slow)."""
    members = _MEMBERS.get(kind)
    if members is None:
        members = _MEMBERS[kind] = {str(member.value).lower(): member for member in kind}
    return cast(dict[str, E], members)


def duration_value(raw: str | None, field: str) -> timedelta | None:
    """An optional duration in ISO 8601 or the SDKs' forms (docs/graph-api.md, "Writes")."""
    if raw is None:
        return None
    duration = _parse_duration(raw)
    if duration is None:
        raise BadRequest(f"'{field}' must be a duration such as PT1H; '{raw[:64]}' is not.")
    return duration


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def guid_value(raw: str | None, field: str) -> str:
    """A GUID in its usual form (``xxxxxxxx-xxxx-…``, any case), lower-cased."""
    if not raw:
        raise BadRequest(f"'{field}' is required.")
    if not _GUID.fullmatch(raw):
        raise BadRequest(f"'{field}' must be a GUID such as 22553876-f5ab-4529-bffb-cfe50aa89f87; '{raw[:64]}' is not.")
    return raw.lower()  # the pattern is the hyphenated form: the same as str(uuid.UUID(raw))


def text_value(raw: str | None, field: str, max_length: int | None = None) -> str | None:
    """Free text: at most ``max_length`` characters and no NUL (which no store keeps the same way)."""
    if raw is None:
        return None
    if "\x00" in raw:
        raise BadRequest(f"'{field}' must not contain the NUL character.")
    if max_length is not None and len(raw) > max_length:
        raise BadRequest(f"'{field}' must be at most {max_length} characters.")
    return raw


def zone_name(raw: str | None, field: str) -> str:
    """A Windows or IANA time-zone name, as it will be shown back; None means UTC."""
    if raw is None:
        return "UTC"
    name = timezones.canonical_name(raw)
    if name is None:
        raise BadRequest(f"'{field}' is not a known time zone: '{raw[:64]}'.")
    return name


def local_instant(date_time: str | None, time_zone: str | None, field: str) -> tuple[datetime, str]:
    """The instant of a ``dateTimeTimeZone`` and its zone's name."""
    if date_time is None:
        raise BadRequest(f"'{field}.dateTime' is required.")
    zone = zone_name(time_zone, f"{field}.timeZone")
    try:
        return timezones.parse_local(date_time, zone), zone
    except ValueError as exc:
        raise BadRequest(f"'{field}.dateTime' is not valid: {exc}") from None
