"""The webhook answers well within Razorpay's 5 seconds, however slow Razorpay's own API is.

Razorpay gives up on a delivery after 5 s and disables a webhook that keeps failing, so nothing
on the webhook's path may wait for Razorpay's API. Here every request to the stand-in is
answered only after 30 s, and deliveries that lead to calls to it (a refund for a bay that is
offline or a payment that came too late, a refund of a removed bay's session) are answered at
once: the time is measured on the event loop's clock around each request, and the calls they
cause are still waiting for their answer when the webhook has answered.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from devtools.razorpay_standin import RazorpayStandin

from .helpers import PostWebhook, altered, create_link, settle

RAZORPAY_LIMIT_S = 5.0
# Generous for a busy test machine, and still well inside Razorpay's limit.
BOUND_S = 2.0


async def _timed(hass: HomeAssistant, post: PostWebhook, webhook: object) -> tuple[int, float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    response = await post(webhook)
    return response.status, loop.time() - start


async def test_deliveries_are_answered_at_once_while_razorpay_takes_30_s(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    config_entry: MockConfigEntry,
) -> None:
    # The bay's plug is not there: bay-1 is offline, so a payment for it is refunded.
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    offline = standin.pay_link((await create_link(hass))["id"])
    late = standin.pay_link((await create_link(hass))["id"])
    await settle(hass)

    # From now on Razorpay's API answers every request after 30 s.
    standin.delay_next("/v1/", 30.0, times=1000)
    calls = len(standin.calls)
    deliveries = [
        offline.payment_link_paid(),
        offline.payment_captured(),
        altered(late.payment_captured(), {"created_at": int(time.time()) - 3600}),
    ]
    timings = [await _timed(hass, post_webhook, webhook) for webhook in deliveries]

    assert [status for status, _ in timings] == [200, 200, 200]
    assert max(seconds for _, seconds in timings) < BOUND_S < RAZORPAY_LIMIT_S
    # The refunds they led to did go to Razorpay, and are still waiting for its answer.
    refunds = [f"/v1/payments/{paid.payment_id}/refund" for paid in (offline, late)]
    for _ in range(200):
        if all(standin.calls_to("POST", path) for path in refunds):
            break
        await asyncio.sleep(0.01)
    assert all(standin.calls_to("POST", path) for path in refunds)
    assert len(standin.calls) > calls
    # Razorpay carried them out and holds its answers: the ledger still waits for them.
    refunds_ = config_entry.runtime_data.books.ledger.refunds.values()
    assert sorted(r.state.value for r in refunds_) == ["requested", "requested"]


@pytest.mark.usefixtures("loaded_entry")
async def test_a_refund_webhook_is_answered_at_once_while_razorpay_takes_30_s(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    paid = standin.pay_link((await create_link(hass))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    response = await hass.services.async_call(
        "qr_charging",
        "refund",
        {"payment_id": paid.payment_id},
        blocking=True,
        return_response=True,
    )
    assert response is not None

    standin.delay_next("/v1/", 30.0, times=1000)
    refund_id = str(response["refund_id"])
    status, seconds = await _timed(hass, post_webhook, standin.settle_refund(refund_id))

    assert status == 200
    assert seconds < BOUND_S
