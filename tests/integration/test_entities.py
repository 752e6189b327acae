"""A bay's entities, through their states, switch actions, the image view and the registries."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncGenerator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import Unauthorized
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import (
    MqttMockHAClient,
    WebSocketGenerator,
)

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY, PLUG, mqtt_bay
from .helpers import PostWebhook, entry_data, pay, settle, setup_plug, tick


def entity_id(hass: HomeAssistant, platform: str, key: str, bay: str = "bay-1") -> str:
    """The entity id of one of a bay's entities, found by its unique id."""
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    found = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{entry.entry_id}_{bay}_{key}"
    )
    assert found is not None, key
    return found


def state(hass: HomeAssistant, platform: str, key: str) -> str:
    """The state of one of bay-1's entities."""
    current = hass.states.get(entity_id(hass, platform, key))
    assert current is not None
    return current.state


ALL = [
    ("switch", "charging"),
    ("sensor", "status"),
    ("sensor", "session_end"),
    ("sensor", "time_remaining"),
    ("sensor", "revenue"),
    ("sensor", "sessions"),
    ("binary_sensor", "agent"),
    ("image", "payment_qr"),
]
# Registered but disabled until the owner enables it (a state every minute of a session).
DISABLED = ("sensor", "time_remaining")
ENABLED = [entity for entity in ALL if entity != DISABLED]


@pytest.fixture
async def time_remaining_enabled(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """Time remaining enabled as an owner does it; HA reloads the entry 30 s later."""
    remaining = entity_id(hass, *DISABLED)
    er.async_get(hass).async_update_entity(remaining, disabled_by=None)
    await tick(hass, freezer, 31)
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert hass.states.get(remaining) is not None


async def test_entities_of_an_idle_bay(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """Registered on the bay's device, time remaining disabled until the owner enables it.

    Each platform's entities, their states and attributes, are in its snapshot
    (``test_<platform>.py::test_entities``).
    """
    registry = er.async_get(hass)
    remaining = registry.async_get(entity_id(hass, *DISABLED))
    assert remaining is not None
    assert remaining.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert hass.states.get(remaining.entity_id) is None
    # One device for the bay, in the bay's subentry; every entity belongs to it.
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), loaded_entry.entry_id)
    (device,) = [d for d in devices if d.model == "Charging bay"]
    assert device.name == "Bay 1"
    assert device.manufacturer == "qr_charging"
    # The plug (a template switch) has no device of its own to link to.
    assert device.via_device_id is None
    (bay_subentry,) = [s for s in loaded_entry.subentries.values() if s.subentry_type == "bay"]
    if hasattr(device, "config_subentry_id"):  # HA 2026.8 on: a device has one entry
        assert device.config_subentry_id == bay_subentry.subentry_id
    else:
        assert device.config_entries_subentries[loaded_entry.entry_id] == {bay_subentry.subentry_id}
    entities = er.async_entries_for_device(registry, device.id, include_disabled_entities=True)
    assert sorted(e.unique_id for e in entities) == sorted(
        f"{loaded_entry.entry_id}_bay-1_{key}" for _, key in ALL
    )
    assert {e.config_subentry_id for e in entities} == {bay_subentry.subentry_id}


@pytest.mark.usefixtures("time_remaining_enabled")
async def test_paid_session_then_its_end(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    await pay(hass, standin, post_webhook)

    assert state(hass, "switch", "charging") == STATE_ON
    assert state(hass, "sensor", "status") == "charging"
    assert hass.states.get(PLUG).state == STATE_ON  # type: ignore[union-attr]
    end = dt_util.parse_datetime(state(hass, "sensor", "session_end"))
    assert end is not None
    assert abs(end.timestamp() - (time.time() + 30 * 60)) < 5
    assert state(hass, "sensor", "time_remaining") == "30"
    assert state(hass, "sensor", "revenue") == "20.00"
    assert state(hass, "sensor", "sessions") == "1"

    # Within a minute nothing is rewritten; each minute the remaining time drops.
    remaining = entity_id(hass, "sensor", "time_remaining")
    written = hass.states.get(remaining).last_reported  # type: ignore[union-attr]
    await tick(hass, freezer, timedelta(seconds=20))
    assert hass.states.get(remaining).last_reported == written  # type: ignore[union-attr]
    for _ in range(3):
        await tick(hass, freezer, timedelta(minutes=1))
    assert state(hass, "sensor", "time_remaining") == "27"

    # The deadline passes: the plug goes off and the bay is idle, the money and count stay.
    await tick(hass, freezer, timedelta(minutes=27))
    assert hass.states.get(PLUG).state == STATE_OFF  # type: ignore[union-attr]
    assert state(hass, "switch", "charging") == STATE_OFF
    assert state(hass, "sensor", "status") == "idle"
    assert state(hass, "sensor", "session_end") == STATE_UNKNOWN
    assert state(hass, "sensor", "time_remaining") == "0"
    assert state(hass, "sensor", "revenue") == "20.00"
    assert state(hass, "sensor", "sessions") == "1"
    # No more minute ticks once idle.
    written = hass.states.get(remaining).last_reported  # type: ignore[union-attr]
    await tick(hass, freezer, timedelta(minutes=2))
    assert hass.states.get(remaining).last_reported == written  # type: ignore[union-attr]


@pytest.mark.usefixtures("time_remaining_enabled")
async def test_switch_gives_and_stops_an_owner_session(hass: HomeAssistant) -> None:
    switch = entity_id(hass, "switch", "charging")

    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True)
    await settle(hass)

    assert state(hass, "switch", "charging") == STATE_ON
    assert state(hass, "sensor", "status") == "charging"
    assert hass.states.get(PLUG).state == STATE_ON  # type: ignore[union-attr]
    assert state(hass, "sensor", "time_remaining") == "30"
    assert state(hass, "sensor", "revenue") == "0.00"

    # Turning on again while it runs changes nothing.
    end = state(hass, "sensor", "session_end")
    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True)
    assert state(hass, "sensor", "session_end") == end

    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    await settle(hass)

    assert hass.states.get(PLUG).state == STATE_OFF  # type: ignore[union-attr]
    assert state(hass, "switch", "charging") == STATE_OFF
    assert state(hass, "sensor", "status") == "idle"
    assert state(hass, "sensor", "sessions") == "1"
    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    assert state(hass, "switch", "charging") == STATE_OFF


