"""An agent found over MQTT discovery: its bays added to an account, or the discovery refused."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_MQTT, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.qr_charging.const import CONF_KEY_ID, DOMAIN
from devtools.razorpay_standin import RazorpayStandin

from .const import PLAN_SUBENTRY, mqtt_bay
from .flow_helpers import account_data, add_account, bay_form


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
    add_account(hass, standin)
    assert (await _discover(hass, _agent_config()))["reason"] == "no_plans"


async def test_discovery_with_two_accounts_asks_which(
    hass: HomeAssistant, standin: RazorpayStandin, plan_entry: MockConfigEntry
) -> None:
    """The agent's bays go to the account chosen, not to the first one."""
    other = MockConfigEntry(
        domain=DOMAIN,
        unique_id="rzp_test_other",
        title="rzp_test_other",
        data=account_data(standin) | {CONF_KEY_ID: "rzp_test_other"},
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


async def test_a_discovered_bay_whose_id_cannot_be_made_is_not_added(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    """bay-1 is taken by a bay of another agent, and "<node>-bay-1" is longer than an id."""
    node = "n" * 27  # + "-bay-1": 33 characters, one more than an id may have
    result = await bay_form(hass, plan_entry, "mqtt")
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


async def test_one_node_id_under_two_prefixes_is_two_agents_to_add(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    """Review F2: site-b's kiosk-1 was the default's (one unique id): ``already_in_progress``.

    The default prefix's ``site-b-kiosk-1`` is a third agent: ``agent-<prefix>-<node>`` would
    have made it site-b's kiosk-1.
    """
    agents = [
        ("qr_charging/kiosk-1/config", "kiosk-1"),
        ("site-b/kiosk-1/config", "kiosk-1"),
        ("qr_charging/site-b-kiosk-1/config", "site-b-kiosk-1"),
    ]
    results = [await _discover(hass, _agent_config(node), topic) for topic, node in agents]

    assert [(r["type"], r.get("step_id")) for r in results] == [
        (FlowResultType.FORM, "mqtt_confirm")
    ] * 3
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert {f["context"]["unique_id"]: f["context"]["title_placeholders"] for f in flows} == {
        "agent-kiosk-1": {"name": "Kiosk 1"},
        "agent-site-b/kiosk-1": {"name": "Kiosk 1 (site-b)"},
        "agent-site-b-kiosk-1": {"name": "Kiosk 1"},
    }
    for result in results:
        added = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        assert added["reason"] == "agent_added"

    relays = {
        s.data["bay_id"]: (s.data["prefix"], s.data["node"], s.data["agent_bay"])
        for s in plan_entry.subentries.values()
        if s.subentry_type == "bay"
    }
    assert relays == {
        "bay-1": ("qr_charging", "kiosk-1", "bay-1"),
        "bay-2": ("qr_charging", "kiosk-1", "bay-2"),
        "kiosk-1-bay-1": ("site-b", "kiosk-1", "bay-1"),
        "kiosk-1-bay-2": ("site-b", "kiosk-1", "bay-2"),
        "site-b-kiosk-1-bay-1": ("qr_charging", "site-b-kiosk-1", "bay-1"),
        "site-b-kiosk-1-bay-2": ("qr_charging", "site-b-kiosk-1", "bay-2"),
    }
    # Announced again (retained): each has nothing new to offer.
    for topic, node in agents:
        assert (await _discover(hass, _agent_config(node), topic))["reason"] == "already_configured"


async def test_one_node_id_at_three_sites_gets_three_sets_of_bay_ids(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    """``kiosk-1`` under three prefixes: its ``bay-1`` is ``bay-1``, then with the node, then
    with the prefix too (the node's alone was the second site's, so the third was refused)."""
    for prefix in ("qr_charging", "site-b", "site-c"):
        result = await _discover(hass, _agent_config(), f"{prefix}/kiosk-1/config")
        assert result["type"] is FlowResultType.FORM, prefix
        added = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        assert added["reason"] == "agent_added", prefix

    bays = {
        s.data["bay_id"]: (s.data["prefix"], s.data["node"], s.data["agent_bay"])
        for s in plan_entry.subentries.values()
        if s.subentry_type == "bay"
    }
    assert bays == {
        "bay-1": ("qr_charging", "kiosk-1", "bay-1"),
        "bay-2": ("qr_charging", "kiosk-1", "bay-2"),
        "kiosk-1-bay-1": ("site-b", "kiosk-1", "bay-1"),
        "kiosk-1-bay-2": ("site-b", "kiosk-1", "bay-2"),
        "site-c-kiosk-1-bay-1": ("site-c", "kiosk-1", "bay-1"),
        "site-c-kiosk-1-bay-2": ("site-c", "kiosk-1", "bay-2"),
    }


def _other_account(standin: RazorpayStandin) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        unique_id="rzp_test_other",
        title="rzp_test_other",
        data=account_data(standin) | {CONF_KEY_ID: "rzp_test_other"},
        subentries_data=[PLAN_SUBENTRY],
    )


async def test_an_agent_one_account_sells_is_not_offered_again(
    hass: HomeAssistant, standin: RazorpayStandin, plan_entry: MockConfigEntry
) -> None:
    """Two accounts: once one sells the agent's bays, its next announcement (every HA start)
    asks nothing, and the other account is never offered the same relays."""
    other = _other_account(standin)
    other.add_to_hass(hass)
    result = await _discover(hass, _agent_config())
    assert result["step_id"] == "mqtt_account"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"account": other.entry_id}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["reason"] == "agent_added"

    again = await _discover(hass, _agent_config())
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"
    assert not [s for s in plan_entry.subentries.values() if s.subentry_type == "bay"]


async def test_a_new_bay_of_an_agent_is_offered_alone(
    hass: HomeAssistant, standin: RazorpayStandin, plan_entry: MockConfigEntry
) -> None:
    """The agent gains a bay: whichever account the owner picks, only the new bay is offered
    (the one another account sells stays that account's)."""
    other = _other_account(standin)
    other.add_to_hass(hass)
    one_bay = [{"id": "bay-1", "name": "Bay 1"}]
    result = await _discover(hass, _agent_config(bays=one_bay))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"account": other.entry_id}
    )
    assert (await hass.config_entries.flow.async_configure(result["flow_id"], {}))[
        "reason"
    ] == "agent_added"

    result = await _discover(hass, _agent_config())
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"account": plan_entry.entry_id}
    )
    assert result["step_id"] == "mqtt_confirm"
    assert result["description_placeholders"]["bays"] == "Bay 2"
    await hass.config_entries.flow.async_configure(result["flow_id"], {})
    relays = {
        entry.title: sorted(
            s.data["agent_bay"] for s in entry.subentries.values() if s.subentry_type == "bay"
        )
        for entry in (plan_entry, other)
    }
    assert relays == {plan_entry.title: ["bay-2"], other.title: ["bay-1"]}


