"""The config flow: keys checked against a Razorpay stand-in, reauth, reconfigure, subentries."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import AsyncMock, Mock, call, patch

import pytest
from homeassistant.config_entries import SOURCE_MQTT, SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData, section
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
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

from .conftest import BAY_SUBENTRY, PLAN_SUBENTRY, RATE_PLAN_SUBENTRY, WEBHOOK_SECRET


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


def _data(standin: RazorpayStandin) -> dict[str, Any]:
    """Entry data: what the flow stores."""
    return {
        CONF_KEY_ID: standin.key_id,
        CONF_KEY_SECRET: standin.key_secret,
        CONF_WEBHOOK_SECRET: WEBHOOK_SECRET,
        CONF_API_BASE_URL: standin.base_url,
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
    assert result["errors"] == {field: FIELD_ERRORS[field]}
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


# -- plans and bays -------------------------------------------------------------------------


def _suggested(result: Any, field: str) -> Any:
    """The value a form shows in one of its fields."""
    (key,) = [k for k in result["data_schema"].schema if k == field]
    return key.description["suggested_value"]


async def _subflow(hass: HomeAssistant, entry: MockConfigEntry, kind: str) -> Any:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind), context={"source": SOURCE_USER}
    )


async def _bay_form(hass: HomeAssistant, entry: MockConfigEntry, relay: str) -> Any:
    """Add bay: the menu asks how the bay is switched first; the form of that kind."""
    result = await _subflow(hass, entry, "bay")
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["mqtt", "switch"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": relay}
    )
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, relay)
    return result


def _qr(**fields: Any) -> dict[str, Any]:
    """Form input: the QR code and hold fields sit in the collapsed "qr_options" section."""
    return {"qr_options": fields}


def _account(
    hass: HomeAssistant, standin: RazorpayStandin, *subentries: dict[str, Any]
) -> MockConfigEntry:
    """An account with these subentries, added to HA (not set up)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=standin.key_id,
        data=_data(standin),
        subentries_data=list(subentries),
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
def bare_entry(hass: HomeAssistant, standin: RazorpayStandin) -> MockConfigEntry:
    return _account(hass, standin)


@pytest.fixture
def plan_entry(hass: HomeAssistant, standin: RazorpayStandin) -> MockConfigEntry:
    """An account with the plan p30."""
    return _account(hass, standin, PLAN_SUBENTRY)


async def test_add_plan_stores_integer_paise(
    hass: HomeAssistant, bare_entry: MockConfigEntry
) -> None:
    result = await _subflow(hass, bare_entry, "plan")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"code": "p15", "name": "15 minutes", "minutes": 15, "price": 12.5}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (sub,) = bare_entry.subentries.values()
    assert dict(sub.data) == {
        "code": "p15",
        "name": "15 minutes",
        "minutes": 15,
        "price_paise": 1250,
    }
    assert isinstance(sub.data["price_paise"], int)
    assert sub.unique_id == "p15"


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        ({"code": "p 30", "name": "x", "minutes": 30, "price": 20}, {"code": "invalid_id"}),
        ({"code": "p30", "name": "x", "minutes": 30, "price": 20}, {"code": "duplicate_id"}),
        ({"code": "p1", "name": "x", "minutes": 1.5, "price": 20}, {"minutes": "invalid_minutes"}),
        ({"code": "p1", "name": "x", "minutes": 30, "price": 0}, {"price": "invalid_price"}),
        (
            {"code": "p1", "name": "x", "minutes": 30, "price": 0.5},
            {"price": "price_below_minimum"},
        ),
        ({"code": "p1", "name": "x", "minutes": 30, "price": 10.005}, {"price": "invalid_price"}),
    ],
)
async def test_bad_plans_are_refused(
    hass: HomeAssistant,
    plan_entry: MockConfigEntry,
    user_input: dict[str, Any],
    errors: dict[str, str],
) -> None:
    entry = plan_entry
    result = await _subflow(hass, entry, "plan")
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert len(entry.subentries) == 1

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], user_input | {"code": "p1", "minutes": 30, "price": 20}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(entry.subentries) == 2


