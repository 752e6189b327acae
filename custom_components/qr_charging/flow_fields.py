"""Form fields the account flow and the plan and bay flows share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.helpers import selector

from .catalog_errors import CatalogError

TEXT = selector.TextSelector()


def whole_number(low: int, high: int, unit: str) -> selector.NumberSelector:
    """A box for a whole number within bounds (minutes, seconds)."""
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=low,
            max=high,
            step=1,
            mode=selector.NumberSelectorMode.BOX,
            unit_of_measurement=unit,
        )
    )


def flatten(user_input: Mapping[str, Any], section_key: str) -> dict[str, Any]:
    """Form input with one section's fields lifted to the top, strings trimmed."""
    data = {k: v for k, v in user_input.items() if k != section_key}
    data.update(user_input.get(section_key) or {})
    return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}


def whole_minutes(field: str, value: Any) -> int:
    """Number selectors give floats; minutes must be whole."""
    minutes = float(value)
    if minutes != int(minutes):
        raise CatalogError(field, "invalid_minutes")
    return int(minutes)