@pytest.mark.usefixtures("loaded_entry")
async def test_only_admins_work_the_switch(
    hass: HomeAssistant, non_admin_user: MockUser, hass_admin_user: MockUser
) -> None:
    non_admin = Context(user_id=non_admin_user.id)
    admin = Context(user_id=hass_admin_user.id)

    async def switch(service: str, context: Context) -> None:
        target = {"entity_id": entity_id(hass, "switch", "charging")}
        await hass.services.async_call("switch", service, target, blocking=True, context=context)

    for service in ("turn_on", "toggle"):
        with pytest.raises(Unauthorized):
            await switch(service, non_admin)
    await settle(hass)
    assert hass.states.get(PLUG).state == STATE_OFF  # type: ignore[union-attr]
    assert state(hass, "sensor", "sessions") == "0"

    await switch("turn_on", admin)
    await settle(hass)
    for service in ("turn_off", "toggle"):
        with pytest.raises(Unauthorized):
            await switch(service, non_admin)
    await settle(hass)
    assert state(hass, "switch", "charging") == STATE_ON
    assert hass.states.get(PLUG).state == STATE_ON  # type: ignore[union-attr]

    await switch("turn_off", admin)
    await settle(hass)
    assert state(hass, "switch", "charging") == STATE_OFF


@pytest.mark.usefixtures("loaded_entry")
async def test_turning_off_a_paid_session_refunds_the_unserved_share(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    await pay(hass, standin, post_webhook)
    await tick(hass, freezer, timedelta(minutes=15))

    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": entity_id(hass, "switch", "charging")}, blocking=True
    )
    await settle(hass)

    assert hass.states.get(PLUG).state == STATE_OFF  # type: ignore[union-attr]
    assert state(hass, "sensor", "status") == "idle"
    # Half of ₹20 was not served and went back to the customer.
    assert float(state(hass, "sensor", "revenue")) == pytest.approx(10.0, abs=0.01)


