"""The agent's final figure for a session stands over a higher running report (#24, 6).

HA keeps the energy an agent reports while a kWh session runs, only ever more; a live ``OFF``
naming the session's end is the agent's own final count and is billed as it is, below the
running figure too (an absurd running figure is a meter fault before it is ever stored:
``test_metered_agent_figures``). HA's MQTT integration and a real Mosquitto; the agent is the
scripted paho client of ``mqtt_helpers`` with a meter.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.qr_charging.const import EVENT_SESSION_ENDED, EVENT_SESSION_STARTED
from devtools.razorpay_standin import RazorpayStandin
from tests.mosquitto import Broker

from .const import PLAN_SUBENTRY
from .helpers import PostWebhook, refund_amounts, settle
from .meter_helpers import ENERGY_PLAN_SUBENTRY, announce, buy_energy, charged_for, metered_state
from .mqtt_helpers import ScriptedAgent, wait_until


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """bay-1 sells 30 minutes and energy by the kWh."""
    return [PLAN_SUBENTRY, ENERGY_PLAN_SUBENTRY]


@pytest.fixture
def agent(broker: Broker) -> Generator[ScriptedAgent]:
    """The scripted agent, its config naming a meter for bay-1."""
    scripted = ScriptedAgent(broker.port)
    announce(scripted)
    yield scripted
    scripted.close()


async def test_the_agents_final_figure_stands_over_a_higher_running_report(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A running report says 1900 Wh (stored); the agent's live vehicle_full names 1000 Wh.

    Before: the figure stored while running was kept ("only ever more"): ₹28.50 billed for
    1000 Wh counted by the agent, and Energy sold 1.9 kWh.
    """
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.driver.metered)
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    paid = standin.pay_link((await buy_energy(hass, 30))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    await wait_until(hass, lambda: len(started) == 1)
    sid = on["session"]
    charged_for(monkeypatch, 3600)  # an hour: 1900 Wh is plausible at 3680 W
    metered_state(agent, sid, on=True, reason="command", until=on["until"], energy_wh=1900.0)
    await wait_until(hass, lambda: runner.driver.energy_for(sid) == 1900.0)
    await settle(hass)
    metered_state(agent, sid, on=False, reason="vehicle_full", energy_wh=1000.0)
    await wait_until(hass, lambda: len(ended) == 1)
    await settle(hass)

    assert [(e.data["reason"], e.data["energy_wh"]) for e in ended] == [("vehicle_full", 1000.0)]
    assert refund_amounts(standin, paid.payment_id) == [1500]
    assert runner.totals.energy_wh == 1000
