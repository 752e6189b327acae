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
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gpiozero", reason="the relay agent's gpiozero is not installed")
pytest.importorskip("pi_mqtt_relay.agent", reason="the relay agent package is not installed")

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin
from pi_mqtt_relay.config import parse_config
from tests.mosquitto import Broker
from tests.relay_harness import CrashableAgent, agent_yaml
from tests.tls import PASSWORD, Login, Pki, acl_broker, documented_acl, make_pki

from .helpers import PostWebhook, export_sessions, pay, refund_amounts
from .mqtt_helpers import NODE, wait_until

BASE = f"qr_charging/{NODE}"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    (tmp_path / "pki").mkdir()
    return make_pki(tmp_path / "pki")


@pytest.fixture
def broker(tmp_path: Path, pki: Pki, socket_enabled: None) -> Generator[Broker]:
    logins = dict.fromkeys(("homeassistant", "addons", "pi-relay"), PASSWORD)
    server = acl_broker(tmp_path, logins, documented_acl(), pki)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mqtt_login(pki: Pki) -> dict[str, Any]:
    """HA's MQTT integration over TLS, trusting the test's CA, logged in as homeassistant."""
    return {"username": "homeassistant", "password": PASSWORD, "certificate": pki.ca.read_text()}


@pytest.fixture
def ack_timeout() -> float:
    """Seconds the bay waits for the real agent's acknowledgement here."""
    return 5


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


@pytest.fixture
def addon(broker: Broker, pki: Pki) -> Generator[Login]:
    """Another add-on's MQTT login (Zigbee2MQTT, Node-RED...): TLS, its own password."""
    client = Login(broker.port, "addons", PASSWORD, pki.ca)
    assert client.subscribed.wait(5)
    yield client
    client.close()


async def test_ha_and_the_agent_work_under_the_acl_and_an_addon_is_refused(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    mqtt_bay_entry: MockConfigEntry,
    agent: CrashableAgent,
    addon: Login,
) -> None:
    # The account with bay-1 on the real agent, which HA sees online over TLS.
    runner = mqtt_bay_entry.runtime_data.bays.runners["bay-1"]

    # A customer pays: HA's "on" reaches the agent, the agent's report reaches HA.
    paid = await pay(hass, standin, post_webhook)
    await wait_until(hass, lambda: runner.status == "charging")
    assert agent.powered("bay-1")
    session_id = runner.session.session_id

    # Another add-on tries to power the bay for a session of its own and to fake its state.
    now = time.time()
    on = {"action": "on", "session": "s-addon", "until": now + 60, "duration": 60, "sent": now}
    addon.publish(f"{BASE}/bay-1/set", json.dumps(on))
    fake = {"state": "OFF", "session": session_id, "until": None, "remaining": 0}
    addon.publish(f"{BASE}/bay-1/state", json.dumps({**fake, "reason": "off_command"}))
    addon.publish("elsewhere/marker", "addon done")
    await wait_until(hass, lambda: "elsewhere/marker" in addon.topics())
    await asyncio.sleep(0.3)
    await hass.async_block_till_done()
    # Nothing of it got through: the paid session runs, nobody else's, and no refund went out.
    assert runner.status == "charging"
    assert runner.session.session_id == session_id
    assert [label.session for label in agent.labels] == [session_id]
    assert refund_amounts(standin, paid.payment_id) == []
    assert not [topic for topic in addon.topics() if topic.startswith("qr_charging/")]

    # The owner's stop goes through the broker too.
    await hass.services.async_call(
        DOMAIN, "stop_session", {"bay": "bay-1"}, blocking=True, return_response=True
    )
    await wait_until(hass, lambda: not agent.powered("bay-1"))
    (row,) = await export_sessions(hass)
    assert (row["state"], row["end_reason"]) == ("ended", "stopped")
    assert await hass.config_entries.async_unload(mqtt_bay_entry.entry_id)
