"""The agent applying the energy rules, on a moved clock: no thread, no broker, no sleep.

The agent runs in-process with a clock the test moves, the mock meter (or a stub meter
that says what the test wants), a link that keeps what would be published, and the meter
thread's one round (:meth:`Agent.poll_meters`) called by the test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pi_mqtt_relay.commands import FullRule, OnCommand, parse_command
from pi_mqtt_relay.meters import ChargingCurve, MockMeter, Reading
from pi_mqtt_relay.state_file import StateFile

from .fakes import WALL, Clock, Rig, StubMeter, metered_rig


def test_the_cut_is_within_one_polls_energy_of_the_paid_energy(tmp_path: Path) -> None:
    meter = MockMeter(ChargingCurve(power_w=3600.0, taper_at_wh=10_000.0), counter_wh=100.0)
    with metered_rig(tmp_path, meter, meter_poll_s=2) as rig:
        rig.poll()
        rig.on("s-1", 25.0)
        assert rig.powered()
        while rig.powered():
            rig.poll(2.0)
        off = rig.states()[-1]
        assert (off["state"], off["reason"], off["session"]) == ("OFF", "energy_reached", "s-1")
        delivered = meter.counter_wh - 100.0
        # 3600 W for one 2 s poll is 2 Wh: the cut is at most that late.
        assert 25.0 <= delivered <= 25.0 + 2.0 + 1e-9
        assert off["energy_wh"] == round(delivered, 2)


def test_a_metered_state_is_reported_at_least_every_10_s_while_on(tmp_path: Path) -> None:
    meter = StubMeter(Reading(500.0, 1000.0))
    with metered_rig(tmp_path, meter) as rig:
        rig.poll()
        rig.on("s-1", 100.0)
        before = len(rig.states())
        for _ in range(4):
            rig.poll(2.0)  # nothing moves: no report
        assert len(rig.states()) == before
        rig.poll(2.0)  # 10 s since the last state
        assert len(rig.states()) == before + 1
        assert rig.states()[-1] | {"until": None} == {
            "state": "ON",
            "session": "s-1",
            "until": None,
            "remaining": 590.0,
            "reason": "command",
            "power_w": 500.0,
            "energy_wh": 0.0,
        }
        # A step of energy or power is reported at once, and stored with a report at most
        # every 10 s (the last write was with the report above, 8 s ago).
        meter.reading = Reading(500.0, 1010.0)
        rig.poll(8.0)
        assert rig.states()[-1]["energy_wh"] == 10.0
        stored = json.loads(rig.state_file.read_text())["sessions"]["bay-1"]
        assert (stored["counted_wh"], stored["counter_wh"]) == (0.0, 1000.0)
        # A step of power 2 s later: reported, and stored (10 s since the last write).
        meter.reading = Reading(449.0, 1012.0)
        rig.poll(2.0)
        assert (rig.states()[-1]["power_w"], rig.states()[-1]["energy_wh"]) == (449.0, 12.0)
        stored = json.loads(rig.state_file.read_text())["sessions"]["bay-1"]
        assert (stored["counted_wh"], stored["counter_wh"]) == (12.0, 1012.0)


def test_an_invalid_reading_ends_the_session_off_first(tmp_path: Path) -> None:
    meter = StubMeter(Reading(500.0, 1000.0))
    with metered_rig(tmp_path, meter) as rig:
        rig.poll()
        rig.on("s-1", 100.0)
        meter.reading = Reading(500.0, 1004.0)
        rig.poll(1.0)
        meter.reading = Reading(math.nan, 1005.0)
        rig.poll(1.0)
        assert not rig.powered()
        off = rig.states()[-1]
        assert (off["reason"], off["session"], off["energy_wh"]) == ("meter_invalid", "s-1", 4.0)
        # The ended session is refused if HA sends it again.
        rig.on("s-1", 100.0)
        assert rig.states()[-1]["reason"] == "rejected_ended"
        assert not rig.powered()


def test_a_silent_meter_ends_after_meter_silent_s(tmp_path: Path) -> None:
    meter = StubMeter(Reading(500.0, 1000.0))
    with metered_rig(tmp_path, meter, meter_silent_s=60) as rig:
        rig.poll()
        rig.on("s-1", 100.0)
        meter.reading = None
        rig.poll(59.0)
        assert rig.powered()
        rig.poll(1.0)
        assert not rig.powered()
        assert rig.states()[-1]["reason"] == "meter_silent"


def test_vehicle_full_with_the_mock_curve(tmp_path: Path) -> None:
    curve = ChargingCurve(power_w=1800.0, taper_at_wh=20.0, taper_wh=5.0, standby_w=2.0)
    meter = MockMeter(curve)
    with metered_rig(tmp_path, meter, meter_poll_s=2) as rig:
        rig.poll()
        rig.on("s-1", 1000.0, full={"below_w": 10, "settle_s": 180, "grace_s": 120})
        elapsed = 0.0
        while rig.powered():
            rig.poll(2.0)
            elapsed += 2.0
        off = rig.states()[-1]
        assert off["reason"] == "vehicle_full"
        # Full after 20 Wh at 1800 W (40 s) and a short taper, but the low draw only counts
        # from the grace time (120 s): then 180 s of it, to within one poll.
        assert 120.0 + 180.0 <= elapsed <= 120.0 + 180.0 + 2.0
        assert 25.0 <= off["energy_wh"] < 26.0


def test_the_time_cap_ends_a_metered_session_and_its_off_names_it(tmp_path: Path) -> None:
    meter = StubMeter(Reading(500.0, 1000.0))
    with metered_rig(tmp_path, meter) as rig:
        rig.poll()
        rig.on("s-1", 100.0, seconds=30)
        meter.reading = Reading(500.0, 1003.0)
        rig.poll(29.0)
        rig.poll(1.0)
        assert not rig.powered()
        off = rig.states()[-1]
        assert (off["reason"], off["session"], off["energy_wh"]) == ("deadline", "s-1", 3.0)
        # A timed session afterwards: counted from 0, the ended session is forgotten.
        rig.on("s-2", None, seconds=30)
        on = rig.states()[-1]
        assert (on["session"], on["energy_wh"], on["power_w"]) == ("s-2", 0.0, 500.0)


def test_a_bay_without_a_meter_reports_as_before(tmp_path: Path) -> None:
    with metered_rig(tmp_path, StubMeter(Reading(0.0, 0.0))) as rig:
        rig.agent.handle_command("bay-2", b"ON")
        state = rig.states("bay-2")[-1]
        assert set(state) == {"state", "session", "until", "remaining", "reason"}


def test_a_stored_session_of_an_old_agent_resumes_as_timed(tmp_path: Path) -> None:
    """A state file written before metering: its session resumes, timed, and stays so."""
    StateFile(tmp_path / "state.json").path.write_text(
        json.dumps(
            {
                "version": 1,
                "sessions": {
                    "bay-1": {
                        "session": "s-old",
                        "until": WALL + 300,
                        "deadline_mono": Clock().now.mono + 300,
                        "deadline_wall": WALL + 300,
                        "remaining": 300.0,
                        "boot_id": "boot",
                    }
                },
                "finished": {},
            }
        )
    )
    with metered_rig(tmp_path, StubMeter(Reading(0.0, 0.0))) as rig:
        rig.agent._resume_stored_sessions()
        assert rig.powered()
        rig.agent._publish_everything()
        state = rig.states()[-1]
        assert (state["reason"], state["session"], state["energy_wh"]) == ("resumed", "s-old", 0.0)


def _stored_metered(tmp_path: Path, boot_id: str) -> None:
    """A metered session stored with 40 Wh counted up to the meter's 1040 Wh."""
    (tmp_path / "state.json").write_text(
        json.dumps(
            {
                "version": 1,
                "sessions": {
                    "bay-1": {
                        "session": "s-1",
                        "until": WALL + 300,
                        "deadline_mono": Clock().now.mono + 300,
                        "deadline_wall": WALL + 300,
                        "remaining": 300.0,
                        "boot_id": boot_id,
                        "energy_wh": 100.0,
                        "counted_wh": 40.0,
                        "counter_wh": 1040.0,
                    }
                },
                "finished": {},
            }
        )
    )


