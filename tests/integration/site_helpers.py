"""Builders of sites (issue #25): a site's config subentry, a bay in it, a second plug."""

from __future__ import annotations

from typing import Any, cast

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import (
    CONF_BAY_ID,
    CONF_NAME,
    CONF_RATED_W,
    CONF_SITE_ID,
    DOMAIN,
    SUBENTRY_SITE,
)
from custom_components.qr_charging.migration import MINOR_VERSION
from custom_components.qr_charging.sites import make_site, site_to_data
from devtools.razorpay_standin import RazorpayStandin

from .const import BAY_SUBENTRY, ENTRY_ID, PLAN_SUBENTRY
from .helpers import entry_data, setup_plug
from .meter_helpers import setup_meter

KOLKATA = "Asia/Kolkata"
SHOP_HOURS = dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "08:00-21:00")
SHOP_CAP_W = 5000
PLUG_2 = "switch.bay_2_plug"


def site_subentry(site_id: str = "shop", name: str = "Shop", **fields: Any) -> dict[str, Any]:
    """A site as its config subentry holds it (``fields``: ``make_site``'s)."""
    return {
        "data": site_to_data(make_site(site_id, name, **fields)),
        "subentry_type": SUBENTRY_SITE,
        "title": name,
        "unique_id": site_id,
    }


# The worked example's shop: open 08:00-21:00 every day in India, a 5 kW connection.
SHOP = site_subentry(time_zone=KOLKATA, hours=SHOP_HOURS, load_cap_w=SHOP_CAP_W)


def in_site(
    bay: dict[str, Any], site_id: str = "shop", rated_w: int = 3300, **data: Any
) -> dict[str, Any]:
    """A bay subentry in a site, with its rated power (and other data changed)."""
    changed = {**bay["data"], "site_id": site_id, "rated_w": rated_w, **data}
    return {**bay, "data": changed, "title": changed[CONF_NAME], "unique_id": changed[CONF_BAY_ID]}


# bay-2 on its own plug (``setup_plug(hass, plugs=2)``).
BAY_2: dict[str, Any] = {
    **BAY_SUBENTRY,
    "data": {
        **BAY_SUBENTRY["data"],
        CONF_BAY_ID: "bay-2",
        CONF_NAME: "Bay 2",
        "switch_entity": PLUG_2,
    },
    "title": "Bay 2",
    "unique_id": "bay-2",
}


async def set_up_sites(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    *subentries: dict[str, Any],
    meter: bool = False,
) -> MockConfigEntry:
    """An account with the plan p30 and these subentries, set up, with both plugs.

    ``meter``: bay-1's plug has a meter too (``setup_meter``, at 12 kWh).
    """
    entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title=standin.key_id,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[PLAN_SUBENTRY, *subentries],
        minor_version=MINOR_VERSION,
    )
    await setup_plug(hass, plugs=2)
    if meter:
        await setup_meter(hass, energy_kwh=12.0)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def site_device(hass: HomeAssistant, entry: MockConfigEntry, site_id: str) -> dr.DeviceEntry:
    """A site's device, found by scanning the account's (lookups by identifier changed name
    between the HA lines supported)."""
    wanted = (DOMAIN, f"{entry.entry_id}/site/{site_id}")
    registry = dr.async_get(hass)
    (device,) = [
        d
        for d in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if wanted in d.identifiers
    ]
    return device


def device_subentry(device: dr.DeviceEntry, entry: MockConfigEntry) -> str | None:
    """The config subentry a device belongs to (HA 2026.8 on: a device has one entry)."""
    if hasattr(device, "config_subentry_id"):
        return cast("str | None", device.config_subentry_id)
    (subentry,) = device.config_entries_subentries[entry.entry_id]
    return subentry


# The site form's hours: split on weekdays, closed on Sunday.
FORM_HOURS = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "08:00-13:00, 14:00-21:00") | {
    "sat": "10:00-18:00",
    "sun": "",
}


def hours_section(**days: str) -> dict[str, Any]:
    """The site form's opening hours section: the form's hours with ``days`` changed."""
    return {"opening_hours": FORM_HOURS | days}


def shop_site(site_id: str = "shop", *, cap_w: int | None = SHOP_CAP_W) -> dict[str, Any]:
    """The shop open 08:00-21:00 every day in India (no DST), its load cap ``cap_w``."""
    return site_subentry(site_id, "Shop", time_zone=KOLKATA, hours=SHOP_HOURS, load_cap_w=cap_w)


def plug_bay(
    number: int, plans: list[str], *, site_id: str = "shop", rated_w: int = 3300
) -> dict[str, Any]:
    """``bay-<number>`` on ``switch.bay_<number>_plug``, in a site, of a rated power."""
    bay_id = f"bay-{number}"
    data = {
        **BAY_SUBENTRY["data"],
        "bay_id": bay_id,
        "name": f"Bay {number}",
        "plans": plans,
        "switch_entity": f"switch.bay_{number}_plug",
        CONF_SITE_ID: site_id,
        CONF_RATED_W: rated_w,
    }
    return {**BAY_SUBENTRY, "data": data, "title": f"Bay {number}", "unique_id": bay_id}


def shop_entry(standin: RazorpayStandin, subentries: list[dict[str, Any]]) -> MockConfigEntry:
    """The account (as the ``config_entry`` fixture's) with these subentries."""
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title=standin.key_id,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=subentries,
        minor_version=2,
    )


async def set_up_shop(
    hass: HomeAssistant, entry: MockConfigEntry, bays: int, *, meter_kwh: float | None = None
) -> MockConfigEntry:
    """Set up the account with its ``bays`` bays' plugs there and off (and the plug's meter
    at ``meter_kwh``, if given: ``meter_helpers.setup_meter``)."""
    await setup_plug(hass, plugs=bays)
    if meter_kwh is not None:
        await setup_meter(hass, energy_kwh=meter_kwh)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def at_the_shop(freezer: FrozenDateTimeFactory, local: str) -> None:
    """Move the clock to a wall-clock time of the shop (India, UTC+05:30)."""
    freezer.move_to(f"{local}+05:30")
