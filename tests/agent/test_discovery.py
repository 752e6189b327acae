"""The HA MQTT discovery payload of a bay, built without a broker.

Review 27b F2: agents under two prefixes with one node id announced on one discovery topic
with one unique id (one site's switch commanded the other's relay, or was cleared by it).
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pi_mqtt_relay import __version__
from pi_mqtt_relay.config import DEFAULT_PREFIX, AgentConfig, parse_config
from pi_mqtt_relay.discovery import discovery_payload
from pi_mqtt_relay.mqtt_link import Topics
from tests.soak import examples

from .helpers import IDS, PREFIXES, ids_cut_from_one_text

# HA's discovery topic (homeassistant/components/mqtt/discovery.py, TOPIC_MATCHER).
HA_DISCOVERY_TOPIC = re.compile(
    r"homeassistant/(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?"
    r"(?P<object_id>[a-zA-Z0-9_-]+)/config"
)
BAY = st.tuples(PREFIXES, IDS, IDS)


def _agent(prefix: str, node: str, bay: str) -> AgentConfig:
    return parse_config(
        {
            "broker": {"host": "127.0.0.1"},
            "node": {"id": node},
            "topic_prefix": prefix,
            "bays": [{"id": bay, "pin": 17}],
        }
    )


def _names(prefix: str, node: str, bay: str) -> tuple[str, str, str]:
    """A bay's discovery topic, unique id and device identifier."""
    config = _agent(prefix, node, bay)
    topics = Topics(config)
    payload = discovery_payload(config, topics, config.bays[0])
    [device] = payload["device"]["identifiers"]
    return topics.discovery(bay), payload["unique_id"], device


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


def test_the_default_prefix_keeps_its_names() -> None:
    """Deployed agents: HA keeps their entities and devices."""
    assert _names(DEFAULT_PREFIX, "kiosk-1", "bay-1") == (
        "homeassistant/switch/kiosk-1_bay-1/config",
        "pi_mqtt_relay_kiosk-1_bay-1",
        "pi_mqtt_relay_kiosk-1",
    )


def test_under_another_prefix_the_names_carry_the_prefix() -> None:
    assert _names("site-a", "kiosk-1", "bay-1") == (
        "homeassistant/switch/site-a/7_kiosk-1_bay-1/config",
        "pi_mqtt_relay_site-a/kiosk-1/bay-1",
        "pi_mqtt_relay_site-a/kiosk-1",
    )


def test_two_sites_kiosk_1_announce_two_switches_on_two_devices() -> None:
    site_a, site_b = _names("site-a", "kiosk-1", "bay-1"), _names("site-b", "kiosk-1", "bay-1")
    assert all(a != b for a, b in zip(site_a, site_b, strict=True)), (site_a, site_b)


@examples(300)
@given(st.one_of(st.tuples(BAY, BAY), ids_cut_from_one_text(3)))
def test_two_distinct_bays_never_share_a_name_unless_both_under_the_default(
    bays: tuple[tuple[str, str, str], tuple[str, str, str]],
) -> None:
    """Only the default's names, kept as deployed, can meet (node ``a_b`` bay ``c``, node
    ``a`` bay ``b_c``); a topic HA would not read is never made."""
    first, second = _names(*bays[0]), _names(*bays[1])
    if bays[0] != bays[1] and not bays[0][0] == bays[1][0] == DEFAULT_PREFIX:
        assert first[0] != second[0], bays
        assert first[1] != second[1], bays
        if bays[0][:2] != bays[1][:2]:
            assert first[2] != second[2], bays
    for bay, names in zip(bays, (first, second), strict=True):
        match = HA_DISCOVERY_TOPIC.fullmatch(names[0])
        assert match is not None, names[0]
        assert match["component"] == "switch"
        assert (match["node_id"] is None) == (bay[0] == DEFAULT_PREFIX)
