"""The site subentry flow (issue #25): add and edit a site; every bad input names its field."""

from __future__ import annotations

from typing import Any

import pytest
import voluptuous as vol
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, section
from pytest_homeassistant_custom_component.common import MockConfigEntry

from devtools.razorpay_standin import RazorpayStandin

from .const import BAY_SUBENTRY, PLAN_SUBENTRY
from .flow_helpers import add_account, reconfigure_subentry, subentry_flow
from .site_helpers import FORM_HOURS, hours_section, site_subentry

SHOP = (
    {
        "site_id": "shop",
        "name": "Shop",
        "address": "12 MG Road, Pune",
        "time_zone": "Asia/Kolkata",
    }
    | hours_section(sun="")
    | {"load_cap": {"load_cap_kw": 5}}
)


def _shown(schema: vol.Schema) -> dict[str, Any]:
    """What a form shows in each field (a section's fields in a mapping of their own)."""
    return {
        str(key): _shown(value.schema)
        if isinstance(value, section)
        else (key.description or {}).get("suggested_value")
        for key, value in schema.schema.items()
    }


def _sites(entry: MockConfigEntry) -> dict[str, dict[str, Any]]:
    return {
        s.unique_id or "": dict(s.data)
        for s in entry.subentries.values()
        if s.subentry_type == "site"
    }


async def test_add_a_site(hass: HomeAssistant, plan_entry: MockConfigEntry) -> None:
    result = await subentry_flow(hass, plan_entry, "site")
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, "user")
    schema = result["data_schema"].schema
    assert [str(key) for key in schema] == [
        "site_id",
        "name",
        "address",
        "time_zone",
        "opening_hours",
        "load_cap",
    ]
    # A new site's form shows it open around the clock.
    hours = _shown(result["data_schema"])["opening_hours"]
    assert hours == dict.fromkeys(FORM_HOURS, "00:00-24:00") | {
        "closed_dates": None,
        "sell_past_closing": None,
    }

    # The frontend leaves an emptied field out: Sunday is sent as nothing, a closed day.
    entered = SHOP | {"opening_hours": {k: v for k, v in FORM_HOURS.items() if v}}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], entered)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Shop"
    assert _sites(plan_entry) == {
        "shop": {
            "site_id": "shop",
            "name": "Shop",
            "address": "12 MG Road, Pune",
            "time_zone": "Asia/Kolkata",
            "hours": FORM_HOURS,
            "closed_dates": [],
            "load_cap_w": 5000,
            "sell_past_closing": False,
        }
    }


