"""The demo's stack: its folder and lock, its configuration files, its processes."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import getpass
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from .homeassistant import HomeAssistant
from .mqtt_watch import MqttWatch
from .processes import Service, pick_port, pid_alive, port_open, wait_for
from .settings import (
    AGENT_METERING,
    BAYS,
    DASHBOARD,
    DEFAULT_PORTS,
    KEY_ID,
    KEY_SECRET,
    METERED_BAY,
    MOCK_METER,
    MOSQUITTO,
    NODE,
    NODE_NAME,
    PREFIX,
    ROOT,
    VENV_BIN,
    DemoError,
    say,
    step,
)


class Stack:
    """The demo's stack: its folder, its configuration files and its processes."""

    def __init__(self, folder: Path, *, broker: str) -> None:
        self.dir = folder
        self.logs = folder / "logs"
        self.ha_dir = folder / "homeassistant"
        self.agent_dir = folder / "agent"
        self.state_path = folder / "demo.json"
        self.state: dict[str, Any] = {}
        self.broker_kind = broker
        self.ports: dict[str, int] = {}
        self.services: dict[str, Service] = {}
        self.crashed: asyncio.Future[tuple[Service, int]] | None = None
        self.watch: MqttWatch | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ha: HomeAssistant | None = None
        self.entities: dict[str, dict[str, str]] = {}
        # Each bay's page_url, poster_url and display_url (the bay_links action's answer).
        self.links: dict[str, dict[str, str]] = {}
        self._lock_file: Any = None
        self._monitors: set[asyncio.Task[None]] = set()

    # -- folder, lock, state --------------------------------------------------------------

    def prepare(self) -> None:
        """Make the folder, take its lock, end what an earlier demo left running."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = (self.dir / "demo.lock").open("a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.seek(0)
            raise DemoError(
                f"a demo is already running in {self.dir} (pid {self._lock_file.read().strip()}); "
                "stop it first (Ctrl-C in its terminal), or use another --dir"
            ) from None
        self._lock_file.truncate(0)
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()
        if self.state_path.exists():
            self.state = json.loads(self.state_path.read_text(encoding="utf-8"))
        self._end_leftovers()

    def save_state(self) -> None:
        """Keep what the next start reuses (ports, the owner's login, the webhook)."""
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.state_path)

    def _end_leftovers(self) -> None:
        """Processes of an earlier demo in this folder that was killed (SIGKILL) outright."""
        ended = []
        for name, pid in self.state.get("pids", {}).items():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(self.dir) in cmdline and pid_alive(pid):
                say(f"==> stopping the {name} (pid {pid}) left over by an earlier demo")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                ended.append(pid)
        deadline = time.monotonic() + 10
        while any(pid_alive(pid) for pid in ended) and time.monotonic() < deadline:
            time.sleep(0.1)  # before the ports are chosen: theirs are about to be free
        self.state["pids"] = {}

    def choose_ports(self) -> None:
        """Last time's ports when free, else the usual ones, else any free ones."""
        previous = self.state.get("ports", {})
        taken: set[int] = set()
        for name, preferred in DEFAULT_PORTS.items():
            self.ports[name] = pick_port(previous.get(name), preferred, taken)
            taken.add(self.ports[name])
        self.state["ports"] = dict(self.ports)
        self.save_state()

    @property
    def ha_url(self) -> str:
        """Home Assistant's address."""
        return f"http://127.0.0.1:{self.ports['homeassistant']}"

    @property
    def standin_url(self) -> str:
        """The Razorpay stand-in's address."""
        return f"http://127.0.0.1:{self.ports['standin']}"

    # -- configuration files ----------------------------------------------------------------

    def write_files(self) -> None:
        """Every process's configuration, written afresh at each start (ports may change)."""
        self.ha_dir.mkdir(parents=True, exist_ok=True)
        custom = self.ha_dir / "custom_components"
        custom.mkdir(exist_ok=True)
        link = custom / "qr_charging"
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link)
            link.symlink_to(ROOT / "custom_components" / "qr_charging")
        ha_port = self.ports["homeassistant"]
        (self.ha_dir / "configuration.yaml").write_text(
            "# Written by scripts/demo at every start; edits are lost.\n"
            + yaml.safe_dump(
                {
                    "homeassistant": {
                        "name": "QR Charging demo",
                        "currency": "INR",
                        "country": "IN",
                        "time_zone": "Asia/Kolkata",
                        "unit_system": "metric",
                        "internal_url": f"http://127.0.0.1:{ha_port}",
                    },
                    "http": {"server_host": "127.0.0.1", "server_port": ha_port},
                    "frontend": {},
                    "config": {},
                    "logger": {
                        "default": "warning",
                        "logs": {"custom_components.qr_charging": "info"},
                    },
                    "lovelace": {
                        "dashboards": {
                            DASHBOARD: {
                                "mode": "yaml",
                                "filename": "qr_charging_dashboard.yaml",
                                "title": "QR Charging",
                                "icon": "mdi:ev-station",
                                "show_in_sidebar": True,
                            }
                        }
                    },
                },
                sort_keys=False,
            ),
            encoding="utf-8",
        )
        dashboard = self.ha_dir / "qr_charging_dashboard.yaml"
        if not dashboard.exists():
            dashboard.write_text(
                yaml.safe_dump({"title": "QR Charging", "views": [{"title": "Bays", "cards": []}]})
            )
        self.agent_dir.mkdir(parents=True, exist_ok=True)
        (self.agent_dir / "agent.yaml").write_text(
            "# Written by scripts/demo at every start; edits are lost.\n"
            + yaml.safe_dump(
                {
                    "broker": {"host": "127.0.0.1", "port": self.ports["broker"], "keepalive": 10},
                    "node": {"id": NODE, "name": NODE_NAME},
                    "topic_prefix": PREFIX,
                    "max_session_s": 14400,
                    "state_file": str(self.agent_dir / "state.json"),
                    **AGENT_METERING,
                    "bays": [
                        {"id": bay, "name": name, "pin": pin, "active_high": True}
                        | ({"meter": MOCK_METER} if bay == METERED_BAY else {})
                        for bay, name, pin in BAYS
                    ],
                },
                sort_keys=False,
            ),
            encoding="utf-8",
        )
        broker_dir = self.dir / "broker"
        broker_dir.mkdir(exist_ok=True)
        (broker_dir / "mosquitto.conf").write_text(
            f"listener {self.ports['broker']} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stdout\nlog_type error\nlog_type warning\nlog_type notice\n"
            # Run as root, Mosquitto would switch to its own user, which would also cancel
            # the signal that ends it with the demo; this keeps it as whoever runs the demo.
            f"user {getpass.getuser()}\n"
        )

    def repoint_entries(self) -> None:
        """Ports changed since HA was set up: point its MQTT and Razorpay entries at them.

        Done in HA's storage while HA is stopped (the MQTT integration has no reconfigure step).
        """
        path = self.ha_dir / ".storage" / "core.config_entries"
        if not path.exists():
            return
        data = json.loads(path.read_text(encoding="utf-8"))
        changed = False
        for entry in data["data"]["entries"]:
            if entry["domain"] == "mqtt" and entry["data"].get("port") != self.ports["broker"]:
                entry["data"]["port"] = self.ports["broker"]
                changed = True
            if entry["domain"] == "qr_charging" and (
                entry["data"].get("api_base_url") != self.standin_url
            ):
                entry["data"]["api_base_url"] = self.standin_url
                changed = True
        if changed:
            say("==> ports changed since the last start: Home Assistant's entries follow them")
            path.write_text(json.dumps(data, indent=2), encoding="utf-8")

    # -- processes ----------------------------------------------------------------------------

    def _service(self, name: str, argv: list[str], **kwargs: Any) -> Service:
        service = Service(name, argv, self.logs / f"{name}.log", **kwargs)
        self.services[name] = service
        return service

    async def start_service(self, service: Service) -> None:
        """Start a process and watch it: an unexpected end stops the demo."""
        await service.start()
        self.state.setdefault("pids", {})[service.name] = service.pid
        self.save_state()
        monitor = asyncio.create_task(self._monitor(service))
        self._monitors.add(monitor)
        monitor.add_done_callback(self._monitors.discard)

    async def _monitor(self, service: Service) -> None:
        code = await service.wait()
        if not service.stopping and self.crashed is not None and not self.crashed.done():
            self.crashed.set_result((service, code))

    def define_services(self) -> None:
        """The four processes and how each is started."""
        python = sys.executable
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "pi_mqtt_relay" / "src")]),
        }
        if self.broker_kind == "mosquitto" or (self.broker_kind == "auto" and MOSQUITTO):
            if MOSQUITTO is None:
                raise DemoError("--broker mosquitto: Mosquitto is not installed")
            argv = [MOSQUITTO, "-c", str(self.dir / "broker" / "mosquitto.conf")]
            self.state["broker"] = "mosquitto"
        else:
            argv = [python, "-m", "devtools.demo.broker", "--port", str(self.ports["broker"])]
            self.state["broker"] = "amqtt"
        self._service("mqtt-broker", argv, env=env, cwd=ROOT, stop_timeout=10)
        self._service(
            "razorpay-standin",
            [
                python,
                "-m",
                "devtools.razorpay_standin",
                "--port",
                str(self.ports["standin"]),
                "--key-id",
                KEY_ID,
                "--key-secret",
                KEY_SECRET,
                "--state-file",
                str(self.dir / "razorpay-standin.json"),
            ],
            env=env,
            cwd=ROOT,
            stop_timeout=10,
        )
        agent = shutil.which("pi-mqtt-relay", path=str(VENV_BIN)) or "pi-mqtt-relay"
        self._service(
            "pi-mqtt-relay",
            [agent, "--config", str(self.agent_dir / "agent.yaml"), "--mock-gpio"],
            env=env,
            cwd=self.agent_dir,
            stop_timeout=15,
        )
        hass = shutil.which("hass", path=str(VENV_BIN)) or "hass"
        self._service(
            "homeassistant",
            [hass, "-c", str(self.ha_dir), "--skip-pip", "--log-no-color"],
            env=env,
            cwd=self.ha_dir,
            stop_timeout=60,
        )

    async def start_stack(self) -> None:
        """Start every process and wait until each answers."""
        self.define_services()
        services = self.services
        async with step(
            f"starting the MQTT broker ({self.state['broker']}) on port {self.ports['broker']}"
        ):
            await self.start_service(services["mqtt-broker"])
            await wait_for("the MQTT broker", lambda: port_open(self.ports["broker"]), 30)
        async with step(f"starting the Razorpay stand-in on {self.standin_url}"):
            await self.start_service(services["razorpay-standin"])
            await wait_for("the Razorpay stand-in", lambda: port_open(self.ports["standin"]), 30)
        async with step(
            f"starting Home Assistant on {self.ha_url} and the relay agent "
            "(pi-mqtt-relay --mock-gpio)"
        ):
            await self.start_service(services["homeassistant"])
            await self.start_service(services["pi-mqtt-relay"])
            self.watch = MqttWatch(self.ports["broker"], PREFIX, NODE)
            await wait_for(
                "the agent's 'online'", lambda: self.watch_availability() == "online", 60
            )
            assert self.ha is not None
            took = await wait_for("Home Assistant's web server", self.ha.up, 600, interval=0.5)
            say(f"    Home Assistant answers after {took:.1f} s")

    def watch_availability(self) -> str | None:
        """The agent's availability as last seen on MQTT."""
        return self.watch.availability() if self.watch is not None else None

    async def stop_all(self) -> None:
        """Stop every process, the agent first, the broker last; check nothing is left."""
        if self.watch is not None:
            self.watch.close()
            self.watch = None
        order = ("pi-mqtt-relay", "homeassistant", "razorpay-standin", "mqtt-broker")
        started = [self.services[name] for name in order if name in self.services]
        if not any(service.proc is not None for service in started):
            return
        say("==> stopping: " + ", ".join(s.name for s in started if s.pid is not None))
        start = time.monotonic()
        for service in started:
            service.stopping = True
        for service in started:
            await service.stop()
        for monitor in list(self._monitors):
            monitor.cancel()
        left = [s.name for s in started if s.proc is not None and pid_alive(s.proc.pid)]
        listening = [f"{name} {port}" for name, port in self.ports.items() if port_open(port)]
        self.state["pids"] = {}
        self.save_state()
        if left or listening:
            say(f"    still there: processes {left}, listening ports {listening}")
        else:
            ports = ", ".join(str(port) for port in self.ports.values())
            say(
                f"    stopped in {time.monotonic() - start:.1f} s: no process left, "
                f"ports {ports} closed"
            )
