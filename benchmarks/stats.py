"""Small statistics and process readings shared by the benchmarks (stdlib only)."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between the nearest ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Iterable[float], scale: float = 1000.0) -> dict[str, float]:
    """n, p50, p99, max and mean of ``values`` (seconds) in ms (``scale``), rounded."""
    data = [v * scale for v in values]
    if not data:
        return {"n": 0, "p50": math.nan, "p99": math.nan, "max": math.nan, "mean": math.nan}
    return {
        "n": len(data),
        "p50": round(percentile(data, 50), 3),
        "p99": round(percentile(data, 99), 3),
        "max": round(max(data), 3),
        "mean": round(sum(data) / len(data), 3),
    }


class ProcStats:
    """Memory and CPU time of one process, from ``/proc`` (Linux)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _status(self, key: str) -> float:
        text = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
        return int(match.group(1)) / 1024 if match else math.nan

    def rss_mb(self) -> float:
        """Resident memory now (MiB)."""
        return self._status("VmRSS")

    def peak_rss_mb(self) -> float:
        """The highest resident memory so far (MiB)."""
        return self._status("VmHWM")

    def memory(self) -> dict[str, float]:
        """RSS (the target's measure), PSS and USS (private) now, and the peak RSS, in MiB.

        RSS counts shared library pages whole (libpython, libssl, ...); PSS shares them out
        among the processes that map them; USS is what the process alone holds.
        """
        rollup: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/smaps_rollup").read_text().splitlines()[1:]:
                key, _, value = line.partition(":")
                rollup[key] = int(value.split()[0])
        private = rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)
        return {
            "rss_mb": round(self.rss_mb(), 1),
            "pss_mb": round(rollup.get("Pss", 0) / 1024, 1),
            "uss_mb": round(private / 1024, 1),
            "peak_rss_mb": round(self.peak_rss_mb(), 1),
        }

    def cpu_s(self) -> float:
        """CPU time of all the process's threads so far, in seconds (ns resolution).

        Summed over ``/proc/<pid>/task/*/schedstat``; threads that already ended are counted
        through the process's own ``stat`` (utime + stime, 10 ms ticks) when that is larger.
        """
        total_ns = 0
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                total_ns += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return max(total_ns / 1e9, ticks / os.sysconf("SC_CLK_TCK"))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version_of(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    out = (done.stdout or done.stderr).strip().splitlines()
    return out[0] if out else "unknown"


def machine(agent_python: str, mosquitto: str) -> dict[str, Any]:
    """What the figures were measured on."""
    try:
        from homeassistant.const import __version__ as ha_version  # noqa: PLC0415
    except ImportError:
        ha_version = "not installed"
    load = os.getloadavg()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "agent_python": _version_of(
            [agent_python, "-c", "import platform; print(platform.python_version())"]
        ),
        "home_assistant": ha_version,
        "mosquitto": _version_of([mosquitto, "-h"]).replace("mosquitto version ", ""),
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "argv": " ".join(sys.argv),
        "mosquitto_path": shutil.which(mosquitto) or mosquitto,
    }
