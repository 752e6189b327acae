"""Review #24 finding 3: an ended metered session's energy survives an agent restart.

HA may be away when the agent ends a metered session, and the agent may restart (an update,
a power blip) before HA is back. Its retained OFF must then still name the session and the
energy it counted, and an ``on`` HA resends for it is refused with them: otherwise HA, which
keeps only what it was told, bills none of that energy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pi_mqtt_relay.meters import Reading
from pi_mqtt_relay.state_file import SavedState, StateFile

from .fakes import StubMeter, metered_rig


def _ended_then_restarted(tmp_path: Path) -> StubMeter:
    """bay-1's metered session s-1 ended energy_reached at 100 Wh, then the agent stopped."""
    meter = StubMeter(Reading(500.0, 1000.0))
    with metered_rig(tmp_path, meter) as rig:
        rig.poll()
        rig.on("s-1", 100.0, seconds=1200)
        meter.reading = Reading(3000.0, 1100.0)
        rig.poll(150.0)
        off = rig.states()[-1]
        assert (off["reason"], off["session"], off["energy_wh"]) == ("energy_reached", "s-1", 100.0)
        rig.agent.stop()
    return meter


def test_an_ended_metered_sessions_energy_survives_an_agent_restart(tmp_path: Path) -> None:
    meter = _ended_then_restarted(tmp_path)
    finished = json.loads((tmp_path / "state.json").read_text())["finished"]["s-1"]
    assert (finished["bay"], finished["energy_wh"]) == ("bay-1", 100.0)
    with metered_rig(tmp_path, meter) as rig:
        rig.agent._resume_stored_sessions()
        rig.agent._publish_everything()
        rig.poll()
        off = rig.states()[-1]
        # It used to say {"state": "OFF", "session": None, "energy_wh": None, ...}.
        assert (off["state"], off["session"], off["energy_wh"]) == ("OFF", "s-1", 100.0)


def test_an_on_resent_after_the_restart_is_rejected_ended_with_the_energy(
    tmp_path: Path,
) -> None:
    meter = _ended_then_restarted(tmp_path)
    with metered_rig(tmp_path, meter) as rig:
        rig.agent._resume_stored_sessions()
        rig.on("s-1", 100.0, seconds=1000)
        state = rig.states()[-1]
        assert (state["state"], state["reason"]) == ("OFF", "rejected_ended")
        assert (state["session"], state["energy_wh"]) == ("s-1", 100.0)
        assert not rig.powered()


def test_a_later_session_on_the_bay_replaces_the_memory(tmp_path: Path) -> None:
    meter = _ended_then_restarted(tmp_path)
    with metered_rig(tmp_path, meter) as rig:
        rig.agent._resume_stored_sessions()
        rig.on("t-1", None, seconds=60)
        rig.poll(60.0)
        rig.agent.stop()
    with metered_rig(tmp_path, meter) as rig:
        rig.agent._resume_stored_sessions()
        rig.agent._publish_everything()
        off = rig.states()[-1]
        assert off["state"] == "OFF"
        assert off["session"] != "s-1"


def test_a_meter_swapped_while_the_agent_was_down_is_not_billed(tmp_path: Path) -> None:
    # s-1 buys 2000 Wh; 100 Wh are counted (counter 120100), then the agent is stopped for
    # 50 minutes of maintenance and the PZEM replaced by one reading 2500 Wh. The first
    # reading after the restart is a "reset" judged over the 50 min down (3680 W: 3.1 kWh):
    # all 2500 Wh are counted, energy_reached, the customer billed 2000 Wh never drawn.
    meter = StubMeter(Reading(0.0, 120_000.0))
    with metered_rig(tmp_path, meter) as rig:
        rig.poll()
        rig.on("s-1", 2000.0, seconds=3600)
        meter.reading = Reading(3000.0, 120_100.0)
        rig.poll(120.0)
        rig.agent.stop()
    meter.reading = Reading(0.0, 2500.0)
    with metered_rig(tmp_path, meter) as rig:
        rig.clock.tick(120.0 + 3000.0)
        rig.agent._resume_stored_sessions()
        rig.poll(2.0)
        state = rig.states()[-1]
        assert state["reason"] != "energy_reached"  # got energy_reached, energy_wh 2000+
        assert state["energy_wh"] is None or state["energy_wh"] < 200.0


def test_a_refused_new_session_is_not_answered_in_the_name_of_the_last_one(
    tmp_path: Path,
) -> None:
    # s-1 ended at 100 Wh; HA's next session t-1 is refused (here rejected_too_long). The
    # refusal's OFF names s-1 (and its 100 Wh): HA reads it as news of s-1, ignores it for
    # t-1, which then fails only at its acknowledgement timeout, as no_acknowledgement.
    meter = StubMeter(Reading(500.0, 1000.0))
    with metered_rig(tmp_path, meter) as rig:
        rig.poll()
        rig.on("s-1", 100.0, seconds=1200)
        meter.reading = Reading(3000.0, 1100.0)
        rig.poll(150.0)
        assert rig.states()[-1]["session"] == "s-1"
        rig.on("t-1", 500.0, seconds=7200)
        state = rig.states()[-1]
        assert state["reason"] == "rejected_too_long"
        assert state["session"] in (None, "t-1")  # got "s-1"


