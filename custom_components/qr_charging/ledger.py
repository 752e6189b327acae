"""The ledger in memory: the records the rules need now, and the rules that tie them.

Plain Python, no Home Assistant imports; time is passed in, so every rule is deterministic. The
database (``store``) holds all history; this holds the working set: running sessions, open
links, unsettled refunds and the payments (with all their refunds) those need. Records a change
needs beyond that are fetched into it first (``Wanted``), and each change is written as one
transaction (``Changes``: what a ``Checkpoint`` saw change). The checkpoint keeps each table as it
was (a copy of each table's dict, about 20 ns a record) and the old values of each record the
change writes to, taken at its first write: no record is copied or compared unless written.

The rules that keep the money safe:

- a payment id is recorded once; however many events carry it, it opens at most one session;
- a payment opens a session only when it is captured and matches, in amount and currency,
  the link we created for it; anything else is recorded for attention, never started;
- event ids are remembered for ``EVENT_MEMORY_S`` (Razorpay re-delivers for days).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from enum import StrEnum
from itertools import islice
from operator import attrgetter, is_
from typing import Any, Self, SupportsIndex

from .catalog import CURRENCY
from .razorpay_events import NOTE_REFUND_KEY, NOTE_SESSION, PaymentNotice, RefundNotice

EVENT_MEMORY_S = 8 * 24 * 3600
# Unpaid links stay in memory this long: reconciliation asks Razorpay about them meanwhile.
OPEN_LINK_S = 24 * 3600


class SessionState(StrEnum):
    """Where a session is in its life."""

    PAID = "paid"
    STARTING = "starting"
    ACTIVE = "active"
    ENDED = "ended"
    FAILED = "failed"
    REFUNDED = "refunded"


RUNNING_STATES = frozenset({SessionState.PAID, SessionState.STARTING, SessionState.ACTIVE})
# Sessions that powered their bay: each counts once in the bay's sessions served.
SERVED_STATES = frozenset({SessionState.ACTIVE, SessionState.ENDED})


class PaymentState(StrEnum):
    """What a recorded payment became."""

    SESSION = "session"
    ATTENTION = "attention"
    UNMATCHED = "unmatched"
    NOT_CAPTURED = "not_captured"


class RefundState(StrEnum):
    """A refund we asked for, as far as we know."""

    REQUESTED = "requested"
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"
    # Under Razorpay's smallest refund (₹1): recorded, kept, never sent.
    TOO_SMALL = "too_small"


# Razorpay refuses refunds of less than one rupee.
MIN_REFUND_PAISE = 100


class Outcome(StrEnum):
    """What one payment notice did to the ledger."""

    NEW_SESSION = "new_session"
    DUPLICATE = "duplicate"
    UNMATCHED = "unmatched"
    MISMATCH = "mismatch"
    NOT_CAPTURED = "not_captured"


class _Journal(dict[int, tuple[Any, tuple[Any, ...]]]):
    """One change's journal: each record written to, by id, with its values before then.

    Open from ``Ledger.checkpoint`` until ``changes_since`` or ``restore``.
    """

    __slots__ = ("open",)

    def __init__(self) -> None:
        super().__init__()
        self.open = True


# The changes under way in this task, innermost last: a change of one account made inside a
# change of another must not end the outer one's journal. A task started inside a change
# inherits them; once closed they take nothing more.
_JOURNALS: ContextVar[tuple[_Journal, ...]] = ContextVar("qr_charging_ledger_journals", default=())


class _Record:
    """A record of the ledger; a write to one inside a change is journaled before it is made.

    Its lists (``events``, ``payment_ids``) journal it too when changed in place.
    """

    __slots__ = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Load a record from its stored dict, ignoring keys a newer version may have added."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})

    def __setattr__(self, name: str, value: Any) -> None:
        # Every list a record holds is its own (a list taken from another record, or a copy's,
        # would journal that record instead).
        if isinstance(value, list) and not (type(value) is _RecordList and value.owner is self):
            value = _RecordList(value, self)
        if hasattr(self, name):  # not while __init__ first sets it: a new record is found by key
            _journal(self)
        object.__setattr__(self, name, value)


def _journal(record: Any) -> None:
    """Keep ``record``'s values before each change under way first writes to it."""
    if record is None:  # a list no record holds (``dataclasses.asdict`` makes those)
        return
    values: tuple[Any, ...] | None = None
    for journal in _JOURNALS.get():
        if journal.open and id(record) not in journal:
            if values is None:
                values = _values(record)
            journal[id(record)] = (record, values)


