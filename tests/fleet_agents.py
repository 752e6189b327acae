"""Simulated Pi agents on asyncio: many in one process, each its own MQTT client (issue #27).

Each :class:`SimAgent` speaks the agent's protocol (docs/mqtt-protocol.md) as one Pi would:
client id ``pi-mqtt-relay-<node>``, ``clean_session=False``, a retained will ``offline``,
then availability ``online``, its config, every bay's retained state and the retained
heartbeat ``{"at", "every"}`` (again every ``every`` seconds), and ``on``/``off`` obeyed by
the real agent's rules (:func:`pi_mqtt_relay.commands.parse_command`,
:func:`pi_mqtt_relay.sessions.decide` and ``expire``), each bay switched off at its deadline
by the agent's own clock. A lost or refused connection moves to the next of its ``brokers``,
round robin, with the agent's backoff (1 s doubling to 30 s) between full rounds.

The clients are paho's, driven by the event loop (paho's asyncio pattern: the socket's
reader and writer registered with the loop, ``loop_misc`` once a second), so 250 agents
need no thread each. Everything is recorded with ``time.monotonic``: the commands, the
states, the relays' on/off intervals, the connections.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from pi_mqtt_relay.commands import MalformedCommand, parse_command
from pi_mqtt_relay.sessions import ActiveSession, Finish, Limits, Now, Reason, decide, expire

PREFIX = "qr_charging"
BACKOFF_FIRST_S, BACKOFF_MAX_S = 1.0, 30.0


def now() -> Now:
    """Both clocks, as the agent reads them."""
    return Now(mono=time.monotonic(), wall=time.time())


@dataclass
class Relay:
    """One bay's relay: when it went on and off, and for which session."""

    session: str
    on_at: float
    until_mono: float
    off_at: float | None = None
    off_reason: str | None = None


@dataclass
class Received:
    """A ``set`` message as it arrived."""

    at: float
    bay: str
    payload: bytes


@dataclass
class Bay:
    """A bay's live state in the agent."""

    id: str
    active: ActiveSession | None = None
    timer: asyncio.TimerHandle | None = None
    relays: list[Relay] = field(default_factory=list)