def test_a_manual_session_after_a_metered_end_does_not_hide_its_energy(tmp_path: Path) -> None:
    # Second review, finding 3: a plain ON after s-1's end made the agent forget s-1's energy;
    # an "on" HA resent for s-1 was answered rejected_ended in the manual session's name.
    meter = _ended_then_restarted(tmp_path)
    with metered_rig(tmp_path, meter) as rig:
        rig.agent._resume_stored_sessions()
        rig.agent.handle_command("bay-1", b"ON")
        rig.poll(10.0)
        rig.agent.handle_command("bay-1", b"OFF")
        assert rig.states()[-1]["session"].startswith("manual-")
        rig.on("s-1", 100.0, seconds=1000)
        state = rig.states()[-1]
        assert (state["reason"], state["session"], state["energy_wh"]) == (
            "rejected_ended",
            "s-1",
            100.0,
        )
        rig.agent.stop()
    with metered_rig(tmp_path, meter) as rig:
        rig.agent._resume_stored_sessions()
        rig.on("s-1", 100.0, seconds=1000)
        state = rig.states()[-1]
        assert (state["reason"], state["session"], state["energy_wh"]) == (
            "rejected_ended",
            "s-1",
            100.0,
        )
        assert not rig.powered()


def _counted_100_wh(tmp_path: Path, *, clean: bool) -> StubMeter:
    """s-1 (2000 Wh) has 100 Wh counted at counter 120100, then the agent stops or crashes."""
    meter = StubMeter(Reading(0.0, 120_000.0))
    with metered_rig(tmp_path, meter) as rig:
        rig.poll()
        rig.on("s-1", 2000.0, seconds=3600)
        meter.reading = Reading(3000.0, 120_100.0)
        rig.poll(120.0)
        if clean:
            rig.agent.stop()
    return meter


def test_after_a_clean_stop_a_rise_over_the_down_time_is_meter_invalid(tmp_path: Path) -> None:
    # Second review, finding 4: after a clean stop the relay was off; a meter swapped for one
    # reading 900 Wh higher was billed (the rise was judged over the 50 minutes down).
    meter = _counted_100_wh(tmp_path, clean=True)
    assert json.loads((tmp_path / "state.json").read_text())["stopped"] is True
    meter.reading = Reading(0.0, 121_000.0)
    with metered_rig(tmp_path, meter) as rig:
        rig.clock.tick(120.0 + 3000.0)
        rig.agent._resume_stored_sessions()
        rig.poll(2.0)
        state = rig.states()[-1]
        assert (state["reason"], state["energy_wh"]) == ("meter_invalid", 100.0)


def test_after_a_crash_on_the_same_boot_what_was_drawn_meanwhile_is_counted(
    tmp_path: Path,
) -> None:
    # The relay may have stayed on: the first rise is judged over the time down (600 s).
    meter = _counted_100_wh(tmp_path, clean=False)
    meter.reading = Reading(3000.0, 120_600.0)
    with metered_rig(tmp_path, meter) as rig:
        rig.clock.tick(120.0 + 600.0)
        rig.agent._resume_stored_sessions()
        rig.poll(2.0)
        state = rig.states()[-1]
        assert (state["state"], state["energy_wh"]) == ("ON", 600.0)


def test_the_count_is_written_at_most_every_10_s_and_a_crash_loses_none_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A report step of 1 Wh used to write (and fsync) the state file with every report.
    saves: list[SavedState] = []
    save = StateFile.save

    def counted_save(self: StateFile, state: SavedState) -> None:
        saves.append(state)
        save(self, state)

    monkeypatch.setattr(StateFile, "save", counted_save)
    meter = StubMeter(Reading(0.0, 1000.0))
    with metered_rig(tmp_path, meter, report_step_wh=1) as rig:
        rig.poll()
        rig.on("s-1", 2000.0, seconds=3600)
        written = len(saves)
        for n in range(1, 10):
            meter.reading = Reading(3000.0, 1000.0 + 2 * n)
            rig.poll(1.0)
        assert [s["energy_wh"] for s in rig.states()[-9:]] == [2.0 * n for n in range(1, 10)]
        assert len(saves) == written  # it used to be written 9 times
    # A crash 10 s later: the stored count lags, but the counter read after the restart
    # counts everything drawn since it.
    meter.reading = Reading(3000.0, 1030.0)
    with metered_rig(tmp_path, meter) as rig:
        rig.clock.tick(19.0)
        rig.agent._resume_stored_sessions()
        rig.poll(1.0)
        assert rig.states()[-1]["energy_wh"] == 30.0
