"""A real Home Assistant process for the benchmarks: ``python -m homeassistant -c <tmp>``.

The configuration folder is written before the start: ``configuration.yaml`` (HTTP on
127.0.0.1, the REST API, onboarding, the probe), ``.storage/core.config_entries`` with an MQTT
entry for the benchmark's Mosquitto and a qr_charging entry (account, plans and bays as
subentries), and ``custom_components`` with qr_charging (a link to this checkout's), the probe
and a headless frontend stand-in. The owner is made through the onboarding API, and their
token signs every REST call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
WEBHOOK_ID = "razorpay-bench-hook"
WEBHOOK_SECRET = "whsec-bench-secret"  # 18 characters: the config flow wants 12 or more
CLIENT_ID_PATH = "/"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PlanSpec:
    """A plan subentry; ``minutes`` may be a fraction here (the config flow takes whole ones)."""

    code: str
    minutes: float
    price_paise: int

    def subentry(self) -> dict[str, Any]:
        """As stored in the config entry."""
        return {
            "data": {
                "code": self.code,
                "name": self.code,
                "minutes": self.minutes,
                "price_paise": self.price_paise,
            },
            "subentry_id": f"plan{self.code}".ljust(26, "0")[:26],
            "subentry_type": "plan",
            "title": self.code,
            "unique_id": self.code,
        }


@dataclass
class BaySpec:
    """A bay on an MQTT agent's node."""

    bay_id: str
    node: str
    plans: list[str]
    max_minutes: int = 240

    def subentry(self) -> dict[str, Any]:
        """As stored in the config entry."""
        return {
            "data": {
                "bay_id": self.bay_id,
                "name": self.bay_id.replace("-", " ").title(),
                "plans": self.plans,
                "driver": "mqtt",
                "node": self.node,
                "agent_bay": self.bay_id,
                "prefix": "qr_charging",
                "switch_entity": None,
                "default_minutes": 30,
                "max_minutes": self.max_minutes,
            },
            "subentry_id": f"bay{self.bay_id}".replace("-", "").ljust(26, "0")[:26],
            "subentry_type": "bay",
            "title": self.bay_id,
            "unique_id": self.bay_id,
        }


@dataclass
class Account:
    """The qr_charging entry to write."""

    key_id: str
    key_secret: str
    api_base_url: str
    plans: list[PlanSpec]
    bays: list[BaySpec]
    entry_id: str = "01QRCHARGINGBENCH000000001"
    disabled: bool = False
    options: dict[str, Any] = field(
        default_factory=lambda: {"ack_timeout": 20, "auto_refund": True}
    )


def _entry(domain: str, entry_id: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "created_at": now,
        "data": data,
        "discovery_keys": {},
        "disabled_by": None,
        "domain": domain,
        "entry_id": entry_id,
        "minor_version": 1,
        "modified_at": now,
        "options": {},
        "pref_disable_new_entities": False,
        "pref_disable_polling": False,
        "source": "user",
        "subentries": [],
        "title": domain,
        "unique_id": None,
        "version": 1,
    } | extra


