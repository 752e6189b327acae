"""Bay drivers: each kind of relay in its own module, chosen by the bay's relay type."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.core import HomeAssistant

from ..catalog import Bay
from ..energy_rules import FullRule
from ..relays import (
    MqttRelay,
    SwitchRelay,
)
from .base import BayDriver, BayReport
from .mqtt_agent import MqttAgentDriver
from .switch_entity import SwitchEntityDriver


def make_driver(
    hass: HomeAssistant,
    bay: Bay,
    on_report: Callable[[BayReport], None],
    on_change: Callable[[], None],
) -> BayDriver:
    """The driver a bay's relay asks for."""
    match bay.relay:
        case SwitchRelay(entity_id=entity_id):
            sensors = (
                (bay.power_sensor, bay.energy_sensor)
                if bay.power_sensor and bay.energy_sensor
                else None
            )
            return SwitchEntityDriver(
                hass,
                bay.bay_id,
                on_report,
                on_change,
                entity_id=entity_id,
                sensors=sensors,
                full=FullRule(
                    bay.full_below_w, bay.full_settle_min * 60.0, bay.full_grace_min * 60.0
                ),
                max_power_w=bay.max_power_w,
            )
        case MqttRelay(node=node, agent_bay=agent_bay, prefix=prefix):
            return MqttAgentDriver(
                hass,
                bay.bay_id,
                on_report,
                on_change,
                prefix=prefix,
                node=node,
                agent_bay=agent_bay or bay.bay_id,
                full=bay.full_rule,
            )
