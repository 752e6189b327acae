"""A bay's site and rated power (issue #25): the bay form's select and checks, discovery."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.config_entries import SOURCE_MQTT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .const import BAY_SUBENTRY, PLAN_SUBENTRY
from .flow_helpers import add_account, bay_form, reconfigure_subentry, suggested
from .site_helpers import site_subentry

SWITCH_BAY = {"bay_id": "bay-2", "name": "Bay 2", "plans": ["p30"], "switch_entity": "switch.b2"}


def _bays(entry: Any) -> dict[str, dict[str, Any]]:
    return {
        s.data["bay_id"]: dict(s.data)
        for s in entry.subentries.values()
        if s.subentry_type == "bay"
    }


def _account(hass: HomeAssistant, standin: RazorpayStandin) -> Any:
    """Plans and two sites: a shop with a 5 kW cap (first), a yard without one."""
    shop = site_subentry("shop", "Shop", load_cap_w=5000)
    return add_account(hass, standin, PLAN_SUBENTRY, shop, site_subentry("yard", "Yard"))


async def test_the_bay_form_offers_the_account_s_sites(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    entry = _account(hass, standin)
    result = await bay_form(hass, entry, "switch")
    (site_key,) = [k for k in result["data_schema"].schema if k == "site_id"]
    config = result["data_schema"].schema[site_key].config
    assert config["options"] == [
        {"value": "shop", "label": "Shop"},
        {"value": "yard", "label": "Yard"},
    ]
    assert site_key.default() == "shop"  # the first site

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], SWITCH_BAY | {"site_id": "yard", "rated_w": 7400}
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert (_bays(entry)["bay-2"]["site_id"], _bays(entry)["bay-2"]["rated_w"]) == ("yard", 7400)


async def test_a_bay_rated_above_its_site_cap_is_refused(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    entry = _account(hass, standin)
    result = await bay_form(hass, entry, "switch")
    for change, errors in (
        ({"site_id": "shop", "rated_w": 7400}, {"rated_w": "above_site_cap"}),
        ({"site_id": "shop", "rated_w": 3300.5}, {"rated_w": "invalid_rated_power"}),
    ):
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], SWITCH_BAY | change
        )
        assert result["errors"] == errors, change
        assert _bays(entry) == {}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], SWITCH_BAY | {"site_id": "shop", "rated_w": 5000}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert _bays(entry)["bay-2"]["rated_w"] == 5000


async def test_a_site_removed_while_the_bay_form_is_open_is_refused(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    entry = _account(hass, standin)
    result = await bay_form(hass, entry, "switch")
    (yard,) = [i for i, s in entry.subentries.items() if s.unique_id == "yard"]
    hass.config_entries.async_remove_subentry(entry, yard)

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], SWITCH_BAY | {"site_id": "yard"}
    )

    assert result["errors"] == {"site_id": "unknown_site"}
    assert _bays(entry) == {}


async def test_editing_a_bay_shows_its_site_and_moves_it(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    shop = site_subentry("shop", "Shop", load_cap_w=5000)
    entry = add_account(hass, standin, PLAN_SUBENTRY, BAY_SUBENTRY, shop)
    sub_id, result = await reconfigure_subentry(hass, entry, "bay")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": "reconfigure_switch"}
    )
    # A bay of before sites: the default site, the default rated power.
    assert (suggested(result, "site_id"), suggested(result, "rated_w")) == ("default", 3300)
    form = {
        "name": "Bay 1",
        "plans": ["p30"],
        "switch_entity": "switch.bay_1_plug",
        "site_id": "shop",
    }

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form | {"rated_w": 7400}
    )
    assert result["errors"] == {"rated_w": "above_site_cap"}
    assert entry.subentries[sub_id].data == BAY_SUBENTRY["data"]  # nothing saved

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form | {"rated_w": 3700}
    )
    assert result["reason"] == "reconfigure_successful"
    data = entry.subentries[sub_id].data
    assert (data["site_id"], data["rated_w"]) == ("shop", 3700)


async def test_discovered_agent_bays_go_to_the_first_site(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    entry = _account(hass, standin)
    config = {
        "node": "kiosk-1",
        "name": "Kiosk 1",
        "bays": [{"id": "bay-1", "name": "Bay 1"}, {"id": "bay-2", "name": "Bay 2"}],
        "max_session_s": 14400,
    }
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_MQTT},
        data=MqttServiceInfo(
            topic="qr_charging/kiosk-1/config",
            payload=json.dumps(config),
            qos=0,
            retain=True,
            subscribed_topic="qr_charging/+/config",
            timestamp=0,
        ),
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})

    assert result["reason"] == "agent_added"
    bays = _bays(entry)
    assert {bay_id: bay.get("site_id") for bay_id, bay in bays.items()} == {
        "bay-1": "shop",
        "bay-2": "shop",
    }
