"""Accounts of older versions migrated: pages, bay secrets (the plan forms: test_plan_flows)."""

from __future__ import annotations

from unittest.mock import AsyncMock, Mock, patch

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import (
    CONF_CLOUDHOOK,
    CONF_PAGES_SECRET,
    CONF_PAGES_URL,
    CONF_PAGES_WEBHOOK_ID,
    DOMAIN,
)
from devtools.razorpay_standin import RazorpayStandin

from .const import BAY_SUBENTRY, PLAN_SUBENTRY
from .helpers import entry_data


async def test_an_account_of_0_2_gets_its_pages(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    old = {k: v for k, v in entry_data(standin).items() if not k.startswith("pages_")}
    entry = MockConfigEntry(domain=DOMAIN, unique_id=standin.key_id, data=old, minor_version=1)
    entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.minor_version == 4  # on to the latest (1.4: a default site)
    assert len(entry.data[CONF_PAGES_WEBHOOK_ID]) >= 32
    assert len(entry.data[CONF_PAGES_SECRET]) >= 32
    assert CONF_PAGES_URL not in entry.data
    assert entry.data | {CONF_PAGES_WEBHOOK_ID: "", CONF_PAGES_SECRET: ""} == old | {
        CONF_PAGES_WEBHOOK_ID: "",
        CONF_PAGES_SECRET: "",
    }


async def test_a_cloud_account_of_0_2_gets_a_cloudhook_for_its_pages(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    old = {k: v for k, v in entry_data(standin).items() if not k.startswith("pages_")}
    old[CONF_CLOUDHOOK] = True
    entry = MockConfigEntry(domain=DOMAIN, unique_id=standin.key_id, data=old, minor_version=1)
    entry.add_to_hass(hass)
    hass.config.components.add("cloud")
    create = AsyncMock(return_value="https://hooks.nabu.casa/pages")
    # HA Cloud cannot run here (nor import on every HA line): its cloudhook call is mocked.
    cloud = Mock(async_create_cloudhook=create)
    with patch("custom_components.qr_charging.migration.cloud_component", return_value=cloud):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()

    create.assert_awaited_once_with(hass, entry.data[CONF_PAGES_WEBHOOK_ID])
    assert entry.data[CONF_PAGES_URL] == "https://hooks.nabu.casa/pages"
    # The pages' QR codes and callbacks point at the cloudhook.
    assert entry.runtime_data.addresses.base_url() == "https://hooks.nabu.casa/pages"


async def test_a_newer_entry_is_refused(hass: HomeAssistant, standin: RazorpayStandin) -> None:
    entry = MockConfigEntry(domain=DOMAIN, data=entry_data(standin), version=2)
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)


async def test_bays_of_0_3_get_their_display_and_dynamic_qr_secrets(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    """Every bay gets its secrets once; a bay that has them keeps them; nothing else moves."""
    had = {"qr_secret": "s" * 32, "display_token": "t" * 32}
    second = {
        **BAY_SUBENTRY,
        "data": {**BAY_SUBENTRY["data"], "bay_id": "bay-2", "name": "Bay 2", **had},
        "unique_id": "bay-2",
    }
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=entry_data(standin),
        subentries_data=[PLAN_SUBENTRY, BAY_SUBENTRY, second],
        minor_version=2,
    )
    entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.minor_version == 4  # on to the latest (1.4: a default site)
    bays = {
        s.data["bay_id"]: dict(s.data)
        for s in entry.subentries.values()
        if s.subentry_type == "bay"
    }
    old = bays["bay-1"]
    secret, token = old.pop("qr_secret"), old.pop("display_token")
    assert len(secret) > 16
    assert len(token) > 16
    assert secret != token
    assert old == BAY_SUBENTRY["data"]
    assert bays["bay-2"] == second["data"]
