"""The rules of a running metered session's stored energy (review #24, 1-3).

Plain Python: when the energy so far is due to be stored (``keep_due``), what a switch bay
resumes from (``resumed_count``), and what an agent's ``rejected_ended`` means for a session
sold by the kWh (``read_report``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from custom_components.qr_charging.energy_rules import (
    AGENT_ENDED,
    EnergyCount,
    keep_due,
    resumed_count,
)
from custom_components.qr_charging.ledger import Ledger
from custom_components.qr_charging.records import SessionRecord, SessionState
from custom_components.qr_charging.report_rules import ReportVerdict, Verdict, read_report

NOW = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Report:
    """An agent's OFF, as the drivers give it."""

    powered: bool
    session_id: str | None
    until: float | None = None
    reason: str | None = None
    fresh: bool = True
    energy_wh: float | None = None


def _session(energy_paid_wh: int) -> SessionRecord:
    return SessionRecord(
        session_id="s-1",
        bay_id="bay-1",
        state=SessionState.ACTIVE,
        created_at=NOW - 60,
        seconds=7200,
        paid_paise=3000,
        until=NOW + 3600,
        started_at=NOW - 60,
        energy_paid_wh=energy_paid_wh,
    )


@pytest.mark.parametrize(
    ("counted", "seconds", "due"),
    [
        (109.9, 29.9, False),  # less than 10 Wh, less than 30 s
        (110.0, 0.0, True),  # 10 Wh on
        (100.5, 30.0, True),  # any growth after 30 s
        (100.0, 3600.0, False),  # nothing new to store
        (90.0, 3600.0, False),  # less than stored: never stored
    ],
)
def test_the_energy_is_stored_every_10_wh_or_after_30_s(
    counted: float, seconds: float, due: bool
) -> None:
    assert keep_due(100.0, NOW, counted, NOW + seconds) is due


def test_a_switch_bay_resumes_from_its_stored_count_and_reading() -> None:
    session = _session(2000)
    assert resumed_count(session) is None  # nothing stored: counts from its next reading
    session.energy_used_wh, session.meter_wh = 512.0, 12_512.0
    # Its next rise is judged against the maximum power since the session started.
    assert resumed_count(session) == EnergyCount(512.0, 12_512.0, session.started_at or 0.0)


@pytest.mark.parametrize(
    ("energy_paid_wh", "session_id", "verdict"),
    [
        (2000, "s-1", ReportVerdict(Verdict.METERED_END, reason=AGENT_ENDED)),
        (0, "s-1", ReportVerdict(Verdict.POWER_CUT)),  # sold by time: as before
        (2000, None, ReportVerdict(Verdict.POWER_CUT)),  # names no session: not its end
    ],
)
def test_rejected_ended_for_a_session_sold_by_the_kwh_is_the_agents_own_end(
    energy_paid_wh: int, session_id: str | None, verdict: ReportVerdict
) -> None:
    session = _session(energy_paid_wh)
    ledger = Ledger()
    ledger.sessions[session.session_id] = session
    report = Report(False, session_id, reason="rejected_ended")
    assert read_report(ledger, session, report, NOW) == verdict


def test_rejected_ended_with_energy_for_a_timed_session_is_the_agents_own_end() -> None:
    """A timed session at a metered bay the agent ended (vehicle full, say). Before: power cut."""
    session = _session(0)
    ledger = Ledger()
    ledger.sessions[session.session_id] = session
    report = Report(False, "s-1", reason="rejected_ended", energy_wh=40.0)
    assert read_report(ledger, session, report, NOW) == ReportVerdict(
        Verdict.METERED_END, reason=AGENT_ENDED
    )


@pytest.mark.parametrize(
    ("reason", "energy_wh", "verdict"),
    [
        ("energy_reached", 2000.0, ReportVerdict(Verdict.METERED_END, reason="energy_reached")),
        ("deadline", 900.0, ReportVerdict(Verdict.METERED_END, reason="time_cap")),
        ("rejected_ended", 2000.0, ReportVerdict(Verdict.METERED_END, reason=AGENT_ENDED)),
        ("rejected_ended", None, ReportVerdict(Verdict.START_REJECTED, reason="rejected_ended")),
        ("off_command", 500.0, ReportVerdict(Verdict.NOTHING)),
    ],
)
def test_an_off_naming_a_starting_kwh_sessions_end_ends_it(
    reason: str, energy_wh: float | None, verdict: ReportVerdict
) -> None:
    """HA had it starting; the agent ran it. Before: nothing (then no_acknowledgement)."""
    session = _session(2000)
    session.state, session.started_at = SessionState.STARTING, None
    ledger = Ledger()
    ledger.sessions[session.session_id] = session
    report = Report(False, "s-1", reason=reason, energy_wh=energy_wh)
    assert read_report(ledger, session, report, NOW) == verdict


@pytest.mark.parametrize(
    ("reason", "energy_paid_wh", "asks"),
    [("deadline", 2000, True), ("rejected_ended", 2000, False), ("deadline", 0, False)],
)
def test_an_off_naming_another_session_asks_the_agent_about_a_running_kwh_session(
    reason: str, energy_paid_wh: int, asks: bool
) -> None:
    """An answer to a command (an older agent names its last ended session) asks nothing."""
    session = _session(energy_paid_wh)
    ledger = Ledger()
    ledger.sessions[session.session_id] = session
    report = Report(False, "manual-1", reason=reason)
    verdict = read_report(ledger, session, report, NOW)
    assert (verdict.verdict is Verdict.ASK_AGENT) is asks
