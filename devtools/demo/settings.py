"""The demo's fixed names, ports and accounts; its errors and progress output."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PREFIX = "qr_charging"
NODE = "demo-kiosk"
NODE_NAME = "Demo kiosk"
BAYS = (("bay-1", "Bay 1", 17), ("bay-2", "Bay 2", 27))
# Fixed plans: code, name, minutes, price in rupees.
PLANS = (("p1", "1 minute", 1, 10), ("p30", "30 minutes", 30, 50))
# The per-minute plan: code, name, rupees a minute, fewest and most minutes.
RATE_PLAN = ("pm", "Per minute", 2, 1, 120)
# The per-kWh plan: code, name, rupees a kWh, fewest and most rupees, time cap in minutes.
ENERGY_PLAN = ("kwh", "Per kWh", 20, 10, 500, 240)
# What each bay sells (the first is create_payment_link's default) and whether its display
# shows a dynamic QR code: Bay 1's printed code opens its page; Bay 2 sells only to its screen.
BAY_SETUP = {"bay-1": (("p1", "pm", "p30"), False), "bay-2": (("p1", "p30", "kwh"), True)}
# Bay 2 is metered: the agent's mock meter, a vehicle that draws 2 kW for 9 s (5 Wh), tapers
# off over 1 Wh (about 7 s) and then draws 2 W (full), so a per-kWh session ends as vehicle
# full within about 20 s. The agent reads it every second and reports each Wh, so the session
# page's energy moves while one watches.
METERED_BAY = "bay-2"
MOCK_METER = {"kind": "mock", "power_w": 2000, "taper_at_wh": 5, "taper_wh": 1, "standby_w": 2}
AGENT_METERING = {"meter_poll_s": 1, "report_step_wh": 1}
# Its form's vehicle-full rule: under 10 W, at once (0 minutes' settle), watched from the start
# (0 minutes' grace). The form counts whole minutes; a real bay keeps the defaults (3 and 2).
FULL_RULE = {"full_below_w": 10, "full_settle_min": 0, "full_grace_min": 0}
KEY_ID = "rzp_test_demo"
KEY_SECRET = "demo_key_secret"
WEBHOOK_SECRET = "demo-webhook-secret-4f9c"
OWNER_NAME = "Demo Owner"
OWNER_USERNAME = "owner"
DASHBOARD = "qr-charging"
DEFAULT_PORTS = {"homeassistant": 8123, "broker": 1883, "standin": 8765}
ENTITY_KEYS = (
    ("sensor", "status"),
    ("sensor", "session_end"),
    ("sensor", "revenue"),
    ("sensor", "sessions"),
    ("switch", "charging"),
    ("binary_sensor", "agent"),
    ("image", "payment_qr"),
)
# Only the metered bay has these.
METER_ENTITY_KEYS = (
    ("sensor", "power"),
    ("sensor", "session_energy"),
    ("sensor", "energy_sold"),
)
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


class DemoError(Exception):
    """The demo cannot go on; the message says why."""


class CheckFailed(Exception):
    """The customer journey of ``--check`` did not go as it should."""


def say(text: str) -> None:
    """Progress, on stdout as it happens."""
    print(text, flush=True)


@contextlib.asynccontextmanager
async def step(what: str) -> AsyncIterator[None]:
    """Print what starts, then how long it took."""
    say(f"==> {what} ...")
    start = time.monotonic()
    yield
    say(f"    done in {time.monotonic() - start:.1f} s")
