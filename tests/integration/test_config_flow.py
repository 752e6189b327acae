"""The account's config flow: keys checked against a Razorpay stand-in, reauth, reconfigure,
options. The subentries' flows: test_plan_flows.py, test_bay_flows.py, test_discovery_flow.py.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import AsyncMock, Mock, call, patch

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.translation import async_get_translations
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import (
    CONF_API_BASE_URL,
    CONF_CLOUDHOOK,
    CONF_KEY_ID,
    CONF_KEY_SECRET,
    CONF_PAGES_URL,
    CONF_PAGES_WEBHOOK_ID,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
)
from devtools.razorpay_standin import RazorpayStandin

from .const import WEBHOOK_SECRET


def _keys(standin: RazorpayStandin, **changes: Any) -> dict[str, Any]:
    """Form input: the API address sits in the collapsed "advanced" section."""
    keys = {
        CONF_KEY_ID: standin.key_id,
        CONF_KEY_SECRET: standin.key_secret,
        CONF_WEBHOOK_SECRET: WEBHOOK_SECRET,
        CONF_API_BASE_URL: standin.base_url,
    } | changes
    return {k: v for k, v in keys.items() if k != CONF_API_BASE_URL} | {
        "advanced": {CONF_API_BASE_URL: keys[CONF_API_BASE_URL]}
    }


async def _start(hass: HomeAssistant) -> Any:
    return await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})


async def test_user_flow_creates_entry_and_shows_webhook(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    result = await _start(hass)
    assert result["type"] is FlowResultType.FORM
    assert "advanced" in result["data_schema"].schema

    result = await hass.config_entries.flow.async_configure(result["flow_id"], _keys(standin))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    data = result["data"]
    assert data[CONF_KEY_ID] == standin.key_id
    assert data[CONF_CLOUDHOOK] is False
    assert data[CONF_WEBHOOK_ID]
    assert data[CONF_WEBHOOK_ID] in result["description_placeholders"]["webhook_url"]
    assert "payment_link.paid" in result["description_placeholders"]["events"]
    assert result["result"].unique_id == standin.key_id
    # The keys were really checked with Razorpay.
    assert standin.calls_to("GET", "/v1/payment_links")


@pytest.mark.parametrize(
    ("changes", "fault", "error"),
    [
        ({CONF_KEY_SECRET: "wrong"}, None, "invalid_auth"),
        ({CONF_API_BASE_URL: "http://127.0.0.1:9"}, None, "cannot_connect"),
        ({}, "<html>bad gateway</html>", "unknown"),
    ],
)
async def test_user_flow_errors_then_recovers(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    changes: dict[str, Any],
    fault: str | None,
    error: str,
) -> None:
    if fault:
        standin.fail_next("/v1/payment_links", status=502, body=fault)
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _keys(standin, **changes)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert hass.config_entries.async_entries(DOMAIN) == []

    result = await hass.config_entries.flow.async_configure(result["flow_id"], _keys(standin))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_one_entry_per_key_id(
    hass: HomeAssistant, standin: RazorpayStandin, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _keys(standin))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_cloudhook_when_cloud_is_active(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    # HA Cloud cannot run here (nor import on every HA line): the module the flow imports
    # when "cloud" is loaded is a mock with its subscription check and cloudhook creation.
    hass.config.components.add("cloud")
    create = AsyncMock(return_value="https://hooks.nabu.casa/abc")
    cloud = Mock(async_active_subscription=Mock(return_value=True))
    cloud.async_get_or_create_cloudhook = create
    with patch("custom_components.qr_charging.config_flow.cloud_component", return_value=cloud):
        result = await _start(hass)
        result = await hass.config_entries.flow.async_configure(result["flow_id"], _keys(standin))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_CLOUDHOOK] is True
    assert result["description_placeholders"]["webhook_url"] == "https://hooks.nabu.casa/abc"
    # One cloudhook for Razorpay's webhook, one for the customer's pages.
    assert create.call_args_list == [
        call(hass, result["data"][CONF_WEBHOOK_ID]),
        call(hass, result["data"][CONF_PAGES_WEBHOOK_ID]),
    ]
    assert result["data"][CONF_PAGES_URL] == "https://hooks.nabu.casa/abc"


async def test_the_webhook_url_is_shown_again_in_the_options(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    await hass.config.async_update(external_url="https://kiosk.example.com")

    result = await hass.config_entries.options.async_init(config_entry.entry_id)

    assert result["step_id"] == "init"
    assert result["description_placeholders"]["webhook_url"] == (
        "https://kiosk.example.com/api/webhook/razorpay-test-hook"
    )
    assert "payment_link.paid" in result["description_placeholders"]["events"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"ack_timeout": 20, "auto_refund": True}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_reauth_with_new_keys(
    hass: HomeAssistant, standin: RazorpayStandin, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    standin.key_id, standin.key_secret = "rzp_test_new", "new_secret"
    result = await config_entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_KEY_ID: "rzp_test_new", CONF_KEY_SECRET: "still wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_KEY_ID: "rzp_test_new", CONF_KEY_SECRET: "new_secret"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert config_entry.unique_id == "rzp_test_new"
    assert config_entry.data[CONF_KEY_SECRET] == "new_secret"
    # The webhook stays where Razorpay sends it.
    assert config_entry.data[CONF_WEBHOOK_ID] == "razorpay-test-hook"
    # The flow reloads the entry in the background: wait for it, as HA would at its next step.
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(config_entry.entry_id)


async def test_reconfigure_refuses_a_key_of_another_entry(
    hass: HomeAssistant, standin: RazorpayStandin, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    MockConfigEntry(domain=DOMAIN, unique_id="rzp_test_other", data={}).add_to_hass(hass)
    result = await config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_KEY_ID: "rzp_test_other", CONF_KEY_SECRET: "x", CONF_WEBHOOK_SECRET: WEBHOOK_SECRET},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert config_entry.unique_id == standin.key_id


async def test_reconfigure_webhook_secret(
    hass: HomeAssistant, standin: RazorpayStandin, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    result = await config_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_KEY_ID: standin.key_id,
            CONF_KEY_SECRET: standin.key_secret,
            CONF_WEBHOOK_SECRET: "rotated-secret",
        },
    )
    assert result["reason"] == "reconfigure_successful"
    assert config_entry.data[CONF_WEBHOOK_SECRET] == "rotated-secret"


# Inputs that would weaken the account: refused on their field, before the keys go anywhere.
WEAK_INPUTS = {
    "secret_of_11": ({CONF_WEBHOOK_SECRET: "a" * 11}, CONF_WEBHOOK_SECRET),
    "secret_padded": ({CONF_WEBHOOK_SECRET: "  short  " + " " * 6}, CONF_WEBHOOK_SECRET),
    "http_to_razorpay": ({CONF_API_BASE_URL: "http://api.razorpay.com"}, CONF_API_BASE_URL),
    "ftp": ({CONF_API_BASE_URL: "ftp://127.0.0.1/"}, CONF_API_BASE_URL),
    "no_scheme": ({CONF_API_BASE_URL: "api.razorpay.com"}, CONF_API_BASE_URL),
    "no_host": ({CONF_API_BASE_URL: "https://"}, CONF_API_BASE_URL),
    "localhost_as_user": ({CONF_API_BASE_URL: "http://localhost@evil.example"}, CONF_API_BASE_URL),
    "loopback_lookalike": ({CONF_API_BASE_URL: "http://127.0.0.1.evil.example"}, CONF_API_BASE_URL),
    "unreadable": ({CONF_API_BASE_URL: "http://[::1"}, CONF_API_BASE_URL),
}
FIELD_ERRORS = {
    CONF_WEBHOOK_SECRET: "webhook_secret_too_short",
    CONF_API_BASE_URL: "api_url_not_https",
}


# How each account flow ends once its form is right.
RECOVERED = {
    "user": (FlowResultType.CREATE_ENTRY, None),
    "reauth": (FlowResultType.ABORT, "reauth_successful"),
    "reconfigure": (FlowResultType.ABORT, "reconfigure_successful"),
}


async def _flow_for(hass: HomeAssistant, step: str, entry: MockConfigEntry) -> Any:
    if step == "user":
        return await _start(hass)
    entry.add_to_hass(hass)
    if step == "reauth":
        return await entry.start_reauth_flow(hass)
    return await entry.start_reconfigure_flow(hass)


@pytest.mark.parametrize(
    ("step", "changes", "field"),
    [
        pytest.param(step, changes, field, id=f"{name}-{step}")
        for name, (changes, field) in WEAK_INPUTS.items()
        for step in ("user", "reconfigure", "reauth")
        # Reauth asks for the keys only, not the webhook secret.
        if not (step == "reauth" and field == CONF_WEBHOOK_SECRET)
    ],
)
async def test_weak_inputs_are_refused_on_their_field(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    config_entry: MockConfigEntry,
    step: str,
    changes: dict[str, Any],
    field: str,
) -> None:
    before = dict(config_entry.data)
    user_input = _keys(standin, **changes)
    if step == "reauth":
        del user_input[CONF_WEBHOOK_SECRET]
    result = await _flow_for(hass, step, config_entry)

    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)

    assert result["type"] is FlowResultType.FORM
    # The API address's error goes on its section: HA's frontend shows none inside a section.
    shown_on = "advanced" if field == CONF_API_BASE_URL else field
    assert result["errors"] == {shown_on: FIELD_ERRORS[field]}
    advanced = next(v for k, v in result["data_schema"].schema.items() if k == "advanced")
    assert advanced.options == {"collapsed": shown_on != "advanced"}
    assert standin.calls == []  # the keys were not sent anywhere
    assert dict(config_entry.data) == before
    assert len(hass.config_entries.async_entries(DOMAIN)) == (step != "user")

    # The same form, corrected, goes through.
    good = _keys(standin)
    if step == "reauth":
        del good[CONF_WEBHOOK_SECRET]
    result = await hass.config_entries.flow.async_configure(result["flow_id"], good)
    assert result["type"] is RECOVERED[step][0]
    assert result.get("reason") == RECOVERED[step][1]
    await hass.async_block_till_done()


@pytest.mark.parametrize("language", ["en", "hi"])
async def test_weak_input_errors_are_translated(hass: HomeAssistant, language: str) -> None:
    strings = await async_get_translations(hass, language, "config", [DOMAIN])
    for key in FIELD_ERRORS.values():
        assert strings[f"component.{DOMAIN}.config.error.{key}"]


@pytest.mark.parametrize(
    ("url", "outcome"),
    [
        ("{base}", FlowResultType.CREATE_ENTRY),
        ("{localhost}", FlowResultType.CREATE_ENTRY),
        # https passes the check; nothing listens there, so the keys cannot be checked.
        ("https://127.0.0.1:9", FlowResultType.FORM),
    ],
)
async def test_accepted_api_addresses(
    hass: HomeAssistant, standin: RazorpayStandin, url: str, outcome: FlowResultType
) -> None:
    url = url.format(
        base=standin.base_url, localhost=standin.base_url.replace("127.0.0.1", "localhost")
    )
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _keys(standin, **{CONF_API_BASE_URL: url, CONF_WEBHOOK_SECRET: "a" * 12})
    )
    assert result["type"] is outcome
    if outcome is FlowResultType.FORM:
        assert result["errors"] == {"base": "cannot_connect"}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], _keys(standin))
        assert result["type"] is FlowResultType.CREATE_ENTRY
    else:
        assert result["data"][CONF_API_BASE_URL] == url


async def test_options(hass: HomeAssistant, config_entry: MockConfigEntry) -> None:
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"ack_timeout": 45, "auto_refund": False}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options == {"ack_timeout": 45, "auto_refund": False}
