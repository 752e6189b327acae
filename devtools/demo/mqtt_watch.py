"""An MQTT client that records what the relay agent publishes (its availability and states)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Message:
    """One message as received: its topic, its payload (JSON parsed when it is) and when."""

    topic: str
    payload: Any
    retained: bool
    received: float  # time.time()


class MqttWatch:
    """Subscribed to ``<prefix>/<node>/#`` on the demo's broker."""

    def __init__(self, port: int, prefix: str, node: str) -> None:
        self.base = f"{prefix}/{node}"
        self._messages: list[Message] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"demo-watch-{node}-{time.time_ns()}"
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.connect_async("127.0.0.1", port, keepalive=10)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"{self.base}/#", qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        text = msg.payload.decode(errors="replace")
        try:
            payload: Any = json.loads(text)
        except ValueError:
            payload = text
        with self._lock:
            self._messages.append(Message(msg.topic, payload, bool(msg.retain), time.time()))

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def mark(self) -> int:
        """A position: later calls can look only at what came after it."""
        with self._lock:
            return len(self._messages)

    def messages(self, topic: str, since: int = 0) -> list[Message]:
        """Messages on one topic (under the node) received after ``since``."""
        with self._lock:
            return [m for m in self._messages[since:] if m.topic == f"{self.base}/{topic}"]

    def availability(self) -> str | None:
        """The agent's last availability (``online``/``offline``), if one was seen."""
        seen = self.messages("availability")
        return str(seen[-1].payload) if seen else None

    def states(self, bay: str, since: int = 0) -> list[Message]:
        """A bay's state reports after ``since``."""
        return self.messages(f"{bay}/state", since)
