"""The ledger's rules, as plain Python (it has no Home Assistant imports)."""

from __future__ import annotations

import json

from custom_components.qr_charging.ledger import (
    EVENT_MEMORY_S,
    Ledger,
    LinkRecord,
    Outcome,
    RefundRecord,
    RefundState,
    SessionState,
    sessions_csv,
)
from custom_components.qr_charging.razorpay_events import PaymentNotice, RefundNotice


def _link(ref: str = "s-1", link_id: str = "plink_1", amount: int = 2000) -> LinkRecord:
    return LinkRecord(
        link_id=link_id,
        reference_id=ref,
        bay_id="bay-1",
        plan_code="p30",
        amount=amount,
        currency="INR",
        seconds=1800,
        expire_by=2_000,
        created_at=1_000,
        short_url="https://rzp.io/x",
    )


def _notice(payment_id: str = "pay_1", **changes: object) -> PaymentNotice:
    values: dict[str, object] = {
        "payment_id": payment_id,
        "amount": 2000,
        "currency": "INR",
        "status": "captured",
        "link_id": "plink_1",
    }
    values.update(changes)
    return PaymentNotice(**values)  # type: ignore[arg-type]


def test_second_payment_for_a_paid_link_needs_attention() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    assert ledger.apply_payment(_notice(), "payment.captured", 1).outcome is Outcome.NEW_SESSION
    second = ledger.apply_payment(_notice("pay_2"), "payment.captured", 2)
    assert second.outcome is Outcome.MISMATCH
    assert second.payment.problem == "link already paid by pay_1"
    assert [p.payment_id for p in ledger.attention()] == ["pay_2"]
    assert len(ledger.sessions) == 1


def test_matching_by_session_note_when_no_link_id() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    result = ledger.apply_payment(
        _notice(link_id=None, notes={"session": "s-1"}), "payment.captured", 1
    )
    assert result.outcome is Outcome.NEW_SESSION
    assert ledger.running_session("bay-1") is result.session
    assert ledger.running_session("bay-2") is None


def test_authorized_then_captured() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    first = ledger.apply_payment(_notice(status="authorized"), "payment.authorized", 1)
    assert first.outcome is Outcome.NOT_CAPTURED
    assert ledger.sessions == {}
    assert ledger.apply_payment(_notice(), "payment.captured", 2).outcome is Outcome.NEW_SESSION


def test_event_ids_forgotten_after_the_redelivery_window() -> None:
    ledger = Ledger()
    ledger.note_event("evt_old", "payment.captured", "new_session", 0)
    ledger.note_event("evt_new", "payment.captured", "new_session", EVENT_MEMORY_S)
    assert ledger.forget_old_events(EVENT_MEMORY_S + 1) == 1
    assert not ledger.seen_event("evt_old")
    assert ledger.seen_event("evt_new")


def test_round_trip_through_json_keeps_everything() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    ledger.apply_payment(_notice(), "payment_link.paid", 1)
    ledger.add_refund(
        RefundRecord(
            key="r-1",
            payment_id="pay_1",
            amount=500,
            created_at=3,
            state=RefundState.PENDING,
            reason="owner",
            session_id="s-1",
            refund_id="rfnd_1",
        )
    )
    ledger.note_event("evt_1", "payment_link.paid", "new_session", 1)
    data = json.loads(json.dumps(ledger.as_dict()))
    data["sessions"][0]["added_by_a_newer_version"] = True

    again = Ledger.from_dict(data)

    assert again.as_dict() == ledger.as_dict()
    assert again.sessions["s-1"].state is SessionState.PAID
    assert again.refundable("pay_1") == 1500
    refund, changed = again.apply_refund(RefundNotice("rfnd_1", "pay_1", 500, "processed"))
    assert (refund, changed) == (again.refunds["r-1"], True)
    assert again.refunds["r-1"].state is RefundState.PROCESSED
    # Settled stays settled, whatever arrives later (Razorpay promises no order).
    assert again.apply_refund(RefundNotice("rfnd_1", "pay_1", 500, "pending")) == (refund, False)
    assert again.refunds["r-1"].state is RefundState.PROCESSED
    assert again.apply_refund(RefundNotice("rfnd_x", "pay_9", 500, "processed")) == (None, False)
    assert sessions_csv(again).splitlines()[1].startswith("s-1,bay-1,paid,False,p30,1800,2000,500,")


def test_closing_links() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    assert ledger.close_link("plink_1", "expired")
    assert not ledger.close_link("plink_1", "expired")
    assert not ledger.close_link("plink_unknown", "expired")


def test_refund_event_before_our_answer_is_matched_by_payment_and_amount() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    ledger.apply_payment(_notice(), "payment.captured", 1)
    ledger.add_refund(
        RefundRecord("r-1", "pay_1", 500, 2, RefundState.REQUESTED, "owner", session_id="s-1")
    )
    refund, changed = ledger.apply_refund(RefundNotice("rfnd_9", "pay_1", 500, "processed"))
    assert changed
    assert refund is ledger.refunds["r-1"]
    assert (refund.refund_id, refund.state) == ("rfnd_9", RefundState.PROCESSED)
