"""The payment rules (``payment_rules``) in plain Python: refunds, settlement, static QR sales."""

from __future__ import annotations

import pytest

from custom_components.qr_charging.ledger import Ledger
from custom_components.qr_charging.payment_rules import (
    Outcome,
    Sale,
    Settlement,
    add_refund,
    apply_payment,
    apply_refund,
    refundable,
    settlement,
)
from custom_components.qr_charging.razorpay_events import (
    NOTE_REFUND_KEY,
    PaymentNotice,
    RefundNotice,
)
from custom_components.qr_charging.records import (
    LinkRecord,
    PaymentState,
    RefundRecord,
    RefundState,
    SessionState,
)


def _paid_ledger(amount: int = 2000) -> Ledger:
    """A ledger where ``pay_1`` paid link ``plink_1`` for session ``s-1`` at ``bay-1``."""
    ledger = Ledger()
    ledger.add_link(
        LinkRecord("plink_1", "s-1", "bay-1", "p30", amount, "INR", 1800, 0, 0.0, "https://x/1")
    )
    notice = PaymentNotice("pay_1", amount, "INR", "captured", link_id="plink_1")
    assert apply_payment(ledger, notice, "payment.captured", 1).outcome is Outcome.NEW_SESSION
    return ledger


def _refund(
    key: str, amount: int, state: RefundState, refund_id: str | None = None
) -> RefundRecord:
    return RefundRecord(key, "pay_1", amount, 2, state, "owner", refund_id=refund_id)


def test_refundable_counts_every_refund_but_those_whose_money_stayed() -> None:
    ledger = _paid_ledger()
    for refund in (
        _refund("r-requested", 300, RefundState.REQUESTED),
        _refund("r-pending", 200, RefundState.PENDING),
        _refund("r-processed", 100, RefundState.PROCESSED),
        _refund("r-failed", 700, RefundState.FAILED),
        _refund("r-small", 50, RefundState.TOO_SMALL),
    ):
        add_refund(ledger, refund)

    assert refundable(ledger, "pay_1") == 2000 - 300 - 200 - 100
    assert refundable(ledger, "pay_unknown") == 0


def test_settlement_says_whether_all_is_refunded_and_which_refunds_failed() -> None:
    ledger = _paid_ledger()
    add_refund(ledger, _refund("r-1", 1500, RefundState.PROCESSED))
    add_refund(ledger, _refund("r-2", 500, RefundState.FAILED))
    assert settlement(ledger, "pay_1") == Settlement(fully_refunded=False, failed_keys=("r-2",))

    add_refund(ledger, _refund("r-3", 500, RefundState.REQUESTED))
    assert settlement(ledger, "pay_1") == Settlement(fully_refunded=True, failed_keys=("r-2",))


def test_a_refund_takes_its_bay_only_from_a_payment_that_counted_in_revenue() -> None:
    ledger = _paid_ledger()
    add_refund(ledger, _refund("r-1", 500, RefundState.REQUESTED))
    assert ledger.refunds["r-1"].bay_id == "bay-1"

    # An unmatched payment never counted: its refund must not lower any bay's revenue.
    stray = PaymentNotice("pay_2", 900, "INR", "captured", link_id="plink_unknown")
    assert apply_payment(ledger, stray, "payment.captured", 1).outcome is Outcome.UNMATCHED
    add_refund(ledger, RefundRecord("r-2", "pay_2", 900, 2, RefundState.REQUESTED, "unmatched"))
    assert ledger.refunds["r-2"].bay_id is None


@pytest.mark.parametrize(
    ("settled", "status", "after", "changed"),
    [
        # Razorpay's events come in any order: a settled refund is not moved back.
        (RefundState.PROCESSED, "pending", RefundState.PROCESSED, False),
        (RefundState.FAILED, "pending", RefundState.FAILED, False),
        (RefundState.PROCESSED, "failed", RefundState.PROCESSED, False),
        # But a failed refund Razorpay reports processed was paid after all.
        (RefundState.FAILED, "processed", RefundState.PROCESSED, True),
        (RefundState.PENDING, "processed", RefundState.PROCESSED, True),
        (RefundState.PENDING, "pending", RefundState.PENDING, False),
    ],
)
def test_a_refund_event_moves_a_refund_only_forward(
    settled: RefundState, status: str, after: RefundState, changed: bool
) -> None:
    ledger = _paid_ledger()
    add_refund(ledger, _refund("r-1", 500, settled, refund_id="rfnd_1"))

    refund, moved = apply_refund(ledger, RefundNotice("rfnd_1", "pay_1", 500, status))

    assert refund is ledger.refunds["r-1"]
    assert (refund.state, moved) == (after, changed)


def test_a_refund_event_is_matched_by_the_key_in_its_notes_and_only_for_its_payment() -> None:
    ledger = _paid_ledger()
    add_refund(ledger, _refund("r-1", 500, RefundState.REQUESTED))
    add_refund(ledger, _refund("r-2", 500, RefundState.REQUESTED))
    notes = {NOTE_REFUND_KEY: "r-2"}

    other_payment = RefundNotice("rfnd_9", "pay_other", 500, "processed", notes=notes)
    assert apply_refund(ledger, other_payment) == (None, False)
    assert ledger.refunds["r-2"].refund_id is None

    refund, moved = apply_refund(ledger, RefundNotice("rfnd_9", "pay_1", 500, "processed", notes))
    assert refund is ledger.refunds["r-2"]
    assert moved
    assert (refund.refund_id, refund.state) == ("rfnd_9", RefundState.PROCESSED)
    assert ledger.refunds["r-1"].state is RefundState.REQUESTED


def test_a_payment_at_a_static_qr_code_opens_the_session_its_amount_bought() -> None:
    ledger = Ledger()
    notice = PaymentNotice("pay_qr", 1000, "INR", "captured")
    sale = Sale("s-qr", "bay-2", None, 900, "static_qr")

    result = apply_payment(ledger, notice, "qr_code.credited", 5, sale)

    assert result.outcome is Outcome.NEW_SESSION
    assert result.link is None
    session = ledger.sessions["s-qr"]
    assert (session.state, session.bay_id, session.seconds) == (SessionState.PAID, "bay-2", 900)
    assert (session.paid_paise, session.payment_ids, session.intent) == (
        1000,
        ["pay_qr"],
        "static_qr",
    )
    payment = ledger.payments["pay_qr"]
    assert (payment.state, payment.bay_id, payment.seconds) == (PaymentState.SESSION, "bay-2", 900)
    again = apply_payment(ledger, notice, "payment.captured", 6, sale)
    assert (again.outcome, again.session) == (Outcome.DUPLICATE, session)
