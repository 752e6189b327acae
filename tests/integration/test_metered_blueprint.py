"""The blueprint "bay on but drawing nothing" (issue #24), run as test_blueprints.py runs them.

HA's blueprint validation, then an automation made from it, fed the bay's Charging switch and
Power sensor states with HA's clock moved.
"""

from __future__ import annotations

from datetime import timedelta

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from .blueprint_helpers import set_up_automation

NAME = "bay_drawing_nothing.yaml"
SWITCH = "switch.bay_1_charging"
POWER = "sensor.bay_1_power"
INPUTS = {"charging_switch": SWITCH, "power_sensor": POWER}


async def _later(hass: HomeAssistant, minutes: float) -> None:
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=minutes))
    await hass.async_block_till_done()


def _bay(hass: HomeAssistant, switch: str, power: str) -> None:
    hass.states.async_set(SWITCH, switch, {"friendly_name": "Bay 1 Charging"})
    hass.states.async_set(POWER, power, {"device_class": "power", "unit_of_measurement": "W"})


async def test_a_bay_on_and_drawing_nothing_for_an_hour_is_reported(hass: HomeAssistant) -> None:
    _bay(hass, STATE_OFF, "0.0")
    calls = await set_up_automation(hass, NAME, INPUTS)
    _bay(hass, STATE_ON, "0.0")  # switched on, and nothing plugged in
    await hass.async_block_till_done()
    await _later(hass, 59)
    assert calls == []

    await _later(hass, 61)
    assert len(calls) == 1
    assert calls[0].data["title"] == "Charging bay on but drawing nothing"
    assert "Bay 1 Charging has been on for 60 min drawing under 5 W" in calls[0].data["message"]


async def test_drawing_power_or_switching_off_in_time_is_not_reported(
    hass: HomeAssistant,
) -> None:
    _bay(hass, STATE_ON, "0.0")
    calls = await set_up_automation(hass, NAME, INPUTS | {"minutes": 30})
    _bay(hass, STATE_ON, "2.0")
    await hass.async_block_till_done()
    await _later(hass, 20)
    _bay(hass, STATE_ON, "812.0")  # a vehicle draws: the wait starts again
    await hass.async_block_till_done()
    await _later(hass, 40)
    _bay(hass, STATE_ON, "unavailable")  # no reading is no "nothing"
    await hass.async_block_till_done()
    await _later(hass, 80)
    _bay(hass, STATE_OFF, "0.0")
    await hass.async_block_till_done()
    await _later(hass, 120)
    assert calls == []
