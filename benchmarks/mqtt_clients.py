"""paho clients of the benchmarks: a bay's subscriber, the MQTT floor, and scripted agents.

Arrival times are taken in paho's network thread with ``time.monotonic`` as each message is
handed over, so the benchmark's own event loop does not colour them.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

PREFIX = "qr_charging"
_ids = itertools.count()


def _nodelay(client: Any, userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _client(port: int, name: str, nodelay: bool) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{name}-{next(_ids)}")
    if nodelay:
        client.on_socket_open = _nodelay
    client.connect("127.0.0.1", port, keepalive=60)
    return client


@dataclass
class Message:
    """One message as it arrived."""

    at: float
    topic: str
    payload: bytes

    def json(self) -> Any:
        """The payload, parsed (None when it is not JSON)."""
        try:
            return json.loads(self.payload)
        except ValueError:
            return None


class Subscriber:
    """Records every message on some topics, with its arrival time."""

    def __init__(self, port: int, topics: Iterable[str], *, nodelay: bool = False) -> None:
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        subscribed = threading.Event()
        self.client = _client(port, "sub", nodelay)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.subscribe([(topic, 1) for topic in topics])
        self.client.loop_start()
        if not subscribed.wait(10):
            raise TimeoutError("subscriber could not subscribe")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        at = time.monotonic()
        with self._cond:
            self.messages.append(Message(at, msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def mark(self) -> int:
        """How many messages so far."""
        with self._cond:
            return len(self.messages)

    def wait(
        self, predicate: Callable[[Message], bool], since: int = 0, timeout: float = 10
    ) -> Message:
        """The first message since ``since`` that matches."""
        deadline = time.monotonic() + timeout
        with self._cond:
            index = since
            while True:
                while index < len(self.messages):
                    if predicate(self.messages[index]):
                        return self.messages[index]
                    index += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching MQTT message")
                self._cond.wait(left)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


class MqttFloor:
    """A bare paho QoS 1 publish → receive through the broker: the MQTT hop alone."""

    TOPIC = "bench/floor"

    def __init__(self, port: int, *, nodelay: bool = False) -> None:
        self.subscriber = Subscriber(port, [self.TOPIC], nodelay=nodelay)
        self.publisher = _client(port, "pub", nodelay)
        self.publisher.loop_start()
        self._count = 0

    def measure(self, timeout: float = 5) -> float:
        """Seconds from ``publish`` to the subscriber's receipt."""
        self._count += 1
        payload = f"floor-{self._count}".encode()
        mark = self.subscriber.mark()
        start = time.monotonic()
        self.publisher.publish(self.TOPIC, payload, qos=1)
        message = self.subscriber.wait(lambda m: m.payload == payload, mark, timeout)
        return message.at - start

    def close(self) -> None:
        """Disconnect both."""
        self.subscriber.close()
        self.publisher.disconnect()
        self.publisher.loop_stop()


@dataclass
class Command:
    """A command an agent received."""

    at: float
    node: str
    bay: str
    data: Any


class ScriptedAgents:
    """One paho client speaking for many agent nodes, as the real agent speaks for one.

    It publishes each node's availability and config and each bay's state (retained), and
    answers ``on`` with ``ON`` (``command``, or ``top_up`` for its running session) and
    ``off`` with ``OFF``. ``reported`` keeps, per bay, when each state was published. With a
    ``meter`` every bay's config names it and every state carries ``power_w`` and the session's
    ``energy_wh`` (docs/mqtt-protocol.md), as ``reading`` sets them.
    """

    def __init__(
        self,
        port: int,
        nodes: dict[str, list[str]],
        max_session_s: int = 14400,
        *,
        nodelay: bool = False,
        meter: dict[str, Any] | None = None,
    ) -> None:
        self.nodes = nodes
        self.meter = meter
        # Per bay: the last reason (repeated by periodic reports, as the agent does) and reading.
        self.reasons: dict[tuple[str, str], str] = {}
        self.readings: dict[tuple[str, str], tuple[float, float]] = {}
        self.commands: list[Command] = []
        self.reported: list[tuple[float, str, str, dict[str, Any]]] = []
        self.sessions: dict[tuple[str, str], tuple[str, float] | None] = {
            (node, bay): None for node, bays in nodes.items() for bay in bays
        }
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = _client(port, "agents", nodelay)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.subscribe(f"{PREFIX}/+/+/set", qos=1)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise TimeoutError("scripted agents could not subscribe")
        for node, bays in nodes.items():
            self._publish(f"{PREFIX}/{node}/availability", "online")
            self._publish(
                f"{PREFIX}/{node}/config",
                json.dumps(
                    {
                        "node": node,
                        "name": node,
                        "sw_version": "bench",
                        "bays": [
                            {"id": bay, "name": bay} | ({"meter": meter} if meter else {})
                            for bay in bays
                        ],
                        "max_session_s": max_session_s,
                    }
                ),
            )
            for bay in bays:
                self.report(node, bay, "boot")

    def _publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1, retain=True)

    def report(self, node: str, bay: str, reason: str) -> None:
        """Publish a bay's state as the agent does."""
        current = self.sessions[(node, bay)]
        state = {
            "state": "ON" if current else "OFF",
            "session": current[0] if current else None,
            "until": current[1] if current else None,
            "remaining": round(max(current[1] - time.time(), 0), 1) if current else 0,
            "reason": reason,
        }
        if self.meter is not None:
            power_w, energy_wh = self.readings.get((node, bay), (0.0, 0.0))
            state |= {"power_w": power_w, "energy_wh": energy_wh if current else None}
        self.reasons[(node, bay)] = reason
        with self._lock:
            self.reported.append((time.monotonic(), node, bay, state))
        self._publish(f"{PREFIX}/{node}/{bay}/state", json.dumps(state))

    def reading(self, node: str, bay: str, power_w: float, energy_wh: float) -> None:
        """A metered bay's periodic state: this reading, with the bay's last reason."""
        self.readings[(node, bay)] = (power_w, energy_wh)
        self.report(node, bay, self.reasons.get((node, bay), "boot"))

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        at = time.monotonic()
        _, node, bay, _ = msg.topic.split("/")
        try:
            data = json.loads(msg.payload)
        except ValueError:
            data = msg.payload.decode(errors="replace")
        with self._lock:
            self.commands.append(Command(at, node, bay, data))
        if (node, bay) not in self.sessions or not isinstance(data, dict):
            return
        current = self.sessions[(node, bay)]
        if data.get("action") == "on":
            top_up = current is not None and current[0] == data["session"]
            if current is not None and not top_up:
                self.report(node, bay, "rejected_busy")
                return
            self.sessions[(node, bay)] = (data["session"], float(data["until"]))
            if not top_up:
                self.readings[(node, bay)] = (0.0, 0.0)
            self.report(node, bay, "top_up" if top_up else "command")
        elif data.get("action") == "off" and current is not None and current[0] == data["session"]:
            self.sessions[(node, bay)] = None
            self.report(node, bay, "off_command")

    def close(self) -> None:
        """Disconnect (the retained states stay at the broker)."""
        self.client.disconnect()
        self.client.loop_stop()
