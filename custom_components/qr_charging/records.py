"""The ledger's records, and the journal that keeps what a change wrote over.

Plain Python, no Home Assistant imports. A record (a link, a payment, a session, a refund) is a
dataclass whose writes inside a change are journaled first: the journal keeps, for each record
written, its values before that change's first write to it (a tuple of its fields, lists
copied), so the working set (``ledger``) can tell what a change did and undo it without
copying or comparing any record that was not written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from enum import StrEnum
from operator import attrgetter
from typing import Any, Self, SupportsIndex

from .catalog import CURRENCY
from .metering import MAX_SESSION_WH


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


class Journal(dict[int, tuple[Any, tuple[Any, ...]]]):
    """One change's journal: each record written to, by id, with its values before then.

    Open from ``start`` (``Ledger.checkpoint``) until ``close`` (``Ledger.changes_since`` or
    ``Ledger.restore``).
    """

    __slots__ = ("open",)

    def __init__(self) -> None:
        super().__init__()
        self.open = True

    @classmethod
    def start(cls) -> Journal:
        """Open a journal: from now on every record this task writes to keeps its old values."""
        journal = cls()
        _JOURNALS.set((*(j for j in _JOURNALS.get() if j.open), journal))
        return journal

    def close(self) -> None:
        """Take nothing more (the change is stored or undone)."""
        self.open = False
        _JOURNALS.set(tuple(j for j in _JOURNALS.get() if j.open))

    def old(self, record: Record) -> Record:
        """The record as it was when the journal opened (a detached copy if written since)."""
        entry = self.get(id(record))
        return record if entry is None or entry[0] is not record else as_was(record, entry[1])

    def undo(self, tables: dict[str, dict[str, Record]]) -> None:
        """Put the old values back into the records written that ``tables`` held then.

        Only those: a change of another account's ledger may have run inside this one.
        """
        record: Record
        for record, values in self.values():
            kind = _KIND_OF[type(record)]
            old_key = values[_NAMES[kind.cls].index(kind.key)]
            if tables[kind.table].get(old_key) is record:
                _set_values(record, values)


# The changes under way in this task, innermost last: a change of one account made inside a
# change of another must not end the outer one's journal. A task started inside a change
# inherits them; once closed they take nothing more.
_JOURNALS: ContextVar[tuple[Journal, ...]] = ContextVar("qr_charging_ledger_journals", default=())


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
                values = values_of(record)
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
    # Energy it buys and its price (a per-kWh plan; 0 for time): ``seconds`` is the time cap.
    energy_wh: int = 0
    price_per_kwh_paise: int = 0
    # The price band it was sold in: percent of the plan's price (100: no band).
    band: int = 100


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
    # The energy it bought (a per-kWh plan), priced at its own amount when refunded.
    energy_wh: int = 0

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
    # A metered session (``energy_rules``): the energy paid for (0: a timed session), the
    # energy its meter counted (Wh: while it runs, counted so far as last stored, see
    # ``running_energy``), and the price per kWh it was sold at (0: sold by time).
    energy_paid_wh: int = 0
    energy_used_wh: float = 0.0
    price_per_kwh_paise: int = 0
    # A switch bay's meter counter reading (Wh) stored with ``energy_used_wh`` while it runs.
    meter_wh: float | None = None

    def __post_init__(self) -> None:
        self.state = SessionState(self.state)

    @property
    def sells_energy(self) -> bool:
        """Whether it was sold by the kWh: its end refunds the energy not used."""
        return self.energy_paid_wh > 0

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


def values_of(record: Record) -> tuple[Any, ...]:
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


def as_was[R: Record](record: R, values: tuple[Any, ...]) -> R:
    """A detached record holding ``values`` (what ``record`` was), to count its old totals."""
    old = object.__new__(type(record))
    _set_values(old, values)
    return old


def copy_record[R: Record](record: R) -> R:
    """A detached copy that shares no list with the original."""
    return as_was(record, values_of(record))


@dataclass(slots=True)
class BayTotals:
    """What a bay kept and served, over all history."""

    revenue_paise: int = 0
    sessions: int = 0
    # Energy its ended sessions drew, in whole Wh measured (metered bays; issue #24).
    energy_wh: int = 0


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


def _energy(record: Record) -> tuple[str | None, int]:
    """An ended session counts the whole Wh its meter measured (at most ``MAX_SESSION_WH``)."""
    if isinstance(record, SessionRecord) and record.state is SessionState.ENDED:
        return record.bay_id, min(math.floor(record.energy_used_wh), MAX_SESSION_WH)
    return None, 0


def add_totals(totals: dict[str, BayTotals], record: Record, sign: int = 1) -> None:
    """Add (or with ``sign=-1`` take away) what one record counts for in its bay's totals."""
    bay, paise = _revenue(record)
    if bay is not None and paise:
        totals.setdefault(bay, BayTotals()).revenue_paise += sign * paise
    bay, served = _served(record)
    if bay is not None and served:
        totals.setdefault(bay, BayTotals()).sessions += sign * served
    bay, energy = _energy(record)
    if bay is not None and energy:
        totals.setdefault(bay, BayTotals()).energy_wh += sign * energy
