"""The owner's month: ``export_tax`` over a month of paid sessions (plain Python, no HA).

A ledger of ``sessions`` paid sessions spread over November 2026 (India's time), written day
by day through the integration's own store as the books write them: each day's records in one
transaction with the documents they make due (``invoices.dues_of``: an invoice per payment, a
credit note per refund, one in fifty sessions), and one in twenty sessions then invoiced to a
business customer (``LedgerStore.async_b2b``: a credit note and a B2B invoice). Then the
export the action runs (``LedgerStore.async_export_tax``) is timed, with the peak of Python's
allocations while it runs (``tracemalloc``): the rows stream to their files, so the peak must
not grow with the month.

Targets: the export of 10,000 sessions within 5 s, its peak allocation under 5 MB.
"""

from __future__ import annotations

import asyncio
import csv
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.history import kind_of, open_store, past_session
from custom_components.qr_charging.invoices import describer, dues_of
from custom_components.qr_charging.ledger import Changes
from custom_components.qr_charging.records import (
    BayTotals,
    LinkRecord,
    Record,
    RefundRecord,
    add_totals,
)
from custom_components.qr_charging.tax import Recipient, TaxSettings, check_character
from custom_components.qr_charging.tax_export import Written, month_bounds

GSTIN = "29ABCDE1234F1Z" + check_character("29ABCDE1234F1Z")
BUYER = "27PQRSX6789K1Z" + check_character("27PQRSX6789K1Z")
SETTINGS = TaxSettings("Volt Bays Pvt Ltd", GSTIN, "999799", 1800, "INV")
MONTH = (2026, 11)
DAYS = 30
BAYS = tuple(f"bay-{n}" for n in range(1, 9))
B2B_EVERY = 20
SECONDS_TARGET = 5.0
PEAK_MB_TARGET = 5.0


@dataclass(frozen=True)
class TaxConfig:
    """How many paid sessions the month has."""

    sessions: int = 10_000


SMOKE = TaxConfig(sessions=60)


async def _fill(path: Path, sessions: int) -> None:
    """The month's sessions and their documents, a day per transaction, then the B2B taps."""
    start, end = month_bounds(*MONTH)
    store = open_store(path)
    await store.async_open(start)
    describe = describer({}, {}, {})
    day_s = (end - start) / DAYS
    per_day = -(-sessions // DAYS)
    try:
        for day in range(DAYS):
            indexes = range(day * per_day, min((day + 1) * per_day, sessions))
            if not indexes:
                break
            records: list[Record] = []
            for index in indexes:
                created = start + day * day_s + (index % per_day + 1) * day_s / (per_day + 2)
                records += past_session(index, BAYS[index % len(BAYS)], created)
            links = {r.link_id: r for r in records if isinstance(r, LinkRecord)}
            totals: dict[str, BayTotals] = {}
            for record in records:
                add_totals(totals, record)
            refunds = {r.key: r for r in records if isinstance(r, RefundRecord)}
            at = start + (day + 1) * day_s - 1
            dues = dues_of(records, links, describe, SETTINGS, at, refunds=refunds)
            upserts: list[Any] = [(kind_of(r), r) for r in records]
            await store.async_commit(Changes(upserts, [], [], totals, documents=dues))
        buyer = Recipient(BUYER, "Fleet Movers LLP", "Pune")
        for index in range(0, sessions, B2B_EVERY):
            await store.async_b2b(f"pay_h{index:014d}", buyer, SETTINGS, end - 60)
    finally:
        await store.async_close()


def _lines(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as file:
        return sum(1 for _ in csv.reader(file)) - 1


async def _export(path: Path, directory: Path) -> tuple[Written, float, float]:
    """The action's export of the month: what it wrote, its seconds and peak allocation (MB)."""
    store = open_store(path)
    await store.async_open(time.time())
    try:
        tracemalloc.start()
        begun = time.perf_counter()
        written = await store.async_export_tax(directory, *month_bounds(*MONTH), registered=True)
        export_s = time.perf_counter() - begun
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
        await store.async_close()
    return written, export_s, peak_mb


def run(workdir: Path, config: TaxConfig) -> dict[str, Any]:
    """Fill the month, export it; return the figures and whether the targets were met."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "ledger.db"
    begun = time.perf_counter()
    asyncio.run(_fill(path, config.sessions))
    fill_s = time.perf_counter() - begun
    written, export_s, peak_mb = asyncio.run(_export(path, workdir / "export"))
    return {
        "sessions": config.sessions,
        "documents": written.documents,
        "rows": {table: _lines(file) for table, file in sorted(written.files.items())},
        "fill_s": round(fill_s, 2),
        "export_s": round(export_s, 3),
        "peak_mb": round(peak_mb, 2),
        "db_mb": round(path.stat().st_size / 1e6, 2),
        "target": f"export ≤ {SECONDS_TARGET:g} s, peak allocation ≤ {PEAK_MB_TARGET:g} MB",
        "met": export_s <= SECONDS_TARGET and peak_mb <= PEAK_MB_TARGET,
    }


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="qr-tax-bench-") as tmp:
        print(run(Path(tmp), TaxConfig(int(sys.argv[1]) if sys.argv[1:] else 10_000)))
