"""The ledger on disk: one SQLite database per account, one transaction per change.

Plain Python (``sqlite3``), no Home Assistant imports. One connection, used by one job at a
time (an asyncio lock around every call) and only from the executor the caller hands in, so the
event loop never waits on the disk and there is never a second writer. WAL with
``synchronous=FULL``: a committed change survives a power cut. This module opens, reads what a
change needs and commits it; the schema and its migrations are ``store_schema``, reading
history ``store_history``, the JSON ledger of 0.1 ``store_legacy``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from .invoices import Document
from .ledger import OPEN_LINK_S, Changes, Ledger, Wanted
from .records import (
    LINKS,
    PAYMENTS,
    REFUNDS,
    RUNNING_STATES,
    SESSIONS,
    BayTotals,
    PaymentRecord,
    PaymentState,
    Record,
    RefundState,
    SessionState,
)
from .store_documents import documents_between, documents_of_session, issue_b2b, issue_dues
from .store_history import counts, export
from .store_legacy import import_legacy
from .store_schema import (
    INSERT_EVENT,
    add_bay_totals,
    by_keys,
    marks,
    migrate,
    select,
    transaction,
    upsert,
)
from .tax import DocumentKind, Recipient, Split, TaxSettings
from .tax_export import Written, write

type Runner = Callable[[Callable[[], Any]], Awaitable[Any]]

_UNSETTLED = (RefundState.REQUESTED.value, RefundState.PENDING.value)
# Invoices add, credit notes take off (receipts and refund notes carry no tax).
_NET = (
    f"CASE kind WHEN '{DocumentKind.INVOICE.value}' THEN 1 "
    f"WHEN '{DocumentKind.CREDIT_NOTE.value}' THEN -1 ELSE 0 END"
)
_TAX_TOTALS = (
    "SELECT "
    + ", ".join(
        f"COALESCE(SUM({_NET} * {column}), 0)"
        for column in ("total", "taxable", "cgst", "sgst", "igst")
    )
    + " FROM documents WHERE issued_at >= ? AND issued_at < ?"
)


class StorageError(Exception):
    """The database could not store (or read) a change; nothing of it was kept."""


class LedgerStore:
    """One account's database."""

    def __init__(self, path: Path, run: Runner, legacy: Iterable[Path] = ()) -> None:
        self.path = path
        self._run = run
        # The JSON ledger (and its archive) of the version before this one, imported once.
        self._legacy = tuple(legacy)
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def _call[T](self, job: Callable[[], T]) -> T:
        """Run one job on the connection in the executor, alone, with errors made ours."""
        async with self._lock:
            try:
                result: T = await self._run(job)
            except (sqlite3.Error, OSError, ValueError) as err:
                raise StorageError(f"{self.path.name}: {err}") from err
            return result

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            # Work still in flight when the entry unloaded: it is done at the next setup.
            raise StorageError(f"{self.path.name} is closed")
        return self._conn

    # -- opening -------------------------------------------------------------------------------

    async def async_open(self, now: float) -> Ledger:
        """Open (creating or migrating) the database and read the working set."""
        return await self._call(lambda: self._open(now))

    def _open(self, now: float) -> Ledger:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._conn = conn
            migrate(conn)
            import_legacy(conn, self._legacy)
            return self._working_set(now)
        except BaseException:
            self._conn = None
            conn.close()
            raise

    def _working_set(self, now: float) -> Ledger:
        db, ledger = self._db, Ledger()
        running = tuple(state.value for state in RUNNING_STATES)
        sessions = select(db, SESSIONS, f"state IN ({marks(running)})", running)
        links = select(db, LINKS, "status = 'created' AND created_at >= ?", (now - OPEN_LINK_S,))
        refunds = select(db, REFUNDS, f"state IN ({marks(_UNSETTLED)})", _UNSETTLED)
        payment_ids = {p for s in sessions for p in s.payment_ids}
        payment_ids |= {r.payment_id for r in refunds}
        payments = by_keys(db, PAYMENTS, "payment_id", payment_ids)
        refunds += by_keys(db, REFUNDS, "payment_id", payment_ids)
        ledger.merge([*sessions, *links, *payments, *refunds], {})
        for row in db.execute("SELECT bay_id, revenue_paise, sessions, energy_wh FROM bay_totals"):
            ledger.totals[row[0]] = BayTotals(row[1], row[2], row[3])
        return ledger

    # -- changes -------------------------------------------------------------------------------

    async def async_fetch(
        self, wanted: Wanted
    ) -> tuple[list[Record], dict[str, tuple[float, str, str]]]:
        """The records a change needs, with the records they point at."""
        return await self._call(lambda: self._fetch(wanted))

    def _fetch(self, wanted: Wanted) -> tuple[list[Record], dict[str, tuple[float, str, str]]]:
        db = self._db
        events = {
            row[0]: (row[1], row[2], row[3])
            for row in db.execute(
                f"SELECT * FROM events WHERE event_id IN ({marks(wanted.event_ids)})",
                tuple(wanted.event_ids),
            )
        }
        links = by_keys(db, LINKS, "link_id", wanted.link_ids)
        links += by_keys(db, LINKS, "reference_id", wanted.reference_ids)
        refunds = by_keys(db, REFUNDS, "refund_id", wanted.refund_ids)
        payment_ids = set(wanted.payment_ids)
        payment_ids |= {link.payment_id for link in links if link.payment_id}
        payment_ids |= {refund.payment_id for refund in refunds}
        session_ids = set(wanted.session_ids) | {link.reference_id for link in links}
        payments = by_keys(db, PAYMENTS, "payment_id", payment_ids)
        session_ids |= {p.session_id for p in payments if p.session_id}
        sessions = by_keys(db, SESSIONS, "session_id", session_ids)
        # A session's payments, and every refund of every payment: what is left to refund.
        more = {p for s in sessions for p in s.payment_ids} - payment_ids
        payments += by_keys(db, PAYMENTS, "payment_id", more)
        refunds += by_keys(db, REFUNDS, "payment_id", payment_ids | more)
        found: list[Record] = [*links, *payments, *sessions, *refunds]
        return found, events

    async def async_commit(self, changes: Changes) -> None:
        """Store a change whole, or raise ``StorageError`` having stored nothing of it.

        The write goes on to its end in the executor even if the caller is cancelled, so what
        is on disk is always a whole change. Any error of the write is a ``StorageError`` (an
        integer too large for SQLite raises ``OverflowError``, say): its transaction was rolled
        back all the same, and every caller's retry path knows only ``StorageError``.
        """
        try:
            await asyncio.shield(self._call(lambda: self._write(changes)))
        except StorageError:
            raise
        except Exception as err:
            raise StorageError(f"{self.path.name}: {err}") from err

    def _write(self, changes: Changes) -> None:
        db = self._db
        with transaction(db):
            for kind, record in changes.upserts:
                upsert(db, kind, record)
            for kind, key in changes.deletes:
                db.execute(f"DELETE FROM {kind.table} WHERE {kind.key} = ?", (key,))
            db.executemany(INSERT_EVENT, changes.events)
            add_bay_totals(db, changes.totals)
            if changes.documents is not None:
                issue_dues(db, changes.documents)
            delivered = [at for key, at, _, _ in changes.events if not key.startswith("reconcile:")]
            if delivered:
                # When Razorpay's webhook last reached us (event ids are forgotten in 8 days).
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('last_delivery', ?)",
                    (str(max(delivered)),),
                )

    async def async_last_delivery(self) -> float | None:
        """When a signed webhook delivery was last stored; None if never."""

        def read() -> float | None:
            row = self._db.execute("SELECT value FROM meta WHERE name = 'last_delivery'").fetchone()
            return float(row[0]) if row else None

        return await self._call(read)

    async def async_forget_events(self, before: float) -> None:
        """Drop event ids older than Razorpay's re-delivery window."""

        def forget() -> None:
            with transaction(self._db):
                self._db.execute("DELETE FROM events WHERE at < ?", (before,))

        await self._call(forget)

    # -- reading history -----------------------------------------------------------------------

    async def async_counts(self) -> dict[str, dict[str, int]]:
        """How many records of each kind are in each state (for diagnostics)."""
        return await self._call(lambda: counts(self._db))

    async def async_owed(self) -> Ledger:
        """What may be owed back: failed sessions that were paid, refunds not sent yet.

        With the payments of both and every refund of those payments (what is left to refund
        of each); the rules (``session_rules.still_owed``) say what is owed.
        """

        def read() -> Ledger:
            db = self._db
            failed = select(
                db, SESSIONS, "state = ? AND payment_ids != '[]'", (SessionState.FAILED.value,)
            )
            unsent = select(db, REFUNDS, "state = ?", (RefundState.REQUESTED.value,))
            payment_ids = {p for s in failed for p in s.payment_ids}
            payment_ids |= {r.payment_id for r in unsent}
            ledger = Ledger()
            payments = by_keys(db, PAYMENTS, "payment_id", payment_ids)
            ledger.merge([*failed, *payments, *by_keys(db, REFUNDS, "payment_id", payment_ids)], {})
            return ledger

        return await self._call(read)

    async def async_attention(self) -> list[PaymentRecord]:
        """Payments an owner must look at."""
        return await self._call(
            lambda: select(self._db, PAYMENTS, "state = ?", (PaymentState.ATTENTION.value,))
        )

    # -- documents -----------------------------------------------------------------------------

    async def async_b2b(
        self, payment_id: str, recipient: Recipient, settings: TaxSettings, now: float
    ) -> list[Document]:
        """Issue a business customer's invoice of one payment in one transaction.

        See ``store_documents.issue_b2b``; raises ``B2BRefused`` (nothing issued).
        """

        def write() -> list[Document]:
            with transaction(self._db):
                return issue_b2b(self._db, payment_id, recipient, settings, now)

        return await self._call(write)

    async def async_documents(self, session_id: str) -> list[Document]:
        """A session's documents, in the order they were issued."""
        return await self._call(lambda: documents_of_session(self._db, session_id))

    async def async_export(self, path: Path, start: float, end: float) -> int:
        """Write the sessions created in ``[start, end)`` as CSV, row by row; return how many."""
        return await self._call(lambda: export(self._db, path, start, end))

    async def async_export_tax(
        self, directory: Path, start: float, end: float, *, registered: bool
    ) -> Written:
        """Write the documents issued in ``[start, end)`` as the month's tax tables.

        One pass over ``documents_between`` (``tax_export.write``): rows stream to the files.
        """
        return await self._call(
            lambda: write(documents_between(self._db, start, end), directory, registered=registered)
        )

    async def async_tax_totals(self, start: float, end: float) -> Split:
        """The tax documents' totals issued in ``[start, end)``, credit notes taken off.

        One SQL sum (by the ``issued_at`` index): what the month's sensors show, the same
        figures ``tax_export.Month.totals`` adds up from the rows.
        """

        def read() -> Split:
            row = self._db.execute(_TAX_TOTALS, (start, end)).fetchone()
            return Split(*(int(value) for value in row))

        return await self._call(read)

    # -- backups and closing -------------------------------------------------------------------

    async def async_hold(self) -> None:
        """Write the WAL into the database file and hold every write until ``release``."""
        await self._lock.acquire()
        try:
            await self._run(lambda: self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        """Let writes go on after a backup."""
        self._lock.release()

    async def async_close(self) -> None:
        """Close the connection (after the writes under way)."""
        if self._conn is None:
            return

        def close() -> None:
            assert self._conn is not None
            self._conn.close()
            self._conn = None

        await self._call(close)
