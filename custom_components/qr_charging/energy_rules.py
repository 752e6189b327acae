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
the session started, each checked against what the meter's rated maximum power could draw
since the counter last changed (``most_wh``: max power x elapsed + the sensor's resolution):

* a rise within it counts; a rise above it is ``meter_invalid`` (a counter that jumps);
* any drop is a tentative reset (a plug's restart, its counter from 0): the new value counts
  as drawn since the reset, if it is within that bound, else ``meter_backwards``; the counter
  (and the count) before the drop are remembered;
* a glitch: after a drop, a reading back at or above the old counter that rises faster than
  the meter could count is no energy drawn; the count goes on from the old counter (the
  tentative count since the drop is dropped), its rise over the old counter checked against
  the bound since the last reading before the drop. A plausible rise past the old counter is
  a real reset counting up; the old counter is then forgotten.

An agent's reported energy (``plausible_wh``) is bounded the same way: at most the energy paid
plus ``OVERSHOOT_WH``, and at most the agent's maximum power over the session's time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .ledger import Ledger
from .metering import DEFAULT_MAX_POWER_W
from .payment_rules import refundable
from .records import SessionRecord, SessionState

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
# The coarsest step of the energy sensors counted: 0.01 kWh (many Zigbee and Tuya plugs).
RESOLUTION_WH = 10.0
# An agent stops at the energy paid for after its next read (every 2 s): at 7.4 kW, 4 Wh over.
OVERSHOOT_WH = 10.0
# An agent counts from its own start of a session, a little before HA hears it acknowledged.
START_SLACK_S = 30.0
# An ``on`` for a session the agent had ended already (after its restart, say); a session sold
# by the kWh then ends as ``agent_ended``: billed the energy the agent's answer carries, or at
# least the energy stored while it ran (``running_energy``), never 0.
REJECTED_ENDED = "rejected_ended"
AGENT_ENDED = "agent_ended"


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
    """A session's energy counted so far (Wh), the counter's last value (Wh) and when it read so.

    ``dropped``: after a drop not yet explained, the counter, the count and the time of the
    last reading before it (a return to that counter may be a glitch).
    """

    counted_wh: float
    last_wh: float
    at: float
    dropped: tuple[float, float, float] | None = None


class MeterBackwards(ValueError):
    """The counter dropped to more than it could have counted since a reset: the meter lies."""


class MeterImplausible(ValueError):
    """The counter rose by more than the meter's maximum power could draw: the meter lies."""


def most_wh(max_power_w: float, seconds: float, resolution_wh: float = RESOLUTION_WH) -> float:
    """The most energy (Wh) a meter can count in ``seconds`` at ``max_power_w``."""
    return max_power_w * max(seconds, 0.0) / 3600 + resolution_wh


def count(
    state: EnergyCount | None,
    reading_wh: float,
    at: float,
    max_power_w: float = DEFAULT_MAX_POWER_W,
    resolution_wh: float = RESOLUTION_WH,
) -> EnergyCount:
    """Add a counter reading (Wh, read at ``at``) to a session's count; the first only starts it.

    Raises ``MeterBackwards`` for a drop to more than a reset could have counted,
    ``MeterImplausible`` for a rise the maximum power cannot explain (no glitch), and
    ``ValueError`` for a reading that is not a finite, non-negative number (``meter_invalid``).
    """
    if not math.isfinite(reading_wh) or reading_wh < 0:
        raise ValueError(f"invalid meter reading {reading_wh!r}")
    if state is None:
        return EnergyCount(0.0, reading_wh, at)
    most = most_wh(max_power_w, at - state.at, resolution_wh)
    if reading_wh < state.last_wh:
        # A reset (a plug's restart): what it counted since counts, if it could have.
        if reading_wh > most:
            raise MeterBackwards(f"meter went from {state.last_wh} Wh to {reading_wh} Wh")
        dropped = state.dropped or (state.last_wh, state.counted_wh, state.at)
        return EnergyCount(state.counted_wh + reading_wh, reading_wh, at, dropped)
    rise = reading_wh - state.last_wh
    if rise <= most:
        keep = state.dropped if state.dropped and reading_wh < state.dropped[0] else None
        return EnergyCount(state.counted_wh + rise, reading_wh, at, keep)
    if state.dropped is not None and reading_wh >= state.dropped[0]:
        # A glitch (a blip to 0, say): the counter is back; count on from the old one.
        old_wh, counted_wh, old_at = state.dropped
        if reading_wh - old_wh <= most_wh(max_power_w, at - old_at, resolution_wh):
            return EnergyCount(counted_wh + reading_wh - old_wh, reading_wh, at)
    raise MeterImplausible(
        f"meter rose from {state.last_wh} Wh to {reading_wh} Wh in {at - state.at:.0f} s"
    )


@dataclass(frozen=True, slots=True)
class ReportedMeter:
    """A meter whose counts reach HA only as reports (an agent's): each is checked.

    ``max_power_w``: the most it can draw, as the agent's config names it (None: not named).
    """

    max_power_w: float | None = None


def implausible(
    session: SessionRecord | None,
    session_id: str | None,
    energy_wh: float | None,
    now: float,
    meter: ReportedMeter | None,
) -> float | None:
    """What a report of a session's energy (Wh) may bill when it is implausible; else None.

    Only a reported ``meter``'s (an agent's) report of the active session is checked.
    """
    if (
        meter is None
        or session is None
        or session.state is not SessionState.ACTIVE
        or session_id != session.session_id
        or energy_wh is None
        or session.started_at is None
    ):
        return None
    elapsed = now - session.started_at
    return plausible_wh(energy_wh, session.energy_paid_wh, elapsed, meter.max_power_w)


def plausible_wh(
    reported_wh: float, paid_wh: int, elapsed_s: float, max_power_w: float | None
) -> float | None:
    """What an agent's report of a session's energy (Wh) may be billed at; None: it is fine.

    A session sold by the kWh draws at most its energy paid for (and ``OVERSHOOT_WH`` more);
    any session at most its meter's maximum power (if the agent names one) since it started.
    Above either, the report is a meter fault, billed at the most that is plausible.
    """
    bounds = [math.inf]
    if paid_wh > 0:
        bounds.append(paid_wh + OVERSHOOT_WH)
    if max_power_w is not None:
        bounds.append(most_wh(max_power_w, elapsed_s + START_SLACK_S))
    bound = min(bounds)
    return bound if reported_wh > bound else None


# A running session's energy is stored when it grew this much, or grew at all after this long,
# since it was last stored (``keep_due``): at most one change of the books per 10 Wh or 30 s.
KEEP_EVERY_WH = 10.0
KEEP_EVERY_S = 30.0


def keep_due(kept_wh: float, kept_at: float, counted_wh: float, now: float) -> bool:
    """Whether a running session's energy counted so far is due to be stored."""
    grown = counted_wh - kept_wh
    return grown >= KEEP_EVERY_WH or (grown > 0 and now - kept_at >= KEEP_EVERY_S)


def resumed_count(session: SessionRecord) -> EnergyCount | None:
    """A switch bay session's count as last stored, to go on from after a restart.

    When that reading was taken is not stored: the next rise is checked against the maximum
    power since the session started (what was drawn while HA was down counts).
    """
    if session.meter_wh is None:
        return None
    return EnergyCount(session.energy_used_wh, session.meter_wh, session.started_at or 0.0)


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
