"""A metered agent session whose end HA missed is billed its energy, never 0 (review #24, 2-3).

HA keeps the energy an agent reports for a running session sold by the kWh (at most once per
10 Wh or 30 s), waits (bounded) for the bay's retained state before ending a session whose time
cap passed while HA was down, and ends a session the agent answers ``rejected_ended`` for as
``agent_ended``, billed by the energy that answer carries or else the energy kept. HA's MQTT
integration and a real Mosquitto; the agent is the scripted paho client of ``mqtt_helpers``
with a meter; refunds are read from the Razorpay stand-in's call log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from types import SimpleNamespace
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.qr_charging import bay_runner, endings
from custom_components.qr_charging.const import EVENT_SESSION_ENDED, EVENT_SESSION_STARTED
from custom_components.qr_charging.drivers.mqtt_agent import MqttAgentDriver
from devtools.razorpay_standin import RazorpayStandin
from tests.mosquitto import Broker

from .const import PLAN_SUBENTRY
from .helpers import PostWebhook, export_sessions, refund_amounts, settle
from .meter_helpers import ENERGY_PLAN_SUBENTRY, announce, buy_energy, charged_for, metered_state
from .mqtt_helpers import NODE, STATE, ScriptedAgent, wait_until


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


async def _running(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    entry: MockConfigEntry,
    energy_wh: float,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str, dict[str, Any]]:
    """₹30 of energy (2000 Wh) running, the agent reporting ``energy_wh`` so far.

    Returns the payment's id and the agent's ``on``.
    """
    runner = entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.driver.metered)
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    paid = standin.pay_link((await buy_energy(hass, 30))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    metered_state(agent, on["session"], on=True, reason="command", until=on["until"])
    await wait_until(hass, lambda: len(started) == 1)
    charged_for(monkeypatch, 3600)  # it has run an hour: up to 3.69 kWh at 3680 W
    metered_state(
        agent, on["session"], on=True, reason="command", until=on["until"], energy_wh=energy_wh
    )
    await wait_until(hass, lambda: runner.driver.energy_for(on["session"]) == energy_wh)
    await settle(hass)
    return paid.payment_id, on


async def _stop(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """HA stops."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def _later(monkeypatch: pytest.MonkeyPatch, at: float) -> None:
    """HA comes back at ``at`` (the runner's and the endings' clock)."""
    later = SimpleNamespace(time=lambda: at)
    monkeypatch.setattr(bay_runner, "time", later)
    monkeypatch.setattr(endings, "time", later)