async def test_zero_minutes_refused_by_the_form(
    hass: HomeAssistant, bare_entry: MockConfigEntry
) -> None:
    result = await _subflow(hass, bare_entry, "plan")
    with pytest.raises(InvalidData):
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"code": "p1", "name": "x", "minutes": 0, "price": 20}
        )
    assert bare_entry.subentries == {}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"code": "p1", "name": "x", "minutes": 1, "price": 20}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_edit_plan_keeps_code(hass: HomeAssistant, plan_entry: MockConfigEntry) -> None:
    entry = plan_entry
    (sub_id,) = entry.subentries
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "plan"), context={"source": "reconfigure", "subentry_id": sub_id}
    )
    assert result["step_id"] == "reconfigure"
    # The form shows the stored price in rupees.
    assert _suggested(result, "price") == 20.0
    before = dict(entry.subentries[sub_id].data)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Half hour", "minutes": 30, "price": 0.5}
    )
    assert result["errors"] == {"price": "price_below_minimum"}
    assert dict(entry.subentries[sub_id].data) == before

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Half hour", "minutes": 30, "price": 25}
    )
    assert result["reason"] == "reconfigure_successful"
    assert dict(entry.subentries[sub_id].data) == {
        "code": "p30",
        "name": "Half hour",
        "minutes": 30,
        "price_paise": 2500,
    }


async def test_bay_needs_a_plan_first(hass: HomeAssistant, bare_entry: MockConfigEntry) -> None:
    result = await _subflow(hass, bare_entry, "bay")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_plans"


async def test_add_bay_and_refuse_bad_ones(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    entry = plan_entry
    base = {
        "bay_id": "bay-1",
        "name": "Bay 1",
        "plans": ["p30"],
        "node": "kiosk-1",
    }
    result = await _bay_form(hass, entry, "mqtt")
    for change, errors in (
        ({"bay_id": "bay/1"}, {"bay_id": "invalid_id"}),
        ({"plans": []}, {"plans": "no_plans_selected"}),
        ({"node": ""}, {"node": "invalid_id"}),
        ({"node": "kiosk 1"}, {"node": "invalid_id"}),
        ({"agent_bay": "bay 1"}, {"agent_bay": "invalid_id"}),
        ({"prefix": "qr/charging"}, {"prefix": "invalid_id"}),
        ({"default_minutes": 300, "max_minutes": 240}, {"default_minutes": "invalid_minutes"}),
        (_qr(hold_minutes=20.5), {"hold_minutes": "invalid_minutes"}),
    ):
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], base | change
        )
        assert result["errors"] == errors, change
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], base)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    bays = [s for s in entry.subentries.values() if s.subentry_type == "bay"]
    (data,) = [dict(s.data) for s in bays]
    # Generated for the bay, never typed: its dynamic QR code's secret and its display's token.
    secret, token = data.pop("qr_secret"), data.pop("display_token")
    assert len(secret) > 16
    assert len(token) > 16
    assert secret != token
    assert data == {
        "bay_id": "bay-1",
        "name": "Bay 1",
        "plans": ["p30"],
        "driver": "mqtt",
        "node": "kiosk-1",
        "agent_bay": "bay-1",
        "prefix": "qr_charging",
        "switch_entity": None,
        "default_minutes": 30,
        "max_minutes": 240,
    }

    result = await _bay_form(hass, entry, "mqtt")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], base | {"name": "Again"}
    )
    assert result["errors"] == {"bay_id": "duplicate_id"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], base | {"bay_id": "bay-2", "name": "Again"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_add_switch_bay(hass: HomeAssistant, plan_entry: MockConfigEntry) -> None:
    entry = plan_entry
    result = await _bay_form(hass, entry, "switch")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "bay_id": "plug-bay",
            "name": "Plug bay",
            "plans": ["p30"],
            "switch_entity": "switch.bay_1_plug",
            "default_minutes": 15,
            "max_minutes": 60,
        }
        | _qr(hold_minutes=30, dynamic_qr=True, qr_validity_s=120),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (bay,) = [s for s in entry.subentries.values() if s.subentry_type == "bay"]
    data = dict(bay.data)
    assert len(data.pop("qr_secret")) > 16
    assert len(data.pop("display_token")) > 16
    # Stored as switch bays always were: every relay field, the agent's empty.
    assert data == {
        "bay_id": "plug-bay",
        "name": "Plug bay",
        "plans": ["p30"],
        "driver": "switch",
        "node": None,
        "agent_bay": None,
        "prefix": "qr_charging",
        "switch_entity": "switch.bay_1_plug",
        "default_minutes": 15,
        "max_minutes": 60,
        "hold_minutes": 30,
        "dynamic_qr": True,
        "qr_validity_s": 120,
    }


