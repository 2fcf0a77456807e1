"""Durations as clients send them (docs/graph-api.md, "Writes").

Graph documents ISO 8601 (``PT1H``). The official SDKs send other forms: the
Python SDK serialises a ``timedelta`` with ``str()`` (``1:00:00``,
``1 day, 0:00:00``) and the .NET SDK a ``TimeSpan`` (``01:00:00``,
``1.00:00:00``). All are accepted; anything else is None.
"""

from __future__ import annotations

import re
from datetime import timedelta

# xs:dayTimeDuration: P[nD][T[nH][nM][n[.n]S]], and weeks for good measure.
_ISO = re.compile(
    r"P(?:(?P<weeks>\d{1,6})W)?(?:(?P<days>\d{1,6})D)?"
    r"(?:T(?:(?P<hours>\d{1,8})H)?(?:(?P<minutes>\d{1,10})M)?(?:(?P<seconds>\d{1,12}(?:[.,]\d{1,9})?)S)?)?",
    re.IGNORECASE | re.ASCII,
)
# str(timedelta): "[N day[s], ]H:MM:SS[.ffffff]"
_PYTHON = re.compile(
    r"(?:(?P<days>\d{1,6}) days?, )?(?P<hours>\d{1,2}):(?P<minutes>\d\d):(?P<seconds>\d\d(?:\.\d{1,6})?)", re.ASCII
)
# .NET TimeSpan: "[d.]hh:mm[:ss[.fffffff]]"
_DOTNET = re.compile(
    r"(?:(?P<days>\d{1,6})\.)?(?P<hours>\d{1,2}):(?P<minutes>\d\d)(?::(?P<seconds>\d\d(?:\.\d{1,7})?))?", re.ASCII
)


def parse_duration(text: str) -> timedelta | None:
    """The duration ``text`` denotes, or None if it is not a duration in a known form."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    match = _ISO.fullmatch(text)
    if match and text.upper() not in {"P", "PT"} and not text.upper().endswith("T"):
        return _duration(match.groupdict())
    for form in (_PYTHON, _DOTNET):
        match = form.fullmatch(text)
        if match:
            parts = match.groupdict()
            if int(parts["minutes"]) > 59 or (parts["seconds"] and float(parts["seconds"]) >= 60):
                return None
            return _duration(parts)
    return None


def _duration(parts: dict[str, str | None]) -> timedelta | None:
    values = {name: float((value or "0").replace(",", ".")) for name, value in parts.items()}
    try:
        return timedelta(**values)
    except OverflowError:
        return None
