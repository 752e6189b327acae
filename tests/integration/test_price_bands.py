"""Time-of-day prices (issue #25): every sale is priced in the band of its moment, by the clock
of its bay's site, and a link's price holds for its payment.

The site is open around the clock in its own time zone (Asia/Kolkata, or New York, which has
DST; HA's own zone is another). HA's clock is frozen at local times around the bands' edges;
what is sold is read from the Razorpay stand-in's call log and the bay's session.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.sites import Site, site_to_data
from devtools.razorpay_standin import RazorpayStandin

from .const import BAY_SUBENTRY, PLAN_SUBENTRY, RATE_PLAN_SUBENTRY, with_plans
from .helpers import PostWebhook, entry_data, refund_amounts, settle, setup_plug
from .meter_helpers import ENERGY_PLAN_SUBENTRY, metered_switch_bay, setup_meter
from .pages_helpers import Customer, link_of, pay_link, static_qr_code

# 70% in solar hours, 120% in the evening to midnight; the plans' own price at other times.
BANDS = "09:00-16:00 70%, 18:00-24:00 120%"
PLANS = [
    {**plan, "data": {**plan["data"], "bands": BANDS}}
    for plan in (PLAN_SUBENTRY, RATE_PLAN_SUBENTRY, ENERGY_PLAN_SUBENTRY)
]
# Local times of a Monday (New York is on summer time since the day before) and the percent
# a sale then pays: each band's edges, and midnight.
EDGES = [
    ((8, 59, 59), 100),
    ((9, 0, 0), 70),
    ((15, 59, 59), 70),
    ((16, 0, 0), 100),
    ((23, 59, 59), 120),
    ((24, 0, 0), 100),
]
ZONES = ["Asia/Kolkata", "America/New_York"]


def _local(zone: str, hms: tuple[int, int, int]) -> datetime:
    """A local time of Monday 9 March 2026 in ``zone`` (24:00 is the next midnight)."""
    hours, minutes, seconds = hms
    day = datetime(2026, 3, 9, tzinfo=ZoneInfo(zone))
    return day + timedelta(hours=hours, minutes=minutes, seconds=seconds)


@pytest.fixture(params=ZONES)
def zone(request: pytest.FixtureRequest) -> str:
    """The site's time zone."""
    return str(request.param)


@pytest.fixture
async def loaded_entry(hass: HomeAssistant, standin: RazorpayStandin, zone: str) -> MockConfigEntry:
    """bay-1, a metered plug in a site of ``zone``, selling the three plans with ``BANDS``."""
    await hass.config.async_set_time_zone("Europe/London")  # HA's own: not the site's
    site = Site(site_id="default", name="Shop", time_zone=zone)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=standin.key_id,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[
            *PLANS,
            metered_switch_bay(with_plans(BAY_SUBENTRY, PLANS)),
            {
                "data": site_to_data(site),
                "subentry_type": "site",
                "title": "Shop",
                "unique_id": "default",
            },
        ],
        minor_version=2,
    )
    await setup_plug(hass)
    await setup_meter(hass, energy_kwh=12.0)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def _last_link(standin: RazorpayStandin) -> dict[str, Any]:
    """What the last payment link was asked for at Razorpay."""
    return standin.calls_to("POST", "/v1/payment_links")[-1].json


def _banded(paise: int, percent: int) -> int:
    return (paise * percent + 50) // 100