async def test_a_bay_whose_every_id_is_taken_is_refused_by_name(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    """``site-c/kiosk-1``'s bay-1 finds ``bay-1``, ``kiosk-1-bay-1`` and, taken by node
    ``site-c-kiosk-1`` of site-b, ``site-c-kiosk-1-bay-1`` all taken: refused, nothing added."""
    one_bay = [{"id": "bay-1", "name": "Bay 1"}]
    for topic, node in (
        ("qr_charging/kiosk-1/config", "kiosk-1"),
        ("site-b/kiosk-1/config", "kiosk-1"),
        ("site-b/site-c-kiosk-1/config", "site-c-kiosk-1"),
    ):
        result = await _discover(hass, _agent_config(node, bays=one_bay), topic)
        added = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        assert added["reason"] == "agent_added", topic
    before = dict(plan_entry.subentries)

    result = await _discover(hass, _agent_config(bays=one_bay), "site-c/kiosk-1/config")
    refused = await hass.config_entries.flow.async_configure(result["flow_id"], {})

    assert refused["type"] is FlowResultType.ABORT
    assert refused["reason"] == "bay_id_conflict"
    assert refused["description_placeholders"] == {"bay": "site-c-kiosk-1-bay-1"}
    assert dict(plan_entry.subentries) == before


def _relays(entry: MockConfigEntry) -> list[tuple[str, str, str]]:
    """Each bay's relay as (prefix, node, agent bay); no agent bay stored: the bay's id."""
    return sorted(
        (s.data["prefix"], s.data["node"], s.data["agent_bay"] or s.data["bay_id"])
        for s in entry.subentries.values()
        if s.subentry_type == "bay"
    )


async def test_an_announcement_listing_a_bay_twice_adds_its_relay_once(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    """A publisher that names bay-1 twice: one bay on that relay (two would sell it twice)."""
    bays = [{"id": "bay-1", "name": "Bay 1"}, {"id": "bay-1", "name": "Bay 1 again"}]
    result = await _discover(hass, _agent_config(bays=bays))
    assert result["description_placeholders"]["bays"] == "Bay 1"
    await hass.config_entries.flow.async_configure(result["flow_id"], {})

    assert _relays(plan_entry) == [("qr_charging", "kiosk-1", "bay-1")]


async def test_a_bay_stored_without_its_agent_bay_is_not_offered_again(
    hass: HomeAssistant, standin: RazorpayStandin
) -> None:
    """Data from before the form stored the agent's bay: the bay's own id is its relay."""
    stored = mqtt_bay("kiosk-1")
    stored = {**stored, "data": {**stored["data"], "agent_bay": None}}
    add_account(hass, standin, PLAN_SUBENTRY, stored)

    result = await _discover(hass, _agent_config(bays=[{"id": "bay-1", "name": "Bay 1"}]))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_a_relay_added_while_the_discovery_waits_is_not_added_again(
    hass: HomeAssistant, plan_entry: MockConfigEntry
) -> None:
    """The discovered agent waits in *Discovered* while the owner adds its bay-1 by hand;
    confirming then adds nothing on that relay."""
    result = await _discover(hass, _agent_config(bays=[{"id": "bay-1", "name": "Bay 1"}]))
    assert result["type"] is FlowResultType.FORM
    by_hand = mqtt_bay("kiosk-1")
    hass.config_entries.async_add_subentry(
        plan_entry,
        ConfigSubentry(
            data=MappingProxyType(by_hand["data"]),
            subentry_type="bay",
            title="Bay 1",
            unique_id="bay-1",
        ),
    )

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})

    assert result["reason"] == "already_configured"
    assert _relays(plan_entry) == [("qr_charging", "kiosk-1", "bay-1")]
