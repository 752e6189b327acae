"""A bay's static UPI QR code closed at Razorpay when it sells no more; what still reaches it.

Issue #21, items 2 and 7: a code unticked, replaced or whose bay (or account) is removed is
closed at Razorpay (``POST /v1/payments/qr_codes/{id}/close``), retried by reconciliation when
Razorpay cannot close it now; a payment that still arrives on it (it raced the close) is
refunded in full as ``qr_closed``, and one in another currency than the plan's as
``currency_mismatch``, never left unmatched.
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import Any
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.qr_charging import qr_codes
from custom_components.qr_charging.account_api import api_for
from custom_components.qr_charging.const import (
    DOMAIN,
    EVENT_PAYMENT_UNMATCHED,
    EVENT_REFUND,
    EVENT_SESSION_FAILED,
    RECONCILE_INTERVAL_S,
)
from custom_components.qr_charging.endings import Endings
from custom_components.qr_charging.records import (
    RefundRecord,
    RefundState,
    SessionRecord,
    SessionState,
)
from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.standin import PaidQrCode

from .const import FIXED_AND_PER_MINUTE
from .helpers import (
    PostWebhook,
    export_sessions,
    owed_repairs,
    pay,
    plug_state,
    refund_amounts,
    settle,
    tick,
)
from .pages_helpers import edit_bay, static_qr_code
from .storage_helpers import recorded_writes


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """Bay 1 offers the fixed half hour and ₹0.50 a minute (what its static QR code sells)."""
    return FIXED_AND_PER_MINUTE


def _close_calls(standin: RazorpayStandin, qr_id: str) -> int:
    return len(standin.calls_to("POST", f"/v1/payments/qr_codes/{qr_id}/close"))


def _record(hass: HomeAssistant) -> dict[str, dict[str, str]]:
    """The account's record of the QR codes it made (kept in its entry)."""
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    codes: dict[str, dict[str, str]] = entry.data.get("qr_codes", {})
    return codes


def _tag(standin: RazorpayStandin, qr_id: str) -> str:
    """The tag a code was made with (its notes): the record keeps it."""
    tag: str = standin.qr_codes[qr_id]["notes"]["qr_charging_code"]
    return tag


async def _done(hass: HomeAssistant) -> None:
    """Let the reload and the reconciliation it starts (a background task) finish."""
    await hass.async_block_till_done(wait_background_tasks=True)
    await settle(hass)


async def _refunded_as(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    paid: PaidQrCode,
    reason: str,
) -> None:
    """Its webhooks (and a redelivery) refund it once, in full, for ``reason``: not unmatched.

    The refund is recorded in the very commit that stores the payment, then sent.
    """
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    refunds = async_capture_events(hass, EVENT_REFUND)
    unmatched = async_capture_events(hass, EVENT_PAYMENT_UNMATCHED)
    with recorded_writes() as written:
        for webhook in (paid.qr_code_credited(), paid.payment_captured(), paid.qr_code_credited()):
            assert (await post_webhook(webhook)).status == 200
            await _done(hass)

    first = next(
        w for w in written if any(getattr(r, "payment_id", None) == paid.payment_id for r in w)
    )
    (refund,) = [r for r in first if isinstance(r, RefundRecord)]
    assert (refund.payment_id, refund.amount, refund.reason, refund.state) == (
        paid.payment_id,
        paid.payment["amount"],
        reason,
        RefundState.REQUESTED,
    )
    (session,) = [r for r in first if isinstance(r, SessionRecord)]
    assert (session.state, session.end_reason) == (SessionState.REFUNDED, reason)

    assert refund_amounts(standin, paid.payment_id) == [paid.payment["amount"]]
    (call,) = standin.calls_to("POST", f"/v1/payments/{paid.payment_id}/refund")
    assert call.json["notes"]["reason"] == reason
    assert call.headers["X-Refund-Idempotency"] == call.json["notes"]["refund_key"]
    assert [e.data["reason"] for e in failed] == [reason]
    assert failed[0].data["payment_ids"] == [paid.payment_id]
    assert [(e.data["reason"], e.data["state"]) for e in refunds] == [(reason, "processed")]
    assert not unmatched
    issues = ir.async_get(hass).issues
    assert not [key for key in issues if key[0] == DOMAIN and "unmatched" in key[1]]
    assert not [key for key in issues if key[0] == DOMAIN and key[1].startswith("start_failed")]
    assert plug_state(hass) == "off"
    (row,) = [s for s in await export_sessions(hass) if paid.payment_id in s["payment_ids"]]
    assert (row["state"], row["end_reason"]) == ("refunded", reason)


