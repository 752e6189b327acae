"""The ``create_payment_link`` action under a site (#25): it sells what the bay's page would.

The shop (``site_helpers``) is open 08:00-21:00 in India with a 5 kW cap; its two bays are
plugs rated 3.3 kW, so one powered bay leaves no room for the other.
"""

from __future__ import annotations

from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .const import RATE_PLAN_SUBENTRY
from .helpers import PostWebhook, create_link, plug_state, refund_amounts, settle
from .pages_helpers import LINKS
from .site_helpers import at_the_shop, plug_bay, set_up_shop, shop_entry, shop_site


@pytest.fixture
def config_entry(standin: RazorpayStandin, bay_plans: list[dict[str, Any]]) -> MockConfigEntry:
    """The shop with two 3.3 kW bays selling p30 and the per-minute plan."""
    bays = [plug_bay(1, ["p30", "pm"]), plug_bay(2, ["p30", "pm"])]
    return shop_entry(standin, [*bay_plans, RATE_PLAN_SUBENTRY, shop_site(), *bays])


@pytest.fixture
async def init_integration(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """The shop's account set up, its bays' plugs there and off."""
    return await set_up_shop(hass, config_entry, 2)


async def _refused(hass: HomeAssistant, data: dict[str, Any]) -> ServiceValidationError:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "create_payment_link", data, blocking=True, return_response=True
        )
    return err.value


@pytest.mark.usefixtures("loaded_entry")
async def test_no_link_is_made_while_the_site_is_closed(
    hass: HomeAssistant, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    at_the_shop(freezer, "2026-12-07 22:00:00")
    err = await _refused(hass, {"bay": "bay-1", "plan": "p30"})
    assert err.translation_key == "site_closed"
    assert err.translation_placeholders == {"site": "Shop", "opens": "08/12 08:00"}
    assert str(err).startswith("Site Shop is closed; it opens at 08/12 08:00. No payment link")

    at_the_shop(freezer, "2026-12-08 07:30:00")
    err = await _refused(hass, {"bay": "bay-1", "plan": "p30"})
    assert err.translation_placeholders == {"site": "Shop", "opens": "08:00"}
    assert standin.calls_to(*LINKS) == []


@pytest.mark.usefixtures("loaded_entry")
async def test_no_link_starts_a_bay_while_the_cap_is_full(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    at_the_shop(freezer, "2026-12-07 12:00:00")
    first = standin.pay_link((await create_link(hass, "bay-1", "p30"))["id"])
    assert (await post_webhook(first.payment_link_paid())).status == 200
    await settle(hass)
    assert plug_state(hass) == "on"
    made = len(standin.calls_to(*LINKS))

    err = await _refused(hass, {"bay": "bay-2", "plan": "p30"})
    assert err.translation_key == "site_full"
    assert err.translation_placeholders == {"site": "Shop", "in_use": "3.3", "cap": "5"}
    assert len(standin.calls_to(*LINKS)) == made

    # Time added to the running bay adds no load: sold.
    await create_link(hass, "bay-1", "p30")
    assert len(standin.calls_to(*LINKS)) == made + 1
    assert refund_amounts(standin, first.payment_id) == []


@pytest.mark.usefixtures("loaded_entry")
async def test_the_action_sells_only_what_ends_by_closing(
    hass: HomeAssistant, standin: RazorpayStandin, freezer: FrozenDateTimeFactory
) -> None:
    at_the_shop(freezer, "2026-12-07 20:45:00")  # 15 minutes to closing
    err = await _refused(hass, {"bay": "bay-1", "plan": "p30"})
    assert err.translation_key == "site_closing"
    assert err.translation_placeholders == {"site": "Shop", "closes": "21:00", "minutes": "15"}
    err = await _refused(hass, {"bay": "bay-1", "plan": "pm", "minutes": 16})
    assert err.translation_key == "site_closing"
    assert standin.calls_to(*LINKS) == []

    link = await hass.services.async_call(
        DOMAIN,
        "create_payment_link",
        {"bay": "bay-1", "plan": "pm", "minutes": 15},
        blocking=True,
        return_response=True,
    )
    assert isinstance(link, dict)
    assert link["amount"] == 750  # 15 minutes at ₹0.50


@pytest.mark.usefixtures("loaded_entry")
async def test_the_action_counts_the_running_sessions_time_in_a_top_up(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A session runs to 20:55; at 20:26 a 30-minute top-up would end at 21:25, past closing:
    refused as the page would (not sold, then refunded over_limit): 5 minutes are left."""
    at_the_shop(freezer, "2026-12-07 20:25:00")
    first = standin.pay_link((await create_link(hass, "bay-1", "p30"))["id"])
    assert (await post_webhook(first.payment_link_paid())).status == 200
    await settle(hass)
    assert plug_state(hass) == "on"
    made = len(standin.calls_to(*LINKS))

    at_the_shop(freezer, "2026-12-07 20:26:00")
    err = await _refused(hass, {"bay": "bay-1", "plan": "p30"})
    assert err.translation_key == "site_closing"
    assert err.translation_placeholders == {"site": "Shop", "closes": "21:00", "minutes": "5"}
    err = await _refused(hass, {"bay": "bay-1", "plan": "pm", "minutes": 10})
    assert err.translation_key == "site_closing"
    assert len(standin.calls_to(*LINKS)) == made
    assert refund_amounts(standin, first.payment_id) == []
