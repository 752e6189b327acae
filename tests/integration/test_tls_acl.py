"""Home Assistant and the real agent over TLS with passwords, under the ACL of docs/security.md.

Mosquitto has the test's own CA and certificate (openssl), a password file (mosquitto_passwd)
and the documented access control list; HA's MQTT integration logs in as ``homeassistant``
with the CA, the agent as ``pi-relay``. A paid session powers the bay and the owner's stop
switches it off, while another add-on's ``on`` and its fake state reach neither the agent nor
Home Assistant.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncGenerator, Generator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gpiozero", reason="the relay agent's gpiozero is not installed")
pytest.importorskip("pi_mqtt_relay.agent", reason="the relay agent package is not installed")

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from paho.mqtt import client as paho
from paho.mqtt.enums import CallbackAPIVersion
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin
from pi_mqtt_relay.config import parse_config
from tests.mosquitto import Broker
from tests.relay_harness import CrashableAgent, agent_yaml
from tests.tls import Pki, make_pki, tls_broker

from .conftest import BAY_SUBENTRY, PLAN_SUBENTRY, PostWebhook, entry_data, with_plans
from .helpers import export_sessions, pay, refund_amounts

PASSWORD = "a-long-random-password"
NODE = "kiosk-1"
BASE = f"qr_charging/{NODE}"


def _documented_acl() -> str:
    from tests.agent.test_broker_acl import _documented_acl as acl  # noqa: PLC0415

    return acl()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    (tmp_path / "pki").mkdir()
    return make_pki(tmp_path / "pki")


@pytest.fixture
def broker(tmp_path: Path, pki: Pki, socket_enabled: None) -> Generator[Broker]:
    logins = dict.fromkeys(("homeassistant", "addons", "pi-relay"), PASSWORD)
    server = tls_broker(tmp_path, pki, logins, _documented_acl())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def mqtt_entry(
    hass: HomeAssistant, broker: Broker, pki: Pki
) -> AsyncGenerator[MockConfigEntry]:
    """HA's MQTT integration over TLS, trusting the test's CA, logged in as homeassistant."""
    entry = MockConfigEntry(
        domain="mqtt",
        data={
            "broker": "127.0.0.1",
            "port": broker.port,
            "username": "homeassistant",
            "password": PASSWORD,
            "certificate": pki.ca.read_text(),
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
def agent(broker: Broker, pki: Pki, tmp_path: Path) -> Generator[CrashableAgent]:
    data = agent_yaml(tmp_path / "agent" / "state.json", broker.port, NODE, [("bay-1", 17)])
    data["broker"] |= {
        "username": "pi-relay",
        "password": PASSWORD,
        "tls": {"ca_file": str(pki.ca)},
    }
    real = CrashableAgent(parse_config(data))
    real.start()
    yield real
    real.stop()


class Addon:
    """Another add-on's MQTT login (Zigbee2MQTT, Node-RED...): TLS, its own password."""

    def __init__(self, port: int, ca: Path) -> None:
        self.seen: list[str] = []
        self.connected = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="addons")
        self.client.tls_set(ca_certs=str(ca))
        self.client.username_pw_set("addons", PASSWORD)
        self.client.on_connect = lambda *args: self.connected.set()
        self.client.on_message = lambda c, u, msg: self.seen.append(msg.topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(5)
        self.client.subscribe("#", qos=1)

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def addon(broker: Broker, pki: Pki) -> Generator[Addon]:
    client = Addon(broker.port, pki.ca)
    yield client
    client.close()


async def _until(check: Any, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_ha_and_the_agent_work_under_the_acl_and_an_addon_is_refused(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    mqtt_entry: MockConfigEntry,
    agent: CrashableAgent,
    addon: Addon,
) -> None:
    bay = {
        **BAY_SUBENTRY,
        "data": {**BAY_SUBENTRY["data"], "driver": "mqtt", "node": NODE, "agent_bay": "bay-1"},
    }
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        options={"ack_timeout": 5, "auto_refund": True},
        subentries_data=[PLAN_SUBENTRY, with_plans(bay, [PLAN_SUBENTRY])],
    )
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "http", {})
    assert await hass.config_entries.async_setup(entry.entry_id)
    runner = entry.runtime_data.bays.runners["bay-1"]
    await _until(lambda: runner.driver.online)

    # A customer pays: HA's "on" reaches the agent, the agent's report reaches HA.
    paid = await pay(hass, standin, post_webhook)
    await _until(lambda: runner.status == "charging")
    assert agent.powered("bay-1")
    session_id = runner.session.session_id

    # Another add-on tries to power the bay for a session of its own and to fake its state.
    now = time.time()
    on = {"action": "on", "session": "s-addon", "until": now + 60, "duration": 60, "sent": now}
    addon.publish(f"{BASE}/bay-1/set", json.dumps(on))
    fake = {"state": "OFF", "session": session_id, "until": None, "remaining": 0}
    addon.publish(f"{BASE}/bay-1/state", json.dumps({**fake, "reason": "off_command"}))
    addon.publish("elsewhere/marker", "addon done")
    await _until(lambda: "elsewhere/marker" in addon.seen)
    await asyncio.sleep(0.3)
    await hass.async_block_till_done()
    # Nothing of it got through: the paid session runs, nobody else's, and no refund went out.
    assert runner.status == "charging"
    assert runner.session.session_id == session_id
    assert [label.session for label in agent.labels] == [session_id]
    assert refund_amounts(standin, paid.payment_id) == []
    assert not [topic for topic in addon.seen if topic.startswith("qr_charging/")]

    # The owner's stop goes through the broker too.
    await hass.services.async_call(
        DOMAIN, "stop_session", {"bay": "bay-1"}, blocking=True, return_response=True
    )
    await _until(lambda: not agent.powered("bay-1"))
    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"]) == ("ended", "stopped")
    assert await hass.config_entries.async_unload(entry.entry_id)
