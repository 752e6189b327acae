"""The HA MQTT discovery payload of a bay, built without a broker."""

from __future__ import annotations

from pi_mqtt_relay import __version__
from pi_mqtt_relay.config import parse_config
from pi_mqtt_relay.discovery import discovery_payload
from pi_mqtt_relay.mqtt_link import Topics


def test_a_bay_is_announced_as_a_switch_on_its_own_topics() -> None:
    config = parse_config(
        {
            "broker": {"host": "127.0.0.1"},
            "node": {"id": "kiosk-1", "name": "Kiosk"},
            "bays": [{"id": "bay-1", "name": "Bay 1", "pin": 17}],
        }
    )
    payload = discovery_payload(config, Topics(config), config.bays[0])
    assert "object_id" not in payload
    assert payload["name"] == "Bay 1"
    assert payload["unique_id"] == "pi_mqtt_relay_kiosk-1_bay-1"
    assert payload["command_topic"] == "qr_charging/kiosk-1/bay-1/set"
    assert payload["state_topic"] == "qr_charging/kiosk-1/bay-1/state"
    assert payload["availability_topic"] == "qr_charging/kiosk-1/availability"
    assert (payload["payload_available"], payload["payload_not_available"]) == (
        "online",
        "offline",
    )
    # A plain "ON" carries no time: never kept by the broker for an agent that is away.
    assert (payload["qos"], payload["retain"], payload["optimistic"]) == (0, False, False)
    assert payload["device"] == {
        "identifiers": ["pi_mqtt_relay_kiosk-1"],
        "name": "Kiosk",
        "manufacturer": "qr_charging",
        "model": "pi-mqtt-relay",
        "sw_version": __version__,
    }
