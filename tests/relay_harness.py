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

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

from pi_mqtt_relay.agent import Agent
from pi_mqtt_relay.config import AgentConfig, BayConfig, load_config
from pi_mqtt_relay.relays import Relays


class RecordingPin(MockPin):  # type: ignore[misc]
    """A mock pin that keeps ``(time.time(), state)`` for every change of its level."""

    # In an agent process: where each change is also written as it happens.
    sink: Callable[[dict[str, Any]], None] | None = None

    def __init__(self, factory: Any, info: Any) -> None:
        self.history: list[tuple[float, bool]] = []
        super().__init__(factory, info)

    def _change_state(self, value: bool) -> bool:
        changed = bool(super()._change_state(value))
        if changed:
            self.history.append((time.time(), bool(value)))
            if RecordingPin.sink is not None:
                RecordingPin.sink({"at": self.history[-1][0], "pin": self.info.name, "on": value})
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
        if RecordingPin.sink is not None:
            label = self.labels[-1]
            RecordingPin.sink({"at": label.at, "bay": bay_id, "session": label.session})
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
            agent._link._end_heartbeat()
            client.loop_stop()
            sock = client.socket()
            if sock is not None:
                sock.close()  # the broker sees the connection drop and publishes the last will
            with agent._lock:
                agent._stopping = True  # the deadline and meter threads die with the process
                agent._lock.notify_all()
            agent._meters_stop.set()
            for thread in agent._threads:
                thread.join()
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
        histories = {bay.id: self.pin(bay.id).history for bay in self.config.bays}
        return on_periods(histories, self.labels, time.time() if now is None else now)


def on_periods(
    histories: dict[str, list[tuple[float, bool]]], labels: list[Label], now: float
) -> list[OnPeriod]:
    """The periods each bay's pin was high, from its history, each with its session's label."""
    periods: list[OnPeriod] = []
    for bay, history in histories.items():
        mine = [label for label in labels if label.bay == bay]
        start: float | None = None
        for at, state in history:
            if state and start is None:
                start = at
            elif not state and start is not None:
                periods.append(OnPeriod(bay, _label_at(mine, start), start, at))
                start = None
        if start is not None:
            periods.append(OnPeriod(bay, _label_at(mine, start), start, now))
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


class ProcessAgent:
    """The agent as a process on recording mock pins, stopped with SIGTERM or killed (SIGKILL).

    ``python -m tests.relay_harness CONFIG PINS_LOG`` runs ``pi_mqtt_relay``'s ``Agent`` as
    the service does (``Agent.run`` until SIGTERM), on mock pins whose every change, and the
    session each switch-on was for, is appended to PINS_LOG as it happens. When the process is
    killed its pins keep their level (as the kernel keeps a GPIO line) until the next start
    claims them, which the log records as the pins going low.
    """

    def __init__(self, config: AgentConfig, config_path: Path, workdir: Path) -> None:
        self.config = config
        self.config_path = config_path
        self.pins_log = workdir / "pins.jsonl"
        self.log = workdir / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.outages: list[list[Any]] = []
        self._starts = 0

    def start(self) -> None:
        """Blocking until the new process holds its pins (run it in an executor)."""
        assert self.proc is None
        self._starts += 1
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.relay_harness", self.config_path, self.pins_log],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).parents[1],
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + 20
        while sum(1 for record in self._records() if "claimed" in record) < self._starts:
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the agent process did not start"
            time.sleep(0.02)
        if self.outages and self.outages[-1][1] is None:
            self.outages[-1][1] = time.time()

    def _end(self, sig: int, how: str) -> None:
        if self.proc is None:
            return
        self.outages.append([time.time(), None, how])
        self.proc.send_signal(sig)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM: relays off, sessions stored, ``offline``."""
        self._end(signal.SIGTERM, "stop")

    def crash(self) -> None:
        """SIGKILL: nothing said, nothing switched; the pins keep their level."""
        self._end(signal.SIGKILL, "crash")

    @property
    def up(self) -> bool:
        return self.proc is not None

    def _records(self) -> list[dict[str, Any]]:
        if not self.pins_log.exists():
            return []
        lines = self.pins_log.read_text().splitlines()
        # A line cut short by SIGKILL is not a record.
        return [json.loads(line) for line in lines if line.endswith("}")]

    def _histories(self) -> dict[str, list[tuple[float, bool]]]:
        names = {f"GPIO{bay.pin}": bay.id for bay in self.config.bays}
        histories: dict[str, list[tuple[float, bool]]] = {bay.id: [] for bay in self.config.bays}
        for record in self._records():
            if "claimed" in record:  # a new process drives every pin low as it claims it
                for bay in histories.values():
                    if bay and bay[-1][1]:
                        bay.append((record["at"], False))
            elif "pin" in record:
                history = histories[names[record["pin"]]]
                if not history or history[-1][1] != record["on"]:
                    history.append((record["at"], record["on"]))
        return histories

    @property
    def labels(self) -> list[Label]:
        return [Label(r["at"], r["bay"], r["session"]) for r in self._records() if "bay" in r]

    def powered(self, bay: str) -> bool:
        history = self._histories()[bay]
        return bool(history and history[-1][1])

    def on_periods(self, now: float | None = None) -> list[OnPeriod]:
        return on_periods(self._histories(), self.labels, time.time() if now is None else now)


def _run_process(config_path: str, pins_log: str) -> int:
    """The agent process of :class:`ProcessAgent`."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = load_config(config_path)
    out = Path(pins_log).open("a", encoding="utf-8")  # noqa: SIM115 - open for the whole run

    def write(record: dict[str, Any]) -> None:
        out.write(json.dumps(record) + "\n")
        out.flush()

    RecordingPin.sink = write
    factory = recording_factory()
    relays = LabelledRelays(config.bays, factory)
    agent = Agent(config, relays=relays, clock_synced=lambda: True, pin_factory=factory)
    relays.session_of = lambda bay: _session_of(agent, bay)
    write({"at": time.time(), "claimed": [bay.id for bay in config.bays]})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    agent.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(_run_process(sys.argv[1], sys.argv[2]))