def test_a_resumed_session_counts_on_from_the_stored_counter(tmp_path: Path) -> None:
    _stored_metered(tmp_path, "boot")
    # 10 Wh more were drawn after the last store, before the agent died.
    meter = StubMeter(Reading(500.0, 1050.0))
    with metered_rig(tmp_path, meter) as rig:
        rig.agent._resume_stored_sessions()
        assert rig.powered()
        rig.poll()
        assert rig.states()[-1]["energy_wh"] == 50.0
        meter.reading = Reading(500.0, 1100.0)
        rig.poll(60.0)
        off = rig.states()[-1]
        assert (off["reason"], off["energy_wh"]) == ("energy_reached", 100.0)


def test_a_held_session_counts_on_from_its_stored_count_when_its_on_comes(
    tmp_path: Path,
) -> None:
    """After a reboot with the clock not synced the session waits for HA's "on"; the energy
    counted before the reboot is not sold again."""
    _stored_metered(tmp_path, "an-earlier-boot")
    meter = StubMeter(Reading(0.0, 1050.0))
    with metered_rig(tmp_path, meter, synced=False) as rig:
        rig.agent._resume_stored_sessions()
        assert not rig.powered()
        rig.poll()
        rig.on("s-1", 100.0, seconds=200)
        assert rig.powered()
        rig.poll(1.0)
        assert rig.states()[-1]["energy_wh"] == 50.0
        meter.reading = Reading(500.0, 1100.0)
        rig.poll(60.0)
        assert rig.states()[-1]["reason"] == "energy_reached"


