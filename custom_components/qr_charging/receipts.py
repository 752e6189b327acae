"""The customer's receipt: a printable view of one payment's documents.

Plain Python, no Home Assistant imports. ``receipt`` turns the documents the ledger issued for
a customer's payment (``invoices.Document``; a page shows only its own payment, since anyone
at the bay may add time to a running session) into what the receipt page prints: the
merchant, the site, what was sold, paid, refunded and the net, then each document with the
fields the law asks of it (a tax invoice: Rule 46 of the CGST Rules; a credit note: Rule 53).
Labels are text keys of the page's ``receipt`` section (English and Hindi live with the other
page texts); values are printed as they are. Rupees come from paise through ``Decimal``,
never a float.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from .invoices import (
    B2B_CREDIT_CAUSE,
    PAYMENT_CAUSE,
    SALES,
    Document,
    credited,
    replaceable,
)
from .invoices import refunded as refunded_by
from .tax import IST, STATES, DocumentKind

# What each kind of document is called on the receipt (a text key); a B2B invoice is a tax
# invoice made out to someone.
TITLES = {
    DocumentKind.INVOICE: "tax_invoice",
    DocumentKind.CREDIT_NOTE: "credit_note",
    DocumentKind.RECEIPT: "receipt",
    DocumentKind.REFUND_NOTE: "refund_note",
}


def rupees(paise: int) -> str:
    """Paise as printed on a document: ``₹1,234.50`` (always two decimals, exact)."""
    value = Decimal(paise).scaleb(-2)
    return f"₹{value:,.2f}"


def ist_time(at: float) -> str:
    """A moment as a document's date and time: India's, whatever the server's zone is."""
    return f"{ist_date(at)} {datetime.fromtimestamp(at, UTC).astimezone(IST):%H:%M} IST"


def ist_date(at: float) -> str:
    """A moment's date in India: ``26-03-2026``."""
    return f"{datetime.fromtimestamp(at, UTC).astimezone(IST):%d-%m-%Y}"


def kwh_text(energy_wh: int) -> str:
    """Watt-hours as kWh, three decimals (exact)."""
    return f"{Decimal(energy_wh).scaleb(-3):.3f}"


def percent(value: Decimal) -> str:
    """A rate as printed: ``9``, ``1.5``, ``0.125`` (CGST is half of 0.25 %)."""
    return f"{value.normalize():f}"


def state_text(code: str) -> str:
    """A place of supply as printed: ``29-Karnataka``."""
    return f"{code}-{STATES[code]}" if code in STATES else code


@dataclass(frozen=True, slots=True)
class Row:
    """One line: a label (a text key) and its value.

    The value is ``value`` as is, or, with ``text``, that text key filled in with ``params``
    (which also fill the label's placeholders, such as a rate).
    """

    label: str
    value: str = ""
    text: str = ""
    params: tuple[tuple[str, str], ...] = ()

    @property
    def values(self) -> dict[str, str]:
        """The placeholders' values, for the template."""
        return dict(self.params)


@dataclass(frozen=True, slots=True)
class Sheet:
    """One document as printed."""

    title: str  # text key (``TITLES``)
    number: str
    date: str
    rows: tuple[Row, ...]
    # A tax invoice credited in full when the customer asked for a B2B one: the credit note.
    cancelled_by: str = ""
    # Printed with the law's lines: reverse charge, computer-generated (tax documents only).
    taxed: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    """A session's receipt: the summary, then each document in the order issued."""

    merchant: str
    gstin: str
    site_name: str
    site_address: str
    bay_name: str
    date: str
    summary: tuple[Row, ...]
    sheets: tuple[Sheet, ...]
    # Whether the B2B form is offered: a B2C tax invoice of the session has something left.
    b2b_open: bool


