"""The automation blueprints under blueprints/automation/qr_charging/.

Each blueprint is checked by Home Assistant's own blueprint validation and then really run:
an automation made from it reacts to the integration's events (fired here as the integration
fires them, or caused by a real bay) or to a bay's entities, and runs its action, here a
registered stand-in for a phone's notifier or for the indicator light.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from homeassistant.components.blueprint import models
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)

from custom_components.qr_charging.const import DOMAIN

from .blueprint_helpers import BLUEPRINTS, REPOSITORY, SOURCE, load_blueprint, set_up_automation

AGENT_SENSOR = "binary_sensor.bay_1_agent_connection"
# The reasons a session ends with, as the integration sends them.
END_REASONS = [
    "deadline",
    "stopped",
    "power_cut",
    # Metered bays (issue #24).
    "energy_reached",
    "vehicle_full",
    "time_cap",
    "agent_ended",
    "meter_silent",
    "meter_invalid",
    "meter_backwards",
    "meter_overpower",
]

PAYMENT = {
    "entry_id": "01JENTRY",
    "bay": "bay-1",
    "plan": "p30",
    "amount": 2000,
    "currency": "INR",
    "payment_id": "pay_Qb2gYRc7dxedX8",
    "session_id": "s-01JSESSION",
}
ENDED = {
    "entry_id": "01JENTRY",
    "bay": "bay-1",
    "session_id": "s-01JSESSION",
    "reason": "deadline",
    "served_s": 1805,
    "owner": False,
}


def test_the_blueprints_are_there() -> None:
    assert BLUEPRINTS == [
        "agent_offline.yaml",
        "announce_opening_and_closing.yaml",  # issue #25: test_site_blueprints.py
        "bay_drawing_nothing.yaml",  # issue #24: test_metered_blueprint.py
        "charging_indicator.yaml",
        "daily_summary.yaml",
        "notify_on_failed_start.yaml",
        "notify_on_payment.yaml",
        "notify_on_session_end.yaml",
        "refund_failed_or_unmatched.yaml",
        "warn_near_load_cap.yaml",  # issue #25: test_site_blueprints.py
    ]


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_blueprint_passes_home_assistants_validation(name: str) -> None:
    data = load_yaml_dict(SOURCE / name)
    blueprint = load_blueprint(name)
    assert blueprint.validate() is None
    assert blueprint.name.startswith("QR Charging - ")
    # The current trigger and action keys (plural), not the older singular ones.
    assert "triggers" in data
    assert "actions" in data
    assert "trigger" not in data
    assert "action" not in data
    # Every input has a name and a selector, so the UI can show a form for it.
    for key, spec in blueprint.inputs.items():
        assert spec.get("name"), key
        assert spec.get("selector"), key
    # A notification is any action the owner picks; a bay is picked as its device.
    if "notify_action" in blueprint.inputs:
        assert blueprint.inputs["notify_action"]["selector"] == {"action": {}}
    if "bays" in blueprint.inputs:
        device = blueprint.inputs["bays"]["selector"]["device"]
        assert device["filter"] == [{"integration": DOMAIN, "model": "Charging bay"}]


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_missing_inputs_are_reported(name: str) -> None:
    blueprint = load_blueprint(name)
    required = {key for key, spec in blueprint.inputs.items() if "default" not in spec}
    inputs = models.BlueprintInputs(
        blueprint, {"use_blueprint": {"path": f"qr_charging/{name}", "input": {}}}
    )
    if required:
        with pytest.raises(models.MissingInput):
            inputs.validate()
    else:
        inputs.validate()


def test_readme_imports_every_blueprint() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text("utf-8")
    imports = re.findall(
        r"\(https://my\.home-assistant\.io/redirect/blueprint_import/\?(.*?)\)", readme
    )
    raw = f"https://raw.githubusercontent.com/{REPOSITORY}/main/blueprints/automation/qr_charging/"
    assert sorted(parse_qs(query)["blueprint_url"][0] for query in imports) == [
        raw + name for name in BLUEPRINTS
    ]
    for name in BLUEPRINTS:
        source = load_blueprint(name).metadata["source_url"]
        assert (
            source
            == f"https://github.com/{REPOSITORY}/blob/main/blueprints/automation/qr_charging/{name}"
        )


def test_session_end_reasons_are_the_integrations() -> None:
    spec = load_blueprint("notify_on_session_end.yaml").inputs["reasons"]
    options = [option["value"] for option in spec["selector"]["select"]["options"]]
    assert options == END_REASONS
    assert spec["default"] == END_REASONS


async def _settle(hass: HomeAssistant) -> None:
    """Let a bay's plug, its report and the automation run (one hop each)."""
    for _ in range(4):
        await hass.async_block_till_done()


