"""Which documents are issued (``invoices``): sales, credits that add up, B2B invoices.

Numbers are given here as the store would (each document its serial in issue order).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.qr_charging.invoices import (
    B2BRefused,
    Document,
    RefundDue,
    SaleDue,
    Sold,
    b2b,
    credited,
    live_sale,
    refund_credit,
    refunded,
    replaceable,
    sale,
)
from custom_components.qr_charging.tax import (
    IST,
    DocumentKind,
    Recipient,
    TaxSettings,
    parse_recipient,
    parse_settings,
    split,
)
from tests.integration.tax_helpers import (
    KARNATAKA_CUSTOMER,
    MAHARASHTRA_CUSTOMER,
    OWNER_GSTIN,
    tax_options,
)

NOW = 1_796_000_000.0
DAY = 86_400
SETTINGS = parse_settings(tax_options())
RECEIPTS = TaxSettings(legal_name="Corner shop")
SOLD = Sold("bay-1", "Bay 1", plan_name="30 minutes", seconds=1800)
ACME_PUNE = parse_recipient(MAHARASHTRA_CUSTOMER, "Acme Fleet", "Pune")
ACME_BLR = parse_recipient(KARNATAKA_CUSTOMER, "Acme Fleet", "Bengaluru")


class Numbering:
    """The store's numbering, in memory: each document the next serial in issue order."""

    def __init__(self) -> None:
        self.documents: list[Document] = []

    def issue(self, doc: Document | None) -> Document | None:
        if doc is None:
            return None
        serial = len(self.documents) + 1
        numbered = replace(doc, number=f"N/{serial}", serial=serial)
        self.documents.append(numbered)
        return numbered

    def of(self, payment_id: str) -> list[Document]:
        return [d for d in self.documents if d.payment_id == payment_id]


def _sale(books: Numbering, payment: str, amount: int, settings: TaxSettings = SETTINGS) -> None:
    due = SaleDue(payment, "s-1", amount, NOW, SOLD, settings)
    books.issue(sale(due, NOW))


def _refund(books: Numbering, payment: str, key: str, amount: int) -> Document | None:
    due = RefundDue(key, payment, amount, refunded(books.of(payment)) + amount)
    return books.issue(refund_credit(due, books.of(payment), NOW))


def test_a_registered_owners_sale_is_a_b2c_invoice_taxed_in_their_state() -> None:
    books = Numbering()
    _sale(books, "pay_1", 2000)
    (invoice,) = books.documents
    assert invoice.kind is DocumentKind.INVOICE
    assert (invoice.place_of_supply, invoice.inter_state, invoice.recipient) == ("29", False, None)
    assert invoice.amounts == split(2000, 1800, inter_state=False)
    assert (invoice.sac, invoice.rate_bp, invoice.cause) == ("999799", 1800, "payment:pay_1")


def test_an_unregistered_owners_sale_is_a_receipt_without_tax() -> None:
    books = Numbering()
    _sale(books, "pay_1", 2000, RECEIPTS)
    (receipt,) = books.documents
    assert receipt.kind is DocumentKind.RECEIPT
    assert (receipt.amounts.taxable, receipt.amounts.tax, receipt.supplier_gstin) == (2000, 0, "")
    note = _refund(books, "pay_1", "r1", 500)
    assert note is not None
    assert (note.kind, note.against, note.amounts.tax) == (DocumentKind.REFUND_NOTE, "N/1", 0)
    with pytest.raises(B2BRefused) as err:
        b2b(books.documents, ACME_BLR, RECEIPTS, NOW)
    assert err.value.reason == "not_registered"


