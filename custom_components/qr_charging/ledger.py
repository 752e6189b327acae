"""The ledger in memory: the working set of records the rules need now.

Plain Python, no Home Assistant imports; time is passed in. The database (``store``) holds all
history; this holds the working set: running sessions, open links, unsettled refunds and the
payments (with all their refunds) those need. Records a change needs beyond that are fetched
into it first (``Wanted``), and each change is written as one transaction (``Changes``: what a
``Checkpoint`` saw change). The checkpoint keeps each table as it was (a copy of each table's
dict, about 20 ns a record) and a ``records.Journal`` of the old values of each record the
change writes to: no record is copied or compared unless written. What a payment or a refund
does to the records is ``payment_rules``.

Event ids are remembered for ``EVENT_MEMORY_S`` (Razorpay re-delivers for days).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from operator import is_
from typing import Any

from .invoices import Dues
from .razorpay_events import NOTE_SESSION, PaymentNotice, RefundNotice
from .records import (
    KINDS,
    BayTotals,
    Journal,
    Kind,
    LinkRecord,
    PaymentRecord,
    Record,
    RefundRecord,
    SessionRecord,
    SessionState,
    add_totals,
    as_was,
    copy_record,
    key_of,
    values_of,
)

EVENT_MEMORY_S = 8 * 24 * 3600
# Unpaid links stay in memory this long: reconciliation asks Razorpay about them meanwhile.
OPEN_LINK_S = 24 * 3600


def _diff(table: dict[str, Any], before: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[str]]:
    """Records in ``table`` not in ``before`` (its copy at the checkpoint), and keys gone.

    Records are compared by identity. Dicts keep their order: when the first ``len(before)``
    records are still the same objects, only keys added after them are new and none went.
    Otherwise (a key removed or a record replaced), every key is compared.
    """
    if len(table) >= len(before) and all(map(is_, table.values(), before.values())):
        return list(islice(table.items(), len(before), None)), []
    new = [(key, record) for key, record in table.items() if before.get(key) is not record]
    return new, [key for key in before if key not in table]


@dataclass(slots=True)
class Wanted:
    """Keys of records a change needs, to be fetched into memory from the database first."""

    event_ids: set[str] = field(default_factory=set)
    payment_ids: set[str] = field(default_factory=set)
    link_ids: set[str] = field(default_factory=set)
    reference_ids: set[str] = field(default_factory=set)
    session_ids: set[str] = field(default_factory=set)
    refund_ids: set[str] = field(default_factory=set)

    @classmethod
    def for_payment(cls, notice: PaymentNotice, event_id: str | None = None) -> Wanted:
        """What matching a payment notice reads."""
        refs = {r for r in (notice.reference_id, notice.notes.get(NOTE_SESSION)) if r}
        return cls(
            event_ids={event_id} if event_id else set(),
            payment_ids={notice.payment_id},
            link_ids={notice.link_id} if notice.link_id else set(),
            reference_ids=refs,
            session_ids=set(refs),
        )

    @classmethod
    def for_refund(cls, notice: RefundNotice, event_id: str | None = None) -> Wanted:
        """What matching a refund notice reads."""
        return cls(
            event_ids={event_id} if event_id else set(),
            payment_ids={notice.payment_id},
            refund_ids={notice.refund_id},
        )


@dataclass(frozen=True, slots=True)
class Changes:
    """What one change did, to be written as one transaction."""

    upserts: list[tuple[Kind[Any], Record]]
    deletes: list[tuple[Kind[Any], str]]
    events: list[tuple[str, float, str, str]]
    totals: dict[str, BayTotals]
    # The documents it makes due (``invoices.dues_of``), issued in its transaction.
    documents: Dues | None = None

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes or self.events)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The working set before a change.

    Its tables as they were, and the old values of each record written to since (taken at the
    first write, by the records themselves).
    """

    tables: dict[str, dict[str, Record]]
    journal: Journal
    events: frozenset[str]


