"""The real relay agent as its own process (``agent_pinlog.py``: ``pi-mqtt-relay --mock-gpio``).

The agent runs on its own interpreter (Python 3.11 when ``.venv-agent311`` is there, as on
Raspberry Pi OS bookworm) with this checkout's ``pi_mqtt_relay`` first on its path. Its mock
pins report every change on stdout; a reader thread keeps them as ``(time, pin, state)``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.stats import ProcStats

ROOT = Path(__file__).resolve().parents[1]
PINS = (17, 27, 22, 23, 24, 25, 5, 6, 12, 13, 16, 19, 20, 21, 26, 4)


def agent_python() -> str:
    """``$QR_BENCH_AGENT_PYTHON``, else the checkout's 3.11 venv, else this interpreter."""
    if env := os.environ.get("QR_BENCH_AGENT_PYTHON"):
        return env
    for candidate in (ROOT / ".venv-agent311" / "bin" / "python",):
        if candidate.exists():
            return str(candidate)
    import sys  # noqa: PLC0415

    return sys.executable


def write_agent_config(
    path: Path, port: int, node: str, bays: list[str], state_file: Path
) -> dict[str, int]:
    """An agent.yaml for ``bays`` (active high, so powered is high); return bay → pin."""
    pins = dict(zip(bays, PINS, strict=False))
    path.write_text(
        yaml.safe_dump(
            {
                "broker": {"host": "127.0.0.1", "port": port, "keepalive": 30},
                "node": {"id": node, "name": node},
                "state_file": str(state_file),
                "max_session_s": 14400,
                "bays": [
                    {"id": bay, "name": bay, "pin": pin, "active_high": True}
                    for bay, pin in pins.items()
                ],
            }
        )
    )
    return pins


class AgentProcess:
    """``pi-mqtt-relay --mock-gpio --config <path>`` with its pin changes read back."""

    def __init__(
        self, config: Path, log: Path, python: str | None = None, *, nodelay: bool = False
    ) -> None:
        self.config = config
        self.nodelay = nodelay
        self.log = log
        self.python = python or agent_python()
        self.proc: subprocess.Popen[bytes] | None = None
        self.changes: list[tuple[float, int, int]] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None

    def start(self) -> AgentProcess:
        """Start it (the caller waits for its ``online``)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT / "pi_mqtt_relay" / "src")
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("QR_BENCH_AGENT_NODELAY", None)
        if self.nodelay:
            env["QR_BENCH_AGENT_NODELAY"] = "1"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.python,
                    str(Path(__file__).with_name("agent_pinlog.py")),
                    "--mock-gpio",
                    "--log-level",
                    "WARNING",
                    "--config",
                    str(self.config),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
            )
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        return self

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.decode().split()
            if len(parts) == 4 and parts[0] == "pin":
                pin = int(parts[1].removeprefix("GPIO"))
                with self._cond:
                    self.changes.append((float(parts[3]), pin, int(parts[2])))
                    self._cond.notify_all()

    @property
    def stats(self) -> ProcStats:
        """Its memory and CPU."""
        assert self.proc is not None
        return ProcStats(self.proc.pid)

    def mark(self) -> int:
        """How many pin changes so far."""
        with self._cond:
            return len(self.changes)

    def wait_pin(self, pin: int, state: int, since: int = 0, timeout: float = 10) -> float:
        """The time of the first change of ``pin`` to ``state`` after change number ``since``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            index = since
            while True:
                while index < len(self.changes):
                    at, changed, value = self.changes[index]
                    if changed == pin and value == state:
                        return at
                    index += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"pin {pin} did not go to {state}")
                self._cond.wait(left)

    def periods(self, pin: int, since: int = 0) -> list[tuple[float, float]]:
        """(on, off) times of ``pin``'s powered periods; a period still running ends at inf."""
        with self._cond:
            changes = [(at, value) for at, p, value in self.changes[since:] if p == pin]
        periods: list[tuple[float, float]] = []
        on: float | None = None
        for at, value in changes:
            if value and on is None:
                on = at
            elif not value and on is not None:
                periods.append((on, at))
                on = None
        if on is not None:
            periods.append((on, float("inf")))
        return periods

    def kill(self, sig: int = signal.SIGKILL) -> float:
        """Send ``sig``, wait for the end; return when it was sent (monotonic)."""
        assert self.proc is not None
        proc, self.proc = self.proc, None
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(30)
        if self._reader is not None:
            self._reader.join(5)
        return sent

    def stop(self) -> None:
        """SIGTERM: relays off, sessions stored, ``offline`` published."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)
        self.proc = None

    def info(self) -> dict[str, Any]:
        """What runs."""
        version = subprocess.run(
            [self.python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return {"python": self.python, "python_version": version, "config": str(self.config)}
