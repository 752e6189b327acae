"""What a bay's state report means for its running session (``read_report``).

Plain Python, no Home Assistant imports; time is passed in. Only a report that agrees with
what HA commanded counts: never more time than was paid, never the end of another session.
A metered bay's ``OFF`` that names a session's own end (energy reached, vehicle full, a
meter fault, its cap, or the agent's ``rejected_ended`` with the energy it drew) ends that
session as the meter's end, billed by that energy, even if HA still had it as starting.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from .energy_rules import AGENT_ENDED, METERED_ENDS, REJECTED_ENDED, TIME_CAP
from .ledger import Ledger
from .records import SessionRecord, SessionState
from .session_rules import DEADLINE, DEADLINE_SLACK_S, OnCommand, before_top_ups, on_command

# Reasons of an "OFF" before the deadline that are passing: the agent restarted and resumes the
# session from its own disk. Any other such "OFF" means the power was cut.
PASSING_REASONS = frozenset({"boot", "shutdown"})


class StateReport(Protocol):
    """What a bay says it is doing (``drivers.base.BayReport``)."""

    @property
    def powered(self) -> bool: ...  # noqa: D102
    @property
    def session_id(self) -> str | None: ...  # noqa: D102
    @property
    def until(self) -> float | None: ...  # noqa: D102
    @property
    def reason(self) -> str | None: ...  # noqa: D102
    @property
    def fresh(self) -> bool: ...  # noqa: D102
    @property
    def energy_wh(self) -> float | None: ...  # noqa: D102


class Verdict(StrEnum):
    """What a bay's report means for its running session."""

    ACKNOWLEDGED = "acknowledged"  # power for the starting session: it is active
    FOREIGN_POWER = "foreign_power"  # power for a session that is not the bay's: cut it
    RAN_OUT = "ran_out"  # off at (about) the deadline: the session ended
    METERED_END = "metered_end"  # the bay's meter ended it: energy reached, full, a fault
    AGENT_RESTARTED = "agent_restarted"  # off for a boot or shutdown: send "on" again
    ASK_AGENT = "ask_agent"  # off naming another session: ask the agent about this one
    POWER_CUT = "power_cut"  # off before the deadline nobody here asked for: end and refund
    START_REJECTED = "start_rejected"  # the bay refused to start the session: it failed
    TOP_UP_REFUSED = "top_up_refused"  # the bay keeps the deadline before the top-up(s)
    OVERSTATED = "overstated"  # power until later than paid: ignored
    STALE = "stale"  # power for the starting session until a time already past: ignored
    NOTHING = "nothing"  # nothing to do but show it


@dataclass(frozen=True, slots=True)
class ReportVerdict:
    """A verdict with what carrying it out needs.

    ``until``: the deadline the bay keeps (a refused top-up); ``reason``: why the bay refused a
    start, or the metered end; ``command``: the ``on`` that resumes the session after the
    agent restarted, or asks the agent about it (``ASK_AGENT``).
    """

    verdict: Verdict
    until: float | None = None
    reason: str | None = None
    command: OnCommand | None = None


def _rejected(report: StateReport) -> bool:
    return (report.reason or "").startswith("rejected")


def read_report(
    ledger: Ledger, session: SessionRecord | None, report: StateReport, now: float
) -> ReportVerdict:
    """What a bay's state report means for its running session ``session`` (None: idle).

    Only a report that agrees with what HA commanded counts: never more time than was paid.
    """
    if report.powered:
        if session is None or report.session_id != session.session_id:
            return ReportVerdict(Verdict.FOREIGN_POWER)
        return _read_powered(ledger, session, report, now)
    if session is None:
        return ReportVerdict(Verdict.NOTHING)
    if report.session_id not in (None, session.session_id):
        return _read_other(session, report, now)
    return _read_off(session, report, now)


def asks_agent(session: SessionRecord, report: StateReport) -> bool:
    """Whether an ``OFF`` naming another session leaves a running kWh session's end unknown.

    The agent keeps one state per bay: a later session (a manual one, say) hides how it ended
    a running kWh session. Its ``on`` is sent again, and the agent's answer (power, or
    ``rejected_ended`` naming it with its energy) tells. An answer to a command (``rejected_*``)
    asks nothing again: an older agent names its last ended session there.
    """
    return (
        not report.powered
        and report.session_id not in (None, session.session_id)
        and session.state is SessionState.ACTIVE
        and session.sells_energy
        and not _rejected(report)
    )