class SimAgent:
    """One simulated Pi agent (see the module's docstring)."""

    def __init__(
        self,
        node: str,
        bays: list[str],
        brokers: list[tuple[str, int]],
        *,
        prefix: str = PREFIX,
        heartbeat_s: int = 30,
        max_session_s: float = 14400,
        keepalive: int = 10,
    ) -> None:
        self.node = node
        self.bays = {bay: Bay(bay) for bay in bays}
        self.brokers = brokers
        self.prefix = prefix
        self.heartbeat_s = heartbeat_s
        self.limits = Limits(max_session_s=max_session_s, default_s=3600)
        self.keepalive = keepalive
        self.finished: dict[str, Finish] = {}
        self.received: list[Received] = []
        self.states: list[tuple[float, str, dict[str, Any]]] = []
        self.connects: list[tuple[float, int]] = []
        self.lost_at: list[float] = []
        self.broker_index = 0
        self.connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._misc: asyncio.Task[None] | None = None
        self._beats: asyncio.Task[None] | None = None
        # When each heartbeat was published (monotonic): "3 missed heartbeats" counts from
        # the last one.
        self.beat_at: list[float] = []
        self._stopping = False
        self.client = self._client()

    @property
    def topic(self) -> str:
        """The agent's topic root."""
        return f"{self.prefix}/{self.node}"

    # -- paho on the event loop ---------------------------------------------------------

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pi-mqtt-relay-{self.node}",
            clean_session=False,
        )
        client.will_set(f"{self.topic}/availability", "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(sock, client.loop_read)
        self._misc = loop.create_task(self._misc_loop())

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(sock)
        loop.remove_writer(sock)
        if self._misc is not None:
            self._misc.cancel()

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        asyncio.get_running_loop().add_writer(sock, client.loop_write)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        asyncio.get_running_loop().remove_writer(sock)

    async def _misc_loop(self) -> None:
        # paho's housekeeping (keepalive pings, retries) wants a call a second: a timer.
        while self.client.loop_misc() == mqtt.MQTT_ERR_SUCCESS:  # noqa: ASYNC110
            await asyncio.sleep(1)

    # -- connection, failover -----------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background) and stay connected until :meth:`stop`."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST_S
        failures = 0
        while not self._stopping:
            host, port = self.brokers[self.broker_index]
            self._disconnected.clear()
            try:
                self.client.connect(host, port, keepalive=self.keepalive)
            except OSError:
                self._disconnected.set()
            await self._disconnected.wait()
            if self._stopping:
                return
            if self.connected.is_set():
                self.connected.clear()
                backoff, failures = BACKOFF_FIRST_S, 0
            else:
                failures += 1
            self.broker_index = (self.broker_index + 1) % len(self.brokers)
            if failures and failures % len(self.brokers) == 0:
                # A full round refused: wait, as the agent does, before the next round.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            return
        self.connects.append((time.monotonic(), self.broker_index))
        client.subscribe(f"{self.topic}/+/set", qos=1)
        self._publish("availability", "online")
        self._publish(
            "config",
            json.dumps(
                {
                    "node": self.node,
                    "name": self.node,
                    "sw_version": "fleet-sim",
                    "bays": [{"id": bay, "name": bay} for bay in self.bays],
                    "max_session_s": self.limits.max_session_s,
                }
            ),
        )
        for bay in self.bays:
            self.report(bay, Reason.BOOT if len(self.connects) == 1 else Reason.RESUMED)
        self.heartbeat()
        self.connected.set()
        if self._beats is not None:
            self._beats.cancel()
        self._beats = asyncio.get_running_loop().create_task(self._heartbeats())

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self.connected.is_set():
            self.lost_at.append(time.monotonic())
        self._disconnected.set()

    async def _heartbeats(self) -> None:
        """Every ``every`` seconds while this connection lasts (the next one starts anew)."""
        while True:
            await asyncio.sleep(self.heartbeat_s)
            if not self.connected.is_set():
                return
            self.heartbeat()

    def heartbeat(self) -> None:
        """The retained heartbeat with the agent's clock (issue #27's contract)."""
        self.beat_at.append(time.monotonic())
        self._publish("heartbeat", json.dumps({"at": time.time(), "every": self.heartbeat_s}))

    def _publish(self, sub: str, payload: str) -> None:
        self.client.publish(f"{self.topic}/{sub}", payload, qos=1, retain=True)

    async def stop(self, *, clean: bool = True) -> None:
        """Stop. ``clean``: availability ``offline`` first, as the agent's clean stop does.

        ``clean=False`` is a Pi that died where no will is published (a clustered broker's
        node died with it, or its link froze): a bare DISCONNECT, which suppresses the will,
        leaving the retained ``online`` and heartbeat behind.
        """
        self._stopping = True
        if clean and self.connected.is_set():
            info = self.client.publish(f"{self.topic}/availability", "offline", qos=1, retain=True)
            for _ in range(100):
                if info.is_published():
                    break
                await asyncio.sleep(0.02)
        self.connected.clear()
        self.client.disconnect()
        self._disconnected.set()
        for bay in self.bays.values():
            if bay.timer is not None:
                bay.timer.cancel()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=5)
        for task in (self._misc, self._beats):
            if task is not None:
                task.cancel()

    # -- the bays -----------------------------------------------------------------------

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        bay_id = parts[-2]
        self.received.append(Received(time.monotonic(), bay_id, bytes(msg.payload)))
        bay = self.bays.get(bay_id)
        if bay is None:
            return
        try:
            command = parse_command(msg.payload)
        except MalformedCommand:
            self.report(bay_id, Reason.REJECTED_MALFORMED)
            return
        at = now()
        decision = decide(
            bay.active,
            command,
            now=at,
            limits=self.limits,
            finished=self.finished,
            manual_id=f"manual-{bay_id}-{int(at.wall)}",
        )
        if decision.finished is not None:
            session, how = decision.finished
            self.finished[session] = how
        if decision.changed:
            self._switch(bay, decision.active, decision.reason, at)
        if decision.reason is not None:
            self.report(bay_id, decision.reason)

    def _switch(
        self, bay: Bay, active: ActiveSession | None, reason: Reason | None, at: Now
    ) -> None:
        """Move the relay and its deadline timer to the decided session."""
        if bay.timer is not None:
            bay.timer.cancel()
            bay.timer = None
        if bay.relays and bay.relays[-1].off_at is None:
            last = bay.relays[-1]
            if active is None or active.session != last.session:
                last.off_at, last.off_reason = at.mono, str(reason)
        if active is not None:
            if not bay.relays or bay.relays[-1].off_at is not None:
                bay.relays.append(Relay(active.session, at.mono, active.deadline))
            bay.relays[-1].until_mono = active.deadline
            loop = asyncio.get_running_loop()
            delay = max(0.0, active.deadline - time.monotonic())
            bay.timer = loop.call_later(delay, self._deadline, bay)
        bay.active = active

    def _deadline(self, bay: Bay) -> None:
        decision = expire(bay.active, now())
        if decision is None:  # a top-up moved it on
            return
        if decision.finished is not None:
            self.finished[decision.finished[0]] = decision.finished[1]
        self._switch(bay, None, decision.reason, now())
        self.report(bay.id, Reason.DEADLINE)

    def report(self, bay_id: str, reason: Reason) -> None:
        """Publish a bay's retained state as the agent does."""
        active = self.bays[bay_id].active
        at = now()
        state = {
            "state": "ON" if active else "OFF",
            "session": active.session if active else None,
            "until": active.until if active else None,
            "remaining": round(active.remaining(at), 1) if active else 0,
            "reason": str(reason),
        }
        self.states.append((at.mono, bay_id, state))
        if self.client.is_connected():
            self._publish(f"{bay_id}/state", json.dumps(state))


def spread(
    count: int, bays_per_agent: int, brokers: list[tuple[str, int]], **kwargs: Any
) -> list[SimAgent]:
    """``count`` agents (``node-0001``…), each starting on a different broker in turn."""
    agents = []
    for n in range(1, count + 1):
        node = f"node-{n:04d}"
        bays = [f"bay-{n:04d}-{b}" for b in range(1, bays_per_agent + 1)]
        rotated = brokers[(n - 1) % len(brokers) :] + brokers[: (n - 1) % len(brokers)]
        agents.append(SimAgent(node, bays, rotated, **kwargs))
    return agents


def parse_brokers(entries: list[str]) -> list[tuple[str, int]]:
    """``host:port`` entries, as in the agent's ``mqtt.brokers``."""
    out = []
    for entry in entries:
        host, _, port = entry.rpartition(":")
        out.append((host, int(port)))
    return out
