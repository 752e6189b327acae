"""The forms of metered bays (issue #24): the per-kWh plan, and the bay form's meter section.

Through HA's subentry flows, as the owner fills them in; what is stored is checked whole.
"""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, section
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.metering import Metering, metering_problem
from devtools.razorpay_standin import RazorpayStandin

from .const import BAY_SUBENTRY, PLAN_SUBENTRY, with_plans
from .helpers import entry_data
from .meter_helpers import ENERGY_PLAN_SUBENTRY

PLAN_FORM = {
    "code": "kwh",
    "name": "Per unit",
    "price": 15.5,
    "min_amount": 20,
    "max_amount": 500,
    "minutes": 180,
}
BAY_FORM = {
    "bay_id": "plug-bay",
    "name": "Plug bay",
    "plans": ["p30", "kwh"],
    "switch_entity": "switch.bay_1_plug",
    "default_minutes": 30,
    "max_minutes": 240,
}
METER = {
    "power_sensor": "sensor.plug_power",
    "energy_sensor": "sensor.plug_energy",
    "max_power_w": 3680,
    "full_below_w": 15,
    "full_settle_min": 5,
    "full_grace_min": 1,
    "prorata": False,
}


def _account(hass: HomeAssistant, standin: RazorpayStandin, *subs: dict[str, Any]) -> Any:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=list(subs),
    )
    entry.add_to_hass(hass)
    return entry


async def _add(hass: HomeAssistant, entry: MockConfigEntry, kind: str) -> Any:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind), context={"source": SOURCE_USER}
    )


async def _edit(hass: HomeAssistant, entry: MockConfigEntry, kind: str, sub_id: str) -> Any:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind), context={"source": "reconfigure", "subentry_id": sub_id}
    )


def _sub(entry: MockConfigEntry, kind: str, key: str, value: str) -> str:
    (sub_id,) = [
        i for i, s in entry.subentries.items() if s.subentry_type == kind and s.data[key] == value
    ]
    return sub_id


def _section(result: Any, name: str) -> section:
    (found,) = [v for k, v in result["data_schema"].schema.items() if k == name]
    assert isinstance(found, section)
    return found


def _suggested(schema: Any, field: str) -> Any:
    (key,) = [k for k in schema.schema if k == field]
    return key.description["suggested_value"]


async def test_add_and_edit_a_per_kwh_plan(hass: HomeAssistant, standin: RazorpayStandin) -> None:
    entry = _account(hass, standin)
    result = await _add(hass, entry, "energy_plan")
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], PLAN_FORM)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    sub_id = _sub(entry, "energy_plan", "code", "kwh")
    assert dict(entry.subentries[sub_id].data) == {
        "code": "kwh",
        "name": "Per unit",
        "kind": "kwh",
        "minutes": 180,
        "price_per_kwh_paise": 1550,
        "min_paise": 2000,
        "max_paise": 50000,
    }

    result = await _edit(hass, entry, "energy_plan", sub_id)
    schema = result["data_schema"]
    assert (_suggested(schema, "price"), _suggested(schema, "max_amount")) == (15.5, 500)
    edit = {k: v for k, v in PLAN_FORM.items() if k != "code"} | {"price": 18}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], edit)
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[sub_id].data["price_per_kwh_paise"] == 1800


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"price": 0}, {"price": "invalid_price"}),
        ({"price": 100.01}, {"price": "invalid_price"}),
        ({"min_amount": 0.5}, {"min_amount": "price_below_minimum"}),
        ({"max_amount": 10}, {"max_amount": "max_below_min"}),
        ({"price": 15.555}, {"price": "invalid_price"}),
        ({"code": "p30"}, {"code": "duplicate_id"}),  # plans of every kind share codes
        ({"minutes": 2.5}, {"minutes": "invalid_minutes"}),
    ],
)
async def test_a_bad_per_kwh_plan_is_refused_and_nothing_stored(
    hass: HomeAssistant, standin: RazorpayStandin, change: dict[str, Any], errors: dict[str, str]
) -> None:
    entry = _account(hass, standin, PLAN_SUBENTRY)
    result = await _add(hass, entry, "energy_plan")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], PLAN_FORM | change
    )
    assert result["errors"] == errors
    assert [s.subentry_type for s in entry.subentries.values()] == ["plan"]


