"""Builders of the receipt's tests: a registered owner's settings, a payment's documents.

Plain data, no HA import: the unit tests of ``receipts`` build from these too. GSTINs and the
options' tax section: ``tax_helpers``.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import count

from custom_components.qr_charging.invoices import (
    Document,
    RefundDue,
    SaleDue,
    Sold,
    b2b,
    refund_credit,
    refunded,
    sale,
)
from custom_components.qr_charging.tax import (
    Recipient,
    TaxSettings,
    document_number,
    financial_year,
    parse_settings,
)

from .tax_helpers import tax_options

SITE_ADDRESS = "12 MG Road, Bengaluru 560001"


def registered(rate: str = "18") -> TaxSettings:
    """An owner in Karnataka registered for GST at ``rate`` percent."""
    return parse_settings(tax_options(rate=rate))


SOLD = Sold("bay-1", "Bay 1", "MG Road", SITE_ADDRESS, "30 minutes", seconds=1800)
# 1 April 2026, 10:00 IST: the financial year 2026-27.
AT = 1_775_017_800.0


class Issuer:
    """Issues documents as the store does: each numbered next in its series, in order."""

    def __init__(self, prefix: str = "INV") -> None:
        self.prefix = prefix
        self.documents: list[Document] = []
        self._serials: dict[str, count[int]] = {}

    def _number(self, doc: Document) -> Document:
        series = self._serials.setdefault(doc.kind.value, count(1))
        serial = next(series)
        year = financial_year(doc.issued_at)
        number = document_number(self.prefix, doc.kind, year, serial)
        numbered = replace(doc, number=number, serial=serial)
        self.documents.append(numbered)
        return numbered

    def pay(
        self, amount: int, settings: TaxSettings, sold: Sold = SOLD, payment_id: str = "pay_1"
    ) -> Document:
        """A payment that opened (or topped up) session ``s1``: its invoice or receipt."""
        due = SaleDue(payment_id, "s1", amount, AT, sold, settings)
        return self._number(sale(due, AT + len(self.documents)))

    def refund(self, amount: int, key: str = "r1", payment_id: str = "pay_1") -> Document:
        """A refund of ``amount`` of a payment: its credit note (or refund note)."""
        of_payment = [d for d in self.documents if d.payment_id == payment_id]
        due = RefundDue(key, payment_id, amount, refunded(of_payment) + amount)
        credit = refund_credit(due, of_payment, AT + len(self.documents))
        assert credit is not None
        return self._number(credit)

    def b2b(self, recipient: Recipient, settings: TaxSettings) -> list[Document]:
        """A business customer's request: the credit notes and B2B invoices it issues."""
        issued = b2b(self.documents, recipient, settings, AT + len(self.documents))
        return [self._number(doc) for doc in issued]
