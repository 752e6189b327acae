"""A customer in headless Chromium: bay page, Pay, the stand-in's checkout, the countdown; the
bay's display and its dynamic QR code.

Chromium and the screenshots: ``browser_helpers`` (``QR_CHARGING_SCREENSHOTS=<folder>``).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import zxingcpp
from homeassistant.core import HomeAssistant
from PIL import Image

from devtools.razorpay_standin import RazorpayStandin
from devtools.razorpay_standin.standin import upi_intent

from .browser_helpers import PHONE, needs_chromium, shot
from .const import FIXED_AND_PER_MINUTE
from .helpers import settle
from .pages_helpers import dynamic_bay, reconfigure_bay

pytestmark = needs_chromium


async def test_a_customer_pays_and_sees_the_countdown(
    hass: HomeAssistant, browser: Any, pages_url: str, standin: RazorpayStandin
) -> None:
    phone = await browser.new_page(viewport=PHONE, extra_http_headers={"Accept-Language": "en-IN"})
    await phone.goto(f"{pages_url}?bay=bay-1")
    await shot(phone, "bay-free")
    assert await phone.locator("h1").inner_text() == "Bay 1"

    await phone.get_by_role("button", name="Pay ₹20").click()
    await phone.wait_for_url(f"{standin.base_url}/pay/*")  # the meta refresh to Razorpay
    await phone.get_by_role("button", name="Pay (test)").click()
    await phone.wait_for_url(f"{pages_url}?token=*")  # back through the link's callback_url
    await settle(hass)
    await phone.wait_for_selector('[data-state="charging"]')
    countdown = phone.locator("#countdown")
    first = await countdown.inner_text()
    assert first.startswith(("30:00", "29:5"))
    await phone.wait_for_function(
        "t => document.getElementById('countdown').textContent !== t", arg=first
    )
    await shot(phone, "session-charging")

    await phone.goto(f"{pages_url}?bay=bay-1&lang=hi")
    assert 'data-state="busy"' in await phone.content()
    await shot(phone, "bay-busy-hindi")


async def test_the_posters_qr_code_opens_the_bay_page(browser: Any, pages_url: str) -> None:
    for size, width in (("a4", 794), ("a5", 559)):
        sheet = await browser.new_page(viewport={"width": width, "height": 1123})
        await sheet.goto(f"{pages_url}?bay=bay-1&poster={size}")
        png = await sheet.locator(".qr").screenshot()
        (code,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
        assert code.text == f"{pages_url}?bay=bay-1"
        if size == "a4":
            await shot(sheet, "poster-a4")
        pdf = await sheet.pdf(format=size.upper())
        assert pdf.startswith(b"%PDF")


@pytest.mark.parametrize("bay_plans", [FIXED_AND_PER_MINUTE])
async def test_the_poster_prints_the_static_upi_code_for_upi_apps(
    hass: HomeAssistant, browser: Any, pages_url: str, standin: RazorpayStandin
) -> None:
    _, data = await reconfigure_bay(hass, static_qr=True)
    sheet = await browser.new_page(viewport={"width": 794, "height": 1123})
    await sheet.goto(f"{pages_url}?bay=bay-1&poster=a4", wait_until="networkidle")

    codes = zxingcpp.read_barcodes(Image.open(io.BytesIO(await sheet.screenshot(full_page=True))))
    # The page's code for the phone's camera, and Razorpay's UPI code for UPI apps.
    assert sorted(code.text for code in codes) == sorted(
        [f"{pages_url}?bay=bay-1", upi_intent(standin.qr_codes[data["qr_code_id"]])]
    )
    pdf = await sheet.pdf(format="A4")
    assert pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") == 1  # one sheet
    await shot(sheet, "poster-a4-upi")


async def _code(page: Any) -> str:
    """What the QR code on a page says, read from a screenshot as a phone's camera would."""
    png = await page.locator(".qr").screenshot()
    (code,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(code.text)


async def test_the_display_reloads_with_a_new_code_the_bay_page_accepts(
    hass: HomeAssistant, browser: Any, pages_url: str
) -> None:
    data = await dynamic_bay(hass, validity_s=6)  # OCPP's shortest: the test sees it change
    screen = await browser.new_page(viewport={"width": 1280, "height": 720})
    await screen.goto(f"{pages_url}?display={data['display_token']}")
    await shot(screen, "display")
    first = await _code(screen)
    assert first.startswith(f"{pages_url}?bay=bay-1&totp=")

    phone = await browser.new_page(viewport=PHONE)
    await phone.goto(first)
    assert await phone.get_by_role("button", name="Pay ₹20").count() == 1
    await phone.goto(f"{pages_url}?bay=bay-1")  # the printed address alone does not sell
    assert await phone.get_by_role("button", name="Pay ₹20").count() == 0

    async with screen.expect_event("load", timeout=10_000):
        pass  # the display's own refresh, before its code is replaced
    second = await _code(screen)
    assert second != first
    await phone.goto(second)
    assert await phone.get_by_role("button", name="Pay ₹20").count() == 1
