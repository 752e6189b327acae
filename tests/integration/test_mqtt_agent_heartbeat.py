"""An agent's heartbeat (issue #27): offline after 3 missed, whatever its retained availability.

No clustered broker publishes the will of a client whose node died, so the retained ``online``
outlives such an agent. HA's MQTT integration on a real Mosquitto, the scripted agent of
``mqtt_helpers`` (its retained ``online`` never withdrawn here), Razorpay's stand-in for the
refunds, and HA's clock moved by ``freezer`` (frozen only once the broker's set-up round trips
are done: they need the loop's own timers).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.mqtt.models import ReceiveMessage
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging.const import (
    CONF_PAGES_WEBHOOK_ID,
    DOMAIN,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_FAILED,
)
from custom_components.qr_charging.drivers.mqtt_agent import MqttAgentDriver
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_PRICE
from .helpers import PostWebhook, export_sessions, pay, refund_amounts
from .mqtt_helpers import (
    HEARTBEAT,
    NODE,
    ScriptedAgent,
    frozen_wait,
    running_session,
    wait_until,
)

EVERY = 30
AVAILABILITY = f"qr_charging/{NODE}/availability"
STATUS = "sensor.bay_1_status"
CONNECTION = "binary_sensor.bay_1_agent_connection"


def _status(hass: HomeAssistant) -> str | None:
    state = hass.states.get(STATUS)
    return state.state if state is not None else None


def _connected(hass: HomeAssistant) -> str | None:
    state = hass.states.get(CONNECTION)
    return state.state if state is not None else None


def _beat(agent: ScriptedAgent, at: float, every: Any = EVERY) -> None:
    """Publish a heartbeat as the agent does (retained, with its own clock)."""
    agent.publish(HEARTBEAT, json.dumps({"at": at, "every": every}))


async def _heard(hass: HomeAssistant, agent: ScriptedAgent, at: float) -> None:
    """A heartbeat, known to be read: the broker keeps the agent's order, so once the
    ``online`` after it is read (after an ``offline``), so is the heartbeat.
    """
    agent.publish(AVAILABILITY, "offline")
    await frozen_wait(hass, lambda: _connected(hass) == "off")
    _beat(agent, at)
    agent.publish(AVAILABILITY, "online")
    await frozen_wait(hass, lambda: _connected(hass) == "on")


def _freeze(request: pytest.FixtureRequest) -> FrozenDateTimeFactory:
    """HA's clock frozen now (after the set-up, whose broker round trips need it running)."""
    freezer: FrozenDateTimeFactory = request.getfixturevalue("freezer")
    return freezer


