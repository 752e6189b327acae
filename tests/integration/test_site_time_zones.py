"""A site's time zone (issue #25): Home Assistant's when it names none, or one that is lost."""

from __future__ import annotations

import asyncio
import zoneinfo
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging import sites
from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY
from .helpers import PostWebhook, pay, plug_state, refund_amounts
from .pages_helpers import Customer
from .site_helpers import SHOP_HOURS, plug_bay, set_up_shop, shop_entry, site_subentry

# A zone no tzdata has: a site stored with it (tzdata dropped it since) runs on HA's.
LOST_ZONE = "Atlantis/Poseidonia"
REAL_ZONE_INFO = zoneinfo.ZoneInfo


def _shop(time_zone: str | None) -> dict[str, Any]:
    """The shop open 08:00-21:00, in ``time_zone`` (None: Home Assistant's), no cap."""
    site = site_subentry("shop", "Shop", hours=SHOP_HOURS)
    return {**site, "data": {**site["data"], "time_zone": time_zone}}


@pytest.fixture
def config_entry(standin: RazorpayStandin, request: pytest.FixtureRequest) -> MockConfigEntry:
    """The shop with bay 1; its time zone the test's (``indirect``), else none of its own."""
    site = _shop(getattr(request, "param", None))
    return shop_entry(standin, [PLAN_SUBENTRY, site, plug_bay(1, ["p30"])])


@pytest.fixture
async def init_integration(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """HA in India first; then the shop set up."""
    await hass.config.async_update(time_zone="Asia/Kolkata")
    return await set_up_shop(hass, config_entry, 1)


@pytest.mark.usefixtures("loaded_entry")
async def test_a_site_in_has_zone_follows_has_zone_when_it_changes(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The owner moves HA to London: the shop's hours are London's at once (a reload),
    for the page and for a payment alike, not India's until the next restart."""
    freezer.move_to("2026-12-07 16:30:00+00:00")  # 22:00 in India: closed
    assert 'data-state="closed"' in (await customer.get("bay=bay-1")).text

    await hass.config.async_update(time_zone="Europe/London")  # 16:30 there: open
    await hass.async_block_till_done()
    assert 'data-state="free"' in (await customer.get("bay=bay-1")).text
    paid = await pay(hass, standin, post_webhook)
    assert refund_amounts(standin, paid.payment_id) == []
    assert plug_state(hass) == "on"


@pytest.mark.parametrize("config_entry", [LOST_ZONE], indirect=True)
async def test_a_site_whose_zone_is_lost_raises_a_repair_and_runs_on_has_zone(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    customer: Customer,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not UTC in silence: a warning, a repair naming the site, and HA's zone (India's)."""
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"site_time_zone_unknown_{loaded_entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_key == "site_time_zone_unknown"
    assert issue.translation_placeholders == {
        "sites": f"Shop ({LOST_ZONE})",
        "home_zone": "Asia/Kolkata",
    }
    # Set up in the fixtures: one warning then.
    warned = [r for r in caplog.get_records("setup") if LOST_ZONE in r.getMessage()]
    assert [r.levelname for r in warned] == ["WARNING"]
    freezer.move_to("2026-12-07 03:00:00+00:00")  # 08:30 in India: open (03:00 UTC: closed)
    assert 'data-state="free"' in (await customer.get("bay=bay-1")).text
    # A site on HA's zone because its own is lost follows HA's too.
    hub = loaded_entry.runtime_data
    await hass.config.async_update(time_zone="Europe/London")
    await hass.async_block_till_done()
    assert loaded_entry.runtime_data is not hub


@pytest.mark.parametrize("config_entry", [None, "Europe/Berlin"], indirect=True)
async def test_the_sites_zones_load_off_the_event_loop(
    hass: HomeAssistant, config_entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A time zone not yet cached is read from tzdata's files: never on the event loop (HA's
    rule: ``dt_util.async_get_time_zone``), at setup nor when HA's configuration changes."""
    on_loop: list[str] = []

    def spy(key: str) -> zoneinfo.ZoneInfo:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            on_loop.append(key)  # a read of the zone's file unless already cached
        return REAL_ZONE_INFO(key)

    monkeypatch.setattr(sites, "ZoneInfo", spy)
    await hass.config.async_update(time_zone="Asia/Kolkata")
    await set_up_shop(hass, config_entry, 1)
    await hass.config.async_update(location_name="Elsewhere")
    await hass.async_block_till_done()

    assert on_loop == []
