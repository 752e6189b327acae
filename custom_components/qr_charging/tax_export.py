"""The owner's month: GSTR-1's tables (or a plain list of receipts) from the month's documents.

Plain Python, no Home Assistant imports. ``Month`` reads documents one by one (the store hands
them over row by row): B2B invoices and their credit notes become rows as they come
(``b2b``, ``cdnr``), while the B2C supplies by place of supply and rate (``b2cs``), the SAC
summary (Table 12 in two parts since May 2025: ``hsn_b2b`` for invoices to a GSTIN and their
credit notes, ``hsn_b2c`` for the others) and the document series (``docs``, one row per kind
and prefix) are summed as they go, so the month is never held in memory. Columns are named
as in the GST offline tool's CSV templates; amounts are rupees with two decimals from whole
paise (exact). Credit notes count negative: a month's B2C and SAC figures are net of the
credit notes issued in it. Receipts and refund notes (an owner without a GSTIN) are no supply
GSTR-1 reports: they go to ``receipts`` instead.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from .invoices import Document
from .tax import IST, STATES, DocumentKind, Split, rate_text

B2B = "b2b"
B2CS = "b2cs"
CDNR = "cdnr"
HSN_B2B = "hsn_b2b"
HSN_B2C = "hsn_b2c"
DOCS = "docs"
RECEIPTS = "receipts"
GSTR1 = (B2B, B2CS, CDNR, HSN_B2B, HSN_B2C, DOCS)

_HSN_COLUMNS = (
    "HSN", "Description", "UQC", "Total Quantity", "Total Value", "Taxable Value",
    "Integrated Tax Amount", "Central Tax Amount", "State/UT Tax Amount", "Cess Amount", "Rate",
)  # fmt: skip
COLUMNS: dict[str, tuple[str, ...]] = {
    B2B: (
        "GSTIN/UIN of Recipient", "Receiver Name", "Invoice Number", "Invoice date",
        "Invoice Value", "Place Of Supply", "Reverse Charge", "Applicable % of Tax Rate",
        "Invoice Type", "E-Commerce GSTIN", "Rate", "Taxable Value", "Cess Amount",
    ),
    B2CS: (
        "Type", "Place Of Supply", "Rate", "Applicable % of Tax Rate", "Taxable Value",
        "Cess Amount", "E-Commerce GSTIN",
    ),
    CDNR: (
        "GSTIN/UIN of Recipient", "Receiver Name", "Note Number", "Note Date", "Note Type",
        "Place Of Supply", "Reverse Charge", "Note Supply Type", "Note Value",
        "Applicable % of Tax Rate", "Rate", "Taxable Value", "Cess Amount",
    ),
    # Table 12's B2B and B2C parts have the same columns.
    HSN_B2B: _HSN_COLUMNS,
    HSN_B2C: _HSN_COLUMNS,
    DOCS: ("Nature of Document", "Sr. No. From", "Sr. No. To", "Total Number", "Cancelled"),
    RECEIPTS: ("Number", "Date", "Amount", "Refunded", "Against"),
}  # fmt: skip
# What the SAC summary says of the service (a SAC's own words are the owner's to check).
DESCRIPTION = "Charging of electric vehicles"
# Services are counted in no unit: GSTR-1 takes "NA" and a quantity of 0.
UQC = "NA"
NATURES = {
    DocumentKind.INVOICE: "Invoices for outward supply",
    DocumentKind.CREDIT_NOTE: "Credit Note",
}
_SIGNS = {DocumentKind.INVOICE: 1, DocumentKind.CREDIT_NOTE: -1}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
# GST began in July 2017; a year past 9998 has no next month for ``datetime``.
_YEARS = range(2017, 9999)
ZERO = Split(0, 0)

type Row = tuple[str, ...]


class MonthError(ValueError):
    """A month that is not ``YYYY-MM`` (01 to 12)."""


def parse_month(text: str) -> tuple[int, int]:
    """``"2026-11"`` → ``(2026, 11)``; anything else: ``MonthError``."""
    match = _MONTH.fullmatch(text.strip())
    if match is None or int(match[1]) not in _YEARS:
        raise MonthError(text)
    return int(match[1]), int(match[2])


def month_bounds(year: int, month: int) -> tuple[float, float]:
    """India's month as ``[start, end)`` timestamps (documents are dated in IST)."""
    start = datetime(year, month, 1, tzinfo=IST)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=IST)
    return start.timestamp(), end.timestamp()


