"""Setting up and unloading a config entry."""

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

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
