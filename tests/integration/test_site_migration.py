"""Accounts of 1.3 migrated to 1.4 (issue #25): a default site, and nothing else changed.

A new account gets the same default site when it is created, so the two look alike.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntry
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

from .const import BAY_SUBENTRY, PLAN_SUBENTRY, RATE_PLAN_SUBENTRY, WEBHOOK_SECRET
from .helpers import entry_data

DEFAULT_SITE_DATA = {
    "site_id": "default",
    "hours": dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "00:00-24:00"),
    "address": "",
    "time_zone": None,
    "closed_dates": [],
    "load_cap_w": None,
    "sell_past_closing": False,
}


def _subentries(entry: ConfigEntry) -> dict[str, tuple[Any, ...]]:
    """Every subentry by id, with all it holds."""
    return {
        sub_id: (sub.subentry_type, sub.title, sub.unique_id, dict(sub.data))
        for sub_id, sub in entry.subentries.items()
    }


def _site(entry: ConfigEntry) -> tuple[Any, ...]:
    (site,) = [s for s in entry.subentries.values() if s.subentry_type == "site"]
    return (site.title, site.unique_id, dict(site.data))


async def test_an_account_of_1_3_gets_a_default_site_and_nothing_else_changes(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    bay = {
        **BAY_SUBENTRY,
        "data": {
            **BAY_SUBENTRY["data"],
            "plans": ["p30", "pm"],
            "qr_secret": "A" * 32,
            "display_token": "B" * 32,
        },
    }
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Main account",
        unique_id=standin.key_id,
        data=entry_data(standin),
        options={"ack_timeout": 30, "auto_refund": False},
        subentries_data=[PLAN_SUBENTRY, RATE_PLAN_SUBENTRY, bay],
        minor_version=3,
    )
    entry.add_to_hass(hass)
    data, options, subentries = dict(entry.data), dict(entry.options), _subentries(entry)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert (entry.version, entry.minor_version) == (1, 4)
    assert (dict(entry.data), dict(entry.options)) == (data, options)
    after = _subentries(entry)
    (new,) = set(after) - set(subentries)
    assert {sub_id: after[sub_id] for sub_id in subentries} == subentries
    assert after[new] == (
        "site",
        "Charging point",  # not the account's title: customers see the site's name
        "default",
        DEFAULT_SITE_DATA | {"name": "Charging point"},
    )

    # Loaded again (a restart): migrated once only.
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert _subentries(entry) == after


async def test_a_new_account_gets_the_same_default_site(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    keys = {
        CONF_KEY_ID: standin.key_id,
        CONF_KEY_SECRET: standin.key_secret,
        CONF_WEBHOOK_SECRET: WEBHOOK_SECRET,
        "advanced": {CONF_API_BASE_URL: standin.base_url},
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], keys)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    entry = result["result"]
    assert (entry.version, entry.minor_version) == (1, 4)
    (site,) = entry.subentries.values()
    assert site.subentry_type == "site"
    assert _site(entry) == (
        "Charging point",
        "default",
        DEFAULT_SITE_DATA | {"name": "Charging point"},
    )
