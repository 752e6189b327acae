"""The agent in-process without a broker: a link that keeps what it would publish, a clock
moved by hand, and the deadline thread's work done on demand.

Shared by test_fuzz.py, test_metered_agent.py and test_metered_restarts.py; the metered
rig runs one metered bay (bay-1, a mock or stub meter) and one without a meter (bay-2).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from pi_mqtt_relay.agent import Agent
from pi_mqtt_relay.config import parse_config
from pi_mqtt_relay.meters import Meter, MeterFault, Reading
from pi_mqtt_relay.mqtt_link import MqttLink
from pi_mqtt_relay.sessions import Now, expire

WALL = 1_800_000_000.0
NOW = Now(mono=1000.0, wall=WALL)


class KeptLink(MqttLink):
    """The agent's MQTT link, keeping what it would publish instead of sending it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sent: list[tuple[str, Any]] = []

    def publish(self, topic: str, payload: str | bytes, *, retain: bool) -> None:
        self.sent.append((topic, json.loads(payload) if payload else None))


@dataclass
class Clock:
    now: Now = field(default_factory=lambda: NOW)

    def __call__(self) -> Now:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now = Now(self.now.mono + seconds, self.now.wall + seconds)


def keep_deadlines(agent: Agent, clock: Clock) -> None:
    """What the agent's deadline thread (not started here) has done by now: expired sessions
    are switched off, through the agent's own rule and its own way of applying a decision."""
    with agent._lock:
        for bay, active in dict(agent._active).items():
            decision = expire(active, clock.now)
            if decision is not None:
                agent._apply(bay, decision, clock.now)


@dataclass
class StubMeter:
    """A meter that answers what the test sets (None: no answer)."""

    reading: Reading | None = None

    def read(self, mono: float) -> Reading:
        if self.reading is None:
            raise MeterFault("no answer")
        return self.reading

    def load_switched(self, on: bool, mono: float) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class Rig:
    agent: Agent
    link: KeptLink
    clock: Clock
    factory: MockFactory
    state_file: Path

    def states(self, bay: str = "bay-1") -> list[dict[str, Any]]:
        return [p for t, p in self.link.sent if t.endswith(f"/{bay}/state")]

    def on(self, session: str, energy_wh: float | None, seconds: float = 600, **extra: Any) -> None:
        sent = self.clock.now.wall
        command: dict[str, Any] = {
            "action": "on",
            "session": session,
            "until": sent + seconds,
            "duration": seconds,
            "sent": sent,
            **extra,
        }
        if energy_wh is not None:
            command["energy_wh"] = energy_wh
        self.agent.handle_command("bay-1", json.dumps(command).encode())

    def poll(self, seconds: float = 0.0) -> None:
        """Move the clock, then do what the deadline and meter threads would have done."""
        self.clock.tick(seconds)
        keep_deadlines(self.agent, self.clock)
        self.agent.poll_meters()

    def powered(self) -> bool:
        return bool(self.factory.pin(17).state)


@contextmanager
def metered_rig(
    tmp_path: Path, meter: Meter, *, synced: bool = True, **settings: Any
) -> Iterator[Rig]:
    config = parse_config(
        {
            "broker": {"host": "127.0.0.1"},
            "node": {"id": "metered"},
            "state_file": str(tmp_path / "state.json"),
            "max_session_s": 3600,
            "bays": [
                {"id": "bay-1", "pin": 17, "meter": {"kind": "mock", "max_power_w": 3680}},
                {"id": "bay-2", "pin": 27},
            ],
            **settings,
        }
    )
    factory = MockFactory()
    links: list[KeptLink] = []
    clock = Clock()

    def link(*args: Any) -> KeptLink:
        links.append(KeptLink(*args))
        return links[-1]

    agent = Agent(
        config,
        pin_factory=factory,
        clock=clock,
        boot_id="boot",
        clock_synced=lambda: synced,
        link=link,
        meters={"bay-1": meter},
    )
    try:
        yield Rig(agent, links[0], clock, factory, tmp_path / "state.json")
    finally:
        agent._relays.close()
