"""The session rules, as plain Python (no Home Assistant imports)."""

from __future__ import annotations

import pytest

from custom_components.qr_charging.intents import HOLD
from custom_components.qr_charging.ledger import Ledger
from custom_components.qr_charging.records import (
    LinkRecord,
    PaymentRecord,
    PaymentState,
    RefundRecord,
    RefundState,
    SessionRecord,
    SessionState,
)
from custom_components.qr_charging.session_rules import (
    RESUME_PAID_WITHIN_S,
    PaidDecision,
    Resume,
    decide_paid,
    refundable_parts,
    resume,
    settle_paid,
    shorten,
    unserved_parts,
)

NOW = 1_000_000.0


def _session(state: SessionState, seconds: int = 1800, until: float | None = None) -> SessionRecord:
    return SessionRecord(
        session_id=f"s-{state}",
        bay_id="bay-1",
        state=state,
        created_at=NOW - 60,
        seconds=seconds,
        paid_paise=2000,
        until=until,
    )


@pytest.mark.parametrize(
    ("running", "online", "expected"),
    [
        (None, True, PaidDecision.START),
        (None, False, PaidDecision.REFUSE_OFFLINE),
        (_session(SessionState.ACTIVE, until=NOW + 600), True, PaidDecision.TOP_UP),
        # A top-up must reach the bay before it switches off: never when offline or ending.
        (_session(SessionState.ACTIVE, until=NOW + 600), False, PaidDecision.REFUSE_OFFLINE),
        (_session(SessionState.ACTIVE, until=NOW + 20), True, PaidDecision.REFUSE_ENDING),
        (_session(SessionState.STARTING), True, PaidDecision.REFUSE_BUSY),
        (_session(SessionState.ACTIVE, until=NOW + 13_000), True, PaidDecision.REFUSE_TOO_LONG),
    ],
)
def test_decide_paid(running: SessionRecord | None, online: bool, expected: PaidDecision) -> None:
    new = _session(SessionState.PAID)
    new.session_id = "s-new"
    decision = decide_paid(running, new, online=online, limit_s=14_400, now=NOW, margin_s=22)
    assert decision is expected


@pytest.mark.parametrize("owner", [False, True])
def test_settle_paid_starts_or_refuses_a_held_bay_and_a_refusal_changes_nothing(
    owner: bool,
) -> None:
    """Both paths decide with this: a hold refuses a payer, not the owner; refusing changes
    nothing (the caller fails the session in a change of its own)."""
    ledger = Ledger()
    ledger.links["plink_hold"] = LinkRecord(
        "plink_hold",
        "s-holder",
        "bay-1",
        "p30",
        2000,
        "INR",
        1800,
        int(NOW) + 600,
        NOW,
        "u",
        intent=HOLD,
    )
    new = _session(SessionState.PAID)
    new.owner = owner
    ledger.sessions[new.session_id] = new

    outcome = settle_paid(ledger, new, online=True, limit_s=14_400, now=NOW, margin_s=22)

    if owner:
        assert outcome.decision is PaidDecision.START
        assert outcome.session is new
        assert (new.state, new.until) == (SessionState.STARTING, NOW + 1800)
        assert outcome.command is not None
        assert (outcome.command.until, outcome.command.duration) == (NOW + 1800, 1800)
    else:
        assert (outcome.decision, outcome.command) == (PaidDecision.REFUSE_BUSY, None)
        assert (new.state, new.until) == (SessionState.PAID, None)


def _paid(
    ledger: Ledger, session: SessionRecord, payment_id: str, paise: int, seconds: int
) -> None:
    """Add a payment of ``paise`` for ``seconds`` to a session (as a top-up does)."""
    ledger.payments[payment_id] = PaymentRecord(
        payment_id,
        paise,
        "INR",
        NOW,
        PaymentState.SESSION,
        session_id=session.session_id,
        bay_id="bay-1",
        seconds=seconds,
    )
    session.payment_ids.append(payment_id)
    session.seconds += seconds
    session.paid_paise += paise


def test_a_refused_top_up_refunds_exactly_its_payment() -> None:
    # 60 minutes for ₹35, then a 30-minute top-up for ₹20 the bay refuses to take.
    ledger = Ledger()
    session = _session(SessionState.ACTIVE, seconds=0, until=NOW + 5400)
    session.paid_paise = 0
    _paid(ledger, session, "pay_1", 3500, 3600)
    _paid(ledger, session, "pay_2", 2000, 1800)

    assert shorten(ledger, session, NOW + 3600) == [("pay_2", 2000)]
    assert (session.until, session.seconds, session.paid_paise) == (NOW + 3600, 3600, 3500)
    # Stopped half way: half of the first payment's hour, at its own price.
    assert unserved_parts(ledger, session, NOW + 1800) == [("pay_1", 1750)]
    # A later deadline is no cut.
    assert shorten(ledger, session, NOW + 5000) == []


def test_an_owners_free_minutes_are_never_priced() -> None:
    ledger = Ledger()
    session = _session(SessionState.ACTIVE, seconds=1800, until=NOW + 3600)
    session.owner, session.paid_paise = True, 0
    _paid(ledger, session, "pay_1", 2000, 1800)
    # 45 of the 60 minutes left: the paid half hour comes off first, the rest was free.
    assert unserved_parts(ledger, session, NOW + 900) == [("pay_1", 2000)]


def test_what_was_refunded_is_not_refunded_again() -> None:
    ledger = Ledger()
    session = _session(SessionState.ACTIVE, seconds=0, until=NOW + 1800)
    session.paid_paise = 0
    _paid(ledger, session, "pay_1", 2000, 1800)
    ledger.refunds["r-1"] = RefundRecord("r-1", "pay_1", 1500, NOW, RefundState.PROCESSED, "owner")
    assert unserved_parts(ledger, session, NOW) == [("pay_1", 500)]
    assert refundable_parts(ledger, session) == [("pay_1", 500)]


@pytest.mark.parametrize(
    ("session", "first", "expected"),
    [
        (_session(SessionState.ACTIVE, until=NOW + 600), True, Resume.DEADLINE),
        (_session(SessionState.ACTIVE, until=NOW), True, Resume.END),
        (_session(SessionState.STARTING, until=NOW + 600), True, Resume.ACK),
        # Paid just before the restart: start it (or top up the one running).
        (_session(SessionState.PAID), True, Resume.START),
        (_session(SessionState.PAID), False, Resume.START),
        # Only the bay's first running session can be on the bay; a second one cannot run.
        (_session(SessionState.ACTIVE, until=NOW + 600), False, Resume.INTERRUPTED),
        (_session(SessionState.STARTING, until=NOW + 600), False, Resume.INTERRUPTED),
    ],
)
def test_resume_after_a_restart(session: SessionRecord, first: bool, expected: Resume) -> None:
    assert resume(session, first=first, now=NOW) is expected


def test_a_payment_found_unstarted_long_after_a_restart_is_interrupted() -> None:
    paid = _session(SessionState.PAID)
    assert resume(paid, first=True, now=paid.created_at + RESUME_PAID_WITHIN_S) is (
        Resume.INTERRUPTED
    )