async def _move(hass: HomeAssistant, freezer: FrozenDateTimeFactory, to: float) -> None:
    """HA's clock to ``to`` (epoch seconds), its timers due by then fired."""
    freezer.move_to(datetime.fromtimestamp(to, UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def _page_state(hass: HomeAssistant, client: ClientSessionGenerator) -> str:
    """What bay-1's page says, as JSON (``state``: free, charging, unavailable, ...)."""
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    pages = f"/api/webhook/{entry.data[CONF_PAGES_WEBHOOK_ID]}"
    response = await (await client()).get(f"{pages}?bay=bay-1&format=json")
    state: str = (await response.json())["state"]
    return state


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_an_agent_whose_heartbeats_stop_goes_offline_after_three_and_comes_back(
    hass: HomeAssistant,
    agent: ScriptedAgent,
    request: pytest.FixtureRequest,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Before: its retained ``online`` kept the bay for sale as long as HA ran."""
    freezer = _freeze(request)
    t0 = time.time()
    await _heard(hass, agent, t0)
    sells = await _page_state(hass, hass_client_no_auth)

    await _move(hass, freezer, t0 + 3 * EVERY - 1)
    assert _status(hass) == "idle"
    await _move(hass, freezer, t0 + 3 * EVERY + 1)

    assert _status(hass) == "offline"
    assert _connected(hass) == "off"
    assert await _page_state(hass, hass_client_no_auth) != sells
    # The retained availability alone (an agent reconnecting) does not bring it back...
    agent.publish(AVAILABILITY, "online")
    await hass.async_block_till_done()
    assert _status(hass) == "offline"
    # ...a newer heartbeat does.
    _beat(agent, t0 + 3 * EVERY + 1)
    await frozen_wait(hass, lambda: _status(hass) == "idle")
    assert await _page_state(hass, hass_client_no_auth) == sells


async def test_a_retained_heartbeat_long_stale_at_setup_is_offline_at_once(
    hass: HomeAssistant, agent: ScriptedAgent, mqtt_bay_entry: MockConfigEntry
) -> None:
    """The heartbeat the broker replays counts from the agent's ``at``, not from its arrival.

    Before: the bay was online on its retained availability.
    """
    _beat(agent, time.time() - 10 * EVERY)
    assert await hass.config_entries.async_reload(mqtt_bay_entry.entry_id)
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    # Availability, heartbeat and state are replayed in the order HA subscribed to them.
    await wait_until(hass, lambda: runner.driver.known)
    await runner.driver.async_wait_state(5)
    await hass.async_block_till_done()

    assert _status(hass) == "offline"
    _beat(agent, time.time())
    await wait_until(hass, lambda: _status(hass) == "idle")


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_a_sale_paid_while_the_agent_is_silent_is_refused_and_refunded(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    request: pytest.FixtureRequest,
) -> None:
    """Before: the bay counted as online, so the sale was started with an ``on``."""
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    freezer = _freeze(request)
    t0 = time.time()
    await _heard(hass, agent, t0)
    await _move(hass, freezer, t0 + 3 * EVERY + 1)

    paid = await pay(hass, standin, post_webhook)

    await frozen_wait(hass, lambda: len(failed) == 1)
    assert failed[0].data["reason"] == "bay_offline"
    await frozen_wait(hass, lambda: bool(refund_amounts(standin, paid.payment_id)))
    assert refund_amounts(standin, paid.payment_id) == [PLAN_PRICE]
    assert agent.ons() == []


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_a_session_running_when_heartbeats_stop_runs_on_and_a_top_up_is_refunded(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    agent: ScriptedAgent,
    request: pytest.FixtureRequest,
) -> None:
    """As with an ``offline`` availability: the agent keeps the deadline it was given, so the
    session is neither ended nor refunded; the bay's switch goes unavailable, a top-up paid
    meanwhile is refused (``bay_offline``) and refunded, and HA's deadline ends the session.

    Before: the top-up was sent to the silent agent.
    """
    failed = async_capture_events(hass, EVENT_SESSION_FAILED)
    ended = async_capture_events(hass, EVENT_SESSION_ENDED)
    first, on = await running_session(hass, standin, post_webhook, agent)
    freezer = _freeze(request)
    t0 = time.time()
    await _heard(hass, agent, t0)
    await _move(hass, freezer, t0 + 3 * EVERY + 1)
    assert hass.states.get("switch.bay_1_charging").state == "unavailable"
    assert _status(hass) == "charging"

    top_up = await pay(hass, standin, post_webhook)

    await frozen_wait(hass, lambda: len(failed) == 1)
    assert failed[0].data["reason"] == "bay_offline"
    await frozen_wait(hass, lambda: bool(refund_amounts(standin, top_up.payment_id)))
    assert refund_amounts(standin, first.payment_id) == []
    assert len(agent.ons(on["session"])) == 1
    rows = {row["session_id"]: row for row in await export_sessions(hass)}
    assert rows[on["session"]]["state"] == "active"

    await _move(hass, freezer, on["until"] + 1)
    await frozen_wait(hass, lambda: len(ended) == 1)
    assert ended[0].data["reason"] == "deadline"
    assert refund_amounts(standin, first.payment_id) == []


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_bad_heartbeats_are_ignored(
    hass: HomeAssistant, agent: ScriptedAgent, request: pytest.FixtureRequest
) -> None:
    """Neither a keep-alive nor a verdict: the last good heartbeat's deadline stands.

    Before: no heartbeat was read at all, so the bay stayed online after the last good one.
    """
    freezer = _freeze(request)
    t0 = time.time()
    await _heard(hass, agent, t0)
    for payload in (
        "not json",
        "[]",
        json.dumps({"at": t0}),
        json.dumps({"at": -1, "every": EVERY}),
        json.dumps({"at": t0, "every": 0}),
        json.dumps({"at": t0, "every": 3601}),
        json.dumps({"at": t0, "every": True}),
        json.dumps({"at": "now", "every": EVERY}),
        '{"at": NaN, "every": 30}',
        '{"at": Infinity, "every": 30}',
    ):
        agent.publish(HEARTBEAT, payload)
    # The broker keeps the order: once this is read, so are the bad ones.
    agent.publish(AVAILABILITY, "offline")
    await frozen_wait(hass, lambda: _status(hass) == "offline")
    agent.publish(AVAILABILITY, "online")
    await frozen_wait(hass, lambda: _status(hass) == "idle")

    await _move(hass, freezer, t0 + 3 * EVERY - 1)
    assert _status(hass) == "idle"
    await _move(hass, freezer, t0 + 3 * EVERY + 1)
    assert _status(hass) == "offline"


@pytest.mark.usefixtures("mqtt_bay_entry")
async def test_an_agent_without_heartbeats_is_judged_by_its_availability(
    hass: HomeAssistant, agent: ScriptedAgent, request: pytest.FixtureRequest
) -> None:
    """An older agent sends none: hours of silence change nothing (a guard: passes before)."""
    await _move(hass, _freeze(request), time.time() + 24 * 3600)
    assert _status(hass) == "idle"
    agent.publish(AVAILABILITY, "offline")
    await frozen_wait(hass, lambda: _status(hass) == "offline")


async def test_a_dead_agent_is_never_for_sale_while_its_stale_heartbeat_is_on_its_way(
    hass: HomeAssistant,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broker replays retained messages in the order of the subscriptions: the stale
    heartbeat is judged before the retained ``online`` makes the bay known, so the bay is
    never known and online at once (a payment then would send ``on`` to a dead agent).
    The driver's verdicts are recorded as the runner is told them."""
    seen: list[tuple[bool, bool]] = []
    original = MqttAgentDriver._update_online

    def recording(self: MqttAgentDriver) -> None:
        original(self)
        seen.append((self.known, self.online))

    monkeypatch.setattr(MqttAgentDriver, "_update_online", recording)
    agent.publish(HEARTBEAT, json.dumps({"at": time.time() - 10 * EVERY, "every": EVERY}))
    assert await hass.config_entries.async_reload(mqtt_bay_entry.entry_id)
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    await wait_until(hass, lambda: runner.driver.known)
    await runner.driver.async_wait_state(5)
    await hass.async_block_till_done()

    assert not runner.driver.online
    assert (True, True) not in seen, seen


def _replayed(runner: Any, payload: str) -> None:
    """The retained heartbeat as HA's MQTT client hands it to the driver after resubscribing
    (its broker link came back: HA's node died and the load balancer found another). Handed
    straight to the driver's handler: a broker takeover of HA's own connection is not
    something these tests can cause without reaching into HA's MQTT client either."""
    runner.driver._heartbeat(ReceiveMessage(HEARTBEAT, payload, 1, True, HEARTBEAT, time.time()))


async def _move(hass: HomeAssistant, freezer: FrozenDateTimeFactory, to: float) -> None:
    freezer.move_to(datetime.fromtimestamp(to, UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def _live_beat(hass: HomeAssistant, agent: ScriptedAgent, runner: Any, at: float) -> str:
    payload = json.dumps({"at": at, "every": EVERY})
    agent.publish(HEARTBEAT, payload)
    await wait_until(hass, lambda: runner.driver._beat_timer is not None)
    return payload


async def test_a_replayed_heartbeat_of_an_agent_whose_clock_is_ahead_brings_no_dead_agent_back(
    hass: HomeAssistant,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    request: pytest.FixtureRequest,
) -> None:
    """The agent's clock 10 min ahead; it dies after one heartbeat (its node died: no will).
    Offline after 3 periods; HA's link comes back and the broker replays that heartbeat: it
    was judged when it came, so the dead agent stays off sale."""
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    t0 = time.time()
    payload = await _live_beat(hass, agent, runner, t0 + 600)
    # The clock is frozen only now: the live heartbeat is waited for in real time.
    freezer: FrozenDateTimeFactory = request.getfixturevalue("freezer")
    await _move(hass, freezer, t0 + 3 * EVERY + 1)
    assert not runner.driver.online

    await _move(hass, freezer, t0 + 4 * EVERY)
    _replayed(runner, payload)
    assert not runner.driver.online


async def test_a_replayed_heartbeat_of_an_agent_whose_clock_is_behind_keeps_it_on_sale(
    hass: HomeAssistant,
    agent: ScriptedAgent,
    mqtt_bay_entry: MockConfigEntry,
    request: pytest.FixtureRequest,
) -> None:
    """The agent's clock 5 min behind (a Pi before NTP); its heartbeat came 10 s ago and the
    broker replays it to HA's new link: the agent stays online (a sale is not refused)."""
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]
    t0 = time.time()
    payload = await _live_beat(hass, agent, runner, t0 - 300)
    freezer: FrozenDateTimeFactory = request.getfixturevalue("freezer")
    await _move(hass, freezer, t0 + 10)
    assert runner.driver.online

    _replayed(runner, payload)
    assert runner.driver.online
