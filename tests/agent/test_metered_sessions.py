"""Metered sessions end to end: the agent, Mosquitto and a simulated PZEM-004T on a pty line.

The agent's real serial code reads pymodbus's RTU server (see ``pzem_sim``); the test sets
what the meter measures and waits, with bounded timeouts, for what the agent publishes or
for the meter to have been read. Nothing here waits for time to pass by sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mosquitto import Broker

from .helpers import AgentProcess, Observer, RunningAgent, Setup
from .pzem_sim import SimulatedPzemLine, pzem_line

PAID_FULL = {"below_w": 10, "settle_s": 0.5, "grace_s": 0.2}


@pytest.fixture
def line() -> Iterator[SimulatedPzemLine]:
    with pzem_line((1,)) as simulated:
        simulated.meters[1].power_w = 1000.0
        simulated.meters[1].energy_wh = 5000
        yield simulated


# The counter moves by tens of Wh between two 50 ms polls here: a bay rated 100 kW may
# draw that (58 Wh per poll with the meter's 2 s lag), a 3.68 kW one would be meter_invalid.
RATING_W = 100_000


def _config(setup: Setup, line: SimulatedPzemLine, **overrides: Any) -> Path:
    """bay-1 metered by the simulated PZEM-004T at address 1; bay-2 without a meter."""
    settings: dict[str, Any] = {
        "bays": [
            {
                "id": "bay-1",
                "name": "Bay 1",
                "pin": 17,
                "default_minutes": 1,
                "meter": {
                    "kind": "pzem004t",
                    "port": line.port,
                    "address": 1,
                    "max_power_w": RATING_W,
                },
            },
            {"id": "bay-2", "name": "Bay 2", "pin": 27, "default_minutes": 1},
        ],
        "meter_poll_s": 0.05,
        "meter_silent_s": 1.0,
        "report_step_wh": 1,
        "report_step_w": 1,
    }
    return setup.write(**{**settings, **overrides})


def _send_metered(
    obs: Observer, bay: str, session: str, energy_wh: float, *, seconds: float = 120, **extra: Any
) -> None:
    sent = time.time()
    obs.send(
        bay,
        {
            "action": "on",
            "session": session,
            "until": sent + seconds,
            "duration": seconds,
            "sent": sent,
            "energy_wh": energy_wh,
            **extra,
        },
    )


def _wait_reads(line: SimulatedPzemLine, reads: int, timeout: float = 5) -> None:
    """Until the meter has answered ``reads`` more requests."""
    target = line.meters[1].requests + reads
    deadline = time.monotonic() + timeout
    while line.meters[1].requests < target:
        assert time.monotonic() < deadline, "the agent stopped reading the meter"
        time.sleep(0.01)


@pytest.fixture
def metered(
    setup: Setup,
    line: SimulatedPzemLine,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> tuple[RunningAgent, Observer]:
    """A started agent whose bay-1 meter has been read (power known) and an observer."""
    obs = observer_factory(setup.node)
    running = agents(_config(setup, line)).start()
    obs.wait_state("bay-1", reason="boot", power_w=1000.0)
    return running, obs


def _start(obs: Observer, session: str, energy_wh: float, **extra: Any) -> int:
    mark = obs.mark()
    _send_metered(obs, "bay-1", session, energy_wh, **extra)
    obs.wait_state("bay-1", since=mark, state="ON", session=session, energy_wh=0.0)
    return mark


def _counted(
    line: SimulatedPzemLine, obs: Observer, mark: int, counter: int, energy: float
) -> None:
    line.meters[1].energy_wh = counter
    obs.wait_state("bay-1", since=mark, state="ON", energy_wh=energy)


def test_the_config_names_each_meter(setup: Setup, metered: tuple[RunningAgent, Observer]) -> None:
    _, obs = metered
    config = obs.wait_for(f"qr_charging/{setup.node}/config", lambda m: True).json()
    assert config["bays"] == [
        {"id": "bay-1", "name": "Bay 1", "meter": {"kind": "pzem004t", "max_power_w": RATING_W}},
        {"id": "bay-2", "name": "Bay 2"},
    ]


def test_energy_reached_switches_off_with_ha_gone(
    setup: Setup,
    broker: Broker,
    line: SimulatedPzemLine,
    metered: tuple[RunningAgent, Observer],
    observer_factory: Callable[[str], Observer],
) -> None:
    running, obs = metered
    _start(obs, "s-paid", 50)
    broker.stop()
    line.meters[1].energy_wh = 5030
    _wait_reads(line, 3)
    assert running.is_on("bay-1")
    line.meters[1].energy_wh = 5055
    running.wait_off("bay-1")
    broker.start()
    late = observer_factory(setup.node)
    off = late.wait_state("bay-1", timeout=10, reason="energy_reached")
    assert (off["state"], off["session"], off["energy_wh"]) == ("OFF", "s-paid", 55.0)


def test_vehicle_full_after_the_power_settles_low(
    line: SimulatedPzemLine, metered: tuple[RunningAgent, Observer]
) -> None:
    running, obs = metered
    mark = _start(obs, "s-full", 500, full=PAID_FULL)
    _counted(line, obs, mark, 5020, 20.0)
    low_at = time.monotonic()
    line.meters[1].power_w = 3.0
    off = obs.wait_for(obs.state_topic("bay-1"), lambda m: m.json()["reason"] == "vehicle_full")
    assert off.at - low_at >= PAID_FULL["settle_s"]
    assert (off.json()["session"], off.json()["energy_wh"]) == ("s-full", 20.0)
    assert not running.is_on("bay-1")


def test_a_silent_meter_ends_the_session_with_the_energy_measured(
    line: SimulatedPzemLine, metered: tuple[RunningAgent, Observer]
) -> None:
    running, obs = metered
    mark = _start(obs, "s-silent", 500)
    _counted(line, obs, mark, 5012, 12.0)
    line.silent.set()
    quiet_at = time.monotonic()
    off = obs.wait_for(obs.state_topic("bay-1"), lambda m: m.json()["reason"] == "meter_silent")
    # meter_silent_s (1 s) after the last answer, which came at most one poll before.
    assert off.at - quiet_at >= 0.5
    assert (off.json()["session"], off.json()["energy_wh"]) == ("s-silent", 12.0)
    assert not running.is_on("bay-1")


def test_a_counter_reset_keeps_counting_and_a_drop_is_meter_backwards(
    line: SimulatedPzemLine, metered: tuple[RunningAgent, Observer]
) -> None:
    running, obs = metered
    mark = _start(obs, "s-reset", 500)
    _counted(line, obs, mark, 5020, 20.0)
    line.meters[1].energy_wh = 4  # reset (or a meter restarted): its 4 Wh are counted
    _wait_reads(line, 3)
    _counted(line, obs, mark, 34, 54.0)
    _counted(line, obs, mark, 80, 100.0)
    line.meters[1].energy_wh = 70  # more than the bay could have drawn since the last poll
    off = obs.wait_state("bay-1", since=mark, reason="meter_backwards")
    assert (off["state"], off["session"], off["energy_wh"]) == ("OFF", "s-reset", 100.0)
    assert not running.is_on("bay-1")


def test_power_above_the_rating_is_meter_overpower(
    line: SimulatedPzemLine, metered: tuple[RunningAgent, Observer]
) -> None:
    running, obs = metered
    mark = _start(obs, "s-over", 500)
    _counted(line, obs, mark, 5010, 10.0)
    line.meters[1].power_w = RATING_W + 1.0
    line.meters[1].energy_wh = 5015  # read with the overpower: not counted
    off = obs.wait_state("bay-1", since=mark, reason="meter_overpower")
    assert (off["session"], off["energy_wh"]) == ("s-over", 10.0)
    assert not running.is_on("bay-1")


def test_corrupted_answers_and_garbage_do_not_end_or_miscount_a_session(
    setup: Setup,
    line: SimulatedPzemLine,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> None:
    obs = observer_factory(setup.node)
    # Long enough silence allowance for a few lost answers (each waits out its timeout).
    running = agents(_config(setup, line, meter_silent_s=30)).start()
    obs.wait_state("bay-1", reason="boot", power_w=1000.0)
    mark = _start(obs, "s-noise", 500)
    _counted(line, obs, mark, 5010, 10.0)
    line.garble.set()
    line.meters[1].energy_wh = 9999  # never seen: every answer is corrupted
    _wait_reads(line, 3)
    line.meters[1].energy_wh = 5015
    line.garble.clear()
    for noise in (b"\x00\xff\x13garbage", b"\x01\x04\x14" + b"\xaa" * 7, bytes(range(64))):
        line.inject(noise)
        _wait_reads(line, 2)
    _counted(line, obs, mark, 5025, 25.0)
    assert running.is_on("bay-1")
    assert all(state["state"] == "ON" for state in obs.states("bay-1", since=mark))
    assert all(
        state.get("energy_wh") in (0.0, 10.0, 15.0, 25.0)
        for state in obs.states("bay-1", since=mark)
    )


def test_a_top_up_adds_energy(
    line: SimulatedPzemLine, metered: tuple[RunningAgent, Observer]
) -> None:
    running, obs = metered
    mark = _start(obs, "s-top", 30)
    _counted(line, obs, mark, 5020, 20.0)
    _send_metered(obs, "bay-1", "s-top", 60)
    obs.wait_state("bay-1", since=mark, reason="top_up")
    _counted(line, obs, mark, 5055, 55.0)
    assert running.is_on("bay-1")
    line.meters[1].energy_wh = 5061
    off = obs.wait_state("bay-1", since=mark, reason="energy_reached")
    assert off["energy_wh"] == 61.0


def test_a_metered_on_to_a_bay_without_a_meter_is_refused(
    metered: tuple[RunningAgent, Observer],
) -> None:
    running, obs = metered
    mark = obs.mark()
    _send_metered(obs, "bay-2", "s-no-meter", 500)
    state = obs.wait_state("bay-2", since=mark, reason="rejected_no_meter")
    assert (state["state"], state["session"]) == ("OFF", None)
    assert "energy_wh" not in state
    assert not running.is_on("bay-2")


def test_a_killed_agent_resumes_counting_from_the_meter(
    setup: Setup,
    line: SimulatedPzemLine,
    observer_factory: Callable[[str], Observer],
    processes: Callable[[Path, Path], AgentProcess],
    tmp_path: Path,
) -> None:
    """SIGKILL mid-session: the energy delivered while the agent was down is counted once,
    and none of what was counted before is lost or counted again."""
    obs = observer_factory(setup.node)
    proc = processes(_config(setup, line), tmp_path / "agent.log").start()
    obs.wait_state("bay-1", reason="boot", power_w=1000.0, timeout=20)
    mark = _start(obs, "s-kill", 100)
    _counted(line, obs, mark, 5040, 40.0)
    proc.kill()
    line.meters[1].energy_wh = 5060  # drawn while the agent was down
    mark = obs.mark()
    proc.start()
    resumed = obs.wait_state("bay-1", since=mark, reason="resumed", timeout=20)
    assert (resumed["state"], resumed["session"]) == ("ON", "s-kill")
    obs.wait_state("bay-1", since=mark, state="ON", energy_wh=60.0)
    line.meters[1].energy_wh = 5100
    off = obs.wait_state("bay-1", since=mark, reason="energy_reached")
    assert (off["session"], off["energy_wh"]) == ("s-kill", 100.0)


def test_a_killed_agent_still_names_the_ended_session_and_its_energy(
    setup: Setup,
    line: SimulatedPzemLine,
    observer_factory: Callable[[str], Observer],
    processes: Callable[[Path, Path], AgentProcess],
    tmp_path: Path,
) -> None:
    """Review #24 finding 3: the session ended while HA was away, then the agent was killed
    (SIGKILL) and restarted. Its retained OFF and its answer to HA's resent "on" must still
    name the session and the energy counted, or HA bills none of it."""
    obs = observer_factory(setup.node)
    proc = processes(_config(setup, line), tmp_path / "agent.log").start()
    obs.wait_state("bay-1", reason="boot", power_w=1000.0, timeout=20)
    mark = _start(obs, "s-gone", 40)
    line.meters[1].energy_wh = 5040
    off = obs.wait_state("bay-1", since=mark, reason="energy_reached")
    assert (off["session"], off["energy_wh"]) == ("s-gone", 40.0)
    proc.kill()
    mark = obs.mark()
    proc.start()
    booted = obs.wait_state("bay-1", since=mark, reason="boot", timeout=20)
    assert (booted["state"], booted["session"], booted["energy_wh"]) == ("OFF", "s-gone", 40.0)
    mark = obs.mark()
    _send_metered(obs, "bay-1", "s-gone", 40)
    refused = obs.wait_state("bay-1", since=mark, reason="rejected_ended")
    assert (refused["state"], refused["session"], refused["energy_wh"]) == ("OFF", "s-gone", 40.0)


# -- a session sold by time with the vehicle-full rule, through the broker ---------------------
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
