"""Vehicle full for a session sold by time, through Mosquitto and a simulated PZEM-004T.

The fixtures are ``test_metered_sessions``'s: the agent's real serial code reads pymodbus's
RTU server on a pty; the test waits, with bounded timeouts, for what the agent publishes.
"""

from __future__ import annotations

import time
from typing import Any

from .conftest import Observer, RunningAgent
from .pzem_sim import SimulatedPzemLine
from .test_metered_sessions import PAID_FULL, _counted, line, metered

__all__ = ["line", "metered"]  # the fixtures this module uses


def _timed_on(session: str) -> dict[str, Any]:
    """An ``on`` sold by time with the vehicle-full rule, as HA sends it to a metered bay."""
    sent = time.time()
    on = {"action": "on", "session": session, "until": sent + 120, "duration": 120, "sent": sent}
    return {**on, "full": PAID_FULL}


def test_a_timed_session_with_the_full_rule_ends_as_vehicle_full_with_its_energy(
    line: SimulatedPzemLine, metered: tuple[RunningAgent, Observer]
) -> None:
    running, obs = metered
    mark = obs.mark()
    obs.send("bay-1", _timed_on("s-timed"))
    on = obs.wait_state("bay-1", since=mark, state="ON", session="s-timed", energy_wh=0.0)
    assert on["reason"] == "command"
    _counted(line, obs, mark, 5020, 20.0)
    low_at = time.monotonic()
    line.meters[1].power_w = 3.0
    off = obs.wait_for(obs.state_topic("bay-1"), lambda m: m.json()["reason"] == "vehicle_full")
    assert off.at - low_at >= PAID_FULL["settle_s"]
    assert (off.json()["state"], off.json()["session"], off.json()["energy_wh"]) == (
        "OFF",
        "s-timed",
        20.0,
    )
    assert not running.is_on("bay-1")


def test_full_to_a_bay_without_a_meter_is_rejected_no_meter(
    metered: tuple[RunningAgent, Observer],
) -> None:
    running, obs = metered
    mark = obs.mark()
    obs.send("bay-2", _timed_on("s-plain"))
    state = obs.wait_state("bay-2", since=mark, reason="rejected_no_meter")
    assert state["state"] == "OFF"
    assert not running.is_on("bay-2")
