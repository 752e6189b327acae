"""A bay's relay as a type (plain Python): checked when made, stored as bays always were."""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.qr_charging.catalog import (
    bay_from_data,
    bay_to_data,
    make_bay,
)
from custom_components.qr_charging.catalog_errors import CatalogError
from custom_components.qr_charging.relays import (
    MqttRelay,
    Relay,
    SwitchRelay,
)
from tests.integration.const import BAY_SUBENTRY, mqtt_bay

SWITCH_BAY: dict[str, Any] = dict(BAY_SUBENTRY["data"])
MQTT_BAY: dict[str, Any] = dict(mqtt_bay("kiosk-1")["data"])
# Every optional field set, as a bay with a static and a dynamic QR code is stored.
FULL_BAY: dict[str, Any] = MQTT_BAY | {
    "prefix": "site-2",
    "agent_bay": "left",
    "qr_code_id": "qr_1",
    "qr_image_url": "https://rzp.io/i/qr_1",
    "qr_code_tag": "01JABCDEFGHJKMNPQRSTVWXYZ0",
    "dynamic_qr": True,
    "qr_validity_s": 120,
    "qr_secret": "S" * 32,
    "display_token": "t" * 32,
    "hold_minutes": 30,
}


@pytest.mark.parametrize("data", [SWITCH_BAY, MQTT_BAY, FULL_BAY], ids=["switch", "mqtt", "full"])
def test_a_stored_bay_round_trips_to_the_same_dict(data: dict[str, Any]) -> None:
    """No migration: what a bay's subentry holds today is what it is written back as."""
    assert bay_to_data(bay_from_data(data)) == data


def test_the_stored_driver_chooses_the_relay() -> None:
    switch, mqtt, full = (bay_from_data(d) for d in (SWITCH_BAY, MQTT_BAY, FULL_BAY))
    assert switch.relay == SwitchRelay(entity_id="switch.bay_1_plug")
    assert mqtt.relay == MqttRelay(node="kiosk-1", agent_bay="bay-1", prefix="qr_charging")
    assert full.relay == MqttRelay(node="kiosk-1", agent_bay="left", prefix="site-2")
    assert (switch.driver, mqtt.driver) == ("switch", "mqtt")
    # Data stored without a driver or prefix (an early bay) is an agent's, on the default prefix.
    early = {k: v for k, v in MQTT_BAY.items() if k not in ("driver", "prefix", "agent_bay")}
    assert bay_from_data(early).relay == MqttRelay(node="kiosk-1")


def _bay(relay: Relay) -> Any:
    return make_bay("bay-1", "Bay 1", ["p30"], ["p30"], relay=relay)


@pytest.mark.parametrize(
    ("relay", "field", "key"),
    [
        (MqttRelay(node=""), "node", "invalid_id"),
        (MqttRelay(node="kiosk 1"), "node", "invalid_id"),
        (MqttRelay(node="kiosk-1", agent_bay="bay 1"), "agent_bay", "invalid_id"),
        (MqttRelay(node="kiosk-1", prefix="a/b"), "prefix", "invalid_id"),
        (SwitchRelay(entity_id=""), "switch_entity", "switch_required"),
        (SwitchRelay(entity_id="light.porch"), "switch_entity", "switch_required"),
    ],
)
def test_a_bad_relay_is_refused_on_its_field(relay: Relay, field: str, key: str) -> None:
    with pytest.raises(CatalogError) as caught:
        _bay(relay)
    assert (caught.value.field, caught.value.key) == (field, key)


def test_an_agents_bay_defaults_to_the_bays_id() -> None:
    assert _bay(MqttRelay(node="kiosk-1")).relay == MqttRelay(node="kiosk-1", agent_bay="bay-1")
    plug = SwitchRelay(entity_id="switch.plug")
    assert _bay(plug).relay == plug
