"""The ledger on disk: one SQLite database per account, one transaction per change.

Plain Python (``sqlite3``), no Home Assistant imports. One connection, used by one job at a
time (an asyncio lock around every call) and only from the executor the caller hands in, so the
event loop never waits on the disk and there is never a second writer. WAL with
``synchronous=FULL``: a committed change survives a power cut. The schema carries a version
(``PRAGMA user_version``) and each newer version is one migration script.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from .ledger import OPEN_LINK_S, Changes, Ledger, Wanted
from .records import (
    KINDS,
    LINKS,
    PAYMENTS,
    REFUNDS,
    RUNNING_STATES,
    SESSIONS,
    BayTotals,
    Kind,
    LinkRecord,
    PaymentRecord,
    PaymentState,
    Record,
    RefundRecord,
    RefundState,
    add_totals,
    key_of,
)

type Runner = Callable[[Callable[[], Any]], Awaitable[Any]]

# Fields stored as JSON text, and as 0/1.
_LIST_FIELDS = frozenset({"events", "payment_ids"})
_BOOL_FIELDS = frozenset({"owner"})
_UNSETTLED = (RefundState.REQUESTED.value, RefundState.PENDING.value)

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
)
SCHEMA_VERSION = len(MIGRATIONS)

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
        s.payment_ids, s.created_at, s.started_at, s.until, s.ended_at, s.end_reason
    FROM sessions s WHERE s.created_at >= ? AND s.created_at < ? ORDER BY s.created_at
"""


_INSERT_EVENT = "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?)"


class StorageError(Exception):
    """The database could not store (or read) a change; nothing of it was kept."""


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


