"""The ledger's database: its schema, its migrations, and records to and from its rows.

Plain Python (``sqlite3``), no Home Assistant imports. The schema carries a version
(``PRAGMA user_version``) and each newer version is one migration script; never edit one that
has shipped, add the next. Every function here takes the one connection ``store.LedgerStore``
hands it, in the executor.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any, cast

from .records import BayTotals, Kind, Record

# Fields stored as JSON text, and as 0/1.
_LIST_FIELDS = frozenset({"events", "payment_ids"})
_BOOL_FIELDS = frozenset({"owner"})

# Documents are issued for payments stored after this mark, not before (migration 6 sets it
# over the payments present; importing the JSON ledger of 0.1 sets it again over its own).
MARK_DOCUMENTS_SINCE = """
    INSERT OR REPLACE INTO meta SELECT 'documents_since', printf('%!.17g', MAX(received_at))
        FROM payments HAVING COUNT(*) > 0"""

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE links (
        link_id TEXT PRIMARY KEY, reference_id TEXT NOT NULL, bay_id TEXT NOT NULL,
        plan_code TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,
        seconds INTEGER NOT NULL, expire_by INTEGER NOT NULL, created_at REAL NOT NULL,
        short_url TEXT NOT NULL, status TEXT NOT NULL, payment_id TEXT);
    CREATE INDEX links_reference ON links (reference_id);
    CREATE INDEX links_open ON links (status, created_at);
    CREATE TABLE payments (
        payment_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, currency TEXT NOT NULL,
        received_at REAL NOT NULL, state TEXT NOT NULL, events TEXT NOT NULL, link_id TEXT,
        session_id TEXT, bay_id TEXT, plan_code TEXT, method TEXT, problem TEXT, paid_at REAL);
    CREATE INDEX payments_state ON payments (state);
    CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY, bay_id TEXT NOT NULL, state TEXT NOT NULL,
        created_at REAL NOT NULL, seconds INTEGER NOT NULL, paid_paise INTEGER NOT NULL,
        payment_ids TEXT NOT NULL, plan_code TEXT, owner INTEGER NOT NULL, started_at REAL,
        until REAL, ended_at REAL, end_reason TEXT);
    CREATE INDEX sessions_state ON sessions (state);
    CREATE INDEX sessions_created ON sessions (created_at);
    CREATE TABLE refunds (
        key TEXT PRIMARY KEY, payment_id TEXT NOT NULL, amount INTEGER NOT NULL,
        created_at REAL NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, session_id TEXT,
        refund_id TEXT, bay_id TEXT);
    CREATE INDEX refunds_payment ON refunds (payment_id);
    CREATE INDEX refunds_session ON refunds (session_id);
    CREATE INDEX refunds_refund_id ON refunds (refund_id);
    CREATE INDEX refunds_state ON refunds (state);
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY, at REAL NOT NULL, event TEXT NOT NULL, outcome TEXT NOT NULL);
    CREATE INDEX events_at ON events (at);
    CREATE TABLE bay_totals (
        bay_id TEXT PRIMARY KEY, revenue_paise INTEGER NOT NULL, sessions INTEGER NOT NULL);
    CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: each payment keeps the time it bought and how much of it was cut off unserved.
    """
    ALTER TABLE payments ADD COLUMN seconds INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE payments ADD COLUMN cut_s REAL NOT NULL DEFAULT 0;
    UPDATE payments SET seconds = COALESCE(
        (SELECT links.seconds FROM links WHERE links.link_id = payments.link_id), 0);
    """,
    # 3: what the customer was shown before paying (start, add time, static QR), per link and
    # session; NULL for links made before (and by the owner's action).
    """
    ALTER TABLE links ADD COLUMN intent TEXT;
    ALTER TABLE sessions ADD COLUMN intent TEXT;
    """,
    # 4: metered bays (issue #24): the energy a link (and its price) and a payment buy, and per
    # session the energy paid for and used (Wh) and its price per kWh, per bay the energy its
    # sessions drew (Wh); 0 for time sold.
    """
    ALTER TABLE links ADD COLUMN energy_wh INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE links ADD COLUMN price_per_kwh_paise INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE payments ADD COLUMN energy_wh INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN energy_paid_wh INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN energy_used_wh REAL NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN price_per_kwh_paise INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE bay_totals ADD COLUMN energy_wh INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: a running switch bay session's meter counter reading (Wh) stored with its energy
    # counted so far (``energy_used_wh``), so a restart counts on from them; NULL otherwise.
    """
    ALTER TABLE sessions ADD COLUMN meter_wh REAL;
    """,
    # 6: receipts and GST invoices (issue #26): the documents issued, each numbered in its
    # series in the transaction that stores it (``store_documents``); the price band a link
    # was sold in (percent of the plan's price), for the document to name it; and since when
    # documents are issued: after the last payment stored before (which gets none), its time
    # written to round-trip exactly (CAST AS TEXT keeps 15 digits before SQLite 3.43, a
    # fraction earlier than the payment, which then got a document when written again).
    f"""
    CREATE TABLE documents (
        number TEXT PRIMARY KEY, kind TEXT NOT NULL, series TEXT NOT NULL,
        serial INTEGER NOT NULL, cause TEXT NOT NULL UNIQUE, issued_at REAL NOT NULL,
        payment_id TEXT NOT NULL, session_id TEXT NOT NULL, bay_id TEXT NOT NULL,
        bay_name TEXT NOT NULL, site_name TEXT NOT NULL, site_address TEXT NOT NULL,
        plan_name TEXT NOT NULL, seconds INTEGER NOT NULL, energy_wh INTEGER NOT NULL,
        band INTEGER NOT NULL, total INTEGER NOT NULL, taxable INTEGER NOT NULL,
        cgst INTEGER NOT NULL, sgst INTEGER NOT NULL, igst INTEGER NOT NULL,
        rate_bp INTEGER NOT NULL, place_of_supply TEXT NOT NULL, sac TEXT NOT NULL,
        supplier_name TEXT NOT NULL, supplier_gstin TEXT NOT NULL,
        supplier_address TEXT NOT NULL, recipient_gstin TEXT,
        recipient_name TEXT, recipient_address TEXT, against TEXT,
        UNIQUE (series, serial));
    CREATE INDEX documents_payment ON documents (payment_id);
    CREATE INDEX documents_session ON documents (session_id);
    CREATE INDEX documents_issued ON documents (issued_at);
    ALTER TABLE links ADD COLUMN band INTEGER NOT NULL DEFAULT 100;
    {MARK_DOCUMENTS_SINCE};
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

INSERT_EVENT = "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?)"


def _columns(kind: Kind[Any]) -> list[str]:
    return [f.name for f in fields(kind.cls)]


def _row(kind: Kind[Any], record: Record) -> list[Any]:
    values = []
    for name in _columns(kind):
        value = getattr(record, name)
        values.append(json.dumps(value) if name in _LIST_FIELDS else value)
    return values


def _record[R: Record](kind: Kind[R], row: sqlite3.Row) -> R:
    data = {name: row[name] for name in row.keys()}  # noqa: SIM118 - sqlite3.Row
    for name in _LIST_FIELDS & data.keys():
        data[name] = json.loads(data[name])
    for name in _BOOL_FIELDS & data.keys():
        data[name] = bool(data[name])
    return cast(R, kind.cls.from_dict(data))


def marks(values: Iterable[object]) -> str:
    """One ``?`` per value, for ``IN (...)``."""
    return ",".join("?" for _ in values)


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed whole when the block ends, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite3.Connection) -> None:
    """Bring the schema to ``SCHEMA_VERSION``, one transaction per version.

    Raises ``ValueError`` for a database of a newer version than this one knows.
    """
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ValueError(f"database schema {version} is newer than this version knows")
    for number in range(version, SCHEMA_VERSION):
        with transaction(db):
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {number + 1}")


def select[R: Record](
    db: sqlite3.Connection, kind: Kind[R], where: str, params: Iterable[object] = ()
) -> list[R]:
    """The records of one table that ``where`` picks."""
    cursor = db.execute(f"SELECT * FROM {kind.table} WHERE {where}", tuple(params))
    return [_record(kind, row) for row in cursor]


def by_keys[R: Record](
    db: sqlite3.Connection, kind: Kind[R], column: str, keys: Iterable[str]
) -> list[R]:
    """The records of one table whose ``column`` is one of ``keys``."""
    wanted = sorted(set(keys))
    found: list[R] = []
    # SQLite's default limit of bound parameters is 999.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found += select(db, kind, f"{column} IN ({marks(chunk)})", chunk)
    return found


def upsert(db: sqlite3.Connection, kind: Kind[Any], record: Record) -> None:
    """Write a record whole, in place of the stored one with its key."""
    columns = _columns(kind)
    db.execute(
        f"INSERT OR REPLACE INTO {kind.table} ({','.join(columns)}) VALUES ({marks(columns)})",
        _row(kind, record),
    )


def add_bay_totals(db: sqlite3.Connection, totals: dict[str, BayTotals]) -> None:
    """Move the bays' running totals by what one change counted."""
    db.executemany(
        """INSERT INTO bay_totals (bay_id, revenue_paise, sessions, energy_wh)
            VALUES (?, ?, ?, ?) ON CONFLICT (bay_id) DO UPDATE SET
            revenue_paise = revenue_paise + excluded.revenue_paise,
            sessions = sessions + excluded.sessions,
            energy_wh = energy_wh + excluded.energy_wh""",
        [(bay, t.revenue_paise, t.sessions, t.energy_wh) for bay, t in totals.items()],
    )