class _RecordList(list[Any]):
    """A record's list: changing it in place journals the record first."""

    __slots__ = ("owner",)

    def __init__(self, items: Iterable[Any] = (), owner: Any = None) -> None:
        super().__init__(items)
        self.owner = owner

    def append(self, item: Any) -> None:
        _journal(self.owner)
        super().append(item)

    def extend(self, items: Iterable[Any]) -> None:
        _journal(self.owner)
        super().extend(items)

    def insert(self, index: SupportsIndex, item: Any) -> None:
        _journal(self.owner)
        super().insert(index, item)

    def remove(self, item: Any) -> None:
        _journal(self.owner)
        super().remove(item)

    def pop(self, index: SupportsIndex = -1) -> Any:
        _journal(self.owner)
        return super().pop(index)

    def clear(self) -> None:
        _journal(self.owner)
        super().clear()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        _journal(self.owner)
        super().sort(*args, **kwargs)

    def reverse(self) -> None:
        _journal(self.owner)
        super().reverse()

    def __setitem__(self, index: Any, value: Any) -> None:
        _journal(self.owner)
        super().__setitem__(index, value)

    def __delitem__(self, index: Any) -> None:
        _journal(self.owner)
        super().__delitem__(index)

    def __iadd__(self, items: Iterable[Any]) -> Self:  # type: ignore[misc]
        _journal(self.owner)
        return super().__iadd__(items)

    def __imul__(self, count: SupportsIndex) -> Self:
        _journal(self.owner)
        return super().__imul__(count)


@dataclass(slots=True)
class LinkRecord(_Record):
    """A payment link we created; its ``reference_id`` is the session it will pay for."""

    link_id: str
    reference_id: str
    bay_id: str
    plan_code: str
    amount: int
    currency: str
    seconds: int
    expire_by: int
    created_at: float
    short_url: str
    status: str = "created"
    payment_id: str | None = None
    # What the customer was shown before paying (``intents``): None for the owner's links.
    intent: str | None = None


@dataclass(slots=True)
class PaymentRecord(_Record):
    """A payment Razorpay told us about."""

    payment_id: str
    amount: int
    currency: str
    received_at: float
    state: PaymentState
    events: list[str] = field(default_factory=list)
    link_id: str | None = None
    session_id: str | None = None
    bay_id: str | None = None
    plan_code: str | None = None
    method: str | None = None
    problem: str | None = None
    paid_at: float | None = None  # when the customer paid, by Razorpay's clock
    # The powered time it bought, and how much of that was cut off unserved (and refunded):
    # unserved time is priced per payment, at the price of the payment it came from.
    seconds: int = 0
    cut_s: float = 0.0

    def __post_init__(self) -> None:
        self.state = PaymentState(self.state)


@dataclass(slots=True)
class SessionRecord(_Record):
    """Powered time for a bay, paid or given by the owner."""

    session_id: str
    bay_id: str
    state: SessionState
    created_at: float
    seconds: int
    # What the granted time is worth: the payments, less shares cut off (session_rules.shorten).
    paid_paise: int = 0
    payment_ids: list[str] = field(default_factory=list)
    plan_code: str | None = None
    owner: bool = False
    started_at: float | None = None
    until: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    # The intent of the link (or static QR code) that paid for it; see ``intents``.
    intent: str | None = None

    def __post_init__(self) -> None:
        self.state = SessionState(self.state)

    @property
    def running(self) -> bool:
        """Paid, starting or powered."""
        return self.state in RUNNING_STATES


@dataclass(slots=True)
class RefundRecord(_Record):
    """A refund we asked Razorpay for; ``key`` is its idempotency key."""

    key: str
    payment_id: str
    amount: int
    created_at: float
    state: RefundState
    reason: str
    session_id: str | None = None
    refund_id: str | None = None
    # The bay the refunded payment was for (its revenue goes down by the refund).
    bay_id: str | None = None

    def __post_init__(self) -> None:
        self.state = RefundState(self.state)

    @property
    def settled(self) -> bool:
        """Processed or failed: Razorpay has nothing more to say about it."""
        return self.state in SETTLED_REFUNDS


SETTLED_REFUNDS = frozenset({RefundState.PROCESSED, RefundState.FAILED, RefundState.TOO_SMALL})
# Refunds whose money stays with the owner: it never left, or was never sent.
KEPT_REFUNDS = frozenset({RefundState.FAILED, RefundState.TOO_SMALL})

