"""Every benchmark runs, with tiny counts (``python -m benchmarks --smoke`` in the test run).

These prove that the benchmarks work: a real Home Assistant, Mosquitto, the agent and the
Razorpay stand-in all start, talk and stop, and what must hold whatever the speed (every
payment counted once, none lost, every webhook answered) holds. Speed and memory targets are
checked only by ``scripts/bench``, never here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gpiozero", reason="the relay agent's gpiozero is not installed")
pytest.importorskip("pi_mqtt_relay.agent", reason="the relay agent package is not installed")

from benchmarks.__main__ import scenarios
from benchmarks.report import markdown, rows


@pytest.fixture(autouse=True)
def _allow_sockets(request: pytest.FixtureRequest) -> None:
    """The HA test plugin blocks sockets; the benchmarks talk to 127.0.0.1."""
    if request.config.pluginmanager.hasplugin("socket"):
        request.getfixturevalue("socket_enabled")


def _figures(value: Any) -> list[float]:
    """Every number in a result."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _figures(v)]
    if isinstance(value, list):
        return [n for v in value for n in _figures(v)]
    return []


def _run(name: str, tmp_path: Path) -> dict[str, Any]:
    result = scenarios("smoke")[name](tmp_path / name)
    assert "error" not in result
    table = rows({"scenarios": {name: result}})
    assert table
    assert all(row["figure"] and row["target"] for row in table)
    assert not any(math.isnan(n) for n in _figures(result))
    text = markdown(
        {
            "mode": "smoke",
            "started": "now",
            "seconds": 0,
            "machine": {
                "nproc": 1,
                "cpu_model": "cpu",
                "python": "3",
                "agent_python": "3",
                "home_assistant": "ha",
                "mosquitto": "m",
                "loadavg_at_start": [0.0],
            },
            "table": table,
        }
    )
    assert "**missed**" not in text
    return result


def test_ledger(tmp_path: Path) -> None:
    result = _run("ledger", tmp_path)
    assert [(row["sessions"], row["in_memory"]) for row in result["rows"]] == [
        (0, 0),
        (100, 0),
        (1000, 0),
        (0, 140),
    ]


@pytest.mark.parametrize("name", ["pay", "pay_broker_nodelay", "pay_nodelay", "pay_ram"])
def test_pay(name: str, tmp_path: Path) -> None:
    result = _run(name, tmp_path)
    assert result["pay_to_command_ms"]["n"] == result["pay_to_power_ms"]["n"] > 0
    assert result["timing"]["samples"] > 0
    assert result["agent_log_errors"] == 0
    if name == "pay":
        assert result["timing"]["restart"]["served_s"] > 0
        assert result["agent_footprint"]["idle"]["rss_mb"] > 0


def test_history(tmp_path: Path) -> None:
    result = _run("history", tmp_path)
    assert [row["sessions"] for row in result["rows"]] == [0, 100]


@pytest.mark.parametrize("name", ["scale", "scale_nodelay"])
def test_scale(name: str, tmp_path: Path) -> None:
    result = _run(name, tmp_path)
    assert result["report_to_entity_ms"]["n"] == 6
    if name == "scale":
        assert result["entry_state"] == "loaded"
        burst = result["burst"]
        # Whatever the speed: every delivery answered, each payment counted once, none lost.
        assert burst["statuses"] == {200: 40}
        assert burst["outcomes"] == {"new_session": 15, "duplicate": 15, "duplicate_delivery": 10}
        assert (burst["double_starts"], burst["counted_twice"], burst["lost"]) == (0, 0, 0)
        assert burst["ledger"]["refunds"] == 0
        assert burst["ledger"]["sessions_with_wrong_totals"] == 0


def test_pages(tmp_path: Path) -> None:
    result = _run("pages", tmp_path)
    assert result["quiet"]["pay_to_command_ms"]["n"] == result["loaded"]["pay_to_command_ms"]["n"]
    assert result["quiet"]["pay_to_command_ms"]["n"] > 0
    # Whatever the speed: the load was answered, with pages or 429s, never an error.
    statuses = result["load"]["statuses"]
    assert statuses.get(200, 0) > 0
    assert set(statuses) <= {200, 429}


def test_meter(tmp_path: Path) -> None:
    result = _run("meter", tmp_path)
    # Whatever the speed: every session was cut by the agent, and never before its energy.
    assert [row["sessions"] for row in result["rows"]] == [1]
    assert all(row["over_wh"]["min"] >= 0 for row in result["rows"])


def test_metered(tmp_path: Path) -> None:
    result = _run("metered", tmp_path)
    # Whatever the speed: every bay sold energy, and every metered report reached its sensors.
    assert result["bays"] == result["metered_ons"] == result["session_energy_matches"] == 6
    for phase in result["phases"]:
        assert phase["reports"] > 0
        assert phase["unhandled"] == 0
        assert phase["report_to_sensor_ms"]["n"] == phase["reports"]


def test_tax(tmp_path: Path) -> None:
    result = _run("tax", tmp_path)
    # Whatever the speed: every session's invoice, a credit note per refund (one in fifty) and
    # per B2B request (one in twenty, with its own invoice) was exported, and nothing twice.
    sessions = result["sessions"]
    assert result["documents"] == sessions + -(-sessions // 50) + 2 * -(-sessions // 20)
    assert result["rows"]["b2b"] == -(-sessions // 20)
