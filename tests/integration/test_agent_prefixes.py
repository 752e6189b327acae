"""The account option *Agent topic prefixes* (issue #27): the options form, and discovery of
agents under another prefix on a real Mosquitto (several sites or HA instances on one broker).
"""

from __future__ import annotations

import json
from typing import Any

from homeassistant.config_entries import SOURCE_MQTT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN

from .flow_helpers import suggested
from .mqtt_helpers import NODE, ScriptedAgent, wait_until

SITE_B_CONFIG = "site_b/kiosk-2/config"
AVAILABILITY = f"qr_charging/{NODE}/availability"
CONNECTION = "binary_sensor.bay_1_agent_connection"


async def _options(hass: HomeAssistant, entry: MockConfigEntry, **fields: object) -> Any:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {"ack_timeout": 20, "auto_refund": True, **fields}
    )


def _connected(hass: HomeAssistant) -> str | None:
    state = hass.states.get(CONNECTION)
    return state.state if state is not None else None


async def test_the_prefixes_are_shown_and_stored_normalised(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert suggested(result, "discovery_prefixes") == "qr_charging"

    result = await _options(hass, config_entry, discovery_prefixes=" site_b , qr_charging,site_b")

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options["discovery_prefixes"] == "site_b,qr_charging"
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert suggested(result, "discovery_prefixes") == "site_b,qr_charging"


async def test_a_bad_prefix_is_refused_and_changes_nothing(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    before = dict(config_entry.options)

    result = await _options(hass, config_entry, discovery_prefixes="site_b, site/c")

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"discovery_prefixes": "invalid_prefixes"}
    # The form shows what was typed, to correct it.
    assert suggested(result, "discovery_prefixes") == "site_b, site/c"
    assert dict(config_entry.options) == before


def _site_b_flows(hass: HomeAssistant) -> list[Any]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_MQTT
        and flow["context"].get("unique_id") == "agent-kiosk-2"
    ]


async def _announce_site_b(hass: HomeAssistant, agent: ScriptedAgent, bay: str) -> None:
    """kiosk-2 announces itself (retained) under ``site_b`` with one bay; returns once HA has
    read what followed it from the same client (the broker keeps one client's order).
    """
    agent.publish(SITE_B_CONFIG, json.dumps({"node": "kiosk-2", "bays": [{"id": bay}]}))
    agent.publish(AVAILABILITY, "offline")
    await wait_until(hass, lambda: _connected(hass) == "off")
    agent.publish(AVAILABILITY, "online")
    await wait_until(hass, lambda: _connected(hass) == "on")


async def test_an_agent_under_another_prefix_is_discovered_once_the_option_names_it(
    hass: HomeAssistant, agent: ScriptedAgent, mqtt_bay_entry: MockConfigEntry
) -> None:
    """Before: only the manifest's ``qr_charging/+/config`` was ever discovered."""
    await _announce_site_b(hass, agent, "bay-1")
    assert _site_b_flows(hass) == []

    result = await _options(hass, mqtt_bay_entry, discovery_prefixes="qr_charging,site_b")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The options reload the account, which subscribes to site_b/+/config: the retained config.
    await wait_until(hass, lambda: len(_site_b_flows(hass)) == 1)

    (flow,) = _site_b_flows(hass)
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {})
    assert result["reason"] == "agent_added"
    relays = {
        (sub.data["node"], sub.data.get("prefix"))
        for sub in mqtt_bay_entry.subentries.values()
        if sub.subentry_type == "bay"
    }
    assert ("kiosk-2", "site_b") in relays
    # Taken off again: the account no longer follows site_b, so a new bay there is not offered.
    await _options(hass, mqtt_bay_entry, discovery_prefixes="qr_charging")
    await hass.async_block_till_done()  # the reload the options asked for
    await wait_until(hass, lambda: _connected(hass) == "on")
    await _announce_site_b(hass, agent, "bay-9")
    assert _site_b_flows(hass) == []
