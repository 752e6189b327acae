"""The agent in-process without a broker: a link that keeps what it would publish, a clock
moved by hand, and the deadline thread's work done on demand.

Shared by test_fuzz.py and test_metered_agent.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pi_mqtt_relay.agent import Agent
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
