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


def decode_visible(raw: str | bytes) -> VisiblePresence:
    return _decoder.decode(raw)
