"""Setting up and unloading a config entry."""

import asyncio

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from .const import WEBHOOK_ID


async def test_setup_and_unload(hass: HomeAssistant, config_entry: MockConfigEntry) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert WEBHOOK_ID in hass.data["webhook"]

    assert await hass.config_entries.async_unload(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.NOT_LOADED
    # Unloaded, the webhook stays to answer 503 (Razorpay delivers again); removed, it is gone.
    assert WEBHOOK_ID in hass.data["webhook"]
    assert await hass.config_entries.async_remove(config_entry.entry_id)
    assert WEBHOOK_ID not in hass.data["webhook"]


async def test_a_bay_saved_while_the_account_reloads_is_not_lost(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
) -> None:
    """Two bays saved back to back (the demo's set-up does it): the second lands mid-reload.

    The first save reloads the account; the second arrives while that setup runs, after it
    read the settings and before it listens again. Before, the second save was lost until the
    next reload (the demo's dynamic QR code showed up without its password).
    """
    bay = next(s for s in loaded_entry.subentries.values() if s.subentry_type == "bay")
    # Told when the setup begins, not polled for a number of the loop's turns: the unload
    # before it waits on the ledger's thread, as long as the machine's load makes it (CI's
    # loaded run ran out of 1,000 turns).
    setting_up = asyncio.Event()

    def _state_changed() -> None:
        if loaded_entry.state is ConfigEntryState.SETUP_IN_PROGRESS:
            setting_up.set()

    # Not through async_on_unload: the reload's unload would drop it before the setup.
    stop_listening = loaded_entry.async_on_state_change(_state_changed)
    hass.config_entries.async_update_subentry(
        loaded_entry, bay, data={**bay.data, "max_minutes": 45}
    )
    await setting_up.wait()
    stop_listening()
    hass.config_entries.async_update_subentry(
        loaded_entry, bay, data={**bay.data, "max_minutes": 50}
    )
    await hass.async_block_till_done()

    assert loaded_entry.state is ConfigEntryState.LOADED
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    assert [b["limit_s"] for b in diagnostics["bays"].values()] == [50 * 60]
