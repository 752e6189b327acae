"""A kWh session HA still had as starting when the agent ran it (review #24 second pass, 2).

HA stops (or misses the acknowledgement) between ``on`` and the agent's ``ON``; the agent runs
the session and says so in its state. An ``OFF`` naming the session's metered end ends it as
that end, billed by the energy it names; a failure for no acknowledgement of a session whose
energy is known refunds the energy it did not use, not all of it. HA's MQTT integration and a
real Mosquitto; the agent is the scripted paho client of ``mqtt_helpers`` with a meter.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.qr_charging import bay_runner, endings
from devtools.razorpay_standin import RazorpayStandin
from tests.mosquitto import Broker

from .const import PLAN_SUBENTRY
from .helpers import PostWebhook, export_sessions, refund_amounts, settle
from .meter_helpers import ENERGY_PLAN_SUBENTRY, announce, buy_energy, metered_state
from .mqtt_helpers import ScriptedAgent, wait_until


@pytest.fixture
def ack_timeout() -> float:
    """Long enough for HA to stop before the acknowledgement timer fires."""
    return 4


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """bay-1 sells 30 minutes and energy by the kWh."""
    return [PLAN_SUBENTRY, ENERGY_PLAN_SUBENTRY]


@pytest.fixture
def agent(broker: Broker) -> Generator[ScriptedAgent]:
    """The scripted agent, its config naming a meter for bay-1; it answers no ``on``."""
    scripted = ScriptedAgent(broker.port)
    announce(scripted)
    scripted.answer = False
    yield scripted
    scripted.close()


async def _starting(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    entry: MockConfigEntry,
) -> tuple[str, dict[str, Any]]:
    """₹30 of energy (2000 Wh) paid, ``on`` sent, no acknowledgement: payment and ``on``."""
    runner = entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.driver.metered)
    paid = standin.pay_link((await buy_energy(hass, 30))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    return paid.payment_id, on


@pytest.mark.parametrize(
    ("reason", "energy_wh", "end", "refunds"),
    [
        ("energy_reached", 2000.0, "energy_reached", []),
        ("vehicle_full", 500.0, "vehicle_full", [2250]),  # 1500 of 2000 Wh unused
        ("deadline", 1000.0, "time_cap", [1500]),
        ("rejected_ended", 2000.0, "agent_ended", []),  # the fixed agent's answer
    ],
)
async def test_energy_the_agent_delivered_to_a_session_ha_saw_starting_is_billed(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    reason: str,
    energy_wh: float,
    end: str,
    refunds: list[int],
) -> None:
    """HA stops before the agent's ON reaches it; the agent runs the session to its end.

    Before: the retained OFF was nothing for a starting session; the acknowledgement timer
    failed it ``no_acknowledgement`` and refunded all ₹30 for the energy delivered.
    """
    payment_id, on = await _starting(hass, standin, post_webhook, agent, mqtt_bay_entry)
    assert await hass.config_entries.async_unload(mqtt_bay_entry.entry_id)
    await hass.async_block_till_done()
    metered_state(agent, on["session"], on=False, reason=reason, energy_wh=energy_wh)
    # HA is back after the session's deadline (the agent's "deadline" is its time cap).
    later = SimpleNamespace(time=lambda: on["until"] + 60)
    monkeypatch.setattr(bay_runner, "time", later)
    monkeypatch.setattr(endings, "time", later)
    assert await hass.config_entries.async_setup(mqtt_bay_entry.entry_id)
    await hass.async_block_till_done()
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.session is None, within=8)
    await settle(hass)

    (row,) = await export_sessions(hass)
    assert (row["end_reason"], float(row["energy_wh"])) == (end, energy_wh)
    assert refund_amounts(standin, payment_id) == refunds


async def test_a_failed_start_whose_energy_is_known_refunds_by_energy(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
) -> None:
    """The agent names the session with 500 Wh drawn, but no acknowledgement reaches HA.

    Before: ``no_acknowledgement`` refunded all ₹30 whatever the energy drawn.
    """
    payment_id, on = await _starting(hass, standin, post_webhook, agent, mqtt_bay_entry)
    sid = on["session"]
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    metered_state(agent, sid, on=False, reason="off_command", energy_wh=500.0)
    await wait_until(hass, lambda: runner.driver.energy_for(sid) == 500.0)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=5))  # ack timeout
    await wait_until(hass, lambda: runner.session is None)
    await settle(hass)

    (row,) = await export_sessions(hass)
    assert (row["end_reason"], float(row["energy_wh"])) == ("no_acknowledgement", 500.0)
    assert refund_amounts(standin, payment_id) == [2250]  # 1500 of 2000 Wh unused