def tells(session: SessionRecord, report: StateReport) -> bool:
    """Whether a report is news enough to end a running kWh session by (no question left)."""
    return not asks_agent(session, report)


def _read_other(session: SessionRecord, report: StateReport, now: float) -> ReportVerdict:
    """An ``OFF`` naming another session while this one runs: ask the agent, or nothing."""
    if asks_agent(session, report):
        return ReportVerdict(Verdict.ASK_AGENT, command=on_command(session, now))
    return ReportVerdict(Verdict.NOTHING)


def _read_starting_off(session: SessionRecord, report: StateReport) -> ReportVerdict:
    """The bay reports no power for its starting session (or for none)."""
    if (reason := _starting_end(session, report)) is not None:
        # It ran while HA did not hear its acknowledgement: billed by its energy.
        return ReportVerdict(Verdict.METERED_END, reason=reason)
    if _rejected(report) and report.fresh:
        return ReportVerdict(Verdict.START_REJECTED, reason=report.reason or "rejected")
    return ReportVerdict(Verdict.NOTHING)


def _read_off(session: SessionRecord, report: StateReport, now: float) -> ReportVerdict:
    """The bay reports no power for its own session (or for none)."""
    if session.state is SessionState.STARTING:
        return _read_starting_off(session, report)
    if session.state is not SessionState.ACTIVE or session.until is None:
        return ReportVerdict(Verdict.NOTHING)
    if (reason := _metered_end(session, report)) is not None:
        return ReportVerdict(Verdict.METERED_END, reason=reason)
    if session.until - now <= DEADLINE_SLACK_S:
        return ReportVerdict(Verdict.RAN_OUT)
    if report.reason in PASSING_REASONS:
        # It resumes the session from its disk, and then this same "on" is a no-op; if its
        # disk lost the session, this powers the rest.
        return ReportVerdict(Verdict.AGENT_RESTARTED, command=on_command(session, now))
    # Off before the paid deadline without HA asking: an "off" from elsewhere, a plug switched
    # by hand, a top-up the bay never took.
    return ReportVerdict(Verdict.POWER_CUT)


def _metered_end(session: SessionRecord, report: StateReport) -> str | None:
    """The end of its own that a metered bay's ``OFF`` names, if it names one."""
    if report.reason in METERED_ENDS:
        return report.reason
    # The agent ended it already: its end, billed by the energy it drew (not a power cut); a
    # session sold by time, with the energy of a metered bay, gets its minutes by the option.
    counted = session.sells_energy or report.energy_wh is not None
    return (
        AGENT_ENDED if report.reason == REJECTED_ENDED and report.session_id and counted else None
    )


def _starting_end(session: SessionRecord, report: StateReport) -> str | None:
    """The end an ``OFF`` naming a starting kWh session gives it: it ran at the agent.

    Only an end the agent counted energy for (an ``OFF`` naming the session with its energy,
    or one of the meter's own ends); a refusal without energy is no end of a run.
    """
    if not session.sells_energy or report.session_id != session.session_id:
        return None
    if report.reason in (DEADLINE, TIME_CAP):
        return TIME_CAP
    if report.reason == REJECTED_ENDED and report.energy_wh is None:
        return None
    return _metered_end(session, report)


def _read_powered(
    ledger: Ledger, session: SessionRecord, report: StateReport, now: float
) -> ReportVerdict:
    """Power reported for the bay's own session: its acknowledgement, or a shorter deadline."""
    if (
        report.until is not None
        and session.until is not None
        and report.until > session.until + DEADLINE_SLACK_S
    ):
        return ReportVerdict(Verdict.OVERSTATED)
    if session.state is SessionState.STARTING:
        if report.until is not None and report.until <= now:
            return ReportVerdict(Verdict.STALE)
        return ReportVerdict(Verdict.ACKNOWLEDGED)
    if session.state is SessionState.ACTIVE and report.until is not None and _rejected(report):
        # Only a deadline the session had before its newest top-ups counts: a report of any
        # other earlier time (spoofed, or of time already served) is no refusal.
        until = before_top_ups(ledger, session, report.until, DEADLINE_SLACK_S)
        if until is not None:
            return ReportVerdict(Verdict.TOP_UP_REFUSED, until=until)
    return ReportVerdict(Verdict.NOTHING)
