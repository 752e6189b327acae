"""The agent's energy cut-off: how much is delivered past the energy paid for (issue #24).

The real agent runs in-process with its real deadline and meter threads on the real clock,
a mock meter drawing a constant power, and no broker (a link that publishes nowhere). A
metered session is started for ``power * session_s`` of energy; when the agent has switched
the relay off, the meter's counter says what was delivered. The agent checks the energy at
each reading, so the target is to be late by at most one poll's energy
(``power * meter_poll_s``). Several agents (one per power and poll interval) run at once.
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from pi_mqtt_relay.agent import Agent
from pi_mqtt_relay.config import parse_config
from pi_mqtt_relay.meters import ChargingCurve, MockMeter
from pi_mqtt_relay.mqtt_link import MqttLink


@dataclass(frozen=True)
class MeterBenchConfig:
    """Powers and poll intervals to measure, and how many sessions of each."""

    powers_w: tuple[float, ...] = (1000.0, 3680.0)
    polls_s: tuple[float, ...] = (0.5, 2.0)
    # Each session is paid for this many seconds of the power.
    session_s: float = 9.0
    runs: int = 3


DEFAULT = MeterBenchConfig()
SMOKE = MeterBenchConfig(powers_w=(3680.0,), polls_s=(0.2,), session_s=1.0, runs=1)


class NowhereLink(MqttLink):
    """The agent's link without a broker: nothing is sent (HA is not part of the cut-off)."""

    def start(self) -> None:
        """No connection."""

    def stop(self) -> None:
        """No connection."""

    def publish(self, topic: str, payload: str | bytes, *, retain: bool) -> None:
        """Dropped."""


def _session(work: Path, power_w: float, poll_s: float, session_s: float) -> dict[str, float]:
    """One metered session to its energy: paid, delivered and one poll's energy (Wh)."""
    work.mkdir(parents=True, exist_ok=True)
    config = parse_config(
        {
            "broker": {"host": "127.0.0.1"},
            "node": {"id": "bench-meter"},
            "state_file": str(work / "state.json"),
            "bays": [{"id": "bay-1", "pin": 17, "meter": {"kind": "mock"}}],
            "meter_poll_s": poll_s,
        }
    )
    meter = MockMeter(ChargingCurve(power_w=power_w, taper_at_wh=1e9), counter_wh=1000.0)
    agent = Agent(
        config,
        pin_factory=MockFactory(),
        clock_synced=lambda: True,
        link=NowhereLink,
        meters={"bay-1": meter},
    )
    paid = power_w * session_s / 3600.0
    agent.start()
    try:
        # The session starts after the meter's first reading (its count's starting point),
        # as on a running agent, at a random phase of the polls (a whole number of polls
        # after one would always cut a whole poll late).
        time.sleep(poll_s * (1 + random.random()))
        sent = time.time()
        command = {
            "action": "on",
            "session": "s-bench",
            "until": sent + 10 * session_s + 60,
            "duration": 10 * session_s + 60,
            "sent": sent,
            "energy_wh": paid,
        }
        agent.handle_command("bay-1", json.dumps(command).encode())
        deadline = time.monotonic() + 10 * session_s + 30
        while agent._relays.is_on("bay-1"):
            if time.monotonic() > deadline:
                raise RuntimeError("the agent did not cut at the paid energy")
            time.sleep(0.01)
    finally:
        agent.stop()
    return {
        "paid_wh": paid,
        "delivered_wh": meter.counter_wh - 1000.0,
        "poll_wh": power_w * poll_s / 3600.0,
    }


def run(work: Path, config: MeterBenchConfig = DEFAULT) -> dict[str, Any]:
    """Every power and poll interval, ``runs`` sessions each (the combinations at once)."""
    cases = [(power, poll) for power in config.powers_w for poll in config.polls_s]
    found: dict[tuple[float, float], list[dict[str, float]]] = {case: [] for case in cases}
    errors: list[BaseException] = []

    def measure(power: float, poll: float, run: int) -> None:
        try:
            where = work / f"{power:g}W-{poll:g}s-{run}"
            found[power, poll].append(_session(where, power, poll, config.session_s))
        except BaseException as err:  # reported below, in the caller's thread
            errors.append(err)

    for run_index in range(config.runs):
        threads = [
            threading.Thread(target=measure, args=(power, poll, run_index)) for power, poll in cases
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
    rows = []
    for (power, poll), sessions in found.items():
        over = [s["delivered_wh"] - s["paid_wh"] for s in sessions]
        rows.append(
            {
                "power_w": power,
                "poll_s": poll,
                "paid_wh": round(sessions[0]["paid_wh"], 3),
                "poll_wh": round(sessions[0]["poll_wh"], 3),
                "over_wh": {
                    "min": round(min(over), 3),
                    "median": round(statistics.median(over), 3),
                    "max": round(max(over), 3),
                },
                "sessions": len(sessions),
            }
        )
    return {"rows": rows}
