"""Bays whose site was removed (issue #25): a repair names them; they sell without a gate."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import DOMAIN
from custom_components.qr_charging.sites import WEEKDAYS
from devtools.razorpay_standin import RazorpayStandin

from .const import BAY_SUBENTRY, PLAN_SUBENTRY
from .helpers import (
    PostWebhook,
    create_link,
    entry_data,
    pay,
    plug_state,
    refund_amounts,
    setup_plug,
)
from .site_helpers import site_subentry


async def test_bays_of_a_removed_site_raise_a_repair_until_they_have_one(
    hass: HomeAssistant, standin: RazorpayStandin, post_webhook: PostWebhook
) -> None:
    await setup_plug(hass)
    # A site closed every day: its bay sells nothing while it is there.
    shop = site_subentry("shop", "Shop", hours=dict.fromkeys(WEEKDAYS, ""))
    bay = {**BAY_SUBENTRY, "data": {**BAY_SUBENTRY["data"], "site_id": "shop"}}
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=standin.key_id,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[PLAN_SUBENTRY, site_subentry("default", "Main"), shop, bay],
        minor_version=4,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    issues = ir.async_get(hass)
    issue_id = f"bay_without_site_{entry.entry_id}"
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    with pytest.raises(ServiceValidationError) as refused:
        await create_link(hass)
    assert refused.value.translation_key == "site_closed_for_good"
    assert standin.calls_to("POST", "/v1/payment_links") == []

    # HA removes a subentry without asking: the account reloads and names the bay.
    (shop_id,) = [i for i, s in entry.subentries.items() if s.unique_id == "shop"]
    hass.config_entries.async_remove_subentry(entry, shop_id)
    await hass.async_block_till_done()

    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "bay_without_site"
    assert issue.translation_placeholders == {"bays": "Bay 1 (shop)"}
    # Meanwhile it sells as bays did before sites: no opening hours, no cap.
    sold = await pay(hass, standin, post_webhook)
    assert plug_state(hass) == "on"
    assert refund_amounts(standin, sold.payment_id) == []

    # The site is back: the repair goes.
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(shop["data"]),
            subentry_type="site",
            title="Shop",
            unique_id="shop",
        ),
    )
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_the_repair_goes_with_the_account(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    await setup_plug(hass)
    bay = {**BAY_SUBENTRY, "data": {**BAY_SUBENTRY["data"], "site_id": "gone"}}
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=standin.key_id,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[PLAN_SUBENTRY, site_subentry("default", "Main"), bay],
        minor_version=4,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    issue_id = f"bay_without_site_{entry.entry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {"bays": "Bay 1 (gone)"}

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()

    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
