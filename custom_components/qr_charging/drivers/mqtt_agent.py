"""A bay on a ``pi-mqtt-relay`` agent, spoken to with the MQTT contract of docs/mqtt-protocol.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from ..const import LOGGER
from ..energy_rules import ReportedMeter
from ..heartbeat_rules import alive_until, finite_number, parse_heartbeat
from ..relays import agent_identifier, agent_name
from .base import AgentInfo, BayDriver, BayReport

AVAILABLE = "online"


# Deadlines outside these years are not the agent's: a broken clock, or someone else's message.
EARLIEST_UNTIL = 1_577_836_800.0  # 2020-01-01
LATEST_UNTIL = 4_102_444_800.0  # 2100-01-01


def parse_state(payload: str | bytes | bytearray) -> BayReport | None:
    """Read the agent's state message; None when it is not one (then it changes nothing).

    A powered bay must say until when, as a plausible time; ``remaining`` (seconds), and a
    metered bay's ``power_w`` and ``energy_wh``, when present, are finite and not negative.
    """
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("state") not in ("ON", "OFF"):
        return None
    powered = data["state"] == "ON"
    until = finite_number(data.get("until"))
    if data.get("until") is not None and (
        until is None or not EARLIEST_UNTIL <= until <= LATEST_UNTIL
    ):
        return None
    if powered and until is None:
        return None
    measured: dict[str, float | None] = {}
    for name in ("remaining", "power_w", "energy_wh"):
        if data.get(name) is not None:
            value = finite_number(data[name])
            if value is None or value < 0:
                return None
            measured[name] = value
    session = data.get("session")
    return BayReport(
        powered=powered,
        session_id=session if isinstance(session, str) else None,
        until=until,
        reason=str(data["reason"]) if data.get("reason") is not None else None,
        power_w=measured.get("power_w"),
        energy_wh=measured.get("energy_wh"),
    )


def parse_config(payload: str | bytes | bytearray) -> dict[str, Any] | None:
    """Read an agent's retained config message; None when it is not one."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("node"), str):
        return None
    bays = data.get("bays")
    if not isinstance(bays, list) or not all(
        isinstance(b, dict) and isinstance(b.get("id"), str) for b in bays
    ):
        return None
    return data


def bay_meter(data: dict[str, Any], agent_bay: str) -> tuple[str, ReportedMeter] | None:
    """The kind of meter an agent's config names for one of its bays, and its maximum power.

    None: no meter. A ``max_power_w`` that is no positive number is not named (None).
    """
    for bay in data["bays"]:
        if bay["id"] == agent_bay and isinstance(meter := bay.get("meter"), dict):
            kind = meter.get("kind")
            most = finite_number(meter.get("max_power_w"))
            return (
                kind if isinstance(kind, str) and kind else "meter",
                ReportedMeter(most if most is not None and most > 0 else None),
            )
    return None