def _sold_rows(documents: Sequence[Document]) -> list[Row]:
    """What the session's payments bought: minutes or kWh, the plan, a band not at 100 %."""
    firsts = [d for d in documents if d.kind in SALES and d.cause.startswith(PAYMENT_CAUSE)]
    seconds = sum(d.sold.seconds for d in firsts)
    energy_wh = sum(d.sold.energy_wh for d in firsts)
    # Energy sold by the kWh carries a time cap in ``seconds``: what was bought is the energy.
    if energy_wh:
        rows = [Row("sold", text="kwh_value", params=(("kwh", kwh_text(energy_wh)),))]
    else:
        rows = [Row("sold", text="minutes_value", params=(("minutes", str(seconds // 60)),))]
    plans = dict.fromkeys(d.sold.plan_name for d in firsts if d.sold.plan_name)
    if plans:
        rows.append(Row("plan", ", ".join(plans)))
    bands = dict.fromkeys(d.sold.band for d in firsts if d.sold.band != 100)
    if bands:
        rows.append(Row("band", ", ".join(f"{band} %" for band in bands)))
    return rows


def _description(doc: Document) -> Row:
    sold = doc.sold
    if sold.energy_wh:
        return Row(
            "description",
            text="charging_kwh",
            params=(("kwh", kwh_text(sold.energy_wh)), ("bay", sold.bay_name)),
        )
    return Row(
        "description",
        text="charging_minutes",
        params=(("minutes", str(sold.seconds // 60)), ("bay", sold.bay_name)),
    )


def _tax_rows(doc: Document) -> list[Row]:
    """Taxable value, the tax by kind with its rate, the total (paise to rupees, exact)."""
    amounts = doc.amounts
    rows = [Row("taxable_value", rupees(amounts.taxable))]
    if doc.inter_state:
        rate = (("rate", percent(Decimal(doc.rate_bp) / 100)),)
        rows.append(Row("igst", rupees(amounts.igst), params=rate))
    else:
        half = (("rate", percent(Decimal(doc.rate_bp) / 200)),)
        rows += [Row("cgst", rupees(amounts.cgst), params=half)]
        rows += [Row("sgst", rupees(amounts.sgst), params=half)]
    rows.append(Row("total", rupees(amounts.total)))
    return rows


def _supplier_rows(doc: Document) -> list[Row]:
    rows = [Row("supplier", doc.supplier_name)]
    if address := doc.supplier_address or doc.sold.site_address:
        rows.append(Row("supplier_address", address))
    rows.append(Row("gstin", doc.supplier_gstin))
    return rows


def _recipient_rows(doc: Document) -> list[Row]:
    recipient = doc.recipient
    if recipient is None:
        return []
    rows = [Row("recipient", recipient.name)]
    if recipient.address:
        rows.append(Row("recipient_address", recipient.address))
    return [*rows, Row("recipient_gstin", recipient.gstin)]


def _against(doc: Document, documents: Sequence[Document]) -> Row:
    """The document a credit (or refund) note is against: its number and date (Rule 53(1A)).

    Its date is the credited document's as found among ``documents``; one not found there
    (not expected: a note is issued against its own payment's document) prints the number.
    """
    number = doc.against or ""
    credited_doc = next((d for d in documents if number and d.number == number), None)
    if credited_doc is None:
        return Row("against", number)
    dated = (("number", number), ("date", ist_date(credited_doc.issued_at)))
    return Row("against", text="against_dated", params=dated)


def _sheet(doc: Document, documents: Sequence[Document]) -> Sheet:
    """One document with the fields its kind needs."""
    rows: list[Row]
    if doc.kind is DocumentKind.INVOICE:
        rows = [
            *_supplier_rows(doc),
            *_recipient_rows(doc),
            Row("place_of_supply", state_text(doc.place_of_supply)),
            Row("sac", doc.sac),
            _description(doc),
            *_tax_rows(doc),
        ]
    elif doc.kind is DocumentKind.CREDIT_NOTE:
        reason = "reason_b2b" if doc.cause.startswith(B2B_CREDIT_CAUSE) else "reason_refund"
        rows = [
            *_supplier_rows(doc),
            *_recipient_rows(doc),
            _against(doc, documents),
            Row("reason", text=reason),
            Row("place_of_supply", state_text(doc.place_of_supply)),
            Row("sac", doc.sac),
            *_tax_rows(doc),
        ]
    elif doc.kind is DocumentKind.RECEIPT:
        rows = [_description(doc), Row("amount", rupees(doc.amounts.total))]
    else:
        rows = [_against(doc, documents), Row("amount", rupees(doc.amounts.total))]
    return Sheet(
        TITLES[doc.kind],
        doc.number,
        ist_time(doc.issued_at),
        tuple(rows),
        _cancelled_by(doc, documents),
        taxed=doc.kind in (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE),
    )


def _cancelled_by(doc: Document, documents: Sequence[Document]) -> str:
    """The B2B credit note that took back the rest of an invoice credited in full, if any."""
    if doc.kind is not DocumentKind.INVOICE or credited(doc, documents) < doc.amounts.total:
        return ""
    notes = [
        d.number
        for d in documents
        if d.against == doc.number and d.cause.startswith(B2B_CREDIT_CAUSE)
    ]
    return notes[-1] if notes else ""


def open_payments(documents: Sequence[Document], now: float) -> list[str]:
    """The payments a B2B request would invoice at ``now``, in order.

    ``invoices.replaceable`` decides, the rule ``invoices.b2b`` issues by: this only says
    whether to offer the form, and for whom.
    """
    payment_ids = dict.fromkeys(d.payment_id for d in documents)
    return [
        payment_id
        for payment_id in payment_ids
        if replaceable([d for d in documents if d.payment_id == payment_id], now) is not None
    ]


def receipt(documents: Sequence[Document], merchant: str, now: float) -> Receipt | None:
    """A receipt from a payment's documents (as issued, in order); None without any.

    ``merchant`` names the seller when the documents carry no supplier name (an owner
    without tax details: the pages' merchant name).  ``now``: whether the B2B form is still
    offered (``open_payments``).
    """
    if not documents:
        return None
    first = documents[0]
    paid = sum(
        d.amounts.total for d in documents if d.kind in SALES and d.cause.startswith(PAYMENT_CAUSE)
    )
    refunded = refunded_by(documents)
    summary = [
        Row("bay", first.sold.bay_name),
        *_sold_rows(documents),
        Row("paid", rupees(paid)),
    ]
    if refunded:
        summary.append(Row("refunded", rupees(refunded)))
    summary.append(Row("net", rupees(paid - refunded)))
    return Receipt(
        merchant=first.supplier_name or merchant,
        gstin=first.supplier_gstin,
        site_name=first.sold.site_name,
        site_address=first.sold.site_address,
        bay_name=first.sold.bay_name,
        date=ist_time(first.issued_at),
        summary=tuple(summary),
        sheets=tuple(_sheet(d, documents) for d in documents),
        b2b_open=bool(open_payments(documents, now)),
    )