@given(
    st.integers(100, 1_000_000),
    st.lists(st.integers(1, 1_000_000), max_size=8),
    st.sampled_from([None, ACME_BLR, ACME_PUNE]),
    st.integers(0, 8),
)
def test_credits_never_exceed_the_invoice_and_add_up_to_it(
    total: int, refunds: list[int], business: Recipient | None, b2b_after: int
) -> None:
    """Refunds in any amounts, with a B2B conversion anywhere among them: what is credited of
    each invoice never exceeds it, its credits' parts add up to its own split when it is
    credited whole, and the last credit note goes against the invoice in force."""
    books = Numbering()
    _sale(books, "pay_1", total)
    for index, amount in enumerate([*refunds, total]):
        if index == b2b_after and business is not None:
            if credited(books.documents[0], books.documents) == total:
                with pytest.raises(B2BRefused, match="nothing"):
                    b2b(books.documents, business, SETTINGS, NOW)
            else:
                for doc in b2b(books.documents, business, SETTINGS, NOW):
                    books.issue(doc)
        in_force = live_sale(books.documents)
        assert in_force is not None
        note = _refund(books, "pay_1", f"r{index}", amount)
        if note is not None:
            assert note.against == in_force.number
    invoices = [d for d in books.documents if d.kind is DocumentKind.INVOICE]
    for invoice in invoices:
        notes = [d for d in books.documents if d.against == invoice.number]
        assert credited(invoice, books.documents) <= invoice.amounts.total
        parts = [sum(getattr(n.amounts, f) for n in notes) for f in ("taxable", "igst", "cgst")]
        if credited(invoice, books.documents) == invoice.amounts.total:
            whole = invoice.amounts
            assert parts == [whole.taxable, whole.igst, whole.cgst]
    # Every paisa paid is credited once in the end, however it went.
    refunded = sum(
        d.amounts.total for d in books.documents if d.kind is DocumentKind.CREDIT_NOTE
    ) - sum(d.amounts.total for d in invoices[1:])
    assert refunded == total


def test_a_b2b_request_credits_the_rest_and_invoices_it_to_the_customer() -> None:
    books = Numbering()
    _sale(books, "pay_1", 2000)
    _refund(books, "pay_1", "r1", 500)
    note, invoice = b2b(books.documents, ACME_PUNE, SETTINGS, NOW)
    assert (note.kind, note.against, note.amounts.total) == (DocumentKind.CREDIT_NOTE, "N/1", 1500)
    assert note.cause == "b2b-credit:N/1"
    assert (invoice.kind, invoice.recipient, invoice.cause) == (
        DocumentKind.INVOICE,
        ACME_PUNE,
        "b2b:N/1",
    )
    # Maharashtra's customer of a Karnataka supplier: IGST, placed in Maharashtra.
    assert (invoice.place_of_supply, invoice.inter_state) == ("27", True)
    assert invoice.amounts == split(1500, 1800, inter_state=True)


def test_a_b2b_customer_in_the_suppliers_state_pays_cgst_and_sgst() -> None:
    books = Numbering()
    _sale(books, "pay_1", 2000)
    _note, invoice = b2b(books.documents, ACME_BLR, SETTINGS, NOW)
    assert (invoice.place_of_supply, invoice.inter_state) == ("29", False)
    assert invoice.amounts == split(2000, 1800, inter_state=False)


def test_a_refund_after_b2b_credits_the_b2b_invoice_at_its_own_place_of_supply() -> None:
    books = Numbering()
    _sale(books, "pay_1", 2000)
    for doc in b2b(books.documents, ACME_PUNE, SETTINGS, NOW):
        books.issue(doc)
    note = _refund(books, "pay_1", "r1", 2000)
    assert note is not None
    assert (note.against, note.recipient, note.place_of_supply) == ("N/3", ACME_PUNE, "27")
    assert note.amounts == split(2000, 1800, inter_state=True)
    # Nothing left: another refund credits nothing more.
    assert _refund(books, "pay_1", "r2", 100) is None


def test_a_b2b_invoice_is_issued_once_per_gstin() -> None:
    books = Numbering()
    _sale(books, "pay_1", 2000)
    for doc in b2b(books.documents, ACME_PUNE, SETTINGS, NOW):
        books.issue(doc)
    # The same customer again: the documents issued stand, nothing more.
    assert b2b(books.documents, ACME_PUNE, SETTINGS, NOW) == []
    with pytest.raises(B2BRefused) as err:
        b2b(books.documents, ACME_BLR, SETTINGS, NOW)
    assert err.value.reason == "other_recipient"


def test_a_b2b_request_covers_each_payment_of_the_session() -> None:
    """A top-up's own invoice is converted too; one converted before stands."""
    books = Numbering()
    _sale(books, "pay_1", 2000)
    for doc in b2b(books.documents, ACME_PUNE, SETTINGS, NOW):
        books.issue(doc)
    _sale(books, "pay_2", 1000)
    note, invoice = b2b(books.documents, ACME_PUNE, SETTINGS, NOW)
    assert (note.payment_id, note.against, invoice.payment_id) == ("pay_2", "N/4", "pay_2")
    assert invoice.amounts.total == 1000