@pytest.mark.parametrize(
    ("relay", "fields"),
    [
        ("mqtt", ["node", "agent_bay", "prefix"]),
        ("switch", ["switch_entity"]),
    ],
)
async def test_the_bay_form_shows_only_its_relays_fields(
    hass: HomeAssistant, plan_entry: MockConfigEntry, relay: str, fields: list[str]
) -> None:
    """One kind's fields, the bay's own, and the QR code and hold fields in a closed section."""
    result = await _bay_form(hass, plan_entry, relay)
    schema = result["data_schema"].schema
    assert [str(key) for key in schema] == [
        "bay_id",
        "name",
        "plans",
        *fields,
        "default_minutes",
        "max_minutes",
        "qr_options",
        "meter_options",  # issue #24: tests/integration/test_metered_flows.py
    ]
    (qr,) = [value for key, value in schema.items() if key == "qr_options"]
    assert isinstance(qr, section)
    assert qr.options == {"collapsed": True}
    assert [str(key) for key in qr.schema.schema] == [
        "static_qr",
        "hold_minutes",
        "dynamic_qr",
        "qr_validity_s",
    ]
    # A field of the other kind is no field of this form.
    other = {"switch_entity": "switch.bay_1_plug"} if relay == "mqtt" else {"node": "kiosk-1"}
    with pytest.raises(InvalidData):
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"bay_id": "b", "name": "B", "plans": ["p30"]} | other
        )


async def test_options(hass: HomeAssistant, config_entry: MockConfigEntry) -> None:
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"ack_timeout": 45, "auto_refund": False}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options == {"ack_timeout": 45, "auto_refund": False}


def _agent_config(node: str = "kiosk-1", bays: Any = None) -> str:
    return json.dumps(
        {
            "node": node,
            "name": "Kiosk 1",
            "sw_version": "0.1.0",
            "bays": bays
            if bays is not None
            else [{"id": "bay-1", "name": "Bay 1"}, {"id": "bay-2", "name": "Bay 2"}],
            "max_session_s": 14400,
        }
    )


async def _discover(
    hass: HomeAssistant, payload: str, topic: str = "qr_charging/kiosk-1/config"
) -> Any:
    return await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_MQTT},
        data=MqttServiceInfo(
            topic=topic,
            payload=payload,
            qos=0,
            retain=True,
            subscribed_topic="qr_charging/+/config",
            timestamp=0,
        ),
    )


