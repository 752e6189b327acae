"""Session lifecycle on a bay driven by a real HA switch (HA keeps the deadline)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.qr_charging.books import Books
from custom_components.qr_charging.const import (
    DOMAIN,
    EVENT_REFUND,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_FAILED,
    EVENT_SESSION_STARTED,
)
from custom_components.qr_charging.hub import store_for
from custom_components.qr_charging.ledger import Wanted
from custom_components.qr_charging.payment_rules import apply_payment
from custom_components.qr_charging.razorpay_events import PaymentNotice
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_PRICE, PLUG
from .helpers import (
    PostWebhook,
    altered,
    create_link,
    export_sessions,
    owed_repairs,
    pay,
    plug_state,
    refund_amounts,
    settle,
    setup_plug,
    tick,
    two_links_paid_in_turn,
)

PLAN_S = 30 * 60


async def _runs_for(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """The plug stays on until ``seconds`` from now, then HA switches it off."""
    await tick(hass, freezer, seconds - 5)
    assert plug_state(hass) == STATE_ON
    await tick(hass, freezer, 6)
    assert plug_state(hass) == STATE_OFF


@pytest.mark.usefixtures("loaded_entry")
async def test_paid_session_powers_the_plug_until_the_deadline(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    await pay(hass, standin, post_webhook)

    assert plug_state(hass) == STATE_ON
    (row,) = await export_sessions(hass)
    assert row["state"] == "active"
    assert len(started) == 1
    assert started[0].data["seconds"] == PLAN_S

    await _runs_for(hass, freezer, PLAN_S)
    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"]) == ("ended", "deadline")
    assert [(e.data["reason"], e.data["served_s"]) for e in ended] == [("deadline", PLAN_S)]


async def test_offline_bay_refunds_in_full(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    refunds = async_capture_events(hass, EVENT_REFUND)
    hass.states.async_set(PLUG, "unavailable")
    await hass.async_block_till_done()

    paid = await pay(hass, standin, post_webhook)

    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
    assert [e.data["reason"] for e in failed] == ["bay_offline"]
    assert [e.data["amount"] for e in refunds] == [PLAN_PRICE]
    (row,) = await export_sessions(hass)
    assert (row["state"], row["refunded_paise"]) == ("refunded", str(PLAN_PRICE))
    assert issue_registry.async_get_issue(DOMAIN, "start_failed_bay-1") is not None
    # The plug was never switched on (the state above was set by the test).
    assert plug_state(hass) == "unavailable"


async def _without_automatic_refund(hass: HomeAssistant, config_entry: MockConfigEntry) -> None:
    """The account set up with automatic refund off: what a failure owes is the owner's."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={**config_entry.options, "auto_refund": False}
    )
    await setup_plug(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()


async def test_an_offline_bay_without_automatic_refund_owes_until_the_owner_refunds(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A bay that did not start: both repairs, the owed one gone once the owner refunds."""
    await _without_automatic_refund(hass, config_entry)
    hass.states.async_set(PLUG, "unavailable")
    await hass.async_block_till_done()

    paid = await pay(hass, standin, post_webhook)

    assert refund_amounts(standin, paid.payment_id) == []
    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"]) == ("failed", "bay_offline")
    assert issue_registry.async_get_issue(DOMAIN, "start_failed_bay-1") is not None
    assert {s: (i["amount"], i["reason"]) for s, i in owed_repairs(hass).items()} == {
        row["session_id"]: ("₹20.00", "bay_offline")
    }

    await hass.services.async_call(DOMAIN, "refund", {"payment_id": paid.payment_id}, blocking=True)
    await hass.async_block_till_done()
    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
    assert owed_repairs(hass) == {}


async def test_a_top_up_refused_without_automatic_refund_is_owed_with_no_start_repair(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A sale the bay's runner refuses (over_limit): the bay is fine, the money is owed."""
    bay = next(s for s in config_entry.subentries.values() if s.subentry_type == "bay")
    await _without_automatic_refund(hass, config_entry)
    hass.config_entries.async_update_subentry(
        config_entry, bay, data={**bay.data, "max_minutes": 45}
    )
    await hass.async_block_till_done()

    second = await two_links_paid_in_turn(hass, standin, post_webhook)

    assert refund_amounts(standin, second.payment_id) == []
    refused = next(r for r in await export_sessions(hass) if r["state"] == "failed")
    assert refused["end_reason"] == "over_limit"
    assert issue_registry.async_get_issue(DOMAIN, "start_failed_bay-1") is None
    assert {s: i["amount"] for s, i in owed_repairs(hass).items()} == {
        refused["session_id"]: "₹20.00"
    }


@pytest.mark.usefixtures("loaded_entry")
async def test_top_up_extends_the_running_session(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    await pay(hass, standin, post_webhook)
    await tick(hass, freezer, 600)
    await pay(hass, standin, post_webhook)

    (row,) = await export_sessions(hass)
    assert (row["state"], row["seconds"], row["paid_paise"]) == (
        "active",
        "3600",
        str(2 * PLAN_PRICE),
    )
    assert len(row["payment_ids"].split()) == 2
    # 50 minutes are left: 20 of the first payment and 30 of the second.
    await _runs_for(hass, freezer, 50 * 60)


async def test_top_up_beyond_the_longest_session_is_refunded(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    config_entry.add_to_hass(hass)
    bay = next(s for s in config_entry.subentries.values() if s.subentry_type == "bay")
    hass.config_entries.async_update_subentry(
        config_entry, bay, data={**bay.data, "max_minutes": 45}
    )
    await setup_plug(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    second = await two_links_paid_in_turn(hass, standin, post_webhook)

    assert refund_amounts(standin, second.payment_id) == [PLAN_PRICE]
    rows = {r["state"]: r for r in await export_sessions(hass)}
    assert rows["active"]["seconds"] == str(PLAN_S)
    assert rows["refunded"]["end_reason"] == "over_limit"
    # Refusing the second payment left the first session's deadline alone.
    await tick(hass, freezer, PLAN_S + 1)
    assert plug_state(hass) == STATE_OFF


@pytest.mark.usefixtures("loaded_entry")
async def test_stop_with_prorata_refund(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    paid = await pay(hass, standin, post_webhook)
    await tick(hass, freezer, 600)

    response = await hass.services.async_call(
        DOMAIN, "stop_session", {"bay": "bay-1"}, blocking=True, return_response=True
    )
    await hass.async_block_till_done()

    # 20 of 30 minutes unserved: two thirds of ₹20, rounded down to the paisa.
    assert response is not None
    assert response["refunded"] == 1333
    assert refund_amounts(standin, paid.payment_id) == [1333]
    assert plug_state(hass) == STATE_OFF
    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"], row["refunded_paise"]) == ("ended", "stopped", "1333")


@pytest.mark.parametrize(("mode", "refunded"), [("none", 0), ("full", PLAN_PRICE)])
@pytest.mark.usefixtures("loaded_entry")
async def test_stop_with_other_refund_modes(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    mode: str,
    refunded: int,
) -> None:
    paid = await pay(hass, standin, post_webhook)
    response = await hass.services.async_call(
        DOMAIN,
        "stop_session",
        {"bay": "bay-1", "refund": mode},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["refunded"] == refunded
    assert sum(refund_amounts(standin, paid.payment_id)) == refunded


@pytest.mark.usefixtures("loaded_entry")
async def test_owner_session(hass: HomeAssistant, standin: RazorpayStandin) -> None:
    response = await hass.services.async_call(
        DOMAIN, "start_session", {"bay": "bay-1", "minutes": 5}, blocking=True, return_response=True
    )
    await settle(hass)
    assert response is not None
    assert response["minutes"] == 5
    assert plug_state(hass) == STATE_ON
    (row,) = await export_sessions(hass)
    assert (row["owner"], row["paid_paise"], row["seconds"], row["state"]) == (
        "True",
        "0",
        "300",
        "active",
    )

    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "start_session", {"bay": "bay-1"}, blocking=True, return_response=True
        )
    assert err.value.translation_key == "bay_busy"

    await hass.services.async_call(DOMAIN, "stop_session", {"bay": "bay-1"}, blocking=True)
    await settle(hass)
    assert plug_state(hass) == STATE_OFF
    assert standin.calls_to("POST", "/v1/payments") == []


@pytest.mark.usefixtures("loaded_entry")
@pytest.mark.parametrize(
    ("service", "data", "key"),
    [
        ("start_session", {"bay": "nope"}, "unknown_bay"),
        ("start_session", {"bay": "bay-1", "minutes": 241}, "too_long"),
        ("stop_session", {"bay": "bay-1"}, "bay_idle"),
    ],
)
async def test_bad_session_actions(
    hass: HomeAssistant, service: str, data: dict[str, Any], key: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, service, data, blocking=True, return_response=True)
    assert err.value.translation_key == key
    assert plug_state(hass) == STATE_OFF


@pytest.mark.usefixtures("loaded_entry")
async def test_unpaid_power_is_cut(hass: HomeAssistant) -> None:
    await hass.services.async_call(
        "input_boolean", "turn_on", {"entity_id": "input_boolean.plug"}, blocking=True
    )
    await settle(hass)
    assert plug_state(hass) == STATE_OFF


async def test_restart_mid_session_keeps_the_true_deadline(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    await pay(hass, standin, post_webhook)
    await tick(hass, freezer, 600)
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await tick(hass, freezer, 60)
    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await settle(hass)

    assert plug_state(hass) == STATE_ON
    (row,) = await export_sessions(hass)
    assert row["state"] == "active"
    await _runs_for(hass, freezer, PLAN_S - 660)


async def test_deadline_passed_during_restart_closes_at_the_deadline(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    await pay(hass, standin, post_webhook)
    (row,) = await export_sessions(hass)
    until = float(row["until"])
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await tick(hass, freezer, PLAN_S + 3600)
    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await settle(hass)

    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"], float(row["ended_at"])) == ("ended", "deadline", until)
    assert plug_state(hass) == STATE_OFF
    assert [e.data["served_s"] for e in ended] == [PLAN_S]
    assert dt_util.utcnow().timestamp() > until


@pytest.mark.usefixtures("loaded_entry")
async def test_power_cut_by_hand_refunds_the_unserved_share(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    paid = await pay(hass, standin, post_webhook)
    await tick(hass, freezer, 1200)
    # Someone switches the plug off at the wall switch's app: 10 of 30 minutes unserved.
    await hass.services.async_call(
        "input_boolean", "turn_off", {"entity_id": "input_boolean.plug"}, blocking=True
    )
    await settle(hass)

    assert [e.data["reason"] for e in ended] == ["power_cut"]
    assert refund_amounts(standin, paid.payment_id) == [666]
    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"], row["refunded_paise"]) == ("ended", "power_cut", "666")


async def test_payment_for_a_removed_bay_is_refunded(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
) -> None:
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    link = await create_link(hass)
    paid = standin.pay_link(link["id"])
    bay = next(s for s in loaded_entry.subentries.values() if s.subentry_type == "bay")
    assert hass.config_entries.async_remove_subentry(loaded_entry, bay.subentry_id)
    await settle(hass)

    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)

    assert [(e.data["reason"], e.data["payment_ids"]) for e in failed] == [
        ("unknown_bay", [paid.payment_id])
    ]
    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
    (row,) = await export_sessions(hass)
    assert row["state"] == "refunded"


async def test_late_webhook_is_refunded_not_started(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
) -> None:
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    paid = standin.pay_link((await create_link(hass))["id"])
    # HA was down for an hour; Razorpay's retry brings the payment now.
    late = altered(paid.payment_captured(), {"created_at": int(time.time()) - 3600})

    assert (await post_webhook(late)).status == 200
    await settle(hass)

    assert [e.data["reason"] for e in failed] == ["paid_too_late"]
    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
    assert plug_state(hass) == STATE_OFF


async def _crash_after_saving_a_payment(
    hass: HomeAssistant, standin: RazorpayStandin, entry: MockConfigEntry
) -> Any:
    """A paid payment stored by the webhook, then HA gone before the bay was told of it."""
    paid = standin.pay_link((await create_link(hass))["id"])
    await hass.config_entries.async_unload(entry.entry_id)
    notice = PaymentNotice(paid.payment_id, PLAN_PRICE, "INR", "captured", link_id=paid.link_id)
    # The webhook's own change, on the account's database, with nothing after it.
    books = Books(store_for(hass, entry.entry_id))
    await books.async_open()
    async with books.change(Wanted.for_payment(notice)) as ledger:
        apply_payment(ledger, notice, "payment.captured", time.time())
    await books.store.async_close()
    return paid


async def test_restart_after_a_crash_between_payment_and_top_up(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A second payment was saved (paid) but HA died before topping the session up."""
    first = await pay(hass, standin, post_webhook)
    second = await _crash_after_saving_a_payment(hass, standin, loaded_entry)

    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await settle(hass)

    (row,) = await export_sessions(hass)
    assert (row["state"], row["seconds"]) == ("active", str(2 * PLAN_S))
    assert row["payment_ids"].split() == [first.payment_id, second.payment_id]
    assert plug_state(hass) == STATE_ON


async def test_restart_long_after_such_a_crash_refunds_the_second_payment(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    loaded_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    await pay(hass, standin, post_webhook)
    second = await _crash_after_saving_a_payment(hass, standin, loaded_entry)
    await tick(hass, freezer, 300)

    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await settle(hass)

    states = sorted(r["state"] for r in await export_sessions(hass))
    assert states == ["active", "refunded"]
    assert refund_amounts(standin, second.payment_id) == [PLAN_PRICE]
    # Failing the second one left the first session's deadline alone.
    await tick(hass, freezer, PLAN_S)
    assert plug_state(hass) == STATE_OFF
