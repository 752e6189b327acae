"""What a bay's report means (``read_report``).

Plain Python, like ``tests/agent/test_rules.py``: no Home Assistant, no broker, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from custom_components.qr_charging.ledger import Ledger
from custom_components.qr_charging.records import (
    PaymentRecord,
    PaymentState,
    SessionRecord,
    SessionState,
)
from custom_components.qr_charging.report_rules import ReportVerdict, Verdict, read_report
from custom_components.qr_charging.session_rules import DEADLINE_SLACK_S, OnCommand

NOW = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Report:
    """A bay's state report, as the drivers give it."""

    powered: bool
    session_id: str | None
    until: float | None = None
    reason: str | None = None
    fresh: bool = True
    energy_wh: float | None = None


def _session(state: SessionState, until: float | None = NOW + 600) -> SessionRecord:
    return SessionRecord(
        session_id="s-1",
        bay_id="bay-1",
        state=state,
        created_at=NOW - 60,
        seconds=1200,
        paid_paise=2000,
        until=until,
        started_at=NOW - 600 if state is SessionState.ACTIVE else None,
    )


def _ledger(session: SessionRecord, *top_ups: tuple[str, int, int]) -> Ledger:
    """A ledger with the session's first payment (₹20 for 20 min) and its top-ups."""
    ledger = Ledger()
    ledger.sessions[session.session_id] = session
    for payment_id, paise, seconds in (("pay_1", 2000, 1200), *top_ups):
        ledger.payments[payment_id] = PaymentRecord(
            payment_id,
            paise,
            "INR",
            NOW - 600,
            PaymentState.SESSION,
            session_id=session.session_id,
            bay_id="bay-1",
            seconds=seconds,
        )
        session.payment_ids.append(payment_id)
    return ledger


def _read(session: SessionRecord | None, report: Report) -> ReportVerdict:
    ledger = _ledger(session) if session is not None else Ledger()
    return read_report(ledger, session, report, NOW)


def test_power_for_the_starting_session_acknowledges_it() -> None:
    starting = _session(SessionState.STARTING)
    assert _read(starting, Report(True, "s-1", NOW + 600)).verdict is Verdict.ACKNOWLEDGED
    # An agent that does not say until when still acknowledges.
    assert _read(starting, Report(True, "s-1")).verdict is Verdict.ACKNOWLEDGED


@pytest.mark.parametrize(
    ("session", "report"),
    [
        # Power with nothing running, or for a session that is not the bay's.
        (None, Report(True, "s-old", NOW + 600)),
        (_session(SessionState.ACTIVE), Report(True, "s-other", NOW + 600)),
        (_session(SessionState.STARTING), Report(True, None, NOW + 600)),
    ],
)
def test_power_nobody_paid_for_is_foreign(session: SessionRecord | None, report: Report) -> None:
    assert _read(session, report).verdict is Verdict.FOREIGN_POWER


def test_power_past_the_paid_deadline_is_overstated() -> None:
    for state in (SessionState.STARTING, SessionState.ACTIVE):
        session = _session(state)
        late = Report(True, "s-1", NOW + 600 + DEADLINE_SLACK_S + 1)
        assert _read(session, late).verdict is Verdict.OVERSTATED
        # Within the slack it is the same deadline.
        within = Report(True, "s-1", NOW + 600 + DEADLINE_SLACK_S)
        assert _read(session, within).verdict is not Verdict.OVERSTATED


def test_power_until_a_time_already_past_is_stale() -> None:
    starting = _session(SessionState.STARTING)
    assert _read(starting, Report(True, "s-1", NOW)).verdict is Verdict.STALE
    assert _read(starting, Report(True, "s-1", NOW - 5)).verdict is Verdict.STALE


def test_a_refused_top_up_keeps_the_deadline_before_it() -> None:
    # 20 minutes, then a 10-minute top-up: the deadline moved from NOW + 600 to NOW + 1200.
    session = _session(SessionState.ACTIVE, until=NOW + 1200)
    ledger = _ledger(session, ("pay_2", 1000, 600))
    refused = Report(True, "s-1", NOW + 600, "rejected_too_long")
    assert read_report(ledger, session, refused, NOW) == ReportVerdict(
        Verdict.TOP_UP_REFUSED, until=NOW + 600
    )
    # Any other earlier time is no refusal of ours (spoofed, or time already served).
    other = Report(True, "s-1", NOW + 300, "rejected_too_long")
    assert read_report(ledger, session, other, NOW).verdict is Verdict.NOTHING
    # Nor is an earlier deadline without a rejection.
    plain = Report(True, "s-1", NOW + 600)
    assert read_report(ledger, session, plain, NOW).verdict is Verdict.NOTHING


def test_a_fresh_rejection_of_the_start_fails_it_a_replayed_one_does_not() -> None:
    starting = _session(SessionState.STARTING)
    rejected = Report(False, "s-1", reason="rejected_expired")
    assert _read(starting, rejected) == ReportVerdict(
        Verdict.START_REJECTED, reason="rejected_expired"
    )
    replayed = Report(False, "s-1", reason="rejected_expired", fresh=False)
    assert _read(starting, replayed).verdict is Verdict.NOTHING


def test_off_at_the_deadline_ran_out() -> None:
    for left in (0.0, DEADLINE_SLACK_S, -30.0):
        session = _session(SessionState.ACTIVE, until=NOW + left)
        for reason in ("deadline", "off_command", "boot", None):
            verdict = _read(session, Report(False, "s-1", reason=reason)).verdict
            assert verdict is Verdict.RAN_OUT


def test_off_for_a_boot_or_shutdown_resumes_the_rest() -> None:
    session = _session(SessionState.ACTIVE, until=NOW + 600.5)
    for reason in ("boot", "shutdown"):
        assert _read(session, Report(False, "s-1", reason=reason)) == ReportVerdict(
            Verdict.AGENT_RESTARTED, command=OnCommand("s-1", NOW + 600.5, 601, NOW)
        )


def test_any_other_off_before_the_deadline_is_a_power_cut() -> None:
    session = _session(SessionState.ACTIVE)
    for report in (
        Report(False, "s-1", reason="off_command"),
        Report(False, None),  # a plug switched off by hand says no session
        Report(False, "s-1", reason="rejected_cancelled"),
    ):
        assert _read(session, report).verdict is Verdict.POWER_CUT


@pytest.mark.parametrize(
    ("session", "report"),
    [
        (None, Report(False, None, reason="off_command")),
        # Another session's off, or an off of the session not yet powered.
        (_session(SessionState.ACTIVE), Report(False, "s-other", reason="off_command")),
        (_session(SessionState.STARTING), Report(False, "s-1", reason="off_command")),
        (_session(SessionState.PAID, until=None), Report(False, "s-1", reason="rejected_busy")),
        (_session(SessionState.PAID, until=None), Report(True, "s-1")),
    ],
)
def test_anything_else_only_shows(session: SessionRecord | None, report: Report) -> None:
    assert _read(session, report).verdict is Verdict.NOTHING
