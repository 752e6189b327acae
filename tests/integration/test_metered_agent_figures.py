"""An agent's energy figures HA cannot believe (review #24, finding 5): billed as plausible.

A metered agent bay's reported ``energy_wh`` beyond the energy paid for (and 10 Wh), or
beyond the agent's ``max_power_w`` over the session's time, ends the session as
``meter_invalid``, billed at most the plausible figure and never above what was paid; no
figure reaches the bay's Energy sold beyond a day at 22 kW. HA's MQTT integration and a real
Mosquitto; the agent is the scripted one of ``mqtt_helpers`` (its meter: 3680 W at most).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.qr_charging.const import EVENT_SESSION_ENDED, EVENT_SESSION_STARTED
from custom_components.qr_charging.energy_rules import ReportedMeter
from devtools.razorpay_standin import RazorpayStandin
from tests.mosquitto import Broker

from .const import PLAN_SUBENTRY
from .helpers import PostWebhook, pay, refund_amounts, settle
from .meter_helpers import (
    ENERGY_PLAN_SUBENTRY,
    announce,
    buy_energy,
    charged_for,
    metered_state,
)
from .mqtt_helpers import ScriptedAgent, wait_until


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """bay-1 sells 30 minutes and energy by the kWh."""
    return [PLAN_SUBENTRY, ENERGY_PLAN_SUBENTRY]


@pytest.fixture
def agent(broker: Broker) -> Generator[ScriptedAgent]:
    """The scripted agent, its config naming a PZEM-004T (3680 W at most) for bay-1."""
    scripted = ScriptedAgent(broker.port)
    announce(scripted)
    yield scripted
    scripted.close()


async def _metered(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    runner = entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.driver.metered)


async def _energy_session(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, agent: ScriptedAgent
) -> tuple[str, str]:
    """₹30 of energy (2000 Wh) bought and acknowledged: the payment and the session."""
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    paid = standin.pay_link((await buy_energy(hass, 30))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    await wait_until(hass, lambda: len(started) == 1)
    return paid.payment_id, on["session"]


def _sold_kwh(hass: HomeAssistant) -> float:
    sold = hass.states.get("sensor.bay_1_energy_sold")  # kWh, total_increasing
    assert sold is not None
    return float(sold.state)


async def test_a_lying_energy_figure_does_not_go_into_energy_sold(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
) -> None:
    await _metered(hass, mqtt_bay_entry)
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, sid = await _energy_session(hass, standin, post_webhook, agent)
    # A broken (or hostile) agent: finite, non-negative, absurd.
    metered_state(agent, sid, on=False, reason="vehicle_full", energy_wh=1e308)
    await wait_until(hass, lambda: len(ended) == 1)
    await settle(hass)

    # Before: the end never committed (OverflowError in the bay totals, no StorageError
    # retry; the session stayed active with the bay off); below ~9.2e18 Wh Energy sold
    # would have jumped by the absurd figure.
    assert ended[0].data["reason"] == "meter_invalid"
    # Seconds after the start at 3680 W at most (30 s of slack and 10 Wh): some 41 Wh.
    billed = int(ended[0].data["energy_wh"])
    assert 40 <= billed < 45
    assert _sold_kwh(hass) == billed / 1000
    assert refund_amounts(standin, payment_id) == [3000 * (2000 - billed) // 2000]


async def test_energy_beyond_what_was_paid_is_a_meter_fault_billed_at_most_the_paid(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _metered(hass, mqtt_bay_entry)
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, sid = await _energy_session(hass, standin, post_webhook, agent)
    charged_for(monkeypatch, 3600)  # an hour: 3680 Wh would be plausible by power
    # Still on, and counting past the 2000 Wh paid for: an agent that does not stop.
    on = agent.commands[0][0]
    assert isinstance(on, dict)
    metered_state(agent, sid, on=True, reason="command", until=on["until"], energy_wh=2500.0)
    await wait_until(hass, lambda: len(ended) == 1)

    # Before: a powered report's energy was only shown; the bay stayed on.
    assert (ended[0].data["reason"], ended[0].data["energy_wh"]) == ("meter_invalid", 2010.0)
    assert {"action": "off", "session": sid} in [c for c, _, _ in agent.commands]
    assert refund_amounts(standin, payment_id) == []  # all 2000 Wh paid for, no more
    assert _sold_kwh(hass) == 2.01


async def test_a_figure_no_rule_bounds_never_swells_energy_sold_past_a_day_at_22_kw(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
) -> None:
    await _metered(hass, mqtt_bay_entry)
    # An agent whose meter names no maximum power, and a session sold by time: nothing
    # bounds its report of the energy but the totals.
    announce(agent, meter={"kind": "pzem004t"})
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.driver.reported_meter == ReportedMeter(None))
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    await pay(hass, standin, post_webhook)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    await wait_until(hass, lambda: len(started) == 1)
    metered_state(agent, on["session"], on=False, reason="vehicle_full", energy_wh=1e15)
    await wait_until(hass, lambda: len(ended) == 1)
    await settle(hass)

    # Before: Energy sold jumped by 1e12 kWh.
    assert _sold_kwh(hass) == 528.0
