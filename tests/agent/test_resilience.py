"""Restarts, crashes, a vanished broker and queued commands (invariants 3 and 4)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gpiozero import Device

from pi_mqtt_relay.__main__ import main
from tests.mosquitto import Broker

from .helpers import TOLERANCE_S, AgentProcess, Observer, RunningAgent, Setup


def test_relay_goes_off_at_the_deadline_without_broker(
    setup: Setup,
    broker: Broker,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> None:
    obs = observer_factory(setup.node)
    running = agents(setup.write()).start()
    obs.wait_state("bay-1", reason="boot")
    obs.send_on("bay-1", "s-alone", 1.5)
    obs.wait_state("bay-1", state="ON")
    broker.stop()
    running.wait_off("bay-1", timeout=3)
    [period] = running.on_periods("bay-1")
    assert abs(period - 1.5) < TOLERANCE_S
    # The broker comes back empty (no persistence): the agent reconnects and republishes.
    broker.start()
    late = observer_factory(setup.node)
    availability = late.wait_for(
        f"qr_charging/{setup.node}/availability", lambda m: True, timeout=10
    )
    assert availability.payload == b"online"
    late.wait_for(f"qr_charging/{setup.node}/config", lambda m: True, timeout=5)
    state = late.wait_state("bay-1", timeout=5)
    assert state["state"] == "OFF"
    assert state["reason"] == "deadline"


@pytest.fixture
def booted(
    setup: Setup,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> tuple[Path, Observer, RunningAgent]:
    """agent.yaml, an observer of its node, and a first agent that has announced its boot."""
    config = setup.write()
    obs = observer_factory(setup.node)
    first = agents(config).start()
    obs.wait_state("bay-1", reason="boot")
    return config, obs, first


def test_commands_sent_while_the_agent_was_away_are_delivered(
    setup: Setup,
    agents: Callable[[Path], RunningAgent],
    booted: tuple[Path, Observer, RunningAgent],
) -> None:
    config, obs, first = booted
    first.stop()
    obs.wait_for(f"qr_charging/{setup.node}/availability", lambda m: m.payload == b"offline")
    command = obs.send_on("bay-2", "s-queued", 3.0)
    time.sleep(0.2)
    mark = obs.mark()
    second = agents(config).start()
    on = obs.wait_state("bay-2", since=mark, state="ON")
    assert on["session"] == "s-queued"
    assert on["until"] == command["until"]
    assert second.is_on("bay-2")


def test_stop_switches_off_and_the_next_start_resumes_the_rest(
    setup: Setup,
    agents: Callable[[Path], RunningAgent],
    booted: tuple[Path, Observer, RunningAgent],
) -> None:
    config, obs, first = booted
    # Long enough that a slow restart on a busy machine still finds time left to resume.
    paid_s = 6.0
    obs.send_on("bay-1", "s-resume", paid_s)
    on = obs.wait_state("bay-1", state="ON")
    time.sleep(0.5)
    first.stop()
    assert not first.is_on("bay-1")
    paused = obs.wait_state("bay-1", reason="shutdown")
    assert paused["state"] == "OFF"
    assert paused["session"] == "s-resume"
    time.sleep(0.3)
    mark = obs.mark()
    before = time.time()
    second = agents(config).start()
    resumed = obs.wait_state("bay-1", since=mark, reason="resumed")
    after = time.time()
    assert resumed["state"] == "ON"
    # The same deadline: the time the agent was away is not served again.
    assert resumed["until"] == on["until"]
    # What is left is counted to that deadline by the agent's clock when it resumed, which
    # lies between our two readings (0.05 s: the report rounds to a tenth of a second).
    assert on["until"] - after - 0.05 <= resumed["remaining"] <= on["until"] - before + 0.05
    # The pin starts off and is only then switched on, for the remaining time.
    states = second.pin("bay-1").states
    assert [s.state for s in states[:2]] == [False, True]
    obs.wait_state("bay-1", since=mark, reason="deadline", timeout=paid_s + 5)
    second.wait_off("bay-1")
    [served_first] = first.on_periods("bay-1")
    [served_second] = second.on_periods("bay-1")
    # At least the half second slept before the stop, and never more than was paid.
    assert served_first >= 0.5 - TOLERANCE_S
    assert served_first + served_second < paid_s
    assert abs(served_second - resumed["remaining"]) < TOLERANCE_S


def _write_state(setup: Setup, session: str, *, remaining: float, wall_left: float) -> None:
    """A state file as left by a previous boot (another boot id)."""
    setup.state_file.parent.mkdir(parents=True, exist_ok=True)
    setup.state_file.write_text(
        json.dumps(
            {
                "version": 1,
                "sessions": {
                    "bay-1": {
                        "session": session,
                        "until": time.time() + wall_left,
                        "deadline_mono": 1.0,
                        "deadline_wall": time.time() + wall_left,
                        "remaining": remaining,
                        "boot_id": "a-previous-boot",
                    }
                },
                "finished": {},
            }
        )
    )


@pytest.mark.parametrize(
    ("remaining", "wall_left", "expected"),
    [
        (1.0, 30.0, 1.0),  # clock behind after a reboot: never more than was left
        (30.0, 1.0, 1.0),  # clock right: the wall clock deadline holds
    ],
)
def test_after_a_reboot_only_the_remaining_time_is_served(
    setup: Setup,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
    remaining: float,
    wall_left: float,
    expected: float,
) -> None:
    _write_state(setup, "s-reboot", remaining=remaining, wall_left=wall_left)
    obs = observer_factory(setup.node)
    running = agents(setup.write()).start()
    assert obs.wait_state("bay-1", reason="resumed")["session"] == "s-reboot"
    obs.wait_state("bay-1", reason="deadline")
    running.wait_off("bay-1")
    [period] = running.on_periods("bay-1")
    assert abs(period - expected) < TOLERANCE_S


def test_after_a_reboot_with_an_unsynced_clock_the_session_waits_for_its_on(
    setup: Setup,
    agents: Callable[..., RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> None:
    # The stored time left (30 s) may be long past: the power-cut time is unknown.
    _write_state(setup, "s-held", remaining=30.0, wall_left=30.0)
    obs = observer_factory(setup.node)
    running = agents(setup.write(), clock_synced=False).start()
    state = obs.wait_state("bay-1", reason="boot")
    assert (state["state"], state["session"]) == ("OFF", None)
    time.sleep(0.2)
    assert running.on_periods("bay-1") == []

    # HA sends the session's "on" again, with what is left by its own clock.
    mark = obs.mark()
    obs.send_on("bay-1", "s-held", 1.0)
    assert obs.wait_state("bay-1", since=mark)["state"] == "ON"
    running.wait_off("bay-1")
    [period] = running.on_periods("bay-1")
    assert abs(period - 1.0) < TOLERANCE_S


def test_session_that_expired_while_down_stays_off(
    setup: Setup,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
) -> None:
    _write_state(setup, "s-gone", remaining=5.0, wall_left=-1.0)
    obs = observer_factory(setup.node)
    running = agents(setup.write()).start()
    state = obs.wait_state("bay-1", reason="deadline")
    assert state["state"] == "OFF"
    mark = obs.mark()
    obs.send_on("bay-1", "s-gone", 5.0)
    assert obs.wait_state("bay-1", since=mark)["reason"] == "rejected_ended"
    time.sleep(0.2)
    assert running.on_periods("bay-1") == []


@pytest.mark.parametrize(
    ("age_s", "reason"), [(3600, "rejected_cancelled"), (2 * 86400, "command")]
)
def test_cancelled_ids_are_kept_for_a_day(
    setup: Setup,
    agents: Callable[[Path], RunningAgent],
    observer_factory: Callable[[str], Observer],
    age_s: float,
    reason: str,
) -> None:
    setup.state_file.parent.mkdir(parents=True, exist_ok=True)
    setup.state_file.write_text(
        json.dumps(
            {
                "version": 1,
                "sessions": {},
                "finished": {"s-old": {"kind": "cancelled", "at": time.time() - age_s}},
            }
        )
    )
    obs = observer_factory(setup.node)
    running = agents(setup.write()).start()
    obs.wait_state("bay-1", reason="boot")
    mark = obs.mark()
    obs.send_on("bay-1", "s-old", 1.0)
    assert obs.wait_state("bay-1", since=mark)["reason"] == reason
    assert running.is_on("bay-1") is (reason == "command")


def test_kill_9_mid_session_resumes_with_the_remaining_time_only(
    setup: Setup,
    processes: Callable[[Path, Path], AgentProcess],
    observer_factory: Callable[[str], Observer],
    tmp_path: Path,
) -> None:
    config = setup.write()
    obs = observer_factory(setup.node)
    proc = processes(config, tmp_path / "agent.log").start()
    obs.wait_state("bay-1", reason="boot", timeout=10)
    obs.send_on("bay-1", "s-crash", 3.0)
    on = obs.wait_for(obs.state_topic("bay-1"), lambda m: m.json()["state"] == "ON")
    time.sleep(0.8)
    assert proc.kill(signal.SIGKILL) == -signal.SIGKILL
    killed_at = time.monotonic()
    # The broker publishes the last will.
    obs.wait_for(f"qr_charging/{setup.node}/availability", lambda m: m.payload == b"offline")
    stored = json.loads(setup.state_file.read_text())
    assert stored["sessions"]["bay-1"]["session"] == "s-crash"
    mark = obs.mark()
    proc.start()
    resumed = obs.wait_state("bay-1", since=mark, reason="resumed", timeout=10)
    assert resumed["session"] == "s-crash"
    assert resumed["until"] == on.json()["until"]
    elapsed = time.monotonic() - on.at
    assert resumed["remaining"] <= 3.0 - (killed_at - on.at) + 0.05
    assert abs(resumed["remaining"] - (3.0 - elapsed)) < TOLERANCE_S
    off = obs.wait_for(
        obs.state_topic("bay-1"), lambda m: m.json()["reason"] == "deadline", since=mark
    )
    # Off at the original deadline: time served before the crash was not served again.
    assert abs((off.at - on.at) - 3.0) < TOLERANCE_S


def test_sigterm_switches_every_relay_off(
    setup: Setup, observer_factory: Callable[[str], Observer]
) -> None:
    """The CLI in this process, stopped by a real SIGTERM; pins read from gpiozero."""
    config = setup.write()
    obs = observer_factory(setup.node)
    previous_factory = Device.pin_factory

    def drive() -> None:
        obs.wait_state("bay-1", reason="boot", timeout=10)
        obs.send_on("bay-1", "s-term", 30.0)
        obs.send_on("bay-2", "s-term-2", 30.0)
        obs.wait_state("bay-1", state="ON")
        obs.wait_state("bay-2", state="ON")
        os.kill(os.getpid(), signal.SIGTERM)

    handler_before = signal.getsignal(signal.SIGTERM)
    driver = threading.Thread(target=drive)
    driver.start()
    try:
        code = main(["--mock-gpio", "--config", str(config)])
        driver.join()
        factory = Device.pin_factory
        assert code == 0
        assert factory.pin(17).state is False  # active high: low is off
        assert factory.pin(27).state is True  # active low: high is off
        assert factory.pin(17).states[-1].state is False
        assert obs.wait_state("bay-1", reason="shutdown")["state"] == "OFF"
        assert obs.wait_state("bay-2", reason="shutdown")["state"] == "OFF"
        obs.wait_for(f"qr_charging/{setup.node}/availability", lambda m: m.payload == b"offline")
    finally:
        driver.join()
        Device.pin_factory = previous_factory
    # The SIGTERM handler was the CLI's only while it ran.
    assert signal.getsignal(signal.SIGTERM) == handler_before


def test_error_at_start_exits_non_zero_with_relays_off(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    # The state file's directory cannot be created: a file is in its way.
    setup.state_file.parent.write_text("in the way")
    previous_factory = Device.pin_factory
    try:
        code = main(["--mock-gpio", "--config", str(setup.write())])
        factory = Device.pin_factory
    finally:
        Device.pin_factory = previous_factory
    assert code == 1
    assert factory.pin(17).state is False
    assert factory.pin(27).state is True
    assert all(s.state is False for s in factory.pin(17).states)
