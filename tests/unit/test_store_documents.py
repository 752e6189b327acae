"""Documents in the ledger's database (``store_documents``), on a real SQLite file.

Numbers are issued in the transaction of the change they document: a failed commit takes its
numbers with it, the series has no gap and no repeat under concurrent changes and B2B taps, a
restart continues it, and payments stored before documents existed get none.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from custom_components.qr_charging import store_documents
from custom_components.qr_charging.books import Books
from custom_components.qr_charging.invoices import B2BRefused, Document, Dues
from custom_components.qr_charging.ledger import Wanted
from custom_components.qr_charging.records import RefundState
from custom_components.qr_charging.store import LedgerStore, StorageError
from custom_components.qr_charging.tax import (
    IST,
    DocumentKind,
    TaxSettings,
    financial_year,
    parse_recipient,
    parse_settings,
)
from tests.integration.tax_helpers import KARNATAKA_CUSTOMER, MAHARASHTRA_CUSTOMER, tax_options

from .tax_builders import PRICE, Account, link, run

NOW = datetime(2026, 12, 7, 12, tzinfo=IST).timestamp()
YEAR = financial_year(NOW)
SETTINGS = parse_settings(tax_options())
LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy_ledger"
ACME = parse_recipient(MAHARASHTRA_CUSTOMER, "Acme Fleet", "Pune")
OTHER = parse_recipient(KARNATAKA_CUSTOMER, "Other Fleet", "Bengaluru")


def _rows(path: Path) -> list[tuple[str, str, str, int, str]]:
    """Every document stored: (number, kind, series, serial, cause), in the order issued."""
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT number, kind, series, serial, cause FROM documents ORDER BY rowid"
        ).fetchall()


def _assert_series_whole(path: Path) -> None:
    """Each series is 1..n: no gap, no repeat; numbers unique; one document per cause."""
    rows = _rows(path)
    serials: dict[str, list[int]] = {}
    for _number, _kind, series, serial, _cause in rows:
        serials.setdefault(series, []).append(serial)
    for got in serials.values():
        assert sorted(got) == list(range(1, len(got) + 1))
    assert len({row[0] for row in rows}) == len(rows)
    assert not [c for c, n in Counter(row[4] for row in rows).items() if n > 1]


async def _account(
    path: Path, now: float = NOW, settings: TaxSettings | None = SETTINGS
) -> Account:
    account = Account(path, now, settings)
    await account.books.async_open()
    return account


async def test_payments_and_refunds_are_numbered_in_their_own_series(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    account = await _account(path)
    for n in (1, 2):
        await account.paid(n)
    await account.refunded(1, "r1", 500)
    assert [row[0] for row in _rows(path)] == [
        f"INV/{YEAR}/1",
        f"INV/{YEAR}/2",
        f"INV/{YEAR}/C1",
    ]
    (invoice, note) = await account.books.store.async_documents("s-1")
    assert (note.against, note.amounts.total) == (invoice.number, 500)


async def test_a_duplicate_delivery_issues_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    account = await _account(path)
    await account.paid(1)
    await account.delivered(1)
    await account.refunded(1, "r1", 500)
    # Razorpay's answer and its webhook both settle the refund: one credit note.
    async with account.books.change() as ledger:
        ledger.refunds["r1"].state = RefundState.PENDING
    assert [row[4] for row in _rows(path)] == ["payment:pay_1", "refund:r1"]


async def test_a_commit_that_fails_after_numbering_leaves_no_number_used(tmp_path: Path) -> None:
    """The documents were numbered and inserted, then the write failed: the redelivery
    issues the very same number, and the series has no gap."""
    path = tmp_path / "ledger.db"
    account = await _account(path)
    await account.paid(1)
    async with account.books.change() as ledger:
        ledger.add_link(link(2, NOW))
    real = store_documents.issue_dues
    numbered: list[str] = []

    def issue_then_fail(db: sqlite3.Connection, dues: Dues) -> None:
        real(db, dues)
        numbered.extend(row[0] for row in db.execute("SELECT number FROM documents"))
        raise sqlite3.OperationalError("database or disk is full")

    with (
        patch("custom_components.qr_charging.store.issue_dues", side_effect=issue_then_fail),
        pytest.raises(StorageError),
    ):
        await account.delivered(2)
    assert numbered == [f"INV/{YEAR}/1", f"INV/{YEAR}/2"]
    assert [row[0] for row in _rows(path)] == [f"INV/{YEAR}/1"]

    await account.delivered(2)
    assert [row[0] for row in _rows(path)] == [f"INV/{YEAR}/1", f"INV/{YEAR}/2"]
    (invoice,) = await account.books.store.async_documents("s-2")
    assert (invoice.payment_id, invoice.serial) == ("pay_2", 2)


async def test_a_b2b_request_whose_write_fails_issues_nothing(tmp_path: Path) -> None:
    """Its credit note and invoice were numbered, then the write failed: the next tap issues
    the very same numbers."""
    path = tmp_path / "ledger.db"
    account = await _account(path)
    await account.paid(1)
    real = store_documents.issue_b2b
    numbered: list[str] = []

    def issue_then_fail(*args: Any) -> list[Document]:
        numbered.extend(d.number for d in real(*args))
        raise sqlite3.OperationalError("database or disk is full")

    with (
        patch("custom_components.qr_charging.store.issue_b2b", side_effect=issue_then_fail),
        pytest.raises(StorageError),
    ):
        await account.books.async_b2b("pay_1", ACME, SETTINGS)
    assert [row[0] for row in _rows(path)] == [f"INV/{YEAR}/1"]

    docs = await account.books.async_b2b("pay_1", ACME, SETTINGS)
    assert (
        [d.number for d in docs]
        == numbered
        == [
            f"INV/{YEAR}/1",
            f"INV/{YEAR}/C1",
            f"INV/{YEAR}/2",
        ]
    )


async def test_many_changes_and_b2b_taps_at_once_leave_no_gap_and_no_repeat(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    account = await _account(path)
    sessions = range(1, 41)

    async def tap(n: int) -> object:
        try:
            return await account.books.async_b2b(f"pay_{n}", ACME, SETTINGS)
        except B2BRefused as err:
            return err.reason

    async def life(n: int) -> None:
        await account.paid(n)
        if n % 4 == 0:
            await account.refunded(n, f"r{n}", 300)

    # Sales, refunds and two taps of each session, interleaved as the event loop runs them:
    # a tap before its payment is refused ("nothing"), one after converts it.
    jobs = [life(n) for n in sessions] + [tap(n) for n in sessions for _ in range(2)]
    results = await asyncio.gather(*jobs)
    assert {r for r in results if isinstance(r, str)} <= {"nothing"}
    _assert_series_whole(path)
    for n in sessions:
        await account.books.async_b2b(f"pay_{n}", ACME, SETTINGS)
    _assert_series_whole(path)
    kinds = Counter(row[1] for row in _rows(path))
    # Each payment: its B2C invoice, credited whole or in part, and one B2B invoice.
    assert kinds["invoice"] == 2 * len(sessions)
    for n in sessions:
        docs = await account.books.store.async_documents(f"s-{n}")
        b2b_invoices = [d for d in docs if d.recipient is not None and d.kind.value == "invoice"]
        assert len(b2b_invoices) == 1
        assert sum(d.amounts.total for d in docs if d.against == docs[0].number) == PRICE


async def test_two_b2b_requests_at_once_issue_one_invoice(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    account = await _account(path)
    await account.paid(1)
    same = await asyncio.gather(
        account.books.async_b2b("pay_1", ACME, SETTINGS),
        account.books.async_b2b("pay_1", ACME, SETTINGS),
    )
    assert same[0] == same[1]
    assert [d.kind for d in same[0]] == [
        DocumentKind.INVOICE,
        DocumentKind.CREDIT_NOTE,
        DocumentKind.INVOICE,
    ]
    results = await asyncio.gather(
        account.books.async_b2b("pay_1", OTHER, SETTINGS), return_exceptions=True
    )
    assert isinstance(results[0], B2BRefused)
    assert results[0].reason == "other_recipient"
    assert len(_rows(path)) == 3


async def test_a_refund_after_b2b_credits_the_b2b_invoice(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    account = await _account(path)
    await account.paid(1)
    await account.books.async_b2b("pay_1", ACME, SETTINGS)
    await account.refunded(1, "r1", 700)
    *_, b2b_invoice, note = await account.books.store.async_documents("s-1")
    assert (note.kind, note.against, note.recipient) == (
        DocumentKind.CREDIT_NOTE,
        b2b_invoice.number,
        ACME,
    )
    assert (note.amounts.igst, note.amounts.cgst) == (note.amounts.tax, 0)


async def test_a_refund_is_credited_once_razorpay_has_taken_it(tmp_path: Path) -> None:
    """Recorded before asking is not refunded yet: a refund Razorpay refuses for good leaves the
    money with the owner, so it must leave the invoice uncredited."""
    path = tmp_path / "ledger.db"
    account = await _account(path)
    await account.paid(1)
    await account.refunded(1, "r1", 500, RefundState.REQUESTED)
    assert [row[4] for row in _rows(path)] == ["payment:pay_1"]
    async with account.books.change() as ledger:
        ledger.refunds["r1"].state = RefundState.FAILED
    assert [row[4] for row in _rows(path)] == ["payment:pay_1"]
    # Razorpay reports it processed after all: the money left, the credit note is issued.
    async with account.books.change() as ledger:
        ledger.refunds["r1"].state = RefundState.PROCESSED
    assert [row[4] for row in _rows(path)] == ["payment:pay_1", "refund:r1"]


async def test_a_refund_taken_then_refused_and_made_again_is_credited_once(
    tmp_path: Path,
) -> None:
    """Razorpay takes r1 (pending: its note is issued), then refuses it: the owner refunds
    again (r2). The money went back once, so r2 is covered by r1's note: ₹5 credited, not ₹10.
    A third refund, money that did not go back before, gets its own note."""
    path = tmp_path / "ledger.db"
    account = await _account(path)
    await account.paid(1)
    await account.refunded(1, "r1", 500, RefundState.PENDING)
    async with account.books.change(Wanted(payment_ids={"pay_1"})) as ledger:
        ledger.refunds["r1"].state = RefundState.FAILED
    await account.refunded(1, "r2", 500)
    docs = await account.books.store.async_documents("s-1")
    assert [(d.cause, d.amounts.total) for d in docs] == [
        ("payment:pay_1", PRICE),
        ("refund:r1", 500),
    ]
    await account.refunded(1, "r3", 300)
    docs = await account.books.store.async_documents("s-1")
    assert [(d.cause, d.amounts.total) for d in docs][1:] == [
        ("refund:r1", 500),
        ("refund:r3", 300),
    ]


async def test_a_restart_continues_the_series(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    account = await _account(path)
    await account.paid(1)
    await account.refunded(1, "r1", 500)
    await account.books.store.async_close()

    again = await _account(path)
    await again.paid(2)
    await again.refunded(2, "r2", 500)
    await again.books.async_b2b("pay_2", ACME, SETTINGS)
    assert [row[0] for row in _rows(path)] == [
        f"INV/{YEAR}/1",
        f"INV/{YEAR}/C1",
        f"INV/{YEAR}/2",
        f"INV/{YEAR}/C2",
        f"INV/{YEAR}/C3",
        f"INV/{YEAR}/3",
    ]
    _assert_series_whole(path)


async def test_the_series_start_again_at_the_financial_years_turn(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    last_minute = datetime(2027, 3, 31, 23, 59, tzinfo=IST).timestamp()
    account = await _account(path, last_minute)
    await account.paid(1)
    account.clock.now = last_minute + 60  # 1 April 00:00 IST (18:30 UTC on 31 March)
    await account.paid(2)
    # The refund of March's invoice is April's: a credit note of the new year.
    await account.refunded(1, "r1", 500)
    assert [row[0] for row in _rows(path)] == ["INV/2627/1", "INV/2728/1", "INV/2728/C1"]
    (_invoice, note) = await account.books.store.async_documents("s-1")
    assert note.against == "INV/2627/1"


async def test_a_four_character_prefix_numbers_the_years_999999th_invoice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its number is 16 characters, Rule 46's most. The millionth cannot be numbered: the
    payment is stored all the same (money is never refused for a document), without it, and
    the owner is told at ERROR to shorten the prefix."""
    path = tmp_path / "ledger.db"
    settings = parse_settings(tax_options(prefix="ABCD"))
    account = await _account(path, settings=settings)
    await account.paid(1)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE documents SET serial = 999998, number = 'ABCD/2627/999998'")
    await account.paid(2)
    assert [row[0] for row in _rows(path)][-1] == "ABCD/2627/999999"
    await account.paid(3)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM payments").fetchone() == (3,)
    assert await account.books.store.async_documents("s-3") == []
    assert [row[0] for row in _rows(path)][-1] == "ABCD/2627/999999"
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "ABCD/2627/1000000" in record.getMessage()
    assert "payment:pay_3" in record.getMessage()
    assert "shorter prefix" in record.getMessage()
    # Its refund has no document to credit; a B2B request refuses (nothing to replace).
    await account.refunded(3, "r3", 500)
    assert await account.books.store.async_documents("s-3") == []