# -- a session sold by time at a metered bay: vehicle full, never ended by its meter --------------
FULL = {"below_w": 10, "settle_s": 180, "grace_s": 120}


def _timed_on(rig: Rig, session: str = "s-1", seconds: float = 3000, **extra: Any) -> None:
    rig.on(session, None, seconds=seconds, full=FULL, **extra)


def _low_for(rig: Rig, meter: StubMeter, seconds: float, counter_wh: float) -> None:
    """Poll every 2 s for ``seconds`` with the power at 2 W."""
    for _ in range(int(seconds // 2)):
        meter.reading = Reading(2.0, counter_wh)
        rig.poll(2.0)


def test_full_without_energy_is_a_timed_session_with_the_full_rule() -> None:
    payload = {"action": "on", "session": "s-1", "until": 2e9, "duration": 600, "sent": 2e9 - 600}
    command = parse_command(json.dumps({**payload, "full": FULL}).encode())
    assert isinstance(command, OnCommand)
    assert (command.energy_wh, command.full) == (None, FullRule(10.0, 180.0, 120.0))


def test_a_timed_session_ends_as_vehicle_full_and_its_off_names_it(tmp_path: Path) -> None:
    meter = StubMeter(Reading(0.0, 1000.0))
    with metered_rig(tmp_path, meter, meter_poll_s=2) as rig:
        rig.poll()
        _timed_on(rig)
        assert rig.states()[-1]["reason"] == "command"
        meter.reading = Reading(800.0, 1040.0)
        rig.poll(120.0)
        _low_for(rig, meter, 180.0, 1041.0)
        assert rig.powered()
        meter.reading = Reading(2.0, 1041.5)
        rig.poll(2.0)
        assert not rig.powered()
        off = rig.states()[-1]
        assert (off["state"], off["reason"], off["session"]) == ("OFF", "vehicle_full", "s-1")
        # Counted as a metered session is: the owner's energy sold includes it.
        assert off["energy_wh"] == 41.5


def test_a_top_up_keeps_the_full_rule(tmp_path: Path) -> None:
    meter = StubMeter(Reading(800.0, 1000.0))
    with metered_rig(tmp_path, meter, meter_poll_s=2) as rig:
        rig.poll()
        sent = rig.clock.now.wall
        _timed_on(rig, seconds=600)
        # The top-up: a later ``until``, without ``full``.
        top_up = {"action": "on", "session": "s-1", "until": sent + 1200, "duration": 1200}
        rig.agent.handle_command("bay-1", json.dumps({**top_up, "sent": sent}).encode())
        assert rig.states()[-1]["reason"] == "top_up"
        rig.poll(120.0)
        _low_for(rig, meter, 182.0, 1000.0)
        assert rig.states()[-1]["reason"] == "vehicle_full"
        stored = json.loads(rig.state_file.read_text())
        assert stored["sessions"] == {}


def test_full_to_a_bay_without_a_meter_is_rejected_no_meter(tmp_path: Path) -> None:
    with metered_rig(tmp_path, StubMeter(Reading(0.0, 0.0))) as rig:
        sent = rig.clock.now.wall
        on = {"action": "on", "session": "s-2", "until": sent + 600, "duration": 600}
        rig.agent.handle_command("bay-2", json.dumps({**on, "sent": sent, "full": FULL}).encode())
        state = rig.states("bay-2")[-1]
        assert (state["state"], state["reason"]) == ("OFF", "rejected_no_meter")
        assert not rig.factory.pin(27).state


def test_a_silent_meter_is_not_a_full_vehicle_and_does_not_end_the_session(
    tmp_path: Path,
) -> None:
    meter = StubMeter(Reading(800.0, 1000.0))
    with metered_rig(tmp_path, meter, meter_poll_s=2, meter_silent_s=60) as rig:
        rig.poll()
        _timed_on(rig)
        rig.poll(120.0)
        _low_for(rig, meter, 100.0, 1010.0)
        # Silent for 10 minutes, then one low reading: no reading is not low power.
        meter.reading = None
        for _ in range(300):
            rig.poll(2.0)
        assert rig.powered()
        meter.reading = Reading(2.0, 1010.0)
        rig.poll(2.0)
        assert rig.powered()
        # A gap shorter than meter_silent_s breaks the low streak too.
        _low_for(rig, meter, 100.0, 1010.0)
        meter.reading = None
        rig.poll(30.0)
        _low_for(rig, meter, 180.0, 1010.0)
        assert rig.powered()
        rig.poll(2.0)
        assert rig.states()[-1]["reason"] == "vehicle_full"


def test_meter_faults_never_end_a_timed_session_and_are_not_counted(tmp_path: Path) -> None:
    meter = StubMeter(Reading(800.0, 1000.0))
    with metered_rig(tmp_path, meter, meter_poll_s=2, report_step_wh=1) as rig:
        rig.poll()
        _timed_on(rig, seconds=60)
        meter.reading = Reading(800.0, 1005.0)
        rig.poll(2.0)
        for lie in (Reading(math.nan, 1006.0), Reading(99_999.0, 1006.0), Reading(800.0, 500.0)):
            meter.reading = lie
            rig.poll(2.0)
            assert rig.powered()
        # Counted on from the counter's new value after it went backwards.
        meter.reading = Reading(800.0, 503.0)
        rig.poll(2.0)
        assert rig.states()[-1]["energy_wh"] == 8.0
        rig.poll(50.0)
        off = rig.states()[-1]
        assert (off["reason"], off["session"], off["energy_wh"]) == ("deadline", "s-1", 8.0)


def test_a_restart_resumes_the_full_rule_and_the_count(tmp_path: Path) -> None:
    meter = StubMeter(Reading(800.0, 1000.0))
    with metered_rig(tmp_path, meter, meter_poll_s=2) as rig:
        rig.poll()
        _timed_on(rig)
        # 30 Wh in 40 s: within what the bay's rated 3680 W can draw (the plausibility cap).
        meter.reading = Reading(800.0, 1030.0)
        rig.poll(40.0)
        clock = rig.clock
    stored = json.loads((tmp_path / "state.json").read_text())["sessions"]["bay-1"]
    assert (stored["full"], stored["counted_wh"], stored.get("energy_wh")) == (FULL, 30.0, None)
    with metered_rig(tmp_path, meter, meter_poll_s=2) as rig:
        rig.clock.tick(clock.now.mono - rig.clock.now.mono)
        rig.agent._resume_stored_sessions()
        assert rig.powered()
        rig.poll(120.0)
        _low_for(rig, meter, 182.0, 1030.0)
        off = rig.states()[-1]
        assert (off["reason"], off["energy_wh"]) == ("vehicle_full", 30.0)
