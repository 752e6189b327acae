"""The database's schema (``store_schema``) on real SQLite: migrations, rows, lookups by key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from custom_components.qr_charging.records import (
    PAYMENTS,
    SESSIONS,
    PaymentRecord,
    PaymentState,
    SessionRecord,
    SessionState,
)
from custom_components.qr_charging.store_schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    by_keys,
    migrate,
    select,
    transaction,
    upsert,
)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.row_factory = sqlite3.Row
    return db


def test_a_database_of_the_first_version_is_migrated_with_its_records(tmp_path: Path) -> None:
    """Version 1 → now: each payment gets the seconds its link bought; intents are empty."""
    db = _connect(tmp_path / "ledger.db")
    db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    db.execute(
        "INSERT INTO links VALUES ('plink_1', 's-1', 'bay-1', 'p30', 2000, 'INR', 1800, 0, 1.0, "
        "'https://x/1', 'paid', 'pay_1')"
    )
    db.execute(
        "INSERT INTO payments VALUES ('pay_1', 2000, 'INR', 1.0, 'session', '[]', 'plink_1', "
        "'s-1', 'bay-1', 'p30', 'upi', NULL, NULL)"
    )
    db.execute(
        "INSERT INTO payments VALUES ('pay_2', 900, 'INR', 1.0, 'unmatched', '[]', NULL, "
        "NULL, NULL, NULL, 'upi', NULL, NULL)"
    )

    migrate(db)

    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    payments = {p.payment_id: p for p in select(db, PAYMENTS, "1")}
    assert (payments["pay_1"].seconds, payments["pay_1"].cut_s) == (1800, 0.0)
    assert payments["pay_2"].seconds == 0
    assert db.execute("SELECT intent FROM links").fetchall()[0][0] is None
    migrate(db)  # at the current version: nothing to do
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_record_comes_back_as_it_was_written(tmp_path: Path) -> None:
    """Lists travel as JSON and ``owner`` as 0/1; a rewrite replaces the row."""
    db = _connect(tmp_path / "ledger.db")
    migrate(db)
    session = SessionRecord(
        "s-1", "bay-1", SessionState.ACTIVE, 1.0, 1800, 2000, ["pay_1", "pay_2"], owner=True
    )
    with transaction(db):
        upsert(db, SESSIONS, session)
        session.until = 1801.0
        upsert(db, SESSIONS, session)

    (stored,) = select(db, SESSIONS, "session_id = ?", ["s-1"])

    assert stored == session
    assert stored.owner is True
    assert stored.payment_ids == ["pay_1", "pay_2"]


def test_records_are_found_by_more_keys_than_sqlite_binds_at_once(tmp_path: Path) -> None:
    """SQLite binds at most 999 parameters by default: the keys are asked for in chunks."""
    db = _connect(tmp_path / "ledger.db")
    migrate(db)
    with transaction(db):
        for n in range(1200):
            upsert(db, PAYMENTS, PaymentRecord(f"pay_{n}", 100, "INR", 1.0, PaymentState.SESSION))

    found = by_keys(db, PAYMENTS, "payment_id", [f"pay_{n}" for n in range(1200)])

    assert len(found) == 1200
    assert by_keys(db, PAYMENTS, "payment_id", []) == []


def test_a_transaction_that_raises_stores_nothing(tmp_path: Path) -> None:
    db = _connect(tmp_path / "ledger.db")
    migrate(db)
    payment = PaymentRecord("pay_1", 100, "INR", 1.0, PaymentState.SESSION)

    def write_then_fail() -> None:
        with transaction(db):
            upsert(db, PAYMENTS, payment)
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_then_fail()

    assert select(db, PAYMENTS, "1") == []
