"""Reading the ledger's history from the database: counts by state, and the sessions' export.

Plain Python (``sqlite3``), no Home Assistant imports. History beyond the working set is only
ever read by query, here, in the executor on ``store.LedgerStore``'s connection.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

SESSION_COLUMNS = (
    "session_id",
    "bay_id",
    "state",
    "owner",
    "plan_code",
    "seconds",
    "paid_paise",
    "refunded_paise",
    "too_small_paise",
    "payment_ids",
    "created_at",
    "started_at",
    "until",
    "ended_at",
    "end_reason",
    "energy_paid_wh",
    "energy_wh",
    "price_per_kwh_paise",
)
# ``+r.state``: not by the state index, which would scan every refund of a state per session.
_EXPORT_QUERY = """
    SELECT s.session_id, s.bay_id, s.state, s.owner, s.plan_code, s.seconds,
        (SELECT COALESCE(SUM(p.amount), 0) FROM payments p, json_each(s.payment_ids) j
            WHERE p.payment_id = j.value),
        (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r
            WHERE r.session_id = s.session_id AND +r.state NOT IN ('failed', 'too_small')),
        (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r
            WHERE r.session_id = s.session_id AND +r.state = 'too_small'),
        s.payment_ids, s.created_at, s.started_at, s.until, s.ended_at, s.end_reason,
        s.energy_paid_wh, s.energy_used_wh, s.price_per_kwh_paise
    FROM sessions s WHERE s.created_at >= ? AND s.created_at < ? ORDER BY s.created_at
"""


def counts(db: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """How many records of each kind are in each state (for diagnostics)."""
    found: dict[str, dict[str, int]] = {}
    for table, column in (
        ("links", "status"),
        ("payments", "state"),
        ("sessions", "state"),
        ("refunds", "state"),
    ):
        rows = db.execute(
            f"SELECT {column}, COUNT(*) FROM {table} GROUP BY {column} ORDER BY {column}"
        )
        found[table] = {row[0]: row[1] for row in rows}
    found["events"] = {"stored": db.execute("SELECT COUNT(*) FROM events").fetchone()[0]}
    # Kept because Razorpay refunds nothing under ₹1.
    small = db.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE state = 'too_small'"
    ).fetchone()[0]
    found["refunds_too_small"] = {"paise": small}
    return found


def export(db: sqlite3.Connection, path: Path, start: float, end: float) -> int:
    """Write the sessions created in ``[start, end)`` as CSV, row by row; return how many.

    Written beside ``path`` and renamed into place, so a reader never sees half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(SESSION_COLUMNS)
        for row in db.execute(_EXPORT_QUERY, (start, end)):
            values = list(row)
            values[3] = bool(values[3])
            values[9] = " ".join(json.loads(values[9]))
            writer.writerow("" if v is None else v for v in values)
            count += 1
    tmp.replace(path)
    return count