async def test_a_site_left_as_shown_is_open_always_in_home_assistant_s_time_zone(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    result = await subentry_flow(hass, plan_entry, "site")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "site_id": "yard",
            "name": "Yard",
            "opening_hours": dict.fromkeys(FORM_HOURS, "00:00-24:00"),
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    site = _sites(plan_entry)["yard"]
    assert (site["time_zone"], site["load_cap_w"], site["address"]) == (None, None, "")
    assert site["hours"] == dict.fromkeys(FORM_HOURS, "00:00-24:00")


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"site_id": "the shop"}, {"site_id": "invalid_id"}),
        ({"site_id": "old"}, {"site_id": "duplicate_id"}),
        ({"time_zone": "India/Pune"}, {"time_zone": "invalid_time_zone"}),
        (hours_section(mon="8-21"), {"mon": "invalid_hours"}),
        (hours_section(tue="21:00-08:00"), {"tue": "hours_backwards"}),
        (hours_section(wed="08:00-14:00, 13:00-21:00"), {"wed": "hours_overlap"}),
        (hours_section(sat="10:00-24:30"), {"sat": "invalid_hours"}),
        (
            {"opening_hours": FORM_HOURS | {"closed_dates": "2026-08-15, 15/08/2026"}},
            {"closed_dates": "invalid_date"},
        ),
        ({"load_cap": {"load_cap_kw": 0}}, {"load_cap_kw": "invalid_load_cap"}),
        ({"load_cap": {"load_cap_kw": 20000}}, {"load_cap_kw": "invalid_load_cap"}),
        # Numbers the selector lets through that are no watts (round() refuses them).
        ({"load_cap": {"load_cap_kw": float("nan")}}, {"load_cap_kw": "invalid_load_cap"}),
        ({"load_cap": {"load_cap_kw": float("inf")}}, {"load_cap_kw": "invalid_load_cap"}),
    ],
)
async def test_bad_site_input_names_its_field_and_saves_nothing(
    hass: HomeAssistant, standin: RazorpayStandin, change: dict[str, Any], errors: dict[str, str]
) -> None:
    entry = add_account(hass, standin, PLAN_SUBENTRY, site_subentry("old", "Old"))
    before = _sites(entry)
    result = await subentry_flow(hass, entry, "site")
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], SHOP | change)
    assert (result["type"], result["errors"]) == (FlowResultType.FORM, errors)
    assert _sites(entry) == before
    # The form keeps what was entered, to correct it.
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], SHOP)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_edit_a_site_keeps_its_id(hass: HomeAssistant, standin: RazorpayStandin) -> None:
    shop = site_subentry(
        "shop",
        "Shop",
        address="12 MG Road, Pune",
        time_zone="Asia/Kolkata",
        hours=FORM_HOURS,
        closed_dates="2026-08-15",
        load_cap_w=5000,
    )
    entry = add_account(hass, standin, PLAN_SUBENTRY, shop)
    _, result = await reconfigure_subentry(hass, entry, "site")
    assert result["step_id"] == "reconfigure"
    schema = result["data_schema"].schema
    assert "site_id" not in schema
    shown = _shown(result["data_schema"])
    assert shown["name"] == "Shop"
    assert shown["address"] == "12 MG Road, Pune"
    assert shown["time_zone"] == "Asia/Kolkata"
    # A closed Sunday is shown empty, as it is entered.
    assert shown["opening_hours"] == FORM_HOURS | {"sun": None} | {
        "closed_dates": "2026-08-15",
        "sell_past_closing": False,
    }
    assert shown["load_cap"] == {"load_cap_kw": 5.0}

    # A bad edit changes nothing.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Shop"} | hours_section(fri="09:00-08:00")
    )
    assert result["errors"] == {"fri": "hours_backwards"}
    assert _sites(entry)["shop"] == shop["data"]

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "Corner shop", "time_zone": "Asia/Kolkata"}
        | {"opening_hours": FORM_HOURS | {"sun": "10:00-14:00", "sell_past_closing": True}}
        | {"load_cap": {"load_cap_kw": 7.4}},
    )
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "reconfigure_successful")
    site = _sites(entry)["shop"]
    assert site["site_id"] == "shop"
    assert site["name"] == "Corner shop"
    assert site["hours"]["sun"] == "10:00-14:00"
    assert site["closed_dates"] == []  # emptied
    assert (site["load_cap_w"], site["sell_past_closing"]) == (7400, True)
    (sub,) = [s for s in entry.subentries.values() if s.subentry_type == "site"]
    assert sub.title == "Corner shop"


async def test_a_cap_below_a_bay_of_the_site_is_refused(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    """The bay form's rule the other way round: no cap may leave one of its bays unable to start."""
    bay = {**BAY_SUBENTRY, "data": {**BAY_SUBENTRY["data"], "site_id": "shop", "rated_w": 3300}}
    shop = site_subentry("shop", "Shop", load_cap_w=5000)
    entry = add_account(hass, standin, PLAN_SUBENTRY, shop, bay, site_subentry("yard", "Yard"))
    (shop_id,) = [i for i, s in entry.subentries.items() if s.unique_id == "shop"]
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "site"), context={"source": "reconfigure", "subentry_id": shop_id}
    )
    edit = {"name": "Shop"} | hours_section()
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], edit | {"load_cap": {"load_cap_kw": 3.2}}
    )
    assert result["errors"] == {"load_cap_kw": "cap_below_bay"}
    assert _sites(entry)["shop"]["load_cap_w"] == 5000
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], edit | {"load_cap": {"load_cap_kw": 3.3}}
    )
    assert result["type"] is FlowResultType.ABORT
    assert _sites(entry)["shop"]["load_cap_w"] == 3300
