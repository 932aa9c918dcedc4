"""Uploaded files: the parts of a `multipart/form-data` body, and the pixel size of a PNG, JPEG, GIF or WebP image.

Only the standard library: the headers of these four formats say how large the image is, so nothing is decoded.
"""

from __future__ import annotations

import struct
from email.message import Message
from email.parser import BytesHeaderParser

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the size; 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) share the range but do not.
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers that stand alone, without a length: TEM and RST0..RST7 (SOI is consumed before the scan starts).
JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def multipart_fields(body: bytes, content_type: str) -> dict[str, bytes]:
    """Each named part of a multipart/form-data body (the first one wins); empty when the body is not one."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        return {}
    fields: dict[str, bytes] = {}
    # A delimiter is CRLF "--" boundary; the CRLF before the first one is optional, so add it.
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        # What follows the boundary on its line (transport padding) is not a header.
        headers = BytesHeaderParser().parsebytes(head.partition(b"\r\n")[2] + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        if isinstance(name, str) and name not in fields:
            fields[name] = content
    return fields


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) read from the image's header, or None if it is not a PNG, JPEG, GIF or WebP."""
    if data.startswith(PNG_SIGNATURE):
        size = _png(data)
        name = "PNG"
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        size = struct.unpack("<HH", data[6:10]) if len(data) >= 10 else None
        name = "GIF"
    elif data.startswith(b"\xff\xd8\xff"):
        size = _jpeg(data)
        name = "JPEG"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        size = _webp(data)
        name = "WEBP"
    else:
        return None
    if size is None or not size[0] or not size[1]:
        return None
    return name, size[0], size[1]


def _png(data: bytes) -> tuple[int, int] | None:
    # The first chunk is IHDR: length (4), type (4), then width and height as big-endian 32-bit integers.
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg(data: bytes) -> tuple[int, int] | None:
    """Walk the segments after SOI up to the first start-of-frame, which holds height then width."""
    i = 2
    while i + 1 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        i += 2
        if marker in JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan starts before any frame header
            return None
        if i + 2 > len(data):
            return None
        (length,) = struct.unpack(">H", data[i : i + 2])
        if length < 2:
            return None
        if marker in JPEG_FRAME_MARKERS:
            if length < 7 or i + 7 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            return width, height
        i += length
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    """The first chunk after the RIFF header says which of the three WebP encodings this is."""
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: frame tag (3), start code 9D 01 2A, then 14-bit width and height
        if len(data) < 30 or data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: signature 0x2F, then width-1 and height-1 in 14 bits each
        if len(data) < 25 or data[20] != 0x2F:
            return None
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: flags (4), then canvas width-1 and height-1 in 24 bits each
        if len(data) < 30:
            return None
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None
