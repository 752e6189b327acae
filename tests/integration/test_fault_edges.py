"""Defects the fault schedules found, each pinned down on its own (test_fault_schedules.py).

Each test failed on the code before its fix.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.hub import QrChargingHub

from .conftest import PostWebhook
from .helpers import create_link, export_sessions, settle
from .razorpay_standin import RazorpayStandin


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