@pytest.mark.usefixtures("loaded_entry")
async def test_plug_dropping_off_makes_the_bay_unavailable(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    hass.states.async_set(PLUG, STATE_UNAVAILABLE)
    await settle(hass)
    hass.states.async_set(PLUG, STATE_UNAVAILABLE, {"again": True})
    await settle(hass)

    assert state(hass, "sensor", "status") == "offline"
    assert state(hass, "binary_sensor", "agent") == STATE_OFF
    for platform, key in ENABLED:
        # The QR code shows an out-of-order sign instead (test_pages_qr.py).
        if key not in ("status", "agent", "payment_qr"):
            assert state(hass, platform, key) == STATE_UNAVAILABLE, key

    hass.states.async_set(PLUG, STATE_OFF)
    await settle(hass)

    assert state(hass, "sensor", "status") == "idle"
    assert state(hass, "binary_sensor", "agent") == STATE_ON
    assert state(hass, "switch", "charging") == STATE_OFF
    # Said once when it went, once when it came back.
    assert caplog.text.count("Bay bay-1 is unavailable") == 1
    assert caplog.text.count("Bay bay-1 is back online") == 1


async def test_only_stale_devices_can_be_removed(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    assert await async_setup_component(hass, "config", {})
    devices = dr.async_get(hass)
    bay, site = sorted(
        dr.async_entries_for_config_entry(devices, loaded_entry.entry_id), key=lambda d: d.model
    )
    gone = devices.async_get_or_create(
        config_entry_id=loaded_entry.entry_id,
        identifiers={(DOMAIN, f"{loaded_entry.entry_id}_bay-removed")},
    )
    client = await hass_ws_client(hass)

    async def remove(device_id: str) -> bool:
        await client.send_json_auto_id(
            {
                "type": "config/device_registry/remove_config_entry",
                "config_entry_id": loaded_entry.entry_id,
                "device_id": device_id,
            }
        )
        return bool((await client.receive_json())["success"])

    assert not await remove(bay.id)
    assert not await remove(site.id)  # its default site (issue #25)
    assert await remove(gone.id)
    assert devices.async_get(bay.id) is not None
    assert devices.async_get(gone.id) is None


NODE = "kiosk-1"


@pytest.fixture
async def mqtt_bay_entry(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, standin: RazorpayStandin
) -> AsyncGenerator[MockConfigEntry]:
    """The account with bay-1 on a pi-mqtt-relay agent (HA's MQTT client mocked)."""
    bay = mqtt_bay(NODE)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=standin.key_id,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[PLAN_SUBENTRY, bay],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    for loaded in hass.config_entries.async_entries():
        await hass.config_entries.async_unload(loaded.entry_id)
    await hass.async_block_till_done()


# HA's MQTT client leaves its (mocked) subscription cooldown timer behind.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_bay_device_hangs_off_its_agent(
    hass: HomeAssistant, mqtt_bay_entry: MockConfigEntry
) -> None:
    devices = dr.async_get(hass)
    by_model = {
        d.model: d for d in dr.async_entries_for_config_entry(devices, mqtt_bay_entry.entry_id)
    }
    agent, bay = by_model["pi-mqtt-relay"], by_model["Charging bay"]
    assert (DOMAIN, f"agent-{NODE}") in agent.identifiers
    assert (agent.name, agent.manufacturer, agent.sw_version) == (NODE, "qr_charging", None)
    assert bay.via_device_id == agent.id
    assert bay.name == "Bay 1"

    # No word from the agent yet: only the status and the connectivity say anything.
    assert state(hass, "sensor", "status") == "offline"
    assert state(hass, "binary_sensor", "agent") == STATE_OFF
    assert state(hass, "switch", "charging") == STATE_UNAVAILABLE
    # The QR code shows an out-of-order sign instead (tests/integration/test_pages_qr.py).
    assert state(hass, "image", "payment_qr") != STATE_UNAVAILABLE

    async_fire_mqtt_message(hass, f"qr_charging/{NODE}/availability", "online", retain=True)
    config = {"node": NODE, "name": "Kiosk 1", "sw_version": "1.4.0", "bays": [{"id": "bay-1"}]}
    async_fire_mqtt_message(hass, f"qr_charging/{NODE}/config", json.dumps(config), retain=True)
    await settle(hass)

    assert state(hass, "binary_sensor", "agent") == STATE_ON
    assert state(hass, "sensor", "status") == "idle"
    assert state(hass, "switch", "charging") == STATE_OFF
    agent = devices.async_get(agent.id)  # type: ignore[assignment]
    assert agent is not None
    assert (agent.name, agent.sw_version) == ("Kiosk 1", "1.4.0")
    assert devices.async_get(bay.id).via_device_id == agent.id  # type: ignore[union-attr]

    async_fire_mqtt_message(hass, f"qr_charging/{NODE}/availability", "offline")
    await settle(hass)
    assert state(hass, "binary_sensor", "agent") == STATE_OFF
    assert state(hass, "sensor", "status") == "offline"
    assert state(hass, "sensor", "revenue") == STATE_UNAVAILABLE


TRANSLATIONS = Path(__file__).parents[2] / "custom_components/qr_charging/translations"


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        out |= _flat(value, path) if isinstance(value, dict) else {path: value}
    return out


def test_hindi_covers_every_string() -> None:
    english = _flat(json.loads((TRANSLATIONS.parent / "strings.json").read_text("utf-8")))
    hindi = _flat(json.loads((TRANSLATIONS / "hi.json").read_text("utf-8")))
    assert sorted(hindi) == sorted(english)
    placeholders = re.compile(r"\{(\w+)\}")
    for key, text in english.items():
        assert set(placeholders.findall(hindi[key])) == set(placeholders.findall(text)), key


async def test_entity_names_in_hindi(hass: HomeAssistant, config_entry: MockConfigEntry) -> None:
    hass.config.language = "hi"
    await setup_plug(hass)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    status = hass.states.get(entity_id(hass, "sensor", "status"))
    assert status is not None
    assert status.attributes["friendly_name"] == "Bay 1 स्थिति"