async def test_unticking_the_option_closes_the_code_and_refunds_a_payment_that_raced_it(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    qr_id = await static_qr_code(hass)
    await _done(hass)
    assert _close_calls(standin, qr_id) == 0
    raced = standin.pay_qr_code(qr_id, 1500)  # paid as the owner unticks; delivered after

    await edit_bay(hass, static_qr=False)
    await _done(hass)

    assert _close_calls(standin, qr_id) == 1
    assert standin.qr_codes[qr_id]["status"] == "closed"
    assert _record(hass) == {
        qr_id: {"bay": "bay-1", "state": "closed", "tag": _tag(standin, qr_id)}
    }
    with pytest.raises(ValueError, match="closed"):
        standin.pay_qr_code(qr_id, 1500)  # Razorpay takes no more payments to it
    await _refunded_as(hass, standin, post_webhook, raced, "qr_closed")


async def test_a_new_code_closes_the_old_whose_payments_are_refunded_not_sold(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    old = await static_qr_code(hass)
    raced = standin.pay_qr_code(old, 1500)
    await edit_bay(hass, static_qr=False)
    new = await static_qr_code(hass)  # ticked again: a new code
    await _done(hass)

    assert new != old
    assert standin.qr_codes[old]["status"] == "closed"
    assert standin.qr_codes[new]["status"] == "active"
    assert _close_calls(standin, new) == 0
    # payment.captured of the old code names the same bay: its notes' tag tells it apart.
    assert raced.payment["notes"]["qr_charging_bay"] == "bay-1"
    await _refunded_as(hass, standin, post_webhook, raced, "qr_closed")

    paid = standin.pay_qr_code(new, 1500)  # the new code sells 30 minutes
    assert (await post_webhook(paid.payment_captured())).status == 200
    await _done(hass)
    assert refund_amounts(standin, paid.payment_id) == []
    assert plug_state(hass) == "on"


async def test_removing_the_bay_closes_its_code(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    qr_id = await static_qr_code(hass)
    raced = standin.pay_qr_code(qr_id, 2000)
    (sub_id,) = [s for s, sub in loaded_entry.subentries.items() if sub.subentry_type == "bay"]

    assert hass.config_entries.async_remove_subentry(loaded_entry, sub_id)
    await _done(hass)

    assert standin.qr_codes[qr_id]["status"] == "closed"
    assert _record(hass) == {
        qr_id: {"bay": "bay-1", "state": "closed", "tag": _tag(standin, qr_id)}
    }
    await _refunded_as(hass, standin, post_webhook, raced, "qr_closed")


async def test_a_close_razorpay_cannot_do_now_is_kept_and_retried(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    qr_id = await static_qr_code(hass)
    close = f"/v1/payments/qr_codes/{qr_id}/close"
    standin.fail_next(close, 503, times=2)

    await edit_bay(hass, static_qr=False)
    await _done(hass)
    assert standin.qr_codes[qr_id]["status"] == "active"
    assert _record(hass) == {
        qr_id: {"bay": "bay-1", "state": "to_close", "tag": _tag(standin, qr_id)}
    }
    # Meanwhile a payment to it is refunded, not sold.
    meanwhile = standin.pay_qr_code(qr_id, 1500)
    await _refunded_as(hass, standin, post_webhook, meanwhile, "qr_closed")

    # Kept across a restart (the entry's data), tried again at its start-up: down still.
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await _done(hass)
    assert _record(hass)[qr_id]["state"] == "to_close"
    hub = loaded_entry.runtime_data

    await tick(hass, freezer, RECONCILE_INTERVAL_S)
    await _done(hass)
    assert standin.qr_codes[qr_id]["status"] == "closed"
    assert _record(hass)[qr_id]["state"] == "closed"
    assert _close_calls(standin, qr_id) == 3
    assert loaded_entry.runtime_data is hub  # marking it closed reloads nothing

    await tick(hass, freezer, RECONCILE_INTERVAL_S)
    await _done(hass)
    assert _close_calls(standin, qr_id) == 3  # closed once


async def test_a_close_whose_answer_was_lost_is_found_closed(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, standin: RazorpayStandin
) -> None:
    qr_id = await static_qr_code(hass)
    standin.qr_codes[qr_id]["status"] = "closed"  # closed by an earlier try whose answer was lost

    await edit_bay(hass, static_qr=False)
    await _done(hass)

    assert _close_calls(standin, qr_id) == 1  # refused: already closed
    assert standin.calls_to("GET", f"/v1/payments/qr_codes/{qr_id}")
    assert _record(hass)[qr_id]["state"] == "closed"


async def test_removing_the_account_closes_its_codes(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, standin: RazorpayStandin
) -> None:
    qr_id = await static_qr_code(hass)
    await _done(hass)

    assert await hass.config_entries.async_remove(loaded_entry.entry_id)
    await _done(hass)

    assert _close_calls(standin, qr_id) == 1
    assert standin.qr_codes[qr_id]["status"] == "closed"


async def test_a_static_qr_payment_in_another_currency_is_refunded(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    qr_id = await static_qr_code(hass)
    dollars = standin.pay_qr_code(qr_id, 1500, currency="USD")  # USD 15.00: no rupee minutes

    await _refunded_as(hass, standin, post_webhook, dollars, "currency_mismatch")
    assert standin.qr_codes[qr_id]["status"] == "active"  # the code itself is fine


async def test_a_code_made_before_tags_still_sells_and_is_closed_when_replaced(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    # A bay whose code was made by an earlier version: its notes name the bay, with no tag.
    api = api_for(loaded_entry.data)
    legacy = await hass.async_add_executor_job(
        partial(
            api.create_qr_code,
            name="Bay 1",
            description="Bay 1",
            notes={"bay": "bay-1", "qr_charging_bay": "bay-1"},
        )
    )
    api.close()
    (sub_id,) = [s for s, sub in loaded_entry.subentries.items() if sub.subentry_type == "bay"]
    subentry = loaded_entry.subentries[sub_id]
    hass.config_entries.async_update_subentry(
        loaded_entry, subentry, data={**subentry.data, "qr_code_id": legacy["id"]}
    )
    await _done(hass)
    assert _record(hass) == {legacy["id"]: {"bay": "bay-1", "state": "open"}}

    paid = standin.pay_qr_code(legacy["id"], 1500)
    assert (await post_webhook(paid.payment_captured())).status == 200
    await _done(hass)
    assert refund_amounts(standin, paid.payment_id) == []
    assert plug_state(hass) == "on"

    raced = standin.pay_qr_code(legacy["id"], 1500)
    await edit_bay(hass, static_qr=False)
    await static_qr_code(hass)
    await _done(hass)
    assert standin.qr_codes[legacy["id"]]["status"] == "closed"
    refunds = async_capture_events(hass, EVENT_REFUND)
    assert (await post_webhook(raced.payment_captured())).status == 200
    await _done(hass)
    assert refund_amounts(standin, raced.payment_id) == [1500]
    assert [e.data["reason"] for e in refunds] == ["qr_closed"]


async def test_without_automatic_refund_a_payment_to_a_closed_code_is_the_owners_to_refund(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    hass.config_entries.async_update_entry(loaded_entry, options={"auto_refund": False})
    await _done(hass)
    qr_id = await static_qr_code(hass)
    raced = standin.pay_qr_code(qr_id, 1500)
    await edit_bay(hass, static_qr=False)
    await _done(hass)

    assert (await post_webhook(raced.qr_code_credited())).status == 200
    await _done(hass)

    assert refund_amounts(standin, raced.payment_id) == []
    (row,) = [s for s in await export_sessions(hass) if raced.payment_id in s["payment_ids"]]
    assert (row["state"], row["end_reason"]) == ("failed", "qr_closed")
    assert owed_repairs(hass) == {
        row["session_id"]: {
            "bay": "Bay 1",
            "amount": "₹15.00",
            "payment_ids": raced.payment_id,
            "reason": "qr_closed",
            "session_id": row["session_id"],
        }
    }
    # The bay is fine: no "did not start" (a refused sale, as before automatic refund mattered).
    assert not ir.async_get(hass).async_get_issue(DOMAIN, "start_failed_bay-1")


async def test_a_code_razorpay_does_not_close_as_the_account_goes_is_named_in_the_log(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    qr_id = await static_qr_code(hass)
    await _done(hass)
    standin.fail_next(f"/v1/payments/qr_codes/{qr_id}/close", 503)

    assert await hass.config_entries.async_remove(loaded_entry.entry_id)
    await _done(hass)

    assert standin.qr_codes[qr_id]["status"] == "active"
    assert f"QR code {qr_id} of the removed account is still open at Razorpay" in caplog.text


async def _code_of_another_install(hass: HomeAssistant, entry: MockConfigEntry, bay: str) -> str:
    """A code another qr_charging install made on the same Razorpay account (its own tag)."""
    api = api_for(entry.data)
    code = await hass.async_add_executor_job(
        partial(
            api.create_qr_code,
            name="Other site",
            description="Other site",
            notes={"bay": bay, "qr_charging_bay": bay, "qr_charging_code": "01OTHERSITE"},
        )
    )
    api.close()
    return str(code["id"])


@pytest.mark.parametrize("bay", ["garage", "bay-1"])
@pytest.mark.parametrize("event", ["qr_code_credited", "payment_captured"])
async def test_a_payment_to_a_code_another_install_made_is_unmatched_not_refunded(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    bay: str,
    event: str,
) -> None:
    """Razorpay sends every event to every webhook of the account: the other site's sale."""
    await static_qr_code(hass)  # bay 1 sells through its own code
    await _done(hass)
    foreign = await _code_of_another_install(hass, loaded_entry, bay)
    unmatched = async_capture_events(hass, EVENT_PAYMENT_UNMATCHED)
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    paid = standin.pay_qr_code(foreign, 1500)

    assert (await post_webhook(getattr(paid, event)())).status == 200
    await _done(hass)

    assert refund_amounts(standin, paid.payment_id) == []
    assert not failed
    assert [e.data["payment_id"] for e in unmatched] == [paid.payment_id]
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"payment_unmatched_{paid.payment_id}")
    assert plug_state(hass) == "off"
    assert await export_sessions(hass) == []


async def test_a_refused_sale_whose_refund_is_under_one_rupee_raises_no_repair(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    """₹0.50 (below the plan's minimum): kept as too_small, as docs/known-limitations says."""
    qr_id = await static_qr_code(hass)
    await _done(hass)
    paid = standin.pay_qr_code(qr_id, 50)

    assert (await post_webhook(paid.qr_code_credited())).status == 200
    await _done(hass)

    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"], row["too_small_paise"]) == (
        "failed",
        "below_minimum",
        "50",
    )
    assert refund_amounts(standin, paid.payment_id) == []
    assert not [key for key in ir.async_get(hass).issues if key[0] == DOMAIN]


async def test_without_automatic_refund_each_refused_payment_keeps_its_repair_until_refunded(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    """Two refused sales, then a good one: the owner is told of both until each is refunded."""
    hass.config_entries.async_update_entry(loaded_entry, options={"auto_refund": False})
    await _done(hass)
    qr_id = await static_qr_code(hass)
    await _done(hass)
    first, second = standin.pay_qr_code(qr_id, 200), standin.pay_qr_code(qr_id, 300)
    for paid in (first, second):  # below the ₹5 minimum
        assert (await post_webhook(paid.qr_code_credited())).status == 200
        await _done(hass)
    sessions = {r["payment_ids"]: r["session_id"] for r in await export_sessions(hass)}
    owed = {sessions[p.payment_id]: a for p, a in ((first, "₹2.00"), (second, "₹3.00"))}
    assert {s: i["amount"] for s, i in owed_repairs(hass).items()} == owed

    await pay(hass, standin, post_webhook)  # a later customer starts the bay
    await _done(hass)
    assert plug_state(hass) == "on"
    assert {s: i["amount"] for s, i in owed_repairs(hass).items()} == owed

    await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": first.payment_id, "amount": 1}, blocking=True
    )
    await _done(hass)
    assert {s: i["amount"] for s, i in owed_repairs(hass).items()} == {
        sessions[first.payment_id]: "₹1.00",
        sessions[second.payment_id]: "₹3.00",
    }
    await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": first.payment_id}, blocking=True
    )
    await _done(hass)
    assert refund_amounts(standin, first.payment_id) == [100, 100]
    assert set(owed_repairs(hass)) == {sessions[second.payment_id]}


async def test_a_refund_owed_is_told_again_at_start_up(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    """HA stopped right after storing the refused sale, before telling anyone: the ledger tells."""
    hass.config_entries.async_update_entry(loaded_entry, options={"auto_refund": False})
    await _done(hass)
    qr_id = await static_qr_code(hass)
    await _done(hass)
    paid = standin.pay_qr_code(qr_id, 300)

    async def stopped(*_: Any) -> None:
        """Nothing after the commit runs."""

    with patch.object(Endings, "async_tail", stopped):
        assert (await post_webhook(paid.qr_code_credited())).status == 200
        await _done(hass)
    assert owed_repairs(hass) == {}

    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await _done(hass)
    ((session_id, issue),) = owed_repairs(hass).items()
    assert (issue["amount"], issue["payment_ids"], issue["reason"]) == (
        "₹3.00",
        paid.payment_id,
        "below_minimum",
    )
    assert [r["session_id"] for r in await export_sessions(hass)] == [session_id]


async def test_revenue_counts_rupees_only_and_is_refreshed_after_a_refused_sale(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    """Automatic refund off: what is kept shows in Revenue at once; USD 15.00 is not ₹15."""
    hass.config_entries.async_update_entry(loaded_entry, options={"auto_refund": False})
    await _done(hass)
    qr_id = await static_qr_code(hass)
    await _done(hass)
    dollars = standin.pay_qr_code(qr_id, 1500, currency="USD")
    rupees = standin.pay_qr_code(qr_id, 300)  # below the minimum: refused, the owner's to refund

    assert (await post_webhook(rupees.qr_code_credited())).status == 200
    await _done(hass)
    assert float(hass.states.get("sensor.bay_1_revenue").state) == 3.0
    assert (await post_webhook(dollars.qr_code_credited())).status == 200
    await _done(hass)

    assert float(hass.states.get("sensor.bay_1_revenue").state) == 3.0
    sessions = {r["payment_ids"]: r["session_id"] for r in await export_sessions(hass)}
    assert owed_repairs(hass)[sessions[dollars.payment_id]]["amount"] == "15.00 USD"


async def test_the_codes_are_closed_before_the_webhook_goes(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    """A delivery while the codes are being closed is not answered as delivered (200)."""
    qr_id = await static_qr_code(hass)
    await _done(hass)
    raced = standin.pay_qr_code(qr_id, 1500)  # paid as the owner removes the account
    closing, answered = asyncio.Event(), threading.Event()
    close = qr_codes._closed

    def held_close(api: Any, code_id: str) -> bool:
        """The close, held at Razorpay until the delivery has been answered."""
        hass.loop.call_soon_threadsafe(closing.set)
        answered.wait(5)
        return close(api, code_id)

    with patch.object(qr_codes, "_closed", held_close):
        removal = hass.async_create_task(hass.config_entries.async_remove(loaded_entry.entry_id))
        async with asyncio.timeout(5):
            await closing.wait()
        answer = await post_webhook(raced.qr_code_credited())
        answered.set()
        assert (await removal)["require_restart"] is False

    assert answer.status == 503  # Razorpay keeps it (HA answers 200 to an unknown webhook)
    assert standin.qr_codes[qr_id]["status"] == "closed"


@pytest.mark.parametrize("auto_refund", [True, False])
async def test_refunds_still_owed_when_the_account_goes_are_named_in_the_log(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    caplog: pytest.LogCaptureFixture,
    auto_refund: bool,
) -> None:
    """A refund Razorpay has not accepted yet, or one left to the owner: nothing sends it now."""
    hass.config_entries.async_update_entry(loaded_entry, options={"auto_refund": auto_refund})
    await _done(hass)
    qr_id = await static_qr_code(hass)
    await _done(hass)
    paid = standin.pay_qr_code(qr_id, 300)  # below the minimum: refused
    standin.fail_next(f"/v1/payments/{paid.payment_id}/refund", 503)
    assert (await post_webhook(paid.qr_code_credited())).status == 200
    await _done(hass)
    assert refund_amounts(standin, paid.payment_id) == ([300] if auto_refund else [])

    assert await hass.config_entries.async_remove(loaded_entry.entry_id)
    await _done(hass)

    owed = f"Refund of ₹3.00 of payment {paid.payment_id} is still owed"
    (line,) = [r for r in caplog.records if r.getMessage().startswith(owed)]
    assert line.levelname == "WARNING"
