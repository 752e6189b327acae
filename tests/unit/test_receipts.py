"""The receipt's view of a session's documents (``receipts``): amounts, labels, B2B, credits."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from custom_components.qr_charging.receipts import (
    Receipt,
    Row,
    Sheet,
    open_payments,
    receipt,
    rupees,
)
from custom_components.qr_charging.tax import Recipient, TaxSettings
from tests.integration.receipt_helpers import AT, SITE_ADDRESS, SOLD, Issuer, registered
from tests.integration.tax_helpers import (
    KARNATAKA_CUSTOMER,
    MAHARASHTRA_CUSTOMER,
    OWNER_ADDRESS,
    OWNER_GSTIN,
    OWNER_NAME,
)

COMPONENT = Path(__file__).parents[2] / "custom_components" / "qr_charging"
TEMPLATE = COMPONENT / "templates" / "receipt.html.j2"


def _texts(lang: str) -> dict[str, str]:
    data = json.loads((COMPONENT / "translations" / f"{lang}.json").read_text("utf-8"))
    texts: dict[str, str] = data["selector"]["page_receipt"]["options"]
    return texts


def _rows(rows: tuple[Row, ...]) -> dict[str, str]:
    """Label → value of rows whose labels do not repeat (a value given by a text: its key)."""
    return {row.label: row.value or row.text for row in rows}


def _view(issuer: Issuer, merchant: str = "Pay and charge") -> Receipt:
    view = receipt(issuer.documents, merchant, AT + 60)
    assert view is not None
    return view


def test_rupees_are_exact_paise() -> None:
    assert rupees(2000) == "₹20.00"
    assert rupees(1695) == "₹16.95"
    assert rupees(1) == "₹0.01"
    assert rupees(123_456_789) == "₹1,234,567.89"


@given(st.integers(min_value=0, max_value=10**12))
def test_rupees_read_back_to_the_paisa(paise: int) -> None:
    text = rupees(paise)
    assert Decimal(text.removeprefix("₹").replace(",", "")) * 100 == paise


def test_a_tax_invoice_has_rule_46s_fields_and_the_split_to_the_paisa() -> None:
    issuer = Issuer()
    invoice = issuer.pay(2000, registered())
    view = _view(issuer)

    # ₹20 at 18 %: taxable 2000 * 100 / 118 = 1694.9 → ₹16.95; tax 305 paise, CGST the half
    # rounded down, SGST the odd paisa.
    (sheet,) = view.sheets
    rows = _rows(sheet.rows)
    assert sheet.title == "tax_invoice"
    assert sheet.number == invoice.number == "INV/2627/1"
    assert sheet.date == "01-04-2026 10:00 IST"
    assert sheet.taxed
    assert rows["supplier"] == OWNER_NAME
    # Rule 46(a): the supplier's address as registered (the site's is in the head).
    assert rows["supplier_address"] == OWNER_ADDRESS
    assert rows["gstin"] == OWNER_GSTIN
    assert rows["place_of_supply"] == "29-Karnataka"
    assert rows["sac"] == "999799"
    assert rows["taxable_value"] == "₹16.95"
    assert rows["cgst"] == "₹1.52"
    assert rows["sgst"] == "₹1.53"
    assert rows["total"] == "₹20.00"
    assert "igst" not in rows
    assert "recipient" not in rows
    cgst = next(row for row in sheet.rows if row.label == "cgst")
    assert cgst.values == {"rate": "9"}
    description = next(row for row in sheet.rows if row.label == "description")
    assert description.text == "charging_minutes"
    assert description.values == {"minutes": "30", "bay": "Bay 1"}
    assert view.merchant == OWNER_NAME
    assert view.gstin == OWNER_GSTIN
    assert (view.site_name, view.site_address, view.bay_name) == ("MG Road", SITE_ADDRESS, "Bay 1")
    assert _rows(view.summary) == {
        "bay": "Bay 1",
        "sold": "minutes_value",
        "plan": "30 minutes",
        "paid": "₹20.00",
        "net": "₹20.00",
    }
    assert view.b2b_open


def test_half_of_a_quarter_percent_is_printed_whole() -> None:
    issuer = Issuer()
    issuer.pay(10_000, registered(rate="0.25"))
    (sheet,) = _view(issuer).sheets
    rates = {row.label: row.values["rate"] for row in sheet.rows if row.label in ("cgst", "sgst")}
    assert rates == {"cgst": "0.125", "sgst": "0.125"}


def test_a_refund_shows_its_credit_note_against_the_invoice() -> None:
    issuer = Issuer()
    invoice = issuer.pay(2000, registered())
    note = issuer.refund(500)
    view = _view(issuer)

    first, credit = view.sheets
    assert credit.title == "credit_note"
    assert credit.number == note.number == "INV/2627/C1"
    rows = _rows(credit.rows)
    (against,) = [row for row in credit.rows if row.label == "against"]
    assert (against.text, against.values) == (
        "against_dated",
        {"number": invoice.number, "date": "01-04-2026"},
    )
    assert rows["reason"] == "reason_refund"
    # The credit's split: the difference of the cumulative splits (₹5 of ₹20 at 18 %).
    assert rows["taxable_value"] == "₹4.24"
    assert (rows["cgst"], rows["sgst"]) == ("₹0.38", "₹0.38")
    assert rows["total"] == "₹5.00"
    assert not first.cancelled_by  # a refund is no replacement
    summary = _rows(view.summary)
    assert (summary["paid"], summary["refunded"], summary["net"]) == ("₹20.00", "₹5.00", "₹15.00")
    assert view.b2b_open  # ₹15 left to invoice to a business


def test_a_credit_note_prints_the_date_of_the_invoice_it_credits() -> None:
    """Rule 53(1A): a credit note names the invoice it credits by number and date. An invoice
    of 26 March credited on 1 April prints 26-03-2026; a note against a document not among
    the payment's prints the number only."""
    issuer = Issuer()
    invoice = issuer.pay(2000, registered())
    issuer.documents[0] = replace(invoice, issued_at=invoice.issued_at - 6 * 86_400)
    issuer.refund(500)
    _, credit = _view(issuer).sheets
    (against,) = [row for row in credit.rows if row.label == "against"]
    assert against.values == {"number": invoice.number, "date": "26-03-2026"}
    assert _texts("en")[against.text].format(**against.values) == (
        f"{invoice.number} of 26-03-2026"
    )
    assert "26-03-2026" in _texts("hi")[against.text].format(**against.values)

    orphan = receipt(issuer.documents[1:], "Pay and charge", AT + 60)
    assert orphan is not None
    (alone,) = [row for row in orphan.sheets[0].rows if row.label == "against"]
    assert (alone.value, alone.text) == (invoice.number, "")


