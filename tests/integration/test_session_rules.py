"""The session rules, as plain Python (no Home Assistant imports)."""

from __future__ import annotations

import pytest

from custom_components.qr_charging.ledger import SessionRecord, SessionState
from custom_components.qr_charging.session_rules import (
    PaidDecision,
    decide_paid,
    shorten,
    unserved_paise,
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


def test_shorten_refunds_the_cut_share_and_keeps_prorata_right() -> None:
    # Two payments' worth: 3600 s for 4000 paise; the bay will stop 1800 s early.
    session = _session(SessionState.ACTIVE, seconds=3600, until=NOW + 3600)
    session.paid_paise = 4000
    assert shorten(session, NOW + 1800) == 2000
    assert (session.until, session.seconds, session.paid_paise) == (NOW + 1800, 1800, 2000)
    # Stopped half way through what is left: half of what the remaining time is worth.
    assert unserved_paise(session, NOW + 900) == 1000
    # A later deadline is no cut.
    assert shorten(session, NOW + 5000) == 0
