"""Session behaviour seen from outside: MQTT commands in, mock pins and state messages out."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from .helpers import PYPROJECT_VERSION, TOLERANCE_S, Observer, RunningAgent


def _powered_until_the_deadline(running: RunningAgent, obs: Observer, seconds: float) -> None:
    """bay-1 goes off at its deadline, after one period of power of ``seconds``."""
    obs.wait_state("bay-1", reason="deadline")
    running.wait_off("bay-1")
    [period] = running.on_periods("bay-1")
    assert abs(period - seconds) < TOLERANCE_S


def test_relays_off_at_start(
    started: tuple[RunningAgent, Observer], observer_factory: Callable[[str], Observer]
) -> None:
    running, live = started
    # bay-1 is active high (pin low = off), bay-2 active low (pin high = off).
    assert running.pin("bay-1").state is False
    assert running.pin("bay-2").state is True
    assert running.on_periods("bay-1") == []
    assert running.on_periods("bay-2") == []
    off = {"state": "OFF", "session": None, "until": None, "remaining": 0, "reason": "boot"}
    assert live.states("bay-1")[-1] == off
    # A client that subscribes later gets config, availability and states retained.
    obs = observer_factory(live.node)
    assert obs.wait_for(obs.state_topic("bay-2"), lambda m: m.retain).json()["state"] == "OFF"
    config = json.loads(obs.wait_for(f"qr_charging/{obs.node}/config", lambda m: m.retain).payload)
    assert config == {
        "node": obs.node,
        "name": "Test kiosk",
        "sw_version": PYPROJECT_VERSION,
        "bays": [{"id": "bay-1", "name": "Bay 1"}, {"id": "bay-2", "name": "Bay 2"}],
        "max_session_s": 300,
    }
    availability = obs.wait_for(f"qr_charging/{obs.node}/availability", lambda m: m.retain)
    assert availability.payload == b"online"
    assert availability.retain


@pytest.mark.parametrize("bay", ["bay-1", "bay-2"])
def test_on_time_matches_the_requested_duration(
    started: tuple[RunningAgent, Observer], bay: str
) -> None:
    running, obs = started
    command = obs.send_on(bay, "s-timing", 1.0)
    on = obs.wait_state(bay, state="ON")
    assert on["session"] == "s-timing"
    assert on["until"] == command["until"]
    assert on["reason"] == "command"
    assert 1.0 - TOLERANCE_S < on["remaining"] <= 1.0
    off = obs.wait_state(bay, state="OFF", reason="deadline")
    assert off == {
        "state": "OFF",
        "session": None,
        "until": None,
        "remaining": 0,
        "reason": "deadline",
    }
    running.wait_off(bay)
    [period] = running.on_periods(bay)
    assert abs(period - 1.0) < TOLERANCE_S
    other = "bay-2" if bay == "bay-1" else "bay-1"
    assert running.on_periods(other) == []


def test_same_on_twice_is_a_no_op(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    command = obs.send_on("bay-1", "s-twice", 1.0)
    obs.wait_state("bay-1", state="ON")
    time.sleep(0.3)
    mark = obs.mark()
    obs.send("bay-1", command)
    again = obs.wait_state("bay-1", since=mark)
    assert again["state"] == "ON"
    assert again["reason"] == "command"
    assert again["until"] == command["until"]
    _powered_until_the_deadline(running, obs, 1.0)


def test_top_up_extends_the_active_session(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    first = obs.send_on("bay-1", "s-top", 1.0)
    obs.wait_state("bay-1", state="ON")
    time.sleep(0.3)
    mark = obs.mark()
    obs.send(
        "bay-1", {**first, "until": first["until"] + 1.0, "duration": 1.0, "sent": time.time()}
    )
    topped = obs.wait_state("bay-1", since=mark)
    assert topped["reason"] == "top_up"
    assert topped["until"] == first["until"] + 1.0
    assert 1.5 < topped["remaining"] <= 1.7
    _powered_until_the_deadline(running, obs, 2.0)


def test_top_up_beyond_the_cap_is_refused(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    first = obs.send_on("bay-1", "s-cap", 1.0)
    obs.wait_state("bay-1", state="ON")
    mark = obs.mark()
    obs.send("bay-1", {**first, "until": first["until"] + 400})  # max_session_s is 300
    refused = obs.wait_state("bay-1", since=mark)
    assert refused["reason"] == "rejected_too_long"
    assert refused["state"] == "ON"
    assert refused["until"] == first["until"]
    running.wait_off("bay-1", timeout=3)
    [period] = running.on_periods("bay-1")
    assert abs(period - 1.0) < TOLERANCE_S


def test_off_ends_only_its_own_session(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    obs.send_on("bay-1", "s-mine", 5.0)
    obs.wait_state("bay-1", state="ON")
    mark = obs.mark()
    obs.send("bay-1", {"action": "off", "session": "s-someone-else"})
    still = obs.wait_state("bay-1", since=mark)
    assert still["state"] == "ON"
    assert still["session"] == "s-mine"
    assert running.is_on("bay-1")
    started_at = time.monotonic()
    obs.send("bay-1", {"action": "off", "session": "s-mine"})
    off = obs.wait_state("bay-1", since=mark, state="OFF")
    assert off == {
        "state": "OFF",
        "session": None,
        "until": None,
        "remaining": 0,
        "reason": "off_command",
    }
    running.wait_off("bay-1")
    assert time.monotonic() - started_at < 1.0


def test_ended_session_never_powers_the_bay_again(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    command = obs.send_on("bay-1", "s-once", 5.0)
    obs.wait_state("bay-1", state="ON")
    obs.send("bay-1", {"action": "off", "session": "s-once"})
    obs.wait_state("bay-1", reason="off_command")
    mark = obs.mark()
    obs.send("bay-1", command)
    refused = obs.wait_state("bay-1", since=mark)
    assert refused["reason"] == "rejected_cancelled"
    assert refused["state"] == "OFF"
    time.sleep(0.2)
    assert not running.is_on("bay-1")
    assert len(running.on_periods("bay-1")) == 1


def test_cancel_then_late_on_is_refused(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    mark = obs.mark()
    obs.send("bay-1", {"action": "off", "session": "s-late"})
    ack = obs.wait_state("bay-1", since=mark)
    assert ack["state"] == "OFF"
    mark = obs.mark()
    obs.send_on("bay-1", "s-late", 5.0)
    refused = obs.wait_state("bay-1", since=mark)
    assert refused["reason"] == "rejected_cancelled"
    assert refused["state"] == "OFF"
    # The cancellation is stored, so it survives a restart too.
    stored = json.loads(running.config.state_file.read_text())
    assert stored["finished"]["s-late"]["kind"] == "cancelled"
    time.sleep(0.2)
    assert running.on_periods("bay-1") == []


def test_other_session_is_refused_while_busy(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    obs.send_on("bay-1", "s-first", 1.0)
    obs.wait_state("bay-1", state="ON")
    mark = obs.mark()
    obs.send_on("bay-1", "s-second", 5.0)
    refused = obs.wait_state("bay-1", since=mark)
    assert refused["reason"] == "rejected_busy"
    assert refused["session"] == "s-first"
    _powered_until_the_deadline(running, obs, 1.0)
    # The refused session did not start afterwards either.
    time.sleep(0.2)
    assert not running.is_on("bay-1")


def test_plain_on_uses_the_default_time(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    before = time.time()
    obs.send("bay-1", "ON")
    on = obs.wait_state("bay-1", state="ON")
    assert on["reason"] == "command"
    assert on["session"].startswith("manual-")
    assert before + 1.5 - 0.2 < on["until"] < time.time() + 1.5  # default_minutes 0.025
    _powered_until_the_deadline(running, obs, 1.5)


def test_plain_off_ends_whatever_runs(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    obs.send_on("bay-2", "s-paid", 5.0)
    obs.wait_state("bay-2", state="ON")
    mark = obs.mark()
    obs.send("bay-2", "OFF")
    off = obs.wait_state("bay-2", since=mark)
    assert off["reason"] == "off_command"
    running.wait_off("bay-2", timeout=1)
    # A plain OFF while idle changes nothing.
    mark = obs.mark()
    obs.send("bay-2", "OFF")
    assert obs.wait_state("bay-2", since=mark)["reason"] == "off_command"
    assert len(running.on_periods("bay-2")) == 1


def test_wrong_pi_clock_trusts_duration(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    # The sender's clock is an hour ahead of the Pi's (a Pi booted without RTC or NTP).
    command = obs.send_on("bay-1", "s-skew", 1.0, sent=time.time() + 3600)
    on = obs.wait_state("bay-1", state="ON")
    assert on["reason"] == "clock_skew_duration_trusted"
    assert on["until"] == command["until"]
    _powered_until_the_deadline(running, obs, 1.0)
    # Its deadline ended it: a replay, though its `until` still lies ahead, is refused.
    mark = obs.mark()
    obs.send("bay-1", command)
    assert obs.wait_state("bay-1", since=mark)["reason"] == "rejected_ended"
    time.sleep(0.2)
    assert len(running.on_periods("bay-1")) == 1


def test_delayed_command_keeps_its_until(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    # Sent two minutes ago (queued), 1 s of its 121 s are left: only that second is served.
    now = time.time()
    command = {"action": "on", "session": "s-queued", "until": now + 1.0, "duration": 121}
    obs.send("bay-1", {**command, "sent": now - 120})
    on = obs.wait_state("bay-1", state="ON")
    assert on["reason"] == "command"
    _powered_until_the_deadline(running, obs, 1.0)


def test_session_is_stored_before_the_relay_turns_on(
    started: tuple[RunningAgent, Observer],
) -> None:
    running, obs = started
    state_dir = running.config.state_file.parent
    # Make the state file unwritable: its directory becomes a plain file.
    for child in state_dir.iterdir():
        child.unlink()
    state_dir.rmdir()
    state_dir.write_text("not a directory")
    mark = obs.mark()
    obs.send_on("bay-1", "s-nodisk", 5.0)
    refused = obs.wait_state("bay-1", since=mark)
    assert refused["reason"] == "rejected_storage_error"
    assert refused["state"] == "OFF"
    time.sleep(0.2)
    assert running.on_periods("bay-1") == []


def test_active_session_is_in_the_state_file(started: tuple[RunningAgent, Observer]) -> None:
    running, obs = started
    command = obs.send_on("bay-2", "s-disk", 5.0)
    obs.wait_state("bay-2", state="ON")
    stored = json.loads(running.config.state_file.read_text())
    assert stored["sessions"]["bay-2"]["session"] == "s-disk"
    assert stored["sessions"]["bay-2"]["until"] == command["until"]
    mark = obs.mark()
    obs.send("bay-2", "OFF")
    obs.wait_state("bay-2", since=mark, state="OFF")
    stored = json.loads(running.config.state_file.read_text())
    assert "bay-2" not in stored["sessions"]
