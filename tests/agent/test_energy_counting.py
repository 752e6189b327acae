"""Review #24: the agent's count against a meter that lies, glitches, resets or wraps.

Every counted rise must be one the bay could draw (``max_power_w`` over the time since the
last valid reading); a drop is a wrap, a tentative reset (held back until the next reading
confirms it) or a fault, and a reading back at the old counter within two readings undoes a
drop that was only a glitch (second review: never lowering the count, and never after that).
"""

from __future__ import annotations

from pi_mqtt_relay.energy_rules import Count, MeterLimits, observe, start_count
from pi_mqtt_relay.meters import Reading
from pi_mqtt_relay.sessions import Reason

LIMITS = MeterLimits(max_power_w=3680.0, silent_s=600.0)


def _see(
    count: Count, power_w: float, counter_wh: float, at: float, paid_wh: float = 2000.0
) -> tuple[Count, Reason | None]:
    seen = observe(
        count, Reading(power_w, counter_wh), at, paid_wh=paid_wh, full=None, limits=LIMITS
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
    # Held back until the next reading confirms it (a drop may be a glitch frame).
    assert (end, count.energy_wh, count.pending_wh) == (None, 0.0, 23.0)
    count, end = _see(count, 3600.0, 21.0, 26.0)
    assert (end, count.energy_wh) == (None, 24.0)


def test_the_pzem_counter_rolling_over_at_9999_99_kwh_keeps_counting() -> None:
    count, _ = _see(start_count(0.0, 9_999_985.0), 3600.0, 3.0, 20.0)
    count, end = _see(count, 3600.0, 3.0, 22.0)
    assert (end, count.energy_wh) == (None, 8.0)
    # Read a little above 9999.99 kWh before the rollover: never more than drawn.
    count, _ = _see(start_count(0.0, 9_999_995.0), 3600.0, 3.0, 20.0)
    count, end = _see(count, 3600.0, 3.0, 22.0)
    assert (end, count.energy_wh) == (None, 3.0)


def test_energy_after_a_counter_reset_is_counted() -> None:
    # 500 Wh in 2000 s at 900 W, then the meter restarts and already reads 8 Wh: those 8 Wh
    # were drawn in the session (the agent used to drop them: 500, HA's switch bays 508).
    count, _ = _see(start_count(0.0, 1000.0), 900.0, 1500.0, 2000.0)
    count, end = _see(count, 900.0, 8.0, 2040.0)
    assert (end, count.energy_wh) == (None, 500.0)  # held back until confirmed
    count, end = _see(count, 900.0, 9.0, 2044.0)
    assert (end, count.energy_wh) == (None, 509.0)


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
    assert (end, count.energy_wh, count.pending_wh) == (None, 100.0, 17.0)
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


def test_a_real_reset_is_not_undone_when_the_new_counter_passes_the_old_one() -> None:
    # The meter's counter is reset (350 -> 0) 60 s into the session; the car then draws
    # 3600 W for 6 minutes: 360 Wh. When the new counter passes 350 the rule takes the
    # reset for a glitch "undone" and forgets the 350 Wh drawn since: power given free.
    count, _ = _see(start_count(0.0, 300.0), 3000.0, 350.0, 60.0)
    count, end = _see(count, 3000.0, 0.0, 62.0)
    assert (end, count.energy_wh) == (None, 50.0)
    at, counter = 62.0, 0.0
    for _ in range(12):  # 30 Wh every 30 s (3600 W)
        at, counter = at + 30.0, counter + 30.0
        count, end = _see(count, 3600.0, counter, at)
        assert end is None
    assert count.energy_wh == 50.0 + 360.0  # got 60.0


def test_a_glitch_never_makes_the_reported_energy_go_back() -> None:
    # 100 Wh counted at counter 1000; one bad frame reads 5 Wh (taken as a reset: +5), then
    # the true counter 1001. The count goes 105 -> 101: HA has stored 105 if it was due (its
    # rule: only ever more) and bills it. A meter silent for a minute first makes the
    # plausible "reset" 3680 W * 62 s = 64 Wh.
    count, _ = _see(start_count(0.0, 900.0), 3000.0, 1000.0, 120.0)
    count, end = _see(count, 3000.0, 5.0, 122.0)
    assert end is None
    seen = count.energy_wh
    count, end = _see(count, 3000.0, 1001.0, 124.0)
    assert end is None
    assert count.energy_wh >= seen  # 101.0 < 105.0


def test_a_glitch_reset_does_not_reach_the_paid_energy() -> None:
    # 196 of 200 Wh counted; a bad frame of 4 Wh ends the session as energy_reached (the
    # customer billed 200 Wh, cut 4 Wh early), though the next frame would have undone it.
    count, _ = _see(start_count(0.0, 804.0), 3000.0, 1000.0, 240.0, paid_wh=200.0)
    count, end = _see(count, 3000.0, 4.0, 242.0, paid_wh=200.0)
    assert end is None  # got ENERGY_REACHED


def test_a_meter_swapped_during_a_long_outage_is_not_billed_as_energy() -> None:
    # The agent was down 2 h for maintenance (the relay off: a reboot), the PZEM replaced by
    # one whose counter reads 3000 Wh. The stored count resumes with the first rise judged
    # over 2 h at 3680 W (7.4 kWh): the drop 120000 -> 3000 is a "reset" and 3000 Wh are
    # counted -- energy_reached for a customer who drew nothing.
    count = start_count(0.0, 120_000.0, 100.0, unseen_s=7200.0 + 10.0)
    count, end = _see(count, 0.0, 3000.0, 2.0, paid_wh=2000.0)
    assert (end, count.energy_wh) != (Reason.ENERGY_REACHED, 3100.0)
    assert count.energy_wh < 200.0
