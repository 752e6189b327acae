"""Fixtures for the integration's tests (pytest-homeassistant-custom-component)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: Any) -> Generator[None]:
    """Let HA load custom_components/qr_charging in every test."""
    yield
