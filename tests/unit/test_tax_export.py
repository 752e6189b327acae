"""The month's GSTR-1 tables from its documents: rows and totals to the paisa (``tax_export``).

Amounts expected here are worked out by hand from the 18 % rule (taxable = price * 100 / 118,
to the nearest paisa; CGST the lower half of the rest), not by the code under test.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.qr_charging.tax import Split
from custom_components.qr_charging.tax_export import (
    Month,
    MonthError,
    month_bounds,
    parse_month,
    write,
)

from .tax_export_helpers import BUYER, KARNATAKA, MAHARASHTRA, UNREGISTERED, Series, at


def _read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file))


def _month(documents: list) -> tuple[Month, list[tuple[str, tuple[str, ...]]]]:
    month = Month()
    own = [row for doc in documents if (row := month.add(doc)) is not None]
    return month, own


def test_b2c_invoices_net_of_their_credit_note() -> None:
    series = Series()
    first = series.sale("pay_1", 10_000, at(1))  # ₹100: 84.75 + 7.62 + 7.63
    second = series.sale("pay_2", 5_000, at(2))  # ₹50: 42.37 + 3.81 + 3.82
    credit = series.refund([first], 3_000, at(3))  # ₹30 back: 25.42 + 2.29 + 2.29
    month, own = _month([first, second, credit])

    assert own == []  # B2C: no row of their own
    assert list(month.b2cs()) == [("OE", "29-Karnataka", "18", "", "101.70", "0.00", "")]
    assert list(month.hsn("hsn_b2b")) == []
    assert list(month.hsn("hsn_b2c")) == [
        (
            "999799", "Charging of electric vehicles", "NA", "0", "120.00", "101.70", "0.00",
            "9.14", "9.16", "0.00", "18",
        )
    ]  # fmt: skip
    assert month.totals == Split(12_000, 10_170, 914, 916, 0)
    assert month.documents == 3


def test_b2b_inter_state_is_igst_and_its_credit_note_a_cdnr_row() -> None:
    series = Series()
    b2c = series.sale("pay_1", 10_000, at(1))
    credit, invoice = series.b2b([b2c], at(1, 13))
    refund = series.refund([b2c, credit, invoice], 4_000, at(5))
    month, own = _month([b2c, credit, invoice, refund])

    number = invoice.number
    assert own == [
        (
            "b2b",
            (
                MAHARASHTRA, "Fleet Movers LLP", number, "01-Dec-2026", "100.00",
                "27-Maharashtra", "N", "", "Regular B2B", "", "18", "84.75", "0.00",
            ),
        ),
        (
            "cdnr",
            (
                MAHARASHTRA, "Fleet Movers LLP", refund.number, "05-Dec-2026", "C",
                "27-Maharashtra", "N", "Regular B2B", "40.00", "", "18", "33.90", "0.00",
            ),
        ),
    ]  # fmt: skip
    # The B2C invoice was credited whole by the B2B request: no B2C supply is left.
    assert list(month.b2cs()) == []
    # ₹60 left: 50.85 taxable, 9.15 IGST (100 → 84.75 + 15.25 less 40 → 33.90 + 6.10).
    assert month.totals == Split(6_000, 5_085, 0, 0, 915)
    # Table 12's B2B part: the B2B invoice less its credit note; the B2C part: the B2C
    # invoice less the credit note that replaced it, nothing.
    (hsn,) = month.hsn("hsn_b2b")
    assert hsn[4:9] == ("60.00", "50.85", "9.15", "0.00", "0.00")
    assert list(month.hsn("hsn_b2c")) == []
    assert (invoice.recipient, invoice.supplier_gstin) == (BUYER, KARNATAKA)


def test_docs_give_each_series_first_last_and_count() -> None:
    series = Series()
    sales = [series.sale(f"pay_{n}", 2_000, at(n)) for n in range(1, 12)]
    notes = [series.refund([sales[n]], 500, at(20 + n)) for n in range(2)]
    # The month starts at the 8th invoice: numbers count as numbers (10 comes after 9).
    month, _ = _month(sales[7:] + notes)

    assert list(month.docs()) == [
        ("Invoices for outward supply", "INV/2627/8", "INV/2627/11", "4", "0"),
        ("Credit Note", "INV/2627/C1", "INV/2627/C2", "2", "0"),
    ]


def test_an_owner_without_gstin_gets_receipts_not_gstr1(tmp_path: Path) -> None:
    series = Series()
    receipt = series.sale("pay_1", 2_500, at(7), UNREGISTERED)
    note = series.refund([receipt], 1_000, at(7, 18))

    written = write([receipt, note], tmp_path / "out", registered=False)

    assert set(written.files) == {"receipts"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["receipts.csv"]
    assert _read(written.files["receipts"]) == [
        ["Number", "Date", "Amount", "Refunded", "Against"],
        [receipt.number, "07-Dec-2026", "25.00", "0.00", ""],
        [note.number, "07-Dec-2026", "0.00", "10.00", receipt.number],
    ]
    assert (written.documents, written.totals) == (2, Split(0, 0))


def test_a_registered_owner_gets_the_gstr1_tables(tmp_path: Path) -> None:
    series = Series()
    b2c = series.sale("pay_1", 10_000, at(1))
    credit, invoice = series.b2b([b2c], at(1, 13))
    other = series.sale("pay_2", 11_800, at(2))

    written = write([b2c, credit, invoice, other], tmp_path, registered=True)

    assert set(written.files) == {"b2b", "b2cs", "cdnr", "hsn_b2b", "hsn_b2c", "docs"}
    assert _read(written.files["b2b"])[1][2] == invoice.number
    assert _read(written.files["cdnr"]) == [_read(written.files["cdnr"])[0]]  # header only
    assert _read(written.files["b2cs"])[1:] == [
        ["OE", "29-Karnataka", "18", "", "100.00", "0.00", ""]
    ]
    assert _read(written.files["docs"])[1:] == [
        ["Invoices for outward supply", "INV/2627/1", "INV/2627/3", "3", "0"],
        ["Credit Note", "INV/2627/C1", "INV/2627/C1", "1", "0"],
    ]
    assert written.totals == Split(21_800, 18_475, 900, 900, 1_525)
    assert not list(tmp_path.glob("*.tmp"))


def test_the_sac_summary_is_split_into_its_b2b_and_b2c_parts(tmp_path: Path) -> None:
    """GSTR-1's Table 12 has a B2B and a B2C part since May 2025: a B2B invoice (₹100,
    IGST) goes to hsn_b2b.csv, the B2C sales (₹118 and the ₹100 less the credit note that
    replaced it) to hsn_b2c.csv, each with the columns of the one summary before."""
    series = Series()
    b2c = series.sale("pay_1", 10_000, at(1))
    credit, invoice = series.b2b([b2c], at(1, 13))
    other = series.sale("pay_2", 11_800, at(2))

    written = write([b2c, credit, invoice, other], tmp_path, registered=True)

    header = [
        "HSN", "Description", "UQC", "Total Quantity", "Total Value", "Taxable Value",
        "Integrated Tax Amount", "Central Tax Amount", "State/UT Tax Amount", "Cess Amount",
        "Rate",
    ]  # fmt: skip
    described = ["999799", "Charging of electric vehicles", "NA", "0"]
    assert _read(written.files["hsn_b2b"]) == [
        header,
        [*described, "100.00", "84.75", "15.25", "0.00", "0.00", "0.00", "18"],
    ]
    assert _read(written.files["hsn_b2c"]) == [
        header,
        [*described, "118.00", "100.00", "0.00", "9.00", "9.00", "0.00", "18"],
    ]
    assert not (tmp_path / "hsn.csv").exists()


def test_docs_give_one_row_per_prefix_of_a_kind() -> None:
    """A prefix changed within the month starts another series: Table 13 gets a row for each
    (an INV row and an ABC row), never one row running from INV/… to ABC/…."""
    series = Series()
    first = series.sale("pay_1", 2_000, at(1))
    note = series.refund([first], 500, at(2))
    series.prefix = "ABC"
    later = [series.sale(f"pay_{n}", 2_000, at(n)) for n in (3, 4)]
    later_note = series.refund([later[0]], 500, at(5))

    month, _ = _month([first, note, *later, later_note])

    assert list(month.docs()) == [
        ("Invoices for outward supply", "ABC/2627/2", "ABC/2627/3", "2", "0"),
        ("Invoices for outward supply", "INV/2627/1", "INV/2627/1", "1", "0"),
        ("Credit Note", "ABC/2627/C2", "ABC/2627/C2", "1", "0"),
        ("Credit Note", "INV/2627/C1", "INV/2627/C1", "1", "0"),
    ]


def test_the_month_and_dates_are_india_s() -> None:
    start, end = month_bounds(2026, 12)
    assert start == at(1, 0)
    assert end == at(1, 0, month=1) + 365 * 86_400  # 1 January 2027, 00:00 IST
    series = Series()
    # 30 November, 20:00 UTC is 1 December, 01:30 in India.
    late = series.sale("pay_1", 1_000, start + 3 * 3600)
    _, own = _month([series.b2b([late], start + 3 * 3600)[1]])
    assert own[0][1][3] == "01-Dec-2026"


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "2026-1", "26-11", "", "2026-11-01", "november", "2016-12"]
)
def test_a_bad_month_is_refused(text: str) -> None:
    with pytest.raises(MonthError):
        parse_month(text)


def test_a_month_is_read() -> None:
    assert parse_month("2026-11") == (2026, 11)
    assert parse_month(" 2027-01 ") == (2027, 1)


def _paise(text: str) -> int:
    return int(Decimal(text) * 100)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(100, 1_000_000), st.integers(0, 100), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_the_tables_add_up_to_the_month_s_totals(
    sales: list[tuple[int, int, bool]],
) -> None:
    """Whatever the month: b2cs + b2b - cdnr is its taxable value, hsn its every figure, and
    the totals the documents' own amounts, invoices less credit notes, to the paisa."""
    series = Series()
    documents = []
    for n, (paise, percent, to_business) in enumerate(sales):
        of_payment = [series.sale(f"pay_{n}", paise, at(1 + n))]
        if to_business:
            of_payment += series.b2b(of_payment, at(1 + n, 13))
        if refund := paise * percent // 100:
            of_payment.append(series.refund(of_payment, refund, at(1 + n, 14)))
        documents += of_payment
    month, own = _month(documents)

    signs = {"invoice": 1, "credit_note": -1}
    expected = [
        sum(signs[d.kind.value] * getattr(d.amounts, f) for d in documents)
        for f in ("total", "taxable", "cgst", "sgst", "igst")
    ]
    assert month.totals == Split(*expected)
    b2cs = sum(_paise(row[4]) for row in month.b2cs())
    b2b = sum(_paise(row[11]) for table, row in own if table == "b2b")
    cdnr = sum(_paise(row[11]) for table, row in own if table == "cdnr")
    assert b2cs + b2b - cdnr == month.totals.taxable
    # Table 12's two parts add up to the month; its B2B part is Table 4 less Table 9B.
    both = [row for part in ("hsn_b2b", "hsn_b2c") for row in month.hsn(part)]
    figures = [sum(_paise(row[column]) for row in both) for column in range(4, 9)]
    assert figures == [expected[0], expected[1], expected[4], expected[2], expected[3]]
    assert sum(_paise(row[5]) for row in month.hsn("hsn_b2b")) == b2b - cdnr