def month_of(at: float) -> tuple[int, int]:
    """The IST month a moment falls in."""
    day = datetime.fromtimestamp(at, UTC).astimezone(IST)
    return day.year, day.month


def rupees(paise: int) -> str:
    """Whole paise as rupees with two decimals (exact): ``-1234`` → ``"-12.34"``."""
    return str(Decimal(paise).scaleb(-2).quantize(Decimal("0.01")))


def date_text(at: float) -> str:
    """A document's date as GSTR-1 writes it, in IST: ``07-Dec-2026`` (whatever the locale)."""
    day = datetime.fromtimestamp(at, UTC).astimezone(IST)
    return f"{day.day:02d}-{_MONTHS[day.month - 1]}-{day.year}"


def place_text(state: str) -> str:
    """A place of supply as GSTR-1 writes it: ``29-Karnataka``."""
    return f"{state}-{STATES.get(state, '')}"


def net(totals: Split, amounts: Split, sign: int) -> Split:
    """``totals`` plus ``sign`` times ``amounts``."""
    return Split(
        totals.total + sign * amounts.total,
        totals.taxable + sign * amounts.taxable,
        totals.cgst + sign * amounts.cgst,
        totals.sgst + sign * amounts.sgst,
        totals.igst + sign * amounts.igst,
    )


@dataclass(slots=True)
class _Series:
    first: tuple[int, str]
    last: tuple[int, str]
    count: int = 1


@dataclass(slots=True)
class Month:
    """One month's documents, summed as they are added (``add`` gives the rows that stream)."""

    documents: int = 0
    # Invoices less credit notes: what the month's tax is (receipts carry none).
    totals: Split = ZERO
    receipts: int = 0
    _b2cs: dict[tuple[str, int], int] = field(default_factory=dict)
    # The SAC summary by part (``HSN_B2B`` or ``HSN_B2C``), code and rate.
    _hsn: dict[tuple[str, str, int], Split] = field(default_factory=dict)
    # A series is its kind and prefix: a prefix changed within the month starts another.
    _series: dict[tuple[DocumentKind, str], _Series] = field(default_factory=dict)

    def add(self, doc: Document) -> tuple[str, Row] | None:
        """Count a document; return its own row and table (b2b, cdnr, receipts), if it has one."""
        self.documents += 1
        if doc.kind not in _SIGNS:
            self.receipts += 1
            return RECEIPTS, _receipt_row(doc)
        sign = _SIGNS[doc.kind]
        self.totals = net(self.totals, doc.amounts, sign)
        # A credit note carries its invoice's recipient: it lands in that invoice's part.
        key = (HSN_B2C if doc.recipient is None else HSN_B2B, doc.sac, doc.rate_bp)
        self._hsn[key] = net(self._hsn.get(key, ZERO), doc.amounts, sign)
        self._count(doc)
        if doc.recipient is None:
            b2c = (doc.place_of_supply, doc.rate_bp)
            self._b2cs[b2c] = self._b2cs.get(b2c, 0) + sign * doc.amounts.taxable
            return None
        if doc.kind is DocumentKind.INVOICE:
            return B2B, _b2b_row(doc)
        return CDNR, _cdnr_row(doc)

    def _count(self, doc: Document) -> None:
        mark = (doc.serial, doc.number)
        key = (doc.kind, doc.number.split("/", 1)[0])
        series = self._series.get(key)
        if series is None:
            self._series[key] = _Series(mark, mark)
            return
        series.first, series.last = min(series.first, mark), max(series.last, mark)
        series.count += 1

    def b2cs(self) -> Iterator[Row]:
        """B2C supplies by place of supply and rate, net of their credit notes (none: no row)."""
        for (place, rate_bp), taxable in sorted(self._b2cs.items()):
            if not taxable:
                continue  # credited whole (a B2B request replaced them): nothing to report
            yield ("OE", place_text(place), rate_text(rate_bp), "", rupees(taxable), "0.00", "")

    def hsn(self, part: str) -> Iterator[Row]:
        """One part of the SAC summary by code and rate, net of credit notes (none: no row)."""
        for (of_part, sac, rate_bp), s in sorted(self._hsn.items()):
            if of_part != part or s == ZERO:
                continue
            yield (
                sac, DESCRIPTION, UQC, "0", rupees(s.total), rupees(s.taxable), rupees(s.igst),
                rupees(s.cgst), rupees(s.sgst), "0.00", rate_text(rate_bp),
            )  # fmt: skip

    def docs(self) -> Iterator[Row]:
        """Table 13: each series' (kind and prefix) first and last number, and how many."""
        for kind, nature in NATURES.items():
            for (of_kind, _prefix), series in sorted(self._series.items(), key=lambda i: i[0]):
                if of_kind is kind:
                    yield nature, series.first[1], series.last[1], str(series.count), "0"