@pytest.mark.parametrize(("hms", "percent"), EDGES)
async def test_the_page_sells_at_the_band_of_the_moment(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
    zone: str,
    hms: tuple[int, int, int],
    percent: int,
) -> None:
    freezer.move_to(_local(zone, hms))
    page = await customer.get("bay=bay-1")
    # The page lists the plans' bands whatever the time.
    assert "09:00-16:00: ₹14 (30% off)" in page.text
    assert "18:00-24:00: ₹0.60 per minute (20% more)" in page.text
    # The button's total is priced as the server prices it: base rate, minutes, percent.
    assert f'data-rate="50" data-percent="{percent}"' in page.text

    # The same visitor's page: the fixed plan, then 20 minutes of the rate plan instead.
    ticket = page.ticket()
    await customer.post("bay=bay-1", {"plan": "p30", "ticket": ticket})
    fixed = _last_link(standin)
    assert fixed["amount"] == _banded(2000, percent)
    assert fixed["notes"].get("band") == (None if percent == 100 else str(percent))
    await customer.post("bay=bay-1", {"plan": "pm", "minutes": "20", "ticket": ticket})
    assert _last_link(standin)["amount"] == _banded(20 * 50, percent)  # rounded once
    # ₹30 of energy is ₹30 in any band; the band's price per unit sets the energy it buys.
    answer = await customer.post("bay=bay-1", {"plan": "kwh", "amount": "30", "ticket": ticket})
    assert _last_link(standin)["amount"] == 3000
    wh = -(-3000 * 1000 // _banded(1500, percent))
    assert f"You pay for {wh / 1000:.3f} kWh of charging" in answer.text


@pytest.mark.parametrize(("hms", "percent"), EDGES)
async def test_the_action_sells_at_the_band_of_the_moment(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
    zone: str,
    hms: tuple[int, int, int],
    percent: int,
) -> None:
    freezer.move_to(_local(zone, hms))

    async def link(**data: Any) -> dict[str, Any]:
        response = await hass.services.async_call(
            DOMAIN,
            "create_payment_link",
            {"bay": "bay-1", **data},
            blocking=True,
            return_response=True,
        )
        assert isinstance(response, dict)
        return response

    assert (await link(plan="p30"))["amount"] == _banded(2000, percent)
    assert (await link(plan="pm", minutes=20))["amount"] == _banded(20 * 50, percent)
    # A per-kWh amount stays the customer's: the band changes the energy it buys.
    energy = await link(plan="kwh", amount=30)
    assert energy["amount"] == 3000
    # Paid: the session is for the energy its amount bought at the band's price.
    paid = standin.pay_link(energy["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    session = loaded_entry.runtime_data.bays.runners["bay-1"].session
    assert session is not None
    per_kwh = _banded(1500, percent)
    assert session.price_per_kwh_paise == per_kwh
    assert session.energy_paid_wh == -(-3000 * 1000 // per_kwh)


@pytest.mark.parametrize(
    ("paid_at", "delivered_at", "percent"),
    [
        ((8, 59, 50), (9, 0, 30), 100),
        ((9, 0, 0), (9, 0, 30), 70),
        ((15, 59, 50), (16, 0, 30), 70),
        ((23, 59, 50), (24, 0, 30), 120),
    ],
)
async def test_a_static_qr_payment_buys_at_the_band_of_its_payment(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
    zone: str,
    paid_at: tuple[int, int, int],
    delivered_at: tuple[int, int, int],
    percent: int,
) -> None:
    freezer.move_to(_local(zone, paid_at) - timedelta(minutes=1))
    qr_id = await static_qr_code(hass)
    freezer.move_to(_local(zone, paid_at))
    paid = standin.pay_qr_code(qr_id, 1200)
    # Razorpay delivers it later, in another band.
    freezer.move_to(_local(zone, delivered_at))
    assert (await post_webhook(paid.qr_code_credited())).status == 200
    await settle(hass)

    runner = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.bays.runners["bay-1"]
    assert runner.session is not None
    assert runner.session.seconds == 1200 * 60 * 100 // (50 * percent)  # the exact band rate
    assert refund_amounts(standin, paid.payment_id) == []


async def test_a_link_keeps_its_price_when_the_band_ends_before_it_is_paid(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
    zone: str,
) -> None:
    freezer.move_to(_local(zone, (15, 59, 0)))
    answer = await customer.open_and_pay(plan="pm", minutes="20")
    link_id = link_of(standin, answer)
    assert standin.links[link_id]["amount"] == 700  # 20 minutes at ₹0.35

    freezer.move_to(_local(zone, (16, 1, 0)))  # the plan's own ₹0.50 now
    paid = await pay_link(hass, standin, post_webhook, link_id)

    runner = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.bays.runners["bay-1"]
    assert runner.session is not None
    assert runner.session.seconds == 20 * 60
    assert refund_amounts(standin, paid.payment_id) == []


async def test_the_poster_prints_the_bands_in_english_and_hindi(
    hass: HomeAssistant, customer: Customer, freezer: FrozenDateTimeFactory, zone: str
) -> None:
    freezer.move_to(_local(zone, (12, 0, 0)))  # in a band: the poster still prints base prices
    poster = (await customer.get("bay=bay-1&poster=a4")).text
    assert "30 min for ₹20" in poster
    assert "09:00-16:00: ₹14 (30% off)" in poster
    assert "09:00-16:00: ₹14 (30% छूट)" in poster
    assert "18:00-24:00: ₹0.60 प्रति मिनट (20% अधिक)" in poster
    assert "18:00-24:00: ₹18 per unit (kWh) (20% more)" in poster


async def test_a_top_up_is_priced_at_its_own_sale(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
    zone: str,
) -> None:
    freezer.move_to(_local(zone, (8, 59, 30)))
    first = link_of(standin, await customer.open_and_pay(plan="p30"))
    assert standin.links[first]["amount"] == 2000  # before the solar band
    await pay_link(hass, standin, post_webhook, first)
    runner = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.bays.runners["bay-1"]
    assert runner.session is not None
    until = runner.session.until
    assert until is not None

    # In the solar band (before the plug's meter is missed): the top-up is at 70%.
    freezer.move_to(_local(zone, (9, 0, 0)))
    page = await customer.get("bay=bay-1")
    assert "Add time for ₹14</button>" in page.text
    added = link_of(standin, await customer.pay_button("bay=bay-1"))
    assert standin.links[added]["amount"] == 1400
    paid = await pay_link(hass, standin, post_webhook, added)

    assert runner.session.until == pytest.approx(until + 1800)
    assert refund_amounts(standin, paid.payment_id) == []