async def test_energy_reported_while_running_is_stored_on_the_session(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: a running session's energy was written nowhere until its end."""
    await _running(hass, standin, post_webhook, agent, mqtt_bay_entry, 900.0, monkeypatch)
    (row,) = await export_sessions(hass)
    assert (row["state"], float(row["energy_wh"])) == ("active", 900.0)


async def test_time_cap_passed_while_ha_was_down_bills_the_energy_the_agent_counted(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: the end ran before the retained OFF arrived: 0 Wh, the whole ₹30 refunded."""
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _running(
        hass, standin, post_webhook, agent, mqtt_bay_entry, 900.0, monkeypatch
    )
    await _stop(hass, mqtt_bay_entry)
    # While HA is down the agent reaches the time cap with 1800 Wh counted (retained OFF).
    metered_state(agent, on["session"], on=False, reason="deadline", energy_wh=1800.0)
    _later(monkeypatch, on["until"] + 60)
    assert await hass.config_entries.async_setup(mqtt_bay_entry.entry_id)  # HA is back
    await hass.async_block_till_done()
    await wait_until(hass, lambda: len(ended) >= 1)
    await settle(hass)

    # 200 Wh of 2000 unused: ₹30 * 200 / 2000 = 300 paise; not the whole ₹30.
    assert [(e.data["reason"], e.data["energy_wh"]) for e in ended] == [("time_cap", 1800.0)]
    assert refund_amounts(standin, payment_id) == [300]


async def test_time_cap_passed_with_the_energy_unknown_bills_the_energy_stored(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The agent restarted meanwhile: its OFF names no session. Before: billed 0 Wh."""
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _running(
        hass, standin, post_webhook, agent, mqtt_bay_entry, 900.0, monkeypatch
    )
    await _stop(hass, mqtt_bay_entry)
    metered_state(agent, None, on=False, reason="boot", power_w=0.0)
    _later(monkeypatch, on["until"] + 60)
    assert await hass.config_entries.async_setup(mqtt_bay_entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(hass, lambda: len(ended) >= 1)
    await settle(hass)

    # 1100 Wh of 2000 unused: ₹30 * 1100 / 2000 = 1650 paise.
    assert [(e.data["reason"], e.data["energy_wh"]) for e in ended] == [("time_cap", 900.0)]
    assert refund_amounts(standin, payment_id) == [1650]


@pytest.mark.parametrize(
    ("answer_wh", "billed_wh", "refunds"),
    [
        (2000.0, 2000.0, []),  # the agent's answer carries its count (fixed agent)
        (None, 1500.0, [750]),  # it carries none (an older agent): the energy stored
    ],
)
async def test_an_agent_that_ended_the_session_meanwhile_bills_its_energy(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    answer_wh: float | None,
    billed_wh: float,
    refunds: list[int],
) -> None:
    """The agent cut at 2000 Wh while HA was down and restarted; HA resends ``on``.

    Before: ``rejected_ended`` was a power cut with 0 Wh: the whole ₹30 refunded.
    """
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _running(
        hass, standin, post_webhook, agent, mqtt_bay_entry, 1500.0, monkeypatch
    )
    await _stop(hass, mqtt_bay_entry)
    agent.answer = False
    metered_state(agent, None, on=False, reason="boot", power_w=0.0)  # the restarted agent
    sent = len(agent.commands)
    assert await hass.config_entries.async_setup(mqtt_bay_entry.entry_id)  # HA is back
    await hass.async_block_till_done()
    again = await agent.wait_command(sent + 1)  # HA asks the restarted agent to resume it
    assert isinstance(again, dict)
    assert again["action"] == "on"
    metered_state(
        agent, on["session"], on=False, reason="rejected_ended", power_w=0.0, energy_wh=answer_wh
    )
    await wait_until(hass, lambda: len(ended) == 1)
    await settle(hass)

    assert [(e.data["reason"], e.data["energy_wh"]) for e in ended] == [("agent_ended", billed_wh)]
    assert refund_amounts(standin, payment_id) == refunds


async def _answer_rejected_ended(agent: ScriptedAgent, sent: int, sid: str, wh: float) -> None:
    """The agent answers HA's next ``on`` for ``sid``: it ended it, having counted ``wh``."""
    again = await agent.wait_command(sent + 1)
    assert isinstance(again, dict)
    assert (again["action"], again["session"]) == ("on", sid)
    metered_state(agent, sid, on=False, reason="rejected_ended", power_w=0.0, energy_wh=wh)


async def test_a_manual_session_after_the_agents_end_does_not_hide_that_end(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HA down: the agent cuts at 2000 Wh, then a manual session runs and ends.

    The retained OFF names only the manual session; HA asks the agent about its own session
    and bills the agent's answer. Before: time_cap at the 900 Wh stored, ₹16.50 refunded.
    """
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _running(
        hass, standin, post_webhook, agent, mqtt_bay_entry, 900.0, monkeypatch
    )
    await _stop(hass, mqtt_bay_entry)
    agent.answer = False
    sid = on["session"]
    metered_state(agent, sid, on=False, reason="energy_reached", energy_wh=2000.0)
    metered_state(agent, "manual-0123456789ab", on=False, reason="deadline", energy_wh=40.0)
    _later(monkeypatch, on["until"] + 60)
    sent = len(agent.commands)
    setup = hass.async_create_task(hass.config_entries.async_setup(mqtt_bay_entry.entry_id))
    await _answer_rejected_ended(agent, sent, sid, 2000.0)
    assert await setup
    await wait_until(hass, lambda: len(ended) >= 1)
    await settle(hass)

    assert [(e.data["reason"], e.data["energy_wh"]) for e in ended] == [("agent_ended", 2000.0)]
    assert refund_amounts(standin, payment_id) == []


async def test_an_off_naming_another_session_while_running_asks_the_agent(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HA up: the agent's OFF names a manual session while the kWh session runs.

    Before: nothing: the session showed charging until its cap and was billed what was stored.
    """
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _running(
        hass, standin, post_webhook, agent, mqtt_bay_entry, 900.0, monkeypatch
    )
    agent.answer = False
    sent = len(agent.commands)
    metered_state(agent, "manual-0123456789ab", on=False, reason="deadline", energy_wh=40.0)
    await _answer_rejected_ended(agent, sent, on["session"], 2000.0)
    await wait_until(hass, lambda: len(ended) == 1)
    await settle(hass)

    assert [(e.data["reason"], e.data["energy_wh"]) for e in ended] == [("agent_ended", 2000.0)]
    assert refund_amounts(standin, payment_id) == []


async def test_session_energy_shows_the_stored_figure_after_a_restart(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The retained ON carries no energy yet. Before: the sensor showed 0 until a report."""
    _, on = await _running(hass, standin, post_webhook, agent, mqtt_bay_entry, 900.0, monkeypatch)
    await _stop(hass, mqtt_bay_entry)
    metered_state(agent, on["session"], on=True, reason="command", until=on["until"])
    assert await hass.config_entries.async_setup(mqtt_bay_entry.entry_id)
    await hass.async_block_till_done()
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.last_report is not None)
    await settle(hass)

    state = hass.states.get("sensor.bay_1_session_energy")
    assert state is not None
    assert state.state == "0.900"


async def test_no_wait_for_a_retained_state_that_cannot_come(hass: HomeAssistant) -> None:
    """HA's MQTT is not set up: nothing is subscribed. Before: the whole bound was waited."""
    driver = MqttAgentDriver(
        hass, "bay-1", lambda report: None, lambda: None, prefix="p", node="n", agent_bay="b"
    )
    await driver.async_setup()
    # An hour's bound: answered at once, or this fails long before the hour is up.
    await asyncio.wait_for(driver.async_wait_state(3600.0), timeout=60)


async def test_a_malformed_state_does_not_end_the_wait_for_the_bays_state(
    hass: HomeAssistant, agent: ScriptedAgent, mqtt_bay_entry: MockConfigEntry
) -> None:
    """Only a well-formed state is the one waited for. Before: any message ended the wait."""
    agent.publish(STATE, '{"state": "ON", "until": "soon"}')
    driver = MqttAgentDriver(
        hass,
        "bay-1",
        lambda report: None,
        lambda: None,
        prefix="qr_charging",
        node=NODE,
        agent_bay="bay-1",
    )
    await driver.async_setup()
    began = time.monotonic()
    await driver.async_wait_state(1.0)
    assert time.monotonic() - began >= 0.9  # the whole bound: nothing well-formed came
    await driver.async_unload()
