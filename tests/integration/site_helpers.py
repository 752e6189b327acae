"""Builders of the sites' tests: a site subentry, plug bays in it, and their plugs."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import (
    CONF_RATED_W,
    CONF_SITE_ID,
    DOMAIN,
    SUBENTRY_SITE,
)
from custom_components.qr_charging.sites import WEEKDAYS, make_site, site_to_data
from devtools.razorpay_standin import RazorpayStandin

from .const import BAY_SUBENTRY, ENTRY_ID
from .helpers import entry_data
from .meter_helpers import setup_meter

SHOP_ZONE = "Asia/Kolkata"
SHOP_CAP_W = 5000
SHOP_HOURS = "08:00-21:00"


def site_subentry(site_id: str = "shop", *, cap_w: int | None = SHOP_CAP_W) -> dict[str, Any]:
    """A shop open 08:00-21:00 every day in India (no DST), its load cap ``cap_w``."""
    site = make_site(
        site_id,
        "Shop",
        time_zone=SHOP_ZONE,
        hours=dict.fromkeys(WEEKDAYS, SHOP_HOURS),
        load_cap_w=cap_w,
    )
    return {
        "data": site_to_data(site),
        "subentry_type": SUBENTRY_SITE,
        "title": site.name,
        "unique_id": site_id,
    }


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


async def setup_plugs(hass: HomeAssistant, numbers: range) -> None:
    """Real HA switches (templates over input_booleans), one per bay, as smart plugs would be."""
    booleans = {f"plug_{n}": {} for n in numbers}
    assert await async_setup_component(hass, "input_boolean", {"input_boolean": booleans})
    switches = []
    for n in numbers:
        toggle = {"target": {"entity_id": f"input_boolean.plug_{n}"}}
        switches.append(
            {
                "name": f"Bay {n} plug",
                "state": f"{{{{ is_state('input_boolean.plug_{n}', 'on') }}}}",
                "turn_on": {"action": "input_boolean.turn_on", **toggle},
                "turn_off": {"action": "input_boolean.turn_off", **toggle},
            }
        )
    assert await async_setup_component(hass, "template", {"template": [{"switch": switches}]})
    await hass.async_block_till_done()


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
    await setup_plugs(hass, range(1, bays + 1))
    if meter_kwh is not None:
        await setup_meter(hass, energy_kwh=meter_kwh)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def at_the_shop(freezer: FrozenDateTimeFactory, local: str) -> None:
    """Move the clock to a wall-clock time of the shop (India, UTC+05:30)."""
    freezer.move_to(f"{local}+05:30")
