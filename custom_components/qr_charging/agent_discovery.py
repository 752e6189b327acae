"""Discovery of agents under the account's own topic prefixes (issue #27).

The manifest's ``mqtt`` key covers ``qr_charging/+/config``; for each other prefix of the
account's option the account subscribes to ``<prefix>/+/config`` and starts the same
discovery flow (``config_flow.async_step_mqtt``) as HA's MQTT integration would.
"""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.components import mqtt
from homeassistant.config_entries import SOURCE_MQTT
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import discovery_flow
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo

from .const import DOMAIN


async def async_follow_prefixes(
    hass: HomeAssistant, prefixes: tuple[str, ...]
) -> list[Callable[[], None]]:
    """Subscribe to each prefix's agent configs; the unsubscribers (none without MQTT)."""
    if not prefixes or not await mqtt.async_wait_for_mqtt_client(hass):
        return []
    # The last config seen per topic: the broker replays retained ones on every reconnection.
    seen: dict[str, str | bytes | bytearray] = {}

    @callback
    def _discovered(msg: mqtt.ReceiveMessage) -> None:
        if seen.get(msg.topic) == msg.payload:
            return
        seen[msg.topic] = msg.payload
        discovery_flow.async_create_flow(
            hass,
            DOMAIN,
            {"source": SOURCE_MQTT},
            MqttServiceInfo(
                topic=msg.topic,
                payload=msg.payload,
                qos=msg.qos,
                retain=msg.retain,
                subscribed_topic=msg.subscribed_topic,
                timestamp=msg.timestamp,
            ),
            # As HA's MQTT discovery keys its flows: an ignored agent stays ignored.
            discovery_key=discovery_flow.DiscoveryKey(domain="mqtt", key=msg.topic, version=1),
        )

    return [
        await mqtt.async_subscribe(hass, f"{prefix}/+/config", _discovered, qos=1)
        for prefix in prefixes
    ]
