"""Home Assistant MQTT discovery: how one bay announces itself as an MQTT switch."""

from __future__ import annotations

from typing import Any

from . import __version__
from .config import DEFAULT_PREFIX, AgentConfig, BayConfig
from .mqtt_link import OFFLINE, ONLINE, Topics


def device_identifier(config: AgentConfig) -> str:
    """The identifier of the agent's HA device.

    ``pi_mqtt_relay_<node>`` under the default prefix (as deployed),
    ``pi_mqtt_relay_<prefix>/<node>`` under another: ``/`` is in no prefix and no id (as in
    the integration's ``agent-<prefix>/<node>``), so no two agents share one.
    """
    if config.topic_prefix == DEFAULT_PREFIX:
        return f"pi_mqtt_relay_{config.node_id}"
    return f"pi_mqtt_relay_{config.topic_prefix}/{config.node_id}"


def unique_id(config: AgentConfig, bay: BayConfig) -> str:
    """The HA unique id of a bay's switch.

    ``pi_mqtt_relay_<node>_<bay>`` under the default prefix (as deployed),
    ``pi_mqtt_relay_<prefix>/<node>/<bay>`` under another.
    """
    if config.topic_prefix == DEFAULT_PREFIX:
        return f"pi_mqtt_relay_{config.node_id}_{bay.id}"
    return f"{device_identifier(config)}/{bay.id}"


def discovery_payload(config: AgentConfig, topics: Topics, bay: BayConfig) -> dict[str, Any]:
    """HA MQTT switch discovery for one bay (no deprecated ``object_id``)."""
    return {
        "name": bay.name,
        "unique_id": unique_id(config, bay),
        "command_topic": topics.set(bay.id),
        "state_topic": topics.state(bay.id),
        "value_template": "{{ value_json.state }}",
        "payload_on": "ON",
        "payload_off": "OFF",
        "state_on": "ON",
        "state_off": "OFF",
        "availability_topic": topics.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        # 0: a plain "ON" carries no time, so the broker must not keep one for an agent
        # that is away and deliver it hours later.
        "qos": 0,
        "retain": False,
        "optimistic": False,
        "icon": "mdi:ev-station",
        "device": {
            "identifiers": [device_identifier(config)],
            "name": config.node_name,
            "manufacturer": "qr_charging",
            "model": "pi-mqtt-relay",
            "sw_version": __version__,
        },
    }
