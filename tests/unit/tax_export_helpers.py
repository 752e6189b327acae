"""Builders of documents for the tax export's tests: issued as the store would, numbered here."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from custom_components.qr_charging.invoices import (
    Document,
    RefundDue,
    SaleDue,
    Sold,
    b2b,
    refunded,
    sale,
)
from custom_components.qr_charging.invoices import refund_credit as credit_of
from custom_components.qr_charging.tax import (
    IST,
    Recipient,
    TaxSettings,
    document_number,
    financial_year,
    parse_rate,
)
from tests.integration.tax_helpers import MAHARASHTRA_CUSTOMER, OWNER_GSTIN, OWNER_NAME

KARNATAKA = OWNER_GSTIN
MAHARASHTRA = MAHARASHTRA_CUSTOMER
OWNER = TaxSettings(OWNER_NAME, OWNER_GSTIN, "999799", parse_rate("rate", "18"), "INV")
UNREGISTERED = TaxSettings(legal_name="Volt Bays")
BUYER = Recipient(MAHARASHTRA, "Fleet Movers LLP", "Pune")
SOLD = Sold("bay-1", "Bay 1", plan_name="30 min", seconds=1800)


def at(day: int, hour: int = 12, month: int = 12) -> float:
    """A moment of 2026 in India's time."""
    return datetime(2026, month, day, hour, tzinfo=IST).timestamp()


class Series:
    """Numbers documents in their series, one after another, as the store does."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        # The owner's prefix: changed between documents as the options form changes it.
        self.prefix = "INV"

    def number(self, doc: Document) -> Document:
        year = financial_year(doc.issued_at)
        serial = self.last.get(doc.kind.value, 0) + 1
        self.last[doc.kind.value] = serial
        return replace(
            doc, number=document_number(self.prefix, doc.kind, year, serial), serial=serial
        )

    def sale(
        self, payment_id: str, paise: int, when: float, settings: TaxSettings = OWNER
    ) -> Document:
        due = SaleDue(payment_id, f"s-{payment_id}", paise, when, SOLD, settings)
        return self.number(sale(due, when))

    def refund(self, documents: list[Document], paise: int, when: float) -> Document:
        payment_id = documents[0].payment_id
        due = RefundDue(f"r-{when}", payment_id, paise, refunded(documents) + paise)
        note = credit_of(due, documents, when)
        assert note is not None
        return self.number(note)

    def b2b(self, documents: list[Document], when: float) -> list[Document]:
        return [self.number(doc) for doc in b2b(documents, BUYER, OWNER, when)]
