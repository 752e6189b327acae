"""The customer's pages under a site: closed, its load cap full, sales cut to closing.

The shop (``site_helpers``) is open 08:00-21:00 in India with a 5 kW cap; its bays are plugs
rated 3.3 kW, so one powered bay leaves no room for another.
"""

from __future__ import annotations

from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.sites import WEEKDAYS
from devtools.razorpay_standin import RazorpayStandin

from .const import RATE_PLAN_SUBENTRY
from .helpers import PostWebhook, create_link, plug_state, refund_amounts, settle
from .pages_helpers import LINKS, Customer, cloudhook, link_of
from .site_helpers import (
    KOLKATA,
    at_the_shop,
    plug_bay,
    set_up_shop,
    shop_entry,
    shop_site,
    site_subentry,
)

DISPLAY_TOKEN = "display-token-of-bay-1-0123456789"
PLANS = ["p30", "pm"]
# Open around the clock Monday to Friday, closed at the weekend.
WEEKDAYS_SHOP = site_subentry(
    time_zone=KOLKATA, hours=dict.fromkeys(WEEKDAYS, "00:00-24:00") | {"sat": "", "sun": ""}
)


@pytest.fixture
def config_entry(
    standin: RazorpayStandin, bay_plans: list[dict[str, Any]], request: pytest.FixtureRequest
) -> MockConfigEntry:
    """The shop with bay 1 (its display's token set) and bay 2, both rated 3.3 kW.

    Its site a test's own (``indirect``), else the shop.
    """
    bay_1 = plug_bay(1, PLANS)
    bay_1["data"]["display_token"] = DISPLAY_TOKEN
    site = getattr(request, "param", None) or shop_site()
    subentries = [*bay_plans, RATE_PLAN_SUBENTRY, site, bay_1, plug_bay(2, PLANS)]
    return shop_entry(standin, subentries)


