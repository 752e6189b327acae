"""``scripts/demo --check``: the whole stack, started as a person would, serves a customer.

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
    result = subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--check", "--dir", str(tmp_path / "demo")],
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
        "[ok] agent: bay-1 ON",
        "[ok] agent: bay-1 OFF (",
        "[ok] owner sees revenue",
        "[ok] export_sessions lists it",
        "[ok] refund at the stand-in",
        "==> check passed",
    ):
        assert line in out, out
    assert "FAIL" not in out, out
    stopped = re.search(r"no process left, ports ([\d, ]+) closed", out)
    assert stopped, out
    ports = [int(p) for p in stopped.group(1).split(", ")]
    assert not any(_listening(port) for port in ports)
