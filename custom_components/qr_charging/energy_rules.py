"""Metered bays (issue #24): energy sold, counted, and what its end refunds.

Plain Python, no Home Assistant imports. A per-kWh payment buys ``ceil(paise * 1000 / price)``
Wh (``catalog.energy_wh_for``: rounded up, the customer's favour); a top-up adds its energy to
the session. At the end, the energy not used is refunded per payment, newest first, each at
its own price (its paise for its Wh), rounded down to the paisa and within what is left to
refund of it, as ``session_rules.cut_unserved`` does for time. Only whole Wh measured are
billed (the fraction is the customer's), and never more than was paid for. So each payment
is charged ``ceil(amount * used / bought)``, at most the price of the Wh it served rounded up
to the paisa.

Counting (``count``): a session's energy is the sum of the meter counter's increases since
the session started; a counter that drops to at most ``RESET_WH`` was reset (a plug's restart)
and counting goes on from the new value; any other drop is ``meter_backwards``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .ledger import Ledger
from .payment_rules import refundable
from .records import SessionRecord

# Why a metered session ends (the agent's OFF reasons, and HA's own for switch bays).
ENERGY_REACHED = "energy_reached"
VEHICLE_FULL = "vehicle_full"
TIME_CAP = "time_cap"  # a metered session's deadline
METER_SILENT = "meter_silent"
METER_INVALID = "meter_invalid"
METER_BACKWARDS = "meter_backwards"
METER_OVERPOWER = "meter_overpower"
# A meter that went silent or lied: off first, only measured energy billed, a repair.
METER_FAULTS = frozenset({METER_SILENT, METER_INVALID, METER_BACKWARDS, METER_OVERPOWER})
# The bay's meter ended it on its own: an OFF with one of these is the session's end.
METERED_ENDS = frozenset({ENERGY_REACHED, VEHICLE_FULL, *METER_FAULTS})
# An ``on`` with energy to a bay whose agent has no meter.
REJECTED_NO_METER = "rejected_no_meter"
# An ``on`` for a session the agent had ended already (after its restart, say); a session sold
# by the kWh then ends as ``agent_ended``: billed the energy the agent's answer carries, or at
# least the energy stored while it ran (``running_energy``), never 0.
REJECTED_ENDED = "rejected_ended"
AGENT_ENDED = "agent_ended"
# A counter that drops to at most this was reset (restarted), not run backwards.
RESET_WH = 10.0


def billed_wh(session: SessionRecord) -> int:
    """The Wh a session is charged for: whole Wh measured, never more than paid for."""
    return min(math.floor(session.energy_used_wh), session.energy_paid_wh)


def unused_energy_parts(ledger: Ledger, session: SessionRecord) -> list[tuple[str, int]]:
    """The refunds of the energy a session did not use, per payment (newest first)."""
    parts: list[tuple[str, int]] = []
    left = session.energy_paid_wh - billed_wh(session)
    for payment_id in reversed(session.payment_ids):
        payment = ledger.payments.get(payment_id)
        if left <= 0 or payment is None or payment.energy_wh <= 0:
            continue
        portion = min(left, payment.energy_wh)
        left -= portion
        paise = min(payment.amount * portion // payment.energy_wh, refundable(ledger, payment_id))
        if paise > 0:
            parts.append((payment_id, paise))
    session.paid_paise -= sum(paise for _, paise in parts)
    return parts


def add_energy(running: SessionRecord, new: SessionRecord) -> None:
    """A top-up of a metered session: its energy adds to what was paid for."""
    running.energy_paid_wh += new.energy_paid_wh


@dataclass(frozen=True, slots=True)
class EnergyCount:
    """A session's energy counted so far (Wh) and the meter counter's last value (Wh)."""

    counted_wh: float
    last_wh: float


class MeterBackwards(ValueError):
    """The counter went backwards other than by a reset: the meter lies."""


def count(state: EnergyCount | None, reading_wh: float, reset_wh: float = RESET_WH) -> EnergyCount:
    """Add a counter reading (Wh) to a session's count; the first reading only starts it.

    Raises ``MeterBackwards`` for a drop that is no reset, and ``ValueError`` for a reading
    that is not a finite, non-negative number (``meter_invalid``).
    """
    if not math.isfinite(reading_wh) or reading_wh < 0:
        raise ValueError(f"invalid meter reading {reading_wh!r}")
    if state is None:
        return EnergyCount(0.0, reading_wh)
    if reading_wh >= state.last_wh:
        return EnergyCount(state.counted_wh + reading_wh - state.last_wh, reading_wh)
    if reading_wh <= reset_wh:
        # Reset or restarted: what it counted since counts too.
        return EnergyCount(state.counted_wh + reading_wh, reading_wh)
    raise MeterBackwards(f"meter went from {state.last_wh} Wh to {reading_wh} Wh")


# A running session's energy is stored when it grew this much, or grew at all after this long,
# since it was last stored (``keep_due``): at most one change of the books per 10 Wh or 30 s.
KEEP_EVERY_WH = 10.0
KEEP_EVERY_S = 30.0


def keep_due(kept_wh: float, kept_at: float, counted_wh: float, now: float) -> bool:
    """Whether a running session's energy counted so far is due to be stored."""
    grown = counted_wh - kept_wh
    return grown >= KEEP_EVERY_WH or (grown > 0 and now - kept_at >= KEEP_EVERY_S)


def resumed_count(session: SessionRecord) -> EnergyCount | None:
    """A switch bay session's count as last stored, to go on from after a restart."""
    if session.meter_wh is None:
        return None
    return EnergyCount(session.energy_used_wh, session.meter_wh)


# A metered bay whose meter has said nothing for this long while on is ``meter_silent``.
SILENT_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class FullRule:
    """Vehicle full: power below ``below_w`` for ``settle_s``, counted after ``grace_s``."""

    below_w: float
    settle_s: float
    grace_s: float


def below_since(rule: FullRule, power_w: float, since: float | None, now: float) -> float | None:
    """When the power last went (and stayed) below the rule's threshold; None: it is above."""
    if power_w >= rule.below_w:
        return None
    return now if since is None else since


def vehicle_full(rule: FullRule, started_at: float, since: float | None, now: float) -> bool:
    """Whether the vehicle is full: below the threshold for the settle time, after the grace.

    The settle time counts from the end of the grace at the earliest, so a charger that is
    slow to draw is not cut.
    """
    if since is None or now - started_at < rule.grace_s:
        return False
    return now - max(since, started_at + rule.grace_s) >= rule.settle_s


def session_end(count_wh: float, paid_wh: int | None) -> str | None:
    """``energy_reached`` once the energy counted reaches what was paid for (if sold so)."""
    return ENERGY_REACHED if paid_wh is not None and count_wh >= paid_wh else None


def silent(last_report_at: float | None, started_at: float, now: float) -> bool:
    """Whether the meter said nothing for ``SILENT_AFTER_S`` while on (since the start, at most).

    A meter that never reported counts from the session's start.
    """
    last = started_at if last_report_at is None else max(last_report_at, started_at)
    return now - last >= SILENT_AFTER_S
