"""Schema 5 (review #24, 1): a running switch bay session keeps its meter's counter reading.

A schema 4 ledger holding a running metered session is migrated: the session gets
``meter_wh`` NULL and nothing else changes; the count and reading a change stores while it
runs are read back after the store is opened again (an HA restart).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from custom_components.qr_charging.books import Books
from custom_components.qr_charging.records import SessionState
from custom_components.qr_charging.store import LedgerStore
from custom_components.qr_charging.store_schema import MIGRATIONS, SCHEMA_VERSION

NOW = 1_764_000_000.0
SESSION = {
    "session_id": "s-1",
    "bay_id": "bay-1",
    "state": "active",
    "created_at": NOW - 600,
    "seconds": 7200,
    "paid_paise": 3000,
    "payment_ids": '["pay_1"]',
    "plan_code": "kwh",
    "owner": 0,
    "started_at": NOW - 590,
    "until": NOW + 6610,
    "ended_at": None,
    "end_reason": None,
    "intent": "start",
    "energy_paid_wh": 2000,
    "energy_used_wh": 0.0,
    "price_per_kwh_paise": 1500,
}


async def _run(job: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(job)


def _schema_4(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript("".join(MIGRATIONS[:4]) + "PRAGMA user_version = 4;")
        names = ",".join(SESSION)
        marks = ",".join("?" for _ in SESSION)
        db.execute(f"INSERT INTO sessions ({names}) VALUES ({marks})", tuple(SESSION.values()))
    finally:
        db.close()


def _session_row(path: Path) -> dict[str, Any]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return dict(db.execute("SELECT * FROM sessions").fetchone())
    finally:
        db.close()


async def _open(path: Path) -> Books:
    books = Books(LedgerStore(path, _run), clock=lambda: NOW)
    await books.async_open()
    return books


async def test_a_schema_4_session_gets_no_reading_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    _schema_4(path)
    books = await _open(path)
    session = books.ledger.running_session("bay-1")
    await books.store.async_close()

    assert SCHEMA_VERSION >= 5
    assert session is not None
    assert (session.state, session.energy_used_wh, session.meter_wh) == (
        SessionState.ACTIVE,
        0.0,
        None,
    )
    assert _session_row(path) == {**SESSION, "meter_wh": None}


async def test_the_count_and_reading_stored_while_running_survive_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    _schema_4(path)
    books = await _open(path)
    session = books.ledger.running_session("bay-1")
    assert session is not None
    async with books.change():
        session.energy_used_wh, session.meter_wh = 512.0, 12_512.0
    await books.store.async_close()

    again = await _open(path)
    resumed = again.ledger.running_session("bay-1")
    await again.store.async_close()
    assert resumed is not None
    assert (resumed.energy_used_wh, resumed.meter_wh) == (512.0, 12_512.0)
