"""Diagnostics: what an owner can share without giving away keys."""

from __future__ import annotations

import json

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from devtools.razorpay_standin import RazorpayStandin

from .const import PAGES_ID, PAGES_SECRET, WEBHOOK_ID, WEBHOOK_SECRET
from .helpers import PostWebhook, create_link

REDACTED = "**REDACTED**"


@pytest.fixture(autouse=True)
async def diagnostics_view(hass: HomeAssistant) -> None:
    """Register the diagnostics view before any test client freezes the HTTP router."""
    assert await async_setup_component(hass, "diagnostics", {})


async def test_diagnostics_redact_secrets_and_summarise(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
    post_webhook: PostWebhook,
) -> None:
    # One good payment (a session runs) and one of the wrong amount (needs attention).
    paid = standin.pay_link((await create_link(hass))["id"])
    await post_webhook(paid.payment_link_paid())
    wrong = standin.pay_link((await create_link(hass))["id"], amount=100)
    await post_webhook(wrong.payment_link_paid())
    for _ in range(3):
        await hass.async_block_till_done()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)

    text = json.dumps(diagnostics)
    for secret in (standin.key_id, standin.key_secret, WEBHOOK_SECRET, WEBHOOK_ID, PAGES_SECRET):
        assert secret not in text
    entry = diagnostics["entry"]
    assert isinstance(entry, dict)
    assert entry["title"] == REDACTED
    assert entry["data"] == {
        "key_id": REDACTED,
        "key_secret": REDACTED,
        "webhook_secret": REDACTED,
        "webhook_id": REDACTED,
        "api_base_url": standin.base_url,
        "cloudhook": False,
        "pages_webhook_id": PAGES_ID,
        "pages_secret": REDACTED,
    }
    subentries = diagnostics["subentries"]
    assert isinstance(subentries, list)
    # The default site the account got at its migration to 1.4.
    assert sorted(s["subentry_type"] for s in subentries) == ["bay", "plan", "site"]  # type: ignore[index]
    ledger = diagnostics["ledger"]
    assert isinstance(ledger, dict)
    assert ledger["links"] == {"created": 1, "paid": 1}
    assert ledger["payments"] == {"attention": 1, "session": 1}
    assert ledger["sessions"] == {"active": 1}
    assert ledger["refunds"] == {}
    (attention,) = ledger["attention"]  # type: ignore[misc]
    assert attention["payment_id"] == wrong.payment_id
    assert attention["amount"] == 100
    bay = diagnostics["bays"]["bay-1"]  # type: ignore[index,call-overload]
    assert bay["status"] == "charging"
    assert bay["online"] is True
    assert bay["fault"] is None
    assert bay["agent"] is None
    assert bay["session"]["state"] == "active"
    assert bay["session"]["payment_ids"] == [paid.payment_id]
    assert bay["session"]["paid_paise"] == 2000


async def test_diagnostics_of_an_idle_bay(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, loaded_entry: MockConfigEntry
) -> None:
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)

    assert diagnostics["ledger"] == {
        "links": {},
        "payments": {},
        "sessions": {},
        "refunds": {},
        "events": 0,
        "too_small_to_refund_paise": 0,
        "attention": [],
    }
    assert diagnostics["bays"]["bay-1"]["status"] == "idle"  # type: ignore[index,call-overload]
    assert diagnostics["bays"]["bay-1"]["session"] is None  # type: ignore[index,call-overload]


async def test_diagnostics_show_the_sites_and_each_bay_s_site(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    standin: RazorpayStandin,
) -> None:
    """The sites as stored (nothing in them is secret); the key id appears nowhere."""
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)

    assert standin.key_id not in json.dumps(diagnostics)
    assert diagnostics["sites"] == {
        "default": {
            "site_id": "default",
            "name": "Charging point",
            "address": "",
            "time_zone": None,
            "hours": dict.fromkeys(
                ("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "00:00-24:00"
            ),
            "closed_dates": [],
            "load_cap_w": None,
            "sell_past_closing": False,
        }
    }
    bay = diagnostics["bays"]["bay-1"]  # type: ignore[index,call-overload]
    assert (bay["site_id"], bay["rated_w"]) == ("default", 3300)
