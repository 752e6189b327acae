"""Metered agent bays (issue #24): energy sold over MQTT, each end's refund to the paisa.

HA's own MQTT integration and a real Mosquitto; the agent is the scripted paho client of
``mqtt_helpers`` whose config names a meter for bay-1, publishing the contract's metered state
messages (``meter_helpers``). Razorpay is the stand-in: its call log shows each refund.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging import bay_runner, endings
from custom_components.qr_charging.const import (
    DOMAIN,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_FAILED,
    EVENT_SESSION_STARTED,
)
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY
from .helpers import PostWebhook, export_sessions, pay, refund_amounts, settle
from .meter_helpers import (
    CAP_MINUTES,
    ENERGY_PLAN_SUBENTRY,
    FULL_RULE,
    announce,
    buy_energy,
    charged_for,
    metered_state,
)
from .mqtt_helpers import STATE, ScriptedAgent, wait_until

# ₹30 at ₹15 a unit buys 2 kWh.
AMOUNT_RUPEES = 30
AMOUNT = 3000
BOUGHT_WH = 2000.0


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """bay-1 sells 30 minutes (its first plan) and energy by the kWh."""
    return [PLAN_SUBENTRY, ENERGY_PLAN_SUBENTRY]


async def _energy_session(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, agent: ScriptedAgent
) -> tuple[str, dict[str, Any]]:
    """Buy ₹30 of energy and wait for the agent's acknowledgement: the payment and its ``on``."""
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    sent = len(agent.commands)
    paid = standin.pay_link((await buy_energy(hass, AMOUNT_RUPEES))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    on = await agent.wait_command(sent + 1)
    assert isinstance(on, dict)
    await wait_until(hass, lambda: len(started) == 1)
    return paid.payment_id, on


def _offs(agent: ScriptedAgent, session_id: str) -> int:
    return sum(1 for c, _, _ in agent.commands if c == {"action": "off", "session": session_id})


@pytest.mark.usefixtures("metered")
async def test_energy_sale_sends_the_energy_and_the_full_rule_and_a_top_up_adds(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, agent: ScriptedAgent
) -> None:
    _, on = await _energy_session(hass, standin, post_webhook, agent)
    assert on["energy_wh"] == BOUGHT_WH
    assert on["full"] == FULL_RULE
    # The time cap is the plan's.
    assert on["duration"] == CAP_MINUTES * 60

    paid = standin.pay_link((await buy_energy(hass, 15))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    second = await agent.wait_command(2)
    assert isinstance(second, dict)
    assert second["session"] == on["session"]
    assert second["energy_wh"] == BOUGHT_WH + 1000.0


async def test_a_session_sold_by_time_at_an_old_agents_bay_gets_no_full(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    metered: MockConfigEntry,
) -> None:
    """An agent whose config names no meter for the bay may not know ``full``."""
    announce(agent, meter=None)
    runner = metered.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: not runner.driver.metered)
    await pay(hass, standin, post_webhook)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    assert set(on) == {"action", "session", "until", "duration", "sent"}


@pytest.mark.usefixtures("metered")
async def test_vehicle_full_ends_and_refunds_the_unused_energy(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _energy_session(hass, standin, post_webhook, agent)
    charged_for(monkeypatch, 3600)  # an hour at most 3.68 kW: up to 3.69 kWh plausible
    sid = on["session"]
    metered_state(agent, sid, on=True, reason="command", until=on["until"], power_w=812.4)
    metered_state(agent, sid, on=False, reason="vehicle_full", power_w=3.1, energy_wh=523.9)
    await wait_until(hass, lambda: len(ended) == 1)

    assert ended[0].data["reason"] == "vehicle_full"
    # 523 whole Wh billed of 2000: ₹30 * 1477 / 2000 = 2215.5 paise, rounded down.
    assert refund_amounts(standin, payment_id) == [2215]
    assert _offs(agent, sid) == 1


@pytest.mark.usefixtures("metered")
async def test_energy_reached_refunds_nothing(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _energy_session(hass, standin, post_webhook, agent)
    charged_for(monkeypatch, 3600)  # an hour at most 3.68 kW: up to 3.69 kWh plausible
    metered_state(agent, on["session"], on=False, reason="energy_reached", energy_wh=2004.0)
    await wait_until(hass, lambda: len(ended) == 1)

    assert ended[0].data["reason"] == "energy_reached"
    assert refund_amounts(standin, payment_id) == []


@pytest.mark.usefixtures("metered")
async def test_a_silent_meter_bills_only_measured_energy_and_raises_a_repair_naming_it(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _energy_session(hass, standin, post_webhook, agent)
    charged_for(monkeypatch, 3600)  # an hour at most 3.68 kW: up to 3.69 kWh plausible
    sid = on["session"]
    metered_state(agent, sid, on=False, reason="meter_silent", energy_wh=100.0)
    await wait_until(hass, lambda: len(ended) == 1)

    assert ended[0].data["reason"] == "meter_silent"
    assert refund_amounts(standin, payment_id) == [2850]  # 1900 Wh of 2000 unused
    assert _offs(agent, sid) == 1  # off first: the meter cannot be trusted
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "meter_fault_bay-1")
    assert issue is not None
    assert issue.translation_placeholders == {
        "bay": "Bay 1",
        "meter": "pzem004t (kiosk-1/bay-1)",
        "reason": "meter_silent",
    }


@pytest.mark.usefixtures("metered")
async def test_the_time_cap_ends_as_time_cap_and_refunds_the_unused_energy(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _energy_session(hass, standin, post_webhook, agent)
    # Two hours cannot pass here: only the bays' clock jumps to the cap, where the agent
    # switches off by itself ("deadline", naming the metered session and its energy).
    bays_clock = SimpleNamespace(time=lambda: on["until"] + 0.5)
    monkeypatch.setattr(bay_runner, "time", bays_clock)
    monkeypatch.setattr(endings, "time", bays_clock)
    metered_state(agent, on["session"], on=False, reason="deadline", energy_wh=1500.0)
    await wait_until(hass, lambda: len(ended) == 1)

    assert ended[0].data["reason"] == "time_cap"
    assert refund_amounts(standin, payment_id) == [750]  # 500 Wh of 2000 unused


@pytest.mark.usefixtures("metered")
async def test_the_agent_refusing_energy_fails_the_session_and_refunds_it_all(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, agent: ScriptedAgent
) -> None:
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    agent.answer = False
    paid = standin.pay_link((await buy_energy(hass, AMOUNT_RUPEES))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    metered_state(agent, None, on=False, reason="rejected_no_meter")
    await wait_until(hass, lambda: len(failed) == 1)

    assert failed[0].data["reason"] == "rejected_no_meter"
    assert refund_amounts(standin, paid.payment_id) == [AMOUNT]


async def test_energy_is_not_sold_at_a_bay_without_a_meter_and_refunded_if_paid(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    metered: MockConfigEntry,
) -> None:
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    earlier = await buy_energy(hass, AMOUNT_RUPEES)  # made while the bay had its meter
    runner = metered.runtime_data.bays.runners["bay-1"]
    announce(agent, meter=None)  # the agent now names none (an old agent, say)
    await wait_until(hass, lambda: not runner.driver.metered)

    with pytest.raises(ServiceValidationError) as err:
        await buy_energy(hass, AMOUNT_RUPEES)
    assert err.value.translation_key == "bay_not_metered"

    paid = standin.pay_link(earlier["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await wait_until(hass, lambda: len(failed) == 1)
    assert failed[0].data["reason"] == "rejected_no_meter"
    assert refund_amounts(standin, paid.payment_id) == [AMOUNT]
    assert agent.ons() == []  # never sold energy it cannot count
    assert ir.async_get(hass).async_get_issue(DOMAIN, "start_failed_bay-1") is None


@pytest.mark.usefixtures("metered")
async def test_bad_meter_figures_are_logged_and_change_nothing(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    payment_id, on = await _energy_session(hass, standin, post_webhook, agent)
    charged_for(monkeypatch, 3600)  # an hour at most 3.68 kW: up to 3.69 kWh plausible
    sid = on["session"]
    base = {"state": "OFF", "session": sid, "until": None, "reason": "vehicle_full"}
    for bad in ({"energy_wh": -1.0}, {"energy_wh": "523"}, {"power_w": True}, {"power_w": -3}):
        caplog.clear()
        agent.publish(STATE, json.dumps(base | bad))
        await wait_until(hass, lambda: "Ignoring malformed bay state" in caplog.text)
    await settle(hass)
    assert ended == []
    assert refund_amounts(standin, payment_id) == []

    metered_state(agent, sid, on=False, reason="vehicle_full", energy_wh=1000.0)
    await wait_until(hass, lambda: len(ended) == 1)
    assert refund_amounts(standin, payment_id) == [1500]


@pytest.mark.usefixtures("metered")
async def test_power_energy_events_and_export_tell_the_metered_session(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    _, on = await _energy_session(hass, standin, post_webhook, agent)
    charged_for(monkeypatch, 3600)  # an hour at most 3.68 kW: up to 3.69 kWh plausible
    sid = on["session"]
    assert (started[0].data["energy_wh"], started[0].data["price_per_kwh_paise"]) == (2000, 1500)
    metered_state(
        agent, sid, on=True, reason="command", until=on["until"], power_w=812.4, energy_wh=523.4
    )
    await wait_until(hass, lambda: _state(hass, "sensor.bay_1_power") == "812.4")
    assert _state(hass, "sensor.bay_1_session_energy") == "0.523"
    assert _state(hass, "sensor.bay_1_energy_sold") == "0"

    metered_state(agent, sid, on=False, reason="vehicle_full", power_w=2.0, energy_wh=523.9)
    await wait_until(hass, lambda: len(ended) == 1)
    assert (ended[0].data["energy_wh"], ended[0].data["price_per_kwh_paise"]) == (523.9, 1500)
    sold = hass.states.get("sensor.bay_1_energy_sold")
    assert sold is not None
    # Whole Wh measured, in kWh: what the Energy dashboard takes.
    assert sold.state == "0.523"
    assert sold.attributes["state_class"] == "total_increasing"
    assert sold.attributes["device_class"] == "energy"
    assert sold.attributes["unit_of_measurement"] == "kWh"
    (row,) = await export_sessions(hass)
    assert {k: row[k] for k in ("end_reason", "energy_paid_wh", "energy_wh")} == {
        "end_reason": "vehicle_full",
        "energy_paid_wh": "2000",
        "energy_wh": "523.9",
    }
    assert (row["price_per_kwh_paise"], row["refunded_paise"]) == ("1500", "2215")


async def test_diagnostics_show_the_meter_and_an_old_agent_has_no_meter_sensors(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    agent: ScriptedAgent,
    metered: MockConfigEntry,
) -> None:
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, metered)
    assert diagnostics["bays"]["bay-1"]["meter"] == {
        "metered": True,
        "meter": "pzem004t (kiosk-1/bay-1)",
        "power_sensor": None,
        "energy_sensor": None,
        "full": FULL_RULE,
        "prorata": True,
    }
    runner = metered.runtime_data.bays.runners["bay-1"]
    announce(agent, meter=None)
    await wait_until(hass, lambda: not runner.driver.metered)
    assert _state(hass, "sensor.bay_1_power") == "unavailable"
    assert _state(hass, "sensor.bay_1_energy_sold") == "unavailable"


def _state(hass: HomeAssistant, entity_id: str) -> str | None:
    state = hass.states.get(entity_id)
    return state.state if state is not None else None