async def test_a_b2b_invoice_whose_number_would_not_fit_is_refused_whole(
    tmp_path: Path,
) -> None:
    """The B2B invoice would be the year's millionth: refused (``numbers_full``), and its
    credit note of the B2C invoice, numbered first in the same transaction, is rolled back."""
    path = tmp_path / "ledger.db"
    account = await _account(path, settings=parse_settings(tax_options(prefix="ABCD")))
    await account.paid(1)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE documents SET serial = 999999, number = 'ABCD/2627/999999'")
    before = _rows(path)
    with pytest.raises(B2BRefused) as err:
        await account.books.async_b2b("pay_1", ACME, parse_settings(tax_options(prefix="ABCD")))
    assert err.value.reason == "numbers_full"
    assert _rows(path) == before


async def test_receipts_of_an_owner_without_a_gstin(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    account = await _account(path, settings=parse_settings({"legal_name": "Corner shop"}))
    await account.paid(1)
    await account.refunded(1, "r1", 2000)
    assert [row[0] for row in _rows(path)] == [f"INV/{YEAR}/R1", f"INV/{YEAR}/F1"]
    with pytest.raises(B2BRefused):
        await account.books.async_b2b("pay_1", ACME, TaxSettings())


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table of the version before documents, as stored (links without their band)."""
    tables = ("payments", "sessions", "refunds", "events", "bay_totals")
    with sqlite3.connect(path) as db:
        dump = {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}
        columns = [r[1] for r in db.execute("PRAGMA table_info(links)") if r[1] != "band"]
        dump["links"] = sorted(db.execute(f"SELECT {','.join(columns)} FROM links").fetchall())
    return dump


def _back_to_schema_5(path: Path) -> None:
    """The database as schema 5 left it: no documents table, no band, no documents_since."""
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            DROP TABLE documents;
            ALTER TABLE links DROP COLUMN band;
            DELETE FROM meta WHERE name = 'documents_since';
            PRAGMA user_version = 5;
            """
        )


