"""The rules of a metered session: count the energy, and say when and why it ends.

Pure functions over immutable values with the time passed in (the agent's monotonic clock),
like :mod:`pi_mqtt_relay.sessions`:

* a session's energy is the sum of the meter counter's plausible increases since it started:
  no counted rise may exceed ``max_power_w`` over the time since the last valid reading (plus
  :data:`READ_LAG_S` and one :data:`RESOLUTION_WH`); a larger rise is ``meter_invalid``;
* a drop is a counter wrap when the counter was near a wrap point (:data:`WRAPS_WH`) and the
  rise through it is plausible; else a tentative reset (counted from 0) when the new value is
  plausible; else ``meter_backwards``. The rise of a wrap or reset is held back (not in the
  count, so never reported nor cut on) until the next valid reading confirms it (at or above
  the new value, below the old counter); a lower one drops it;
* the count before a drop is kept for the :data:`GLITCH_READINGS` valid readings after it: one
  of them back at or above the old counter shows the drop was a glitch (one or two bad
  frames), and the session counts on from the old counter (the count never goes down). Then
  the drop is forgotten: a real reset's new counter passing the old one later is an ordinary
  rise;
* the first reading after a resume from a stored count (``unseen_s`` > 0) that is lower than
  the stored counter is ``meter_backwards`` (a meter swapped or reset while the agent was
  down), unless it is a plausible wrap;
* a reading is checked on arrival, so the cut at the paid energy is late by at most the
  energy of one poll;
* a meter that lies (not a finite non-negative number, power above the bay's rating, a
  counter going backwards) or stays silent ends the session, and the reading that showed the
  fault is not counted: no unmeasured energy is ever billed;
* a timed session at a metered bay is counted the same way (the owner's energy sold) but its
  time is kept by the clock: only the vehicle-full rule ends it, never a fault of its meter;
* low power is only ever what valid readings show: a poll without one (or with a faulty one)
  starts the vehicle-full settle time again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .commands import FullRule
from .meters import Reading
from .sessions import Reason

# While a metered session runs, its state is published at least this often.
REPORT_EVERY_S = 10.0
# A meter's counter moves in steps of this (the PZEM-004T's 1 Wh): one step is always plausible.
RESOLUTION_WH = 1.0
# How much older a reading's energy may be than the poll that fetched it (a meter updates its
# registers about once a second): added to the elapsed time of the plausibility cap.
READ_LAG_S = 2.0
# Where counters wrap to 0: the PZEM-004T's 9999.99 kWh and any 32-bit counter of Wh.
WRAPS_WH = (9_999_990.0, float(2**32))
# The PZEM's 9999.99 kWh is shown to 10 Wh: its counter may read up to this above the wrap.
WRAP_SLACK_WH = 10.0
# A drop is remembered for this many valid readings after it (a glitch is one or two bad
# frames); a return to the old counter later is an ordinary rise, judged by the cap.
GLITCH_READINGS = 2


@dataclass(frozen=True)
class MeterLimits:
    """What a reading is checked against."""

    max_power_w: float
    silent_s: float

    def plausible_wh(self, seconds: float) -> float:
        """The most energy a bay can draw in ``seconds`` (the cap on a counted rise)."""
        return self.max_power_w * (max(0.0, seconds) + READ_LAG_S) / 3600 + RESOLUTION_WH


@dataclass(frozen=True)
class Count:
    """A metered session's count between readings.

    ``counter_wh`` is the meter's counter at the last valid reading (None before the first);
    ``last_valid`` the monotonic time of that reading (or of the start); ``low_since`` when
    the power first stayed under the full rule's threshold after the grace time; ``dropped``
    the counts just before the recent drops, oldest first (the glitch rule's memory);
    ``pending_wh`` the new value of a tentative reset not confirmed yet (not in
    ``energy_wh``); ``resumed`` that no reading was seen since a resume from a stored count.
    """

    energy_wh: float
    counter_wh: float | None
    started: float
    last_valid: float
    low_since: float | None = None
    dropped: tuple[Dropped, ...] = ()
    pending_wh: float = 0.0
    resumed: bool = False


@dataclass(frozen=True)
class Dropped:
    """The count before a drop; ``left``: the valid readings it is still remembered for."""

    energy_wh: float
    counter_wh: float
    at: float
    left: int = GLITCH_READINGS


def start_count(
    mono: float, counter_wh: float | None, energy_wh: float = 0.0, *, unseen_s: float = 0.0
) -> Count:
    """A session starting (or resuming with ``energy_wh`` counted) at ``mono``.

    ``counter_wh`` is the counter before the relay went on: the relay was off since, so the
    first reading's increase belongs to the session. ``unseen_s`` is how long the bay may have
    drawn since ``counter_wh`` was read (a stored count: the agent was down): the first rise
    is judged plausible over that time too, and a drop at it is ``meter_backwards``.
    """
    return Count(
        energy_wh=energy_wh,
        counter_wh=counter_wh,
        started=mono,
        last_valid=mono - unseen_s,
        resumed=unseen_s > 0,
    )


@dataclass(frozen=True)
class Observation:
    """The count after one poll, and the end it calls for (None: carry on)."""

    count: Count
    end: Reason | None = None
    problem: str | None = None


def valid(reading: Reading) -> bool:
    """A reading is a pair of finite non-negative numbers."""
    return all(math.isfinite(v) and v >= 0 for v in (reading.power_w, reading.energy_wh))


def _implausible(count: Count, rise: float, since: float, mono: float) -> Observation:
    problem = f"counter rose {rise:g} Wh in {mono - since:.0f} s: more than max_power_w can draw"
    return Observation(count, Reason.METER_INVALID, problem)


def _glitch_undone(
    count: Count, counter: float, mono: float, limits: MeterLimits
) -> Count | Observation | None:
    """The count when ``counter`` is back at the counter before a drop (None: it is not).

    The drop was then a glitch: count from the old counter (the oldest such drop, as what was
    counted after it came from false values), never below what was counted already.
    """
    for index, drop in enumerate(count.dropped):
        if counter >= drop.counter_wh:
            rise = counter - drop.counter_wh
            if rise > limits.plausible_wh(mono - drop.at):
                return _implausible(count, rise, drop.at, mono)
            energy = max(count.energy_wh, drop.energy_wh + rise)
            return replace(count, energy_wh=energy, dropped=count.dropped[:index], pending_wh=0.0)
    return None


def _aged(dropped: tuple[Dropped, ...]) -> tuple[Dropped, ...]:
    """The drops still remembered after one more valid reading."""
    return tuple(replace(d, left=d.left - 1) for d in dropped if d.left > 1)


def _counted(count: Count, counter: float, mono: float, limits: MeterLimits) -> Count | Observation:
    """The count with the new counter value (not yet stored in it), or the fault it shows."""
    old = count.counter_wh
    if old is None:
        return count
    undone = _glitch_undone(count, counter, mono, limits)
    if undone is not None:
        return undone
    plausible = limits.plausible_wh(mono - count.last_valid)
    if counter >= old:
        if counter - old > plausible:
            return _implausible(count, counter - old, count.last_valid, mono)
        # A tentative reset's value is confirmed by this reading at or above it.
        energy = count.energy_wh + count.pending_wh + (counter - old)
        return replace(count, energy_wh=energy, pending_wh=0.0, dropped=_aged(count.dropped))
    # A drop: through a wrap point when the counter was near one, else a reset or restart of
    # the meter (counted from 0; not after a resume: then the meter was swapped or reset
    # unseen). Either rise is held back until the next reading confirms it, and the drop is
    # remembered: a return to the old counter shows it was a glitch.
    wraps = [
        max(0.0, w - old) + counter for w in WRAPS_WH if w - plausible <= old <= w + WRAP_SLACK_WH
    ]
    rise = min([r for r in wraps if r <= plausible] or [math.inf if count.resumed else counter])
    if rise <= plausible:
        dropped = (*_aged(count.dropped), Dropped(count.energy_wh, old, count.last_valid))
        return replace(count, pending_wh=rise, dropped=dropped)
    problem = f"counter went back from {old:g} to {counter:g} Wh"
    return Observation(count, Reason.METER_BACKWARDS, problem)


def _full(count: Count, power_w: float, mono: float, full: FullRule | None) -> Count:
    """Track how long the power has stayed low after the grace time."""
    if full is None or mono - count.started < full.grace_s or power_w >= full.below_w:
        return replace(count, low_since=None)
    return count if count.low_since is not None else replace(count, low_since=mono)


def observe(  # noqa: PLR0911 - one return per rule, in the order they apply
    count: Count,
    reading: Reading | None,
    mono: float,
    *,
    paid_wh: float,
    full: FullRule | None,
    limits: MeterLimits,
) -> Observation:
    """Apply one poll's outcome (``reading`` None: the meter did not answer) to a session."""
    if reading is None:
        # No reading is not low power: the settle time starts again at the next one.
        count = replace(count, low_since=None)
        if mono - count.last_valid >= limits.silent_s:
            silent = mono - count.last_valid
            return Observation(count, Reason.METER_SILENT, f"no valid reading for {silent:.0f} s")
        return Observation(count)
    if not valid(reading):
        return Observation(count, Reason.METER_INVALID, f"invalid reading {reading}")
    if reading.power_w > limits.max_power_w:
        problem = f"{reading.power_w:g} W is above max_power_w {limits.max_power_w:g}"
        return Observation(count, Reason.METER_OVERPOWER, problem)
    moved = _counted(count, reading.energy_wh, mono, limits)
    if isinstance(moved, Observation):
        return moved
    counted = _full(
        replace(moved, counter_wh=reading.energy_wh, last_valid=mono, resumed=False),
        reading.power_w,
        mono,
        full,
    )
    if counted.energy_wh >= paid_wh:
        return Observation(counted, Reason.ENERGY_REACHED)
    low = counted.low_since
    if full is not None and low is not None and mono - low >= full.settle_s:
        return Observation(counted, Reason.VEHICLE_FULL)
    return Observation(counted)


def observe_timed(
    count: Count,
    reading: Reading | None,
    mono: float,
    *,
    full: FullRule | None,
    limits: MeterLimits,
) -> Observation:
    """Apply one poll to a timed session at a metered bay: only ``vehicle_full`` ends it.

    Its deadline is the clock's, so a meter fault is reported (``problem``) but ends nothing:
    the faulty reading is not counted, the settle time starts again, and a counter that went
    backwards is counted on from its new value.
    """
    outcome = observe(count, reading, mono, paid_wh=math.inf, full=full, limits=limits)
    if outcome.end is None or outcome.end is Reason.VEHICLE_FULL:
        return outcome
    counter = count.counter_wh
    if outcome.end is Reason.METER_BACKWARDS and reading is not None:
        counter = reading.energy_wh
    kept = replace(count, counter_wh=counter, low_since=None, resumed=False)
    return Observation(kept, problem=outcome.problem)


@dataclass(frozen=True)
class Report:
    """What the last state message said of a metered bay, and when."""

    energy_wh: float | None
    power_w: float | None
    at: float


def report_due(
    last: Report | None, now: Report, *, step_wh: float, step_w: float, running: bool
) -> bool:
    """Whether a state message is due: a step of energy or power, or 10 s while running."""
    if last is None:
        return True
    if running and now.at - last.at >= REPORT_EVERY_S:
        return True
    return _moved(last.energy_wh, now.energy_wh, step_wh) or _moved(
        last.power_w, now.power_w, step_w
    )


def _moved(before: float | None, after: float | None, step: float) -> bool:
    if before is None or after is None:
        return before is not after
    return abs(after - before) >= step
