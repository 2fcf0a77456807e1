"""Profile photos as Graph takes them: a JPEG or a PNG, known by its bytes, not by what the request says it is
(docs/graph-api.md, "Profile photos")."""

from __future__ import annotations

import hashlib
import struct

from presenced.errors import BadRequest
from presenced.services.entities import Photo

#: Graph's limit on an uploaded photo.
MAX_PHOTO = 4 * 1024 * 1024
_PNG = b"\x89PNG\r\n\x1a\n"
#: The JPEG markers that start a frame, and so carry its size (SOF0-SOF15 but DHT, JPG and DAC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_LARGEST = 65_535


def photo_from_bytes(data: bytes) -> Photo:
    """The photo ``data`` holds; anything but a whole JPEG or PNG of sensible size is a 400."""
    if not data:
        raise BadRequest("The photo is empty.")
    if len(data) > MAX_PHOTO:
        raise BadRequest(f"The photo must not exceed {MAX_PHOTO} bytes.")
    if data.startswith(_PNG):
        content_type, (width, height) = "image/png", _png_size(data)
    elif data.startswith(b"\xff\xd8\xff"):
        content_type, (width, height) = "image/jpeg", _jpeg_size(data)
    else:
        raise BadRequest("The photo must be a JPEG or PNG image.")
    if not (0 < width <= _LARGEST and 0 < height <= _LARGEST):
        raise BadRequest("The photo's width and height must be between 1 and 65535 pixels.")
    etag = hashlib.sha256(data).hexdigest()[:32]
    return Photo(content_type, width, height, data, etag)


def _png_size(data: bytes) -> tuple[int, int]:
    # The signature, then the IHDR chunk: length 13, type, width, height, …; and the file ends with IEND.
    if len(data) < 33 or data[12:16] != b"IHDR" or not data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82"):
        raise BadRequest("The photo is not a whole PNG image.")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """The size in the first frame header, walking the markers from the start."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in {0xD8, 0x01} or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if length < 2:
            break
        if marker in _SOF:
            if at + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            if b"\xff\xd9" not in data[at:]:
                break
            return width, height
        if marker == 0xDA:  # the scan starts before any frame header
            break
        at += 2 + length
    raise BadRequest("The photo is not a whole JPEG image.")
