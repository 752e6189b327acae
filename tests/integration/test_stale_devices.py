"""Stale devices: an agent's device goes when no bay uses it any more.

Two agents on a real Mosquitto: kiosk-1 (the scripted agent, bay-1) and kiosk-2 (bay-2 and
bay-3, its retained config published by another client). The device registry is read after
what an owner or an agent does: a bay subentry removed, an agent's retained config cleared.
"""

from __future__ import annotations

import json
from typing import Any

import paho.mqtt.client as paho
import pytest
from homeassistant.config_entries import ConfigEntryDisabler
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY, mqtt_bay
from .helpers import entry_data
from .mqtt_helpers import NODE, ScriptedAgent, wait_until

OTHER = "kiosk-2"


def _bay_on_other(bay_id: str, agent_bay: str) -> dict[str, Any]:
    bay = mqtt_bay(OTHER)
    data = {**bay["data"], "bay_id": bay_id, "name": bay_id, "agent_bay": agent_bay}
    return {**bay, "data": data, "title": bay_id, "unique_id": bay_id}


def _publish_retained(client: paho.Client, topic: str, payload: str) -> None:
    client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)


@pytest.fixture
async def two_agents(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    mqtt_entry: MockConfigEntry,
    agent: ScriptedAgent,
    intruder: paho.Client,
) -> MockConfigEntry:
    """The account with bay-1 on kiosk-1 and bay-2, bay-3 on kiosk-2, set up and online."""
    _publish_retained(intruder, f"qr_charging/{OTHER}/availability", "online")
    _publish_retained(
        intruder,
        f"qr_charging/{OTHER}/config",
        json.dumps({"node": OTHER, "name": "Kiosk 2", "bays": [{"id": "bay-1"}, {"id": "bay-2"}]}),
    )
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[
            PLAN_SUBENTRY,
            mqtt_bay(NODE),
            _bay_on_other("bay-2", "bay-1"),
            _bay_on_other("bay-3", "bay-2"),
        ],
    )
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "http", {})
    assert await hass.config_entries.async_setup(entry.entry_id)
    runners = entry.runtime_data.bays.runners
    await wait_until(hass, lambda: all(r.driver.online for r in runners.values()))
    assert _devices(hass, entry) == {
        "agent-kiosk-1",
        "agent-kiosk-2",
        "bay-1",
        "bay-2",
        "bay-3",
        "site/default",
    }
    return entry


def _devices(hass: HomeAssistant, entry: MockConfigEntry) -> set[str]:
    """The account's devices: ``agent-<node>`` for an agent (``agent-<prefix>/<node>`` under
    a prefix not the default), the bay id for a bay, ``site/<site id>`` for a site (here the
    default one, which no bay's removal takes)."""
    registry = dr.async_get(hass)
    return {
        ident.removeprefix(f"{entry.entry_id}_").removeprefix(f"{entry.entry_id}/")
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        for _, ident in device.identifiers
    }


async def _remove_bay(hass: HomeAssistant, entry: MockConfigEntry, bay_id: str) -> None:
    (sub_id,) = [i for i, s in entry.subentries.items() if s.data.get("bay_id") == bay_id]
    assert hass.config_entries.async_remove_subentry(entry, sub_id)
    await hass.async_block_till_done()


async def test_an_agent_device_goes_with_its_last_bay(
    hass: HomeAssistant, two_agents: MockConfigEntry
) -> None:
    entry = two_agents
    await _remove_bay(hass, entry, "bay-2")
    # kiosk-2 still switches bay-3.
    assert _devices(hass, entry) == {
        "agent-kiosk-1",
        "agent-kiosk-2",
        "bay-1",
        "bay-3",
        "site/default",
    }

    await _remove_bay(hass, entry, "bay-3")

    assert _devices(hass, entry) == {"agent-kiosk-1", "bay-1", "site/default"}
    assert entry.runtime_data.bays.runners.keys() == {"bay-1"}


async def test_an_agent_device_goes_when_the_agent_clears_its_config(
    hass: HomeAssistant, two_agents: MockConfigEntry, intruder: paho.Client
) -> None:
    """While the account is disabled its bays of kiosk-2 are removed; then the Pi is retired."""
    entry = two_agents
    assert await hass.config_entries.async_set_disabled_by(entry.entry_id, ConfigEntryDisabler.USER)
    await hass.async_block_till_done()
    await _remove_bay(hass, entry, "bay-2")
    await _remove_bay(hass, entry, "bay-3")
    # Nothing reloads a disabled account: its agent's device is still there.
    assert "agent-kiosk-2" in _devices(hass, entry)

    # Both agents' retained config is cleared (an empty retained message), kiosk-1's first:
    # one client's messages reach HA in order.
    _publish_retained(intruder, f"qr_charging/{NODE}/config", "")
    _publish_retained(intruder, f"qr_charging/{OTHER}/config", "")

    await wait_until(hass, lambda: "agent-kiosk-2" not in _devices(hass, entry))
    # kiosk-1 still switches bay-1: its device stays, as does bay-1's.
    assert _devices(hass, entry) == {"agent-kiosk-1", "bay-1", "site/default"}
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)


async def test_clearing_one_agents_config_takes_only_its_device(
    hass: HomeAssistant, two_sites_entry: MockConfigEntry, intruder: paho.Client
) -> None:
    """kiosk-1 under the default prefix and under site-b: two devices (review F2; they were
    one, which site-b's bay kept). The default's bay is removed while the account is disabled,
    then that agent is retired: its device goes, site-b's kiosk-1 and its bay stay."""
    entry = two_sites_entry
    assert _devices(hass, entry) == {
        "agent-kiosk-1",
        "agent-site-b/kiosk-1",
        "bay-1",
        "bay-2",
        "site/default",
    }
    assert await hass.config_entries.async_set_disabled_by(entry.entry_id, ConfigEntryDisabler.USER)
    await hass.async_block_till_done()
    await _remove_bay(hass, entry, "bay-1")

    _publish_retained(intruder, f"qr_charging/{NODE}/config", "")

    await wait_until(hass, lambda: "agent-kiosk-1" not in _devices(hass, entry))
    assert _devices(hass, entry) == {"agent-site-b/kiosk-1", "bay-2", "site/default"}
