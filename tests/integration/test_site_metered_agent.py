"""A site's measured power with an agent bay (issue #25): it waits for the agent's meter.

An agent bay may meter (its agent says so in its retained config), so its site has a
*Measured power* sensor from the start; it is unavailable until the agent names a meter, then
follows the power the agent reports.
"""

from __future__ import annotations

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .meter_helpers import announce, metered_state
from .mqtt_helpers import ScriptedAgent, wait_until


def _measured(hass: HomeAssistant, entry: MockConfigEntry) -> str | None:
    """The default site's measured power (the account has no site subentry)."""
    unique_id = f"{entry.entry_id}/site/default_measured_power"
    entity_id = er.async_get(hass).async_get_entity_id("sensor", "qr_charging", unique_id)
    assert entity_id is not None
    state = hass.states.get(entity_id)
    return None if state is None else state.state


async def test_measured_power_waits_for_the_agents_meter(
    hass: HomeAssistant, agent: ScriptedAgent, mqtt_bay_entry: MockConfigEntry
) -> None:
    assert _measured(hass, mqtt_bay_entry) == STATE_UNAVAILABLE

    announce(agent)
    await wait_until(hass, lambda: _measured(hass, mqtt_bay_entry) == STATE_UNKNOWN)
    metered_state(agent, None, on=False, reason="boot", power_w=0.0)
    await wait_until(hass, lambda: _measured(hass, mqtt_bay_entry) == "0.0")

    announce(agent, meter=None)  # the agent now names no meter (an older version)
    await wait_until(hass, lambda: _measured(hass, mqtt_bay_entry) == STATE_UNAVAILABLE)