async def test_discovered_agent_adds_its_bays(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    entry = plan_entry
    result = await _discover(hass, _agent_config())
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "mqtt_confirm"
    assert result["description_placeholders"]["bays"] == "Bay 1, Bay 2"

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "agent_added"
    bays = {
        s.data["bay_id"]: dict(s.data)
        for s in entry.subentries.values()
        if s.subentry_type == "bay"
    }
    assert set(bays) == {"bay-1", "bay-2"}
    assert bays["bay-2"]["node"] == "kiosk-1"
    assert bays["bay-2"]["plans"] == ["p30"]
    # A discovered bay can turn its display and dynamic QR code on like any other.
    assert len(bays["bay-2"]["qr_secret"]) > 16
    assert len(bays["bay-2"]["display_token"]) > 16

    # Announced again (it is retained): nothing new to offer.
    result = await _discover(hass, _agent_config())
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize(
    ("payload", "topic", "reason"),
    [
        ("not json", "qr_charging/kiosk-1/config", "invalid_discovery_info"),
        (_agent_config(node="other"), "qr_charging/kiosk-1/config", "invalid_discovery_info"),
        (
            _agent_config(bays=[{"name": "no id"}]),
            "qr_charging/kiosk-1/config",
            "invalid_discovery_info",
        ),
    ],
)
@pytest.mark.usefixtures("plan_entry")
async def test_bad_discovery(hass: HomeAssistant, payload: str, topic: str, reason: str) -> None:
    result = await _discover(hass, payload, topic)
    assert result["reason"] == reason


async def test_discovery_needs_an_account_with_plans(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    assert (await _discover(hass, _agent_config()))["reason"] == "no_account"
    _account(hass, standin)
    assert (await _discover(hass, _agent_config()))["reason"] == "no_plans"


async def test_discovery_with_two_accounts_asks_which(
    hass: HomeAssistant, standin: RazorpayStandin, plan_entry: MockConfigEntry
) -> None:
    """The agent's bays go to the account chosen, not to the first one."""
    other = MockConfigEntry(
        domain=DOMAIN,
        unique_id="rzp_test_other",
        title="rzp_test_other",
        data=_data(standin) | {CONF_KEY_ID: "rzp_test_other"},
        subentries_data=[PLAN_SUBENTRY],
    )
    other.add_to_hass(hass)

    result = await _discover(hass, _agent_config())

    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, "mqtt_account")
    assert result["description_placeholders"] == {"name": "Kiosk 1"}
    (choice,) = result["data_schema"].schema.values()
    assert choice.config["options"] == [
        {"value": plan_entry.entry_id, "label": plan_entry.title},
        {"value": other.entry_id, "label": "rzp_test_other"},
    ]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"account": other.entry_id}
    )
    assert result["step_id"] == "mqtt_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["reason"] == "agent_added"

    def bays(entry: MockConfigEntry) -> set[str]:
        return {s.data["bay_id"] for s in entry.subentries.values() if s.subentry_type == "bay"}

    assert bays(other) == {"bay-1", "bay-2"}
    assert bays(plan_entry) == set()


# -- per-minute plans -------------------------------------------------------------------------

RATE_PLAN = {"code": "pm", "name": "Per minute", "rate": 0.75, "min_minutes": 10, "max_minutes": 90}


async def test_add_a_per_minute_plan(hass: HomeAssistant, plan_entry: MockConfigEntry) -> None:
    result = await _subflow(hass, plan_entry, "rate_plan")
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], RATE_PLAN)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    (sub,) = [s for s in plan_entry.subentries.values() if s.subentry_type == "rate_plan"]
    assert sub.unique_id == "pm"
    assert dict(sub.data) == {
        "code": "pm",
        "name": "Per minute",
        "kind": "rate",
        "rate_paise": 75,
        "min_minutes": 10,
        "max_minutes": 90,
    }
    # The fixed plan is untouched.
    (fixed,) = [s for s in plan_entry.subentries.values() if s.subentry_type == "plan"]
    assert dict(fixed.data) == PLAN_SUBENTRY["data"]


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"code": "p30"}, {"code": "duplicate_id"}),  # codes are shared with fixed plans
        ({"code": "p m"}, {"code": "invalid_id"}),
        ({"rate": 0}, {"rate": "invalid_price"}),
        ({"rate": 0.005}, {"rate": "invalid_price"}),
        ({"min_minutes": 1, "rate": 0.5}, {"min_minutes": "minimum_below_one_rupee"}),
        ({"min_minutes": 30, "max_minutes": 20}, {"max_minutes": "max_below_min"}),
        ({"min_minutes": 2.5}, {"min_minutes": "invalid_minutes"}),
    ],
)
async def test_bad_per_minute_plans_are_refused(
    hass: HomeAssistant, plan_entry: MockConfigEntry, change: dict[str, Any], errors: Any
) -> None:
    result = await _subflow(hass, plan_entry, "rate_plan")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], RATE_PLAN | change
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert len(plan_entry.subentries) == 1

    result = await hass.config_entries.subentries.async_configure(result["flow_id"], RATE_PLAN)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(plan_entry.subentries) == 2


