"""End to end: the real integration drives the real relay agent over a real Mosquitto.

Nothing plays the Pi here: ``pi_mqtt_relay``'s own ``Agent`` runs in-process on gpiozero's
``MockFactory`` pins, so what the integration sends and what the agent understands (and the
other way round) meet only through the MQTT contract of docs/mqtt-protocol.md. Razorpay is the
stand-in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

# The agent and gpiozero are installed in the floor line's venv only (HA's current line runs
# on Python 3.14 without them); there this module is skipped.
pytest.importorskip("gpiozero", reason="the relay agent's gpiozero is not installed")
pytest.importorskip("pi_mqtt_relay.agent", reason="the relay agent package is not installed")

import yaml
from gpiozero.pins.mock import MockFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.qr_charging.const import (
    DOMAIN,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_FAILED,
    EVENT_SESSION_STARTED,
)
from devtools.razorpay_standin import RazorpayStandin
from pi_mqtt_relay.agent import Agent
from pi_mqtt_relay.config import load_config
from tests.agent.helpers import Observer
from tests.mosquitto import Broker

from .const import PLAN_PRICE
from .helpers import PostWebhook, export_sessions, pay, refund_amounts
from .mqtt_helpers import NODE, PLAN_S, wait_until

PIN = 17
BAY = "bay-1"


class RealAgent:
    """``pi_mqtt_relay``'s Agent on mock pins; stopped and started again as the Pi would be.

    Every start builds a new ``Agent`` on the same configuration, state file and pin factory,
    so a restart keeps only what the agent keeps itself: its state file.
    """

    def __init__(self, workdir: Path, port: int) -> None:
        workdir.mkdir()
        self.state_file = workdir / "state.json"
        config = workdir / "agent.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "broker": {"host": "127.0.0.1", "port": port, "keepalive": 5},
                    "node": {"id": NODE, "name": "Kiosk 1"},
                    "state_file": str(self.state_file),
                    "max_session_s": 14400,
                    "bays": [{"id": BAY, "name": "Bay 1", "pin": PIN}],
                }
            )
        )
        self.config = load_config(config)
        self.factory = MockFactory()
        self.running: Agent | None = None

    def start(self) -> None:
        """Blocking: run it in an executor from the event loop."""
        assert self.running is None
        # The test machine's clock counts as synced (systemd's flag cannot be arranged here).
        self.running = Agent(self.config, pin_factory=self.factory, clock_synced=lambda: True)
        self.running.start()

    def stop(self) -> None:
        """Relays off, sessions stored, ``offline``; joins the agent's threads."""
        running, self.running = self.running, None
        if running is not None:
            running.stop()

    @property
    def pin(self) -> Any:
        return self.factory.pin(PIN)

    @property
    def powered(self) -> bool:
        """Whether bay-1's relay is energised (active high)."""
        return bool(self.pin.state)

    @property
    def times_switched_on(self) -> int:
        """How often the relay was energised since the pin was first claimed."""
        return sum(1 for change in self.pin.states if change.state)

    def finished(self) -> dict[str, Any]:
        """Ended and cancelled session ids in the agent's state file."""
        if not self.state_file.exists():
            return {}
        return dict(json.loads(self.state_file.read_text())["finished"])


@pytest.fixture
def agent(broker: Broker, tmp_path: Path) -> Generator[RealAgent]:
    """The real agent, connected; ``mqtt_bay_entry`` waits for it to be online.

    Named as the scripted agent of test_mqtt_agent.py so that fixture uses this one. Stopped
    before the broker (it depends on it), so no agent thread outlives the test.
    """
    real = RealAgent(tmp_path / "agent", broker.port)
    real.start()
    yield real
    real.stop()


@pytest.fixture
def observer(broker: Broker) -> Generator[Observer]:
    """An outside MQTT client recording what the agent publishes."""
    obs = Observer(broker.port, NODE)
    yield obs
    obs.close()


def _states(observer: Observer, since: int = 0, **expected: Any) -> list[dict[str, Any]]:
    """bay-1's state messages since ``since`` with these fields."""
    return [
        s
        for s in observer.states(BAY, since)
        if all(s.get(key) == value for key, value in expected.items())
    ]


