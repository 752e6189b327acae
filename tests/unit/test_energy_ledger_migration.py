"""Schema 4 (metered bays, issue #24): an old ledger is migrated and nothing else changes.

The old database is the JSON ledger of 0.1 (``tests/fixtures/legacy_ledger``) as schema 3 held
it: imported, then copied into a database made by the first three migrations only.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from custom_components.qr_charging.books import Books
from custom_components.qr_charging.records import SESSIONS
from custom_components.qr_charging.store import LedgerStore
from custom_components.qr_charging.store_schema import MIGRATIONS, SCHEMA_VERSION, select

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy_ledger"
NOW = 1_764_000_000.0
TABLES = ("links", "payments", "sessions", "refunds", "events", "bay_totals", "meta")
# What schemas 4 and 5 add, with the value every old row gets.
NEW_COLUMNS = {
    "links": {"energy_wh": 0, "price_per_kwh_paise": 0, "band": 100},
    "payments": {"energy_wh": 0},
    "sessions": {
        "energy_paid_wh": 0,
        "energy_used_wh": 0.0,
        "price_per_kwh_paise": 0,
        "meter_wh": None,
    },
    "bay_totals": {"energy_wh": 0},
}


async def _run(job: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(job)


def _rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return {
            table: [dict(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]
            for table in TABLES
        }
    finally:
        db.close()


def _schema_3_copy(source: Path, target: Path) -> None:
    """``target``: a database of schema 3 holding the old columns of ``source``'s rows."""
    db = sqlite3.connect(target, isolation_level=None)
    try:
        db.executescript("".join(MIGRATIONS[:3]) + "PRAGMA user_version = 3;")
        db.execute("ATTACH DATABASE ? AS source", (str(source),))
        for table in TABLES:
            columns = ",".join(row[1] for row in db.execute(f"PRAGMA main.table_info({table})"))
            db.execute(f"INSERT INTO main.{table} SELECT {columns} FROM source.{table}")
        db.execute("DETACH DATABASE source")
    finally:
        db.close()


async def test_a_schema_3_ledger_gets_the_energy_columns_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    names = ("qr_charging.legacy-entry.ledger", "qr_charging.legacy-entry.archive.jsonl")
    for name in names:
        shutil.copy(LEGACY / name, tmp_path / name)
    imported = tmp_path / "imported.db"
    books = Books(
        LedgerStore(imported, _run, legacy=tuple(tmp_path / n for n in names)), clock=lambda: NOW
    )
    await books.async_open()
    await books.store.async_close()
    old = tmp_path / "ledger.db"
    _schema_3_copy(imported, old)
    before = _rows(old)
    assert all(before[t] for t in ("sessions", "payments", "refunds"))
    assert "energy_paid_wh" not in before["sessions"][0]

    books = Books(LedgerStore(old, _run), clock=lambda: NOW)
    await books.async_open()
    counts = await books.store.async_counts()
    await books.store.async_close()

    after = _rows(old)
    db = sqlite3.connect(old)
    db.row_factory = sqlite3.Row
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    sessions = select(db, SESSIONS, "1")
    db.close()
    # Every session of before is one sold by time.
    assert len(sessions) == 4
    assert not any(s.sells_energy or s.energy_used_wh for s in sessions)
    for table in TABLES:
        added = NEW_COLUMNS.get(table, {})
        # Schema 6 notes since when documents are issued (after the last payment stored); the
        # import of the JSON ledger notes it too, so the copy of schema 3 carries it.
        rows = [r for r in after[table] if r.get("name") != "documents_since"]
        old_rows = [r for r in before[table] if r.get("name") != "documents_since"]
        assert [{k: v for k, v in row.items() if k not in added} for row in rows] == (old_rows), (
            table
        )
        assert all({k: row[k] for k in added} == added for row in after[table]), table
    assert counts["sessions"] == {"ended": 3, "refunded": 1}
    assert counts["payments"] == {"attention": 1, "session": 4}