def _bay_device(hass: HomeAssistant) -> str:
    """The device of the integration's bay-1, as the device selector gives it."""
    entry = er.async_get(hass).async_get("switch.bay_1_charging")
    assert entry is not None
    assert entry.device_id is not None
    return entry.device_id


async def test_default_notification_is_a_persistent_one(hass: HomeAssistant) -> None:
    calls = await set_up_automation(
        hass,
        "notify_on_payment.yaml",
        {
            "notify_action": load_blueprint("notify_on_payment.yaml").inputs["notify_action"][
                "default"
            ]
        },
        service="persistent_notification.create",
    )

    hass.bus.async_fire("qr_charging_payment_received", PAYMENT)
    await hass.async_block_till_done()

    assert [call.data["title"] for call in calls] == ["Charging paid"]
    assert "₹20.00" in calls[0].data["message"]


async def test_payment_notification_in_rupees(hass: HomeAssistant) -> None:
    calls = await set_up_automation(hass, "notify_on_payment.yaml", {})

    hass.bus.async_fire("qr_charging_payment_received", PAYMENT)
    await hass.async_block_till_done()

    assert len(calls) == 1
    data = calls[0].data
    assert data["title"] == "Charging paid"
    assert data["message"] == (
        "Bay bay-1: paid ₹20.00 (p30), payment pay_Qb2gYRc7dxedX8, session s-01JSESSION."
    )


async def test_payment_amount_keeps_its_paise(hass: HomeAssistant) -> None:
    calls = await set_up_automation(hass, "notify_on_payment.yaml", {"title": "Paid!"})

    hass.bus.async_fire("qr_charging_payment_received", PAYMENT | {"amount": 12345})
    await hass.async_block_till_done()

    assert calls[0].data["title"] == "Paid!"
    assert "₹123.45" in calls[0].data["message"]


