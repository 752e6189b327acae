"""The ledger's rules, as plain Python (it has no Home Assistant imports)."""

from __future__ import annotations

from custom_components.qr_charging.ledger import Ledger
from custom_components.qr_charging.payment_rules import (
    Outcome,
    add_refund,
    apply_payment,
    apply_refund,
    refundable,
)
from custom_components.qr_charging.razorpay_events import PaymentNotice, RefundNotice
from custom_components.qr_charging.records import (
    LinkRecord,
    RefundRecord,
    RefundState,
    SessionState,
)


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
    assert apply_payment(ledger, _notice(), "payment.captured", 1).outcome is Outcome.NEW_SESSION
    second = apply_payment(ledger, _notice("pay_2"), "payment.captured", 2)
    assert second.outcome is Outcome.MISMATCH
    assert second.payment.problem == "link already paid by pay_1"
    assert ledger.payments["pay_2"].state == "attention"
    assert len(ledger.sessions) == 1


def test_matching_by_session_note_when_no_link_id() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    result = apply_payment(
        ledger, _notice(link_id=None, notes={"session": "s-1"}), "payment.captured", 1
    )
    assert result.outcome is Outcome.NEW_SESSION
    assert ledger.running_session("bay-1") is result.session
    assert ledger.running_session("bay-2") is None


def test_authorized_then_captured() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    first = apply_payment(ledger, _notice(status="authorized"), "payment.authorized", 1)
    assert first.outcome is Outcome.NOT_CAPTURED
    assert ledger.sessions == {}
    assert apply_payment(ledger, _notice(), "payment.captured", 2).outcome is Outcome.NEW_SESSION


def test_closing_links() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    assert ledger.close_link("plink_1", "expired")
    assert not ledger.close_link("plink_1", "expired")
    assert not ledger.close_link("plink_unknown", "expired")


def test_refund_event_before_our_answer_is_matched_by_payment_and_amount() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    apply_payment(ledger, _notice(), "payment.captured", 1)
    add_refund(
        ledger,
        RefundRecord("r-1", "pay_1", 500, 2, RefundState.REQUESTED, "owner", session_id="s-1"),
    )
    refund, changed = apply_refund(ledger, RefundNotice("rfnd_9", "pay_1", 500, "processed"))
    assert changed
    assert refund is ledger.refunds["r-1"]
    assert (refund.refund_id, refund.state) == ("rfnd_9", RefundState.PROCESSED)


def test_a_change_undone_leaves_the_same_records_with_their_old_values() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    session = apply_payment(ledger, _notice(), "payment.captured", 1).session
    assert session is not None
    checkpoint = ledger.checkpoint()
    session.state = SessionState.ACTIVE
    session.payment_ids.append("pay_x")
    ledger.add_link(_link("s-2", "plink_2"))
    del ledger.payments["pay_1"]
    ledger.note_event("evt_1", "payment.captured", "new_session", 2)
    changes = ledger.changes_since(checkpoint)
    assert {(kind.table, key) for kind, key in changes.deletes} == {("payments", "pay_1")}
    assert sorted(kind.table for kind, _ in changes.upserts) == ["links", "sessions"]
    assert [e[0] for e in changes.events] == ["evt_1"]
    # The payment left (its revenue with it) and the session now powers its bay.
    assert (changes.totals["bay-1"].revenue_paise, changes.totals["bay-1"].sessions) == (-2000, 1)

    ledger.restore(checkpoint)

    assert ledger.sessions["s-1"] is session
    assert session.state is SessionState.PAID
    assert session.payment_ids == ["pay_1"]
    assert set(ledger.links) == {"plink_1"}
    assert "pay_1" in ledger.payments
    assert not ledger.seen_event("evt_1")
    assert not ledger.changes_since(ledger.checkpoint())


def test_evicting_keeps_what_the_rules_need_now() -> None:
    ledger = Ledger()
    ledger.add_link(_link())
    ledger.add_link(_link("s-2", "plink_2"))
    running = apply_payment(ledger, _notice(), "payment.captured", 1).session
    ended = apply_payment(
        ledger, _notice("pay_2", link_id="plink_2"), "payment.captured", 1
    ).session
    assert running is not None
    assert ended is not None
    ended.state = SessionState.ENDED
    add_refund(ledger, RefundRecord("r-1", "pay_1", 500, 2, RefundState.PROCESSED, "owner"))
    add_refund(ledger, RefundRecord("r-2", "pay_2", 500, 2, RefundState.PROCESSED, "owner"))

    ledger.evict(now=3)

    assert set(ledger.sessions) == {"s-1"}
    assert set(ledger.links) == set()  # both paid
    # A running session's payment stays with every refund of it, settled or not.
    assert set(ledger.payments) == {"pay_1"}
    assert set(ledger.refunds) == {"r-1"}
    assert refundable(ledger, "pay_1") == 1500
