"""A site's device and entities, its opening and closing events, and the owner's start under
its load cap (issue #25).

The shop of the worked example: open 08:00-21:00 every day in Asia/Kolkata, a 5 kW cap;
bay-1 (3.3 kW) and bay-2 (2 kW) on plugs, so both together are over the cap.
"""

from __future__ import annotations

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.qr_charging.const import DOMAIN, EVENT_SITE_CLOSED, EVENT_SITE_OPENED
from custom_components.qr_charging.sites import make_site, site_to_data
from devtools.razorpay_standin import RazorpayStandin

from .const import BAY_SUBENTRY, PLUG
from .helpers import export_sessions, settle
from .meter_helpers import metered_switch_bay, move_meter
from .site_helpers import (
    BAY_2,
    KOLKATA,
    PLUG_2,
    SHOP,
    SHOP_HOURS,
    device_subentry,
    in_site,
    set_up_sites,
    site_device,
)

OPEN = "binary_sensor.shop_open"
POWERED = "sensor.shop_powered_bays"
IN_USE = "sensor.shop_power_in_use"
MEASURED = "sensor.shop_measured_power"
# Monday 7 December 2026, 20:00 in Kolkata (UTC+05:30): the shop closes in an hour.
EVENING = "2026-12-07T14:30:00+00:00"
CLOSING = "2026-12-07T15:30:00+00:00"  # 21:00 IST
OPENING = "2026-12-08T02:30:00+00:00"  # 08:00 IST the next day
SHOP_BAYS = (in_site(BAY_SUBENTRY, rated_w=3300), in_site(BAY_2, rated_w=2000))


async def _at(hass: HomeAssistant, freezer: FrozenDateTimeFactory, moment: str) -> None:
    """HA's clock moves to ``moment`` and the timers due by then run."""
    freezer.move_to(moment)
    async_fire_time_changed(hass, dt_util.utcnow())
    await settle(hass)


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


async def _start(hass: HomeAssistant, bay: str) -> None:
    await hass.services.async_call(
        DOMAIN, "start_session", {"bay": bay, "minutes": 30}, blocking=True, return_response=True
    )
    await settle(hass)


def _site_subentry(entry: MockConfigEntry) -> ConfigSubentry:
    (subentry,) = [s for s in entry.subentries.values() if s.subentry_type == "site"]
    return subentry