async def test_payment_notification_for_chosen_bays_only(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    calls = await set_up_automation(hass, "notify_on_payment.yaml", {"bays": [_bay_device(hass)]})
    ours = PAYMENT | {"entry_id": loaded_entry.entry_id}

    hass.bus.async_fire("qr_charging_payment_received", ours | {"bay": "bay-2"})
    # Another account may have a bay-1 too.
    hass.bus.async_fire("qr_charging_payment_received", PAYMENT)
    hass.bus.async_fire("qr_charging_payment_received", ours)
    await hass.async_block_till_done()

    assert len(calls) == 1
    assert calls[0].data["message"].startswith("Bay bay-1: paid")


async def test_session_end_notification(hass: HomeAssistant) -> None:
    calls = await set_up_automation(
        hass, "notify_on_session_end.yaml", {"include_owner_sessions": False}
    )

    for reason in END_REASONS:
        hass.bus.async_fire("qr_charging_session_ended", ENDED | {"reason": reason})
    hass.bus.async_fire("qr_charging_session_ended", ENDED | {"owner": True})
    await hass.async_block_till_done()

    assert [call.data["message"] for call in calls] == [
        f"Bay bay-1: session ended ({reason}) after 30 min 5 s." for reason in END_REASONS
    ]


async def test_session_end_of_a_real_bay_for_chosen_reasons(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    calls = await set_up_automation(
        hass,
        "notify_on_session_end.yaml",
        {"bays": [_bay_device(hass)], "reasons": ["power_cut"]},
    )
    start = {"bay": "bay-1", "minutes": 5}

    # An owner session whose plug is switched off by hand: a power cut.
    await hass.services.async_call(DOMAIN, "start_session", start, blocking=True)
    await _settle(hass)
    await hass.services.async_call(
        "input_boolean", "turn_off", {"entity_id": "input_boolean.plug"}, blocking=True
    )
    await _settle(hass)
    # One stopped by the owner: not a chosen reason.
    await hass.services.async_call(DOMAIN, "start_session", start, blocking=True)
    await _settle(hass)
    await hass.services.async_call(DOMAIN, "stop_session", {"bay": "bay-1"}, blocking=True)
    await _settle(hass)
    # A power cut at a bay that was not chosen.
    hass.bus.async_fire(
        "qr_charging_session_ended",
        ENDED | {"entry_id": loaded_entry.entry_id, "bay": "bay-2", "reason": "power_cut"},
    )
    await hass.async_block_till_done()

    assert len(calls) == 1
    message = calls[0].data["message"]
    assert message.startswith("Bay bay-1: session ended (power_cut) after 0 min")
    assert message.endswith("(owner session).")


async def test_failed_start_notification(hass: HomeAssistant) -> None:
    calls = await set_up_automation(hass, "notify_on_failed_start.yaml", {})
    failed: dict[str, Any] = {"entry_id": "01JENTRY", "bay": "bay-1", "session_id": "s-01JSESSION"}

    # As a bay fails a start ...
    hass.bus.async_fire(
        "qr_charging_session_failed",
        failed
        | {"payment_ids": ["pay_A", "pay_B"], "reason": "no_acknowledgement", "detail": None},
    )
    # ... as the hub reports a payment that does not match what was sold ...
    hass.bus.async_fire(
        "qr_charging_session_failed",
        failed
        | {
            "payment_ids": ["pay_C"],
            "reason": "payment_mismatch",
            "detail": "amount 1000 paise instead of 2000",
        },
    )
    # ... and as an owner session (no payment) stops before it started.
    hass.bus.async_fire(
        "qr_charging_session_failed",
        failed | {"payment_ids": [], "reason": "stopped", "detail": None},
    )
    await hass.async_block_till_done()

    assert [call.data["message"] for call in calls] == [
        "Bay bay-1: session s-01JSESSION failed (no_acknowledgement). Payments: pay_A, pay_B.",
        "Bay bay-1: session s-01JSESSION failed (payment_mismatch: amount 1000 paise instead"
        " of 2000). Payments: pay_C.",
        "Bay bay-1: session s-01JSESSION failed (stopped). Payments: none (owner session).",
    ]


async def test_refund_failed_and_unmatched_payment_notifications(hass: HomeAssistant) -> None:
    calls = await set_up_automation(hass, "refund_failed_or_unmatched.yaml", {})
    refund = {
        "entry_id": "01JENTRY",
        "payment_id": "pay_A",
        "refund_id": "rfnd_A",
        "amount": 1550,
        "reason": "bay_offline",
        "session_id": "s-01JSESSION",
    }

    for state in ("pending", "processed"):
        hass.bus.async_fire("qr_charging_refund", refund | {"state": state})
    hass.bus.async_fire("qr_charging_refund", refund | {"state": "failed"})
    hass.bus.async_fire(
        "qr_charging_payment_unmatched",
        {"entry_id": "01JENTRY", "payment_id": "pay_B", "amount": 5000, "currency": "INR"},
    )
    await hass.async_block_till_done()

    assert [call.data["title"] for call in calls] == ["Payment needs your attention"] * 2
    refund_failed, unmatched = (call.data["message"] for call in calls)
    assert refund_failed.startswith(
        "Refund of ₹15.50 of payment pay_A failed (bay_offline, session s-01JSESSION). "
        "Refund it in Razorpay's dashboard"
    )
    assert unmatched.startswith(
        "Payment pay_B of ₹50.00 INR did not come through a bay's payment link"
    )
    assert "qr_charging.refund" in unmatched


async def test_daily_summary_at_the_chosen_time(hass: HomeAssistant) -> None:
    revenue = {"device_class": "monetary", "unit_of_measurement": "INR"}
    hass.states.async_set("sensor.bay_1_revenue", "120.5", revenue | {"friendly_name": "Bay 1"})
    # A bay whose agent is offline has no revenue value: left out of the total.
    hass.states.async_set("sensor.bay_2_revenue", "unavailable", {"friendly_name": "Bay 2"})
    hass.states.async_set("sensor.bay_3_revenue", "40", revenue | {"friendly_name": "Bay 3"})
    hass.states.async_set("sensor.bay_1_sessions", "6", {"friendly_name": "Bay 1 sessions"})
    hass.states.async_set("sensor.bay_3_sessions", "2", {"friendly_name": "Bay 3 sessions"})
    calls = await set_up_automation(
        hass,
        "daily_summary.yaml",
        {
            "at": "20:30:00",
            "revenue_sensors": [
                "sensor.bay_1_revenue",
                "sensor.bay_2_revenue",
                "sensor.bay_3_revenue",
            ],
            "session_sensors": ["sensor.bay_1_sessions", "sensor.bay_3_sessions"],
        },
    )
    now = dt_util.now()
    at = now.replace(hour=20, minute=30, second=0, microsecond=0)
    if at <= now + timedelta(minutes=1):
        at += timedelta(days=1)

    async_fire_time_changed(hass, at - timedelta(minutes=1))
    await hass.async_block_till_done()
    assert calls == []
    async_fire_time_changed(hass, at)
    await hass.async_block_till_done()

    assert len(calls) == 1
    assert calls[0].data["title"] == "Charging today"
    assert calls[0].data["message"].splitlines() == [
        "Revenue ₹160.50, sessions 8.",
        "Bay 1: ₹120.50",
        "Bay 2: unavailable",
        "Bay 3: ₹40.00",
        "Bay 1 sessions: 6",
        "Bay 3 sessions: 2",
    ]
    # Its trigger waits for tomorrow: stopped, so no timer outlives the test.
    await hass.services.async_call(
        "automation", "turn_off", {"entity_id": "automation.qr_test"}, blocking=True
    )


@pytest.mark.parametrize(
    ("bay_entity", "charging", "not_charging"),
    [
        ("sensor.bay_1_status", "charging", ["idle", "starting", "offline", "fault"]),
        ("switch.bay_1_charging", STATE_ON, [STATE_OFF, "unavailable"]),
    ],
)
async def test_indicator_follows_the_bay(
    hass: HomeAssistant, bay_entity: str, charging: str, not_charging: list[str]
) -> None:
    hass.states.async_set(bay_entity, not_charging[0])
    # Set up while Home Assistant starts, as after a restart.
    hass.set_state(CoreState.not_running)
    turned_off = async_mock_service(hass, "homeassistant", "turn_off")
    turned_on = await set_up_automation(
        hass,
        "charging_indicator.yaml",
        {"bay_entity": bay_entity, "indicator": ["light.bay_1_lamp"]},
        service="homeassistant.turn_on",
    )

    # At start-up the light is set to what the bay does.
    await hass.async_start()
    await hass.async_block_till_done()
    assert (len(turned_on), len(turned_off)) == (0, 1)

    hass.states.async_set(bay_entity, charging)
    await hass.async_block_till_done()
    assert (len(turned_on), len(turned_off)) == (1, 1)
    assert turned_on[0].data["entity_id"] == ["light.bay_1_lamp"]
    # An attribute change alone is not a new state.
    hass.states.async_set(bay_entity, charging, {"friendly_name": "Bay 1"})
    await hass.async_block_till_done()
    assert len(turned_on) == 1

    for state in not_charging[1:] + not_charging[:1]:
        hass.states.async_set(bay_entity, state)
        await hass.async_block_till_done()
    assert (len(turned_on), len(turned_off)) == (1, len(not_charging) + 1)
    assert turned_off[-1].data["entity_id"] == ["light.bay_1_lamp"]


async def test_agent_offline_notification(hass: HomeAssistant) -> None:
    hass.states.async_set(
        AGENT_SENSOR,
        STATE_ON,
        {"device_class": "connectivity", "friendly_name": "Bay 1 Agent connection"},
    )
    calls = await set_up_automation(
        hass, "agent_offline.yaml", {"agent_sensors": [AGENT_SENSOR], "minutes": 5}
    )

    hass.states.async_set(AGENT_SENSOR, STATE_OFF, {"friendly_name": "Bay 1 Agent connection"})
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=4))
    await hass.async_block_till_done()
    assert calls == []

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await hass.async_block_till_done()

    assert len(calls) == 1
    assert calls[0].data["title"] == "Charging bay offline"
    assert "Bay 1 Agent connection has been offline for 5 min" in calls[0].data["message"]


async def test_agent_back_in_time_is_not_reported(hass: HomeAssistant) -> None:
    hass.states.async_set(AGENT_SENSOR, STATE_ON)
    calls = await set_up_automation(
        hass, "agent_offline.yaml", {"agent_sensors": [AGENT_SENSOR], "minutes": 5}
    )

    hass.states.async_set(AGENT_SENSOR, STATE_OFF)
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=2))
    hass.states.async_set(AGENT_SENSOR, STATE_ON)
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=10))
    await hass.async_block_till_done()

    assert calls == []