type Record = LinkRecord | PaymentRecord | SessionRecord | RefundRecord


@dataclass(frozen=True, slots=True)
class Kind[R: Record]:
    """One kind of record: its table, its class and its key."""

    table: str
    cls: type[R]
    key: str


LINKS = Kind("links", LinkRecord, "link_id")
PAYMENTS = Kind("payments", PaymentRecord, "payment_id")
SESSIONS = Kind("sessions", SessionRecord, "session_id")
REFUNDS = Kind("refunds", RefundRecord, "key")
KINDS: tuple[Kind[Any], ...] = (LINKS, PAYMENTS, SESSIONS, REFUNDS)
_KIND_OF: dict[type[Any], Kind[Any]] = {kind.cls: kind for kind in KINDS}


def key_of(kind: Kind[Any], record: Record) -> str:
    """The primary key of a record."""
    value = getattr(record, kind.key)
    assert isinstance(value, str)
    return value


# Per class of record: its field names, a getter of all of them, and which ones are lists.
_NAMES = {kind.cls: tuple(f.name for f in fields(kind.cls)) for kind in KINDS}
_GETTERS = {cls: attrgetter(*names) for cls, names in _NAMES.items()}
_LISTS = {
    cls: frozenset(i for i, f in enumerate(fields(cls)) if f.default_factory is list)
    for cls in _NAMES
}


def _values(record: Record) -> tuple[Any, ...]:
    """A record's values, its lists copied."""
    values: tuple[Any, ...] = _GETTERS[type(record)](record)
    if lists := _LISTS[type(record)]:
        values = tuple(list(v) if i in lists else v for i, v in enumerate(values))
    return values


def _set_values(record: Record, values: tuple[Any, ...]) -> None:
    """Put values back into a record (not journaled: only ever to undo a change)."""
    lists = _LISTS[type(record)]
    for index, (name, value) in enumerate(zip(_NAMES[type(record)], values, strict=True)):
        object.__setattr__(record, name, _RecordList(value, record) if index in lists else value)


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


def _as_was[R: Record](record: R, values: tuple[Any, ...]) -> R:
    """A detached record holding ``values`` (what ``record`` was), to count its old totals."""
    old = object.__new__(type(record))
    _set_values(old, values)
    return old


def copy_record[R: Record](record: R) -> R:
    """A detached copy that shares no list with the original."""
    return _as_was(record, _values(record))


@dataclass(frozen=True, slots=True)
class Settlement:
    """Where a payment's refunds stand, for what the owner is told."""

    fully_refunded: bool
    failed_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Sale:
    """What a payment bought: its link's plan, or at a static QR code, the time its amount buys."""

    session_id: str
    bay_id: str
    plan_code: str | None
    seconds: int
    intent: str | None


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """The outcome of one payment notice."""

    outcome: Outcome
    payment: PaymentRecord
    session: SessionRecord | None = None
    link: LinkRecord | None = None


@dataclass(slots=True)
class BayTotals:
    """What a bay kept and served, over all history."""

    revenue_paise: int = 0
    sessions: int = 0


def in_revenue(payment: PaymentRecord) -> bool:
    """Whether a payment counts in its bay's revenue: it opened a session, in rupees.

    Paise of another currency are not rupees (such a sale is refused, ``currency_mismatch``).
    """
    return payment.state is PaymentState.SESSION and payment.currency == CURRENCY


def _revenue(record: Record) -> tuple[str | None, int]:
    """The record's part of its bay's revenue: captured payments less refunds not failed."""
    if isinstance(record, PaymentRecord) and in_revenue(record):
        return record.bay_id, record.amount
    if isinstance(record, RefundRecord) and record.state not in KEPT_REFUNDS:
        return record.bay_id, -record.amount
    return None, 0


def _served(record: Record) -> tuple[str | None, int]:
    """A session that powered its bay counts once."""
    if isinstance(record, SessionRecord) and record.state in SERVED_STATES:
        return record.bay_id, 1
    return None, 0


