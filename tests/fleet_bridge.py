"""A site's Mosquitto bridged to the fleet's NATS cluster (docs/fleet.md "Topology", issue #27).

The bridge's configuration is read from docs/fleet.md itself, so the block an operator copies
is the one the test runs: its TLS and login lines are dropped (the rig has neither), its
``address`` line points at the rig's nodes, ``<site>`` and ``<node>`` are filled in. Peers are
plain paho clients (MQTT 3.1.1) that record what they receive; ``Uplink`` is a TCP forwarder
the test can cut to take a site off the network without touching either broker.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests import fleet
from tests.mosquitto import MOSQUITTO, Broker

DOC = Path(__file__).resolve().parents[1] / "docs" / "fleet.md"
PREFIX = "qr_charging"
# The doc's lines the rig leaves out: it runs without TLS and without users.
LOGIN_LINES = ("bridge_cafile ", "remote_username ", "remote_password ")
WAIT_S = 10.0
_marks = itertools.count(1)


def missing() -> str | None:
    """Why the bridge cannot run here (None: it can)."""
    if not os.access(MOSQUITTO, os.X_OK):
        return "mosquitto is missing (Debian: apt-get install mosquitto)"
    return fleet.missing()


def documented_bridge(addresses: Iterable[str], site: str, node: str) -> str:
    """docs/fleet.md's bridge block for the rig: no TLS or login, its addresses, ids filled in."""
    blocks = re.findall(r"^ *```\n(.*?)^ *```", DOC.read_text(), re.M | re.S)
    [block] = [b for b in blocks if b.lstrip().startswith("connection central")]
    lines = [line.strip() for line in block.splitlines()]
    kept = [
        f"address {' '.join(addresses)}" if line.startswith("address ") else line
        for line in lines
        if line and not line.startswith(LOGIN_LINES)
    ]
    return "\n".join(kept).replace("<site>", site).replace("<node>", node) + "\n"


def both_ways(bridge: str) -> str:
    """The same bridge with the one line a first sketch used: ``qr_charging/#`` both ways."""
    lines = [line for line in bridge.splitlines() if not line.startswith("topic ")]
    return "\n".join([*lines, f"topic {PREFIX}/# both 1"]) + "\n"


def site_broker(workdir: Path, bridge: str) -> Broker:
    """A started Mosquitto on a free port with ``bridge`` in its configuration."""
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Broker(workdir)
    broker.conf.write_text(broker.conf.read_text() + bridge)
    broker.start()
    return broker


def bridge_node(cluster: fleet.Fleet, client_id: str) -> fleet.Node | None:
    """The live node the bridge is connected to, from the nodes' ``/connz`` (None: none)."""
    for node in cluster.nodes:
        if not node.alive:
            continue
        with contextlib.suppress(OSError, ValueError):
            page = node.monitor(f"connz?mqtt_client={client_id}")
            connections = page.get("connections") or []
            assert isinstance(connections, list)
            if any(conn.get("mqtt_client") == client_id for conn in connections):
                return node
    return None


class Peer:
    """A paho client that records its messages; it subscribes again after each (re)connection."""

    def __init__(
        self,
        port: int,
        client_id: str,
        *,
        subscribe: Iterable[str] = (),
        qos: int = 0,
        clean: bool = True,
        will: str | None = None,
    ) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._topics = [(topic, qos) for topic in subscribe]
        self._ready = 0
        self._cond = threading.Condition()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean
        )
        if will is not None:
            self._client.will_set(will, "offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port, keepalive=10)
        self._client.loop_start()
        self.wait_for(lambda: self._ready > 0, "connected (and subscribed)")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, code: Any, props: Any) -> None:
        if self._topics:
            client.subscribe(self._topics)
        else:
            self._set_ready()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        self._set_ready()

    def _set_ready(self) -> None:
        with self._cond:
            self._ready += 1
            self._cond.notify_all()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, check: Callable[[], bool], what: str, within: float = WAIT_S) -> None:
        """Block until ``check`` holds (evaluated under the lock) or fail naming ``what``."""
        with self._cond:
            if not self._cond.wait_for(check, within):
                raise AssertionError(f"not {what} within {within:.0f} s: {self.messages}")

    def count(self, topic: str, payload: str) -> int:
        """How many times ``payload`` arrived on ``topic``."""
        with self._cond:
            return sum(1 for t, p, _ in self.messages if t == topic and p == payload.encode())

    def wait(self, topic: str, payload: str, within: float = WAIT_S) -> None:
        """Block until ``payload`` has arrived on ``topic``."""
        self.wait_for(lambda: self.count(topic, payload) > 0, f"got {topic} {payload}", within)

    def publish(self, topic: str, payload: str, *, retain: bool = False, qos: int = 1) -> None:
        """Publish and wait for the broker's PUBACK (QoS 1)."""
        self._client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(WAIT_S)

    def drop(self) -> None:
        """Lose the connection without DISCONNECT (a crash or a pulled cable): the will fires."""
        self._client.loop_stop()
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        """DISCONNECT (no will) and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()


def flush(ha: Peer, agent: Peer, node: str) -> None:
    """Return once whatever was in flight either way has arrived.

    A marker command goes cluster → site and a marker state back: the bridge keeps one
    connection with each broker and each keeps a sender's order, so any echo or second copy of
    an earlier message arrives before the markers do.
    """
    mark = f"flush-{next(_marks)}"
    ha.publish(f"{PREFIX}/{node}/flush/set", mark)
    agent.wait(f"{PREFIX}/{node}/flush/set", mark)
    agent.publish(f"{PREFIX}/{node}/flush/state", mark, retain=True)
    ha.wait(f"{PREFIX}/{node}/flush/state", mark)


def wait_for_commands(cluster_port: int, site_port: int, node: str, within: float = 30) -> None:
    """Return once a command published on the cluster reaches the site.

    The bridge's connection shows in ``/connz`` before NATS has made its subscription (a
    JetStream consumer for its persistent session): a command published in between reaches
    nobody. So probes are published until one arrives.
    """
    topic = f"{PREFIX}/{node}/probe/set"
    listener = Peer(site_port, f"probe-in-{node}", subscribe=[topic])
    sender = Peer(cluster_port, f"probe-out-{node}")

    def crossed() -> bool:
        sender.publish(topic, "probe")
        return listener.count(topic, "probe") > 0

    try:
        fleet.wait_for(crossed, within, "a command crossing the bridge", step=0.5)
    finally:
        listener.close()
        sender.close()


class Uplink:
    """A TCP forwarder 127.0.0.1:port → 127.0.0.1:target: the site's uplink, cut at will."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        """Accept connections again (on the same port after a cut)."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                far = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                near.close()
                continue
            far.settimeout(None)
            with self._lock:
                self._conns += [near, far]
            for src, dst in ((near, far), (far, near)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and reset the open ones (shutdown wakes a blocked accept)."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
