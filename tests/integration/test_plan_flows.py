"""The plans' subentry flows: fixed and per-minute plans added, refused and edited."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from pytest_homeassistant_custom_component.common import MockConfigEntry

from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY, RATE_PLAN_SUBENTRY
from .flow_helpers import add_account, reconfigure_subentry, subentry_flow, suggested


async def test_add_plan_stores_integer_paise(
    hass: HomeAssistant, bare_entry: MockConfigEntry
) -> None:
    result = await subentry_flow(hass, bare_entry, "plan")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"code": "p15", "name": "15 minutes", "minutes": 15, "price": 12.5}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (sub,) = bare_entry.subentries.values()
    assert dict(sub.data) == {
        "code": "p15",
        "name": "15 minutes",
        "minutes": 15,
        "price_paise": 1250,
    }
    assert isinstance(sub.data["price_paise"], int)
    assert sub.unique_id == "p15"


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        ({"code": "p 30", "name": "x", "minutes": 30, "price": 20}, {"code": "invalid_id"}),
        ({"code": "p30", "name": "x", "minutes": 30, "price": 20}, {"code": "duplicate_id"}),
        ({"code": "p1", "name": "x", "minutes": 1.5, "price": 20}, {"minutes": "invalid_minutes"}),
        ({"code": "p1", "name": "x", "minutes": 30, "price": 0}, {"price": "invalid_price"}),
        (
            {"code": "p1", "name": "x", "minutes": 30, "price": 0.5},
            {"price": "price_below_minimum"},
        ),
        ({"code": "p1", "name": "x", "minutes": 30, "price": 10.005}, {"price": "invalid_price"}),
    ],
)
async def test_bad_plans_are_refused(
    hass: HomeAssistant,
    plan_entry: MockConfigEntry,
    user_input: dict[str, Any],
    errors: dict[str, str],
) -> None:
    entry = plan_entry
    result = await subentry_flow(hass, entry, "plan")
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert len(entry.subentries) == 1

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], user_input | {"code": "p1", "minutes": 30, "price": 20}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(entry.subentries) == 2


async def test_zero_minutes_refused_by_the_form(
    hass: HomeAssistant, bare_entry: MockConfigEntry
) -> None:
    result = await subentry_flow(hass, bare_entry, "plan")
    with pytest.raises(InvalidData):
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"code": "p1", "name": "x", "minutes": 0, "price": 20}
        )
    assert bare_entry.subentries == {}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"code": "p1", "name": "x", "minutes": 1, "price": 20}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_edit_plan_keeps_code(hass: HomeAssistant, plan_entry: MockConfigEntry) -> None:
    entry = plan_entry
    (sub_id,) = entry.subentries
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "plan"), context={"source": "reconfigure", "subentry_id": sub_id}
    )
    assert result["step_id"] == "reconfigure"
    # The form shows the stored price in rupees.
    assert suggested(result, "price") == 20.0
    before = dict(entry.subentries[sub_id].data)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Half hour", "minutes": 30, "price": 0.5}
    )
    assert result["errors"] == {"price": "price_below_minimum"}
    assert dict(entry.subentries[sub_id].data) == before

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Half hour", "minutes": 30, "price": 25}
    )
    assert result["reason"] == "reconfigure_successful"
    assert dict(entry.subentries[sub_id].data) == {
        "code": "p30",
        "name": "Half hour",
        "minutes": 30,
        "price_paise": 2500,
    }


RATE_PLAN = {"code": "pm", "name": "Per minute", "rate": 0.75, "min_minutes": 10, "max_minutes": 90}


async def test_add_a_per_minute_plan(hass: HomeAssistant, plan_entry: MockConfigEntry) -> None:
    result = await subentry_flow(hass, plan_entry, "rate_plan")
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], RATE_PLAN)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    (sub,) = [s for s in plan_entry.subentries.values() if s.subentry_type == "rate_plan"]
    assert sub.unique_id == "pm"
    assert dict(sub.data) == {
        "code": "pm",
        "name": "Per minute",
        "kind": "rate",
        "rate_paise": 75,
        "min_minutes": 10,
        "max_minutes": 90,
    }
    # The fixed plan is untouched.
    (fixed,) = [s for s in plan_entry.subentries.values() if s.subentry_type == "plan"]
    assert dict(fixed.data) == PLAN_SUBENTRY["data"]


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"code": "p30"}, {"code": "duplicate_id"}),  # codes are shared with fixed plans
        ({"code": "p m"}, {"code": "invalid_id"}),
        ({"rate": 0}, {"rate": "invalid_price"}),
        ({"rate": 0.005}, {"rate": "invalid_price"}),
        ({"min_minutes": 1, "rate": 0.5}, {"min_minutes": "minimum_below_one_rupee"}),
        ({"min_minutes": 30, "max_minutes": 20}, {"max_minutes": "max_below_min"}),
        ({"min_minutes": 2.5}, {"min_minutes": "invalid_minutes"}),
    ],
)
async def test_bad_per_minute_plans_are_refused(
    hass: HomeAssistant, plan_entry: MockConfigEntry, change: dict[str, Any], errors: Any
) -> None:
    result = await subentry_flow(hass, plan_entry, "rate_plan")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], RATE_PLAN | change
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert len(plan_entry.subentries) == 1

    result = await hass.config_entries.subentries.async_configure(result["flow_id"], RATE_PLAN)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(plan_entry.subentries) == 2


async def test_edit_a_per_minute_plan(hass: HomeAssistant, standin: RazorpayStandin) -> None:
    entry = add_account(hass, standin, RATE_PLAN_SUBENTRY)
    sub_id, result = await reconfigure_subentry(hass, entry, "rate_plan")
    assert suggested(result, "rate") == 0.5  # shown in rupees
    edit = {"name": "Per minute", "rate": 1, "min_minutes": 10, "max_minutes": 120}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], edit | {"max_minutes": 5}
    )
    assert result["errors"] == {"max_minutes": "max_below_min"}
    assert entry.subentries[sub_id].data["max_minutes"] == 120

    result = await hass.config_entries.subentries.async_configure(result["flow_id"], edit)
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[sub_id].data["rate_paise"] == 100
    assert entry.subentries[sub_id].data["code"] == "pm"
