"""The pages of a bay at a site (issue #25) on a phone in headless Chromium: closed, its load
cap full, sold to closing with a price band listed, and the poster of a banded plan printed.

HA's clock is frozen (``freezer``) at the shop's wall-clock times; Chromium only renders. The
shop (``site_helpers``) is open 08:00-21:00 in India with a 5 kW cap; its bays are plugs rated
3.3 kW, so one powered bay leaves no room for another. Chromium and the screenshots:
``browser_helpers`` (``QR_CHARGING_SCREENSHOTS=<folder>``).
"""

from __future__ import annotations

from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from devtools.razorpay_standin import RazorpayStandin

from .browser_helpers import PHONE, needs_chromium, shot
from .const import PLAN_SUBENTRY, RATE_PLAN_SUBENTRY
from .helpers import PostWebhook, create_link, settle
from .site_helpers import at_the_shop, plug_bay, set_up_shop, shop_entry, shop_site

pytestmark = needs_chromium

# The per-minute plan (₹0.50, 10-120 minutes) at 70 % in solar hours, as in docs/sites.md.
BANDED_RATE_PLAN = {
    **RATE_PLAN_SUBENTRY,
    "data": {**RATE_PLAN_SUBENTRY["data"], "bands": "09:00-16:00 70%"},
}
PLANS = ["p30", "pm"]
SOLAR_BAND = "09:00-16:00: ₹0.35 per minute (30% off)"
SOLAR_BAND_HI = "09:00-16:00: ₹0.35 प्रति मिनट (30% छूट)"


@pytest.fixture
def config_entry(standin: RazorpayStandin) -> MockConfigEntry:
    """The shop with bays 1 and 2, both selling the half hour and the banded per-minute plan."""
    subentries = [
        PLAN_SUBENTRY,
        BANDED_RATE_PLAN,
        shop_site(),
        plug_bay(1, PLANS),
        plug_bay(2, PLANS),
    ]
    return shop_entry(standin, subentries)


@pytest.fixture
async def init_integration(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """The shop's account set up, its bays' plugs there and off."""
    return await set_up_shop(hass, config_entry, 2)


async def _phone(browser: Any, language: str) -> Any:
    """A phone's browser page asking for ``language`` first."""
    return await browser.new_page(viewport=PHONE, extra_http_headers={"Accept-Language": language})


async def test_a_closed_bay_says_when_it_opens_and_offers_no_pay(
    browser: Any, pages_url: str, freezer: FrozenDateTimeFactory
) -> None:
    at_the_shop(freezer, "2026-12-08 07:30:00")
    phone = await _phone(browser, "en-IN")
    await phone.goto(f"{pages_url}?bay=bay-1")
    await shot(phone, "bay-closed")

    status = phone.get_by_role("status")
    assert await status.get_attribute("data-state") == "closed"
    assert await status.locator("strong").inner_text() == "Closed"
    said = await status.inner_text()
    assert "This site is closed; nothing is sold now. It opens at 08:00." in said
    assert await phone.locator("form").count() == 0
    assert await phone.get_by_role("button", name="Pay").count() == 0


async def test_a_free_bay_of_a_full_site_in_hindi_says_when_power_is_free(
    hass: HomeAssistant,
    browser: Any,
    pages_url: str,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    at_the_shop(freezer, "2026-12-07 12:00:00")
    paid = standin.pay_link((await create_link(hass, "bay-2", "p30"))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    freezer.tick(60)  # bay 2 charges to 12:30: 29 minutes left

    phone = await _phone(browser, "hi-IN,hi;q=0.9,en;q=0.5")
    await phone.goto(f"{pages_url}?bay=bay-1")
    await shot(phone, "bay-full-hindi")

    status = phone.get_by_role("status")
    assert await status.get_attribute("data-state") == "full"
    assert await status.locator("strong").inner_text() == "बिजली ख़ाली नहीं"
    said = await status.inner_text()
    assert "इस जगह की सारी बिजली इस्तेमाल में है; अभी कुछ नहीं बेचा जा रहा।" in said
    assert "लगभग 29 मिनट में ख़ाली होगी।" in said
    assert "5 kW में से 3.3 kW इस्तेमाल में (रेटेड)।" in said
    assert await phone.locator("form").count() == 0


async def test_before_closing_only_what_ends_by_closing_is_offered(
    browser: Any, pages_url: str, freezer: FrozenDateTimeFactory
) -> None:
    at_the_shop(freezer, "2026-12-07 20:30:00")
    phone = await _phone(browser, "en-IN")
    await phone.goto(f"{pages_url}?bay=bay-1")
    await shot(phone, "bay-before-closing")

    assert await phone.get_by_role("status").get_attribute("data-state") == "free"
    body = await phone.locator("main").inner_text()
    assert "This site closes at 21:00: only charging that ends by then is sold." in body
    assert "₹0.50 per minute, 10 to 30 minutes" in body
    assert SOLAR_BAND in body  # listed whatever the hour

    minutes = phone.get_by_role("spinbutton")
    assert await minutes.get_attribute("max") == "30"  # 120 cut to the half hour left
    await minutes.fill("31")
    assert await minutes.evaluate("field => field.validity.rangeOverflow")
    await minutes.fill("30")
    assert await minutes.evaluate("field => field.validity.valid")


async def test_the_a4_poster_prints_the_plans_bands_on_one_sheet(
    browser: Any, pages_url: str, freezer: FrozenDateTimeFactory
) -> None:
    at_the_shop(freezer, "2026-12-07 20:30:00")
    sheet = await browser.new_page(viewport={"width": 794, "height": 1123})
    await sheet.emulate_media(media="print")
    await sheet.goto(f"{pages_url}?bay=bay-1&poster=a4")

    pdf = await sheet.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    # One sheet: the lone QR code gives way to the bands' lines (two sheets before).
    assert pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") == 1
    # No PDF text reader is installed: the printed page's own text is checked instead.
    printed = await sheet.locator("body").inner_text()
    assert SOLAR_BAND in printed
    assert SOLAR_BAND_HI in printed
    assert "₹0.50 per minute, 10 to 120 minutes" in printed  # every plan, uncut
