"""The MQTT side of the agent (paho-mqtt 2.x): topics, session and reconnection.

A persistent session (``clean_session=False`` with a stable client id) makes the broker
keep the ``set`` subscription and queue QoS 1 commands while the agent is briefly away.
A retained last will marks the node ``offline`` when the connection dies. paho's network
thread reconnects with backoff; after every (re)connection the agent republishes its
config and every bay's state, because the broker may have lost its retained messages.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .config import AgentConfig

_LOGGER = logging.getLogger(__name__)
ONLINE = "online"
OFFLINE = "offline"
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
STOP_PUBLISH_TIMEOUT_S = 2.0


class Topics:
    """The topic names of one node, as in docs/mqtt-protocol.md."""

    def __init__(self, config: AgentConfig) -> None:
        self.base = f"{config.topic_prefix}/{config.node_id}"
        self.availability = f"{self.base}/availability"
        self.config = f"{self.base}/config"
        self.set_wildcard = f"{self.base}/+/set"
        self._discovery_prefix = config.discovery_prefix
        self._node = config.node_id

    def state(self, bay_id: str) -> str:
        """Retained state topic of a bay."""
        return f"{self.base}/{bay_id}/state"

    def set(self, bay_id: str) -> str:
        """Command topic of a bay."""
        return f"{self.base}/{bay_id}/set"

    def discovery(self, bay_id: str) -> str:
        """HA MQTT discovery topic of a bay's switch."""
        return f"{self._discovery_prefix}/switch/{self._node}_{bay_id}/config"

    def bay_of_set_topic(self, topic: str) -> str | None:
        """The bay id in a ``set`` topic of this node, or None for any other topic."""
        head, tail = f"{self.base}/", "/set"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        bay = topic[len(head) : -len(tail)]
        return bay if bay and "/" not in bay else None


class MqttLink:
    """Owns the paho client; calls back into the agent on connection and on commands."""

    def __init__(
        self,
        config: AgentConfig,
        on_connected: Callable[[], None],
        on_command: Callable[[str, bytes], None],
    ) -> None:
        self.topics = Topics(config)
        self._config = config
        self._on_connected = on_connected
        self._on_command = on_command
        self.connected = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pi-mqtt-relay-{config.node_id}",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        broker = config.broker
        if broker.username is not None:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls is not None:
            client.tls_set(
                ca_certs=broker.tls.ca_file,
                certfile=broker.tls.cert_file,
                keyfile=broker.tls.key_file,
            )
            client.tls_insecure_set(broker.tls.insecure)
        client.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        self._client = client

    def start(self) -> None:
        """Connect in the background; paho keeps retrying until :meth:`stop`."""
        broker = self._config.broker
        self._client.connect_async(broker.host, broker.port, keepalive=broker.keepalive)
        self._client.loop_start()

    def stop(self) -> None:
        """Say ``offline`` (retained), disconnect and stop the network thread."""
        if self.connected.is_set():
            info = self._client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(STOP_PUBLISH_TIMEOUT_S)
            except (RuntimeError, ValueError):
                _LOGGER.warning("could not publish offline before stopping")
        self.connected.clear()
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def publish(self, topic: str, payload: str | bytes, *, retain: bool) -> None:
        """Publish with QoS 1; while disconnected paho queues it for the reconnection."""
        self._client.publish(topic, payload, qos=1, retain=retain)

    def publish_json(self, topic: str, data: Any, *, retain: bool) -> None:
        """Publish a JSON payload."""
        self.publish(topic, json.dumps(data, separators=(", ", ": ")), retain=retain)

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            _LOGGER.error("broker refused the connection: %s", reason_code)
            return
        _LOGGER.info(
            "connected to %s:%s (session present: %s)",
            self._config.broker.host,
            self._config.broker.port,
            flags.session_present,
        )
        client.subscribe(self.topics.set_wildcard, qos=1)
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        try:
            self._on_connected()
        except Exception:
            _LOGGER.exception("error while publishing after connecting")
        self.connected.set()

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this from inside its "except OSError" and keeps the error to itself: without
        # it, a broker certificate the agent does not trust, a wrong port or a broker that is
        # down would leave nothing in the journal.
        error = sys.exc_info()[1]
        _LOGGER.error(
            "cannot connect to %s:%s: %s; retrying",
            self._config.broker.host,
            self._config.broker.port,
            error or "connection failed",
        )

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if self.connected.is_set():
            _LOGGER.warning("disconnected from the broker (%s); reconnecting", reason_code)
        self.connected.clear()

    def _handle_message(
        self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        # paho re-raises callback exceptions in its network thread, which would end it:
        # no input may ever stop the agent from receiving the next command.
        try:
            bay = self.topics.bay_of_set_topic(message.topic)
            if bay is None:
                _LOGGER.warning("ignored a message on unexpected topic %s", message.topic)
                return
            self._on_command(bay, bytes(message.payload))
        except Exception:
            _LOGGER.exception("error while handling a message on %s", message.topic)