async def _switch_form(hass: HomeAssistant, entry: MockConfigEntry) -> Any:
    result = await _add(hass, entry, "bay")
    return await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": "switch"}
    )


async def test_a_switch_bay_with_a_meter_is_stored_with_its_settings(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    entry = _account(hass, standin, PLAN_SUBENTRY, ENERGY_PLAN_SUBENTRY)
    result = await _switch_form(hass, entry)
    meter = _section(result, "meter_options")
    assert meter.options == {"collapsed": True}
    assert [str(k) for k in meter.schema.schema] == list(METER)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], BAY_FORM | {"meter_options": METER}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    sub_id = _sub(entry, "bay", "bay_id", "plug-bay")
    data = entry.subentries[sub_id].data
    assert {k: data[k] for k in METER} == METER

    result = await _edit(hass, entry, "bay", sub_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": "reconfigure_switch"}
    )
    shown = _section(result, "meter_options").schema
    assert _suggested(shown, "energy_sensor") == "sensor.plug_energy"
    assert _suggested(shown, "prorata") is False
    assert _suggested(shown, "max_power_w") == 3680


async def test_an_agent_bays_meter_section_has_no_sensors_and_defaults_are_not_stored(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    bay = with_plans(BAY_SUBENTRY, [PLAN_SUBENTRY])
    entry = _account(hass, standin, PLAN_SUBENTRY, bay)
    sub_id = _sub(entry, "bay", "bay_id", "bay-1")
    result = await _edit(hass, entry, "bay", sub_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": "reconfigure_mqtt"}
    )
    shown = _section(result, "meter_options").schema
    assert [str(k) for k in shown.schema] == [
        "full_below_w",
        "full_settle_min",
        "full_grace_min",
        "prorata",
    ]
    assert _suggested(shown, "full_below_w") == 10
    form = {k: v for k, v in BAY_FORM.items() if k not in ("bay_id", "switch_entity")}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form | {"plans": ["p30"], "node": "kiosk-1"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert not {"full_below_w", "prorata", "power_sensor"} & set(entry.subentries[sub_id].data)


@pytest.mark.parametrize(
    ("meter", "errors"),
    [
        ({"power_sensor": "sensor.plug_power"}, {"energy_sensor": "meter_needs_both"}),
        ({"energy_sensor": "sensor.plug_energy"}, {"energy_sensor": "meter_needs_both"}),
    ],
)
async def test_a_meter_needs_both_sensors(
    hass: HomeAssistant, standin: RazorpayStandin, meter: dict[str, Any], errors: dict[str, str]
) -> None:
    entry = _account(hass, standin, PLAN_SUBENTRY)
    result = await _switch_form(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], BAY_FORM | {"plans": ["p30"], "meter_options": meter}
    )
    assert result["errors"] == errors
    assert [s.subentry_type for s in entry.subentries.values()] == ["plan"]


@pytest.mark.parametrize(
    ("meter", "on_agent", "problem"),
    [
        (Metering(energy_sensor="sensor.e", power_sensor="sensor.p"), True, "meter_on_agent"),
        (Metering(energy_sensor="switch.e", power_sensor="sensor.p"), False, "sensor_required"),
        (Metering(full_below_w=1001), False, "invalid_full_below"),
        (Metering(full_settle_min=61), False, "invalid_full_minutes"),
        (Metering(full_grace_min=-1), False, "invalid_full_minutes"),
        (Metering(max_power_w=99), False, "invalid_max_power"),
        (Metering(max_power_w=22_001), False, "invalid_max_power"),
        (Metering(), True, None),
    ],
)
def test_metering_settings_beyond_what_the_form_allows_are_refused(
    meter: Metering, on_agent: bool, problem: str | None
) -> None:
    found = metering_problem(meter, on_agent=on_agent)
    assert (found[1] if found else None) == problem
