"""The MQTT side of the agent (paho-mqtt 2.x): topics, session and reconnection.

A persistent session (``clean_session=False`` with a stable client id) makes the broker
keep the ``set`` subscription and queue QoS 1 commands while the agent is briefly away.
A retained last will marks the node ``offline`` when the connection dies. paho's network
thread reconnects; after every (re)connection the agent republishes its config and every
bay's state, because the broker may have lost its retained messages, then its heartbeat.

Failover (issue #27): with several brokers (the nodes of a cluster) a lost or refused
connection moves on to the next one at once, round robin, and the backoff waits only between
full rounds; the client id and ``clean_session=False`` stay, so the cluster's persistent
session, with the commands it queued, follows the agent; a broker that leaves an attempt
without CONNACK for ``min(keepalive, 10)`` s counts as failed. The retained heartbeat (QoS 0)
(``{"at": epoch seconds, "every": seconds}``, every ``heartbeat_s`` while connected) lets Home
Assistant see an agent gone even where no broker publishes its will (a dead cluster node).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .config import DEFAULT_PREFIX, AgentConfig, BrokerAddress

_LOGGER = logging.getLogger(__name__)
ONLINE = "online"
OFFLINE = "offline"
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
STOP_PUBLISH_TIMEOUT_S = 2.0
# The longest wait for a broker's CONNACK (at most ``keepalive``): a node that accepts TCP and
# never answers (stopped, without quorum) is left for the next within issue #27's 15 s.
CONNACK_TIMEOUT_S = 10.0


def client_id(config: AgentConfig) -> str:
    """The MQTT client id, and with it the broker's persistent session, of this agent.

    ``pi-mqtt-relay-<node>`` under the default prefix (existing sessions keep theirs);
    ``pi-mqtt-relay-<prefix>:<node>`` under any other, so two sites sharing a broker do not
    take each other's connection and session. ``:`` is in no prefix and no node id, so the
    first ``:`` splits the id and no default one has it: with ``-``, node ``site-a-kiosk-1``
    under the default and ``kiosk-1`` under ``site-a`` were one. Not ``/``: it is MQTT's
    level separator, and a ``%c`` in a Mosquitto ACL pattern would span two levels.
    """
    if config.topic_prefix == DEFAULT_PREFIX:
        return f"pi-mqtt-relay-{config.node_id}"
    return f"pi-mqtt-relay-{config.topic_prefix}:{config.node_id}"


class Topics:
    """The topic names of one node, as in docs/mqtt-protocol.md."""

    def __init__(self, config: AgentConfig) -> None:
        self.base = f"{config.topic_prefix}/{config.node_id}"
        self.availability = f"{self.base}/availability"
        self.heartbeat = f"{self.base}/heartbeat"
        self.config = f"{self.base}/config"
        self.set_wildcard = f"{self.base}/+/set"
        self._discovery_prefix = config.discovery_prefix
        self._prefix = config.topic_prefix
        self._node = config.node_id

    def state(self, bay_id: str) -> str:
        """Retained state topic of a bay."""
        return f"{self.base}/{bay_id}/state"

    def set(self, bay_id: str) -> str:
        """Command topic of a bay."""
        return f"{self.base}/{bay_id}/set"

    def discovery(self, bay_id: str) -> str:
        """HA MQTT discovery topic of a bay's switch.

        ``<node>_<bay>`` under the default prefix (deployed switches keep theirs). Under any
        other the prefix is HA's optional ``<node_id>`` level and the object id is
        ``<len(node)>_<node>_<bay>``: ids may hold ``_`` and ``-``, so no character of
        theirs could separate them, and the node's length says where it ends. Two agents'
        bays never share a topic then, and none shares a default one (one level more).
        """
        if self._prefix == DEFAULT_PREFIX:
            return f"{self._discovery_prefix}/switch/{self._node}_{bay_id}/config"
        object_id = f"{len(self._node)}_{self._node}_{bay_id}"
        return f"{self._discovery_prefix}/switch/{self._prefix}/{object_id}/config"

    def bay_of_set_topic(self, topic: str) -> str | None:
        """The bay id in a ``set`` topic of this node, or None for any other topic."""
        head, tail = f"{self.base}/", "/set"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        bay = topic[len(head) : -len(tail)]
        return bay if bay and "/" not in bay else None


class Rotation:
    """Which broker to try next and how long to wait first: plain rules, no paho.

    A failed attempt (refused, unreachable, or a connection lost) moves to the next broker;
    the wait is 0 within a round and the backoff (1 s doubling to 30 s) after every full round
    of failures. With one broker that is paho's own backoff, as before.
    """

    def __init__(self, addresses: tuple[BrokerAddress, ...]) -> None:
        if not addresses:
            raise ValueError("at least one broker is needed")
        self.addresses = addresses
        self._index = 0
        self._failed = 0
        self._rounds = 0

    @property
    def current(self) -> BrokerAddress:
        """The broker connected to, or to be tried next."""
        return self.addresses[self._index]

    def connected(self) -> None:
        """A broker accepted the connection: the next loss starts a new round."""
        self._failed = 0
        self._rounds = 0

    def failed(self) -> int:
        """The current broker failed: move to the next; return the seconds to wait first."""
        self._index = (self._index + 1) % len(self.addresses)
        self._failed += 1
        if self._failed % len(self.addresses):
            return 0
        self._rounds += 1
        return int(min(RECONNECT_MIN_S * 2 ** (self._rounds - 1), RECONNECT_MAX_S))


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
        self._rotation = Rotation(config.broker.addresses)
        self.connected = threading.Event()
        # Notified on each connection (the period restarts) and on stop.
        self._beat = threading.Condition()
        self._stopping = False
        # The CONNACK deadline of the current attempt: its number and its timer (paho's thread
        # starts it, on_connect and stop end it; the lock orders them against the timer).
        self._attempt = 0
        self._attempt_lock = threading.Lock()
        self._connack_timer: threading.Timer | None = None
        # A daemon, like paho's network thread: it only publishes, and never holds the process.
        self._heartbeat_thread = threading.Thread(
            target=self._keep_heartbeat, name="heartbeat", daemon=True
        )
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id(config),
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
        # No wait before the first retry of a round; _retry_after sets each wait itself.
        client.reconnect_delay_set(0, 0)
        client.on_pre_connect = self._handle_pre_connect
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        self._client = client

    def start(self) -> None:
        """Connect in the background; paho keeps retrying until :meth:`stop`."""
        first = self._rotation.current
        self._client.connect_async(first.host, first.port, keepalive=self._config.broker.keepalive)
        self._client.loop_start()
        self._heartbeat_thread.start()

    def stop(self) -> None:
        """Say ``offline`` (retained), disconnect and stop the network thread."""
        if self.connected.is_set():
            info = self._client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(STOP_PUBLISH_TIMEOUT_S)
            except (RuntimeError, ValueError):
                _LOGGER.warning("could not publish offline before stopping")
        self.connected.clear()
        self._end_heartbeat()
        self._end_connack_deadline()
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def publish(self, topic: str, payload: str | bytes, *, retain: bool) -> None:
        """Publish with QoS 1; while disconnected paho queues it for the reconnection."""
        self._client.publish(topic, payload, qos=1, retain=retain)

    def publish_json(self, topic: str, data: Any, *, retain: bool) -> None:
        """Publish a JSON payload."""
        self.publish(topic, json.dumps(data, separators=(", ", ": ")), retain=retain)

    def _publish_heartbeat(self) -> None:
        """The retained heartbeat: the agent's clock now and the period it promises.

        QoS 0: one sent into a link that died unnoticed is neither queued nor re-sent after
        the fresh one of the next connection, so the retained heartbeat is always the newest.
        """
        every = self._config.broker.heartbeat_s
        payload = json.dumps({"at": time.time(), "every": every}, separators=(", ", ": "))
        self._client.publish(self.topics.heartbeat, payload, qos=0, retain=True)

    def _keep_heartbeat(self) -> None:
        """Publish the heartbeat every ``heartbeat_s`` while connected, never queued for later.

        A connection publishes one at once (:meth:`_handle_connect`) and restarts the period.
        """
        while True:
            with self._beat:
                if self._stopping:
                    return
                due = not self._beat.wait(self._config.broker.heartbeat_s)
                due = due and self.connected.is_set() and not self._stopping
            # Outside the lock: paho's thread takes it on connecting, inside its own callbacks.
            if due:
                self._publish_heartbeat()

    def _end_heartbeat(self) -> None:
        """No more heartbeats nor reconnections: the link is stopping."""
        with self._beat:
            self._stopping = True
            self._beat.notify_all()
        if self._heartbeat_thread.is_alive():
            self._heartbeat_thread.join()

    def _handle_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        """A connection attempt starts: give the broker ``min(keepalive, 10)`` s to accept it.

        paho's only CONNACK timeout is ``keepalive``; a broker that accepts TCP and never
        answers CONNECT would hold the agent that long on a dead node.
        """
        deadline = min(self._config.broker.keepalive, CONNACK_TIMEOUT_S)
        with self._attempt_lock:
            self._cancel_connack_timer()
            if self._stopping:
                return
            self._attempt += 1
            timer = threading.Timer(deadline, self._connack_overdue, args=(self._attempt,))
            timer.name = "connack-deadline"
            timer.daemon = True
            self._connack_timer = timer
            timer.start()

    def _connack_overdue(self, attempt: int) -> None:
        """No CONNACK in time: end that socket; paho then fails over as on a lost connection.

        Only a shutdown, from this thread: paho's own thread sees the socket end (a read of
        nothing), closes it and calls on_disconnect, which moves on to the next broker.
        """
        with self._attempt_lock:
            if attempt != self._attempt or self._stopping:
                return
            self._connack_timer = None
            sock = self._client.socket()
            _LOGGER.error("%s accepted no connection in time; leaving it", self._rotation.current)
            if isinstance(sock, socket.socket):
                # The plain socket's shutdown, also for TLS: the SSL object stays paho's. An
                # OSError: paho closed it already, failing over by itself.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def _cancel_connack_timer(self) -> None:
        """The current attempt needs no deadline any more (held: ``_attempt_lock``)."""
        self._attempt += 1
        if self._connack_timer is not None:
            self._connack_timer.cancel()
            self._connack_timer = None

    def _end_connack_deadline(self) -> None:
        """The link is stopping: no deadline may end a socket any more, and none is left."""
        with self._attempt_lock:
            timer = self._connack_timer
            self._cancel_connack_timer()
        if timer is not None:
            timer.join()  # outside the lock, which its callback takes

    def _retry_after(self, client: mqtt.Client) -> None:
        """The current broker failed: point paho at the next and set the wait before it.

        ``connect_async`` is how paho lets the address change from its callbacks (its ``host``
        setter refuses while the connection is only lost); paho's loop then waits
        ``reconnect_delay_set``'s delay and reconnects, keeping the client id, the session
        flag and the messages in flight.
        """
        if self._stopping:
            return
        wait = self._rotation.failed()
        nxt = self._rotation.current
        client.connect_async(nxt.host, nxt.port, keepalive=self._config.broker.keepalive)
        client.reconnect_delay_set(wait, wait)
        if len(self._rotation.addresses) > 1:
            _LOGGER.info("trying %s next%s", nxt, f" in {wait} s" if wait else "")

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: Any,
        properties: Any,
    ) -> None:
        with self._attempt_lock:
            self._cancel_connack_timer()
        if reason_code.is_failure:
            # paho calls on_disconnect next, which moves on to the next broker.
            _LOGGER.error(
                "broker refused the connection: %s (%s)", reason_code, self._rotation.current
            )
            return
        self._rotation.connected()
        _LOGGER.info(
            "connected to %s (session present: %s)",
            self._rotation.current,
            flags.session_present,
        )
        client.subscribe(self.topics.set_wildcard, qos=1)
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        try:
            self._on_connected()
        except Exception:
            _LOGGER.exception("error while publishing after connecting")
        # Last, after the config and the states: a heartbeat says all of them are current.
        self._publish_heartbeat()
        with self._beat:
            self.connected.set()
            self._beat.notify_all()

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this from inside its "except OSError" and keeps the error to itself: without
        # it, a broker certificate the agent does not trust, a wrong port or a broker that is
        # down would leave nothing in the journal.
        error = sys.exc_info()[1]
        _LOGGER.error(
            "cannot connect to %s: %s; retrying",
            self._rotation.current,
            error or "connection failed",
        )
        self._retry_after(client)

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if self.connected.is_set():
            _LOGGER.warning(
                "disconnected from %s (%s); reconnecting", self._rotation.current, reason_code
            )
        self.connected.clear()
        self._retry_after(client)

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
