"""Bays on an MQTT agent: HA's own MQTT integration, a real Mosquitto, a scripted agent.

The scripted agent is a plain paho client in the test: it answers ``on`` commands with the
state the contract describes, or stays silent, so each lifecycle path can be driven.
"""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from paho.mqtt import client as paho
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.qr_charging import bay_runner, endings
from custom_components.qr_charging.const import (
    DOMAIN,
    EVENT_REFUND,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_FAILED,
    EVENT_SESSION_STARTED,
)
from devtools.razorpay_standin import RazorpayStandin
from tests.mosquitto import Broker

from .const import PLAN_PRICE, PLAN_SUBENTRY
from .helpers import PostWebhook, entry_data, export_sessions, pay, refund_amounts
from .mqtt_helpers import (
    NODE,
    PLAN_S,
    STATE,
    ScriptedAgent,
    running_session,
    stopped_with_a_paid_top_up,
    wait_until,
)


async def _session_state(hass: HomeAssistant) -> str:
    rows = await export_sessions(hass)
    return rows[-1]["state"] if rows else ""


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_acknowledged_session_runs_and_ends(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    before = time.time()
    paid = await pay(hass, standin, post_webhook)

    command = await agent.wait_command(1)
    assert isinstance(command, dict)
    assert set(command) == {"action", "session", "until", "duration", "sent"}
    assert command["action"] == "on"
    assert command["duration"] == PLAN_S
    assert before <= command["sent"] <= time.time()
    assert command["until"] == pytest.approx(command["sent"] + PLAN_S)
    # Commands are never retained and go with QoS 1.
    assert agent.commands[0][1:] == (False, 1)

    await wait_until(hass, lambda: len(started) == 1)
    assert await _session_state(hass) == "active"

    # Half an hour cannot pass here: only the bays' clock jumps to the deadline, where the
    # agent switches off by itself.
    bays_clock = SimpleNamespace(time=lambda: command["until"] + 0.5)
    monkeypatch.setattr(bay_runner, "time", bays_clock)
    monkeypatch.setattr(endings, "time", bays_clock)
    agent.report(None, None, "deadline")
    await wait_until(hass, lambda: len(ended) == 1)
    assert ended[0].data["reason"] == "deadline"
    assert await _session_state(hass) == "ended"
    assert standin.calls_to("POST", f"/v1/payments/{paid.payment_id}/refund") == []


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_agent_off_before_the_deadline_refunds_the_rest(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, agent: ScriptedAgent
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    paid = await pay(hass, standin, post_webhook)
    await agent.wait_command(1)
    await wait_until(hass, lambda: len(started) == 1)

    # The agent ends the session at a deadline of its own, long before the paid one (it never
    # took a top-up, or its clock is off): what was not served goes back.
    agent.report(None, None, "deadline")
    await wait_until(hass, lambda: len(ended) == 1)

    assert ended[0].data["reason"] == "power_cut"
    (refund,) = refund_amounts(standin, paid.payment_id)
    assert PLAN_PRICE - 20 <= refund < PLAN_PRICE


async def test_no_acknowledgement_fails_refunds_and_cancels(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    refunds = async_capture_events(hass, EVENT_REFUND)
    agent.answer = False
    paid = await pay(hass, standin, post_webhook)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)

    # The acknowledgement time is 1 s in this entry's options.
    await wait_until(hass, lambda: len(failed) == 1)
    assert failed[0].data["reason"] == "no_acknowledgement"
    assert await agent.wait_command(2) == {"action": "off", "session": on["session"]}
    await wait_until(hass, lambda: len(refunds) == 1)
    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
    assert await _session_state(hass) == "refunded"
    assert issue_registry.async_get_issue(DOMAIN, "start_failed_bay-1") is not None

    # The agent acts on the "on" late: HA cuts the unpaid power again.
    agent.report(on["session"], on["until"], "command")
    assert await agent.wait_command(3) == {"action": "off", "session": on["session"]}
    assert await _session_state(hass) == "refunded"


async def test_agent_offline_at_payment_refunds(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
) -> None:
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    agent.publish(f"qr_charging/{NODE}/availability", "offline")
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: not runner.driver.online)

    paid = await pay(hass, standin, post_webhook)

    await wait_until(hass, lambda: len(failed) == 1)
    assert failed[0].data["reason"] == "bay_offline"
    await wait_until(hass, lambda: bool(refund_amounts(standin, paid.payment_id)))
    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
    # No "on" was ever sent; only the "off" that marks the session cancelled on the agent.
    command = await agent.wait_command(1)
    assert isinstance(command, dict)
    assert command["action"] == "off"
    assert all(isinstance(c, dict) and c.get("action") != "on" for c, _, _ in agent.commands)


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_top_up_extends_on_the_agent(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, agent: ScriptedAgent
) -> None:
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    await pay(hass, standin, post_webhook)
    first = await agent.wait_command(1)
    await wait_until(hass, lambda: len(started) == 1)
    await pay(hass, standin, post_webhook)
    second = await agent.wait_command(2)

    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert second["session"] == first["session"]
    assert second["until"] == pytest.approx(first["until"] + PLAN_S)
    # As for a first "on", the duration is what is left from now: the agent checks it
    # against its longest session.
    assert second["duration"] == pytest.approx(second["until"] - second["sent"], abs=1)
    (row,) = await export_sessions(hass)
    assert (row["seconds"], row["paid_paise"]) == (str(2 * PLAN_S), str(2 * PLAN_PRICE))


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_stop_with_prorata_refund(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, agent: ScriptedAgent
) -> None:
    paid, on = await running_session(hass, standin, post_webhook, agent)

    response = await hass.services.async_call(
        DOMAIN,
        "stop_session",
        {"bay": "bay-1", "refund": "prorata"},
        blocking=True,
        return_response=True,
    )

    assert await agent.wait_command(2) == {"action": "off", "session": on["session"]}
    assert response is not None
    # Stopped within seconds of the start: almost all of it comes back, never more.
    assert PLAN_PRICE - 20 <= int(response["refunded"]) < PLAN_PRICE
    assert refund_amounts(standin, paid.payment_id) == [response["refunded"]]


async def test_restart_mid_session_resyncs_from_retained_state(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
) -> None:
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    await pay(hass, standin, post_webhook)
    await agent.wait_command(1)
    await wait_until(hass, lambda: len(started) == 1)

    assert await hass.config_entries.async_unload(mqtt_bay_entry.entry_id)
    assert await hass.config_entries.async_setup(mqtt_bay_entry.entry_id)
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.last_report is not None and runner.last_report.powered)

    assert await _session_state(hass) == "active"
    assert runner.status == "charging"
    # Nothing was sent to the agent on restart: the session simply goes on.
    await asyncio.sleep(0.3)
    assert len(agent.commands) == 1


