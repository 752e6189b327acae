"""Builders of the config flow tests: an account added to HA, a subentry's flows and forms.

The fixtures made from them (``bare_entry``, ``plan_entry``, ``rate_bay_entry``) are in
``conftest.py``.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import (
    CONF_API_BASE_URL,
    CONF_KEY_ID,
    CONF_KEY_SECRET,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
)
from devtools.razorpay_standin import RazorpayStandin

from .const import WEBHOOK_SECRET


def account_data(standin: RazorpayStandin) -> dict[str, Any]:
    """Entry data: what the flow stores."""
    return {
        CONF_KEY_ID: standin.key_id,
        CONF_KEY_SECRET: standin.key_secret,
        CONF_WEBHOOK_SECRET: WEBHOOK_SECRET,
        CONF_API_BASE_URL: standin.base_url,
    }


def suggested(result: Any, field: str) -> Any:
    """The value a form shows in one of its fields."""
    (key,) = [k for k in result["data_schema"].schema if k == field]
    return key.description["suggested_value"]


async def subentry_flow(hass: HomeAssistant, entry: MockConfigEntry, kind: str) -> Any:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind), context={"source": SOURCE_USER}
    )


async def bay_form(hass: HomeAssistant, entry: MockConfigEntry, relay: str) -> Any:
    """Add bay: the menu asks how the bay is switched first; the form of that kind."""
    result = await subentry_flow(hass, entry, "bay")
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["mqtt", "switch"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": relay}
    )
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, relay)
    return result


def qr_options(**fields: Any) -> dict[str, Any]:
    """Form input: the QR code and hold fields sit in the collapsed "qr_options" section."""
    return {"qr_options": fields}


def add_account(
    hass: HomeAssistant, standin: RazorpayStandin, *subentries: dict[str, Any]
) -> MockConfigEntry:
    """An account with these subentries, added to HA (not set up)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=account_data(standin),
        subentries_data=list(subentries),
    )
    entry.add_to_hass(hass)
    return entry


async def reconfigure_subentry(hass: HomeAssistant, entry: MockConfigEntry, kind: str) -> Any:
    """Open the edit form of the entry's one subentry of this kind."""
    (sub_id,) = [i for i, s in entry.subentries.items() if s.subentry_type == kind]
    return sub_id, await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind), context={"source": "reconfigure", "subentry_id": sub_id}
    )
