"""The account option *Agent topic prefixes* (issue #27): the options form, and discovery of
agents under another prefix on a real Mosquitto (several sites or HA instances on one broker).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_MQTT, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import CONF_KEY_ID, DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY, mqtt_bay
from .flow_helpers import suggested
from .helpers import entry_data
from .mqtt_helpers import NODE, SITE_B, ScriptedAgent, wait_until

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
        and flow["context"].get("unique_id") == "agent-site_b/kiosk-2"
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


def _device(hass: HomeAssistant, entry: MockConfigEntry, identifier: str) -> dr.DeviceEntry | None:
    """The account's device with this identifier (an agent's ``agent-…``, a bay's
    ``<entry>_<bay>``), found by scanning: the look-up by identifier changed its name between
    the HA lines supported."""
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return next((d for d in devices if (DOMAIN, identifier) in d.identifiers), None)


def _agent_devices(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str | None]:
    """The account's agent devices: identifier → name."""
    return {
        ident: device.name
        for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        for _, ident in device.identifiers
        if ident.startswith("agent-")
    }


def _parent_of(hass: HomeAssistant, entry: MockConfigEntry, bay_id: str) -> str | None:
    """The device a bay's device hangs off (``via_device``)."""
    bay = _device(hass, entry, f"{entry.entry_id}_{bay_id}")
    assert bay is not None
    return bay.via_device_id


def _status(hass: HomeAssistant, bay: str) -> str | None:
    state = hass.states.get(f"sensor.{bay}_status")
    return state.state if state is not None else None


async def _turn_on(hass: HomeAssistant, entity_id: str) -> None:
    await hass.services.async_call("switch", "turn_on", {"entity_id": entity_id}, blocking=True)


# HA's MQTT client leaves its (mocked) subscription cooldown timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_one_node_id_under_two_prefixes_is_two_agents(
    hass: HomeAssistant,
    two_sites_entry: MockConfigEntry,
    agent: ScriptedAgent,
    site_b_agent: ScriptedAgent,
) -> None:
    """Review F2: both kiosk-1s were one device ``agent-kiosk-1``, each bay hanging off it."""
    entry = two_sites_entry
    # Each device is named from its agent's config, the prefix after a name not the default's.
    expected = {"agent-kiosk-1": "Kiosk 1", "agent-site-b/kiosk-1": "Kiosk 1 (site-b)"}
    await wait_until(hass, lambda: _agent_devices(hass, entry) == expected)
    default_agent = _device(hass, entry, "agent-kiosk-1")
    site_b = _device(hass, entry, "agent-site-b/kiosk-1")
    assert default_agent is not None
    assert site_b is not None
    assert (default_agent.model, site_b.model) == ("pi-mqtt-relay", "pi-mqtt-relay")
    assert _parent_of(hass, entry, "bay-1") == default_agent.id
    assert _parent_of(hass, entry, "bay-2") == site_b.id

    # The owner starts bay-2: its "on" goes to site-b's kiosk-1 only.
    await _turn_on(hass, "switch.bay_2_charging")
    on = await site_b_agent.wait_command(1)
    assert isinstance(on, dict)
    assert on["action"] == "on"
    await wait_until(hass, lambda: _status(hass, "bay_2") == "charging")
    assert agent.ons() == []
    # And bay-1 reaches the default prefix's kiosk-1.
    await _turn_on(hass, "switch.bay_1_charging")
    await wait_until(hass, lambda: _status(hass, "bay_1") == "charging")
    assert len(agent.ons()) == 1
    assert len(site_b_agent.ons()) == 1


