"""Headless Chromium for the customer's pages (``browser`` and ``pages_url`` in conftest.py).

Tests that use it carry ``needs_chromium``: skipped only when /usr/bin/chromium is missing
(scripts/setup installs it as root). With ``QR_CHARGING_SCREENSHOTS=<folder>`` ``shot`` saves
the pages there as PNGs (docs/images).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = os.environ.get("QR_CHARGING_SCREENSHOTS")
# A phone's screen, as a customer holds it in front of a bay.
PHONE = {"width": 390, "height": 780}

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless Chromium is not installed at /usr/bin/chromium"
)


async def shot(page: Any, name: str) -> None:
    """Save the whole page as ``<name>.png`` when screenshots are asked for."""
    if SHOTS:
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)