class Ledger:
    """The working set of money and time, indexed for the lookups the webhook and bays need."""

    def __init__(self) -> None:
        self.links: dict[str, LinkRecord] = {}
        self.payments: dict[str, PaymentRecord] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self.refunds: dict[str, RefundRecord] = {}
        # Event ids fetched for (or noted by) the change under way: (when, event, outcome).
        self.events: dict[str, tuple[float, str, str]] = {}
        self._links_by_reference: dict[str, LinkRecord] = {}
        # Per bay, over all history (the database keeps them in step, in the same transaction).
        self.totals: dict[str, BayTotals] = {}
        # Records merged, written, added or removed since the last eviction: only they can have
        # become evictable (open links also by age: all are looked at once the oldest is due).
        self._touched: list[Record] = []
        self._links_due = 0.0

    def _table(self, kind: Kind[Any]) -> dict[str, Any]:
        table: dict[str, Any] = getattr(self, kind.table)
        return table

    # -- the working set -----------------------------------------------------------------------

    def merge(self, records: Iterable[Record], events: dict[str, tuple[float, str, str]]) -> None:
        """Take records fetched from the database; a record already in memory is the same."""
        for record in records:
            kind = next(k for k in KINDS if isinstance(record, k.cls))
            table = self._table(kind)
            key = key_of(kind, record)
            if key not in table:
                table[key] = record
                self._touched.append(record)
                if isinstance(record, LinkRecord):
                    self._links_by_reference[record.reference_id] = record
        for event_id, row in events.items():
            self.events.setdefault(event_id, row)

    def checkpoint(self) -> Checkpoint:
        """Remember the working set, to find what a change did or to undo it.

        From here until ``changes_since`` (or ``restore``), every record this task writes to
        keeps its old values in the checkpoint's journal.
        """
        return Checkpoint(
            {kind.table: dict(self._table(kind)) for kind in KINDS},
            Journal.start(),
            frozenset(self.events),
        )

    def changes_since(self, checkpoint: Checkpoint) -> Changes:
        """Every record added, changed or removed since the checkpoint, and the totals moved."""
        checkpoint.journal.close()
        changed: list[tuple[Kind[Any], Record]] = []
        deletes: list[tuple[Kind[Any], str]] = []
        totals: dict[str, BayTotals] = {}
        written = checkpoint.journal
        for kind in KINDS:
            before = checkpoint.tables[kind.table]
            table = self._table(kind)
            new, gone = _diff(table, before)
            # Added keys, and records put in place of others: new to the table.
            for key, record in new:
                changed.append((kind, record))
                add_totals(totals, record)
                if (old := before.get(key)) is not None:
                    add_totals(totals, written.old(old), -1)
            # Records that stayed and were written to, when their values did change.
            for entry, values in written.values():
                if not isinstance(entry, kind.cls):
                    continue
                written_to: Record = entry
                key = key_of(kind, written_to)
                stayed = before.get(key) is entry and table.get(key) is entry
                if stayed and values_of(written_to) != values:
                    changed.append((kind, written_to))
                    add_totals(totals, written_to)
                    add_totals(totals, as_was(written_to, values), -1)
            for key in gone:
                deletes.append((kind, key))
                add_totals(totals, written.old(before[key]), -1)
                self._touched.append(before[key])
        self._touched += (record for _, record in changed)
        # Copies: the write reads them in another thread while memory may move on.
        upserts = [(kind, copy_record(record)) for kind, record in changed]
        events = [
            (event_id, *row)
            for event_id, row in self.events.items()
            if event_id not in checkpoint.events
        ]
        return Changes(upserts, deletes, events, totals)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Undo a change that could not be stored: the same objects, with their old values."""
        checkpoint.journal.close()
        checkpoint.journal.undo(checkpoint.tables)
        for kind in KINDS:
            table = self._table(kind)
            table.clear()
            table.update(checkpoint.tables[kind.table])
        for event_id in set(self.events) - checkpoint.events:
            del self.events[event_id]
        self._reindex()

    def add_totals(self, changes: Changes) -> None:
        """Count a stored change in the bays' totals."""
        for bay_id, delta in changes.totals.items():
            totals = self.totals.setdefault(bay_id, BayTotals())
            totals.revenue_paise += delta.revenue_paise
            totals.sessions += delta.sessions
            totals.energy_wh += delta.energy_wh

    def evict(self, now: float) -> None:
        """Forget what the rules no longer need; it stays in the database."""
        self.sessions = {k: s for k, s in self.sessions.items() if s.running}
        self.links = {
            k: link
            for k, link in self.links.items()
            if link.status == "created" and now - link.created_at < OPEN_LINK_S
        }
        # A payment stays with all its refunds, or what is left to refund would be wrong.
        keep = self._payments_needed()
        self.payments = {k: p for k, p in self.payments.items() if k in keep}
        self.refunds = {k: r for k, r in self.refunds.items() if r.payment_id in keep}
        self.events.clear()
        self._reindex()
        self._touched = []
        self._links_due = min((link.created_at for link in self.links.values()), default=now)
        self._links_due += OPEN_LINK_S

    def evict_touched(self, now: float) -> None:
        """``evict`` after a change, looking only at what was merged or changed since the last.

        The same working set as ``evict``, for what the change touched rather than for the
        whole working set; once the oldest open link comes of age, it is ``evict`` itself.
        """
        touched, self._touched = self._touched, []
        if now >= self._links_due:
            self.evict(now)
            return
        payments: set[str] = set()
        for record in touched:
            if isinstance(record, SessionRecord):
                if not record.running and self.sessions.get(record.session_id) is record:
                    del self.sessions[record.session_id]
                payments.update(record.payment_ids)
            elif isinstance(record, LinkRecord):
                self._evict_link(record, now)
            else:
                payments.add(record.payment_id)
        self._evict_payments(payments)
        self.events.clear()

    def _evict_link(self, link: LinkRecord, now: float) -> None:
        if self.links.get(link.link_id) is not link:
            return
        if link.status == "created" and now - link.created_at < OPEN_LINK_S:
            self._links_due = min(self._links_due, link.created_at + OPEN_LINK_S)
            return
        del self.links[link.link_id]
        if self._links_by_reference.get(link.reference_id) is link:
            del self._links_by_reference[link.reference_id]

    def _evict_payments(self, payment_ids: set[str]) -> None:
        """Of these payments, forget those no running session or unsettled refund needs."""
        keep: set[str] | None = None
        for payment_id in payment_ids:
            payment = self.payments.get(payment_id)
            session = self.sessions.get(payment.session_id or "") if payment else None
            if session is not None and session.running and payment_id in session.payment_ids:
                continue  # surely needed: its own session runs
            if keep is None:
                keep = self._payments_needed()
            if payment_id not in keep:
                self.payments.pop(payment_id, None)
        if keep is not None:
            self.refunds = {k: r for k, r in self.refunds.items() if r.payment_id in keep}

    def _payments_needed(self) -> set[str]:
        """Payments of running sessions and of unsettled refunds."""
        keep: set[str] = set()
        for session in self.sessions.values():
            if session.running:
                keep.update(session.payment_ids)
        keep.update(r.payment_id for r in self.refunds.values() if not r.settled)
        return keep

    def _reindex(self) -> None:
        self._links_by_reference = {link.reference_id: link for link in self.links.values()}

    # -- delivered events --------------------------------------------------------------------

    def seen_event(self, event_id: str) -> bool:
        """Whether this delivery was handled already (its id must have been fetched)."""
        return event_id in self.events

    def note_event(self, event_id: str, event: str, outcome: str, now: float) -> None:
        """Remember a handled delivery and what it did."""
        self.events[event_id] = (now, event, outcome)

    # -- links -------------------------------------------------------------------------------

    def add_link(self, link: LinkRecord) -> None:
        """Record a link we created."""
        self.links[link.link_id] = link
        self._links_by_reference[link.reference_id] = link

    def link_by_reference(self, reference_id: str) -> LinkRecord | None:
        """Our link for a session id (fetched into the working set first)."""
        return self._links_by_reference.get(reference_id)

    def link_for(self, notice: PaymentNotice) -> LinkRecord | None:
        """Find our link for a payment by whatever the event carries."""
        if notice.link_id and notice.link_id in self.links:
            return self.links[notice.link_id]
        for ref in (notice.reference_id, notice.notes.get(NOTE_SESSION)):
            if ref and ref in self._links_by_reference:
                return self._links_by_reference[ref]
        return None

    def close_link(self, link_id: str, status: str) -> bool:
        """Mark an unpaid link expired or cancelled; return whether it changed."""
        link = self.links.get(link_id)
        if link is None or link.status in ("paid", status):
            return False
        link.status = status
        return True

    # -- queries -----------------------------------------------------------------------------

    def running_sessions(self, bay_id: str) -> list[SessionRecord]:
        """The bay's running sessions (normally one at most), the one sent to the bay first.

        Then those only paid, each oldest first; not in the order the database hands them back
        (by state name or row: ``paid`` before ``starting``). After a restart the first is the
        one resumed, the others are decided anew.
        """
        running = [s for s in self.sessions.values() if s.bay_id == bay_id and s.running]
        return sorted(running, key=lambda s: (s.state is SessionState.PAID, s.created_at))

    def running_session(self, bay_id: str, *, besides: str | None = None) -> SessionRecord | None:
        """The bay's (oldest) running session, if any, other than ``besides``."""
        others = (s for s in self.running_sessions(bay_id) if s.session_id != besides)
        return next(others, None)