class HomeAssistantProcess:
    """One Home Assistant process on a configuration folder of its own."""

    def __init__(self, workdir: Path, *, python: str = sys.executable, chains: bool = True) -> None:
        self.dir = workdir
        self.python = python
        self.chains = chains
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: aiohttp.ClientSession | None = None
        self.token = ""
        self._refresh_token = ""

    @property
    def storage(self) -> Path:
        """``.storage`` of the configuration folder."""
        return self.dir / ".storage"

    def db_path(self, account: Account) -> Path:
        """Where the account's ledger database lives."""
        return self.storage / f"qr_charging.{account.entry_id}.db"

    def write_config(self, mqtt_port: int, account: Account) -> None:
        """Write configuration.yaml, the config entries and the custom components."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(exist_ok=True)
        (self.dir / "configuration.yaml").write_text(
            "homeassistant:\n"
            "  name: qr_charging bench\n"
            "  latitude: 12.97\n  longitude: 77.59\n  elevation: 900\n"
            "  unit_system: metric\n  time_zone: Asia/Kolkata\n  country: IN\n"
            "  currency: INR\n"
            f"  internal_url: {self.base}\n"
            "http:\n"
            "  server_host: 127.0.0.1\n"
            f"  server_port: {self.port}\n"
            "api:\n"
            "onboarding:\n"
            "logger:\n  default: warning\n"
            f"bench_probe:\n  chains: {str(self.chains).lower()}\n"
        )
        qr = _entry(
            "qr_charging",
            account.entry_id,
            {
                "key_id": account.key_id,
                "key_secret": account.key_secret,
                "webhook_secret": WEBHOOK_SECRET,
                "api_base_url": account.api_base_url,
                "webhook_id": WEBHOOK_ID,
                "cloudhook": False,
            },
            title=account.key_id,
            unique_id=account.key_id,
            options=account.options,
            disabled_by="user" if account.disabled else None,
            subentries=[p.subentry() for p in account.plans] + [b.subentry() for b in account.bays],
        )
        mqtt = _entry(
            "mqtt",
            "01QRCHARGINGBENCHMQTT00001",
            {"broker": "127.0.0.1", "port": mqtt_port},
            minor_version=2,
            title="127.0.0.1",
        )
        (self.storage / "core.config_entries").write_text(
            json.dumps(
                {
                    "version": 1,
                    "minor_version": 5,
                    "key": "core.config_entries",
                    "data": {"entries": [mqtt, qr]},
                },
                indent=1,
            )
        )
        components = self.dir / "custom_components"
        components.mkdir(exist_ok=True)
        link = components / "qr_charging"
        if not link.exists():
            link.symlink_to(ROOT / "custom_components" / "qr_charging", target_is_directory=True)
        for name in ("bench_probe", "frontend"):
            shutil.copytree(HERE / "ha_components" / name, components / name, dirs_exist_ok=True)
        shutil.copy(HERE / "loop_probe.py", components / "bench_probe" / "loop_probe.py")
        if extra := os.environ.get("QR_BENCH_EXTRA_COMPONENT"):
            # A diagnostic component of one's own (e.g. timestamps at chosen calls).
            shutil.copytree(extra, components / Path(extra).name, dirs_exist_ok=True)
            with (self.dir / "configuration.yaml").open("a") as config:
                config.write(f"{Path(extra).name}:\n")

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self, within: float = 180) -> float:
        """Start and make the owner; return the seconds until the HTTP API answered."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        started = time.monotonic()
        with (self.dir / "stdout.log").open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - started, not waited for
                [self.python, "-m", "homeassistant", "-c", str(self.dir), "--skip-pip"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                # ``-m`` puts the working directory first on sys.path: not this checkout's
                # ``custom_components``, which would hide the configuration folder's.
                cwd=self.dir,
                start_new_session=True,
            )
        self.session = aiohttp.ClientSession(
            self.base, connector=aiohttp.TCPConnector(limit=64, force_close=False)
        )
        deadline = started + within
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"Home Assistant exited ({self.proc.returncode}); see {self.dir}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with self.session.get("/api/onboarding") as response:
                    if response.status == 200:
                        break
            if time.monotonic() > deadline:
                raise TimeoutError(f"Home Assistant did not answer in {within} s; see {self.dir}")
            await asyncio.sleep(0.1)
        ready = time.monotonic() - started
        await self._onboard()
        # Integrations may still be setting up once the API answers: wait for the probe.
        while True:
            async with self.session.get("/api/bench_probe/bays", headers=self.headers) as answer:
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the benchmark probe did not load; see {self.dir}")
            await asyncio.sleep(0.1)
        return ready

    async def _onboard(self) -> None:
        assert self.session is not None
        client_id = self.base + CLIENT_ID_PATH
        async with self.session.post(
            "/api/onboarding/users",
            json={
                "client_id": client_id,
                "name": "Bench Owner",
                "username": "bench",
                "password": "bench-owner-password",
                "language": "en",
            },
        ) as response:
            response.raise_for_status()
            code = (await response.json())["auth_code"]
        await self._token(
            {"grant_type": "authorization_code", "code": code, "client_id": client_id}
        )

    async def _token(self, form: dict[str, str]) -> None:
        assert self.session is not None
        async with self.session.post("/auth/token", data=form) as response:
            response.raise_for_status()
            tokens = await response.json()
        self.token = tokens["access_token"]
        self._refresh_token = tokens.get("refresh_token", self._refresh_token)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 60 s."""
        if self.session is not None:
            await self.session.close()
            self.session = None
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.get_running_loop().run_in_executor(None, proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.proc is not None
        return self.proc.pid

    # -- REST ------------------------------------------------------------------------------------

    @property
    def headers(self) -> dict[str, str]:
        """The owner's authorisation."""
        return {"Authorization": f"Bearer {self.token}"}

    async def request(self, method: str, path: str, payload: Any = None) -> Any:
        """An authenticated call; the JSON answer (a fresh token first when this one expired)."""
        assert self.session is not None
        for attempt in range(2):
            async with self.session.request(
                method, path, json=payload, headers=self.headers
            ) as response:
                if response.status == 401 and attempt == 0 and self._refresh_token:
                    await self._token(
                        {
                            "grant_type": "refresh_token",
                            "refresh_token": self._refresh_token,
                            "client_id": self.base + CLIENT_ID_PATH,
                        }
                    )
                    continue
                if response.status >= 400:
                    text = await response.text()
                    raise RuntimeError(f"{method} {path}: {response.status} {text[:500]}")
                return await response.json()
        raise RuntimeError("unreachable")

    async def action(self, domain: str, service: str, data: dict[str, Any]) -> Any:
        """Call an action and return its response data."""
        answer = await self.request(
            "POST", f"/api/services/{domain}/{service}?return_response", data
        )
        return answer["service_response"]

    async def bays(self) -> dict[str, Any]:
        """The probe's view of the entries and bays."""
        return dict(await self.request("GET", "/api/bench_probe/bays"))

    async def bay_status(self, bay: str) -> str:
        """A bay's status as the probe sees it."""
        return str((await self.bays())["bays"][bay]["status"])

    async def wait_bay_status(self, bay: str, status: str, within: float = 10) -> None:
        """Wait until ``bay`` has this status (polled every 5 ms)."""
        deadline = time.monotonic() + within
        while (await self.bay_status(bay)) != status:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{bay} not {status}; see {self.dir}")
            await asyncio.sleep(0.005)

    async def blocks(self, *, reset: bool = False) -> dict[str, Any]:
        """The probe's loop blocks (and reset them)."""
        return dict(
            await self.request("GET", "/api/bench_probe/blocks" + ("?reset=1" if reset else ""))
        )

    async def wait_bays(
        self, count: int, within: float = 60, *, online: bool = True
    ) -> dict[str, Any]:
        """Wait until ``count`` bays are loaded (and online)."""
        deadline = time.monotonic() + within
        while True:
            bays = (await self.bays())["bays"]
            ready = [b for b in bays.values() if b["online"] or not online]
            if len(ready) >= count:
                return dict(bays)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ready)} of {count} bays ready; see {self.dir}")
            await asyncio.sleep(0.1)

    async def changes(self, since: int = 0, *, watch: str | None = None) -> tuple[list[Any], int]:
        """State changes the probe recorded since ``since`` and the count so far."""
        query = f"?since={since}" + (f"&watch={watch}" if watch is not None else "")
        answer = await self.request("GET", "/api/bench_probe/changes" + query)
        return list(answer["changes"]), int(answer["total"])

    async def mqtt_nodelay(self) -> None:
        """TCP_NODELAY on Home Assistant's MQTT socket (the probe sets it)."""
        await self.request("POST", "/api/bench_probe/mqtt_nodelay")

    async def collect_garbage(self) -> None:
        """A full collection in Home Assistant (before reading its memory)."""
        await self.request("POST", "/api/bench_probe/gc")

    async def enable(self, entry_id: str) -> dict[str, Any]:
        """Enable a disabled entry (which sets it up); the probe's timing of it."""
        return dict(await self.request("POST", "/api/bench_probe/enable", {"entry_id": entry_id}))
