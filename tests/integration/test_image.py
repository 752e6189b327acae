"""The image platform: the bay page's QR code (or an out-of-order sign), and its snapshot."""

from __future__ import annotations

import io
from collections.abc import Generator
from unittest.mock import patch

import pytest
import zxingcpp
from homeassistant.components import image
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from devtools.razorpay_standin import RazorpayStandin

from .const import PLUG
from .helpers import registry_snapshot, settle
from .pages_helpers import BAY_URL, LINKS, Customer


@pytest.fixture
def fixed_token() -> Generator[None]:
    """The image's access token (in two of its attributes) is random: fixed, as HA core's image
    tests fix it (only the image's own generator: a constant from every SystemRandom makes
    ``randrange`` loop forever). Its state, the time its picture changed, is ``freeze_time``'s.
    """
    with patch.object(image._RND, "getrandbits", return_value=0x5EC2E7):
        yield


@pytest.mark.freeze_time("2026-01-01T00:00:00+00:00")
@pytest.mark.parametrize("platforms", [[Platform.IMAGE]])
@pytest.mark.usefixtures("fixed_token", "entity_registry_enabled_by_default")
async def test_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    await snapshot_platform(
        hass, entity_registry, registry_snapshot(snapshot), init_integration.entry_id
    )


async def test_the_image_is_the_bay_pages_qr_code_or_an_out_of_order_sign(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    hass_client: ClientSessionGenerator,
) -> None:
    (state,) = hass.states.async_all("image")
    client = await hass_client()

    async def picture() -> tuple[str, bytes]:
        current = hass.states.get(state.entity_id)
        assert current is not None
        response = await client.get(current.attributes["entity_picture"])
        assert response.status == 200
        assert response.content_type == "image/png"
        return current.state, await response.read()

    shown, png = await picture()
    (code,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert code.text == BAY_URL
    assert await picture() == (shown, png)  # it never changes while the bay is in order
    assert standin.calls_to(*LINKS) == []

    hass.states.async_set(PLUG, STATE_UNAVAILABLE)
    await settle(hass)
    changed, sign = await picture()
    assert changed != shown
    assert zxingcpp.read_barcodes(Image.open(io.BytesIO(sign))) == []
    assert hass.states.get(state.entity_id).state != STATE_UNAVAILABLE  # type: ignore[union-attr]
