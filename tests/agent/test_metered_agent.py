"""The agent applying the energy rules, on a moved clock: no thread, no broker, no sleep.

The agent runs in-process with a clock the test moves, the mock meter (or a stub meter
that says what the test wants), a link that keeps what would be published, and the meter
thread's one round (:meth:`Agent.poll_meters`) called by the test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pi_mqtt_relay.meters import ChargingCurve, MockMeter, Reading
from pi_mqtt_relay.state_file import StateFile

from .fakes import WALL, Clock, StubMeter, metered_rig


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
        # A step of energy or power is reported at once, and stored with it.
        meter.reading = Reading(500.0, 1010.0)
        rig.poll(8.0)
        assert rig.states()[-1]["energy_wh"] == 10.0
        stored = json.loads(rig.state_file.read_text())["sessions"]["bay-1"]
        assert (stored["counted_wh"], stored["counter_wh"]) == (10.0, 1010.0)
        meter.reading = Reading(449.0, 1010.0)
        rig.poll(0.5)
        assert rig.states()[-1]["power_w"] == 449.0


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
        # A timed session afterwards: energy is not counted, the ended session is forgotten.
        rig.on("s-2", None, seconds=30)
        on = rig.states()[-1]
        assert (on["session"], on["energy_wh"], on["power_w"]) == ("s-2", None, 500.0)


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
        assert (state["reason"], state["session"], state["energy_wh"]) == ("resumed", "s-old", None)


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
