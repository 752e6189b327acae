"""The QR code image entity of a bay at a site: a closed sign while the site is closed."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import zxingcpp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.qr_charging.pictures import closed_png
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY
from .helpers import tick
from .pages_helpers import BAY_URL, Customer
from .site_helpers import plug_bay, set_up_shop, shop_entry, shop_site


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
