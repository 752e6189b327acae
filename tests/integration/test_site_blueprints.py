"""The sites' blueprints (issue #25): announce opening and closing, warn near the load cap.

Each is run as an owner would: an automation made from it, driven by a real site (its edges
on HA's clock, its bays' power) or by the events as the integration fires them.
"""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .blueprint_helpers import set_up_automation
from .const import BAY_SUBENTRY
from .helpers import settle
from .site_helpers import BAY_2, SHOP, in_site, set_up_sites, site_device, site_subentry

ANNOUNCE = "announce_opening_and_closing.yaml"
WARN = "warn_near_load_cap.yaml"
EVENING = "2026-12-07T14:30:00+00:00"  # Monday 20:00 in Kolkata; the shop closes at 21:00


async def _at(hass: HomeAssistant, freezer: FrozenDateTimeFactory, moment: str) -> None:
    freezer.move_to(moment)
    async_fire_time_changed(hass, dt_util.utcnow())
    await settle(hass)


async def _start(hass: HomeAssistant, bay: str) -> None:
    await hass.services.async_call(
        DOMAIN, "start_session", {"bay": bay, "minutes": 30}, blocking=True, return_response=True
    )
    await settle(hass)


async def test_a_sites_closing_and_opening_are_announced(
    hass: HomeAssistant, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    await hass.config.async_update(time_zone="Asia/Kolkata")
    freezer.move_to(EVENING)
    await set_up_sites(hass, standin, SHOP, in_site(BAY_SUBENTRY))
    calls = await set_up_automation(hass, ANNOUNCE, {"title": "Shop"})

    await _at(hass, freezer, "2026-12-07T15:30:00+00:00")  # 21:00 IST
    await _at(hass, freezer, "2026-12-08T02:30:00+00:00")  # 08:00 IST

    assert [call.data for call in calls] == [
        {"title": "Shop", "message": "Shop is closed; it opens at Tue 08:00."},
        {"title": "Shop", "message": "Shop is open; it closes at Tue 21:00."},
    ]


async def test_only_the_chosen_sites_and_edges_are_announced(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
) -> None:
    await hass.config.async_update(time_zone="Asia/Kolkata")
    freezer.move_to(EVENING)
    # A kiosk in the same account closes at 20:30; only the shop is chosen, its closings only.
    hours = dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "08:00-20:30")
    kiosk = site_subentry("kiosk", "Kiosk", time_zone="Asia/Kolkata", hours=hours)
    entry = await set_up_sites(hass, standin, SHOP, kiosk, in_site(BAY_SUBENTRY))
    shop = site_device(hass, entry, "shop")
    inputs = {"sites": [shop.id], "announce": ["closed"]}
    calls = await set_up_automation(hass, ANNOUNCE, inputs)

    await _at(hass, freezer, "2026-12-07T15:00:00+00:00")  # 20:30 IST: the kiosk closes
    assert calls == []
    await _at(hass, freezer, "2026-12-07T15:30:00+00:00")  # 21:00 IST: the shop closes
    await _at(hass, freezer, "2026-12-08T02:30:00+00:00")  # 08:00 IST: both open
    assert [call.data["message"] for call in calls] == ["Shop is closed; it opens at Tue 08:00."]


async def test_power_in_use_near_the_load_cap_warns_once(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    """The shop's 5 kW: bay-1 (3.5 kW) is 70 %, bay-2 (1 kW) with it 90 %: over 80 %."""
    await set_up_sites(
        hass, standin, SHOP, in_site(BAY_SUBENTRY, rated_w=3500), in_site(BAY_2, rated_w=1000)
    )
    calls = await set_up_automation(hass, WARN, {"power_sensor": "sensor.shop_power_in_use"})

    await _start(hass, "bay-1")
    assert calls == []
    await _start(hass, "bay-2")
    assert [call.data for call in calls] == [
        {
            "title": "Charging site near its load cap",
            "message": "Shop Power in use: 4500 W of the 5000 W load cap (90 %).",
        }
    ]


async def test_a_site_without_a_load_cap_never_warns(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    await set_up_sites(hass, standin, site_subentry(), in_site(BAY_SUBENTRY, rated_w=22000))
    calls = await set_up_automation(
        hass, WARN, {"power_sensor": "sensor.shop_power_in_use", "percent": 1}
    )

    await _start(hass, "bay-1")

    assert hass.states.get("sensor.shop_power_in_use").state == "22000"  # type: ignore[union-attr]
    assert calls == []
