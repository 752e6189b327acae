"""Defects the fault schedules found, each pinned down on its own (test_fault_schedules.py).

Each test failed on the code before its fix.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.bay_runner import STORAGE_RETRY_S
from custom_components.qr_charging.hub import QrChargingHub
from custom_components.qr_charging.ledger import Changes, SessionRecord, SessionState

from .conftest import PLAN_PRICE, PostWebhook
from .helpers import create_link, export_sessions, pay, plug_state, refund_amounts, settle, tick
from .razorpay_standin import RazorpayStandin
from .test_storage_faults import failing_writes


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
    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await settle(hass)
    response = await post_webhook(delivery)
    assert (await response.json())["outcome"] in ("new_session", "duplicate")
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
    """
    with failing_writes(_decides):
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
