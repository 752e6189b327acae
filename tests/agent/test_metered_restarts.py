"""Review #24 finding 3: an ended metered session's energy survives an agent restart.

HA may be away when the agent ends a metered session, and the agent may restart (an update,
a power blip) before HA is back. Its retained OFF must then still name the session and the
energy it counted, and an ``on`` HA resends for it is refused with them: otherwise HA, which
keeps only what it was told, bills none of that energy.
"""

from __future__ import annotations

import json
from pathlib import Path

from pi_mqtt_relay.meters import Reading

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
