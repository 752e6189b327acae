"""Snapshots (syrupy, as HA core does) of what a bay shows and what an owner shares."""

from __future__ import annotations

import json
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

# Values that change from run to run: the stand-in's port, ids made at run time, the image's
# token and time.
VOLATILE = props("api_base_url", "entry_id", "access_token", "entity_picture", "id")


@pytest.fixture(autouse=True)
async def diagnostics_view(hass: HomeAssistant) -> None:
    """Register the diagnostics view before any test client freezes the HTTP router."""
    assert await async_setup_component(hass, "diagnostics", {})


def _entities(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    registry = er.async_get(hass)
    shown: dict[str, Any] = {}
    for item in sorted(
        er.async_entries_for_config_entry(registry, entry.entry_id), key=lambda e: e.entity_id
    ):
        state = hass.states.get(item.entity_id)
        if item.disabled_by is not None:
            assert state is None
            shown[item.entity_id] = {"disabled_by": item.disabled_by}
            continue
        assert state is not None
        shown[item.entity_id] = {
            "translation_key": item.translation_key,
            "entity_category": item.entity_category,
            "disabled_by": item.disabled_by,
            "original_device_class": item.original_device_class,
            # An image's state is the time its picture last changed.
            "state": None if item.domain == "image" else state.state,
            "attributes": {str(k): v for k, v in state.attributes.items()},
        }
    # Plain values: the two HA lines name the same things with different enum classes.
    plain: dict[str, Any] = json.loads(json.dumps(shown))
    return plain


async def test_an_idle_bay(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    assert _entities(hass, loaded_entry) == snapshot(exclude=VOLATILE)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    assert diagnostics == snapshot(exclude=VOLATILE)
