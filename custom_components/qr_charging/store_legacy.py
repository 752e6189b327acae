"""The JSON ledger of version 0.1 (and its ``.archive.jsonl``), imported into the database once.

Plain Python, no Home Assistant imports. Run by ``store.LedgerStore`` when it opens, in the
executor, on its connection: the records and the bays' totals are written in one transaction
with a marker, then both files are renamed ``*.migrated`` (never deleted).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .records import (
    KINDS,
    LINKS,
    PAYMENTS,
    REFUNDS,
    BayTotals,
    LinkRecord,
    PaymentRecord,
    Record,
    RefundRecord,
    add_totals,
    key_of,
)
from .store_schema import INSERT_EVENT, MARK_DOCUMENTS_SINCE, add_bay_totals, transaction, upsert


def import_legacy(db: sqlite3.Connection, legacy: Iterable[Path]) -> None:
    """Import the JSON ledger and its archive in one transaction, then rename both.

    A marker in the same transaction makes a crash before the rename harmless: the next
    start only renames.
    """
    # The archive first, so the live ledger's copy of a record written to both wins.
    present = sorted((p for p in legacy if p.exists()), key=lambda p: p.suffix != ".jsonl")
    if not present:
        return
    done = db.execute("SELECT 1 FROM meta WHERE name = 'legacy_imported'").fetchone()
    if not done:
        try:
            _write_imported(db, _LegacyLedger.read(present))
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"the JSON ledger of 0.1 cannot be read: {err!r}") from err
    for path in present:
        path.rename(path.with_name(path.name + ".migrated"))


def _write_imported(db: sqlite3.Connection, legacy: _LegacyLedger) -> None:
    records = legacy.records
    _fill_legacy(records)
    totals = legacy.totals()
    with transaction(db):
        for kind in KINDS:
            for record in records[kind.table].values():
                upsert(db, kind, record)
        db.executemany(INSERT_EVENT, [(key, *row) for key, row in legacy.events.items()])
        add_bay_totals(db, totals)
        db.execute("INSERT INTO meta VALUES ('legacy_imported', '1')")
        # The imported payments are of before documents (as migration 6 marks a database's).
        db.execute(MARK_DOCUMENTS_SINCE)


def _fill_legacy(records: dict[str, dict[str, Record]]) -> None:
    """Fields the JSON version did not keep: a refund's bay, the time a payment bought."""
    links = {k: r for k, r in records[LINKS.table].items() if isinstance(r, LinkRecord)}
    payments = {k: r for k, r in records[PAYMENTS.table].items() if isinstance(r, PaymentRecord)}
    for payment in payments.values():
        if (link := links.get(payment.link_id or "")) is not None:
            payment.seconds = link.seconds
    for refund in records[REFUNDS.table].values():
        if isinstance(refund, RefundRecord) and (paid := payments.get(refund.payment_id)):
            refund.bay_id = refund.bay_id or paid.bay_id


@dataclass
class _LegacyLedger:
    """What the JSON version (0.1) kept: its live ledger and its archive of settled history."""

    records: dict[str, dict[str, Record]] = field(
        default_factory=lambda: {kind.table: {} for kind in KINDS}
    )
    events: dict[str, list[Any]] = field(default_factory=dict)
    # The live ledger's records count in the totals; the archive's are in ``archived``.
    live: list[Record] = field(default_factory=list)
    archived: dict[str, list[int]] | None = None

    @classmethod
    def read(cls, paths: Iterable[Path]) -> _LegacyLedger:
        """The archive first, so the live ledger's copy of a record written to both wins."""
        legacy = cls()
        for path in sorted(paths, key=lambda p: p.suffix != ".jsonl"):
            archive = path.suffix == ".jsonl"
            for batch in _archive_batches(path) if archive else [_ledger_data(path)]:
                legacy.add(batch, live=not archive)
        return legacy

    def add(self, batch: dict[str, Any], *, live: bool) -> None:
        """Take one batch of records (an archive line, or the live ledger)."""
        for kind in KINDS:
            for data in batch.get(kind.table, []):
                record = kind.cls.from_dict(data)
                self.records[kind.table][key_of(kind, record)] = record
                if live:
                    self.live.append(record)
        self.events.update(batch.get("events", {}))
        if live:
            self.archived = batch.get("archived_totals", {})

    def totals(self) -> dict[str, BayTotals]:
        """Each bay's revenue and sessions: the live records plus what the archive counted.

        Without a live ledger (only its archive left) the archive's records are counted.
        """
        totals: dict[str, BayTotals] = {}
        counted = (
            self.live
            if self.archived is not None
            else [record for table in self.records.values() for record in table.values()]
        )
        for record in counted:
            add_totals(totals, record)
        for bay_id, (revenue, sessions) in (self.archived or {}).items():
            bay = totals.setdefault(bay_id, BayTotals())
            bay.revenue_paise += revenue
            bay.sessions += sessions
        return totals


def _ledger_data(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    assert isinstance(data, dict)
    return data


def _archive_batches(path: Path) -> Iterator[dict[str, Any]]:
    """Every whole batch of the archive: one JSON object a line, or several on one line.

    After a crash mid-append, the next batch was appended to the cut line; what can be read
    of such a line is read, and the cut part (whose records were still live) is skipped.
    """
    decoder = json.JSONDecoder()
    for line in path.read_text(encoding="utf-8").splitlines():
        position = 0
        while position < len(line):
            start = line.find("{", position)
            if start < 0:
                break
            try:
                batch, position = decoder.raw_decode(line, start)
            except ValueError:
                position = start + 1
                continue
            # A record inside the cut part parses too; a batch holds lists of records.
            if isinstance(batch, dict) and any(isinstance(batch.get(k.table), list) for k in KINDS):
                yield batch
