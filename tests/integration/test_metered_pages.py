"""The customer's pages at a metered bay (issue #24): buying energy over HTTP, and the session.

The bay is the metered plug of ``meter_helpers`` (a template switch, template sensors over
input_numbers); the customer is a browser on the pages' webhook (``pages_helpers``).
"""

from __future__ import annotations

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY
from .helpers import PostWebhook, refund_amounts, tick
from .meter_helpers import ENERGY_PLAN_SUBENTRY, charge, meter_reports, move_meter
from .pages_helpers import (
    EXTERNAL_URL,
    Customer,
    assert_self_contained,
    callback_query,
    link_of,
    pay_link,
)


@pytest.fixture
async def customer(
    hass: HomeAssistant, metered_entry: MockConfigEntry, hass_client_no_auth: ClientSessionGenerator
) -> Customer:
    """A customer's browser at the metered bay."""
    await hass.config.async_update(external_url=EXTERNAL_URL)
    return Customer(hass, hass_client_no_auth)


async def test_the_bay_page_offers_energy_with_its_price_and_cap(customer: Customer) -> None:
    page = await customer.get("bay=bay-1")
    assert page.status == 200
    assert_self_contained(page)
    assert "₹15 per unit (kWh), ₹10 to ₹500; at most 120 min" in page.text
    assert 'name="amount" min="10.0" max="500.0"' in page.text
    assert "30 min for ₹20" in page.text  # the time plan as well
    hindi = await customer.get("bay=bay-1&lang=hi")
    assert "₹15 प्रति यूनिट (kWh), ₹10 से ₹500; अधिकतम 120 मिनट" in hindi.text


async def test_an_amount_buys_its_energy_and_odd_amounts_are_refused(
    customer: Customer, standin: RazorpayStandin
) -> None:
    for odd in ("abc", "9.999", "1e3", "-5", "", "9.99", "500.01", "٣٠", "30.5.1"):
        answer = await customer.open_and_pay(plan="kwh", amount=odd)
        assert answer.status == 400, odd
        assert "Choose an amount from ₹10 to ₹500." in answer.text
    assert standin.links == {}

    answer = await customer.open_and_pay(plan="kwh", amount="30.50")
    assert answer.status == 200
    link = standin.links[link_of(standin, answer)]
    assert link["amount"] == 3050
    # ₹30.50 at ₹15 a unit: 2033.33 Wh, rounded up for the customer.
    assert "You pay for 2.034 kWh of charging (at most 120 minutes)" in answer.text


async def test_the_session_page_shows_energy_power_cost_and_the_vehicle_full_refund(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    link_id = link_of(standin, await customer.open_and_pay(plan="kwh", amount="30"))
    paid = await pay_link(hass, standin, post_webhook, link_id)
    await charge(hass, freezer, power_w=812, energy_kwh=12.5, seconds=2220)
    query = callback_query(standin, link_id)

    page = await customer.get(query)
    assert 'data-state="charging"' in page.text
    assert "2.000 kWh at ₹15 per unit" in page.text
    assert '<dd id="energy">0.500 kWh</dd>' in page.text
    assert '<dd id="power">812 W</dd>' in page.text
    assert '<dd id="used">₹7.50</dd>' in page.text

    await move_meter(hass, power_w=3)
    for _ in range(16):  # 2 minutes' grace, then 3 below 10 W; the meter reports meanwhile
        await tick(hass, freezer, 20)
        await meter_reports(hass)
    assert refund_amounts(standin, paid.payment_id) == [2250]  # 1500 Wh of 2000 unused

    page = await customer.get(query)
    assert 'data-state="ended"' in page.text
    assert "Vehicle full — ₹22.50 refunded." in page.text
    assert '<dd id="used">₹7.50</dd>' in page.text
    hindi = await customer.get(f"{query}&lang=hi")
    assert "वाहन भर गया — ₹22.50 लौटाए गए।" in hindi.text


async def test_the_display_says_the_price_per_unit(
    customer: Customer, metered_entry: MockConfigEntry
) -> None:
    token = metered_entry.runtime_data.bays.runners["bay-1"].bay.display_token
    screen = await customer.get(f"display={token}")
    assert screen.status == 200
    assert "₹15 per unit (kWh)" in screen.text
    assert "₹15 प्रति यूनिट (kWh)" in screen.text


async def test_a_plug_without_a_meter_never_offers_energy(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    standin: RazorpayStandin,
) -> None:
    await hass.config.async_update(external_url=EXTERNAL_URL)
    browser = Customer(hass, hass_client_no_auth)
    page = await browser.get("bay=bay-1")
    assert "per unit" not in page.text
    answer = await browser.open_and_pay(plan="kwh", amount="30")
    assert answer.status == 400
    assert standin.links == {}


@pytest.fixture
def bay_plans() -> list[dict[str, object]]:
    """The plug without a meter (``loaded_entry``) offers the energy plan too."""
    return [PLAN_SUBENTRY, ENERGY_PLAN_SUBENTRY]
