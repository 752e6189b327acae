"""How a session ends (``ending_rules``): plain Python, no Home Assistant, no clock."""

from __future__ import annotations

from custom_components.qr_charging.ending_rules import Ending, RefundMode, apply_ending
from custom_components.qr_charging.ledger import Ledger
from custom_components.qr_charging.records import (
    PaymentRecord,
    PaymentState,
    SessionRecord,
    SessionState,
)
from custom_components.qr_charging.session_rules import DEADLINE, NOT_POWERED

NOW = 1_000_000.0


def _session(state: SessionState, until: float | None = NOW + 600) -> SessionRecord:
    """A session of 20 minutes for ₹20 (``pay_1``), active for the last 10."""
    return SessionRecord(
        session_id="s-1",
        bay_id="bay-1",
        state=state,
        created_at=NOW - 60,
        seconds=1200,
        paid_paise=2000,
        until=until,
        payment_ids=["pay_1"],
    )


def _ledger(session: SessionRecord) -> Ledger:
    ledger = Ledger()
    ledger.sessions[session.session_id] = session
    ledger.payments["pay_1"] = PaymentRecord(
        "pay_1",
        2000,
        "INR",
        NOW - 600,
        PaymentState.SESSION,
        session_id=session.session_id,
        bay_id="bay-1",
        seconds=1200,
    )
    return ledger


def test_a_power_cut_ends_and_refunds_the_unserved_share() -> None:
    session = _session(SessionState.ACTIVE, until=NOW + 600)
    ledger = _ledger(session)
    cut = Ending.end("power_cut", send_off=True, refund=RefundMode.PRORATA)
    # Half of the 20 minutes is left: half of ₹20.
    assert apply_ending(ledger, session, cut, NOW) == [("pay_1", 1000)]
    assert (session.state, session.end_reason, session.ended_at) == (
        SessionState.ENDED,
        "power_cut",
        NOW,
    )


def test_a_deadline_moved_by_a_top_up_ends_nothing() -> None:
    session = _session(SessionState.ACTIVE, until=NOW + 600)
    ledger = _ledger(session)
    assert apply_ending(ledger, session, Ending.end(DEADLINE, send_off=True), NOW) is None
    assert session.state is SessionState.ACTIVE
    # At the deadline it ends, at the deadline (not later).
    assert apply_ending(ledger, session, Ending.end(DEADLINE, send_off=True), NOW + 601) == []
    assert (session.state, session.ended_at) == (SessionState.ENDED, NOW + 600)


def test_a_failure_refunds_everything_only_with_automatic_refund_and_from_its_states() -> None:
    starting = _session(SessionState.STARTING)
    ledger = _ledger(starting)
    paid_only = Ending.fail("bay_busy", auto_refund=True, states=frozenset({SessionState.PAID}))
    # Acknowledged (or failed) meanwhile: nothing changes.
    assert apply_ending(ledger, starting, paid_only, NOW) is None
    assert starting.state is SessionState.STARTING
    no_ack = Ending.fail("no_acknowledgement", auto_refund=True, states=NOT_POWERED)
    assert apply_ending(ledger, starting, no_ack, NOW) == [("pay_1", 2000)]
    assert (starting.state, starting.end_reason) == (SessionState.FAILED, "no_acknowledgement")

    kept = _session(SessionState.PAID, until=None)
    ledger = _ledger(kept)
    assert apply_ending(ledger, kept, Ending.fail("bay_offline", auto_refund=False), NOW) == []
    assert kept.state is SessionState.FAILED


def test_an_ending_says_whether_it_repairs() -> None:
    assert Ending.fail("no_acknowledgement", auto_refund=True).repaired
    assert not Ending.end("stopped", send_off=True, by_owner=True).repaired
    assert not Ending.end(DEADLINE, send_off=True).repaired


def test_the_owners_stop_ends_a_powered_session_and_fails_one_not_yet_powered() -> None:
    active = _session(SessionState.ACTIVE)
    ledger = _ledger(active)
    stop = Ending.stop(RefundMode.PRORATA, powered=True)
    # Ten of twenty minutes served: half of it back, refunded as "stopped".
    assert apply_ending(ledger, active, stop, NOW) == [("pay_1", 1000)]
    assert (active.state, active.end_reason) == (SessionState.ENDED, "stopped")

    starting = _session(SessionState.STARTING)
    ledger = _ledger(starting)
    not_powered = Ending.stop(RefundMode.PRORATA, powered=False)
    # Nothing served: the unserved share asked for is all of it.
    assert apply_ending(ledger, starting, not_powered, NOW) == [("pay_1", 2000)]
    assert (starting.state, not_powered.refund_reason) == (SessionState.FAILED, "stopped_prorata")
    assert (
        apply_ending(
            ledger, _session(SessionState.PAID), Ending.stop(RefundMode.NONE, powered=False), NOW
        )
        == []
    )
    # An acknowledgement that came while the stop waited: the failure no longer applies.
    assert apply_ending(ledger, _session(SessionState.ACTIVE), not_powered, NOW) is None
