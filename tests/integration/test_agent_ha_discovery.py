"""The agent's standalone HA MQTT switches, as Home Assistant's MQTT integration reads them.

Review 27b F2: two sites sharing a broker, each with an agent ``kiosk-1`` under its own
prefix and ``ha_discovery: true``, announced on one discovery topic with one unique id: HA
kept one switch, the last announced (commanding that site's relay), and an agent of the
other site with discovery off cleared it. The agent's own announcements are fed to HA here.
"""

from __future__ import annotations

import json

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

pytest.importorskip("pi_mqtt_relay.discovery", reason="the relay agent package is not installed")

from pi_mqtt_relay.config import parse_config
from pi_mqtt_relay.discovery import discovery_payload
from pi_mqtt_relay.mqtt_link import Topics

SITES = ("qr_charging", "site-a", "site-b")
# HA's MQTT client leaves its (mocked) subscription cooldown timer behind.
pytestmark = pytest.mark.parametrize("expected_lingering_timers", [True])


def _announcement(prefix: str, *, on: bool = True) -> tuple[str, str]:
    """The discovery message (retained) of bay-1 of ``kiosk-1`` under ``prefix``: topic, payload."""
    config = parse_config(
        {
            "broker": {"host": "127.0.0.1"},
            "node": {"id": "kiosk-1", "name": f"Kiosk {prefix}"},
            "topic_prefix": prefix,
            "ha_discovery": on,
            "bays": [{"id": "bay-1", "pin": 17}],
        }
    )
    topics = Topics(config)
    payload = json.dumps(discovery_payload(config, topics, config.bays[0])) if on else ""
    return topics.discovery("bay-1"), payload


def _switches(hass: HomeAssistant) -> dict[str, str]:
    """The MQTT switches' entity ids, by unique id."""
    return {
        entry.unique_id: entry.entity_id
        for entry in er.async_get(hass).entities.values()
        if entry.platform == "mqtt" and entry.domain == "switch"
    }


async def test_each_sites_kiosk_1_is_its_own_switch_and_device(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> None:
    for prefix in SITES:
        async_fire_mqtt_message(hass, *_announcement(prefix))
    await hass.async_block_till_done()
    switches = _switches(hass)
    assert len(switches) == len(SITES), switches
    entities, devices = er.async_get(hass), dr.async_get(hass)
    device_ids = {entities.async_get(entity_id).device_id for entity_id in switches.values()}
    names = sorted(devices.async_get(device_id).name for device_id in device_ids)
    assert names == sorted(f"Kiosk {prefix}" for prefix in SITES)
    # Each switch commands its own site's relay.
    for prefix in SITES:
        async_fire_mqtt_message(hass, f"{prefix}/kiosk-1/availability", "online")
    await hass.async_block_till_done()
    for prefix in SITES:
        unique_id = json.loads(_announcement(prefix)[1])["unique_id"]
        mqtt_mock.async_publish.reset_mock()
        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": switches[unique_id]}, blocking=True
        )
        [call] = mqtt_mock.async_publish.call_args_list
        assert call.args[:2] == (f"{prefix}/kiosk-1/bay-1/set", "ON")


async def test_an_agent_without_discovery_leaves_the_other_sites_switch(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> None:
    async_fire_mqtt_message(hass, *_announcement("site-a"))
    await hass.async_block_till_done()
    [entity_id] = _switches(hass).values()
    assert hass.states.get(entity_id) is not None
    async_fire_mqtt_message(hass, *_announcement("site-b", on=False))
    await hass.async_block_till_done()
    assert hass.states.get(entity_id) is not None, "site-b's empty announcement removed it"