async def test_deadline_passed_during_restart(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    _, on = await running_session(hass, standin, post_webhook, agent)

    assert await hass.config_entries.async_unload(mqtt_bay_entry.entry_id)
    # HA is down past the deadline; the agent switched off by itself meanwhile.
    agent.report(None, None, "deadline")
    # Forty minutes cannot pass here, and freezing time would stall the real broker link:
    # only the bays' clock jumps (our code reads it as bay_runner.time.time() and, for an
    # ending, endings.time.time()).
    later = time.time() + PLAN_S + 600
    monkeypatch.setattr(bay_runner, "time", SimpleNamespace(time=lambda: later))
    monkeypatch.setattr(endings, "time", SimpleNamespace(time=lambda: later))
    assert await hass.config_entries.async_setup(mqtt_bay_entry.entry_id)
    await wait_until(hass, lambda: len(ended) == 1)

    (row,) = await export_sessions(hass)
    assert row["state"] == "ended"
    assert float(row["ended_at"]) == pytest.approx(on["until"])


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_agent_that_lost_the_session_gets_it_again(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, agent: ScriptedAgent
) -> None:
    _, on = await running_session(hass, standin, post_webhook, agent)

    # The Pi rebooted with an empty state file: it reports the bay off after boot.
    agent.report(None, None, "boot")

    again = await agent.wait_command(2)
    assert isinstance(again, dict)
    assert (again["action"], again["session"]) == ("on", on["session"])
    assert again["until"] == pytest.approx(on["until"])
    assert again["duration"] == pytest.approx(on["until"] - again["sent"], abs=1)
    assert await _session_state(hass) == "active"


async def test_agent_announcement_starts_discovery(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    mqtt_entry: MockConfigEntry,
    broker: Broker,
) -> None:
    account = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[PLAN_SUBENTRY],
    )
    account.add_to_hass(hass)
    assert await hass.config_entries.async_setup(account.entry_id)
    await hass.async_block_till_done()

    # Through the manifest's "mqtt" key, HA's MQTT integration hands the retained config over.
    scripted = ScriptedAgent(broker.port)
    try:
        await wait_until(
            hass, lambda: bool(hass.config_entries.flow.async_progress_by_handler(DOMAIN))
        )
        (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        assert flow["context"]["source"] == "mqtt"
        assert flow["step_id"] == "mqtt_confirm"
        result = await hass.config_entries.flow.async_configure(flow["flow_id"], {})
        assert result["reason"] == "agent_added"
        await hass.async_block_till_done()
        bays = [s.data for s in account.subentries.values() if s.subentry_type == "bay"]
        assert [(b["bay_id"], b["node"]) for b in bays] == [("bay-1", NODE)]
    finally:
        scripted.close()


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_top_up_the_agent_refuses_is_refunded(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, agent: ScriptedAgent
) -> None:
    _, first = await running_session(hass, standin, post_webhook, agent)
    agent.refuse_top_up = True

    second = await pay(hass, standin, post_webhook)
    await agent.wait_command(2)
    await wait_until(hass, lambda: bool(refund_amounts(standin, second.payment_id)))

    # The whole second payment comes back; the session keeps the first deadline.
    assert refund_amounts(standin, second.payment_id) == [PLAN_PRICE]
    (row,) = await export_sessions(hass)
    assert row["state"] == "active"
    assert float(row["until"]) == pytest.approx(first["until"])


async def test_a_restart_resumes_the_starting_session_before_a_paid_one(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
) -> None:
    """Seed 42 of the schedules: HA restarts while a session starts and a top-up is paid.

    Only the first of a bay's running sessions was resumed, and the database hands them back
    in the order of their states' names: ``paid`` before ``starting``. The session the agent
    was powering was failed as ``interrupted``: switched off and refunded in full.
    """
    first, second, on = await stopped_with_a_paid_top_up(
        hass, standin, post_webhook, agent, mqtt_bay_entry
    )
    # The agent powered the first session meanwhile; HA reads it from the retained state.
    agent.answer = True
    agent.report(on["session"], on["until"], "command")

    assert await hass.config_entries.async_setup(mqtt_bay_entry.entry_id)
    await wait_until(hass, lambda: _status(hass) == "charging")
    # The second payment tops the session up, or finds it still starting and is refunded.
    await wait_until(
        hass, lambda: bool(_top_ups(agent, on["session"]) or _refunded(standin, second))
    )

    rows = {row["session_id"]: row for row in await export_sessions(hass)}
    assert rows[on["session"]]["state"] == "active"
    assert refund_amounts(standin, first.payment_id) == []
    assert {"action": "off", "session": on["session"]} not in [c for c, _, _ in agent.commands]
    if _top_ups(agent, on["session"]):
        assert rows[on["session"]]["payment_ids"] == f"{first.payment_id} {second.payment_id}"
    else:
        assert refund_amounts(standin, second.payment_id) == [PLAN_PRICE]


async def test_the_answer_to_a_refused_payments_off_leaves_the_session_on(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
) -> None:
    """The test above's flake under load, in its order, held by the scripted agent.

    After the restart the paid top-up is decided before the bay's retained state is read: the
    session is still starting, so the payment is refused, told ``off`` and refunded; then the
    retained ``ON`` acknowledges the session, and only then does the agent's answer to that
    ``off`` arrive. The agent ends only the session an ``off`` names, so its answer is its
    unchanged state; the scripted agent answered ``OFF``, which HA read as a power cut of the
    running session and switched it off.
    """
    first, second, on = await stopped_with_a_paid_top_up(
        hass, standin, post_webhook, agent, mqtt_bay_entry
    )
    agent.hold_offs = True

    assert await hass.config_entries.async_setup(mqtt_bay_entry.entry_id)
    # No state powers the first session yet: it is starting, so the second payment is refused.
    await wait_until(hass, lambda: bool(agent.held) and _refunded(standin, second))
    assert on["session"] not in agent.held
    agent.answer = True
    agent.report(on["session"], on["until"], "command")
    await wait_until(hass, lambda: _status(hass) == "charging")
    agent.release_offs()
    # The broker keeps the agent's order: once its "offline" is read, so is the answer.
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    agent.publish(f"qr_charging/{NODE}/availability", "offline")
    await wait_until(hass, lambda: not runner.driver.online)
    agent.publish(f"qr_charging/{NODE}/availability", "online")
    await wait_until(hass, lambda: runner.driver.online)

    rows = {row["session_id"]: row for row in await export_sessions(hass)}
    assert rows[on["session"]]["state"] == "active"
    assert refund_amounts(standin, first.payment_id) == []
    assert refund_amounts(standin, second.payment_id) == [PLAN_PRICE]
    assert {"action": "off", "session": on["session"]} not in [c for c, _, _ in agent.commands]


def _status(hass: HomeAssistant) -> str | None:
    state = hass.states.get("sensor.bay_1_status")
    return state.state if state is not None else None


def _refunded(standin: RazorpayStandin, paid: Any) -> bool:
    return bool(refund_amounts(standin, paid.payment_id))


def _top_ups(scripted: ScriptedAgent, session_id: str) -> list[dict[str, Any]]:
    """The ``on`` commands after the first for this session (a top-up extends it)."""
    return scripted.ons(session_id)[1:]


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_a_start_refused_by_the_bay_is_told_off_before_the_refund(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    intruder: paho.Client,
) -> None:
    """Found by fuzzing the state reports (test_fuzz_state.py).

    A refusal for a starting session (``rejected_*``, which anyone who can publish on the state
    topic can say while the bay in fact powers it) failed the session, sent the refund and only
    then the ``off``: with Razorpay slow to answer, the bay stayed on for a refunded session.
    """
    agent.answer = False
    paid = await pay(hass, standin, post_webhook)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    path = f"/v1/payments/{paid.payment_id}/refund"
    standin.delay_next(path, 3.0)

    refusal = {"state": "OFF", "session": on["session"], "until": None, "remaining": 0}
    intruder.publish(STATE, json.dumps({**refusal, "reason": "rejected_busy"}), qos=1)
    # Not _until: HA's block_till_done would wait for the refund's answer too.
    for _ in range(200):
        if standin.calls_to("POST", path):
            break
        await asyncio.sleep(0.01)
    assert standin.calls_to("POST", path)

    # Razorpay has the refund and has not answered yet: the bay is already told off.
    off = await agent.wait_command(2, within=1)
    assert off == {"action": "off", "session": on["session"]}
    await hass.async_block_till_done()
    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
