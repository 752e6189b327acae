"""Metered bays in the integration tests (issue #24): a per-kWh plan, and an agent with a meter.

The agent is the scripted one of ``mqtt_helpers`` (a paho client on the real Mosquitto) with a
``meter`` in its retained config; ``metered_state`` publishes the contract's state messages
with ``power_w`` and ``energy_wh`` (docs/mqtt-protocol.md).
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging import bay_runner, endings
from custom_components.qr_charging.const import DOMAIN

from .helpers import settle, tick
from .mqtt_helpers import NODE, STATE, ScriptedAgent

PRICE_PER_KWH = 1500  # paise: ₹15 a unit
CAP_MINUTES = 120
ENERGY_PLAN_SUBENTRY: dict[str, Any] = {
    "data": {
        "code": "kwh",
        "name": "Per unit",
        "kind": "kwh",
        "minutes": CAP_MINUTES,
        "price_per_kwh_paise": PRICE_PER_KWH,
        "min_paise": 1000,
        "max_paise": 50000,
    },
    "subentry_type": "energy_plan",
    "title": "Per unit",
    "unique_id": "kwh",
}
METER = {"kind": "pzem004t", "max_power_w": 3680}
FULL_RULE = {"below_w": 10, "settle_s": 180, "grace_s": 120}


def announce(agent: ScriptedAgent, *, meter: dict[str, Any] | None = METER) -> None:
    """The agent's retained config, its bay-1 with this meter (None: none, an old agent)."""
    bay: dict[str, Any] = {"id": "bay-1", "name": "Bay 1"}
    if meter is not None:
        bay["meter"] = meter
    agent.publish(
        f"qr_charging/{NODE}/config",
        json.dumps(
            {
                "node": NODE,
                "name": "Kiosk 1",
                "sw_version": "0.2.0",
                "bays": [bay],
                "max_session_s": 14400,
            }
        ),
    )


def metered_state(
    agent: ScriptedAgent,
    session: str | None,
    *,
    on: bool,
    reason: str,
    until: float | None = None,
    power_w: float | None = None,
    energy_wh: float | None = None,
) -> None:
    """Publish bay-1's state as a metered agent does (retained)."""
    agent.publish(
        STATE,
        json.dumps(
            {
                "state": "ON" if on else "OFF",
                "session": session,
                "until": until,
                "remaining": max(until - time.time(), 0) if until else 0,
                "reason": reason,
                "power_w": power_w,
                "energy_wh": energy_wh,
            }
        ),
    )


def charged_for(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The bays' clock runs ``seconds`` ahead: the agent has been charging that long.

    An hour cannot pass here: only the clock HA's bay runner and endings read jumps, so an
    agent's report of the energy it counted is as plausible as over that time (at most its
    ``max_power_w``).
    """
    clock = SimpleNamespace(time=lambda: time.time() + seconds)
    monkeypatch.setattr(bay_runner, "time", clock)
    monkeypatch.setattr(endings, "time", clock)


async def buy_energy(hass: HomeAssistant, rupees: float) -> dict[str, Any]:
    """A payment link for energy at bay-1, made with the action (as an automation would)."""
    response = await hass.services.async_call(
        DOMAIN,
        "create_payment_link",
        {"bay": "bay-1", "plan": "kwh", "amount": rupees},
        blocking=True,
        return_response=True,
    )
    assert isinstance(response, dict)
    return response


POWER_SENSOR = "sensor.plug_power"
ENERGY_SENSOR = "sensor.plug_energy"


def metered_switch_bay(bay: dict[str, Any]) -> dict[str, Any]:
    """A switch bay subentry with the plug's power and energy sensors (``setup_meter``)."""
    sensors = {"power_sensor": POWER_SENSOR, "energy_sensor": ENERGY_SENSOR}
    return {**bay, "data": {**bay["data"], **sensors}}


async def setup_meter(hass: HomeAssistant, *, energy_kwh: float, power_w: float = 0) -> None:
    """The plug's meter: template sensors (W, kWh) over input_numbers a test moves."""
    numbers = {
        "plug_power": {"min": 0, "max": 10000, "step": 0.1, "initial": power_w},
        "plug_energy": {"min": 0, "max": 100000, "step": 0.001, "initial": energy_kwh},
    }
    assert await async_setup_component(hass, "homeassistant", {})  # update_entity
    assert await async_setup_component(hass, "input_number", {"input_number": numbers})
    # Template helpers made in the UI (config entries): the plug's YAML templates are set up
    # already, and YAML sets the template integration up once.
    for name, unit, device_class, state_class in (
        ("power", "W", "power", "measurement"),
        ("energy", "kWh", "energy", "total_increasing"),
    ):
        helper = MockConfigEntry(
            domain="template",
            options={
                "template_type": "sensor",
                "name": f"Plug {name}",
                "state": f"{{{{ states('input_number.plug_{name}') }}}}",
                "unit_of_measurement": unit,
                "device_class": device_class,
                "state_class": state_class,
            },
        )
        helper.add_to_hass(hass)
        assert await hass.config_entries.async_setup(helper.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(ENERGY_SENSOR) is not None


async def move_meter(
    hass: HomeAssistant, *, energy_kwh: float | None = None, power_w: float | None = None
) -> None:
    """The plug's meter reads these now (only what is given changes)."""
    for name, value in (("plug_energy", energy_kwh), ("plug_power", power_w)):
        if value is not None:
            await hass.services.async_call(
                "input_number",
                "set_value",
                {"entity_id": f"input_number.{name}", "value": value},
                blocking=True,
            )
            # Each reading in turn, as a plug reports them (listeners run with call_soon).
            await settle(hass)


async def charge(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    *,
    energy_kwh: float,
    seconds: int,
    power_w: float | None = None,
) -> None:
    """The plug draws up to ``energy_kwh`` over ``seconds``, its meter reporting every 20 s.

    HA counts no rise faster than the plug's maximum power (7.4 kW unless set): energy takes
    time to draw.
    """
    state = hass.states.get("input_number.plug_energy")
    assert state is not None
    start, steps = float(state.state), max(seconds // 20, 1)
    for step in range(1, steps + 1):
        await tick(hass, freezer, seconds / steps)
        reading = round(start + (energy_kwh - start) * step / steps, 3)
        await move_meter(hass, energy_kwh=reading, power_w=power_w)


async def meter_reports(hass: HomeAssistant) -> None:
    """The energy sensor reports its unchanged value again (its ``last_reported`` moves)."""
    await hass.services.async_call(
        "homeassistant", "update_entity", {"entity_id": ENERGY_SENSOR}, blocking=True
    )
    await settle(hass)