async def _reconfigure(hass: HomeAssistant, entry: MockConfigEntry, kind: str) -> Any:
    """Open the edit form of the entry's one subentry of this kind."""
    (sub_id,) = [i for i, s in entry.subentries.items() if s.subentry_type == kind]
    return sub_id, await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind), context={"source": "reconfigure", "subentry_id": sub_id}
    )


async def test_edit_a_per_minute_plan(hass: HomeAssistant, standin: RazorpayStandin) -> None:
    entry = _account(hass, standin, RATE_PLAN_SUBENTRY)
    sub_id, result = await _reconfigure(hass, entry, "rate_plan")
    assert _suggested(result, "rate") == 0.5  # shown in rupees
    edit = {"name": "Per minute", "rate": 1, "min_minutes": 10, "max_minutes": 120}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], edit | {"max_minutes": 5}
    )
    assert result["errors"] == {"max_minutes": "max_below_min"}
    assert entry.subentries[sub_id].data["max_minutes"] == 120

    result = await hass.config_entries.subentries.async_configure(result["flow_id"], edit)
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[sub_id].data["rate_paise"] == 100
    assert entry.subentries[sub_id].data["code"] == "pm"


# -- a bay's static UPI QR code ---------------------------------------------------------------


@pytest.fixture
def rate_bay_entry(hass: HomeAssistant, standin: RazorpayStandin) -> MockConfigEntry:
    """An account with a fixed plan, a per-minute plan and bay-1."""
    return _account(hass, standin, PLAN_SUBENTRY, RATE_PLAN_SUBENTRY, BAY_SUBENTRY)


BAY_FORM = {
    "name": "Bay 1",
    "plans": ["p30", "pm"],
    "switch_entity": "switch.bay_1_plug",
    "default_minutes": 30,
    "max_minutes": 240,
}


async def _edit_form(
    hass: HomeAssistant, entry: MockConfigEntry, relay: str = "switch"
) -> tuple[str, Any]:
    """Edit bay-1: the menu asks how it is switched first; the form of that kind."""
    sub_id, result = await _reconfigure(hass, entry, "bay")
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["reconfigure_mqtt", "reconfigure_switch"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": f"reconfigure_{relay}"}
    )
    assert result["step_id"] == f"reconfigure_{relay}"
    return sub_id, result


def _suggested_qr(result: Any, field: str) -> Any:
    """The value the form shows in a field of its QR section."""
    (qr,) = [value for key, value in result["data_schema"].schema.items() if key == "qr_options"]
    return _suggested({"data_schema": qr.schema}, field)


async def _edit_bay(hass: HomeAssistant, entry: MockConfigEntry, **changes: Any) -> Any:
    sub_id, result = await _edit_form(hass, entry)
    assert _suggested_qr(result, "static_qr") is bool(
        entry.subentries[sub_id].data.get("qr_code_id")
    )
    qr = {k: changes.pop(k) for k in ("static_qr", "dynamic_qr") if k in changes}
    return sub_id, await hass.config_entries.subentries.async_configure(
        result["flow_id"], BAY_FORM | changes | _qr(**qr)
    )


