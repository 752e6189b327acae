"""The ledger's database (real SQLite in a temporary folder), through the books' changes."""

from __future__ import annotations

import asyncio
import csv
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from custom_components.qr_charging.books import Books
from custom_components.qr_charging.ledger import EVENT_MEMORY_S, Wanted
from custom_components.qr_charging.payment_rules import (
    Outcome,
    add_refund,
    apply_payment,
    refundable,
)
from custom_components.qr_charging.razorpay_events import PaymentNotice
from custom_components.qr_charging.records import (
    LinkRecord,
    RefundRecord,
    RefundState,
    SessionState,
)
from custom_components.qr_charging.session_rules import begin, confirm, finish
from custom_components.qr_charging.store import LedgerStore, StorageError

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy_ledger"
NOW = 1_764_000_000.0


async def _run(job: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(job)


def _books(path: Path, legacy: tuple[Path, ...] = ()) -> Books:
    return Books(LedgerStore(path, _run, legacy=legacy), clock=lambda: NOW)


def _link(n: int) -> LinkRecord:
    return LinkRecord(
        link_id=f"plink_{n}",
        reference_id=f"s-{n}",
        bay_id="bay-1",
        plan_code="p30",
        amount=2000,
        currency="INR",
        seconds=1800,
        expire_by=int(NOW) + 1200,
        created_at=NOW,
        short_url=f"https://example.com/{n}",
    )


def _notice(n: int) -> PaymentNotice:
    return PaymentNotice(f"pay_{n}", 2000, "INR", "captured", link_id=f"plink_{n}")


async def _paid(books: Books, n: int) -> None:
    async with books.change() as ledger:
        ledger.add_link(_link(n))
    async with books.change(Wanted.for_payment(_notice(n), f"evt_{n}")) as ledger:
        apply_payment(ledger, _notice(n), "payment_link.paid", NOW)
        ledger.note_event(f"evt_{n}", "payment_link.paid", "new_session", NOW)


async def test_any_write_error_is_a_storage_error_and_changes_nothing(tmp_path: Path) -> None:
    """Not only SQLite's and the disk's errors: an integer SQLite cannot hold (OverflowError)
    is a ``StorageError`` too, so every caller's retry path runs (review #24, finding 5)."""
    books = _books(tmp_path / "ledger.db")
    await books.async_open()
    huge = replace(_link(1), amount=10**20)

    with pytest.raises(StorageError, match="too large"):
        async with books.change() as ledger:
            ledger.add_link(huge)
    assert "plink_1" not in books.ledger.links

    async with books.change() as ledger:
        ledger.add_link(_link(1))
    assert books.ledger.links["plink_1"].amount == 2000
    await books.store.async_close()


async def test_history_leaves_memory_and_comes_back_when_a_change_needs_it(
    tmp_path: Path,
) -> None:
    books = _books(tmp_path / "ledger.db")
    await books.async_open()
    await _paid(books, 1)
    session = books.ledger.sessions["s-1"]
    async with books.change():
        begin(session, NOW)
        confirm(session, NOW + 1)
    async with books.change():
        finish(session, NOW + 1800, "deadline")
    # Ended: nothing of it stays in memory, but the bay's totals count it.
    assert books.ledger.sessions == {}
    assert books.ledger.payments == {}
    assert books.ledger.totals["bay-1"].revenue_paise == 2000
    assert books.ledger.totals["bay-1"].sessions == 1

    # Razorpay delivers the same event again, and another event of the same payment.
    async with books.change(Wanted.for_payment(_notice(1), "evt_1")) as ledger:
        assert ledger.seen_event("evt_1")
    async with books.change(Wanted.for_payment(_notice(1), "evt_other")) as ledger:
        assert not ledger.seen_event("evt_other")
        again = apply_payment(ledger, _notice(1), "payment.captured", NOW + 2000)
    assert again.outcome is Outcome.DUPLICATE
    assert again.session is not None
    assert again.session.state is SessionState.ENDED
    await books.store.async_close()

    reopened = _books(tmp_path / "ledger.db")
    await reopened.async_open()
    assert reopened.ledger.sessions == {}
    assert reopened.ledger.totals["bay-1"].revenue_paise == 2000
    async with reopened.change(Wanted(payment_ids={"pay_1"})) as ledger:
        assert ledger.payments["pay_1"].events == [
            "payment_link.paid",
            "payment.captured",
        ]
    await reopened.store.async_close()


async def test_the_working_set_survives_a_restart(tmp_path: Path) -> None:
    books = _books(tmp_path / "ledger.db")
    await books.async_open()
    await _paid(books, 1)
    async with books.change() as ledger:
        ledger.add_link(_link(2))
        add_refund(ledger, RefundRecord("r-1", "pay_1", 500, NOW, RefundState.PROCESSED, "owner"))
    await books.store.async_close()

    reopened = _books(tmp_path / "ledger.db")
    await reopened.async_open()
    ledger = reopened.ledger
    assert set(ledger.sessions) == {"s-1"}
    assert ledger.sessions["s-1"].state is SessionState.PAID
    assert set(ledger.links) == {"plink_2"}  # the paid one is history
    # The running session's payment, with its settled refund: 1,500 paise left to refund.
    assert refundable(ledger, "pay_1") == 1500
    assert ledger.refunds["r-1"].bay_id == "bay-1"
    await reopened.store.async_close()


async def test_a_commit_that_fails_changes_nothing(tmp_path: Path) -> None:
    books = _books(tmp_path / "ledger.db")
    await books.async_open()
    await _paid(books, 1)
    session = books.ledger.sessions["s-1"]

    # Injected at the store's boundary: a disk that is full cannot be made here.
    full = sqlite3.OperationalError("database or disk is full")

    async def start_and_link() -> None:
        async with books.change() as ledger:
            begin(session, NOW)
            ledger.add_link(_link(2))

    with patch.object(LedgerStore, "_write", side_effect=full), pytest.raises(StorageError):
        await start_and_link()
    assert session.state is SessionState.PAID
    assert session.until is None
    assert books.ledger.sessions["s-1"] is session
    assert "plink_2" not in books.ledger.links

    # The same change goes through once the disk does.
    async with books.change():
        begin(session, NOW)
    await books.store.async_close()
    reopened = _books(tmp_path / "ledger.db")
    await reopened.async_open()
    assert reopened.ledger.sessions["s-1"].state is SessionState.STARTING
    assert "plink_2" not in reopened.ledger.links
    await reopened.store.async_close()


async def test_an_error_inside_a_change_undoes_it(tmp_path: Path) -> None:
    books = _books(tmp_path / "ledger.db")
    await books.async_open()

    async def refused() -> None:
        async with books.change() as ledger:
            ledger.add_link(_link(1))
            raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await refused()
    assert books.ledger.links == {}
    counts = await books.store.async_counts()
    assert counts["links"] == {}
    await books.store.async_close()


async def test_old_event_ids_are_forgotten(tmp_path: Path) -> None:
    books = _books(tmp_path / "ledger.db")
    await books.async_open()
    async with books.change() as ledger:
        ledger.note_event("evt_old", "payment.captured", "new_session", NOW - EVENT_MEMORY_S - 1)
        ledger.note_event("evt_new", "payment.captured", "new_session", NOW)
    await books.store.async_forget_events(NOW - EVENT_MEMORY_S)
    async with books.change(Wanted(event_ids={"evt_old", "evt_new"})) as ledger:
        assert not ledger.seen_event("evt_old")
        assert ledger.seen_event("evt_new")
    await books.store.async_close()


async def test_a_database_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StorageError, match="newer"):
        await _books(path).async_open()