async def _wait(event: asyncio.Event, within: float) -> None:
    """Wait for ``event``, at most ``within`` seconds."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), within)


class MqttAgentDriver(BayDriver):
    """``<prefix>/<node>/<bay>/set`` commands; ``state``, ``availability``, ``config``, heartbeat.

    The agent is online while its availability says so, HA is connected to the broker and,
    once it has sent a heartbeat, its heartbeats keep coming (``heartbeat_rules``).
    """

    def __init__(
        self,
        hass: HomeAssistant,
        bay_id: str,
        on_report: Callable[[BayReport], None],
        on_change: Callable[[], None],
        *,
        prefix: str,
        node: str,
        agent_bay: str,
        full: dict[str, int] | None = None,
    ) -> None:
        super().__init__(hass, bay_id, on_report, on_change)
        self._prefix, self._node, self._agent_bay, self._full = prefix, node, agent_bay, full
        # The running metered session's energy counted so far, as the agent last said.
        self._energy: tuple[str, float] | None = None
        self._power: float | None = None
        self._base = f"{prefix}/{node}"
        self._bay_topic = f"{prefix}/{node}/{agent_bay}"
        self.agent = self._agent_info(node, None)
        self._unsubscribe: list[Callable[[], None]] = []
        self._agent_online = False
        self._link_up = False
        # Whether the heartbeats keep coming (True for an agent that never sent one), and the
        # timer that ends it when the next does not come in time.
        self._beating = True
        self._beat_timer: CALLBACK_TYPE | None = None
        # The agent's time in the last heartbeat judged: the same one replayed (HA's broker
        # link came back and resubscribed) keeps the verdict of its live receipt.
        self._last_beat_at: float | None = None
        self._availability_known = asyncio.Event()
        # Set by each well-formed state (then replaced): waiters see every report in turn.
        self._state_heard = asyncio.Event()
        self._last_state: BayReport | None = None

    async def async_setup(self) -> None:
        """Subscribe to the agent's retained topics (if HA's MQTT client is there at all)."""
        if not await mqtt.async_wait_for_mqtt_client(self.hass):
            LOGGER.warning("MQTT is not set up; bay %s stays offline", self.bay_id)
            return
        self._link_up = mqtt.is_connected(self.hass)
        # The agent's "offline" cannot reach HA while HA itself has lost the broker.
        self._unsubscribe.append(
            mqtt.async_subscribe_connection_status(self.hass, self._connection)
        )
        # The heartbeat first: the broker replays retained messages in the order of the
        # subscriptions, and a stale heartbeat must be judged before a retained ``online``
        # makes the bay known (and for sale) for a moment.
        # QoS 0: HA's MQTT session is clean, so QoS 1 would re-send nothing across a lost
        # connection (the retained topics come back on resubscribing), and NATS's MQTT replays
        # only a few dozen retained messages to a client subscribing to many topics at QoS 1.
        for topic, handler in (
            (f"{self._base}/heartbeat", self._heartbeat),
            (f"{self._base}/availability", self._availability),
            (f"{self._base}/config", self._config),
            (f"{self._bay_topic}/state", self._state),
        ):
            self._unsubscribe.append(await mqtt.async_subscribe(self.hass, topic, handler, qos=0))

    async def async_unload(self) -> None:
        """Unsubscribe."""
        self._stop_beat_timer()
        while self._unsubscribe:
            self._unsubscribe.pop()()

    @callback
    def _connection(self, connected: bool) -> None:
        self._link_up = connected
        self._update_online()

    @callback
    def _availability(self, msg: mqtt.ReceiveMessage) -> None:
        self._agent_online = msg.payload == AVAILABLE
        self._availability_known.set()
        self._update_online()

    @callback
    def _heartbeat(self, msg: mqtt.ReceiveMessage) -> None:
        beat = parse_heartbeat(msg.payload)
        if beat is None:
            LOGGER.debug("Ignoring malformed agent heartbeat on %s: %s", msg.topic, msg.payload)
            return
        if msg.retain and beat.at == self._last_beat_at:
            # Judged when it came: judging it again by the agent's clock would put a dead
            # agent whose clock is ahead back on sale, or a live one whose clock is behind off.
            return
        self._last_beat_at = beat.at
        now = dt_util.utcnow().timestamp()
        until = alive_until(beat, received=now, retained=msg.retain)
        self._stop_beat_timer()
        self._beating = now <= until
        if self._beating:
            self._beat_timer = async_track_point_in_utc_time(
                self.hass, self._heartbeats_missed, dt_util.utc_from_timestamp(until)
            )
        self._update_online()

    @callback
    def _heartbeats_missed(self, _now: datetime) -> None:
        """No newer heartbeat came in time: the agent is offline, whatever its availability."""
        self._beat_timer = None
        LOGGER.info("Agent %s missed its heartbeats", self._node)
        self._beating = False
        self._update_online()

    def _stop_beat_timer(self) -> None:
        if self._beat_timer is not None:
            self._beat_timer()
            self._beat_timer = None

    @property
    def known(self) -> bool:
        """Whether the agent's retained availability has arrived since subscribing."""
        return self._availability_known.is_set()

    async def async_wait_known(self, within: float) -> None:
        """The agent's retained availability arrives soon after subscribing; wait for it."""
        await _wait(self._availability_known, within)

    async def async_wait_state(
        self, within: float, settled: Callable[[BayReport], bool] | None = None
    ) -> None:
        """The bay's retained state arrives soon after subscribing; wait for it (bounded).

        No wait when none can come: MQTT is not set up (nothing subscribed) or not connected.
        With ``settled``, wait on (same bound) until a state it accepts: the agent's answer.
        """
        if not self._unsubscribe or not self._link_up:
            return
        deadline = asyncio.get_running_loop().time() + within
        while True:
            last = self._last_state
            if last is not None and (settled is None or settled(last)):
                return
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await _wait(self._state_heard, left)

    @callback
    def _update_online(self) -> None:
        # One verdict for the runner (``BayRunner._on_driver_change``): missed heartbeats take
        # the bay offline exactly as an ``offline`` availability does.
        online = self._agent_online and self._link_up and self._beating
        if online != self.online:
            self.online = online
            self._on_change()

    def _agent_info(self, name: str, sw_version: str | None) -> AgentInfo:
        """The agent's device: one per prefix and node, its prefix shown when not the default."""
        return AgentInfo(
            identifier=agent_identifier(self._prefix, self._node),
            name=agent_name(self._prefix, name),
            sw_version=sw_version,
            model="pi-mqtt-relay",
        )

    @callback
    def _config(self, msg: mqtt.ReceiveMessage) -> None:
        data = parse_config(msg.payload)
        if data is None:
            LOGGER.warning("Ignoring malformed agent config on %s", msg.topic)
            return
        self.agent = self._agent_info(
            str(data.get("name") or data["node"]),
            str(data["sw_version"]) if data.get("sw_version") else None,
        )
        limit = data.get("max_session_s")
        valid = isinstance(limit, int) and not isinstance(limit, bool) and limit > 0
        self.max_session_s = limit if valid else None
        # Energy is sold only where the agent counts it: an old agent names no meter.
        found = bay_meter(data, self._agent_bay)
        self.metered = found is not None
        self.meter = f"{found[0]} ({self._node}/{self._agent_bay})" if found else None
        self.reported_meter = found[1] if found else None
        self._on_change()

    @callback
    def _state(self, msg: mqtt.ReceiveMessage) -> None:
        report = parse_state(msg.payload)
        if report is None:
            LOGGER.warning("Ignoring malformed bay state on %s", msg.topic)
            return
        if report.session_id is not None and report.energy_wh is not None:
            self._energy = (report.session_id, report.energy_wh)
        self._power = report.power_w
        self._last_state = replace(report, fresh=not msg.retain)
        self._on_report(self._last_state)
        # After the report is handed on: a waiting setup finds its verdict under way.
        heard, self._state_heard = self._state_heard, asyncio.Event()
        heard.set()

    @property
    def power_w(self) -> float | None:
        """The power the agent last reported (W)."""
        return self._power

    def energy_for(self, session_id: str) -> float | None:
        """The energy the agent last reported for the session (Wh)."""
        return self._energy[1] if self._energy and self._energy[0] == session_id else None

    async def _publish(self, command: dict[str, Any]) -> None:
        # Never retained: a retained "on" would replay after a power cut (architecture.md).
        await mqtt.async_publish(
            self.hass, f"{self._bay_topic}/set", json.dumps(command), qos=1, retain=False
        )

    async def async_turn_on(
        self, session_id: str, until: float, duration: int, sent: float, energy_wh: float | None
    ) -> None:
        """Send ``on`` for the session.

        A session sold by the kWh carries the energy paid for (a top-up: all of it). Every
        session at a bay whose agent names a meter carries the bay's vehicle-full rule, one
        sold by time too (as at a metered switch bay); an old agent's bay gets no ``full``.
        """
        command: dict[str, Any] = {
            "action": "on",
            "session": session_id,
            "until": until,
            "duration": duration,
            "sent": sent,
        }
        if energy_wh is not None:
            command["energy_wh"] = energy_wh
        if self._full is not None and (self.metered or energy_wh is not None):
            command["full"] = self._full
        await self._publish(command)

    async def async_turn_off(self, session_id: str | None) -> None:
        """Send ``off`` for the session (plain ``OFF`` when there is none)."""
        if session_id is None:
            await mqtt.async_publish(
                self.hass, f"{self._bay_topic}/set", "OFF", qos=1, retain=False
            )
            return
        await self._publish({"action": "off", "session": session_id})
