"""Bay drivers: each kind of relay in its own module, chosen by the bay's ``driver`` field."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.core import HomeAssistant

from ..catalog import DRIVER_SWITCH, Bay
from .base import BayDriver, BayReport
from .mqtt_agent import MqttAgentDriver
from .switch_entity import SwitchEntityDriver


def make_driver(
    hass: HomeAssistant,
    bay: Bay,
    on_report: Callable[[BayReport], None],
    on_change: Callable[[], None],
) -> BayDriver:
    """The driver a bay's settings ask for."""
    if bay.driver == DRIVER_SWITCH:
        assert bay.switch_entity is not None
        return SwitchEntityDriver(
            hass, bay.bay_id, on_report, on_change, entity_id=bay.switch_entity
        )
    assert bay.node is not None
    return MqttAgentDriver(
        hass,
        bay.bay_id,
        on_report,
        on_change,
        prefix=bay.prefix,
        node=bay.node,
        agent_bay=bay.agent_bay or bay.bay_id,
    )