async def test_the_json_ledger_is_imported_once(tmp_path: Path) -> None:
    # Written by the JSON-ledger version (tests/fixtures/legacy_ledger/make_fixture.py).
    names = ("qr_charging.legacy-entry.ledger", "qr_charging.legacy-entry.archive.jsonl")
    for name in names:
        shutil.copy(LEGACY / name, tmp_path / name)
    legacy = tuple(tmp_path / name for name in names)

    books = _books(tmp_path / "ledger.db", legacy)
    await books.async_open()
    # 3,500 paise archived for bay-1 (two sessions) and 2,000 less a pending 1,333 refund live.
    assert books.ledger.totals["bay-1"].revenue_paise == 4167
    assert books.ledger.totals["bay-1"].sessions == 3
    assert books.ledger.totals["bay-2"].revenue_paise == 0
    # Unpaid links of the last day (one was paid with the wrong amount) are open.
    assert set(books.ledger.links) == {"plink_legacy0005", "plink_legacy0006"}
    assert [r.key for r in books.ledger.refunds.values() if not r.settled] == ["r-legacy0004"]
    assert all(not path.exists() for path in legacy)
    assert all(path.with_name(path.name + ".migrated").exists() for path in legacy)
    counts = await books.store.async_counts()
    assert counts["sessions"] == {"ended": 3, "refunded": 1}
    assert counts["payments"] == {"attention": 1, "session": 4}
    assert counts["events"] == {"stored": 5}
    export = tmp_path / "export.csv"
    assert await books.store.async_export(export, 0, NOW) == 4
    rows = list(csv.DictReader(export.open()))
    assert [r["session_id"] for r in rows] == [f"s-legacy000{n}" for n in (1, 2, 3, 4)]
    assert rows[1]["refunded_paise"] == "500"
    await books.store.async_close()

    # A crash after the import but before the rename: the files are back, counted once.
    for path in legacy:
        path.with_name(path.name + ".migrated").rename(path)
    again = _books(tmp_path / "ledger.db", legacy)
    await again.async_open()
    assert again.ledger.totals["bay-1"].revenue_paise == 4167
    assert not legacy[0].exists()
    await again.store.async_close()


async def test_export_takes_a_time_range(tmp_path: Path) -> None:
    books = _books(tmp_path / "ledger.db")
    await books.async_open()
    for n in (1, 2, 3):
        await _paid(books, n)
        books.ledger.sessions[f"s-{n}"].created_at = NOW + n
        async with books.change() as ledger:
            ledger.sessions[f"s-{n}"].created_at = NOW + n * 100
    export = tmp_path / "export.csv"
    assert await books.store.async_export(export, NOW + 150, NOW + 300) == 1
    (row,) = csv.DictReader(export.open())
    assert (row["session_id"], row["paid_paise"], row["payment_ids"]) == ("s-2", "2000", "pay_2")
    await books.store.async_close()


async def test_an_archive_line_cut_by_a_crash_loses_only_the_cut_part(tmp_path: Path) -> None:
    """The JSON version appended the next batch to a line a crash had cut short."""
    names = ("qr_charging.legacy-entry.ledger", "qr_charging.legacy-entry.archive.jsonl")
    shutil.copy(LEGACY / names[0], tmp_path / names[0])
    whole = (LEGACY / names[1]).read_text(encoding="utf-8").strip()
    (tmp_path / names[1]).write_text(whole[: len(whole) // 2] + whole + "\n", encoding="utf-8")

    books = _books(tmp_path / "ledger.db", tuple(tmp_path / name for name in names))
    await books.async_open()
    counts = await books.store.async_counts()
    assert counts["sessions"] == {"ended": 3, "refunded": 1}
    assert books.ledger.totals["bay-1"].revenue_paise == 4167
    await books.store.async_close()
