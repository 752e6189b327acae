"""Defects the fault schedules and the fuzzing found, each pinned down on its own.

Each test failed on the code before its fix.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from paho.mqtt import client as paho
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.bay_runner import BayRunner
from custom_components.qr_charging.bays import Bays
from custom_components.qr_charging.drivers.mqtt_agent import parse_state
from custom_components.qr_charging.hub import QrChargingHub
from custom_components.qr_charging.ledger import Changes
from custom_components.qr_charging.records import SessionRecord, SessionState
from custom_components.qr_charging.timers import STORAGE_RETRY_S
from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.fixtures import Webhook, sign

from .const import PLAN_PRICE
from .const import WEBHOOK_SECRET as SECRET
from .helpers import (
    PostWebhook,
    create_link,
    export_sessions,
    pay,
    plug_state,
    refund_amounts,
    settle,
    tick,
)
from .mqtt_helpers import STATE, ScriptedAgent, wait_until
from .storage_helpers import failing_writes


async def _taken_when_set_up_again(
    hass: HomeAssistant, entry: MockConfigEntry, post_webhook: PostWebhook, delivery: Webhook
) -> None:
    """The account set up again, Razorpay's next delivery of ``delivery`` is taken."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settle(hass)
    response = await post_webhook(delivery)
    assert (await response.json())["outcome"] in ("new_session", "duplicate")


@pytest.mark.usefixtures("loaded_entry")
async def test_a_delivery_during_an_unload_is_answered_503_and_redelivered(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
) -> None:
    """Seeds 29 and 45 of the schedules: the ledger closes before the webhook goes.

    A delivery in between used to raise "store not open", which HA's webhook component answers
    200: Razorpay took it as delivered and never sent it again.
    """
    paid = standin.pay_link((await create_link(hass))["id"])
    delivery = paid.payment_link_paid()
    answers: list[Any] = []
    real_unload = QrChargingHub.async_unload

    async def unload_then_deliver(hub: QrChargingHub) -> None:
        await real_unload(hub)
        # The ledger is closed; the webhook goes only after async_unload_entry returns.
        answers.append(await post_webhook(delivery))

    with patch.object(QrChargingHub, "async_unload", unload_then_deliver):
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    (answer,) = answers
    assert answer.status == 503
    assert (await answer.json())["outcome"] == "not_stored"

    # Razorpay delivers it again once HA is back, and it is taken as the first time.
    await _taken_when_set_up_again(hass, loaded_entry, post_webhook, delivery)
    (row,) = await export_sessions(hass)
    assert row["payment_ids"] == paid.payment_id


def _decides(changes: Changes) -> bool:
    """A change where a bay decides about a paid session (start it, or fail it)."""
    return any(
        isinstance(r, SessionRecord)
        and r.state in (SessionState.STARTING, SessionState.FAILED, SessionState.REFUNDED)
        for _, r in changes.upserts
    )


@pytest.mark.usefixtures("loaded_entry")
async def test_each_decision_that_could_not_be_stored_is_tried_again(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Seed 5 of the schedules: two payments whose decisions could not be stored at once.

    The bay kept one retry timer: the second failure replaced the first payment's retry, and
    that payment stayed paid for good, with no power and no refund.

    A start is now decided in the webhook's own change when the bay can take it (a failure
    there is a 503, redelivered); here both payments take the bay's own decision, as they do
    while its availability is not known yet after a restart.
    """
    with failing_writes(_decides), patch.object(BayRunner, "power_now", return_value=None):
        first = await pay(hass, standin, post_webhook)
        second = await pay(hass, standin, post_webhook)
        assert plug_state(hass) == STATE_OFF
    await tick(hass, freezer, STORAGE_RETRY_S + 1)
    await tick(hass, freezer, STORAGE_RETRY_S + 1)

    rows = {row["payment_ids"]: row for row in await export_sessions(hass)}
    # Each payment was decided: it powers the bay, or it is refunded in full. None is left paid.
    for paid in (first, second):
        row = rows[paid.payment_id]
        if row["state"] == "active":
            assert refund_amounts(standin, paid.payment_id) == []
        else:
            assert (row["state"], row["end_reason"]) == ("refunded", "bay_busy")
            assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
    active = [row for row in rows.values() if row["state"] == "active"]
    assert plug_state(hass) == (STATE_ON if active else STATE_OFF)
    assert len(active) <= 1


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
    agent.answer = False
    first = await pay(hass, standin, post_webhook)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    # The next customer's payment is stored, and HA stops before handing it to the bay.
    with patch.object(Bays, "hand_over"):
        second = await pay(hass, standin, post_webhook)
    assert await hass.config_entries.async_unload(mqtt_bay_entry.entry_id)
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


@pytest.mark.usefixtures("loaded_entry")
async def test_a_signed_payment_of_an_absurd_amount_is_recorded_as_unusable(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    """Found by fuzzing the webhook (test_fuzz_webhook.py).

    An integer SQLite cannot hold (an amount of 10**30 paise) raised OverflowError out of the
    ledger's write; HA's webhook component answered that with an empty 200, so the delivery
    was neither stored nor delivered again.
    """
    paid = standin.pay_link((await create_link(hass))["id"])
    payload = paid.payment_link_paid().payload
    payload["payload"]["payment"]["entity"]["amount"] = 10**30
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Razorpay-Signature": sign(body, SECRET)}

    response = await post_webhook(body=body, headers=headers)

    assert response.status == 200
    assert (await response.json())["outcome"] == "unusable"
    assert await export_sessions(hass) == []
    # The genuine delivery of the payment still starts its session.
    response = await post_webhook(paid.payment_captured())
    assert (await response.json())["outcome"] == "new_session"


def test_a_state_with_a_number_too_large_for_a_float_is_no_report() -> None:
    """Found by fuzzing the state reports: ``until`` of 10**400 raised OverflowError."""
    huge = "1" + "0" * 400
    assert parse_state(f'{{"state": "ON", "session": "s-1", "until": {huge}}}') is None
    assert parse_state(f'{{"state": "OFF", "session": null, "remaining": {huge}}}') is None


async def test_a_delivery_while_the_account_is_unloaded_is_answered_503(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
) -> None:
    """Seeds 111 and 114 of the schedules (with --soak 200): deliveries during a reload.

    Unloading the entry unregistered its webhook, and HA answers 200 to a webhook it does not
    know: a delivery that came while the account reloaded (after a plan or bay was edited, for
    instance) was taken by Razorpay as delivered and never sent again.
    """
    paid = standin.pay_link((await create_link(hass))["id"])
    delivery = paid.payment_link_paid()
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)

    response = await post_webhook(delivery)

    assert response.status == 503
    assert (await response.json())["outcome"] == "not_loaded"
    # Set up again, Razorpay's next delivery is taken as the first.
    await _taken_when_set_up_again(hass, loaded_entry, post_webhook, delivery)
    (row,) = await export_sessions(hass)
    assert row["payment_ids"] == paid.payment_id
    # Once the account is removed, the webhook is gone (HA answers 200 to unknown webhooks).
    assert await hass.config_entries.async_remove(loaded_entry.entry_id)
    response = await post_webhook(delivery)
    assert response.status == 200
    assert await response.text() == ""
