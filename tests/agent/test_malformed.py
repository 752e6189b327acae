"""Bad input changes nothing, is reported in the state ``reason``, and never stops the agent."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from .helpers import TOLERANCE_S, Observer, RunningAgent

NOW = time.time()
GOOD: dict[str, Any] = {
    "action": "on",
    "session": "s-bad",
    "until": NOW + 200,
    "duration": 200,
    "sent": NOW,
}


def _without(key: str) -> bytes:
    return json.dumps({k: v for k, v in GOOD.items() if k != key}).encode()


def _with(**changes: Any) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


MALFORMED = {
    "not_json": b"switch it on please",
    "empty": b"",
    "lowercase_plain_on": b"on",
    "json_array": b'["on"]',
    "empty_object": b"{}",
    "unknown_action": _with(action="toggle"),
    "missing_session": _without("session"),
    "missing_until": _without("until"),
    "missing_duration": _without("duration"),
    "missing_sent": _without("sent"),
    "session_not_a_string": _with(session=42),
    "empty_session": _with(session=""),
    "duration_as_string": _with(duration="600"),
    "duration_as_bool": _with(duration=True),
    "until_as_string": _with(until="tomorrow"),
    "negative_duration": _with(duration=-600),
    "zero_duration": _with(duration=0),
    "nan_duration": _with(duration=float("nan")),
    "infinite_until": _with(until=float("inf")),
    "huge_integer_duration": b'{"action": "on", "session": "s-1", "until": 1, "duration": 1'
    + b"0" * 400
    + b', "sent": 1}',
    "until_before_sent": _with(until=NOW - 5),
    "off_without_session": b'{"action": "off"}',
    "not_utf8": b"\xff\xfe\x00O\x00N",
    "deeply_nested": b"[" * 100_000 + b"]" * 100_000,
    "megabytes": b'{"action": "on", "session": "' + b"x" * 3_000_000 + b'"}',
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_command_changes_nothing(
    started: tuple[RunningAgent, Observer], payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    running, obs = started
    obs.send_on("bay-1", "s-running", 30.0)
    before = obs.wait_state("bay-1", state="ON")
    caplog.clear()
    mark = obs.mark()
    with caplog.at_level(logging.WARNING, logger="pi_mqtt_relay"):
        obs.send("bay-1", payload)
        report = obs.wait_state("bay-1", since=mark)
    assert report["reason"] == "rejected_malformed"
    assert report["state"] == "ON"
    assert report["session"] == "s-running"
    assert report["until"] == before["until"]
    warnings = [r for r in caplog.records if "rejected_malformed" in r.getMessage()]
    assert len(warnings) == 1
    assert running.is_on("bay-1")
    assert len(running.on_periods("bay-1")) == 1
    assert running.on_periods("bay-2") == []


def test_a_burst_of_bad_input_leaves_the_session_on_time(
    started: tuple[RunningAgent, Observer],
) -> None:
    running, obs = started
    obs.send_on("bay-1", "s-burst", 1.0)
    obs.wait_state("bay-1", state="ON")
    mark = obs.mark()
    for payload in MALFORMED.values():
        obs.send("bay-1", payload)
        obs.send("bay-2", payload)
    reports = obs.states("bay-1", since=mark) + obs.states("bay-2", since=mark)
    assert {r["reason"] for r in reports} <= {"rejected_malformed", "deadline"}
    obs.wait_state("bay-1", since=mark, reason="deadline")
    running.wait_off("bay-1")
    [period] = running.on_periods("bay-1")
    assert abs(period - 1.0) < TOLERANCE_S
    assert running.on_periods("bay-2") == []


REFUSED = {
    "absurd_duration": (_with(duration=1e12, until=NOW + 1e12), "rejected_too_long"),
    "longer_than_cap": (_with(duration=310, until=NOW + 310), "rejected_too_long"),
    "until_too_far_ahead": (_with(duration=10, until=time.time() + 10_000), "rejected_too_long"),
    "until_in_the_past": (_with(sent=NOW - 300, until=NOW - 100, duration=200), "rejected_expired"),
}


@pytest.mark.parametrize(("payload", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_unusable_on_is_refused(
    started: tuple[RunningAgent, Observer], payload: bytes, reason: str
) -> None:
    running, obs = started
    mark = obs.mark()
    obs.send("bay-2", payload)
    report = obs.wait_state("bay-2", since=mark)
    assert report == {
        "state": "OFF",
        "session": None,
        "until": None,
        "remaining": 0,
        "reason": reason,
    }
    time.sleep(0.2)
    assert running.on_periods("bay-2") == []


def test_unknown_bay_is_logged_and_the_agent_carries_on(
    started: tuple[RunningAgent, Observer], caplog: pytest.LogCaptureFixture
) -> None:
    running, obs = started
    mark = obs.mark()
    with caplog.at_level(logging.WARNING, logger="pi_mqtt_relay"):
        obs.send("bay-9", GOOD)
        deadline = time.monotonic() + 5
        while not any("rejected_unknown_bay" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "unknown bay was not logged"
            time.sleep(0.01)
    assert obs.states("bay-1", since=mark) == []
    assert obs.states("bay-2", since=mark) == []
    assert obs.states("bay-9", since=mark) == []
    # Still alive and obeying.
    obs.send_on("bay-1", "s-after", 1.0)
    assert obs.wait_state("bay-1", since=mark)["state"] == "ON"
    assert running.is_on("bay-1")
