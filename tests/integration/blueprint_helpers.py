"""The blueprints set up in HA as an owner would: loaded, copied where HA looks, an automation made.

Shared by test_blueprints.py and test_metered_blueprint.py."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint import models
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import async_mock_service

SOURCE = Path(__file__).parents[2] / "blueprints" / "automation" / "qr_charging"
# Where the blueprints are published (the README imports them from there).
REPOSITORY = "qr-charging/qr_charging"
BLUEPRINTS = sorted(path.name for path in SOURCE.glob("*.yaml"))
NOTIFY = "notify.owner_phone"
# What an owner picks in the action selector: their phone's notifier with the blueprint's text.
NOTIFY_ACTION = [{"action": NOTIFY, "data": {"title": "{{ title }}", "message": "{{ message }}"}}]


def load_blueprint(name: str) -> models.Blueprint:
    return models.Blueprint(
        load_yaml_dict(SOURCE / name),
        path=name,
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )


def copy_blueprints(folder: Path) -> None:
    """Put the blueprints where HA looks for them: <config>/blueprints/automation/."""
    folder.mkdir(parents=True)
    for blueprint in BLUEPRINTS:
        shutil.copy(SOURCE / blueprint, folder / blueprint)


async def set_up_automation(
    hass: HomeAssistant, name: str, inputs: dict[str, Any], service: str = NOTIFY
) -> list[ServiceCall]:
    """Set up one automation from a blueprint; return the calls of ``service`` it will make."""
    folder = Path(hass.config.path("blueprints/automation/qr_charging"))
    await hass.async_add_executor_job(copy_blueprints, folder)
    calls = async_mock_service(hass, *service.split("."))
    if "notify_action" in load_blueprint(name).inputs:
        inputs = {"notify_action": NOTIFY_ACTION, **inputs}
    config = {
        "automation": [
            {
                "id": "qr_charging_test",
                "alias": "QR test",
                "use_blueprint": {"path": f"qr_charging/{name}", "input": inputs},
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