@pytest.fixture
async def init_integration(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """The shop's account set up, its bays' plugs there and off."""
    return await set_up_shop(hass, config_entry, 2)


async def test_closed_page_says_when_it_opens_and_sells_nothing(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
) -> None:
    at_the_shop(freezer, "2026-12-07 22:00:00")
    page = await customer.get("bay=bay-1")
    assert page.status == 200
    assert 'data-state="closed"' in page.text
    assert "This site is closed; nothing is sold now. It opens on 08/12 at 08:00." in page.text
    assert 'name="plan"' not in page.text  # no Pay button
    hindi = await customer.get("bay=bay-1&lang=hi")
    assert "यह 08/12 को 08:00 बजे खुलेगी।" in hindi.text

    at_the_shop(freezer, "2026-12-08 07:30:00")
    page = await customer.get("bay=bay-1")
    assert "It opens at 08:00." in page.text
    assert '"state": "closed"' in (await customer.get("bay=bay-1&format=json")).text

    # Pay, checked when tapped (a page drawn while open, tapped after closing): no link.
    answer = await customer.pay_button("bay=bay-1")
    assert answer.status == 409
    assert "This site is closed; nothing was sold." in answer.text
    assert standin.calls_to(*LINKS) == []

    at_the_shop(freezer, "2026-12-08 08:00:00")
    assert 'data-state="free"' in (await customer.get("bay=bay-1")).text


async def test_display_says_closed_in_both_languages(
    hass: HomeAssistant, customer: Customer, freezer: FrozenDateTimeFactory
) -> None:
    at_the_shop(freezer, "2026-12-07 21:00:00")
    for via in ("http", "cloudhook"):
        screen = await customer.send(via, "GET", f"display={DISPLAY_TOKEN}")
        assert screen.status == 200
        assert 'data-state="closed"' in screen.text
        assert "It opens on 08/12 at 08:00." in screen.text
        assert "यह 08/12 को 08:00 बजे खुलेगी।" in screen.text
        page = await customer.send(via, "GET", "bay=bay-1")
        assert 'data-state="closed"' in page.text
        assert (await customer.send(via, "POST", "bay=bay-1", {"plan": "p30"})).status == 409


async def test_offers_end_by_closing(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
) -> None:
    at_the_shop(freezer, "2026-12-07 20:40:00")
    page = await customer.get("bay=bay-1")
    assert 'data-state="free"' in page.text
    assert "This site closes at 21:00: only charging that ends by then is sold." in page.text
    assert 'value="p30"' not in page.text  # the half hour would run past closing
    assert "₹0.50 per minute, 10 to 20 minutes" in page.text
    assert 'max="20"' in page.text

    answer = await customer.open_and_pay(plan="pm", minutes="21")
    assert answer.status == 400
    assert standin.calls_to(*LINKS) == []
    assert (await customer.open_and_pay(plan="p30")).status == 400
    assert standin.calls_to(*LINKS) == []

    answer = await customer.open_and_pay(plan="pm", minutes="20")
    assert answer.status == 200
    (call,) = standin.calls_to(*LINKS)
    assert call.json["amount"] == 1000


async def test_full_site_says_when_power_is_free_and_sells_nothing(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    at_the_shop(freezer, "2026-12-07 12:00:00")
    paid = standin.pay_link((await create_link(hass, "bay-2", "p30"))["id"])
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    freezer.tick(60)

    page = await customer.get("bay=bay-1")
    assert 'data-state="full"' in page.text
    assert "All power at this site is in use; nothing is sold now." in page.text
    assert "Next free in about 29 minutes." in page.text
    assert "3.3 kW of 5 kW in use (rated)." in page.text
    hindi = await customer.get("bay=bay-1&lang=hi")
    assert "लगभग 29 मिनट में ख़ाली होगी।" in hindi.text
    answer = await customer.pay_button("bay=bay-1")
    assert answer.status == 409
    assert "All power at this site is in use; nothing was sold." in answer.text
    (only,) = standin.calls_to(*LINKS)  # bay 2's, made by the action
    assert only.json["notes"]["bay"] == "bay-2"

    for via in ("http", "cloudhook"):
        screen = await customer.send(via, "GET", f"display={DISPLAY_TOKEN}")
        assert 'data-state="full"' in screen.text
        assert "Next free in about 29 minutes." in screen.text
    answer = await cloudhook(hass, "GET", "bay=bay-1&format=json")
    assert '"state": "full"' in answer.text


async def test_added_time_ends_by_closing(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    at_the_shop(freezer, "2026-12-07 20:20:00")
    link = await hass.services.async_call(
        DOMAIN,
        "create_payment_link",
        {"bay": "bay-1", "plan": "pm", "minutes": 20},
        blocking=True,
        return_response=True,
    )
    assert isinstance(link, dict)
    paid = standin.pay_link(str(link["id"]))
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)

    # Charging until 20:40: 20 minutes may be added (the half hour would end past closing,
    # though a new session of it would not have).
    page = await customer.get("bay=bay-1")
    assert 'data-state="busy"' in page.text
    assert "This site closes at 21:00: only charging that ends by then is sold." in page.text
    assert 'value="p30"' not in page.text
    assert "₹0.50 per minute, 10 to 20 minutes" in page.text
    assert (await customer.open_and_pay(plan="pm", minutes="21")).status == 400
    assert len(standin.calls_to(*LINKS)) == 1  # the action's only


async def test_the_poster_lists_every_plan_whatever_the_hour(
    hass: HomeAssistant, customer: Customer, freezer: FrozenDateTimeFactory
) -> None:
    at_the_shop(freezer, "2026-12-07 20:51:00")  # 9 minutes to closing: the page offers none
    assert 'name="plan"' not in (await customer.get("bay=bay-1")).text
    poster = await customer.get("bay=bay-1&poster=a4")
    assert poster.status == 200
    assert "₹20" in poster.text
    assert "₹0.50" in poster.text


async def test_a_held_bay_says_closed_after_closing(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    freezer: FrozenDateTimeFactory,
) -> None:
    at_the_shop(freezer, "2026-12-07 20:45:00")
    assert (await customer.open_and_pay(plan="pm", minutes="10")).status == 200
    assert 'data-state="held"' in (await customer.get("bay=bay-1")).text  # another customer

    at_the_shop(freezer, "2026-12-07 21:00:00")  # their link is still open
    page = await customer.get("bay=bay-1")
    assert 'data-state="closed"' in page.text
    assert "It opens on 08/12 at 08:00." in page.text


async def test_a_page_link_paid_within_its_lifetime_runs_to_its_end(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The page sells p30 at 20:30 (it ends by 21:00); its link lives the 20-minute hold and a
    minute more, so paid at 20:47 it runs to 21:17, not refused as over the limit."""
    at_the_shop(freezer, "2026-12-07 20:30:00")
    answer = await customer.open_and_pay(plan="p30")
    assert answer.status == 200
    link_id = link_of(standin, answer)
    made = dt_util.utcnow().timestamp()
    assert standin.links[link_id]["expire_by"] == made + 21 * 60

    at_the_shop(freezer, "2026-12-07 20:47:00")  # within the link's lifetime, before closing
    paid = standin.pay_link(link_id)
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    assert refund_amounts(standin, paid.payment_id) == []
    assert plug_state(hass) == "on"


async def test_a_page_link_paid_after_closing_is_refunded(
    hass: HomeAssistant,
    customer: Customer,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
    freezer: FrozenDateTimeFactory,
) -> None:
    at_the_shop(freezer, "2026-12-07 20:45:00")
    link_id = link_of(standin, await customer.open_and_pay(plan="pm", minutes="10"))

    at_the_shop(freezer, "2026-12-07 21:01:00")  # closed, the link still open
    paid = standin.pay_link(link_id)
    assert (await post_webhook(paid.payment_link_paid())).status == 200
    await settle(hass)
    assert refund_amounts(standin, paid.payment_id) == [500]  # 10 minutes at ₹0.50
    assert plug_state(hass) == "off"


@pytest.mark.parametrize("config_entry", [WEEKDAYS_SHOP], indirect=True)
async def test_a_closing_days_away_names_its_day(
    customer: Customer, freezer: FrozenDateTimeFactory
) -> None:
    """Monday noon, the site closes at Saturday's 00:00: not "closes at 00:00" (tonight)."""
    at_the_shop(freezer, "2026-12-07 12:00:00")
    page = await customer.get("bay=bay-1")
    assert "This site closes on 12/12 at 00:00: only charging" in page.text
    page = await customer.get("bay=bay-1&lang=hi")
    assert "यह जगह 12/12 को 00:00 बजे बंद होती है" in page.text
