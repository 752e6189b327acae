"""Documents in the ledger's database: issued and numbered inside a change's transaction.

Plain Python (``sqlite3``), no Home Assistant imports; called only by ``store.LedgerStore``
on its one connection, inside the transaction of the change the documents belong to. A
document's serial is the next of its series read in that same transaction, so a rolled-back
change takes its numbers with it (no gap) and the single writer never hands one out twice
(no repeat); a cause already documented issues nothing (a delivery seen twice, a retry).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import replace

from .invoices import (
    B2BRefused,
    Document,
    Dues,
    RefundDue,
    SaleDue,
    Sold,
    b2b,
    refund_credit,
    sale,
)
from .tax import (
    DocumentKind,
    Recipient,
    Split,
    TaxSettings,
    document_number,
    financial_year,
    series_of,
)

_COLUMNS = (
    "number", "kind", "series", "serial", "cause", "issued_at", "payment_id", "session_id",
    "bay_id", "bay_name", "site_name", "site_address", "plan_name", "seconds", "energy_wh",
    "band", "total", "taxable", "cgst", "sgst", "igst", "rate_bp", "place_of_supply", "sac",
    "supplier_name", "supplier_gstin", "supplier_address", "recipient_gstin", "recipient_name",
    "recipient_address", "against",
)  # fmt: skip
_INSERT = f"INSERT INTO documents ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})"

_LOGGER = logging.getLogger(__package__)

__all__ = ["B2BRefused", "documents_between", "documents_of_session", "issue_b2b", "issue_dues"]


def _row(doc: Document) -> tuple[object, ...]:
    sold, amounts, recipient = doc.sold, doc.amounts, doc.recipient
    year = financial_year(doc.issued_at)
    return (
        doc.number, doc.kind.value, series_of(doc.kind, year), doc.serial, doc.cause,
        doc.issued_at, doc.payment_id, doc.session_id, sold.bay_id, sold.bay_name,
        sold.site_name, sold.site_address, sold.plan_name, sold.seconds, sold.energy_wh,
        sold.band, amounts.total, amounts.taxable, amounts.cgst, amounts.sgst, amounts.igst,
        doc.rate_bp, doc.place_of_supply, doc.sac, doc.supplier_name, doc.supplier_gstin,
        doc.supplier_address, recipient.gstin if recipient else None,
        recipient.name if recipient else None, recipient.address if recipient else None,
        doc.against,
    )  # fmt: skip


def _document(row: sqlite3.Row) -> Document:
    recipient = (
        Recipient(row["recipient_gstin"], row["recipient_name"], row["recipient_address"] or "")
        if row["recipient_gstin"]
        else None
    )
    return Document(
        kind=DocumentKind(row["kind"]),
        cause=row["cause"],
        issued_at=row["issued_at"],
        payment_id=row["payment_id"],
        session_id=row["session_id"],
        sold=Sold(
            row["bay_id"],
            row["bay_name"],
            row["site_name"],
            row["site_address"],
            row["plan_name"],
            row["seconds"],
            row["energy_wh"],
            row["band"],
        ),
        amounts=Split(row["total"], row["taxable"], row["cgst"], row["sgst"], row["igst"]),
        rate_bp=row["rate_bp"],
        place_of_supply=row["place_of_supply"],
        sac=row["sac"],
        supplier_name=row["supplier_name"],
        supplier_gstin=row["supplier_gstin"],
        supplier_address=row["supplier_address"],
        recipient=recipient,
        against=row["against"],
        number=row["number"],
        serial=row["serial"],
    )


def _select(db: sqlite3.Connection, where: str, params: Iterable[object]) -> list[Document]:
    cursor = db.execute(f"SELECT * FROM documents WHERE {where} ORDER BY rowid", tuple(params))
    return [_document(row) for row in cursor]


def _issue(db: sqlite3.Connection, doc: Document, prefix: str) -> Document | None:
    """Number and insert one document; None when its cause is documented already.

    None as well, inserting nothing, when its number would be past Rule 46(b)'s 16
    characters: the change it belongs to (a payment, a refund) is stored without it, as money
    must never be refused for a document; logged at ERROR for the owner to shorten the prefix.
    """
    if db.execute("SELECT 1 FROM documents WHERE cause = ?", (doc.cause,)).fetchone():
        return None
    year = financial_year(doc.issued_at)
    series = series_of(doc.kind, year)
    (last,) = db.execute(
        "SELECT COALESCE(MAX(serial), 0) FROM documents WHERE series = ?", (series,)
    ).fetchone()
    serial = int(last) + 1
    try:
        number = document_number(prefix, doc.kind, year, serial)
    except ValueError as err:
        _LOGGER.error(  # noqa: TRY400 (the message says it all; a traceback would not)
            "No %s issued for %s: its %s (Rule 46(b)); choose a shorter prefix than %s in "
            "the account's options, Tax details",
            doc.kind.value.replace("_", " "),
            doc.cause,
            err,
            prefix,
        )
        return None
    numbered = replace(doc, number=number, serial=serial)
    db.execute(_INSERT, _row(numbered))
    return numbered


def _since(db: sqlite3.Connection) -> float | None:
    row = db.execute("SELECT value FROM meta WHERE name = 'documents_since'").fetchone()
    return float(row[0]) if row else None


def issue_dues(db: sqlite3.Connection, dues: Dues) -> None:
    """Issue what a change made due, inside its transaction (the caller's).

    A sale of a payment stored before documents were issued (``documents_since``) gets none;
    a refund credits the payment's document in force, if it has one.
    """
    since = _since(db)
    for due in dues.dues:
        match due:
            case SaleDue():
                if since is None or due.received_at > since:
                    _issue(db, sale(due, dues.at), dues.prefix)
            case RefundDue():
                of_payment = _select(db, "payment_id = ?", (due.payment_id,))
                if (note := refund_credit(due, of_payment, dues.at)) is not None:
                    _issue(db, note, dues.prefix)


def issue_b2b(
    db: sqlite3.Connection, payment_id: str, recipient: Recipient, settings: TaxSettings, now: float
) -> list[Document]:
    """A business customer's invoice of one payment (``invoices.b2b``).

    One payment, not its session: anyone at the bay may add time to a running session, and
    their payment is not this customer's to invoice. Inside the caller's transaction; return
    the payment's documents after. Raises ``B2BRefused`` (``numbers_full``: a number would
    not fit, nothing issued).
    """
    for doc in b2b(_select(db, "payment_id = ?", (payment_id,)), recipient, settings, now):
        if _issue(db, doc, settings.prefix) is None:
            # Its number does not fit: refused whole (the caller's transaction rolls back).
            raise B2BRefused("numbers_full")
    return _select(db, "payment_id = ?", (payment_id,))


def documents_of_session(db: sqlite3.Connection, session_id: str) -> list[Document]:
    """A session's documents, in the order they were issued."""
    return _select(db, "session_id = ?", (session_id,))


def documents_between(db: sqlite3.Connection, start: float, end: float) -> Iterator[Document]:
    """The documents issued in ``[start, end)``, in the order they were issued, row by row."""
    cursor = db.execute(
        "SELECT * FROM documents WHERE issued_at >= ? AND issued_at < ? ORDER BY rowid",
        (start, end),
    )
    return (_document(row) for row in cursor)
