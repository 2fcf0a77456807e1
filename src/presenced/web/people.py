"""People: the organization's users with their presence, kept live from the presence stream, and when each was
last seen; a person's page with their presence over a day (docs/portal.md, "People" and "A person's day")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from presenced.domain import timezones
from presenced.domain.model import Availability, VisiblePresence
from presenced.errors import BadRequest
from presenced.portal_session import portal_principal
from presenced.services.directory import Actor
from presenced.services.entities import Account
from presenced.services.history import Period, PresenceHistory, Seen
from presenced.services.presence import MAX_IDS
from presenced.web.portal import page, signed_in
from presenced.web.presence_words import AVAILABILITY_WORDS, VOCABULARY, initials, shown, words
from presenced.wiring import services_of

#: The most people one page shows (and one stream watches); a search narrows a bigger organization.
PAGE_LIMIT = MAX_IDS
#: The most changes a day's timeline shows.
DAY_LIMIT = 2000
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


# ---- time, in words ----


def viewer_zone(name: str) -> tzinfo:
    """The zone a mailbox time zone names (UTC for one the time-zone data does not know)."""
    return timezones.zone(name) or UTC


def _clock(instant: datetime, zone: tzinfo) -> str:
    return instant.astimezone(zone).strftime("%H:%M")


def long_date(day: date) -> str:
    """ "Monday 7 January 2030"."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def _at(instant: datetime, now: datetime, zone: tzinfo) -> str:
    """ "today at 09:45", "yesterday at 17:30", "on 3 Jan at 14:05", "on 3 Dec 2029 at 14:05"."""
    local, today = instant.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        return f"today at {local:%H:%M}"
    if local.date() == today - timedelta(days=1):
        return f"yesterday at {local:%H:%M}"
    year = f" {local.year}" if local.year != today.year else ""
    return f"on {local.day} {local:%b}{year} at {local:%H:%M}"


