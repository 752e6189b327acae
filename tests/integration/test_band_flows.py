"""Price bands in the three plan forms (issue #25): stored as the form's text, bad bands named."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .flow_helpers import reconfigure_subentry, subentry_flow, suggested

FIXED = {"code": "p30", "name": "Half hour", "minutes": 30, "price": 20}
RATE = {"code": "pm", "name": "Per minute", "rate": 0.5, "min_minutes": 10, "max_minutes": 120}
ENERGY = {
    "code": "kwh",
    "name": "Per unit",
    "price": 15,
    "min_amount": 10,
    "max_amount": 500,
    "minutes": 120,
}
FORMS = [("plan", FIXED), ("rate_plan", RATE), ("energy_plan", ENERGY)]


@pytest.mark.parametrize(("kind", "form"), FORMS)
async def test_bands_are_stored_as_text_and_shown_again(
    hass: HomeAssistant, bare_entry: MockConfigEntry, kind: str, form: dict[str, Any]
) -> None:
    result = await subentry_flow(hass, bare_entry, kind)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form | {"bands": " 18:00-24:00 120 %,09:00-16:00 70%"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (sub,) = bare_entry.subentries.values()
    # Sorted and written as the form reads it back.
    assert sub.data["bands"] == "09:00-16:00 70%, 18:00-24:00 120%"

    _, result = await reconfigure_subentry(hass, bare_entry, kind)
    assert suggested(result, "bands") == "09:00-16:00 70%, 18:00-24:00 120%"
    edit = {k: v for k, v in form.items() if k != "code"}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], edit)
    assert result["type"] is FlowResultType.ABORT
    # Emptied: the plan stores no bands at all, as a plan did before bands.
    assert "bands" not in bare_entry.subentries[sub.subentry_id].data


@pytest.mark.parametrize(("kind", "form"), FORMS)
@pytest.mark.parametrize(
    ("bands", "error"),
    [
        ("9-16 70%", "invalid_hours"),
        ("09:00-16:00 70", "invalid_band"),
        ("09:00-16:00", "invalid_band"),
        ("09:00-16:00 0%", "invalid_band_percent"),
        ("09:00-16:00 501%", "invalid_band_percent"),
        ("09:00-25:00 70%", "invalid_hours"),
        ("16:00-09:00 70%", "hours_backwards"),
        ("09:00-16:00 70%, 15:00-18:00 80%", "bands_overlap"),
    ],
)
async def test_bad_bands_are_named_and_nothing_is_saved(
    hass: HomeAssistant,
    bare_entry: MockConfigEntry,
    kind: str,
    form: dict[str, Any],
    bands: str,
    error: str,
) -> None:
    result = await subentry_flow(hass, bare_entry, kind)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form | {"bands": bands}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"bands": error}
    assert bare_entry.subentries == {}


@pytest.mark.parametrize(
    ("kind", "form", "bands"),
    [
        # ₹1.20 at 80%: 96 paise, under Razorpay's smallest payment.
        ("plan", FIXED | {"price": 1.2}, "09:00-16:00 80%"),
        # 10 minutes at ₹0.12 is ₹1.20; at 70% a minute is 8 paise, so 10 cost 80 paise.
        ("rate_plan", RATE | {"rate": 0.12}, "09:00-16:00 70%"),
        # One paisa a unit at 10% rounds to nothing: energy would be free.
        ("energy_plan", ENERGY | {"price": 0.01}, "09:00-16:00 10%"),
    ],
)
async def test_a_band_below_one_rupee_is_refused(
    hass: HomeAssistant, bare_entry: MockConfigEntry, kind: str, form: dict[str, Any], bands: str
) -> None:
    result = await subentry_flow(hass, bare_entry, kind)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form | {"bands": bands}
    )
    assert result["errors"] == {"bands": "band_below_minimum"}
    assert bare_entry.subentries == {}
    # The same plan without the band is fine.
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_a_rate_plan_without_bands_stores_what_it_did(
    hass: HomeAssistant, bare_entry: MockConfigEntry
) -> None:
    result = await subentry_flow(hass, bare_entry, "rate_plan")
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], RATE)
    (sub,) = bare_entry.subentries.values()
    assert dict(sub.data) == {
        "code": "pm",
        "name": "Per minute",
        "kind": "rate",
        "rate_paise": 50,
        "min_minutes": 10,
        "max_minutes": 120,
    }