async def test_static_qr_code_is_made_once(
    hass: HomeAssistant, standin: RazorpayStandin, rate_bay_entry: MockConfigEntry
) -> None:
    sub_id, result = await _edit_bay(hass, rate_bay_entry, static_qr=True)
    assert result["reason"] == "reconfigure_successful"
    data = rate_bay_entry.subentries[sub_id].data
    (qr_id,) = standin.qr_codes
    assert data["qr_code_id"] == qr_id
    assert data["qr_image_url"] == standin.qr_codes[qr_id].get("image_url")

    # Edited again with the box still ticked: the same code, none made.
    _, result = await _edit_bay(hass, rate_bay_entry, static_qr=True, name="Bay one")
    assert result["reason"] == "reconfigure_successful"
    assert rate_bay_entry.subentries[sub_id].data["qr_code_id"] == qr_id
    assert len(standin.calls_to("POST", "/v1/payments/qr_codes")) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("no_rate_plan", "static_qr_needs_rate_plan"),
        ("refused_keys", "invalid_auth"),
        ("unreachable", "cannot_connect"),
        ("no_qr_feature", "static_qr_unavailable"),
    ],
)
async def test_static_qr_code_refused_then_made(
    hass: HomeAssistant,
    standin: RazorpayStandin,
    rate_bay_entry: MockConfigEntry,
    fault: str,
    error: str,
) -> None:
    entry = rate_bay_entry
    changes: dict[str, Any] = {"static_qr": True}
    form = BAY_FORM
    if fault == "no_rate_plan":
        form = BAY_FORM | {"plans": ["p30"]}
    elif fault == "refused_keys":
        standin.fail_next("/v1/payments/qr_codes", 401)
    elif fault == "unreachable":
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_API_BASE_URL: "http://127.0.0.1:9"}
        )
    else:
        standin.refuse_qr_codes = True
    sub_id, result = await _edit_form(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form | _qr(**changes)
    )
    before = dict(entry.subentries[sub_id].data)

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"static_qr": error}
    assert "qr_code_id" not in before
    assert standin.qr_codes == {}

    standin.refuse_qr_codes = False
    hass.config_entries.async_update_entry(entry, data=_data(standin))
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], BAY_FORM | _qr(static_qr=True)
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[sub_id].data["qr_code_id"] in standin.qr_codes


async def test_a_bay_moves_to_another_kind_of_relay(
    hass: HomeAssistant, rate_bay_entry: MockConfigEntry
) -> None:
    """Edited as an agent's bay, a switch bay is stored as agents' bays always were."""
    entry = rate_bay_entry
    sub_id, result = await _edit_form(hass, entry, "mqtt")
    assert _suggested(result, "name") == "Bay 1"
    form = {k: v for k, v in BAY_FORM.items() if k != "switch_entity"}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form | {"node": "kiosk-1"}
    )

    assert result["reason"] == "reconfigure_successful"
    data = dict(entry.subentries[sub_id].data)
    assert len(data.pop("qr_secret")) > 16
    assert len(data.pop("display_token")) > 16
    assert data == {
        "bay_id": "bay-1",
        "name": "Bay 1",
        "plans": ["p30", "pm"],
        "driver": "mqtt",
        "node": "kiosk-1",
        "agent_bay": "bay-1",
        "prefix": "qr_charging",
        "switch_entity": None,
        "default_minutes": 30,
        "max_minutes": 240,
    }


async def test_a_discovered_bay_whose_id_cannot_be_made_is_not_added(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    """bay-1 is taken by a bay of another agent, and "<node>-bay-1" is longer than an id."""
    node = "n" * 27  # + "-bay-1": 33 characters, one more than an id may have
    result = await _bay_form(hass, plan_entry, "mqtt")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"bay_id": "bay-1", "name": "Bay 1", "plans": ["p30"], "node": "k"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY

    result = await _discover(
        hass, _agent_config(node=node, bays=[{"id": "bay-1"}]), f"qr_charging/{node}/config"
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "bay_id_conflict"
    assert result["description_placeholders"] == {"bay": f"{node}-bay-1"}
    assert [
        s.data["bay_id"] for s in plan_entry.subentries.values() if s.subentry_type == "bay"
    ] == ["bay-1"]


async def test_an_agent_that_clears_its_config_loses_its_unused_device(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    devices = dr.async_get(hass)
    device = devices.async_get_or_create(
        config_entry_id=plan_entry.entry_id, identifiers={(DOMAIN, "agent-kiosk-1")}
    )

    result = await _discover(hass, "")

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "agent_removed"
    assert devices.async_get(device.id) is None
