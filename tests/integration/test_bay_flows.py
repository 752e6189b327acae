"""The bays' subentry flows: the relay kind first, each kind's fields, the QR codes."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData, section
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import CONF_API_BASE_URL
from devtools.razorpay_standin import RazorpayStandin

from .flow_helpers import (
    account_data,
    bay_form,
    qr_options,
    reconfigure_subentry,
    subentry_flow,
    suggested,
)


async def test_bay_needs_a_plan_first(hass: HomeAssistant, bare_entry: MockConfigEntry) -> None:
    result = await subentry_flow(hass, bare_entry, "bay")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_plans"


async def test_add_bay_and_refuse_bad_ones(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    entry = plan_entry
    base = {
        "bay_id": "bay-1",
        "name": "Bay 1",
        "plans": ["p30"],
        "node": "kiosk-1",
    }
    result = await bay_form(hass, entry, "mqtt")
    for change, errors in (
        ({"bay_id": "bay/1"}, {"bay_id": "invalid_id"}),
        ({"plans": []}, {"plans": "no_plans_selected"}),
        ({"node": ""}, {"node": "invalid_id"}),
        ({"node": "kiosk 1"}, {"node": "invalid_id"}),
        ({"agent_bay": "bay 1"}, {"agent_bay": "invalid_id"}),
        ({"prefix": "qr/charging"}, {"prefix": "invalid_id"}),
        ({"default_minutes": 300, "max_minutes": 240}, {"default_minutes": "invalid_minutes"}),
        (qr_options(hold_minutes=20.5), {"hold_minutes": "invalid_minutes"}),
    ):
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], base | change
        )
        assert result["errors"] == errors, change
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], base)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    bays = [s for s in entry.subentries.values() if s.subentry_type == "bay"]
    (data,) = [dict(s.data) for s in bays]
    # Generated for the bay, never typed: its dynamic QR code's secret and its display's token.
    secret, token = data.pop("qr_secret"), data.pop("display_token")
    assert len(secret) > 16
    assert len(token) > 16
    assert secret != token
    assert data == {
        "bay_id": "bay-1",
        "name": "Bay 1",
        "plans": ["p30"],
        "driver": "mqtt",
        "node": "kiosk-1",
        "agent_bay": "bay-1",
        "prefix": "qr_charging",
        "switch_entity": None,
        "default_minutes": 30,
        "max_minutes": 240,
    }

    result = await bay_form(hass, entry, "mqtt")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], base | {"name": "Again"}
    )
    assert result["errors"] == {"bay_id": "duplicate_id"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], base | {"bay_id": "bay-2", "name": "Again"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_add_switch_bay(hass: HomeAssistant, plan_entry: MockConfigEntry) -> None:
    entry = plan_entry
    result = await bay_form(hass, entry, "switch")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "bay_id": "plug-bay",
            "name": "Plug bay",
            "plans": ["p30"],
            "switch_entity": "switch.bay_1_plug",
            "default_minutes": 15,
            "max_minutes": 60,
        }
        | qr_options(hold_minutes=30, dynamic_qr=True, qr_validity_s=120),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (bay,) = [s for s in entry.subentries.values() if s.subentry_type == "bay"]
    data = dict(bay.data)
    assert len(data.pop("qr_secret")) > 16
    assert len(data.pop("display_token")) > 16
    # Stored as switch bays always were: every relay field, the agent's empty.
    assert data == {
        "bay_id": "plug-bay",
        "name": "Plug bay",
        "plans": ["p30"],
        "driver": "switch",
        "node": None,
        "agent_bay": None,
        "prefix": "qr_charging",
        "switch_entity": "switch.bay_1_plug",
        "default_minutes": 15,
        "max_minutes": 60,
        "hold_minutes": 30,
        "dynamic_qr": True,
        "qr_validity_s": 120,
    }


@pytest.mark.parametrize(
    ("relay", "fields"),
    [
        ("mqtt", ["node", "agent_bay", "prefix"]),
        ("switch", ["switch_entity"]),
    ],
)
async def test_the_bay_form_shows_only_its_relays_fields(
    hass: HomeAssistant, plan_entry: MockConfigEntry, relay: str, fields: list[str]
) -> None:
    """One kind's fields, the bay's own, and the QR code and hold fields in a closed section."""
    result = await bay_form(hass, plan_entry, relay)
    schema = result["data_schema"].schema
    assert [str(key) for key in schema] == [
        "bay_id",
        "name",
        "plans",
        *fields,
        "site_id",
        "rated_w",
        "default_minutes",
        "max_minutes",
        "qr_options",
        "meter_options",  # issue #24: tests/integration/test_metered_flows.py
    ]
    (qr,) = [value for key, value in schema.items() if key == "qr_options"]
    assert isinstance(qr, section)
    assert qr.options == {"collapsed": True}
    assert [str(key) for key in qr.schema.schema] == [
        "static_qr",
        "hold_minutes",
        "dynamic_qr",
        "qr_validity_s",
    ]
    # A field of the other kind is no field of this form.
    other = {"switch_entity": "switch.bay_1_plug"} if relay == "mqtt" else {"node": "kiosk-1"}
    with pytest.raises(InvalidData):
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"bay_id": "b", "name": "B", "plans": ["p30"]} | other
        )


BAY_FORM = {
    "name": "Bay 1",
    "plans": ["p30", "pm"],
    "switch_entity": "switch.bay_1_plug",
    "default_minutes": 30,
    "max_minutes": 240,
}


async def _edit_form(
    hass: HomeAssistant, entry: MockConfigEntry, relay: str = "switch"
) -> tuple[str, Any]:
    """Edit bay-1: the menu asks how it is switched first; the form of that kind."""
    sub_id, result = await reconfigure_subentry(hass, entry, "bay")
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["reconfigure_mqtt", "reconfigure_switch"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": f"reconfigure_{relay}"}
    )
    assert result["step_id"] == f"reconfigure_{relay}"
    return sub_id, result


def _suggested_qr(result: Any, field: str) -> Any:
    """The value the form shows in a field of its QR section."""
    (qr,) = [value for key, value in result["data_schema"].schema.items() if key == "qr_options"]
    return suggested({"data_schema": qr.schema}, field)


async def _edit_bay(hass: HomeAssistant, entry: MockConfigEntry, **changes: Any) -> Any:
    sub_id, result = await _edit_form(hass, entry)
    assert _suggested_qr(result, "static_qr") is bool(
        entry.subentries[sub_id].data.get("qr_code_id")
    )
    qr = {k: changes.pop(k) for k in ("static_qr", "dynamic_qr") if k in changes}
    return sub_id, await hass.config_entries.subentries.async_configure(
        result["flow_id"], BAY_FORM | changes | qr_options(**qr)
    )


async def test_static_qr_code_is_made_once(
    hass: HomeAssistant, standin: RazorpayStandin, rate_bay_entry: MockConfigEntry
) -> None:
    sub_id, result = await _edit_bay(hass, rate_bay_entry, static_qr=True)
    assert result["reason"] == "reconfigure_successful"
    data = rate_bay_entry.subentries[sub_id].data
    (qr_id,) = standin.qr_codes
    assert data["qr_code_id"] == qr_id
    assert data["qr_image_url"] == standin.qr_codes[qr_id].get("image_url")

    # Edited again with the box still ticked: the same code, none made.
    _, result = await _edit_bay(hass, rate_bay_entry, static_qr=True, name="Bay one")
    assert result["reason"] == "reconfigure_successful"
    assert rate_bay_entry.subentries[sub_id].data["qr_code_id"] == qr_id
    assert len(standin.calls_to("POST", "/v1/payments/qr_codes")) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("no_rate_plan", "static_qr_needs_rate_plan"),
        ("refused_keys", "invalid_auth"),
        ("unreachable", "cannot_connect"),
        ("no_qr_feature", "static_qr_unavailable"),
    ],
)
async def test_static_qr_code_refused_then_made(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    rate_bay_entry: MockConfigEntry,
    fault: str,
    error: str,
) -> None:
    entry = rate_bay_entry
    changes: dict[str, Any] = {"static_qr": True}
    form = BAY_FORM
    if fault == "no_rate_plan":
        form = BAY_FORM | {"plans": ["p30"]}
    elif fault == "refused_keys":
        standin.fail_next("/v1/payments/qr_codes", 401)
    elif fault == "unreachable":
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_API_BASE_URL: "http://127.0.0.1:9"}
        )
    else:
        standin.refuse_qr_codes = True
    sub_id, result = await _edit_form(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form | qr_options(**changes)
    )
    before = dict(entry.subentries[sub_id].data)

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"static_qr": error}
    assert "qr_code_id" not in before
    assert standin.qr_codes == {}

    standin.refuse_qr_codes = False
    hass.config_entries.async_update_entry(entry, data=account_data(standin))
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], BAY_FORM | qr_options(static_qr=True)
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[sub_id].data["qr_code_id"] in standin.qr_codes


async def test_a_bay_moves_to_another_kind_of_relay(
    hass: HomeAssistant, rate_bay_entry: MockConfigEntry
) -> None:
    """Edited as an agent's bay, a switch bay is stored as agents' bays always were."""
    entry = rate_bay_entry
    sub_id, result = await _edit_form(hass, entry, "mqtt")
    assert suggested(result, "name") == "Bay 1"
    form = {k: v for k, v in BAY_FORM.items() if k != "switch_entity"}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form | {"node": "kiosk-1"}
    )

    assert result["reason"] == "reconfigure_successful"
    data = dict(entry.subentries[sub_id].data)
    assert len(data.pop("qr_secret")) > 16
    assert len(data.pop("display_token")) > 16
    assert data == {
        "bay_id": "bay-1",
        "name": "Bay 1",
        "plans": ["p30", "pm"],
        "driver": "mqtt",
        "node": "kiosk-1",
        "agent_bay": "bay-1",
        "prefix": "qr_charging",
        "switch_entity": None,
        "default_minutes": 30,
        "max_minutes": 240,
    }
