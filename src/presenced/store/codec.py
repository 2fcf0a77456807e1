"""Row values ↔ domain values: instants as integers, the visible presence as JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from presenced.domain.model import VisiblePresence

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(VisiblePresence)


def to_us(instant: datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def opt_to_us(instant: datetime | None) -> int | None:
    return None if instant is None else to_us(instant)


def opt_from_us(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


def encode_visible(visible: VisiblePresence) -> str:
    return _encoder.encode(visible).decode()


#: Decoded visible presences by their JSON. Many users share one (Offline, to
#: begin with) and the values are immutable, so sharing them is safe.
_decoded: dict[str | bytes, VisiblePresence] = {}
_DECODED_MAX = 4096


def decode_visible(raw: str | bytes) -> VisiblePresence:
    found = _decoded.get(raw)
    if found is None:
        found = _decoder.decode(raw)
        if len(_decoded) >= _DECODED_MAX:
            del _decoded[next(iter(_decoded))]
        _decoded[raw] = found
    return found
