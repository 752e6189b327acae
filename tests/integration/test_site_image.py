"""The QR code image entity of a bay at a site: a closed sign while the site is closed."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
import zxingcpp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import event as ha_event
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging import image as qr_image
from custom_components.qr_charging import site_clock
from custom_components.qr_charging.pictures import closed_png
from custom_components.qr_charging.sites import WEEKDAYS
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY
from .helpers import tick
from .pages_helpers import BAY_URL, Customer
from .site_helpers import plug_bay, set_up_shop, shop_entry, shop_site, site_subentry


@pytest.fixture
def config_entry(standin: RazorpayStandin) -> MockConfigEntry:
    """The shop (08:00-21:00 in India) with bay 1."""
    return shop_entry(standin, [PLAN_SUBENTRY, shop_site(), plug_bay(1, ["p30"])])


@pytest.fixture
async def init_integration(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """The shop's account set up, bay 1's plug there and off."""
    return await set_up_shop(hass, config_entry, 1)


@pytest.mark.freeze_time("2026-12-07T20:59:00+05:30")
async def test_the_image_is_a_closed_sign_while_the_site_is_closed(
    hass: HomeAssistant,
    customer: Customer,
    hass_client: ClientSessionGenerator,
    freezer: FrozenDateTimeFactory,
) -> None:
    (state,) = hass.states.async_all("image")
    client = await hass_client()

    async def picture() -> tuple[str, bytes]:
        current = hass.states.get(state.entity_id)
        assert current is not None
        response = await client.get(current.attributes["entity_picture"])
        assert response.status == 200
        return current.state, await response.read()

    shown, png = await picture()
    (code,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert code.text == BAY_URL

    # Closing time: the state changes on HA's clock, and the picture is the closed sign.
    await tick(hass, freezer, timedelta(minutes=1))
    closed, sign = await picture()
    assert closed != shown
    assert sign == closed_png()
    assert zxingcpp.read_barcodes(Image.open(io.BytesIO(sign))) == []

    # Opening time the next morning: the code again.
    await tick(hass, freezer, timedelta(hours=11))
    opened, png = await picture()
    assert opened != closed
    (code,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert code.text == BAY_URL


async def test_no_site_timer_is_set_in_the_past_in_dst_s_repeated_hour(
    hass: HomeAssistant, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    """Berlin falls back on 2026-10-25 at 01:00 UTC: at 02:10 CET, the second time round,
    a site open 00:00-02:30 had its closing (02:30 CEST, 00:30 UTC) behind it; a timer set
    there fired at once and was set there again, spinning the loop. Now every timer of the
    site's edges (the image's, the site's clock) is after now: tonight's opening."""
    now = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)
    freezer.move_to(now)
    night = dict.fromkeys(WEEKDAYS, "00:00-02:30")
    site = site_subentry("night", "Night", time_zone="Europe/Berlin", hours=night)
    entry = shop_entry(standin, [PLAN_SUBENTRY, site, plug_bay(1, ["p30"], site_id="night")])
    timers: list[datetime] = []
    real = ha_event.async_track_point_in_utc_time

    def counting(hass: HomeAssistant, action: Any, when: datetime) -> Any:
        timers.append(when)
        if len(timers) > 50:  # stop a spin so the test ends
            return lambda: None
        return real(hass, action, when)

    with (
        patch.object(qr_image, "async_track_point_in_utc_time", counting, create=True),
        patch.object(site_clock, "async_track_point_in_utc_time", counting),
    ):
        await set_up_shop(hass, entry, 1)
        await hass.async_block_till_done()
        assert timers == [datetime(2026, 10, 25, 23, 0, tzinfo=UTC)] * 2
        (state,) = hass.states.async_all("image")

        # At tonight's opening the picture changes, and the next edge (02:30) is timed.
        await tick(hass, freezer, timedelta(hours=21, minutes=50))
        assert (now_state := hass.states.get(state.entity_id)) is not None
        assert now_state.state != state.state
        assert timers[2:] == [datetime(2026, 10, 26, 1, 30, tzinfo=UTC)] * 2
