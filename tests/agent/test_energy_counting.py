"""Review #24: the agent's count against a meter that lies, glitches, resets or wraps.

Every counted rise must be one the bay could draw (``max_power_w`` over the time since the
last valid reading); a drop is a wrap, a tentative reset or a fault, and a reading back at
the old counter undoes a drop that was only a glitch.
"""

from __future__ import annotations

from pi_mqtt_relay.energy_rules import Count, MeterLimits, observe, start_count
from pi_mqtt_relay.meters import Reading
from pi_mqtt_relay.sessions import Reason

LIMITS = MeterLimits(max_power_w=3680.0, silent_s=600.0)


def _see(count: Count, power_w: float, counter_wh: float, at: float) -> tuple[Count, Reason | None]:
    seen = observe(
        count, Reading(power_w, counter_wh), at, paid_wh=2000.0, full=None, limits=LIMITS
    )
    return seen.count, seen.end


def test_an_impossible_counter_jump_is_a_meter_fault_not_energy_reached() -> None:
    # 2 s after the start the counter says 1,000,000 Wh more: at most 3680 W * 2 s = 2 Wh
    # can have been drawn. It used to be counted (energy_reached: the customer's 2000 Wh).
    count, end = _see(start_count(0.0, 1000.0), 500.0, 1_001_000.0, 2.0)
    assert end is Reason.METER_INVALID
    assert count.energy_wh == 0.0


def test_the_32_bit_counter_wrapping_keeps_counting() -> None:
    # 2**32 - 3 -> 20 after 24 s at 3.6 kW is 23 Wh through the wrap, not a meter running
    # backwards that cuts the customer off.
    count, end = _see(start_count(0.0, float(2**32 - 3)), 3600.0, 20.0, 24.0)
    assert (end, count.energy_wh) == (None, 23.0)


def test_the_pzem_counter_rolling_over_at_9999_99_kwh_keeps_counting() -> None:
    count, end = _see(start_count(0.0, 9_999_985.0), 3600.0, 3.0, 20.0)
    assert (end, count.energy_wh) == (None, 8.0)
    # Read a little above 9999.99 kWh before the rollover: never more than drawn.
    count, end = _see(start_count(0.0, 9_999_995.0), 3600.0, 3.0, 20.0)
    assert (end, count.energy_wh) == (None, 3.0)


def test_energy_after_a_counter_reset_is_counted() -> None:
    # 500 Wh in 2000 s at 900 W, then the meter restarts and already reads 8 Wh: those 8 Wh
    # were drawn in the session (the agent used to drop them: 500, HA's switch bays 508).
    count, _ = _see(start_count(0.0, 1000.0), 900.0, 1500.0, 2000.0)
    count, end = _see(count, 900.0, 8.0, 2040.0)
    assert (end, count.energy_wh) == (None, 508.0)


def test_a_single_zero_reading_then_the_true_counter_is_not_billed_as_energy() -> None:
    # One frame reading 0 Wh, then the real counter again: 1000 -> 0 -> 1001 is 1 Wh drawn,
    # not 1001 (it used to count the whole counter as drawn after a "reset").
    count, end = _see(start_count(0.0, 1000.0), 500.0, 0.0, 2.0)
    assert end is None
    count, end = _see(count, 500.0, 1001.0, 4.0)
    assert (end, count.energy_wh) == (None, 1.0)


def test_a_restarting_plug_first_reporting_more_than_10_wh_is_a_reset() -> None:
    # The meter restarts its counter and first reads 17 Wh (30 s at 2 kW): a reset, not
    # meter_backwards (a drop used to be a reset only down to 10 Wh).
    count, _ = _see(start_count(0.0, 5000.0), 2000.0, 5100.0, 180.0)
    count, end = _see(count, 2000.0, 17.0, 210.0)
    assert (end, count.energy_wh) == (None, 117.0)
    count, end = _see(count, 2000.0, 28.0, 230.0)
    assert (end, count.energy_wh) == (None, 128.0)


def test_a_drop_to_more_than_could_be_drawn_is_meter_backwards() -> None:
    count, _ = _see(start_count(0.0, 5000.0), 2000.0, 5100.0, 180.0)
    after, end = _see(count, 2000.0, 40.0, 182.0)
    assert (end, after) == (Reason.METER_BACKWARDS, count)


def test_a_glitch_return_above_what_could_be_drawn_is_meter_invalid() -> None:
    count, _ = _see(start_count(0.0, 1000.0), 500.0, 0.0, 2.0)
    after, end = _see(count, 500.0, 2000.0, 4.0)
    assert (end, after) == (Reason.METER_INVALID, count)
