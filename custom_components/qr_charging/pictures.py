"""Small PNG pictures drawn in plain Python (no imaging library): the out-of-order and closed signs.

Plain Python, no Home Assistant imports.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

SIZE = 240
_RED = (197, 34, 31)
_WHITE = (255, 255, 255)
_SLATE = (55, 71, 79)


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


def _sign(size: int, colour: tuple[int, int, int], cut: Callable[[float, float], bool]) -> bytes:
    """A disc of ``colour`` on white, white where ``cut(dx, dy)`` (from the centre) holds."""
    centre, radius = (size - 1) / 2, size * 0.42
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            dx, dy = x - centre, y - centre
            inside = dx * dx + dy * dy <= radius * radius
            row.append(colour if inside and not cut(dx, dy) else _WHITE)
        rows.append(row)
    return png(rows)


def out_of_order_png(size: int = SIZE) -> bytes:
    """A "no entry" sign: a red disc with a white bar, on white (nothing to scan)."""
    half_w, half_h = size * 0.28, size * 0.07
    return _sign(size, _RED, lambda dx, dy: abs(dx) <= half_w and abs(dy) <= half_h)


def closed_png(size: int = SIZE) -> bytes:
    """A "closed" sign: a clock, a slate disc with white hands at three o'clock, on white."""
    hand, reach = size * 0.035, size * 0.42

    def hands(dx: float, dy: float) -> bool:
        # The hour hand points up, the minute hand right: both from the centre.
        up = abs(dx) <= hand and -reach * 0.6 <= dy <= hand
        return up or (abs(dy) <= hand and -hand <= dx <= reach * 0.75)

    return _sign(size, _SLATE, hands)
