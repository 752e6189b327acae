"""Selling charging time through a bay's static UPI QR code (paid at any amount, at the rate)."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .const import FIXED_AND_PER_MINUTE
from .helpers import PostWebhook, refund_amounts, settle
from .pages_helpers import Customer, reconfigure_bay, static_qr_code


@pytest.fixture
def bay_plans() -> list[dict[str, Any]]:
    """Bay 1 offers the fixed half hour and ₹0.50 a minute: a static QR code sells at the rate."""
    return FIXED_AND_PER_MINUTE


async def _turn_on_static_qr(hass: HomeAssistant) -> tuple[Any, dict[str, Any]]:
    """Tick "Static UPI QR code" in bay 1's form; return the flow's answer and the bay's data."""
    return await reconfigure_bay(hass, static_qr=True)


async def test_static_qr_code_buys_time_at_the_rate(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    qr_id = await static_qr_code(hass)
    (call,) = standin.calls_to("POST", "/v1/payments/qr_codes")
    assert call.json | {"notes": None} == {
        "type": "upi_qr",
        "name": "Bay 1",
        "usage": "multiple_use",
        "fixed_amount": False,
        "description": "Bay 1",
        "notes": None,
    }

    paid = standin.pay_qr_code(qr_id, 1500)  # ₹15 at ₹0.50 a minute: 30 minutes
    assert (await post_webhook(paid.qr_code_credited())).status == 200
    assert (await post_webhook(paid.payment_captured())).status == 200
    await settle(hass)

    runner = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.bays.runners["bay-1"]
    assert runner.session is not None
    assert runner.session.seconds == 1800
    assert runner.session.payment_ids == [paid.payment_id]
    assert 'data-state="busy"' in (await customer.get("bay=bay-1")).text

    # A second payment to the QR code while the bay is busy: its payer saw no page.
    again = standin.pay_qr_code(qr_id, 1000)
    assert (await post_webhook(again.payment_captured())).status == 200  # notes find the bay
    await settle(hass)
    assert refund_amounts(standin, again.payment_id) == [1000]
    assert runner.session.seconds == 1800


async def test_static_qr_code_below_the_minimum_is_refunded(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    qr_id = await static_qr_code(hass)
    small = standin.pay_qr_code(qr_id, 400)  # 8 minutes' worth; the plan sells 10 at least
    assert (await post_webhook(small.qr_code_credited())).status == 200
    await settle(hass)

    assert refund_amounts(standin, small.payment_id) == [400]
    (refund,) = standin.refunds.values()
    assert refund["notes"]["reason"] == "below_minimum"
    assert 'data-state="free"' in (await customer.get("bay=bay-1")).text


async def test_an_account_without_qr_codes_is_told_on_the_form(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin
) -> None:
    standin.refuse_qr_codes = True

    result, data = await _turn_on_static_qr(hass)

    assert result["errors"] == {"static_qr": "static_qr_unavailable"}
    assert "qr_code_id" not in data