def ago(instant: datetime, now: datetime, zone: tzinfo) -> str:
    """How long ago, in words: "just now", "5 minutes ago", "3 hours ago", then the day and time."""
    minutes = int((now - instant).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    if minutes < 12 * 60:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    return _at(instant, now, zone)


def span(duration: timedelta) -> str:
    """ "45 min", "2 h", "1 h 15 min", "less than a minute"."""
    minutes = int(duration.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{minutes} min" if minutes else "") if part)


@dataclass(frozen=True, slots=True)
class LastSeen:
    """When an Offline person was last seen, for a page: "Last seen" and ``when``, or ``when`` alone."""

    when: str
    #: The instant (ISO 8601, UTC) for a <time> element, and in full in the viewer's zone; None: never seen.
    instant: str | None = None
    full: str | None = None


def last_seen(seen: Seen, now: datetime, zone: tzinfo, retention: timedelta) -> LastSeen | None:
    """What to show of when a person was last seen: nothing while they are not Offline (their presence says it)."""
    if seen.view.state.visible.availability is not Availability.OFFLINE:
        return None
    if seen.last_seen is None:
        return LastSeen(f"Not seen in the last {retention.days} days")
    local = seen.last_seen.astimezone(zone)
    return LastSeen(
        ago(seen.last_seen, now, zone),
        seen.last_seen.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        f"{long_date(local.date())}, {local:%H:%M}",
    )


# ---- People ----


async def _people(request: Request, account: Account) -> Response:
    query = request.query_params.get("q", "").strip()[:200]
    accounts = await services_of(request).directory.list_users(Actor.signed_in(account))
    terms = query.lower().split()
    matching = sorted(
        (a for a in accounts if all(w in f"{a.user.display_name} {a.user.user_principal_name}".lower() for w in terms)),
        key=lambda a: (a.user.display_name.lower(), a.user.user_principal_name),
    )
    listed = matching[:PAGE_LIMIT]
    principal = portal_principal(account)
    history: PresenceHistory = services_of(request).history
    found = await history.last_seen_many(principal, [a.user.id for a in listed]) if listed else []
    by_id = {s.view.user_id: s for s in found}
    photos = await services_of(request).directory.photo_tags(Actor.signed_in(account), [a.user.id for a in listed])
    _, settings = await services_of(request).mailbox.get(principal, None)
    zone = viewer_zone(settings.time_zone)
    now = await services_of(request).actions.clock.now()
    people = [
        {
            "id": a.user.id,
            "name": a.user.display_name,
            "upn": a.user.user_principal_name,
            "initials": initials(a.user.display_name),
            "photo": photos.get(a.user.id),
            "presence": shown(by_id[a.user.id].view.state.visible),
            "sequence": f"{by_id[a.user.id].view.state.sequence:020d}",
            "seen": last_seen(by_id[a.user.id], now, zone, history.retention),
        }
        for a in listed
        if a.user.id in by_id
    ]
    return page(
        request,
        "people.html",
        account,
        "people",
        people=people,
        query=query,
        total=len(matching),
        limited=len(matching) > PAGE_LIMIT,
        vocabulary=json.dumps(VOCABULARY),
        me=account.user.id,
    )


people = signed_in(_people)


async def _photo(request: Request, account: Account) -> Response:
    """A person's photo for the portal's avatars; its address carries the etag, so it is kept a day."""
    photo = await services_of(request).directory.photo(Actor.signed_in(account), request.path_params["id"])
    headers = {"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return Response(photo.data, media_type=photo.content_type, headers=headers)


person_photo = signed_in(_photo)


# ---- a day's timeline ----


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the day's bar: one presence, from ``start`` to ``end`` (clock times)."""

    #: The availability, for its colour; "" where nothing is recorded.
    availability: str
    out_of_office: bool
    words: str
    start: str
    end: str
    #: Where it starts and how wide it is, as percentages of the day.
    x: str
    width: str


@dataclass(frozen=True, slots=True)
class Row:
    """A line of the table of changes."""

    time: str
    #: The instant, ISO 8601 in UTC.
    instant: str
    availability: str
    out_of_office: bool
    words: str
    #: How long it lasted.
    lasted: str
    #: The presence the day began with (a change of an earlier day).
    opening: bool


@dataclass(frozen=True, slots=True)
class Tick:
    x: str
    label: str
    anchor: str


@dataclass(frozen=True, slots=True)
class Timeline:
    day: str
    title: str
    zone: str
    is_today: bool
    segments: tuple[Segment, ...]
    rows: tuple[Row, ...]
    ticks: tuple[Tick, ...]
    #: The colours of the bar, in words: (availability, out of office, words).
    legend: tuple[tuple[str, bool, str], ...]
    #: The links to the day before, the day after and today (None where there is no such link).
    previous: str | None
    next: str | None
    today: str | None
    #: The page the day form goes to, and the days it may ask for.
    action: str
    earliest: str
    latest: str
    #: The time the bar ends at: now, for today.
    until: str
    #: Whether the day had more changes than are shown.
    more: bool


def _day_asked(raw: str | None, today: date, earliest: date) -> date:
    """The day ``?day=`` names (today without one); a clear refusal for anything but a day of the history kept."""
    if raw is None or raw == "":
        return today
    try:
        if not _DAY.fullmatch(raw):
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"'{raw[:40]}' is not a day: give one as YYYY-MM-DD, such as {today.isoformat()}.") from None
    if not earliest <= day <= today:
        raise BadRequest(
            f"Presence history is kept from {earliest.isoformat()} to today ({today.isoformat()}): "
            f"choose a day in between."
        )
    return day


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _percent(at: datetime, start: datetime, length: float) -> float:
    return max(0.0, min(100.0, (at - start).total_seconds() / length * 100))


def _words(visible: VisiblePresence | None) -> str:
    return "No record" if visible is None else words(visible.availability.value, visible.activity.value)


def _looks(visible: VisiblePresence | None) -> tuple[str, bool]:
    """What the timeline shows of a presence: its words, and whether it is out of office."""
    return _words(visible), bool(visible and visible.out_of_office.is_out_of_office)


def _hour(day: date, hour: int, zone: tzinfo) -> datetime:
    """The instant the day's wall clock shows ``hour`` o'clock (24: midnight at its end)."""
    if hour == 24:
        return _midnight(day + timedelta(days=1), zone)
    return datetime.combine(day, time(hour), zone).astimezone(UTC)


def _day_link(path: str, day: date) -> str:
    return f"{path}?day={day.isoformat()}#timeline"


def _spans(period: Period, start: datetime) -> tuple[list[tuple[datetime, VisiblePresence | None]], bool]:
    """The day's presence as spans, each from its start on, and each a presence that looks different from the one
    before it (None: no record); and whether the first is the presence of the day before."""
    spans: list[tuple[datetime, VisiblePresence | None]] = [(start, period.opening.visible if period.opening else None)]
    from_before = period.opening is not None
    for change in period.changes:
        if _looks(change.state.visible) == _looks(spans[-1][1]):
            continue
        if change.state.changed_at <= start:
            spans[-1], from_before = (start, change.state.visible), False
        else:
            spans.append((change.state.changed_at, change.state.visible))
    return spans, from_before


async def day_timeline(
    request: Request, account: Account, ref: str, zone_name: str, now: datetime, path: str
) -> Timeline:
    """``ref``'s presence over the day ``?day=`` names (by default today), in the viewer's time zone, as the bar's
    segments and the table's rows; read as reading ``ref``'s presence is (the service checks it)."""
    history: PresenceHistory = services_of(request).history
    zone = viewer_zone(zone_name)
    today = now.astimezone(zone).date()
    earliest = (now - history.retention).astimezone(zone).date()
    day = _day_asked(request.query_params.get("day"), today, earliest)
    start, end = _midnight(day, zone), _midnight(day + timedelta(days=1), zone)
    period = await history.period(portal_principal(account), ref, start, end, DAY_LIMIT)
    last_change = period.changes[-1].state.changed_at if period.changes else start
    until = min(end, max(now, last_change))
    length = (end - start).total_seconds()

    spans, from_before = _spans(period, start)
    segments: list[Segment] = []
    rows: list[Row] = []
    for index, (at, visible) in enumerate(spans):
        stop = max(at, spans[index + 1][0] if index + 1 < len(spans) else until)
        availability = visible.availability.value if visible else ""
        ooo = bool(visible and visible.out_of_office.is_out_of_office)
        ending = "now" if stop == now and day == today else ("24:00" if stop == end else _clock(stop, zone))
        x, width = _percent(at, start, length), _percent(stop, start, length) - _percent(at, start, length)
        if width > 0:
            segments.append(
                Segment(availability, ooo, _words(visible), _clock(at, zone), ending, f"{x:.3f}%", f"{width:.3f}%")
            )
        if visible is None:
            continue
        lasted = span(stop - at)
        if index == len(spans) - 1:
            lasted += " so far" if day == today else ", to the end of the day"
        rows.append(
            Row(
                _clock(at, zone),
                at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                availability,
                ooo,
                _words(visible),
                lasted,
                opening=index == 0 and from_before,
            )
        )
    legend: dict[tuple[str, bool], str] = {}
    for segment in segments:
        key = (segment.availability, segment.out_of_office)
        if segment.out_of_office:
            legend.setdefault(key, "Out of office")
        else:
            legend.setdefault(key, AVAILABILITY_WORDS.get(segment.availability, segment.availability) or "No record")
    ticks = tuple(
        Tick(
            f"{_percent(_hour(day, hour, zone), start, length):.3f}%",
            f"{hour:02d}:00",
            "start" if hour == 0 else "end" if hour == 24 else "middle",
        )
        for hour in (0, 6, 12, 18, 24)
    )
    return Timeline(
        day=day.isoformat(),
        title=long_date(day),
        zone=zone_name,
        is_today=day == today,
        segments=tuple(segments),
        rows=tuple(rows),
        ticks=ticks,
        legend=tuple((a, o, w) for (a, o), w in legend.items()),
        previous=_day_link(path, day - timedelta(days=1)) if day > earliest else None,
        next=_day_link(path, day + timedelta(days=1)) if day < today else None,
        today=f"{path}#timeline" if day != today else None,
        action=path,
        earliest=earliest.isoformat(),
        latest=today.isoformat(),
        until="now" if day == today else "midnight",
        more=period.more,
    )


# ---- a person ----


async def _person(request: Request, account: Account) -> Response:
    """One person: their presence, when they were last seen, and their presence over a day."""
    actor = Actor.signed_in(account)
    person = await services_of(request).directory.user(actor, request.path_params["id"])
    principal = portal_principal(account)
    history: PresenceHistory = services_of(request).history
    [seen] = await history.last_seen_many(principal, [person.user.id])
    _, settings = await services_of(request).mailbox.get(principal, None)
    now = await services_of(request).actions.clock.now()
    photos = await services_of(request).directory.photo_tags(actor, [person.user.id])
    timeline = await day_timeline(
        request, account, person.user.id, settings.time_zone, now, f"/people/{quote(person.user.id)}"
    )
    return page(
        request,
        "person.html",
        account,
        "people",
        person={
            "id": person.user.id,
            "name": person.user.display_name,
            "upn": person.user.user_principal_name,
            "initials": initials(person.user.display_name),
            "photo": photos.get(person.user.id),
            "presence": shown(seen.view.state.visible),
            "sequence": f"{seen.view.state.sequence:020d}",
            "seen": last_seen(seen, now, viewer_zone(settings.time_zone), history.retention),
        },
        me=account.user.id,
        timeline=timeline,
        vocabulary=json.dumps(VOCABULARY),
    )


person_page = signed_in(_person)
