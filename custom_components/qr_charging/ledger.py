"""The ledger: every payment link, payment, session and refund, and the rules that tie them.

Plain Python, no Home Assistant imports; the caller persists ``as_dict()`` and passes the
time in, so every rule is deterministic and easy to test. The rules that keep the money safe:

- a payment id is recorded once; however many events carry it, it opens at most one session;
- a payment opens a session only when it is captured and matches, in amount and currency,
  the link we created for it; anything else is recorded for attention, never started;
- event ids are remembered for ``EVENT_MEMORY_S`` (Razorpay re-delivers for days).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Self

from .razorpay_events import NOTE_SESSION, PaymentNotice, RefundNotice

EVENT_MEMORY_S = 8 * 24 * 3600


class SessionState(StrEnum):
    """Where a session is in its life."""

    PAID = "paid"
    STARTING = "starting"
    ACTIVE = "active"
    ENDED = "ended"
    FAILED = "failed"
    REFUNDED = "refunded"


RUNNING_STATES = frozenset({SessionState.PAID, SessionState.STARTING, SessionState.ACTIVE})


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


class Outcome(StrEnum):
    """What one payment notice did to the ledger."""

    NEW_SESSION = "new_session"
    DUPLICATE = "duplicate"
    UNMATCHED = "unmatched"
    MISMATCH = "mismatch"
    NOT_CAPTURED = "not_captured"


class _Record:
    """Load a record from its stored dict, ignoring keys a newer version may have added."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


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

    def __post_init__(self) -> None:
        self.state = RefundState(self.state)


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """The outcome of one payment notice."""

    outcome: Outcome
    payment: PaymentRecord
    session: SessionRecord | None = None
    link: LinkRecord | None = None


