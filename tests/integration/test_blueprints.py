"""The automation blueprints under blueprints/automation/qr_charging/.

Each blueprint is checked by Home Assistant's own blueprint validation and then really run:
an automation made from it reacts to the integration's event (or to a bay's agent sensor)
and calls a notify action, here a registered stand-in for a phone's notifier.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint import models
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
    async_mock_service,
)

SOURCE = Path(__file__).parents[2] / "blueprints" / "automation" / "qr_charging"
BLUEPRINTS = sorted(path.name for path in SOURCE.glob("*.yaml"))
NOTIFY = "notify.owner_phone"
AGENT_SENSOR = "binary_sensor.bay_1_agent_connection"

PAYMENT = {
    "entry_id": "01JENTRY",
    "bay": "bay-1",
    "plan": "p30",
    "amount": 2000,
    "currency": "INR",
    "payment_id": "pay_Qb2gYRc7dxedX8",
    "session_id": "s-01JSESSION",
}


def test_the_four_blueprints_are_there() -> None:
    assert BLUEPRINTS == [
        "agent_offline.yaml",
        "notify_on_failed_start.yaml",
        "notify_on_payment.yaml",
        "notify_on_session_end.yaml",
    ]


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_blueprint_passes_home_assistants_validation(name: str) -> None:
    data = load_yaml_dict(SOURCE / name)
    blueprint = models.Blueprint(
        data, path=name, expected_domain="automation", schema=AUTOMATION_BLUEPRINT_SCHEMA
    )
    assert blueprint.validate() is None
    assert blueprint.name.startswith("QR Charging - ")
    assert blueprint.metadata["source_url"].endswith(f"/blueprints/automation/qr_charging/{name}")
    # The current trigger and action keys (plural), not the older singular ones.
    assert "triggers" in data
    assert "actions" in data
    assert "trigger" not in data
    assert "action" not in data
    # Every input has a name and a selector, so the UI can show a form for it.
    for key, spec in blueprint.inputs.items():
        assert spec.get("name"), key
        assert spec.get("selector"), key


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_missing_inputs_are_reported(name: str) -> None:
    blueprint = models.Blueprint(
        load_yaml_dict(SOURCE / name),
        path=name,
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )
    required = {key for key, spec in blueprint.inputs.items() if "default" not in spec}
    inputs = models.BlueprintInputs(
        blueprint, {"use_blueprint": {"path": f"qr_charging/{name}", "input": {}}}
    )
    if required:
        with pytest.raises(models.MissingInput):
            inputs.validate()
    else:
        inputs.validate()


def _copy_blueprints(folder: Path) -> None:
    """Put the blueprints where HA looks for them: <config>/blueprints/automation/."""
    folder.mkdir(parents=True)
    for blueprint in BLUEPRINTS:
        shutil.copy(SOURCE / blueprint, folder / blueprint)


async def _automation(
    hass: HomeAssistant, tmp_path: Path, name: str, inputs: dict[str, Any]
) -> list[ServiceCall]:
    """Set up one automation from a blueprint; return the notify calls it will make."""
    hass.config.config_dir = str(tmp_path)
    folder = Path(hass.config.path("blueprints/automation/qr_charging"))
    await hass.async_add_executor_job(_copy_blueprints, folder)
    domain, service = NOTIFY.split(".")
    calls = async_mock_service(hass, domain, service)
    config = {
        "automation": [
            {
                "id": "qr_charging_test",
                "alias": "QR test",
                "use_blueprint": {
                    "path": f"qr_charging/{name}",
                    "input": {"notify_action": NOTIFY, **inputs},
                },
            }
        ]
    }
    assert await async_setup_component(hass, "automation", config)
    await hass.async_block_till_done()
    # An automation whose config did not validate is created "unavailable".
    state = hass.states.get("automation.qr_test")
    assert state is not None
    assert state.state == STATE_ON, state
    return calls


async def test_payment_notification_in_rupees(hass: HomeAssistant, tmp_path: Path) -> None:
    calls = await _automation(hass, tmp_path, "notify_on_payment.yaml", {})

    hass.bus.async_fire("qr_charging_payment_received", PAYMENT)
    await hass.async_block_till_done()

    assert len(calls) == 1
    data = calls[0].data
    assert data["title"] == "Charging paid"
    assert "₹20.00" in data["message"]
    assert "bay-1" in data["message"]
    assert "pay_Qb2gYRc7dxedX8" in data["message"]
    assert "s-01JSESSION" in data["message"]


async def test_payment_amount_keeps_its_paise(hass: HomeAssistant, tmp_path: Path) -> None:
    calls = await _automation(hass, tmp_path, "notify_on_payment.yaml", {"title": "Paid!"})

    hass.bus.async_fire("qr_charging_payment_received", PAYMENT | {"amount": 12345})
    await hass.async_block_till_done()

    assert calls[0].data["title"] == "Paid!"
    assert "₹123.45" in calls[0].data["message"]


async def test_payment_notification_for_one_bay_only(hass: HomeAssistant, tmp_path: Path) -> None:
    calls = await _automation(hass, tmp_path, "notify_on_payment.yaml", {"bay_filter": "bay-2"})

    hass.bus.async_fire("qr_charging_payment_received", PAYMENT)
    hass.bus.async_fire("qr_charging_payment_received", PAYMENT | {"bay": "bay-2"})
    await hass.async_block_till_done()

    assert len(calls) == 1
    assert "bay-2" in calls[0].data["message"]


async def test_session_end_notification(hass: HomeAssistant, tmp_path: Path) -> None:
    calls = await _automation(
        hass, tmp_path, "notify_on_session_end.yaml", {"include_owner_sessions": False}
    )
    ended = {
        "entry_id": "01JENTRY",
        "bay": "bay-1",
        "session_id": "s-01JSESSION",
        "reason": "deadline",
        "served_s": 1805,
        "owner": False,
    }

    hass.bus.async_fire("qr_charging_session_ended", ended)
    hass.bus.async_fire("qr_charging_session_ended", ended | {"owner": True})
    await hass.async_block_till_done()

    assert len(calls) == 1
    message = calls[0].data["message"]
    assert "bay-1" in message
    assert "deadline" in message
    assert "30 min 5 s" in message


async def test_failed_start_notification(hass: HomeAssistant, tmp_path: Path) -> None:
    calls = await _automation(hass, tmp_path, "notify_on_failed_start.yaml", {})

    # As a bay fails a start ...
    hass.bus.async_fire(
        "qr_charging_session_failed",
        {
            "entry_id": "01JENTRY",
            "bay": "bay-1",
            "session_id": "s-01JSESSION",
            "reason": "no_acknowledgement",
            "payment_ids": ["pay_A", "pay_B"],
        },
    )
    # ... and as the hub reports a payment that does not match what was sold.
    hass.bus.async_fire(
        "qr_charging_session_failed",
        {
            "entry_id": "01JENTRY",
            "bay": "bay-1",
            "payment_id": "pay_C",
            "session_id": None,
            "reason": "payment_mismatch",
            "detail": "amount 1000 paise instead of 2000",
        },
    )
    await hass.async_block_till_done()

    assert len(calls) == 2
    first, second = (call.data["message"] for call in calls)
    assert "no_acknowledgement" in first
    assert "pay_A, pay_B" in first
    assert "payment_mismatch: amount 1000 paise instead of 2000" in second
    assert "pay_C" in second


async def test_agent_offline_notification(hass: HomeAssistant, tmp_path: Path) -> None:
    hass.states.async_set(
        AGENT_SENSOR,
        STATE_ON,
        {"device_class": "connectivity", "friendly_name": "Bay 1 Agent connection"},
    )
    calls = await _automation(
        hass, tmp_path, "agent_offline.yaml", {"agent_sensors": [AGENT_SENSOR], "minutes": 5}
    )

    hass.states.async_set(AGENT_SENSOR, STATE_OFF, {"friendly_name": "Bay 1 Agent connection"})
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=4))
    await hass.async_block_till_done()
    assert calls == []

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await hass.async_block_till_done()

    assert len(calls) == 1
    assert "Bay 1 Agent connection has been offline for 5 min" in calls[0].data["message"]


async def test_agent_back_in_time_is_not_reported(hass: HomeAssistant, tmp_path: Path) -> None:
    hass.states.async_set(AGENT_SENSOR, STATE_ON)
    calls = await _automation(
        hass, tmp_path, "agent_offline.yaml", {"agent_sensors": [AGENT_SENSOR], "minutes": 5}
    )

    hass.states.async_set(AGENT_SENSOR, STATE_OFF)
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=2))
    hass.states.async_set(AGENT_SENSOR, STATE_ON)
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=10))
    await hass.async_block_till_done()

    assert calls == []
