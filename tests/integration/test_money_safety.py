"""Money safety at the edges: spoofed and broken state reports, prices per payment, refunds
Razorpay would refuse or has not finally answered, and money that matches no bay.

Real HA, a real Mosquitto with a scripted agent (or a real switch as a plug), the Razorpay
stand-in; a third MQTT client plays whoever else can publish on the broker.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from paho.mqtt import client as paho
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.qr_charging.const import DOMAIN, EVENT_PAYMENT_UNMATCHED
from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.fixtures import build_webhook, new_id, payment_entity

from .const import PLAN_PRICE, PLAN_SUBENTRY, plan_subentry
from .helpers import PostWebhook, create_link, export_sessions, pay, refund_amounts, settle, tick
from .mqtt_helpers import STATE, ScriptedAgent, running_session, wait_until

# An hour for ₹35 besides the half hour for ₹20: top-ups priced differently.
HOUR_PRICE = 3500
HOUR = plan_subentry("p60", 60, HOUR_PRICE)


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """bay-1 offers the hour (its first plan) and the half hour."""
    return [HOUR, PLAN_SUBENTRY]


def _spoof(client: paho.Client, payload: str) -> None:
    client.publish(STATE, payload, qos=1).wait_for_publish(5)


def _offs(agent: ScriptedAgent, session_id: str) -> int:
    return sum(
        1
        for command, _, _ in agent.commands
        if isinstance(command, dict) and command == {"action": "off", "session": session_id}
    )


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_a_spoofed_off_is_answered_with_off_before_the_refund(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    intruder: paho.Client,
) -> None:
    paid, on = await running_session(hass, standin, post_webhook, agent)

    off = {"state": "OFF", "session": on["session"], "until": None, "remaining": 0}
    _spoof(intruder, json.dumps({**off, "reason": "command"}))
    await wait_until(hass, lambda: bool(refund_amounts(standin, paid.payment_id)))

    # Whoever said "off", the relay is told off for that session: refunded and off, never
    # refunded and on.
    await wait_until(hass, lambda: _offs(agent, on["session"]) == 1)
    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"]) == ("ended", "power_cut")


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_a_report_of_more_time_than_paid_confirms_nothing(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    intruder: paho.Client,
) -> None:
    agent.answer = False  # the relay never powers
    paid = await pay(hass, standin, post_webhook)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)

    report = {"state": "ON", "session": on["session"], "remaining": 7200, "reason": "command"}
    _spoof(intruder, json.dumps({**report, "until": on["until"] + 3600}))
    # Not confirmed: at the acknowledgement time (1 s here) it fails, off and refunded in full.
    await wait_until(hass, lambda: bool(refund_amounts(standin, paid.payment_id)))
    assert refund_amounts(standin, paid.payment_id) == [HOUR_PRICE]
    await wait_until(hass, lambda: _offs(agent, on["session"]) == 1)
    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"]) == ("refunded", "no_acknowledgement")


# Reports for the starting session (SESSION) with the paid deadline (UNTIL) or a broken one.
BROKEN_REPORTS = [
    '"state": "ON", "until": NaN, "remaining": 10',
    '"state": "ON", "until": Infinity, "remaining": 10',
    '"state": "ON", "until": -1e300, "remaining": 10',
    '"state": "ON", "until": 1e300, "remaining": 10',
    '"state": "ON", "until": "soon", "remaining": 10',
    '"state": "ON", "until": true, "remaining": 10',
    '"state": "ON", "remaining": 10',
    '"state": "ON", "until": UNTIL, "remaining": NaN',
    '"state": "ON", "until": UNTIL, "remaining": -5',
    '"state": "OFF", "until": NaN, "remaining": 0',
]


# Long enough for every broken report to arrive before the real acknowledgement.
@pytest.mark.parametrize("ack_timeout", [60])
@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_broken_numbers_in_state_reports_change_nothing(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    intruder: paho.Client,
) -> None:
    agent.answer = False
    await pay(hass, standin, post_webhook)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    for fields in BROKEN_REPORTS:
        report = f'{{"session": "SESSION", "reason": "command", {fields}}}'
        _spoof(
            intruder, report.replace("SESSION", on["session"]).replace("UNTIL", str(on["until"]))
        )
    await settle(hass)
    (row,) = await export_sessions(hass)
    assert row["state"] == "starting"
    # The real acknowledgement then confirms the session with its paid deadline.
    agent.report(on["session"], on["until"], "command")
    await wait_until(hass, lambda: _active(hass))
    (row,) = await export_sessions(hass)
    assert float(row["until"]) == pytest.approx(on["until"])
    # And the next customer's payment tops it up (it once swallowed their money).
    agent.answer = True
    second = await pay(hass, standin, post_webhook)
    top_up = await agent.wait_command(2)
    assert isinstance(top_up, dict)
    assert top_up["until"] == pytest.approx(on["until"] + 3600)
    assert refund_amounts(standin, second.payment_id) == []


def _active(hass: HomeAssistant) -> bool:
    state = hass.states.get("sensor.bay_1_status")
    return state is not None and state.state == "charging"


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_a_refused_top_up_gives_back_exactly_what_was_paid_for_it(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
) -> None:
    _, first = await running_session(hass, standin, post_webhook, agent)
    agent.refuse_top_up = True

    # Half an hour for ₹20 on top of an hour for ₹35: the agent will not take it.
    second = standin.pay_link((await create_link(hass, plan="p30"))["id"])
    assert (await post_webhook(second.payment_link_paid())).status == 200
    await wait_until(hass, lambda: bool(refund_amounts(standin, second.payment_id)))

    # ₹20, not the blended ₹18.33.
    assert refund_amounts(standin, second.payment_id) == [PLAN_PRICE]
    (row,) = await export_sessions(hass)
    assert float(row["until"]) == pytest.approx(first["until"])


@pytest.mark.usefixtures("loaded_entry")
async def test_an_early_stop_prices_what_is_left_per_payment(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    hour = await pay(hass, standin, post_webhook)
    half = standin.pay_link((await create_link(hass, plan="p30"))["id"])
    await post_webhook(half.payment_link_paid())
    await settle(hass)
    await tick(hass, freezer, 600)

    response = await hass.services.async_call(
        DOMAIN, "stop_session", {"bay": "bay-1"}, blocking=True, return_response=True
    )

    # 80 of 90 minutes left: the half hour in full, then 50 of the hour's 60 at its price.
    assert refund_amounts(standin, half.payment_id) == [PLAN_PRICE]
    assert refund_amounts(standin, hour.payment_id) == [HOUR_PRICE * 50 // 60]
    assert response is not None
    assert response["refunded"] == PLAN_PRICE + HOUR_PRICE * 50 // 60


@pytest.mark.usefixtures("loaded_entry")
async def test_under_a_rupee_is_kept_not_sent(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    paid = await pay(hass, standin, post_webhook)
    await tick(hass, freezer, 3600 - 30)  # 30 seconds of the hour left: 29 paise

    response = await hass.services.async_call(
        DOMAIN, "stop_session", {"bay": "bay-1"}, blocking=True, return_response=True
    )

    assert response is not None
    assert response["refunded"] == 0
    assert refund_amounts(standin, paid.payment_id) == []
    assert not [i for i in issue_registry.issues.values() if i.domain == DOMAIN]
    (row,) = await export_sessions(hass)
    assert (row["refunded_paise"], row["too_small_paise"]) == ("0", str(HOUR_PRICE * 30 // 3600))
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN,
            "refund",
            {"payment_id": paid.payment_id, "amount": 0.5},
            blocking=True,
            return_response=True,
        )
    assert refused.value.translation_key == "refund_too_small"


@pytest.mark.usefixtures("loaded_entry")
async def test_a_failed_refund_reported_processed_later_is_processed(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    issue_registry: ir.IssueRegistry,
) -> None:
    standin.refund_status = "pending"
    paid = await pay(hass, standin, post_webhook)
    response = await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
    )
    assert response is not None
    refund_id = response["refund_id"]
    await post_webhook(standin.settle_refund(refund_id, "failed"))
    await settle(hass)
    assert [i.translation_key for i in issue_registry.issues.values()] == ["refund_failed"]

    await post_webhook(standin.settle_refund(refund_id, "processed"))
    await settle(hass)

    # The money left: nothing of the payment is refundable any more, and the repair goes.
    assert not issue_registry.issues
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
        )
    assert refused.value.translation_key == "invalid_refund_amount"


@pytest.mark.usefixtures("loaded_entry")
async def test_one_send_of_a_refund_at_a_time(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    paid = await pay(hass, standin, post_webhook)
    path = f"/v1/payments/{paid.payment_id}/refund"
    standin.delay_next(path, seconds=3.0)
    refunding = hass.async_create_task(
        hass.services.async_call(
            DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
        )
    )
    # Reconciliation comes round while Razorpay has the request and has not answered yet.
    for _ in range(500):  # not block_till_done: that would wait for the answer too
        if standin.calls_to("POST", path):
            break
        await asyncio.sleep(0.01)
    assert not refunding.done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await refunding
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(standin.calls_to("POST", path)) == 1


@pytest.mark.usefixtures("loaded_entry")
async def test_money_that_matches_no_bay_is_brought_to_the_owner(
    hass: HomeAssistant, post_webhook: PostWebhook, issue_registry: ir.IssueRegistry
) -> None:
    unmatched = async_capture_events(hass, EVENT_PAYMENT_UNMATCHED)
    payment = payment_entity(
        "upi", id=new_id("pay"), amount=5000, description="paid elsewhere", notes=[]
    )
    delivery = build_webhook(
        "payment.captured__upi",
        account_id="acc_test",
        created_at=int(dt_util.utcnow().timestamp()),
        entities={"payment": payment},
    )

    response = await post_webhook(delivery)
    await settle(hass)

    assert (await response.json())["outcome"] == "unmatched"
    assert [e.data for e in unmatched] == [
        {
            "entry_id": unmatched[0].data["entry_id"],
            "payment_id": payment["id"],
            "amount": 5000,
            "currency": "INR",
        }
    ]
    (issue,) = issue_registry.issues.values()
    assert issue.translation_key == "payment_unmatched"
    assert issue.translation_placeholders == {"payment_id": payment["id"], "amount": "50.00"}
    assert await export_sessions(hass) == []


@pytest.mark.usefixtures("loaded_entry")
async def test_a_refund_event_is_matched_to_its_own_refund_not_a_refused_one(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    standin.refund_status = "pending"
    paid = await pay(hass, standin, post_webhook)
    path = f"/v1/payments/{paid.payment_id}/refund"
    # The first refund is refused for good (say, too little balance): it stays with the owner.
    standin.fail_next(path, status=400)
    refused = await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
    )
    assert refused is not None
    assert refused["state"] == "failed"
    second = await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True, return_response=True
    )
    assert second is not None

    await post_webhook(standin.settle_refund(second["refund_id"], "processed"))
    await settle(hass)

    # One refund of ₹20 left: the refused one is not taken for it.
    (row,) = await export_sessions(hass)
    assert row["refunded_paise"] == str(HOUR_PRICE)
    revenue = hass.states.get("sensor.bay_1_revenue")
    assert revenue is not None
    assert revenue.state == "0.00"


@pytest.mark.usefixtures("loaded_entry")
async def test_refunding_a_mismatched_payment_leaves_revenue_alone(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    wrong = standin.pay_link((await create_link(hass))["id"], amount=1000)
    await post_webhook(wrong.payment_link_paid())
    await settle(hass)
    await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": wrong.payment_id}, blocking=True, return_response=True
    )
    await settle(hass)
    revenue = hass.states.get("sensor.bay_1_revenue")
    assert revenue is not None
    assert revenue.state == "0.00"