def test_a_b2b_invoice_replaces_the_b2c_one_cancelled_by_its_credit_note() -> None:
    issuer = Issuer()
    settings = registered()
    issuer.pay(2000, settings)
    issuer.refund(500)
    note, invoice = issuer.b2b(Recipient(KARNATAKA_CUSTOMER, "Acme Fleet", "Hubli"), settings)
    view = _view(issuer)

    b2c, refund, credit, b2b = view.sheets
    assert b2c.cancelled_by == note.number == "INV/2627/C2"
    assert not refund.cancelled_by
    assert _rows(credit.rows)["reason"] == "reason_b2b"
    assert _rows(credit.rows)["total"] == "₹15.00"
    rows = _rows(b2b.rows)
    assert b2b.number == invoice.number == "INV/2627/2"
    assert rows["recipient"] == "Acme Fleet"
    assert rows["recipient_address"] == "Hubli"
    assert rows["recipient_gstin"] == KARNATAKA_CUSTOMER
    assert rows["total"] == "₹15.00"
    # Only refunds count as refunded: the B2B credit moves the invoice, the money stays.
    summary = _rows(view.summary)
    assert (summary["paid"], summary["refunded"], summary["net"]) == ("₹20.00", "₹5.00", "₹15.00")
    assert not view.b2b_open


def test_a_customer_in_another_state_is_charged_igst() -> None:
    issuer = Issuer()
    settings = registered()
    issuer.pay(2000, settings)
    _, _invoice = issuer.b2b(Recipient(MAHARASHTRA_CUSTOMER, "Acme Fleet"), settings)
    b2b = _view(issuer).sheets[-1]

    rows = _rows(b2b.rows)
    assert rows["place_of_supply"] == "27-Maharashtra"
    assert rows["igst"] == "₹3.05"
    assert next(r for r in b2b.rows if r.label == "igst").values == {"rate": "18"}
    assert "cgst" not in rows
    assert "recipient_address" not in rows  # none given