async def _retained_state(hass: HomeAssistant, broker_: Broker) -> dict[str, Any]:
    """bay-1's state as the broker keeps it, read by a client that connects only now."""
    late = await hass.async_add_executor_job(Observer, broker_.port, NODE)
    try:
        await wait_until(hass, lambda: bool(late.states(BAY)))
        (message,) = [m for m in late.messages if m.topic == late.state_topic(BAY)]
        assert message.retain
        return dict(message.json())
    finally:
        await hass.async_add_executor_job(late.close)


async def _row(hass: HomeAssistant) -> dict[str, str]:
    (row,) = await export_sessions(hass)
    return row


async def _active_session(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> tuple[Any, str]:
    """Pay, and wait until HA takes the agent's report as the session's start."""
    started = async_capture_events(hass, EVENT_SESSION_STARTED)
    paid = await pay(hass, standin, post_webhook)
    await wait_until(hass, lambda: len(started) == 1)
    return paid, str(started[0].data["session_id"])


async def test_payment_powers_the_relay(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: RealAgent,
    mqtt_bay_entry: MockConfigEntry,
    broker: Broker,
) -> None:
    assert not agent.powered
    before = time.time()
    paid, session_id = await _active_session(hass, standin, post_webhook)

    # The session became active on the agent's own report, so the relay is on by then.
    assert agent.powered
    row = await _row(hass)
    assert (row["session_id"], row["state"], row["payment_ids"]) == (
        session_id,
        "active",
        paid.payment_id,
    )
    until = float(row["until"])
    assert before + PLAN_S <= until <= time.time() + PLAN_S
    assert mqtt_bay_entry.runtime_data.bays.runners[BAY].status == "charging"

    state = await _retained_state(hass, broker)
    assert state["state"] == "ON"
    assert state["session"] == session_id
    assert state["until"] == pytest.approx(until)
    assert state["reason"] == "command"
    assert 0 < state["remaining"] <= PLAN_S
    assert refund_amounts(standin, paid.payment_id) == []


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_stop_with_prorata_refund(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: RealAgent,
    observer: Observer,
) -> None:
    paid, session_id = await _active_session(hass, standin, post_webhook)
    mark = observer.mark()

    response = await hass.services.async_call(
        DOMAIN,
        "stop_session",
        {"bay": BAY, "refund": "prorata"},
        blocking=True,
        return_response=True,
    )

    assert response is not None
    await wait_until(hass, lambda: bool(_states(observer, mark, reason="off_command")))
    assert not agent.powered
    assert _states(observer, mark, reason="off_command")[0] | {"remaining": 0} == {
        "state": "OFF",
        "session": None,
        "until": None,
        "remaining": 0,
        "reason": "off_command",
    }
    # Stopped within seconds of the start: almost all of it comes back, never more.
    assert PLAN_PRICE - 20 <= int(response["refunded"]) < PLAN_PRICE
    assert refund_amounts(standin, paid.payment_id) == [response["refunded"]]
    row = await _row(hass)
    assert (row["state"], row["end_reason"]) == ("ended", "stopped")
    # The agent keeps the stopped session as cancelled: a replayed "on" cannot power it again.
    assert agent.finished()[session_id]["kind"] == "cancelled"
    await hass.async_add_executor_job(observer.send_on, BAY, session_id, 600)
    await wait_until(hass, lambda: bool(_states(observer, mark, reason="rejected_cancelled")))
    assert not agent.powered
    assert agent.times_switched_on == 1


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_top_up_extends_the_agents_deadline(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: RealAgent,
    observer: Observer,
) -> None:
    _, session_id = await _active_session(hass, standin, post_webhook)
    await wait_until(hass, lambda: bool(_states(observer, state="ON", session=session_id)))
    first = _states(observer, state="ON", session=session_id)[-1]
    mark = observer.mark()

    second = await pay(hass, standin, post_webhook)

    await wait_until(hass, lambda: bool(_states(observer, mark, reason="top_up")))
    (topped,) = _states(observer, mark, reason="top_up")
    assert (topped["state"], topped["session"]) == ("ON", session_id)
    assert topped["until"] == pytest.approx(first["until"] + PLAN_S)
    assert topped["remaining"] == pytest.approx(first["remaining"] + PLAN_S, abs=5)
    # The relay stayed on throughout: energised once, never switched off in between.
    assert agent.powered
    assert agent.times_switched_on == 1
    row = await _row(hass)
    assert (row["session_id"], row["state"]) == (session_id, "active")
    assert (row["seconds"], row["paid_paise"]) == (str(2 * PLAN_S), str(2 * PLAN_PRICE))
    assert float(row["until"]) == pytest.approx(topped["until"])
    assert refund_amounts(standin, second.payment_id) == []


async def test_agent_restart_resumes_the_session(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: RealAgent,
    mqtt_bay_entry: MockConfigEntry,
    observer: Observer,
) -> None:
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    paid, session_id = await _active_session(hass, standin, post_webhook)
    until = float((await _row(hass))["until"])
    runner = mqtt_bay_entry.runtime_data.bays.runners[BAY]
    mark = observer.mark()

    await hass.async_add_executor_job(agent.stop)

    assert not agent.powered
    await wait_until(hass, lambda: not runner.driver.online)
    await wait_until(hass, lambda: bool(_states(observer, mark, reason="shutdown")))
    (shutdown,) = _states(observer, mark, reason="shutdown")
    # Off for now, but the session is named: it is stored, not ended.
    assert (shutdown["state"], shutdown["session"]) == ("OFF", session_id)
    assert shutdown["until"] == pytest.approx(until)
    await wait_until(
        hass, lambda: runner.last_report is not None and not runner.last_report.powered
    )
    assert (await _row(hass))["state"] == "active"
    assert runner.status == "charging"

    mark = observer.mark()
    await hass.async_add_executor_job(agent.start)

    await wait_until(hass, lambda: runner.driver.online and agent.powered)
    await wait_until(hass, lambda: bool(_states(observer, mark, state="ON", reason="resumed")))
    # The first state after the restart; HA's "on", re-sent when it saw "shutdown", may follow
    # it (queued by the broker for the agent's persistent session) as a no-op.
    resumed = _states(observer, mark, state="ON", reason="resumed")[0]
    assert resumed["session"] == session_id
    assert resumed["until"] == pytest.approx(until)
    assert 0 < resumed["remaining"] <= until - time.time() + 1
    await wait_until(hass, lambda: runner.last_report is not None and runner.last_report.powered)
    row = await _row(hass)
    assert (row["session_id"], row["state"]) == (session_id, "active")
    assert float(row["until"]) == pytest.approx(until)
    assert (ended, failed) == ([], [])
    assert refund_amounts(standin, paid.payment_id) == []
    # Whatever HA re-sent while the agent was away changes nothing: still the same session.
    assert all(
        s["state"] == "ON" and s["session"] == session_id for s in observer.states(BAY, mark)
    )
    assert agent.powered
    assert agent.times_switched_on == 2


async def test_agent_offline_at_payment_refunds_and_never_powers(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: RealAgent,
    mqtt_bay_entry: MockConfigEntry,
    observer: Observer,
) -> None:
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    runner = mqtt_bay_entry.runtime_data.bays.runners[BAY]
    await hass.async_add_executor_job(agent.stop)
    await wait_until(hass, lambda: not runner.driver.online)
    assert runner.status == "offline"

    paid = await pay(hass, standin, post_webhook)

    await wait_until(hass, lambda: len(failed) == 1)
    assert failed[0].data["reason"] == "bay_offline"
    await wait_until(hass, lambda: bool(refund_amounts(standin, paid.payment_id)))
    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
    row = await _row(hass)
    assert row["state"] == "refunded"
    session_id = row["session_id"]

    mark = observer.mark()
    await hass.async_add_executor_job(agent.start)
    await wait_until(hass, lambda: runner.driver.online)

    # HA's "off" waited at the broker (the agent's persistent session) and marks the session
    # cancelled on the agent, so even a late "on" for it is refused.
    await wait_until(hass, lambda: session_id in agent.finished())
    assert agent.finished()[session_id]["kind"] == "cancelled"
    await hass.async_add_executor_job(observer.send_on, BAY, session_id, PLAN_S)
    await wait_until(hass, lambda: bool(_states(observer, mark, reason="rejected_cancelled")))
    assert all(s["state"] == "OFF" for s in observer.states(BAY, mark))
    assert not agent.powered
    assert agent.times_switched_on == 0
    assert (await _row(hass))["state"] == "refunded"
    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
