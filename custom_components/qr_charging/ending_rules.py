"""One way a session ends: an ``Ending`` and the rule that applies it in a change.

Plain Python, no Home Assistant imports; time is passed in. ``endings.Endings`` applies an
ending in one change of the books and carries out its tail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from .energy_rules import METER_FAULTS, TIME_CAP, unused_energy_parts
from .ledger import Ledger
from .records import RUNNING_STATES, SessionRecord, SessionState
from .report_rules import StateReport
from .session_rules import (
    ACTIVE_ONLY,
    DEADLINE,
    NOT_POWERED,
    STARTING_ONLY,
    deadline_ahead,
    fail,
    finish,
    refundable_parts,
    unserved_parts,
)


class RefundMode(StrEnum):
    """How much of a session an ending gives back.

    ``PRORATA``: the unserved share, of time or, for a session sold by the kWh, of energy.
    """

    NONE = "none"
    PRORATA = "prorata"
    FULL = "full"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ending:
    """How a session ends: it ran (ended) or never powered its bay (failed).

    ``states``: what it ends from (read again in the change: an acknowledgement may have come
    meanwhile); ``refund``: none, the unserved share or all that is left; ``send_off``: the bay
    is told ``off`` (an end before the change, so a failing disk never keeps it on; a failure
    once stored, as its bay may still acknowledge meanwhile); ``by_owner``: asked for by the
    owner, who is told when it cannot be stored (no retry, no repair, no fault);
    ``announced``: its event fires; ``refund_reason``: the refunds' reason (else ``reason``);
    ``energy_wh``: what the meter counted (see ``measured``).
    """

    reason: str
    failed: bool
    states: frozenset[SessionState]
    refund: RefundMode = RefundMode.NONE
    send_off: bool = False
    by_owner: bool = False
    announced: bool = True
    refund_reason: str | None = None
    # A metered session's energy counted by its meter up to the end (Wh), stored with it.
    energy_wh: float | None = None
    # ``energy_wh`` is the agent's own final figure (its live OFF naming the session): it
    # stands even below the running figure stored, which one absurd report may have set.
    final: bool = False

    @classmethod
    def end(
        cls,
        reason: str,
        *,
        send_off: bool,
        refund: RefundMode = RefundMode.NONE,
        by_owner: bool = False,
        announced: bool = True,
    ) -> Ending:
        """A session that ran ends."""
        return cls(
            reason=reason,
            failed=False,
            states=ACTIVE_ONLY,
            send_off=send_off,
            refund=refund,
            by_owner=by_owner,
            announced=announced,
        )

    @classmethod
    def fail(
        cls,
        reason: str,
        *,
        auto_refund: bool,
        states: frozenset[SessionState] = RUNNING_STATES,
        send_off: bool = True,
    ) -> Ending:
        """A session that cannot run fails; everything is refunded with automatic refund on."""
        refund = RefundMode.FULL if auto_refund else RefundMode.NONE
        return cls(reason=reason, failed=True, states=states, refund=refund, send_off=send_off)

    @classmethod
    def stop(cls, mode: RefundMode, *, powered: bool) -> Ending:
        """The owner stops a session: one that powered its bay ends, refunded as asked.

        One not powered yet fails: nothing was served, so any refund asked for is all of it.
        """
        if powered:
            return cls.end("stopped", send_off=True, refund=mode, by_owner=True)
        return cls(
            reason="stopped",
            failed=True,
            states=NOT_POWERED,
            refund=RefundMode.NONE if mode is RefundMode.NONE else RefundMode.FULL,
            send_off=True,
            by_owner=True,
            refund_reason=f"stopped_{mode.value}",
        )

    @classmethod
    def deadline(cls, session: SessionRecord, *, send_off: bool) -> Ending:
        """Its deadline passed: a timed session ended; a metered one hit its time cap.

        The energy a metered session did not use by then is refunded.
        """
        if session.sells_energy:
            return cls.end(TIME_CAP, send_off=send_off, refund=RefundMode.PRORATA)
        return cls.end(DEADLINE, send_off=send_off)

    @classmethod
    def metered(cls, reason: str, session: SessionRecord, *, prorata: bool) -> Ending:
        """A metered bay ended a session: energy reached, vehicle full, or a meter fault.

        ``off`` first (a faulty meter must not keep the bay on). A session sold by the kWh
        gets back the energy it did not use (after a fault, all but what was measured); one
        sold by time the unused minutes, after a fault always, else with the bay's pro-rata
        option (``prorata``). A kWh session HA still had as starting ends so too: it ran.
        """
        refunded = session.sells_energy or prorata or reason in METER_FAULTS
        refund = RefundMode.PRORATA if refunded else RefundMode.NONE
        ending = cls.end(reason, send_off=True, refund=refund)
        return replace(ending, states=ACTIVE_ONLY | STARTING_ONLY)

    @classmethod
    def reported(
        cls,
        reason: str,
        session: SessionRecord,
        report: StateReport,
        *,
        prorata: bool,
        bound: float | None = None,
    ) -> Ending:
        """``metered`` for the end a bay's ``OFF`` names, with the energy it gives.

        A live ``OFF`` naming the session is the agent's final figure; a retained one may be
        older than the figure stored while it ran (the larger stands then). A ``bound`` (an
        implausible figure's, ``energy_rules.implausible``) is what is billed, whatever else.
        """
        ending = cls.metered(reason, session, prorata=prorata)
        if bound is not None:
            return ending.measured(bound, final=True)
        if report.session_id != session.session_id:
            return ending
        return ending.measured(report.energy_wh, final=report.fresh)

    def measured(self, energy_wh: float | None, *, final: bool = False) -> Ending:
        """The same ending with the energy the bay's meter counted for the session (if any).

        An energy set already stays (the agent's final figure, set by the report's verdict; a
        report's implausible figure, bounded before).
        """
        if energy_wh is None or self.energy_wh is not None:
            return self
        return replace(self, energy_wh=energy_wh, final=final)

    @property
    def repaired(self) -> bool:
        """Whether the bay's ``start_failed`` repair may be raised (and its fault shown)."""
        return self.failed and not self.by_owner


def apply_ending(
    ledger: Ledger, session: SessionRecord, ending: Ending, now: float
) -> list[tuple[str, int]] | None:
    """In a change: end or fail the session; return its refunds per payment.

    None when the ending no longer applies: the session left ``ending.states`` meanwhile, or a
    top-up moved the deadline it was to end at (the top-up's own ``on`` follows).
    """
    if session.state not in ending.states:
        return None
    if ending.reason in (DEADLINE, TIME_CAP) and deadline_ahead(session, now):
        return None
    if ending.energy_wh is not None and ending.final:
        session.energy_used_wh = ending.energy_wh
    elif ending.energy_wh is not None:
        # Only ever more: a retained report of less energy is an older one.
        session.energy_used_wh = max(session.energy_used_wh, ending.energy_wh)
    # A kWh session that failed after drawing energy (no acknowledgement heard, its energy
    # reported) is refunded what it did not use, not all of it.
    drew = ending.failed and ending.refund is RefundMode.FULL and session.energy_used_wh > 0
    if session.sells_energy and (ending.refund is RefundMode.PRORATA or drew):
        parts = unused_energy_parts(ledger, session)
    elif ending.refund is RefundMode.PRORATA:
        parts = unserved_parts(ledger, session, now)
    elif ending.refund is RefundMode.FULL:
        parts = refundable_parts(ledger, session)
    else:
        parts = []
    (fail if ending.failed else finish)(session, now, ending.reason)
    return parts