# HA's MQTT client leaves its (mocked) subscription cooldown timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
@pytest.mark.usefixtures("mqtt_entry", "agent")
async def test_an_agent_under_the_default_prefix_keeps_the_device_it_had(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    """No migration: a device today's code registered as ``agent-<node>`` stays the bay's parent
    (a regression guard: it passes before the change too)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[PLAN_SUBENTRY, mqtt_bay(NODE)],
    )
    entry.add_to_hass(hass)
    existing = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, f"agent-{NODE}")},
        name=NODE,
        model="pi-mqtt-relay",
    )
    assert await async_setup_component(hass, "http", {})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(hass, lambda: entry.runtime_data.bays.runners["bay-1"].driver.online)

    await wait_until(hass, lambda: _agent_devices(hass, entry) == {"agent-kiosk-1": "Kiosk 1"})
    kept = _device(hass, entry, "agent-kiosk-1")
    assert kept is not None
    assert kept.id == existing.id
    assert _parent_of(hass, entry, "bay-1") == existing.id


# HA's MQTT client leaves its (mocked) subscription cooldown timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
@pytest.mark.usefixtures("mqtt_entry", "site_b_agent")
async def test_an_agent_device_of_0_2_under_another_prefix_is_renamed_in_place(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    """0.2 named site-b's kiosk-1 ``agent-kiosk-1``: at the next load that device becomes
    ``agent-site-b/kiosk-1`` itself, so the owner's area and name for it stay (a new device,
    and the old one swept, lost them)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[PLAN_SUBENTRY, mqtt_bay(NODE, SITE_B, "bay-2")],
    )
    entry.add_to_hass(hass)
    registry = dr.async_get(hass)
    old = registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, f"agent-{NODE}")}, name=NODE
    )
    area = ar.async_get(hass).async_create("Shop B")
    registry.async_update_device(old.id, area_id=area.id, name_by_user="Shop B kiosk")
    assert await async_setup_component(hass, "http", {})
    assert await hass.config_entries.async_setup(entry.entry_id)

    expected = {"agent-site-b/kiosk-1": "Kiosk 1 (site-b)"}
    await wait_until(hass, lambda: _agent_devices(hass, entry) == expected)
    site_b = _device(hass, entry, "agent-site-b/kiosk-1")
    assert site_b is not None
    assert (site_b.id, site_b.area_id, site_b.name_by_user) == (old.id, area.id, "Shop B kiosk")
    assert _parent_of(hass, entry, "bay-2") == site_b.id


# HA's MQTT client leaves its (mocked) subscription cooldown timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
@pytest.mark.usefixtures("mqtt_entry")
async def test_an_account_of_0_2_sets_up_when_another_has_the_agents_new_device(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    """Account A (0.2: a bay on site-b's kiosk-1, device ``agent-kiosk-1`` its own) was off at
    the upgrade while account C registered ``agent-site-b/kiosk-1``: renaming A's onto it
    raised on HA 2025.4 (identifiers are global there) and A failed to set up at every start.
    A joins C's device; its old one goes."""
    a = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[PLAN_SUBENTRY, mqtt_bay(NODE, SITE_B, "bay-1")],
    )
    c = MockConfigEntry(
        domain=DOMAIN,
        unique_id="rzp_test_other",
        data=entry_data(standin) | {CONF_KEY_ID: "rzp_test_other"},
        subentries_data=[PLAN_SUBENTRY, mqtt_bay(NODE, SITE_B, "bay-2")],
    )
    a.add_to_hass(hass)
    c.add_to_hass(hass)
    registry = dr.async_get(hass)
    old = registry.async_get_or_create(
        config_entry_id=a.entry_id, identifiers={(DOMAIN, f"agent-{NODE}")}, name=NODE
    )
    registry.async_get_or_create(
        config_entry_id=c.entry_id, identifiers={(DOMAIN, f"agent-{SITE_B}/{NODE}")}, name=NODE
    )
    assert await async_setup_component(hass, "http", {})

    assert await hass.config_entries.async_setup(a.entry_id)

    assert a.state is ConfigEntryState.LOADED
    # No agent is connected: the device keeps the node id for a name.
    assert _agent_devices(hass, a) == {f"agent-{SITE_B}/{NODE}": f"{NODE} ({SITE_B})"}
    assert registry.async_get(old.id) is None
    await hass.config_entries.async_unload(a.entry_id)