def test_without_a_gstin_a_receipt_and_refund_note_without_tax() -> None:
    issuer = Issuer()
    issuer.pay(2000, TaxSettings())
    issuer.refund(2000)
    view = _view(issuer, merchant="Sharma Charging")

    paid, refund = view.sheets
    assert (paid.title, paid.number) == ("receipt", "INV/2627/R1")
    assert (refund.title, refund.number) == ("refund_note", "INV/2627/F1")
    assert not paid.taxed
    assert not refund.taxed
    assert _rows(paid.rows) == {"description": "charging_minutes", "amount": "₹20.00"}
    assert _rows(refund.rows) == {"against": "against_dated", "amount": "₹20.00"}
    assert refund.rows[0].values == {"number": "INV/2627/R1", "date": "01-04-2026"}
    assert view.merchant == "Sharma Charging"  # no supplier name on the documents
    assert view.gstin == ""
    assert _rows(view.summary)["net"] == "₹0.00"
    assert not view.b2b_open


def test_energy_top_ups_and_a_price_band() -> None:
    issuer = Issuer()
    settings = TaxSettings()
    # An energy plan's ``seconds`` is its time cap: not what was bought.
    issuer.pay(3000, settings, replace(SOLD, seconds=7200, energy_wh=2500, band=80))
    issuer.pay(1200, settings, replace(SOLD, seconds=3600, energy_wh=1000, band=80), "pay_2")
    view = _view(issuer)

    (sold,) = [row for row in view.summary if row.label == "sold"]
    assert (sold.text, sold.values) == ("kwh_value", {"kwh": "3.500"})
    assert _rows(view.summary)["band"] == "80 %"
    assert _rows(view.summary)["paid"] == "₹42.00"
    assert view.sheets[1].rows[0].values == {"kwh": "1.000", "bay": "Bay 1"}


def test_no_documents_no_receipt() -> None:
    assert receipt([], "Pay and charge", AT) is None


def _keys(sheets: tuple[Sheet, ...], summary: tuple[Row, ...]) -> set[str]:
    rows = [*summary, *(row for sheet in sheets for row in sheet.rows)]
    return (
        {row.label for row in rows}
        | {row.text for row in rows if row.text}
        | {sheet.title for sheet in sheets}
    )


def test_every_label_has_its_english_and_hindi_text() -> None:
    issuer = Issuer()
    settings = registered()
    issuer.pay(2000, settings)
    issuer.refund(500)
    issuer.b2b(Recipient(MAHARASHTRA_CUSTOMER, "Acme", "Pune"), settings)
    plain = Issuer()
    plain.pay(2000, TaxSettings(), replace(SOLD, energy_wh=900, band=120))
    plain.refund(100)
    used = set()
    for view in (_view(issuer), _view(plain)):
        used |= _keys(view.sheets, view.summary)
    template = set(re.findall(r't\("receipt", "(\w+)"', TEMPLATE.read_text("utf-8")))

    english, hindi = _texts("en"), _texts("hi")
    assert used | template <= english.keys()
    assert english.keys() == hindi.keys()
    for key, text in english.items():
        # The same placeholders in both languages, and Hindi of its own (not the English).
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", hindi[key]))
    assert hindi["tax_invoice"] == "टैक्स इनवॉइस"
    assert english["tax_invoice"] == "Tax invoice"


NOW = AT + 60
DAY = 86_400


def test_the_payments_a_b2b_request_would_take() -> None:
    issuer = Issuer()
    settings = registered()
    issuer.pay(2000, settings)
    issuer.pay(2000, settings, payment_id="pay_2")
    issuer.pay(2000, settings, payment_id="pay_3")
    assert open_payments(issuer.documents, NOW) == ["pay_1", "pay_2", "pay_3"]
    # The form is offered as long as invoices.b2b would issue (30 days, the same year).
    assert open_payments(issuer.documents, AT + 30 * DAY) == ["pay_1", "pay_2", "pay_3"]
    assert open_payments(issuer.documents, AT + 30 * DAY + 60) == []
    issuer.refund(2000)  # pay_1 refunded whole: nothing left of it
    issuer.refund(1999, "r2", "pay_2")  # a paisa left of pay_2
    assert open_payments(issuer.documents, NOW) == ["pay_2", "pay_3"]
    issuer.b2b(Recipient(KARNATAKA_CUSTOMER, "Acme"), settings)
    assert open_payments(issuer.documents, NOW) == []
    plain = Issuer()
    plain.pay(2000, TaxSettings())
    assert open_payments(plain.documents, NOW) == []  # receipts: no tax invoice to replace
