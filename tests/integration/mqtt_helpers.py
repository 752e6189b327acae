"""The MQTT side of the integration tests: a real Mosquitto, HA's own MQTT integration, and a
scripted agent (a plain paho client playing the Pi) with the account's bay-1 on it.

The fixtures that set these up (``broker``, ``mqtt_entry``, ``agent``, ``mqtt_bay_entry``, ...)
are in ``conftest.py``; this module holds what tests call.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any
from unittest.mock import patch

import paho.mqtt.client as paho
from homeassistant.core import HomeAssistant
from paho.mqtt.enums import CallbackAPIVersion
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.qr_charging.bays import Bays
from custom_components.qr_charging.const import EVENT_SESSION_STARTED
from devtools.razorpay_standin import RazorpayStandin

from .helpers import PostWebhook, pay

NODE = "kiosk-1"
# Another site's prefix on the same broker, where a kiosk-1 of its own publishes (review F2).
SITE_B = "site-b"
SET = f"qr_charging/{NODE}/bay-1/set"
STATE = f"qr_charging/{NODE}/bay-1/state"
HEARTBEAT = f"qr_charging/{NODE}/heartbeat"
PLAN_S = 1800


class ScriptedAgent:
    """Plays the Pi: retained availability, config and state; answers ``on`` when told to.

    ``powered`` is the session its last state report powers (set by every ``report``); an
    ``off`` answers as the agent's ``sessions._off`` does: only its own session ends. Under
    another ``prefix`` it is another site's kiosk-1 (its own client id, as the real agent's).
    """

    def __init__(self, port: int, prefix: str = "qr_charging") -> None:
        base = f"{prefix}/{NODE}"
        self._state_topic = f"{base}/bay-1/state"
        self.answer = True
        self.refuse_top_up = False
        self.powered: tuple[str, float] | None = None
        self._reason = "boot"  # the reason its state last gave (an unchanged state keeps it)
        self.hold_offs = False  # keep each ``off`` unanswered until ``release_offs``
        self._held: list[str] = []
        self.commands: list[tuple[dict[str, Any] | str, bool, int]] = []
        self._cond = threading.Condition()
        client_id = "scripted-agent" if prefix == "qr_charging" else f"scripted-agent-{prefix}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.will_set(f"{base}/availability", "offline", qos=1, retain=True)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(f"{base}/bay-1/set", qos=1)
        assert subscribed.wait(5)
        self.publish(f"{base}/availability", "online")
        self.publish(
            f"{base}/config",
            json.dumps(
                {
                    "node": NODE,
                    "name": "Kiosk 1",
                    "sw_version": "0.1.0",
                    "bays": [{"id": "bay-1", "name": "Bay 1"}],
                    "max_session_s": 14400,
                }
            ),
        )
        self.report(None, None, "boot")

    def publish(self, topic: str, payload: str, *, wait: bool = True) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=True)
        if wait:  # never from paho's own thread: it would wait on itself
            info.wait_for_publish(5)

    def report(
        self, session: str | None, until: float | None, reason: str, *, wait: bool = True
    ) -> None:
        """Publish the bay's state as the real agent does (retained)."""
        on = session is not None
        self.powered = (session, until) if session is not None and until is not None else None
        if not reason.startswith("rejected_"):  # a refusal's reason is not kept by the agent
            self._reason = reason
        self.publish(
            self._state_topic,
            json.dumps(
                {
                    "state": "ON" if on else "OFF",
                    "session": session,
                    "until": until,
                    "remaining": max(until - time.time(), 0) if until else 0,
                    "reason": reason,
                }
            ),
            wait=wait,
        )

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        text = msg.payload.decode()
        try:
            command: dict[str, Any] | str = json.loads(text)
        except ValueError:
            command = text
        with self._cond:
            self.commands.append((command, bool(msg.retain), msg.qos))
            self._cond.notify_all()
        if self.answer and isinstance(command, dict) and command.get("action") == "on":
            if self.refuse_top_up and self.powered and self.powered[0] == command["session"]:
                # The agent's state is unchanged; only the reason tells of the refusal.
                self.report(*self.powered, "rejected_too_long", wait=False)
                return
            self.report(command["session"], command["until"], "command", wait=False)
        elif isinstance(command, dict) and command.get("action") == "off":
            if self.hold_offs:
                with self._cond:
                    self._held.append(command["session"])
                    self._cond.notify_all()
                return
            self._answer_off(command["session"], wait=False)

    def _answer_off(self, session_id: str, *, wait: bool) -> None:
        if self.powered is not None and self.powered[0] == session_id:
            self.report(None, None, "off_command", wait=wait)
            return
        # An ``off`` naming another session (a refused payment's) leaves the bay as it was:
        # the agent publishes its unchanged state, never an ``OFF``.
        session, until = self.powered or (None, None)
        self.report(session, until, self._reason, wait=wait)

    @property
    def held(self) -> list[str]:
        """The sessions of the ``off`` commands held (``hold_offs``), in order."""
        with self._cond:
            return list(self._held)

    def release_offs(self) -> None:
        """Answer the ``off`` commands held, in order, and answer the next ones at once."""
        self.hold_offs = False
        with self._cond:
            held, self._held = self._held, []
        for session_id in held:
            self._answer_off(session_id, wait=True)

    def ons(self, session_id: str | None = None) -> list[dict[str, Any]]:
        """The ``on`` commands HA has sent (for one session, if given), in order."""
        with self._cond:
            return [
                c
                for c, _, _ in self.commands
                if isinstance(c, dict)
                and c.get("action") == "on"
                and session_id in (None, c["session"])
            ]

    async def wait_command(self, count: int, within: float = 10) -> dict[str, Any] | str:
        """The ``count``-th command HA has sent (1-based)."""

        def _wait() -> dict[str, Any] | str:
            with self._cond:
                assert self._cond.wait_for(lambda: len(self.commands) >= count, within), (
                    f"HA sent {len(self.commands)} commands: {self.commands}"
                )
                return self.commands[count - 1][0]

        return await asyncio.get_running_loop().run_in_executor(None, _wait)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def wait_until(hass: HomeAssistant, check: Any, within: float = 10) -> None:
    """Wait for something that crosses the broker (real sockets, real time)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
        await hass.async_block_till_done()


async def frozen_wait(hass: HomeAssistant, check: Any, within: float = 10) -> None:
    """``wait_until`` for a frozen clock: the pauses are a worker thread's, not the loop's."""
    give_up = threading.Event()
    for _ in range(int(within / 0.05)):
        await hass.async_block_till_done()
        if check():
            return
        await hass.async_add_executor_job(give_up.wait, 0.05)
    raise AssertionError("timed out")


async def running_session(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook, agent: ScriptedAgent
) -> tuple[Any, dict[str, Any]]:
    """Pay, and wait for the agent's acknowledgement: the payment and the first ``on``."""
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    sent = len(agent.commands)
    paid = await pay(hass, standin, post_webhook)
    on = await agent.wait_command(sent + 1)
    assert isinstance(on, dict)
    await wait_until(hass, lambda: len(started) == 1)
    return paid, on


async def stopped_with_a_paid_top_up(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    entry: MockConfigEntry,
) -> tuple[Any, Any, dict[str, Any]]:
    """A session starting (its ``on`` unanswered), the next payment stored but not handed to
    the bay, then HA stops (the account's entry unloaded): both payments and the ``on``.
    """
    agent.answer = False
    first = await pay(hass, standin, post_webhook)
    on = await agent.wait_command(1)
    assert isinstance(on, dict)
    with patch.object(Bays, "hand_over"):
        second = await pay(hass, standin, post_webhook)
    assert await hass.config_entries.async_unload(entry.entry_id)
    return first, second, on