class Ledger:
    """All money and time, indexed for the lookups the webhook and the bays need."""

    def __init__(self) -> None:
        self.links: dict[str, LinkRecord] = {}
        self.payments: dict[str, PaymentRecord] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self.refunds: dict[str, RefundRecord] = {}
        self.events: dict[str, tuple[float, str, str]] = {}
        self._links_by_reference: dict[str, LinkRecord] = {}
        # Per bay, what archived records contributed: [revenue in paise, sessions served].
        self.archived_totals: dict[str, list[int]] = {}

    # -- persistence -------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """Everything, as JSON-ready data."""
        return {
            "links": [asdict(r) for r in self.links.values()],
            "payments": [asdict(r) for r in self.payments.values()],
            "sessions": [asdict(r) for r in self.sessions.values()],
            "refunds": [asdict(r) for r in self.refunds.values()],
            "events": {k: list(v) for k, v in self.events.items()},
            "archived_totals": {k: list(v) for k, v in self.archived_totals.items()},
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything, for a serialiser that reads dataclasses (orjson); serialise it at once."""
        return {
            "links": list(self.links.values()),
            "payments": list(self.payments.values()),
            "sessions": list(self.sessions.values()),
            "refunds": list(self.refunds.values()),
            "events": self.events,
            "archived_totals": self.archived_totals,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ledger:
        """Rebuild a ledger from ``as_dict()`` output."""
        ledger = cls()
        for link in data.get("links", []):
            ledger.add_link(LinkRecord.from_dict(link))
        for pay in data.get("payments", []):
            rec = PaymentRecord.from_dict(pay)
            ledger.payments[rec.payment_id] = rec
        for ses in data.get("sessions", []):
            srec = SessionRecord.from_dict(ses)
            ledger.sessions[srec.session_id] = srec
        for ref in data.get("refunds", []):
            rrec = RefundRecord.from_dict(ref)
            ledger.refunds[rrec.key] = rrec
        ledger.events = {k: (v[0], v[1], v[2]) for k, v in data.get("events", {}).items()}
        ledger.archived_totals = {k: list(v) for k, v in data.get("archived_totals", {}).items()}
        return ledger

    def drop_link(self, link: LinkRecord) -> None:
        """Forget a link (it was archived)."""
        self.links.pop(link.link_id, None)
        self._links_by_reference.pop(link.reference_id, None)

    # -- delivered events --------------------------------------------------------------------

    def seen_event(self, event_id: str) -> bool:
        """Whether this delivery was handled already."""
        return event_id in self.events

    def note_event(self, event_id: str, event: str, outcome: str, now: float) -> None:
        """Remember a handled delivery and what it did."""
        self.events[event_id] = (now, event, outcome)

    def forget_old_events(self, now: float) -> int:
        """Drop event ids older than Razorpay's re-delivery window; return how many."""
        old = [k for k, (at, _, _) in self.events.items() if now - at > EVENT_MEMORY_S]
        for key in old:
            del self.events[key]
        return len(old)

    # -- links -------------------------------------------------------------------------------

    def add_link(self, link: LinkRecord) -> None:
        """Record a link we created."""
        self.links[link.link_id] = link
        self._links_by_reference[link.reference_id] = link

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

    def apply_payment(self, notice: PaymentNotice, event: str, now: float) -> PaymentResult:
        """Record a payment notice; open its session when it is the first good news of it."""
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
        if link is None:
            payment.state = PaymentState.UNMATCHED
            return PaymentResult(Outcome.UNMATCHED, payment)
        payment.link_id = link.link_id
        payment.bay_id = link.bay_id
        payment.plan_code = link.plan_code
        problem = self._mismatch(notice, link)
        if problem is not None:
            payment.state = PaymentState.ATTENTION
            payment.problem = problem
            return PaymentResult(Outcome.MISMATCH, payment, link=link)
        link.status = "paid"
        link.payment_id = notice.payment_id
        session = SessionRecord(
            session_id=link.reference_id,
            bay_id=link.bay_id,
            state=SessionState.PAID,
            created_at=now,
            seconds=link.seconds,
            paid_paise=notice.amount,
            payment_ids=[notice.payment_id],
            plan_code=link.plan_code,
        )
        self.sessions[session.session_id] = session
        payment.state = PaymentState.SESSION
        payment.session_id = session.session_id
        return PaymentResult(Outcome.NEW_SESSION, payment, session, link)

    def _mismatch(self, notice: PaymentNotice, link: LinkRecord) -> str | None:
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
            if r.payment_id == payment_id and r.state is not RefundState.FAILED
        )
        return max(payment.amount - taken, 0)

    def add_refund(self, refund: RefundRecord) -> None:
        """Record a refund before asking Razorpay for it, so a crash cannot lose it."""
        self.refunds[refund.key] = refund

    def apply_refund(self, notice: RefundNotice) -> tuple[RefundRecord | None, bool]:
        """Update one of our refunds from a ``refund.*`` event: (the refund, whether it changed).

        A settled refund (processed or failed) stays settled: Razorpay's events may arrive in
        any order. A refund whose id we have not stored yet (the event beat our own answer) is
        found by payment and amount.
        """
        refund = next((r for r in self.refunds.values() if r.refund_id == notice.refund_id), None)
        if refund is None:
            refund = next(
                (
                    r
                    for r in self.refunds.values()
                    if r.refund_id is None
                    and r.payment_id == notice.payment_id
                    and r.amount == notice.amount
                ),
                None,
            )
            if refund is None:
                return None, False
            refund.refund_id = notice.refund_id
        state = _refund_state(notice.status)
        if refund.state in (RefundState.PROCESSED, RefundState.FAILED) or refund.state is state:
            return refund, False
        refund.state = state
        return refund, True

    # -- queries -----------------------------------------------------------------------------

    def running_sessions(self, bay_id: str) -> list[SessionRecord]:
        """The bay's paid, starting and active sessions, oldest first (normally one at most)."""
        return [s for s in self.sessions.values() if s.bay_id == bay_id and s.running]

    def running_session(self, bay_id: str, *, besides: str | None = None) -> SessionRecord | None:
        """The bay's (oldest) running session, if any, other than ``besides``."""
        others = (s for s in self.running_sessions(bay_id) if s.session_id != besides)
        return next(others, None)

    def attention(self) -> list[PaymentRecord]:
        """Payments an owner must look at."""
        return [p for p in self.payments.values() if p.state is PaymentState.ATTENTION]


def _refund_state(status: str) -> RefundState:
    return {
        "processed": RefundState.PROCESSED,
        "failed": RefundState.FAILED,
    }.get(status, RefundState.PENDING)


SESSION_COLUMNS = (
    "session_id",
    "bay_id",
    "state",
    "owner",
    "plan_code",
    "seconds",
    "paid_paise",
    "refunded_paise",
    "payment_ids",
    "created_at",
    "started_at",
    "until",
    "ended_at",
    "end_reason",
)


def sessions_csv(ledger: Ledger) -> str:
    """The sessions as CSV, oldest first, with what was refunded of each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SESSION_COLUMNS)
    refunded: dict[str, int] = {}
    for refund in ledger.refunds.values():
        if refund.session_id and refund.state is not RefundState.FAILED:
            refunded[refund.session_id] = refunded.get(refund.session_id, 0) + refund.amount
    for s in sorted(ledger.sessions.values(), key=lambda s: s.created_at):
        writer.writerow(
            (
                s.session_id,
                s.bay_id,
                s.state.value,
                s.owner,
                s.plan_code or "",
                s.seconds,
                sum(ledger.payments[p].amount for p in s.payment_ids if p in ledger.payments),
                refunded.get(s.session_id, 0),
                " ".join(s.payment_ids),
                s.created_at,
                s.started_at or "",
                s.until or "",
                s.ended_at or "",
                s.end_reason or "",
            )
        )
    return out.getvalue()
