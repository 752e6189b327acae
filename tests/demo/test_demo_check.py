"""``scripts/demo --check``: the whole stack, started as a person would, serves a customer.

The customer's way: the QR code the dashboard shows, the bay page, Pay, the checkout, the
session page, the bay off at the end; Bay 2's dynamic code; energy bought per kWh at Bay 2
(metered by the agent's mock meter) until the vehicle is full, and its refund; a refunded
start.

It runs Home Assistant, a broker, the relay agent and the Razorpay stand-in as real processes
on 127.0.0.1, in a folder of its own (so a demo someone has running is left alone), and takes
a little over a minute: the shortest plan is 1 minute and its deadline is waited for.
Only the floor line's run (``scripts/test``'s last) collects ``tests/demo``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.timeout(600)
def test_demo_check_passes(tmp_path: Path, socket_enabled: None) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # scripts/demo's own entry in this venv: scripts/demo would run scripts/setup first, which
    # scripts/test has run already (and which must not reinstall a venv a test runs in).
    result = subprocess.run(
        [sys.executable, "-m", "devtools.demo", "--check", "--dir", str(tmp_path / "demo")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for line in (
        "onboarded: owner 'owner' created",
        "discovered agent 'Demo kiosk': bays bay-1, bay-2 added",
        "bay-1: plans p1, pm, p30; a printed QR code",
        "bay-2: plans p1, p30, kwh; a dynamic QR code on its display; metered",
        "[ok] the dashboard's QR code of bay-1 opens its bay page",
        "[ok] Pay for pm minutes=1 moves on to the checkout",
        "[ok] the checkout sends the customer back to the session page",
        "[ok] agent: bay-1 ON",
        "[ok] the session page says charging and counts down",
        "[ok] agent: bay-1 OFF (",
        "[ok] the session page says ended",
        "[ok] owner sees revenue",
        "[ok] export_sessions lists it",
        "[ok] its QR code opens its bay page with a one-time password, which sells",
        "[ok] its bay page opened without the code sells nothing",
        "[ok] the dashboard's QR code of bay-2 opens its bay page",
        "[ok] Pay for kwh amount=10 moves on to the checkout",
        "[ok] agent: bay-2 ON, metered",
        "[ok] the session page shows ",
        "[ok] agent: bay-2 OFF (vehicle_full) after ",
        "[ok] refund at the stand-in: ",
        "[ok] the session page says Vehicle full — ₹",
        "[ok] owner sees sensor.bay_2_energy_sold ",
        "[ok] agent stopped; sensor.bay_1_status = offline, the bay page says out of order",
        "[ok] refund at the stand-in",
        "[ok] the session page says refund_",
        "==> check passed",
    ):
        assert line in out, out
    assert "FAIL" not in out, out
    stopped = re.search(r"no process left, ports ([\d, ]+) closed", out)
    assert stopped, out
    ports = [int(p) for p in stopped.group(1).split(", ")]
    assert not any(_listening(port) for port in ports)
