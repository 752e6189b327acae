"""What a payment or a refund does to the ledger: the money rules, as plain functions.

Plain Python, no Home Assistant imports; time is passed in. Beside ``session_rules``: those
move a session, these record what Razorpay told us. Each works on the working set
(``ledger.Ledger``) inside one change of the books.

The rules that keep the money safe:

- a payment id is recorded once; however many events carry it, it opens at most one session;
- a payment opens a session only when it is captured and matches, in amount and currency,
  the link we created for it; anything else is recorded for attention, never started;
- what is left to refund of a payment counts every refund not kept (failed or too small).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .ledger import Ledger
from .razorpay_events import NOTE_REFUND_KEY, PaymentNotice, RefundNotice
from .records import (
    KEPT_REFUNDS,
    LinkRecord,
    PaymentRecord,
    PaymentState,
    RefundRecord,
    RefundState,
    SessionRecord,
    SessionState,
    in_revenue,
)

# Razorpay refuses refunds of less than one rupee.
MIN_REFUND_PAISE = 100


class Outcome(StrEnum):
    """What one payment notice did to the ledger."""

    NEW_SESSION = "new_session"
    DUPLICATE = "duplicate"
    UNMATCHED = "unmatched"
    MISMATCH = "mismatch"
    NOT_CAPTURED = "not_captured"


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
    # A per-kWh sale: the energy bought and its price (``seconds`` is then the time cap).
    energy_wh: int = 0
    price_per_kwh_paise: int = 0


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """The outcome of one payment notice."""

    outcome: Outcome
    payment: PaymentRecord
    session: SessionRecord | None = None
    link: LinkRecord | None = None


def apply_payment(
    ledger: Ledger, notice: PaymentNotice, event: str, now: float, sale: Sale | None = None
) -> PaymentResult:
    """Record a payment notice; open its session when it is the first good news of it.

    ``sale`` is what a payment to a bay's static QR code bought (it matches no link).
    """
    payment = ledger.payments.get(notice.payment_id)
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
        ledger.payments[notice.payment_id] = payment
    payment.events.append(event)
    if payment.state in (PaymentState.SESSION, PaymentState.ATTENTION):
        return PaymentResult(Outcome.DUPLICATE, payment, _session_of(ledger, payment))
    if not notice.captured:
        return PaymentResult(Outcome.NOT_CAPTURED, payment)
    link = ledger.link_for(notice)
    if link is None and sale is not None:
        return _open_sale(ledger, payment, sale, now)
    if link is None:
        # Told once: later events of the same unmatched payment are repeats.
        told = payment.state is PaymentState.UNMATCHED
        payment.state = PaymentState.UNMATCHED
        return PaymentResult(Outcome.DUPLICATE if told else Outcome.UNMATCHED, payment)
    payment.link_id = link.link_id
    payment.bay_id = link.bay_id
    payment.plan_code = link.plan_code
    payment.seconds = link.seconds
    problem = _mismatch(ledger, notice, link)
    if problem is not None:
        payment.state = PaymentState.ATTENTION
        payment.problem = problem
        return PaymentResult(Outcome.MISMATCH, payment, link=link)
    link.status = "paid"
    link.payment_id = notice.payment_id
    sale = Sale(
        link.reference_id,
        link.bay_id,
        link.plan_code,
        link.seconds,
        link.intent,
        link.energy_wh,
        link.price_per_kwh_paise,
    )
    return _open_sale(ledger, payment, sale, now, link)


def _open_sale(
    ledger: Ledger, payment: PaymentRecord, sale: Sale, now: float, link: LinkRecord | None = None
) -> PaymentResult:
    """Open the session a payment bought: a link's plan, or a static QR code's amount."""
    payment.bay_id = sale.bay_id
    payment.plan_code = sale.plan_code
    payment.seconds = sale.seconds
    payment.energy_wh = sale.energy_wh
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
        energy_paid_wh=sale.energy_wh,
        price_per_kwh_paise=sale.price_per_kwh_paise,
    )
    ledger.sessions[session.session_id] = session
    payment.state = PaymentState.SESSION
    payment.session_id = session.session_id
    return PaymentResult(Outcome.NEW_SESSION, payment, session, link)


def _mismatch(ledger: Ledger, notice: PaymentNotice, link: LinkRecord) -> str | None:
    if any(r.payment_id == notice.payment_id for r in ledger.refunds.values()):
        # Refunded (as unmatched) before an event tied it to a link: power is not owed.
        return "refunded before it was matched to a link"
    if notice.currency != link.currency:
        return f"currency {notice.currency} instead of {link.currency}"
    if notice.amount != link.amount:
        return f"amount {notice.amount} paise instead of {link.amount}"
    if link.payment_id not in (None, notice.payment_id):
        return f"link already paid by {link.payment_id}"
    if link.reference_id in ledger.sessions:
        return f"session {link.reference_id} already exists"
    return None


def _session_of(ledger: Ledger, payment: PaymentRecord) -> SessionRecord | None:
    return ledger.sessions.get(payment.session_id) if payment.session_id else None


def refundable(ledger: Ledger, payment_id: str) -> int:
    """Paise of a payment not yet refunded or being refunded."""
    payment = ledger.payments.get(payment_id)
    if payment is None:
        return 0
    taken = sum(
        r.amount
        for r in ledger.refunds.values()
        if r.payment_id == payment_id and r.state not in KEPT_REFUNDS
    )
    return max(payment.amount - taken, 0)


def settlement(ledger: Ledger, payment_id: str) -> Settlement:
    """Whether a payment is refunded in full, and its refunds that failed."""
    failed = (
        r.key
        for r in ledger.refunds.values()
        if r.payment_id == payment_id and r.state is RefundState.FAILED
    )
    return Settlement(refundable(ledger, payment_id) == 0, tuple(failed))


def add_refund(ledger: Ledger, refund: RefundRecord) -> None:
    """Record a refund before asking Razorpay for it, so a crash cannot lose it."""
    payment = ledger.payments.get(refund.payment_id)
    if refund.bay_id is None and payment is not None and in_revenue(payment):
        # Revenue counted the payment, so it counts the refund; money that never counted
        # (a mismatched or unmatched payment) does not make revenue go below zero.
        refund.bay_id = payment.bay_id
    ledger.refunds[refund.key] = refund


def apply_refund(ledger: Ledger, notice: RefundNotice) -> tuple[RefundRecord | None, bool]:
    """Update one of our refunds from a ``refund.*`` event: (the refund, whether it changed).

    A settled refund stays settled, as Razorpay's events may arrive in any order, with one
    exception: a failed refund that Razorpay reports processed was paid (the money left),
    so it becomes processed and is never counted as refundable again. A refund whose id we
    have not stored yet (the event beat our own answer) is found by payment and amount.
    """
    refund = next((r for r in ledger.refunds.values() if r.refund_id == notice.refund_id), None)
    known_id = refund is not None
    if refund is None:
        # Our key travels in the refund's notes; failing that, one still waiting for its
        # answer with the same payment and amount (never a refused one: that money stayed).
        key = notice.notes.get(NOTE_REFUND_KEY)
        refund = ledger.refunds.get(key) if key else None
        if refund is None:
            refund = next(
                (
                    r
                    for r in ledger.refunds.values()
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


def _refund_state(status: str) -> RefundState:
    return {
        "processed": RefundState.PROCESSED,
        "failed": RefundState.FAILED,
    }.get(status, RefundState.PENDING)
