"""Row values ↔ domain values: instants as integers, the visible presence and its timeline as compact JSON.

A visible presence is stored as a JSON array (availability, activity, out of
office, its message, the status message, work location type, source and place)
rather than an object with its field names: about a third of the bytes, which on
SQLite is about a third of the pages a write or a sweep puts through the
write-ahead log. Values written by earlier versions (objects) are still read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import overload

import msgspec

from presenced.domain.aggregate import Step
from presenced.domain.model import (
    Activity,
    Availability,
    OutOfOfficeView,
    StatusMessage,
    VisiblePresence,
    WorkLocationSource,
    WorkLocationType,
    WorkLocationView,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(instant: datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(0, 0, value)


def opt_to_us(instant: datetime | None) -> int | None:
    return None if instant is None else to_us(instant)


def opt_from_us(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


class _Status(msgspec.Struct, array_like=True):
    content: str
    content_type: str
    published_us: int
    expires_us: int | None
    expiry_time_zone: str | None


class _Visible(msgspec.Struct, array_like=True):
    availability: str
    activity: str
    out_of_office: bool
    out_of_office_message: str | None
    status: _Status | None
    location_type: str
    location_source: str
    place_id: str | None


_encoder = msgspec.json.Encoder()
_compact = msgspec.json.Decoder(_Visible)
#: What earlier versions stored: the dataclass as a JSON object.
_object_form = msgspec.json.Decoder(VisiblePresence)
_steps = msgspec.json.Decoder(list[tuple[int, msgspec.Raw]])

_AVAILABILITY = {member.value: member for member in Availability}
_ACTIVITY = {member.value: member for member in Activity}
_LOCATION_TYPE = {member.value: member for member in WorkLocationType}
_LOCATION_SOURCE = {member.value: member for member in WorkLocationSource}


def _to_compact(visible: VisiblePresence) -> _Visible:
    status, location = visible.status_message, visible.work_location
    return _Visible(
        visible.availability.value,
        visible.activity.value,
        visible.out_of_office.is_out_of_office,
        visible.out_of_office.message,
        None
        if status is None
        else _Status(
            status.content,
            status.content_type,
            to_us(status.published_at),
            opt_to_us(status.expires_at),
            status.expiry_time_zone,
        ),
        location.work_location_type.value,
        location.source.value,
        location.place_id,
    )


def _from_compact(v: _Visible) -> VisiblePresence:
    status = v.status
    return VisiblePresence(
        _AVAILABILITY[v.availability],
        _ACTIVITY[v.activity],
        OutOfOfficeView(v.out_of_office, v.out_of_office_message),
        None
        if status is None
        else StatusMessage(
            status.content,
            from_us(status.published_us),
            opt_from_us(status.expires_us),
            status.expiry_time_zone,
            status.content_type,
        ),
        WorkLocationView(_LOCATION_TYPE[v.location_type], _LOCATION_SOURCE[v.location_source], v.place_id),
    )


#: Encodings of recently encoded or decoded visible presences, by identity (a decoded value is
#: shared, so a sweep that moves many users to the same presence encodes it once). Each entry
#: keeps its value alive, so an id is never reused while it is here.
_encoded: dict[int, tuple[VisiblePresence, bytes, str]] = {}
#: Decoded visible presences by their JSON. Many users share one (Offline, to begin with) and
#: the values are immutable, so sharing them is safe.
_decoded: dict[bytes, VisiblePresence] = {}
_CACHED = 4096


def _remember(visible: VisiblePresence, raw: bytes) -> None:
    if len(_encoded) >= _CACHED:
        del _encoded[next(iter(_encoded))]
    _encoded[id(visible)] = (visible, raw, raw.decode())


def encode_visible_bytes(visible: VisiblePresence) -> bytes:
    found = _encoded.get(id(visible))
    if found is not None and found[0] is visible:
        return found[1]
    raw = _encoder.encode(_to_compact(visible))
    _remember(visible, raw)
    return raw


def encode_visible(visible: VisiblePresence) -> str:
    found = _encoded.get(id(visible))
    if found is not None and found[0] is visible:
        return found[2]
    return encode_visible_bytes(visible).decode()


def decode_visible(raw: str | bytes) -> VisiblePresence:
    key = raw.encode() if isinstance(raw, str) else raw
    found = _decoded.get(key)
    if found is None:
        found = _from_compact(_compact.decode(key)) if key[:1] == b"[" else _object_form.decode(key)
        if len(_decoded) >= _CACHED:
            del _decoded[next(iter(_decoded))]
        _decoded[key] = found
        _remember(found, key if key[:1] == b"[" else _encoder.encode(_to_compact(found)))
    return found


class StoredSteps(Sequence[Step]):
    """A state's upcoming changes as stored: split at once into (instant, raw JSON), each step
    decoded when first read. A write usually replaces them unread, and a sweep reads the one or
    two that fell due; the rest go back to the database as they came. A slice shares the steps
    already decoded."""

    __slots__ = ("_pairs", "_steps")

    def __init__(self, pairs: list[tuple[int, msgspec.Raw]], steps: list[Step | None] | None = None) -> None:
        self._pairs = pairs
        self._steps: list[Step | None] = [None] * len(pairs) if steps is None else steps

    def __len__(self) -> int:
        return len(self._pairs)

    @overload
    def __getitem__(self, index: int) -> Step: ...
    @overload
    def __getitem__(self, index: slice) -> StoredSteps: ...
    def __getitem__(self, index: int | slice) -> Step | StoredSteps:
        if isinstance(index, slice):
            return StoredSteps(self._pairs[index], self._steps[index])
        step = self._steps[index]  # IndexError past the end, as a tuple
        if step is None:
            at, visible = self._pairs[index]
            step = self._steps[index] = Step(from_us(at), decode_visible(bytes(visible)))
        return step

    def __eq__(self, other: object) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, Sequence) else NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))

    def encoded(self) -> str:
        return _encoder.encode(self._pairs).decode()


def encode_steps(steps: Sequence[Step]) -> str:
    """A state's upcoming changes: ``[[at_us, visible], ...]``."""
    if isinstance(steps, StoredSteps):
        return steps.encoded()
    return _encoder.encode([(to_us(s.at), msgspec.Raw(encode_visible_bytes(s.visible))) for s in steps]).decode()


def decode_steps(raw: str) -> StoredSteps:
    return StoredSteps(_steps.decode(raw))
