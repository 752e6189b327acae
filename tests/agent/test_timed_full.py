"""Vehicle full for a session sold by time at a metered bay (issue #24), on a moved clock.

An ``on`` without ``energy_wh`` may carry ``full`` to a bay with a meter: the session keeps
its deadline and is counted (the owner's energy sold), and ends as ``vehicle_full`` when the
power stays low; its meter's faults end nothing. The rig is ``test_metered_agent``'s.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pi_mqtt_relay.commands import FullRule, OnCommand, parse_command
from pi_mqtt_relay.meters import Reading

from .test_metered_agent import Rig, StubMeter, _rig

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
    with _rig(tmp_path, meter, meter_poll_s=2) as rig:
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
    with _rig(tmp_path, meter, meter_poll_s=2) as rig:
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
    with _rig(tmp_path, StubMeter(Reading(0.0, 0.0))) as rig:
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
    with _rig(tmp_path, meter, meter_poll_s=2, meter_silent_s=60) as rig:
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
    with _rig(tmp_path, meter, meter_poll_s=2, report_step_wh=1) as rig:
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
    with _rig(tmp_path, meter, meter_poll_s=2) as rig:
        rig.poll()
        _timed_on(rig)
        meter.reading = Reading(800.0, 1030.0)
        rig.poll(10.0)
        clock = rig.clock
    stored = json.loads((tmp_path / "state.json").read_text())["sessions"]["bay-1"]
    assert (stored["full"], stored["counted_wh"], stored.get("energy_wh")) == (FULL, 30.0, None)
    with _rig(tmp_path, meter, meter_poll_s=2) as rig:
        rig.clock.tick(clock.now.mono - rig.clock.now.mono)
        rig.agent._resume_stored_sessions()
        assert rig.powered()
        rig.poll(120.0)
        _low_for(rig, meter, 182.0, 1030.0)
        off = rig.states()[-1]
        assert (off["reason"], off["energy_wh"]) == ("vehicle_full", 30.0)