async def test_a_site_is_a_device_of_its_subentry(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    entry = await set_up_sites(hass, standin, SHOP, *SHOP_BAYS)

    device = site_device(hass, entry, "shop")
    assert device.name == "Shop"
    assert device.model == "Charging site"
    assert device_subentry(device, entry) == _site_subentry(entry).subentry_id
    assert _state(hass, POWERED) == "0"
    assert _state(hass, IN_USE) == "0"
    assert hass.states.get(IN_USE).attributes["load_cap_w"] == 5000  # type: ignore[union-attr]
    # No bay of the shop may meter: no measured power.
    assert hass.states.get(MEASURED) is None


async def test_the_default_site_of_an_entry_without_sites_is_the_entrys(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Not migrated yet: the default site (open always, no cap) has its device on the entry."""
    freezer.move_to(EVENING)
    entry = await set_up_sites(hass, standin, BAY_SUBENTRY)
    opened = async_capture_events(hass, EVENT_SITE_OPENED)
    closed = async_capture_events(hass, EVENT_SITE_CLOSED)

    device = site_device(hass, entry, "default")
    assert device_subentry(device, entry) is None
    state = hass.states.get("binary_sensor.charging_point_open")
    assert state is not None
    assert state.state == STATE_ON
    # Open around the clock: no edge, so no event through a week.
    for day in range(8, 15):
        await _at(hass, freezer, f"2026-12-{day:02}T00:00:00+05:30")
    assert (opened, closed) == ([], [])
    # The default site's device stays through a reload: never taken for a stale one.
    changes = async_capture_events(hass, dr.EVENT_DEVICE_REGISTRY_UPDATED)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert [c.data for c in changes if c.data["action"] == "remove"] == []
    assert device_registry.async_get(device.id) is not None


async def test_closing_and_opening_fire_their_events_on_hass_clock(
    hass: HomeAssistant, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to(EVENING)
    entry = await set_up_sites(hass, standin, SHOP, *SHOP_BAYS)
    opened = async_capture_events(hass, EVENT_SITE_OPENED)
    closed = async_capture_events(hass, EVENT_SITE_CLOSED)
    assert _state(hass, OPEN) == STATE_ON

    await _at(hass, freezer, "2026-12-07T15:29:59+00:00")
    assert closed == []
    await _at(hass, freezer, CLOSING)
    assert [e.data for e in closed] == [
        {
            "entry_id": entry.entry_id,
            "site_id": "shop",
            "name": "Shop",
            "opens_at": OPENING,
            "closes_at": None,
        }
    ]
    assert _state(hass, OPEN) == STATE_OFF

    await _at(hass, freezer, OPENING)
    assert [e.data for e in opened] == [
        {
            "entry_id": entry.entry_id,
            "site_id": "shop",
            "name": "Shop",
            "opens_at": None,
            "closes_at": "2026-12-08T15:30:00+00:00",
        }
    ]
    assert _state(hass, OPEN) == STATE_ON
    # The next closing is timed in turn.
    await _at(hass, freezer, "2026-12-08T15:30:00+00:00")
    assert len(closed) == 2


async def test_a_reload_times_the_new_hours_and_an_unload_none(
    hass: HomeAssistant, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to(EVENING)
    entry = await set_up_sites(hass, standin, SHOP, *SHOP_BAYS)
    closed = async_capture_events(hass, EVENT_SITE_CLOSED)

    # The owner closes the shop at 20:30 from now on: the entry reloads with the new hours.
    hours = dict.fromkeys(SHOP_HOURS, "08:00-20:30")
    data = site_to_data(make_site("shop", "Shop", time_zone=KOLKATA, hours=hours))
    hass.config_entries.async_update_subentry(entry, _site_subentry(entry), data=data)
    await hass.async_block_till_done()
    await _at(hass, freezer, "2026-12-07T15:00:00+00:00")  # 20:30 IST
    assert [e.data["site_id"] for e in closed] == ["shop"]
    assert _state(hass, OPEN) == STATE_OFF

    await _at(hass, freezer, "2026-12-08T02:00:00+00:00")  # 07:30 IST
    assert await hass.config_entries.async_unload(entry.entry_id)
    await _at(hass, freezer, OPENING)
    # Nothing fires for an unloaded account; the old 21:00 never fired either.
    assert len(closed) == 1
    assert async_capture_events(hass, EVENT_SITE_OPENED) == []


async def test_power_in_use_follows_the_sites_bays(
    hass: HomeAssistant, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to(EVENING)
    await set_up_sites(hass, standin, SHOP, *SHOP_BAYS)

    await _start(hass, "bay-2")
    assert _state(hass, PLUG_2) == STATE_ON
    assert _state(hass, POWERED) == "1"
    assert _state(hass, IN_USE) == "2000"

    await hass.services.async_call(
        DOMAIN, "stop_session", {"bay": "bay-2"}, blocking=True, return_response=True
    )
    await settle(hass)
    assert _state(hass, POWERED) == "0"
    assert _state(hass, IN_USE) == "0"


async def test_start_session_over_the_load_cap_is_refused_and_stores_nothing(
    hass: HomeAssistant, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to(EVENING)
    await set_up_sites(hass, standin, SHOP, *SHOP_BAYS)
    await _start(hass, "bay-1")
    assert _state(hass, IN_USE) == "3300"

    with pytest.raises(ServiceValidationError) as refused:
        await _start(hass, "bay-2")

    assert refused.value.translation_key == "over_load_cap"
    assert refused.value.translation_placeholders == {
        "bay": "bay-2",
        "site": "Shop",
        "cap": "5000",
        "in_use": "3300",
        "rated": "2000",
    }
    assert str(refused.value) == (
        "Bay bay-2 needs 2000 W, but site Shop has 3300 W of its 5000 W load cap in use; "
        "nothing was started"  # HA drops the message's full stop
    )
    assert _state(hass, PLUG_2) == STATE_OFF
    assert [s["bay_id"] for s in await export_sessions(hass)] == ["bay-1"]
    assert _state(hass, POWERED) == "1"


async def test_the_owners_session_ignores_opening_hours(
    hass: HomeAssistant, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to("2026-12-07T17:30:00+00:00")  # 23:00 IST: closed
    await set_up_sites(hass, standin, SHOP, *SHOP_BAYS)
    assert _state(hass, OPEN) == STATE_OFF

    await _start(hass, "bay-1")

    assert _state(hass, PLUG) == STATE_ON
    assert _state(hass, IN_USE) == "3300"


async def test_measured_power_of_a_site_with_a_metered_bay(
    hass: HomeAssistant, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to(EVENING)
    metered = in_site(metered_switch_bay(BAY_SUBENTRY), rated_w=3300)
    await set_up_sites(hass, standin, SHOP, metered, in_site(BAY_2, rated_w=1000), meter=True)

    await _start(hass, "bay-1")
    await move_meter(hass, power_w=2950.5)
    await settle(hass)

    assert _state(hass, MEASURED) == "2950.5"
    assert _state(hass, IN_USE) == "3300"
