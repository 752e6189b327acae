"""The customer's pages at a site of metered bays: the measured power beside the load cap, and
a per-kWh plan's time cap cut to closing."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY
from .helpers import PostWebhook, create_link, settle
from .meter_helpers import ENERGY_PLAN_SUBENTRY, metered_switch_bay, move_meter
from .pages_helpers import LINKS, Customer
from .site_helpers import plug_bay, set_up_shop, shop_entry, shop_site

PLANS = ["p30", "kwh"]


@pytest.fixture
def config_entry(standin: RazorpayStandin) -> MockConfigEntry:
    """The shop with bays 1 and 2, metered (both read the plug's meter), rated 3.3 kW."""
    bays = [metered_switch_bay(plug_bay(n, PLANS)) for n in (1, 2)]
    return shop_entry(standin, [PLAN_SUBENTRY, ENERGY_PLAN_SUBENTRY, shop_site(), *bays])


@pytest.fixture
async def init_integration(hass: HomeAssistant, config_entry: MockConfigEntry) -> Any:
    """The shop's account set up, its plugs off and their meter at 12 kWh."""
    return await set_up_shop(hass, config_entry, 2, meter_kwh=12.0)


# The shop's time from the set-up on.
@pytest.mark.freeze_time("2026-12-07T12:00:00+05:30")
async def test_measured_power_beside_the_cap(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    paid = standin.pay_link((await create_link(hass, "bay-2", "p30"))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    await move_meter(hass, power_w=2750)

    page = await customer.get("bay=bay-1")
    assert 'data-state="full"' in page.text
    assert "2.8 kW of 5 kW in use." in page.text
    hindi = await customer.get("bay=bay-1&lang=hi")
    assert "5 kW में से 2.8 kW इस्तेमाल में।" in hindi.text


@pytest.mark.freeze_time("2026-12-07T20:30:00+05:30")
async def test_energy_time_cap_cut_to_closing(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
) -> None:
    page = await customer.get("bay=bay-1")
    assert "₹15 per unit (kWh), ₹10 to ₹500; at most 30 min" in page.text
    assert 'value="p30"' in page.text  # the half hour ends at closing: still sold

    answer = await customer.open_and_pay(plan="kwh", amount="15")
    assert answer.status == 200
    assert "(at most 30 minutes)" in answer.text
    (call,) = standin.calls_to(*LINKS)
    assert call.json["amount"] == 1500
