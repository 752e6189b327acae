"""A bay's agent connectivity: whether its MQTT agent (or HA switch) is reachable."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .bay_runner import BayRunner
from .devices import async_update_agent_device
from .drivers.base import AgentInfo
from .entity import QrChargingEntity, add_bay_entities
from .hub import QrChargingConfigEntry

PARALLEL_UPDATES = 0

AGENT = BinarySensorEntityDescription(
    key="agent",
    translation_key="agent",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: QrChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the connectivity sensor of every bay."""
    add_bay_entities(
        entry, async_add_entities, lambda runner: [QrChargingAgentConnectivity(runner, AGENT)]
    )


class QrChargingAgentConnectivity(QrChargingEntity, BinarySensorEntity):
    """On while the bay's agent is online; itself always available.

    It also keeps the agent's device up to date when the agent announces a new name or
    software version (its retained config message).
    """

    available_offline = True

    def __init__(self, runner: BayRunner, description: BinarySensorEntityDescription) -> None:
        super().__init__(runner, description)
        self._agent: AgentInfo | None = runner.driver.agent

    @property
    def is_on(self) -> bool:
        """Whether the agent is online."""
        return self.runner.driver.online

    @callback
    def _handle_bay_update(self) -> None:
        agent = self.runner.driver.agent
        if agent is not None and agent != self._agent:
            async_update_agent_device(self.hass, self.runner.entry, agent)
        self._agent = agent
        super()._handle_bay_update()
