"""An action's ``amount`` in rupees that is no finite number (review #24, finding 11).

``create_payment_link`` and ``refund`` take rupees; an infinity or a NaN is refused by the
action's schema as invalid input, never an ``OverflowError`` or ``decimal.InvalidOperation``
out of the action, and nothing is asked of Razorpay.
"""

from __future__ import annotations

from typing import Any

import pytest
import voluptuous as vol
from homeassistant.core import HomeAssistant

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin

# (A quiet NaN was refused already: NaN * 100 is no whole number of paise.)
NOT_FINITE = ["Infinity", "-Infinity", "sNaN", float("inf")]


@pytest.mark.usefixtures("metered_entry")
@pytest.mark.parametrize("amount", NOT_FINITE)
@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("create_payment_link", {"bay": "bay-1", "plan": "kwh"}),
        ("refund", {"payment_id": "pay_any"}),
    ],
)
async def test_a_non_finite_amount_is_refused_as_invalid_not_a_crash(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    action: str,
    data: dict[str, Any],
    amount: object,
) -> None:
    calls = len(standin.calls)
    with pytest.raises(vol.Invalid, match="amount"):
        await hass.services.async_call(
            DOMAIN, action, {**data, "amount": amount}, blocking=True, return_response=True
        )
    assert len(standin.calls) == calls
