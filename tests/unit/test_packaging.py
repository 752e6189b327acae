"""What ships in the integration's folder besides code: strings and brand (the quality scale's
evidence, actions and icons among it, is test_quality_scale.py's)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from custom_components.qr_charging.const import DOMAIN

PACKAGE = Path(__file__).parents[2] / "custom_components" / DOMAIN
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PACKAGE / name).read_text("utf-8"))
    return data


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (its first chunk, IHDR)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, path
    assert head[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_english_translation_is_the_source_strings() -> None:
    # Custom integrations are read from translations/en.json; strings.json is its source.
    assert json.loads((PACKAGE / "translations" / "en.json").read_text("utf-8")) == _json(
        "strings.json"
    )


def test_brand_images() -> None:
    brand = PACKAGE / "brand"
    assert _png_size(brand / "icon.png") == (256, 256)
    assert _png_size(brand / "icon@2x.png") == (512, 512)
    # Logos: the shortest side 128 to 256 pixels (256 to 512 for @2x).
    assert 128 <= min(_png_size(brand / "logo.png")) <= 256
    assert 256 <= min(_png_size(brand / "logo@2x.png")) <= 512