def _b2b_row(doc: Document) -> Row:
    assert doc.recipient is not None
    return (
        doc.recipient.gstin, doc.recipient.name, doc.number, date_text(doc.issued_at),
        rupees(doc.amounts.total), place_text(doc.place_of_supply), "N", "", "Regular B2B", "",
        rate_text(doc.rate_bp), rupees(doc.amounts.taxable), "0.00",
    )  # fmt: skip


def _cdnr_row(doc: Document) -> Row:
    assert doc.recipient is not None
    return (
        doc.recipient.gstin, doc.recipient.name, doc.number, date_text(doc.issued_at), "C",
        place_text(doc.place_of_supply), "N", "Regular B2B", rupees(doc.amounts.total), "",
        rate_text(doc.rate_bp), rupees(doc.amounts.taxable), "0.00",
    )  # fmt: skip


def _receipt_row(doc: Document) -> Row:
    amount = rupees(doc.amounts.total)
    if doc.kind is DocumentKind.RECEIPT:
        return doc.number, date_text(doc.issued_at), amount, "0.00", ""
    return doc.number, date_text(doc.issued_at), "0.00", amount, doc.against or ""


@dataclass(frozen=True, slots=True)
class Written:
    """What an export wrote: the files by table, how many documents, the month's totals."""

    files: dict[str, Path]
    documents: int
    totals: Split


def write(documents: Iterable[Document], directory: Path, *, registered: bool) -> Written:
    """Write the month's tables as CSV files in ``directory`` (made here), one pass.

    GSTR-1's five tables when the owner is registered or the month has tax documents;
    ``receipts.csv`` when it has receipts or the owner is not (the files are complete when
    this returns; a reader of a half-written export sees ``.tmp`` names only).
    """
    directory.mkdir(parents=True, exist_ok=True)
    month = Month()
    streamed = (B2B, CDNR, RECEIPTS)
    paths = {table: directory / f"{table}.csv" for table in (*GSTR1, RECEIPTS)}
    handles = {
        t: paths[t].with_suffix(".tmp").open("w", encoding="utf-8", newline="") for t in streamed
    }
    try:
        writers = {t: csv.writer(handles[t], lineterminator="\n") for t in streamed}
        for table in streamed:
            writers[table].writerow(COLUMNS[table])
        for doc in documents:
            if (own := month.add(doc)) is not None:
                writers[own[0]].writerow(own[1])
    finally:
        for handle in handles.values():
            handle.close()
    wanted = set()
    if registered or month.documents > month.receipts:
        wanted |= set(GSTR1)
    if not registered or month.receipts:
        wanted.add(RECEIPTS)
    summed = {
        B2CS: month.b2cs(),
        HSN_B2B: month.hsn(HSN_B2B),
        HSN_B2C: month.hsn(HSN_B2C),
        DOCS: month.docs(),
    }
    for table in (*GSTR1, RECEIPTS):
        tmp = paths[table].with_suffix(".tmp")
        if table not in wanted:
            tmp.unlink(missing_ok=True)
            continue
        if table in summed:
            with tmp.open("w", encoding="utf-8", newline="") as out:
                csv.writer(out, lineterminator="\n").writerows([COLUMNS[table], *summed[table]])
        tmp.replace(paths[table])
    files = {table: paths[table] for table in (*GSTR1, RECEIPTS) if table in wanted}
    return Written(files, month.documents, month.totals)
