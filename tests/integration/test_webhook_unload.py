"""Razorpay's deliveries while the account unloads or is unloaded: 503, then taken when
delivered again (HA itself answers 200 to a webhook it does not know).

Both were found by the fault schedules; each test failed on the code before its fix.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.hub import QrChargingHub
from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.fixtures import Webhook

from .helpers import PostWebhook, create_link, export_sessions, settle


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