async def test_the_upgrade_keeps_everything_and_documents_only_later_payments(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    before = await _account(path, settings=None)
    await before.paid(1)
    await before.refunded(1, "r1", 300)
    await before.refunded(1, "r2", 300, RefundState.REQUESTED)
    await before.books.store.async_close()
    _back_to_schema_5(path)
    stored = _dump(path)

    after = await _account(path, NOW + 600)
    assert _dump(path) == stored
    # The pre-upgrade payment's refund settles now, and another is made: no document for
    # either (its payment has none), while a new payment gets its invoice.
    async with after.books.change() as ledger:
        ledger.refunds["r2"].state = RefundState.PROCESSED
    await after.refunded(1, "r3", 300)
    await after.paid(2)
    assert await after.books.store.async_documents("s-1") == []
    assert [row[0] for row in _rows(path)] == [f"INV/{YEAR}/1"]
    # Its B2B request finds nothing to invoice.
    with pytest.raises(B2BRefused) as err:
        await after.books.async_b2b("pay_1", ACME, SETTINGS)
    assert err.value.reason == "nothing"


async def test_the_last_payment_before_the_upgrade_stays_without_a_document(
    tmp_path: Path,
) -> None:
    """``documents_since`` is that payment's exact time: written as SQLite's 15-digit text
    (SQLite before 3.43) it came out a fraction earlier, and the payment, written again by a
    repeated delivery after the upgrade, got an invoice."""
    path = tmp_path / "ledger.db"
    received = NOW + 0.3444443  # 17 significant digits; 15 round it down
    before = await _account(path, received, settings=None)
    await before.paid(1)
    await before.books.store.async_close()
    _back_to_schema_5(path)

    after = await _account(path, NOW + 600)
    await after.delivered(1)
    assert await after.books.store.async_documents("s-1") == []
    with sqlite3.connect(path) as db:
        (since,) = db.execute("SELECT value FROM meta WHERE name = 'documents_since'").fetchone()
    assert float(since) == received


async def test_payments_imported_from_the_json_ledger_of_0_1_get_no_document(
    tmp_path: Path,
) -> None:
    """The import runs after migration 6 marked an empty database: it marks its own payments
    as before documents (else a late write of one would invoice a 0.1-era payment today)."""
    names = ("qr_charging.legacy-entry.ledger", "qr_charging.legacy-entry.archive.jsonl")
    for name in names:
        shutil.copy(LEGACY / name, tmp_path / name)
    store = LedgerStore(tmp_path / "l.db", run, legacy=tuple(tmp_path / n for n in names))
    await Books(store, clock=lambda: NOW).async_open()
    await store.async_close()
    with sqlite3.connect(tmp_path / "l.db") as db:
        (last,) = db.execute("SELECT MAX(received_at) FROM payments").fetchone()
        since = db.execute("SELECT value FROM meta WHERE name = 'documents_since'").fetchone()
    assert last is not None
    assert since is not None
    assert float(since[0]) == last


async def test_a_refused_refund_paid_after_the_owners_retry_is_credited_too(
    tmp_path: Path,
) -> None:
    """r1 taken (its note), refused; the owner's r2 is covered by r1's note; then Razorpay
    reports r1 processed after all: ₹10 went back, so ₹10 is credited (r2 gets its note)."""
    account = await _account(tmp_path / "ledger.db")
    await account.paid(1)
    await account.refunded(1, "r1", 500, RefundState.PENDING)
    async with account.books.change(Wanted(payment_ids={"pay_1"})) as ledger:
        ledger.refunds["r1"].state = RefundState.FAILED
    await account.refunded(1, "r2", 500)
    async with account.books.change(Wanted(payment_ids={"pay_1"})) as ledger:
        ledger.refunds["r1"].state = RefundState.PROCESSED  # paid after all

    docs = await account.books.store.async_documents("s-1")
    assert sorted(d.cause for d in docs if d.cause.startswith("refund:")) == [
        "refund:r1",
        "refund:r2",
    ]
    assert sum(d.amounts.total for d in docs if d.cause.startswith("refund:")) == 1000
