"""Small PNG pictures drawn in plain Python (no imaging library): the out-of-order sign.

Plain Python, no Home Assistant imports.
"""

from __future__ import annotations

import struct
import zlib

SIZE = 240
_RED = (197, 34, 31)
_WHITE = (255, 255, 255)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png(pixels: list[list[tuple[int, int, int]]]) -> bytes:
    """An RGB PNG of rows of pixels."""
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def out_of_order_png(size: int = SIZE) -> bytes:
    """A "no entry" sign: a red disc with a white bar, on white (nothing to scan)."""
    centre, radius = (size - 1) / 2, size * 0.42
    bar_half_w, bar_half_h = size * 0.28, size * 0.07
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            dx, dy = x - centre, y - centre
            inside = dx * dx + dy * dy <= radius * radius
            on_bar = abs(dx) <= bar_half_w and abs(dy) <= bar_half_h
            row.append(_RED if inside and not on_bar else _WHITE)
        rows.append(row)
    return png(rows)