def test_nothing_left_to_invoice_is_refused() -> None:
    books = Numbering()
    with pytest.raises(B2BRefused) as err:
        b2b(books.documents, ACME_PUNE, SETTINGS, NOW)
    assert err.value.reason == "nothing"
    _sale(books, "pay_1", 2000)
    _refund(books, "pay_1", "r1", 2000)
    with pytest.raises(B2BRefused) as err:
        b2b(books.documents, ACME_PUNE, SETTINGS, NOW)
    assert err.value.reason == "nothing"


def test_a_refund_of_a_payment_without_a_document_credits_nothing() -> None:
    """Paid before documents were issued: no invoice, so no credit note."""
    assert refund_credit(RefundDue("r1", "pay_old", 500, 500), [], NOW) is None


def test_the_b2b_invoice_stays_in_force_whatever_the_clock_did() -> None:
    """The B2B invoice replaces the one made out to no one even when the clock stepped back
    between them (NTP, a restored backup): a refund must credit it, not the credited one."""
    books = Numbering()
    _sale(books, "pay_1", 2000)
    for doc in b2b(books.documents, ACME_PUNE, SETTINGS, NOW - 60):
        books.issue(doc)
    in_force = live_sale(books.documents)
    assert in_force is not None
    assert in_force.recipient == ACME_PUNE
    note = _refund(books, "pay_1", "r1", 2000)
    assert note is not None
    assert note.against == in_force.number


def _sold_at(at: float) -> Numbering:
    books = Numbering()
    books.issue(sale(SaleDue("pay_1", "s-1", 2000, at, SOLD, SETTINGS), at))
    return books


def _ist(*args: int) -> float:
    return datetime(*args, tzinfo=IST).timestamp()


@pytest.mark.parametrize(
    ("sold", "asked", "reason"),
    [
        (NOW, NOW + 30 * DAY, None),  # Rule 47's 30 days: the last moment still in time
        (NOW, NOW + 30 * DAY + 1, "too_late"),
        (NOW, NOW + 420 * DAY, "too_late"),  # a closed year's sale, 14 months on
        # Within 30 days, but across 31 March (IST): the invoice's year is closed.
        (_ist(2027, 3, 31, 23, 30), _ist(2027, 4, 1, 0, 30), "too_late"),
        (_ist(2027, 4, 1, 0, 0), _ist(2027, 4, 30, 23, 59), None),
    ],
)
def test_a_b2c_invoice_may_be_replaced_within_30_days_and_its_financial_year(
    sold: float, asked: float, reason: str | None
) -> None:
    books = _sold_at(sold)
    assert (replaceable(books.documents, asked) is None) == (reason is not None)
    if reason is None:
        assert len(b2b(books.documents, ACME_PUNE, SETTINGS, asked)) == 2
        return
    with pytest.raises(B2BRefused) as err:
        b2b(books.documents, ACME_PUNE, SETTINGS, asked)
    assert err.value.reason == reason


def test_a_refunded_invoice_past_its_time_is_refused_as_nothing_left() -> None:
    """Nothing left to invoice says so, whatever the time: the customer cannot try later."""
    books = _sold_at(NOW)
    _refund(books, "pay_1", "r1", 2000)
    with pytest.raises(B2BRefused) as err:
        b2b(books.documents, ACME_PUNE, SETTINGS, NOW + 60 * DAY)
    assert err.value.reason == "nothing"


def test_the_owners_own_gstin_is_refused() -> None:
    """Printed right above the form: typed by mistake, it would invoice the owner to itself."""
    books = _sold_at(NOW)
    with pytest.raises(B2BRefused) as err:
        b2b(books.documents, parse_recipient(OWNER_GSTIN, "Me", "Here"), SETTINGS, NOW)
    assert err.value.reason == "own_gstin"


def test_a_refund_is_credited_only_out_of_what_razorpay_has_taken() -> None:
    """A refund taken (its note issued), refused, and made again: the new one's ``taken`` is
    its own amount alone (the first failed), which the first note already covers."""
    books = _sold_at(NOW)
    _refund(books, "pay_1", "r1", 500)
    again = RefundDue("r2", "pay_1", 500, taken=500)
    assert refund_credit(again, books.of("pay_1"), NOW) is None
    more = RefundDue("r3", "pay_1", 300, taken=800)
    note = refund_credit(more, books.of("pay_1"), NOW)
    assert note is not None
    assert note.amounts.total == 300
