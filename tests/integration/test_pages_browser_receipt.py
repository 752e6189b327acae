"""The receipt printed to PDF by headless Chromium, A4 and an 80 mm till roll, English and
Hindi; the PDF's text read back with pypdf.

Chromium: ``browser_helpers`` (skipped only when /usr/bin/chromium is missing).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pypdf import PdfReader

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .browser_helpers import PHONE, needs_chromium, shot
from .helpers import settle
from .pages_helpers import set_tax_details
from .tax_helpers import MAHARASHTRA_CUSTOMER, OWNER_GSTIN, tax_options

pytestmark = needs_chromium
# A4 is 210 mm wide, the roll 80 mm (a PDF's points: 72 to the inch).
WIDTHS_PT = {"a4": 595, "roll": 227}


async def _paid_page(hass: HomeAssistant, browser: Any, pages_url: str) -> tuple[Any, str]:
    """A customer pays ₹20 at bay 1 on the stand-in's checkout: their page and its address."""
    phone = await browser.new_page(viewport=PHONE, extra_http_headers={"Accept-Language": "en-IN"})
    await phone.goto(f"{pages_url}?bay=bay-1")
    await phone.get_by_role("button", name="Pay ₹20").click()
    await phone.get_by_role("button", name="Pay (test)").click()
    await phone.wait_for_url(f"{pages_url}?token=*")
    await settle(hass)
    await phone.wait_for_selector('[data-state="charging"]')
    return phone, str(phone.url)


@pytest.mark.parametrize("lang", ["en", "hi"])
@pytest.mark.parametrize("shape", ["a4", "roll"])
async def test_the_receipt_prints_with_the_invoice_and_its_tax(
    hass: HomeAssistant,
    browser: Any,
    pages_url: str,
    standin: RazorpayStandin,
    shape: str,
    lang: str,
) -> None:
    await set_tax_details(hass, tax_options())
    phone, url = await _paid_page(hass, browser, pages_url)
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    (link,) = standin.links.values()
    (invoice,) = await entry.runtime_data.books.store.async_documents(link["reference_id"])

    await phone.goto(f"{url}&receipt={shape}&lang={lang}")
    await shot(phone, f"receipt-{shape}-{lang}")
    pdf = await phone.pdf(prefer_css_page_size=True, print_background=True)

    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for printed in (invoice.number, OWNER_GSTIN, "999799", "16.95", "1.52", "1.53", "20.00"):
        assert printed in text, (printed, text)
    assert "Need a GST invoice" not in text  # the form and buttons are not printed
    assert round(float(reader.pages[0].mediabox.width)) == WIDTHS_PT[shape]
    if shape == "a4":
        assert len(reader.pages) == 1  # one payment: one sheet
    if lang == "en":
        assert "Tax invoice" in text
        assert "CGST @ 9%" in text
    else:
        assert "Tax invoice" not in text


async def test_a_business_gets_its_gst_invoice_from_the_form_in_the_browser(
    hass: HomeAssistant, browser: Any, pages_url: str, standin: RazorpayStandin
) -> None:
    """Typed on the phone (lower case, spaces): the invoice made out to no one is cancelled by
    a credit note and a new one is made out to the business, with IGST (another state)."""
    await set_tax_details(hass, tax_options())
    phone, url = await _paid_page(hass, browser, pages_url)
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    (link,) = standin.links.values()

    await phone.goto(f"{url}&receipt=a4")
    typed = f"{MAHARASHTRA_CUSTOMER[:5].lower()} {MAHARASHTRA_CUSTOMER[5:]}"
    await phone.get_by_label("GSTIN").fill(typed)
    await phone.get_by_label("Name (legal name of the business)").fill("Acme Fleet Pvt Ltd")
    await phone.get_by_label("Address", exact=True).fill("7 FC Road, Pune 411004")
    await phone.get_by_role("button", name="Get GST invoice").click()
    await phone.wait_for_selector("text=Acme Fleet Pvt Ltd")
    await shot(phone, "receipt-b2b")

    b2c, credit, b2b = await entry.runtime_data.books.store.async_documents(link["reference_id"])
    assert (credit.against, b2b.recipient and b2b.recipient.gstin) == (
        b2c.number,
        MAHARASHTRA_CUSTOMER,
    )
    text = await phone.inner_text("main")
    assert f"Cancelled by credit note {credit.number}" in text
    assert "27-Maharashtra" in text
    assert "IGST @ 18%" in text
    assert "Need a GST invoice" not in text  # nothing left to invoice to anyone else
