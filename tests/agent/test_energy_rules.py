"""The pure rules of metered sessions: counting, every end reason, top-ups, the stored count."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pi_mqtt_relay.commands import FullRule, MalformedCommand, OnCommand, parse_command
from pi_mqtt_relay.energy_rules import (
    READ_LAG_S,
    REPORT_EVERY_S,
    RESOLUTION_WH,
    WRAPS_WH,
    Count,
    MeterLimits,
    Report,
    observe,
    report_due,
    start_count,
)
from pi_mqtt_relay.meters import Reading
from pi_mqtt_relay.sessions import (
    ActiveSession,
    Counted,
    Limits,
    Now,
    Reason,
    Resume,
    StoredSession,
    decide,
    resume,
)
from pi_mqtt_relay.state_file import SavedState, StateFile
from tests.soak import examples

LIMITS = MeterLimits(max_power_w=3680.0, silent_s=60.0)
NOW = Now(mono=1000.0, wall=1_800_000_000.0)
FULL = FullRule(below_w=10.0, settle_s=180.0, grace_s=120.0)


def _see(
    count: Count,
    power_w: float,
    counter_wh: float,
    at: float,
    *,
    paid_wh: float = 1000.0,
    full: FullRule | None = None,
) -> tuple[Count, Reason | None]:
    outcome = observe(
        count, Reading(power_w, counter_wh), at, paid_wh=paid_wh, full=full, limits=LIMITS
    )
    return outcome.count, outcome.end


# -- counting ---------------------------------------------------------------------------------


def test_increases_of_the_counter_are_summed_from_the_start() -> None:
    count = start_count(0.0, counter_wh=5000.0)
    count, end = _see(count, 800, 5012.5, 60.0)
    count, end = _see(count, 800, 5030.0, 140.0)
    assert (count.energy_wh, count.counter_wh, end) == (30.0, 5030.0, None)


def test_without_a_reading_before_the_start_the_first_one_is_the_baseline() -> None:
    count, _ = _see(start_count(0.0, counter_wh=None), 800, 7000.0, 2.0)
    count, _ = _see(count, 800, 7004.0, 20.0)
    assert count.energy_wh == 4.0


def test_a_plausible_drop_is_a_reset_and_counting_goes_on_from_0() -> None:
    count, _ = _see(start_count(0.0, 5000.0), 800, 5020.0, 90.0)
    count, end = _see(count, 800, 3.0, 100.0)  # a reset: the 3 Wh are the session's
    assert (count.energy_wh, count.pending_wh, end) == (20.0, 3.0, None)  # once confirmed
    count, end = _see(count, 800, 25.0, 200.0)
    assert (count.energy_wh, count.counter_wh, end) == (45.0, 25.0, None)

    count, _ = _see(start_count(0.0, 0.0), 800, 5.0, 20.0)
    after, end = _see(count, 3680.1, 9.0, 40.0)
    assert (end, after) == (Reason.METER_OVERPOWER, count)
    assert _see(count, 3680.0, 9.0, 40.0)[1] is None


def test_a_drop_to_more_than_could_be_drawn_is_meter_backwards_and_is_not_counted() -> None:
    count, _ = _see(start_count(0.0, 5000.0), 800, 5020.0, 90.0)
    after, end = _see(count, 800, 10.5, 92.0)  # 10.5 Wh in 2 s is above 3680 W
    assert end is Reason.METER_BACKWARDS
    assert after == count


# -- ends -------------------------------------------------------------------------------------


def test_energy_reached_at_the_first_reading_at_or_past_the_paid_energy() -> None:
    count, end = _see(start_count(0.0, 0.0), 3000, 99.9, 120.0, paid_wh=100.0)
    assert end is None
    count, end = _see(count, 3000, 101.5, 122.0, paid_wh=100.0)
    assert (end, count.energy_wh) == (Reason.ENERGY_REACHED, 101.5)


def test_vehicle_full_after_the_grace_time_and_a_settled_low_draw() -> None:
    count = start_count(0.0, 0.0)
    # A charger slow to draw: low power during the grace time does not count.
    count, end = _see(count, 2, 0.0, 60.0, full=FULL)
    assert (end, count.low_since) == (None, None)
    count, end = _see(count, 2, 0.1, 130.0, full=FULL)
    assert (end, count.low_since) == (None, 130.0)
    # The draw comes back: the settle time starts again.
    count, end = _see(count, 500, 1.0, 200.0, full=FULL)
    assert count.low_since is None
    count, end = _see(count, 9.9, 2.0, 250.0, full=FULL)
    count, end = _see(count, 9.9, 2.1, 250.0 + 179.9, full=FULL)
    assert end is None
    count, end = _see(count, 9.9, 2.2, 250.0 + 180.0, full=FULL)
    assert (end, count.energy_wh) == (Reason.VEHICLE_FULL, 2.2)


def test_without_a_full_rule_a_low_draw_never_ends_the_session() -> None:
    _, end = _see(start_count(0.0, 0.0), 0.0, 0.0, 10_000.0)
    assert end is None


def test_meter_silent_after_silent_s_without_a_valid_reading() -> None:
    count, _ = _see(start_count(0.0, 0.0), 800, 10.0, 10.0)
    for at in (20.0, 69.9):
        assert observe(count, None, at, paid_wh=100, full=None, limits=LIMITS).end is None
    outcome = observe(count, None, 70.0, paid_wh=100, full=None, limits=LIMITS)
    assert (outcome.end, outcome.count.energy_wh) == (Reason.METER_SILENT, 10.0)


def test_a_silent_meter_from_the_start_is_silent_after_silent_s() -> None:
    outcome = observe(start_count(0.0, None), None, 60.0, paid_wh=1, full=None, limits=LIMITS)
    assert outcome.end is Reason.METER_SILENT


@pytest.mark.parametrize(
    "reading",
    [
        Reading(math.nan, 10.0),
        Reading(100.0, math.inf),
        Reading(-1.0, 10.0),
        Reading(100.0, -0.5),
    ],
)
def test_a_reading_not_finite_and_non_negative_is_meter_invalid(reading: Reading) -> None:
    count, _ = _see(start_count(0.0, 0.0), 800, 5.0, 20.0)
    outcome = observe(count, reading, 40.0, paid_wh=100, full=None, limits=LIMITS)
    assert (outcome.end, outcome.count) == (Reason.METER_INVALID, count)


def test_power_above_the_rating_is_meter_overpower_and_its_energy_is_not_counted() -> None:
    count, _ = _see(start_count(0.0, 0.0), 800, 5.0, 2.0)
    after, end = _see(count, 3680.1, 9.0, 4.0)
    assert (end, after) == (Reason.METER_OVERPOWER, count)
    assert _see(count, 3680.0, 9.0, 4.0)[1] is None


# -- the properties ---------------------------------------------------------------------------

# An honest meter over a session: each poll (``dt`` s later) the bay drew a share of what its
# rating allows; now and then the meter restarts its counter (it shows only what was drawn
# since), shows one glitched low frame before the true counter again, or its counter wraps.
honest_steps = st.lists(
    st.tuples(
        st.sampled_from(["up", "up", "up", "reset", "glitch"]),
        st.floats(min_value=0.5, max_value=120),  # seconds since the last poll
        st.floats(min_value=0, max_value=1),  # the share of max_power_w drawn
        st.floats(min_value=0, max_value=1),  # where the restart/glitch falls
    ),
    min_size=1,
    max_size=60,
)
# Start counters anywhere, and near each wrap point (the PZEM's 9999.99 kWh, 2**32 Wh).
start_counters = st.one_of(
    st.floats(min_value=0, max_value=1e6),
    st.sampled_from(WRAPS_WH).flatmap(lambda w: st.floats(min_value=w - 500, max_value=w - 1)),
)


def _wrap_of(counter: float) -> float:
    """The wrap point of an honest meter starting at ``counter``."""
    return next((w for w in WRAPS_WH if counter <= w), WRAPS_WH[-1])


@examples(300)
@given(paid=st.floats(min_value=0.1, max_value=5000), start=start_counters, moves=honest_steps)
def test_an_honest_meter_is_never_a_fault_nor_counted_above_what_was_drawn(
    paid: float, start: float, moves: list[tuple[str, float, float, float]]
) -> None:
    wrap = _wrap_of(start)
    count, counter, drawn, mono = start_count(0.0, start), start, 0.0, 0.0
    for kind, dt, share, where in moves:
        mono += dt
        energy = LIMITS.max_power_w * dt / 3600 * share
        drawn += energy
        readings = [(counter + energy) % wrap]
        # A restart right at a wrap point could be read as the wrap: left out.
        if kind == "reset" and counter + energy < wrap - 1000:
            readings = [energy * where]
        elif kind == "glitch" and energy * where / 2 < counter:
            # Half-way, a frame lower than the counter (0 or what a restart would show).
            readings = [energy * where / 2, readings[0]]
        counter = readings[-1]
        before = count
        for at, reading in zip([mono - dt / 2, mono][-len(readings) :], readings, strict=True):
            seen = count.energy_wh
            count, end = _see(count, 100.0, reading, at, paid_wh=paid)
            # A glitch (or its undoing) never lowers the count: HA bills the highest figure.
            assert count.energy_wh >= seen
            if end is Reason.ENERGY_REACHED:
                # The cut comes at the first reading that reaches the paid energy.
                assert before.energy_wh < paid <= count.energy_wh
                return
            assert end is None, (kind, reading)
        # Once the true counter is read again, nothing beyond what was drawn is counted.
        assert count.energy_wh <= drawn + 1e-6 * max(1.0, drawn)
        assert count.energy_wh < paid


# A lying meter: any counter value at any time.
lies = st.lists(
    st.tuples(st.floats(min_value=0.01, max_value=120), st.floats(min_value=0, max_value=2.0**33)),
    min_size=1,
    max_size=60,
)


@examples(300)
@given(start=st.one_of(st.none(), start_counters), readings=lies)
def test_no_meter_gets_more_counted_than_max_power_can_draw_in_the_time(
    start: float | None, readings: list[tuple[float, float]]
) -> None:
    count, mono = start_count(0.0, start), 0.0
    for index, (dt, counter) in enumerate(readings, start=1):
        mono += dt
        before = count
        count, end = _see(before, 100.0, counter, mono, paid_wh=math.inf)
        if end is not None:
            # A fault ends the session and the reading that showed it is not counted.
            assert end in (Reason.METER_INVALID, Reason.METER_BACKWARDS)
            assert count == before
            return
        most = LIMITS.max_power_w * (mono + index * READ_LAG_S) / 3600 + index * RESOLUTION_WH
        assert count.energy_wh <= most * (1 + 1e-9)
        # Whatever it reads, the count never goes down.
        assert count.energy_wh >= before.energy_wh


@examples(200)
@given(
    old=st.floats(min_value=300, max_value=3000),
    reset_to=st.floats(min_value=0, max_value=5),
    steps=st.lists(
        st.tuples(st.floats(min_value=10, max_value=60), st.floats(min_value=0.5, max_value=1)),
        min_size=1,
        max_size=20,
    ),
)
def test_a_real_reset_is_counted_when_the_new_counter_climbs_past_the_old_one(
    old: float, reset_to: float, steps: list[tuple[float, float]]
) -> None:
    # 100 Wh counted up to ``old``, then the meter's counter is reset; the bay draws on until
    # its new counter is well past the old one: everything since the reset is counted (the
    # drop is forgotten two readings after it, before the counter can get back there).
    count, _ = _see(start_count(0.0, old - 100.0), 3000.0, old, 120.0, paid_wh=math.inf)
    count, end = _see(count, 3000.0, reset_to, 122.0, paid_wh=math.inf)
    assert (end, count.energy_wh) == (None, 100.0)
    mono, counter = 122.0, reset_to
    while counter <= old + 100.0:
        for dt, share in steps:
            mono += dt
            counter += LIMITS.max_power_w * dt / 3600 * share
            seen = count.energy_wh
            count, end = _see(count, 3000.0, counter, mono, paid_wh=math.inf)
            assert end is None
            assert count.energy_wh >= seen
    assert count.energy_wh == pytest.approx(100.0 + counter)


# -- reports ----------------------------------------------------------------------------------


def test_a_report_is_due_on_a_step_of_energy_or_power_or_every_10_s_while_on() -> None:
    last = Report(energy_wh=100.0, power_w=800.0, at=0.0)

    def due(energy: float | None, power: float | None, at: float, running: bool = True) -> bool:
        return report_due(last, Report(energy, power, at), step_wh=10, step_w=50, running=running)

    assert not due(109.9, 849.9, 9.9)
    assert due(110.0, 800.0, 1.0)
    assert due(100.0, 750.0, 1.0)
    assert due(100.0, 800.0, REPORT_EVERY_S)
    assert not due(100.0, 800.0, 100.0, running=False)
    assert due(None, 800.0, 1.0)
    assert report_due(None, Report(None, None, 0.0), step_wh=10, step_w=50, running=False)


# -- commands and sessions --------------------------------------------------------------------


def _on(energy: float | None = 1500.0, **extra: object) -> bytes:
    data: dict[str, object] = {
        "action": "on",
        "session": "s-1",
        "until": NOW.wall + 3600,
        "duration": 3600,
        "sent": NOW.wall,
        **extra,
    }
    if energy is not None:
        data["energy_wh"] = energy
    return json.dumps(data).encode()


def test_a_metered_on_carries_its_energy_and_full_rule() -> None:
    full = {"below_w": 10, "settle_s": 180, "grace_s": 120}
    command = parse_command(_on(1500.0, full=full))
    assert isinstance(command, OnCommand)
    assert (command.energy_wh, command.full) == (1500.0, FULL)
    plain = parse_command(_on(None))
    assert isinstance(plain, OnCommand)
    assert (plain.energy_wh, plain.full) == (None, None)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (_on(0.0), "'energy_wh' must be greater than 0"),
        (_on(-5.0), "'energy_wh' must be greater than 0"),
        (_on("1500"), "'energy_wh' must be a number"),  # type: ignore[arg-type]
        (_on(True), "'energy_wh' must be a number"),  # type: ignore[arg-type]
        (_on(1500.0).replace(b"1500.0", b"NaN"), "'energy_wh' must be a finite number"),
        (_on(1500.0, full=[10, 180, 120]), "'full' must be an object"),
        (_on(1500.0, full={"below_w": 10, "settle_s": 180}), "'grace_s' is missing"),
        (_on(1500.0, full={"below_w": -1, "settle_s": 1, "grace_s": 1}), "at least 0"),
    ],
)
def test_a_malformed_energy_or_full_rule_is_refused(payload: bytes, problem: str) -> None:
    with pytest.raises(MalformedCommand, match=problem):
        parse_command(payload)


def _decide(
    active: ActiveSession | None, payload: bytes, *, metered: bool = True
) -> tuple[ActiveSession | None, Reason | None]:
    decision = decide(
        active,
        parse_command(payload),
        now=NOW,
        limits=Limits(max_session_s=14_400, default_s=60, metered=metered),
        finished={},
        manual_id="manual-1",
    )
    return decision.active, decision.reason


def test_a_metered_on_to_a_bay_without_a_meter_is_rejected_no_meter() -> None:
    assert _decide(None, _on(1500.0), metered=False) == (None, Reason.REJECTED_NO_METER)
    # A timed session is sold there as before.
    active, reason = _decide(None, _on(None), metered=False)
    assert (reason, active is not None) == (Reason.COMMAND, True)


def test_a_top_up_takes_the_larger_energy_and_the_later_until() -> None:
    active, _ = _decide(None, _on(1000.0))
    assert active is not None
    assert active.energy_wh == 1000.0
    more, reason = _decide(active, _on(1500.0))
    assert (reason, more) == (
        Reason.TOP_UP,
        ActiveSession("s-1", active.until, active.deadline, 1500.0),
    )
    # A resend of less energy (a late duplicate) changes nothing.
    assert _decide(more, _on(1000.0)) == (more, None)
    later, reason = _decide(more, _on(1200.0, until=NOW.wall + 4000))
    assert reason is Reason.TOP_UP
    assert later is not None
    # The cap moves by the difference of the two ``until`` (the sender's clock).
    assert (later.energy_wh, later.until) == (1500.0, NOW.wall + 4000)
    assert later.deadline == active.deadline + 400


def test_a_session_keeps_its_kind() -> None:
    timed, _ = _decide(None, _on(None))
    assert _decide(timed, _on(1500.0))[1] is Reason.REJECTED_MALFORMED
    metered, _ = _decide(None, _on(1500.0))
    assert _decide(metered, _on(None, until=NOW.wall + 4000))[1] is Reason.REJECTED_MALFORMED


# -- the state file ---------------------------------------------------------------------------


def test_a_metered_session_is_stored_with_its_count_and_resumed(tmp_path: Path) -> None:
    active = ActiveSession("s-1", NOW.wall + 600, NOW.mono + 600, 1500.0, FULL)
    stored = StoredSession.of(active, NOW, "boot", Counted(523.0, 70_123.0))
    store = StateFile(tmp_path / "state.json")
    store.save(SavedState(sessions={"bay-1": stored}))
    loaded = store.load().sessions["bay-1"]
    assert loaded == stored
    outcome, resumed = resume(loaded, NOW, "boot", 14_400, wall_clock_synced=True)
    assert outcome is Resume.RESUME
    assert resumed == active


def test_an_old_state_file_loads_unchanged(tmp_path: Path) -> None:
    """A file written before metering (no energy keys) loads as the timed session it was,
    and is written back with exactly the keys it had."""
    session = {
        "session": "s-old",
        "until": NOW.wall + 600,
        "deadline_mono": NOW.mono + 600,
        "deadline_wall": NOW.wall + 600,
        "remaining": 600.0,
        "boot_id": "boot",
    }
    old = {
        "version": 1,
        "sessions": {"bay-1": session},
        "finished": {"s-gone": {"kind": "ended", "at": NOW.wall - 5}},
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps(old))
    store = StateFile(path)
    loaded = store.load()
    assert loaded.sessions["bay-1"] == StoredSession(
        "s-old", NOW.wall + 600, NOW.mono + 600, NOW.wall + 600, 600.0, "boot"
    )
    assert loaded.sessions["bay-1"].energy_wh is None
    store.save(loaded)
    assert json.loads(path.read_text()) == old