def _marks(values: Iterable[object]) -> str:
    return ",".join("?" for _ in values)


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
            self._migrate()
            self._import_legacy()
            return self._working_set(now)
        except BaseException:
            self._conn = None
            conn.close()
            raise

    def _migrate(self) -> None:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ValueError(f"database schema {version} is newer than this version knows")
        for number in range(version, SCHEMA_VERSION):
            with self._transaction():
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _working_set(self, now: float) -> Ledger:
        ledger = Ledger()
        running = tuple(state.value for state in RUNNING_STATES)
        sessions = self._select(SESSIONS, f"state IN ({_marks(running)})", running)
        links = self._select(LINKS, "status = 'created' AND created_at >= ?", (now - OPEN_LINK_S,))
        refunds = self._select(REFUNDS, f"state IN ({_marks(_UNSETTLED)})", _UNSETTLED)
        payment_ids = {p for s in sessions for p in s.payment_ids}
        payment_ids |= {r.payment_id for r in refunds}
        payments = self._by_keys(PAYMENTS, "payment_id", payment_ids)
        refunds += self._by_keys(REFUNDS, "payment_id", payment_ids)
        ledger.merge([*sessions, *links, *payments, *refunds], {})
        for row in self._db.execute("SELECT bay_id, revenue_paise, sessions FROM bay_totals"):
            ledger.totals[row[0]] = BayTotals(row[1], row[2])
        return ledger

    def _select[R: Record](
        self, kind: Kind[R], where: str, params: Iterable[object] = ()
    ) -> list[R]:
        cursor = self._db.execute(f"SELECT * FROM {kind.table} WHERE {where}", tuple(params))
        return [_record(kind, row) for row in cursor]

    def _by_keys[R: Record](self, kind: Kind[R], column: str, keys: Iterable[str]) -> list[R]:
        wanted = sorted(set(keys))
        found: list[R] = []
        # SQLite's default limit of bound parameters is 999.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found += self._select(kind, f"{column} IN ({_marks(chunk)})", chunk)
        return found

    # -- the legacy JSON ledger ----------------------------------------------------------------

    def _import_legacy(self) -> None:
        """Import the JSON ledger and its archive in one transaction, then rename both.

        A marker in the same transaction makes a crash before the rename harmless: the next
        start only renames.
        """
        # The archive first, so the live ledger's copy of a record written to both wins.
        present = sorted(
            (p for p in self._legacy if p.exists()), key=lambda p: p.suffix != ".jsonl"
        )
        if not present:
            return
        done = self._db.execute("SELECT 1 FROM meta WHERE name = 'legacy_imported'").fetchone()
        if not done:
            try:
                self._write_imported(_LegacyLedger.read(present))
            except (KeyError, TypeError, AttributeError) as err:
                raise ValueError(f"the JSON ledger of 0.1 cannot be read: {err!r}") from err
        for path in present:
            path.rename(path.with_name(path.name + ".migrated"))

    def _write_imported(self, legacy: _LegacyLedger) -> None:
        records = legacy.records
        _fill_legacy(records)
        totals = legacy.totals()
        with self._transaction():
            for kind in KINDS:
                for record in records[kind.table].values():
                    self._upsert(kind, record)
            self._db.executemany(_INSERT_EVENT, [(key, *row) for key, row in legacy.events.items()])
            self._add_totals(totals)
            self._db.execute("INSERT INTO meta VALUES ('legacy_imported', '1')")

    # -- changes -------------------------------------------------------------------------------

    async def async_fetch(
        self, wanted: Wanted
    ) -> tuple[list[Record], dict[str, tuple[float, str, str]]]:
        """The records a change needs, with the records they point at."""
        return await self._call(lambda: self._fetch(wanted))

    def _fetch(self, wanted: Wanted) -> tuple[list[Record], dict[str, tuple[float, str, str]]]:
        events = {
            row[0]: (row[1], row[2], row[3])
            for row in self._db.execute(
                f"SELECT * FROM events WHERE event_id IN ({_marks(wanted.event_ids)})",
                tuple(wanted.event_ids),
            )
        }
        links = self._by_keys(LINKS, "link_id", wanted.link_ids)
        links += self._by_keys(LINKS, "reference_id", wanted.reference_ids)
        refunds = self._by_keys(REFUNDS, "refund_id", wanted.refund_ids)
        payment_ids = set(wanted.payment_ids)
        payment_ids |= {link.payment_id for link in links if link.payment_id}
        payment_ids |= {refund.payment_id for refund in refunds}
        session_ids = set(wanted.session_ids) | {link.reference_id for link in links}
        payments = self._by_keys(PAYMENTS, "payment_id", payment_ids)
        session_ids |= {p.session_id for p in payments if p.session_id}
        sessions = self._by_keys(SESSIONS, "session_id", session_ids)
        # A session's payments, and every refund of every payment: what is left to refund.
        more = {p for s in sessions for p in s.payment_ids} - payment_ids
        payments += self._by_keys(PAYMENTS, "payment_id", more)
        refunds += self._by_keys(REFUNDS, "payment_id", payment_ids | more)
        found: list[Record] = [*links, *payments, *sessions, *refunds]
        return found, events

    async def async_commit(self, changes: Changes) -> None:
        """Store a change whole, or raise ``StorageError`` having stored nothing of it.

        The write goes on to its end in the executor even if the caller is cancelled, so what
        is on disk is always a whole change.
        """
        await asyncio.shield(self._call(lambda: self._write(changes)))

    def _write(self, changes: Changes) -> None:
        with self._transaction():
            for kind, record in changes.upserts:
                self._upsert(kind, record)
            for kind, key in changes.deletes:
                self._db.execute(f"DELETE FROM {kind.table} WHERE {kind.key} = ?", (key,))
            self._db.executemany(_INSERT_EVENT, changes.events)
            self._add_totals(changes.totals)
            delivered = [at for key, at, _, _ in changes.events if not key.startswith("reconcile:")]
            if delivered:
                # When Razorpay's webhook last reached us (event ids are forgotten in 8 days).
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('last_delivery', ?)",
                    (str(max(delivered)),),
                )

    async def async_last_delivery(self) -> float | None:
        """When a signed webhook delivery was last stored; None if never."""

        def read() -> float | None:
            row = self._db.execute("SELECT value FROM meta WHERE name = 'last_delivery'").fetchone()
            return float(row[0]) if row else None

        return await self._call(read)

    def _upsert(self, kind: Kind[Any], record: Record) -> None:
        columns = _columns(kind)
        self._db.execute(
            f"INSERT OR REPLACE INTO {kind.table} ({','.join(columns)}) VALUES ({_marks(columns)})",
            _row(kind, record),
        )

    def _add_totals(self, totals: dict[str, BayTotals]) -> None:
        self._db.executemany(
            """INSERT INTO bay_totals VALUES (?, ?, ?) ON CONFLICT (bay_id) DO UPDATE SET
                revenue_paise = revenue_paise + excluded.revenue_paise,
                sessions = sessions + excluded.sessions""",
            [(bay, t.revenue_paise, t.sessions) for bay, t in totals.items()],
        )

    async def async_forget_events(self, before: float) -> None:
        """Drop event ids older than Razorpay's re-delivery window."""

        def forget() -> None:
            with self._transaction():
                self._db.execute("DELETE FROM events WHERE at < ?", (before,))

        await self._call(forget)

    # -- reading history -----------------------------------------------------------------------

    async def async_counts(self) -> dict[str, dict[str, int]]:
        """How many records of each kind are in each state (for diagnostics)."""

        def count() -> dict[str, dict[str, int]]:
            counts: dict[str, dict[str, int]] = {}
            for table, column in (
                ("links", "status"),
                ("payments", "state"),
                ("sessions", "state"),
                ("refunds", "state"),
            ):
                rows = self._db.execute(
                    f"SELECT {column}, COUNT(*) FROM {table} GROUP BY {column} ORDER BY {column}"
                )
                counts[table] = {row[0]: row[1] for row in rows}
            counts["events"] = {
                "stored": self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            }
            # Kept because Razorpay refunds nothing under ₹1.
            small = self._db.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE state = 'too_small'"
            ).fetchone()[0]
            counts["refunds_too_small"] = {"paise": small}
            return counts

        return await self._call(count)

    async def async_attention(self) -> list[PaymentRecord]:
        """Payments an owner must look at."""
        return await self._call(
            lambda: self._select(PAYMENTS, "state = ?", (PaymentState.ATTENTION.value,))
        )

    async def async_export(self, path: Path, start: float, end: float) -> int:
        """Write the sessions created in ``[start, end)`` as CSV, row by row; return how many."""
        return await self._call(lambda: self._export(path, start, end))

    def _export(self, path: Path, start: float, end: float) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        count = 0
        with tmp.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(SESSION_COLUMNS)
            for row in self._db.execute(_EXPORT_QUERY, (start, end)):
                values = list(row)
                values[3] = bool(values[3])
                values[9] = " ".join(json.loads(values[9]))
                writer.writerow("" if v is None else v for v in values)
                count += 1
        tmp.replace(path)
        return count

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
