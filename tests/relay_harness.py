"""The real relay agent on mock pins that remember when they switched, and for which session.

Shared by the agent's tests and the integration's fault schedules. Nothing here plays the
agent: ``pi_mqtt_relay``'s own ``Agent`` runs in-process; only its pins are gpiozero's
``MockFactory`` pins that also note the wall-clock time of each change, and its relays note
which session the agent was powering when it switched them (read from the agent at that
moment), so a pin's history can be told session by session.

A *crash* is emulated as a SIGKILL would leave things: the MQTT connection drops without a
word (the broker then publishes the agent's last will), the deadline thread is gone and the
pins stay at their last level until the next start claims them (off) and resumes what the
state file holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

from pi_mqtt_relay.agent import Agent
from pi_mqtt_relay.config import AgentConfig, BayConfig
from pi_mqtt_relay.relays import Relays


class RecordingPin(MockPin):  # type: ignore[misc]
    """A mock pin that keeps ``(time.time(), state)`` for every change of its level."""

    def __init__(self, factory: Any, info: Any) -> None:
        self.history: list[tuple[float, bool]] = []
        super().__init__(factory, info)

    def _change_state(self, value: bool) -> bool:
        changed = bool(super()._change_state(value))
        if changed:
            self.history.append((time.time(), bool(value)))
        return changed


def recording_factory() -> MockFactory:
    """A MockFactory whose pins are :class:`RecordingPin`."""
    return MockFactory(pin_class=RecordingPin)


@dataclass(frozen=True)
class Label:
    """At ``at``, the agent switched ``bay`` on for ``session`` (None: off)."""

    at: float
    bay: str
    session: str | None


class LabelledRelays(Relays):
    """The agent's relays, noting which session each switch-on was for."""

    def __init__(self, bays: Iterable[BayConfig], factory: MockFactory) -> None:
        super().__init__(bays, factory)
        self.labels: list[Label] = []
        self.session_of: Callable[[str], str | None] = lambda bay: None

    def on(self, bay_id: str) -> None:
        """Note the session first: the pin's rising edge follows this label."""
        self.labels.append(Label(time.time(), bay_id, self.session_of(bay_id)))
        super().on(bay_id)

    def release_without_switching(self) -> None:
        """Let go of the pins as a killed process does: each stays at its level."""
        for device in self._devices.values():
            device.pin_factory.release_all(device)
            # gpiozero closes a device when it is collected, which would drive its pin low.
            device._pin = None
        self._devices.clear()


@dataclass
class OnPeriod:
    """A pin was high from ``start`` to ``end`` (wall clock) for ``session``."""

    bay: str
    session: str | None
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class CrashableAgent:
    """The real agent, started, stopped cleanly or crashed, always on the same pins and file."""

    config: AgentConfig
    factory: MockFactory = field(default_factory=recording_factory)
    running: Agent | None = None
    relays: LabelledRelays | None = None
    labels: list[Label] = field(default_factory=list)
    # [down, up, how] of every stop ("stop") or crash ("crash"); up is None while down.
    outages: list[list[Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Blocking (run it in an executor from an event loop)."""
        with self._lock:
            assert self.running is None
            relays = LabelledRelays(self.config.bays, self.factory)
            agent = Agent(
                self.config, relays=relays, clock_synced=lambda: True, pin_factory=self.factory
            )
            relays.session_of = lambda bay: _session_of(agent, bay)
            relays.labels = self.labels
            agent.start()
            self.running, self.relays = agent, relays
            if self.outages and self.outages[-1][1] is None:
                self.outages[-1][1] = time.time()

    def stop(self) -> None:
        """A clean stop (SIGTERM): relays off, sessions stored, ``offline``."""
        with self._lock:
            agent, self.running, self.relays = self.running, None, None
            if agent is not None:
                self.outages.append([time.time(), None, "stop"])
                agent.stop()

    def crash(self) -> None:
        """As SIGKILL: no goodbye, no relay switched, the pins keep their level."""
        with self._lock:
            agent, relays = self.running, self.relays
            self.running = self.relays = None
            if agent is None or relays is None:
                return
            self.outages.append([time.time(), None, "crash"])
            client = agent._link._client  # what the kernel does to a killed process
            client.loop_stop()
            sock = client.socket()
            if sock is not None:
                sock.close()  # the broker sees the connection drop and publishes the last will
            with agent._lock:
                agent._stopping = True  # the deadline thread dies with the process
                agent._lock.notify_all()
            if agent._thread is not None:
                agent._thread.join()
            relays.release_without_switching()

    @property
    def up(self) -> bool:
        return self.running is not None

    def pin(self, bay: str) -> RecordingPin:
        number = next(b.pin for b in self.config.bays if b.id == bay)
        pin: RecordingPin = self.factory.pin(number)
        return pin

    def powered(self, bay: str) -> bool:
        """Whether the bay's relay is energised (active high)."""
        return bool(self.pin(bay).state)

    def on_periods(self, now: float | None = None) -> list[OnPeriod]:
        """Every period a relay was energised, with the session it was switched on for."""
        now = time.time() if now is None else now
        periods: list[OnPeriod] = []
        for bay in self.config.bays:
            labels = [label for label in self.labels if label.bay == bay.id]
            start: float | None = None
            for at, state in self.pin(bay.id).history:
                if state and start is None:
                    start = at
                elif not state and start is not None:
                    periods.append(OnPeriod(bay.id, _label_at(labels, start), start, at))
                    start = None
            if start is not None:
                periods.append(OnPeriod(bay.id, _label_at(labels, start), start, now))
        return periods


def _session_of(agent: Agent, bay: str) -> str | None:
    """The session the agent powers the bay for (its own record, read as it switches)."""
    active = agent._active.get(bay)  # replaced on every change: read it now
    return active.session if active is not None else None


def _label_at(labels: list[Label], at: float) -> str | None:
    """The session of the last switch-on noted at or before ``at``."""
    before = [label for label in labels if label.at <= at]
    return before[-1].session if before else None


def agent_yaml(
    state_file: Path, port: int, node: str, bays: list[tuple[str, int]], **extra: Any
) -> dict[str, Any]:
    """An agent.yaml for these bays (id, pin), all active high."""
    return {
        "broker": {"host": "127.0.0.1", "port": port, "keepalive": 5},
        "node": {"id": node, "name": node},
        "state_file": str(state_file),
        "max_session_s": 14400,
        "bays": [{"id": bay, "name": bay, "pin": pin} for bay, pin in bays],
        **extra,
    }