def add_totals(totals: dict[str, BayTotals], record: Record, sign: int = 1) -> None:
    """Add (or with ``sign=-1`` take away) what one record counts for in its bay's totals."""
    bay, paise = _revenue(record)
    if bay is not None and paise:
        totals.setdefault(bay, BayTotals()).revenue_paise += sign * paise
    bay, served = _served(record)
    if bay is not None and served:
        totals.setdefault(bay, BayTotals()).sessions += sign * served


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

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes or self.events)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The working set before a change.

    Its tables as they were, and the old values of each record written to since (taken at the
    first write, by the records themselves).
    """

    tables: dict[str, dict[str, Record]]
    journal: _Journal
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
        journal = _Journal()
        _JOURNALS.set((*(j for j in _JOURNALS.get() if j.open), journal))
        return Checkpoint(
            {kind.table: dict(self._table(kind)) for kind in KINDS},
            journal,
            frozenset(self.events),
        )

    @staticmethod
    def _stop(checkpoint: Checkpoint) -> None:
        checkpoint.journal.open = False
        _JOURNALS.set(tuple(j for j in _JOURNALS.get() if j.open))

    def changes_since(self, checkpoint: Checkpoint) -> Changes:
        """Every record added, changed or removed since the checkpoint, and the totals moved."""
        self._stop(checkpoint)
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
                    add_totals(totals, self._old(old, written), -1)
            # Records that stayed and were written to, when their values did change.
            for entry, values in written.values():
                if not isinstance(entry, kind.cls):
                    continue
                written_to: Record = entry
                key = key_of(kind, written_to)
                stayed = before.get(key) is entry and table.get(key) is entry
                if stayed and _values(written_to) != values:
                    changed.append((kind, written_to))
                    add_totals(totals, written_to)
                    add_totals(totals, _as_was(written_to, values), -1)
            for key in gone:
                deletes.append((kind, key))
                add_totals(totals, self._old(before[key], written), -1)
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

    @staticmethod
    def _old(record: Record, written: dict[int, tuple[Any, tuple[Any, ...]]]) -> Record:
        """The record as it was at the checkpoint."""
        entry = written.get(id(record))
        return record if entry is None or entry[0] is not record else _as_was(record, entry[1])

    def restore(self, checkpoint: Checkpoint) -> None:
        """Undo a change that could not be stored: the same objects, with their old values."""
        self._stop(checkpoint)
        record: Record
        for record, values in checkpoint.journal.values():
            # Only this ledger's records (a change of another account may have run inside).
            kind = _KIND_OF[type(record)]
            old_key = values[_NAMES[kind.cls].index(kind.key)]
            if checkpoint.tables[kind.table].get(old_key) is record:
                _set_values(record, values)
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

    # -- payments ----------------------------------------------------------------------------

    def apply_payment(
        self, notice: PaymentNotice, event: str, now: float, sale: Sale | None = None
    ) -> PaymentResult:
        """Record a payment notice; open its session when it is the first good news of it.

        ``sale`` is what a payment to a bay's static QR code bought (it matches no link).
        """
        payment = self.payments.get(notice.payment_id)
        if payment is None:
            payment = PaymentRecord(
                payment_id=notice.payment_id,
                amount=notice.amount,
                currency=notice.currency,
                received_at=now,
                state=PaymentState.NOT_CAPTURED,
                method=notice.method,
                paid_at=notice.created_at,
            )
            self.payments[notice.payment_id] = payment
        payment.events.append(event)
        if payment.state in (PaymentState.SESSION, PaymentState.ATTENTION):
            return PaymentResult(Outcome.DUPLICATE, payment, self._session_of(payment))
        if not notice.captured:
            return PaymentResult(Outcome.NOT_CAPTURED, payment)
        link = self.link_for(notice)
        if link is None and sale is not None:
            return self._open_sale(payment, sale, now)
        if link is None:
            # Told once: later events of the same unmatched payment are repeats.
            told = payment.state is PaymentState.UNMATCHED
            payment.state = PaymentState.UNMATCHED
            return PaymentResult(Outcome.DUPLICATE if told else Outcome.UNMATCHED, payment)
        payment.link_id = link.link_id
        payment.bay_id = link.bay_id
        payment.plan_code = link.plan_code
        payment.seconds = link.seconds
        problem = self._mismatch(notice, link)
        if problem is not None:
            payment.state = PaymentState.ATTENTION
            payment.problem = problem
            return PaymentResult(Outcome.MISMATCH, payment, link=link)
        link.status = "paid"
        link.payment_id = notice.payment_id
        sale = Sale(link.reference_id, link.bay_id, link.plan_code, link.seconds, link.intent)
        return self._open_sale(payment, sale, now, link)

    def _open_sale(
        self, payment: PaymentRecord, sale: Sale, now: float, link: LinkRecord | None = None
    ) -> PaymentResult:
        """Open the session a payment bought: a link's plan, or a static QR code's amount."""
        payment.bay_id = sale.bay_id
        payment.plan_code = sale.plan_code
        payment.seconds = sale.seconds
        session = SessionRecord(
            session_id=sale.session_id,
            bay_id=sale.bay_id,
            state=SessionState.PAID,
            created_at=now,
            seconds=sale.seconds,
            paid_paise=payment.amount,
            payment_ids=[payment.payment_id],
            plan_code=sale.plan_code,
            intent=sale.intent,
        )
        self.sessions[session.session_id] = session
        payment.state = PaymentState.SESSION
        payment.session_id = session.session_id
        return PaymentResult(Outcome.NEW_SESSION, payment, session, link)

    def _mismatch(self, notice: PaymentNotice, link: LinkRecord) -> str | None:
        if any(r.payment_id == notice.payment_id for r in self.refunds.values()):
            # Refunded (as unmatched) before an event tied it to a link: power is not owed.
            return "refunded before it was matched to a link"
        if notice.currency != link.currency:
            return f"currency {notice.currency} instead of {link.currency}"
        if notice.amount != link.amount:
            return f"amount {notice.amount} paise instead of {link.amount}"
        if link.payment_id not in (None, notice.payment_id):
            return f"link already paid by {link.payment_id}"
        if link.reference_id in self.sessions:
            return f"session {link.reference_id} already exists"
        return None

    def _session_of(self, payment: PaymentRecord) -> SessionRecord | None:
        return self.sessions.get(payment.session_id) if payment.session_id else None

    # -- refunds -----------------------------------------------------------------------------

    def refundable(self, payment_id: str) -> int:
        """Paise of a payment not yet refunded or being refunded."""
        payment = self.payments.get(payment_id)
        if payment is None:
            return 0
        taken = sum(
            r.amount
            for r in self.refunds.values()
            if r.payment_id == payment_id and r.state not in KEPT_REFUNDS
        )
        return max(payment.amount - taken, 0)

    def settlement(self, payment_id: str) -> Settlement:
        """Whether a payment is refunded in full, and its refunds that failed."""
        failed = (
            r.key
            for r in self.refunds.values()
            if r.payment_id == payment_id and r.state is RefundState.FAILED
        )
        return Settlement(self.refundable(payment_id) == 0, tuple(failed))

    def add_refund(self, refund: RefundRecord) -> None:
        """Record a refund before asking Razorpay for it, so a crash cannot lose it."""
        payment = self.payments.get(refund.payment_id)
        if refund.bay_id is None and payment is not None and in_revenue(payment):
            # Revenue counted the payment, so it counts the refund; money that never counted
            # (a mismatched or unmatched payment) does not make revenue go below zero.
            refund.bay_id = payment.bay_id
        self.refunds[refund.key] = refund

    def apply_refund(self, notice: RefundNotice) -> tuple[RefundRecord | None, bool]:
        """Update one of our refunds from a ``refund.*`` event: (the refund, whether it changed).

        A settled refund stays settled, as Razorpay's events may arrive in any order, with one
        exception: a failed refund that Razorpay reports processed was paid (the money left),
        so it becomes processed and is never counted as refundable again. A refund whose id we
        have not stored yet (the event beat our own answer) is found by payment and amount.
        """
        refund = next((r for r in self.refunds.values() if r.refund_id == notice.refund_id), None)
        known_id = refund is not None
        if refund is None:
            # Our key travels in the refund's notes; failing that, one still waiting for its
            # answer with the same payment and amount (never a refused one: that money stayed).
            key = notice.notes.get(NOTE_REFUND_KEY)
            refund = self.refunds.get(key) if key else None
            if refund is None:
                refund = next(
                    (
                        r
                        for r in self.refunds.values()
                        if r.refund_id is None
                        and r.state is RefundState.REQUESTED
                        and r.payment_id == notice.payment_id
                        and r.amount == notice.amount
                    ),
                    None,
                )
            if refund is None or refund.payment_id != notice.payment_id:
                return None, False
            refund.refund_id = notice.refund_id
        state = _refund_state(notice.status)
        paid_after_all = (
            known_id and refund.state is RefundState.FAILED and state is RefundState.PROCESSED
        )
        if refund.state is state or (refund.settled and not paid_after_all):
            return refund, False
        refund.state = state
        return refund, True

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


def _refund_state(status: str) -> RefundState:
    return {
        "processed": RefundState.PROCESSED,
        "failed": RefundState.FAILED,
    }.get(status, RefundState.PENDING)
